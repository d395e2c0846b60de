//! The embedded default: `roost` with no arguments serves every protocol on loopback on the
//! unprivileged ports, with a first user whose password it prints once.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{mail_client_ok, roost_bin, LineClient};

/// Stops the server even when an assertion fails, so the fixed ports are freed.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn no_config_serves_everything_on_loopback_with_a_printed_first_user() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = KillOnDrop(
        Command::new(roost_bin())
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let child = &mut child.0;
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut user = String::new();
    let mut password = String::new();
    for line in stdout.lines().map_while(Result::ok).take(3) {
        if let Some(v) = line.trim().strip_prefix("user: ") {
            user = v.to_string();
        }
        if let Some(v) = line.trim().strip_prefix("password: ") {
            password = v.to_string();
        }
    }
    assert!(
        !user.is_empty() && password.len() >= 12,
        "first user printed: {user:?}"
    );
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut listening = Vec::new();
    for line in stderr.lines().map_while(Result::ok) {
        if line.contains("listening") {
            listening.push(line);
        }
        if listening.len() == 7 {
            break;
        }
    }
    for port in [1143, 1993, 1110, 1995, 1587, 1465, 8025] {
        assert!(
            listening
                .iter()
                .any(|l| l.contains(&format!("addr=127.0.0.1:{port}"))),
            "{port}: {listening:?}"
        );
    }
    let users = dir.path().join("data/users");
    assert_eq!(
        std::fs::metadata(&users).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let creds = ["--user", user.as_str(), "--password", password.as_str()];
    let imaps: SocketAddr = "127.0.0.1:1993".parse().unwrap();
    let out = mail_client_ok(
        "imap",
        imaps,
        &[
            &creds[..],
            &["--tls", "implicit", "--append", "Subject: hi\\n\\nhello\\n"],
        ]
        .concat(),
    );
    assert!(out.contains("MESSAGES 1"), "{out}");
    let pop3: SocketAddr = "127.0.0.1:1110".parse().unwrap();
    let out = mail_client_ok("pop3", pop3, &[&creds[..], &["--tls", "starttls"]].concat());
    assert!(out.contains("STAT 1"), "{out}");
    let mut smtp = LineClient::connect("127.0.0.1:1587".parse().unwrap());
    assert!(smtp.line().starts_with("220 "));

    // A second start keeps the user and does not print a password again.
    Command::new("kill")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut again = Command::new(roost_bin())
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A password would be printed before the listeners are bound: wait (bounded) until all
    // of them listen, or the server gives up.
    let stderr = BufReader::new(again.stderr.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let listening = stderr
            .lines()
            .map_while(Result::ok)
            .filter(|l| l.contains("listening"))
            .take(7)
            .count();
        let _ = tx.send(listening);
    });
    let _ = rx.recv_timeout(Duration::from_secs(20));
    let _ = again.kill();
    let out = again.wait_with_output().unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains("password"));
}
