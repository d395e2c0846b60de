//! The embedded default: `roost` with no arguments serves every protocol on loopback on the
//! unprivileged ports, with a first user whose password it prints once.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{is_root, mail_client_ok, roost_bin, LineClient};

/// Both tests bind the embedded default's fixed ports: one at a time.
static PORTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

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
    let _ports = PORTS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
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
        if listening.len() == 8 {
            break;
        }
    }
    for port in [1143, 1993, 1110, 1995, 1587, 1465, 5190, 8025] {
        assert!(
            listening
                .iter()
                .any(|l| l.contains(&format!("addr=127.0.0.1:{port}"))),
            "{port}: {listening:?}"
        );
    }
    let mail = std::fs::symlink_metadata(dir.path().join("data/mail")).unwrap();
    assert!(
        mail.is_dir(),
        "a start directory everyone may pass through keeps the mail in ./data/mail"
    );
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
    let mut sieve = LineClient::connect("127.0.0.1:5190".parse().unwrap());
    assert_eq!(
        sieve.line(),
        "\"IMPLEMENTATION\" \"roost\"\r\n",
        "ManageSieve answers"
    );

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

/// The embedded default, started, with the first user it printed and its log so far.
struct Embedded {
    server: KillOnDrop,
    user: String,
    password: String,
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

/// Starts `roost` with no config in `dir` and waits (bounded) until its 7 listeners are up;
/// the log keeps being collected.
fn start_embedded(dir: &std::path::Path) -> Embedded {
    let mut server = KillOnDrop(
        Command::new(roost_bin())
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stdout = BufReader::new(server.0.stdout.take().unwrap());
    let (mut user, mut password) = (String::new(), String::new());
    for line in stdout.lines().map_while(Result::ok).take(3) {
        if let Some(v) = line.trim().strip_prefix("user: ") {
            user = v.to_string();
        }
        if let Some(v) = line.trim().strip_prefix("password: ") {
            password = v.to_string();
        }
    }
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = BufReader::new(server.0.stderr.take().unwrap());
    let collected = std::sync::Arc::clone(&log);
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            if line.contains("listening") {
                let _ = tx.send(());
            }
            collected.lock().unwrap().push(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    for _ in 0..7 {
        let left = deadline.saturating_duration_since(Instant::now());
        if rx.recv_timeout(left).is_err() {
            panic!("not listening:\n{}", log.lock().unwrap().join("\n"));
        }
    }
    Embedded {
        server,
        user,
        password,
        log,
    }
}

/// The first run: root starts roost with no config in a private directory whose parent
/// is private too (as `/root/roost` is, or what `mktemp -d` makes), so `nobody`, which the
/// login process and the mail workers run as, cannot pass through. Every protocol still works:
/// submission with SMTP AUTH delivers, IMAP and POP3 read the message.
#[test]
fn as_root_in_a_private_directory_submission_imap_and_pop3_work() {
    if !is_root() {
        eprintln!("skipping: the login process and workers exist only when roost runs as root");
        return;
    }
    let _ports = PORTS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let top = tempfile::tempdir().unwrap();
    let dir = top.path().join("y");
    std::fs::create_dir(&dir).unwrap();
    for d in [top.path(), dir.as_path()] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    let embedded = start_embedded(&dir);
    let relocated = relocated_dir(&embedded.log.lock().unwrap());
    let _cleanup = RemoveOnDrop(relocated.clone());
    let (user, password) = (embedded.user.as_str(), embedded.password.as_str());
    assert!(
        !user.is_empty() && password.len() >= 12,
        "first user: {user:?}"
    );
    let creds = ["--user", user, "--password", password];
    let rcpt = format!("{user}@localhost");
    let submission: SocketAddr = "127.0.0.1:1587".parse().unwrap();
    let sent = mail_client_ok(
        "smtp",
        submission,
        &[
            &creds[..],
            &["--tls", "starttls", "--mail-from", &rcpt, "--rcpt", &rcpt],
        ]
        .concat(),
    );
    assert!(
        sent.contains("LOGGED-IN 235") && sent.contains("SENT 1"),
        "{sent}"
    );

    let imaps: SocketAddr = "127.0.0.1:1993".parse().unwrap();
    let status = mail_client_ok(
        "imap",
        imaps,
        &[&creds[..], &["--tls", "implicit"]].concat(),
    );
    assert!(status.contains("MESSAGES 1"), "{status}");
    let download = tempfile::tempdir().unwrap();
    let pop3: SocketAddr = "127.0.0.1:1110".parse().unwrap();
    let where_to = download.path().to_str().unwrap();
    let out = mail_client_ok(
        "pop3",
        pop3,
        &[&creds[..], &["--tls", "starttls", "--download", where_to]].concat(),
    );
    assert!(out.contains("STAT 1"), "{out}");
    let message = std::fs::read_to_string(download.path().join("1")).unwrap();
    assert!(message.contains("Subject: smtplib"), "{message}");
    assert!(
        std::fs::read_link(dir.join("data/mail")).unwrap() == relocated.join("mail"),
        "./data/mail links to where the mail is"
    );
    let log = embedded.log.lock().unwrap().join("\n");
    assert!(!log.contains("ERROR"), "{log}");
    drop(embedded.server);
}

/// The directory the start-up notice says mail and queue were moved to.
fn relocated_dir(log: &[String]) -> std::path::PathBuf {
    let notice = log
        .iter()
        .find(|l| l.contains("cannot be reached by nobody"))
        .unwrap_or_else(|| panic!("no relocation notice:\n{}", log.join("\n")));
    let after = notice.split("are kept in ").nth(1).unwrap();
    let path = after.split(' ').next().unwrap();
    assert!(path.starts_with("/var/lib/roost/embedded/"), "{notice}");
    std::path::PathBuf::from(path)
}

/// Removes a directory when the test ends, passed or not.
struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
