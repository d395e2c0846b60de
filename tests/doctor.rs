//! `roost doctor` against real broken states: a port another program holds, certificates that
//! expired or expire soon or name other hosts, a private directory on the way, a missing PAM
//! service file, low inotify limits read from files the test writes, a bad config; and a
//! healthy setup where it logs in to a running roost with a test account.

mod common;

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{base_config, free_loopback_port, is_root, roost_bin, TestServer, PASSWORD};

/// Runs the doctor on `config` (written into `dir`); returns success and the report.
fn doctor(dir: &Path, config: &str, extra: &[&str]) -> (bool, String) {
    let path = dir.join("doctor.toml");
    std::fs::write(&path, config).unwrap();
    let proc_sys = dir.join("proc-sys");
    write_inotify(&proc_sys, 1_000_000, 1024);
    let out = Command::new(roost_bin())
        .args(["doctor", "-c"])
        .arg(&path)
        .arg("--proc-sys")
        .arg(&proc_sys)
        .args(extra)
        .env("ROOST_DOCTOR_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

fn write_inotify(proc_sys: &Path, watches: u64, instances: u64) {
    let dir = proc_sys.join("fs/inotify");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("max_user_watches"), format!("{watches}\n")).unwrap();
    std::fs::write(dir.join("max_user_instances"), format!("{instances}\n")).unwrap();
}

/// A config for `dir`: IMAP on `port`, mail and users inside `dir`.
fn config_in(dir: &Path, port: u16, extra: &str) -> String {
    std::fs::write(dir.join("users"), "plain:{PLAIN}x::::::\n").unwrap();
    format!(
        "protocols = [\"imap\"]\n[listen]\nimap = \"127.0.0.1:{port}\"\n[mail]\nlocation = \"maildir:{}/mail/%u\"\n{extra}\n[auth]\npassdb = [\"passwd-file:{}\"]\n",
        dir.display(),
        dir.join("users").display()
    )
}

#[test]
fn a_healthy_setup_passes_and_logs_in_to_the_running_server() {
    let server = TestServer::start(&base_config(&["imap", "pop3"], ""));
    let config = std::fs::read_to_string(server.dir.path().join("roost.toml"))
        .unwrap()
        .replace(
            "imap = \"127.0.0.1:0\"",
            &format!("imap = \"{}\"", server.addr("imap")),
        )
        .replace(
            "pop3 = \"127.0.0.1:0\"",
            &format!("pop3 = \"{}\"", server.addr("pop3")),
        )
        .replace(
            "passwd-file:users",
            &format!("passwd-file:{}", server.dir.path().join("users").display()),
        );
    let (ok, text) = doctor(server.dir.path(), &config, &["--user", "plain"]);
    assert!(ok, "{text}");
    for line in [
        format!(
            "ok    listener imap {}: held by a running roost",
            server.addr("imap")
        ),
        format!(
            "ok    login imap {} as plain: logged in and out",
            server.addr("imap")
        ),
        format!(
            "ok    login pop3 {} as plain: logged in and out",
            server.addr("pop3")
        ),
    ] {
        assert!(text.contains(&line), "{line}\n{text}");
    }
    assert!(text.contains("roost doctor: 0 failed"), "{text}");
    // A wrong password is a failed check, and the exit status says so.
    let out = Command::new(roost_bin())
        .args(["doctor", "-c"])
        .arg(server.dir.path().join("doctor.toml"))
        .args(["--user", "plain", "--password", "wrong"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(text.contains("FAIL  login imap"), "{text}");
}

#[test]
fn a_port_held_by_another_program_fails_and_names_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let other = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = other.local_addr().unwrap().port();
    std::thread::spawn(move || {
        if let Ok((mut stream, _)) = other.accept() {
            let _ = stream.write_all(b"* OK Dovecot ready.\r\n");
            std::thread::sleep(Duration::from_secs(3));
        }
    });
    let (ok, text) = doctor(dir.path(), &config_in(dir.path(), port, ""), &[]);
    assert!(!ok, "{text}");
    assert!(
        text.contains(&format!(
            "FAIL  listener imap 127.0.0.1:{port}: the port is taken by another program (it says \"* OK Dovecot ready.\"); stop it, or move [listen] imap"
        )),
        "{text}"
    );
}

/// Writes a certificate for `names` valid until `not_after` (seconds since the epoch).
fn certificate(dir: &Path, names: &[&str], not_after: u64) -> (PathBuf, PathBuf) {
    let date = chrono::DateTime::from_timestamp(not_after as i64, 0)
        .unwrap()
        .date_naive();
    use chrono::Datelike;
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap();
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(date.year(), date.month() as u8, date.day() as u8);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    (cert_path, key_path)
}

/// [`config_in`] with submission on too, its queue in `queue`.
fn with_submission(dir: &Path, queue: &Path) -> String {
    config_in(dir, free_loopback_port(), "")
        .replace(
            "protocols = [\"imap\"]",
            "protocols = [\"imap\", \"submission\"]",
        )
        .replace(
            "[listen]\n",
            &format!(
                "[listen]\nsubmission = \"127.0.0.1:{}\"\n",
                free_loopback_port()
            ),
        )
        .replace(
            "[auth]",
            &format!("[smtp]\nqueue_dir = \"{}\"\n[auth]", queue.display()),
        )
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn certificates_that_expired_expire_soon_or_name_other_hosts_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let tls = |cert: &Path, key: &Path| {
        format!(
            "[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
            cert.display(),
            key.display()
        )
    };
    // Expiring in ten days: a warning, the run still passes.
    let (cert, key) = certificate(
        dir.path(),
        &["mail.example.org"],
        now() + 10 * 86_400 + 3600,
    );
    let config = config_in(dir.path(), free_loopback_port(), "")
        .replace("[auth]", &format!("{}[auth]", tls(&cert, &key)));
    let (ok, text) = doctor(
        dir.path(),
        &config,
        &[
            "--hostname",
            "mail.example.org",
            "--hostname",
            "imap.example.net",
        ],
    );
    assert!(
        text.contains("WARN  certificate") && text.contains(" day(s), on "),
        "{text}"
    );
    assert!(
        text.contains("ok    certificate name mail.example.org: covered"),
        "{text}"
    );
    assert!(
        text.contains("FAIL  certificate name imap.example.net: not among the certificate's names"),
        "{text}"
    );
    assert!(!ok);
    // Expired: a failure.
    let (cert, key) = certificate(dir.path(), &["mail.example.org"], now() - 3 * 86_400);
    let config = config_in(dir.path(), free_loopback_port(), "")
        .replace("[auth]", &format!("{}[auth]", tls(&cert, &key)));
    let (ok, text) = doctor(dir.path(), &config, &[]);
    assert!(!ok);
    assert!(
        text.contains("FAIL  certificate") && text.contains("expired on"),
        "{text}"
    );
    // A key that is not the certificate's: the config itself is refused, with the file named.
    let other = rcgen::KeyPair::generate().unwrap();
    std::fs::write(&key, other.serialize_pem()).unwrap();
    let (cert, _) = (cert, key.clone());
    let config = config_in(dir.path(), free_loopback_port(), "")
        .replace("[auth]", &format!("{}[auth]", tls(&cert, &key)));
    let (ok, text) = doctor(dir.path(), &config, &[]);
    assert!(!ok);
    assert!(text.contains("FAIL  c"), "{text}");
}

#[test]
fn low_inotify_limits_a_missing_pam_file_and_a_bad_config_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_in(dir.path(), free_loopback_port(), "").replace(
        "passdb = [",
        "passdb = [\"pam:roost-doctor-test-missing\", ",
    );
    let path = dir.path().join("doctor.toml");
    std::fs::write(&path, &config).unwrap();
    let proc_sys = dir.path().join("low");
    write_inotify(&proc_sys, 100, 8);
    let out = Command::new(roost_bin())
        .args(["doctor", "-c"])
        .arg(&path)
        .arg("--proc-sys")
        .arg(&proc_sys)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(
        text.contains("WARN  inotify: fs.inotify.max_user_watches is 100"),
        "{text}"
    );
    assert!(
        text.contains("WARN  inotify: fs.inotify.max_user_instances is 8"),
        "{text}"
    );
    assert!(
        text.contains("FAIL  pam: /etc/pam.d/roost-doctor-test-missing is missing"),
        "{text}"
    );

    let (ok, text) = doctor(dir.path(), "protocols = [\"imap4\"]\n", &[]);
    assert!(!ok);
    assert!(
        text.contains("FAIL  config:") && text.contains("protocols[0]"),
        "{text}"
    );
}

#[test]
fn a_private_directory_on_the_way_names_path_user_and_key() {
    if !is_root() {
        eprintln!("skipped: the login process's reach is checked when roost runs as root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let private = dir.path().join("private");
    std::fs::create_dir(&private).unwrap();
    std::fs::set_permissions(
        &private,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let config = with_submission(dir.path(), &private.join("queue"));
    let (ok, text) = doctor(dir.path(), &config, &[]);
    assert!(!ok, "{text}");
    assert!(
        text.contains("permission denied for user nobody")
            && text.contains(&format!("chmod o+x {}", private.display()))
            && text.contains("[smtp] queue_dir"),
        "{text}"
    );
}

#[test]
fn a_message_waiting_in_the_queue_for_days_is_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let queue = dir.path().join("queue");
    std::fs::create_dir_all(&queue).unwrap();
    // An envelope as the queue writes it: magic, length and CRC, then the JSON.
    let created = now() - 2 * 86_400;
    let json = format!(
        "{{\"id\":\"1700000000.ab12\",\"from\":\"a@example.org\",\"created\":{created},\"attempts\":9,\"next_attempt\":{created},\"recipients\":[{{\"address\":\"b@far.example\"}}]}}"
    );
    let mut envelope = format!(
        "ROOSTQ 1 {} {:08x}\n",
        json.len(),
        crc32fast::hash(json.as_bytes())
    )
    .into_bytes();
    envelope.extend_from_slice(json.as_bytes());
    std::fs::write(queue.join("1700000000.ab12.env"), envelope).unwrap();
    let config = with_submission(dir.path(), &queue);
    let (_, text) = doctor(dir.path(), &config, &[]);
    assert!(
        text.contains("WARN  queue: 1 message(s), the oldest waiting 48 h"),
        "{text}"
    );
}

#[test]
fn a_spam_scanner_that_does_not_answer_is_reported_with_what_it_costs() {
    let dir = tempfile::tempdir().unwrap();
    let dead = free_loopback_port();
    let spam =
        format!("[spam]\nscanner = \"spamd\"\naddress = \"127.0.0.1:{dead}\"\ntimeout_secs = 2\n");
    let config = config_in(dir.path(), free_loopback_port(), &spam);
    let (ok, text) = doctor(dir.path(), &config, &[]);
    assert!(!ok, "{text}");
    assert!(text.contains("FAIL  spam scanner"), "{text}");
    assert!(text.contains("deferred (451) until it answers"), "{text}");
    let config = config_in(
        dir.path(),
        free_loopback_port(),
        &format!("{spam}on_failure = \"accept\"\n"),
    );
    let (_, text) = doctor(dir.path(), &config, &[]);
    assert!(text.contains("WARN  spam scanner"), "{text}");
    assert!(text.contains("mail passes unscanned"), "{text}");
}
