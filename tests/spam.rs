//! The spam scanner in the delivery path, against a real SpamAssassin `spamd` and a real
//! rspamd (Debian's packages, installed by `.ci/setup`): GTUBE is scored as spam and filed into Junk by
//! the built-in site script, an ordinary message reaches INBOX marked as ham, port 25 refuses
//! what scores over `reject_score` while LMTP files it, and a scanner that is down costs a
//! temporary failure or a pass-through, as configured — never a lost message.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{
    base_config, free_loopback_port, imap_login, imap_ok, port_opens, LineClient, TestServer,
};

/// SpamAssassin's Generic Test for Unsolicited Bulk Email.
const GTUBE: &str = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";

/// A spamd on a loopback port, stopped when dropped.
struct Spamd {
    child: Child,
    port: u16,
}

impl Spamd {
    fn start() -> Spamd {
        let port = free_loopback_port();
        // Debian puts spamd in /usr/sbin, which an ordinary user's PATH may lack.
        let program = ["/usr/sbin/spamd", "/usr/bin/spamd"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .unwrap_or("spamd");
        let child = Command::new(program)
            .args(["-x", "-L", "-m", "2", "--syslog=stderr"])
            .arg("--listen=127.0.0.1:".to_string() + &port.to_string())
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spamd runs (Debian package spamd, installed by .ci/setup)");
        let spamd = Spamd { child, port };
        assert!(
            port_opens(port, Duration::from_secs(90)),
            "spamd did not start listening"
        );
        spamd
    }
}

impl Drop for Spamd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An rspamd (Debian's `rspamd`, installed by `.ci/setup`) with its stock rules, its workers
/// on loopback ports and its state in a temporary directory; stopped when dropped.
struct Rspamd {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Rspamd {
    fn start() -> Rspamd {
        let dir = tempfile::tempdir().unwrap();
        let local = dir.path().join("local.d");
        std::fs::create_dir_all(&local).unwrap();
        let port = free_loopback_port();
        for (worker, p) in [
            ("normal", port),
            ("controller", free_loopback_port()),
            ("proxy", free_loopback_port()),
        ] {
            let text = format!("bind_socket = \"127.0.0.1:{p}\";\n");
            std::fs::write(local.join(format!("worker-{worker}.inc")), text).unwrap();
        }
        // No DNS lookups from tests: the resolver points at a loopback port nothing serves.
        let dns = "dns { nameserver = [\"127.0.0.1:9\"]; timeout = 1s; retransmits = 1; }\n";
        std::fs::write(local.join("options.inc"), dns).unwrap();
        let status = Command::new("chmod")
            .args(["-R", "a+rwX"])
            .arg(dir.path())
            .status();
        assert!(status.is_ok_and(|s| s.success()));
        let var = |name: &str| format!("--var={name}={}", dir.path().display());
        let mut command = Command::new("rspamd");
        command
            .arg("-f")
            .args([
                var("LOCAL_CONFDIR"),
                var("DBDIR"),
                var("RUNDIR"),
                var("LOGDIR"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if common::is_root() {
            command.args(["-u", "nobody", "-g", "nogroup"]);
        }
        let child = command
            .spawn()
            .expect("rspamd runs (Debian package rspamd, installed by .ci/setup)");
        let rspamd = Rspamd {
            child,
            port,
            _dir: dir,
        };
        assert!(
            port_opens(port, Duration::from_secs(120)),
            "rspamd did not start listening"
        );
        rspamd
    }
}

impl Drop for Rspamd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config(protocols: &[&str], spam: &str) -> String {
    base_config(
        protocols,
        &format!("[smtp]\nlocal_domains = [\"example.com\"]\n[spam]\n{spam}"),
    )
}

/// Sends one message over SMTP (port 25) or LMTP; returns the reply to the final dot.
fn send(server: &TestServer, protocol: &str, subject: &str, body: &str) -> String {
    let mut c = LineClient::connect(server.addr(protocol));
    assert!(c.line().starts_with("220 "));
    let hello = if protocol == "lmtp" { "LHLO" } else { "EHLO" };
    c.send(&format!("{hello} sender.test\r\n"));
    while c.line().starts_with("250-") {}
    for line in [
        "MAIL FROM:<someone@far.example>",
        "RCPT TO:<plain@example.com>",
    ] {
        let reply = c.cmd(line, "")[0].clone();
        assert!(reply.starts_with("250"), "{line}: {reply}");
    }
    assert!(c.cmd("DATA", "")[0].starts_with("354"));
    c.send(&format!(
        "From: Someone <someone@far.example>\r\nTo: plain@example.com\r\nSubject: {subject}\r\n\
         Message-ID: <{subject}@far.example>\r\nDate: Wed, 2 Dec 2026 10:00:00 +0000\r\n\r\n{body}\r\n.\r\n"
    ));
    c.line().trim_end().to_string()
}

/// The header of every message in a folder, over IMAP.
fn headers_in(server: &TestServer, folder: &str) -> Vec<String> {
    let mut c = imap_login(server, "plain");
    let (_, tagged) = common::imap_run(&mut c, "s", &format!("SELECT {folder}"));
    if !tagged.starts_with("s OK") {
        return Vec::new();
    }
    let (lines, _) = imap_ok(&mut c, "f", "UID FETCH 1:* BODY.PEEK[HEADER]");
    lines.into_iter().filter(|l| !l.starts_with("* ")).collect()
}

fn joined(lines: &[String]) -> String {
    lines.join("\n")
}

#[test]
fn gtube_goes_to_junk_and_ham_to_inbox_with_the_verdict_in_the_header() {
    let spamd = Spamd::start();
    let server = TestServer::start(&config(
        &["imap", "smtp"],
        &format!(
            "scanner = \"spamd\"\naddress = \"127.0.0.1:{}\"\n",
            spamd.port
        ),
    ));
    let reply = send(&server, "smtp", "gtube", GTUBE);
    assert!(reply.starts_with("250 "), "{reply}");
    let reply = send(&server, "smtp", "hello", "Lunch on Friday?");
    assert!(reply.starts_with("250 "), "{reply}");
    let junk = joined(&headers_in(&server, "Junk"));
    assert!(junk.contains("Subject: gtube"), "GTUBE not in Junk: {junk}");
    assert!(junk.contains("X-Spam-Flag: YES"), "{junk}");
    assert!(junk.contains("X-Spam-Status: Yes, score="), "{junk}");
    assert!(junk.contains("GTUBE"), "the matching rule is named: {junk}");
    let inbox = joined(&headers_in(&server, "INBOX"));
    assert!(inbox.contains("Subject: hello"), "{inbox}");
    assert!(!inbox.contains("Subject: gtube"), "{inbox}");
    assert!(inbox.contains("X-Spam-Status: No, score="), "{inbox}");
    assert!(inbox.contains("X-Spam-Score: "), "{inbox}");
    // `roost doctor` asks the same scanner about GTUBE.
    let out = Command::new(common::roost_bin())
        .args(["doctor", "-c"])
        .arg(server.dir.path().join("roost.toml"))
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    let line = format!(
        "ok    spam scanner 127.0.0.1:{}: answers; GTUBE scored ",
        spamd.port
    );
    assert!(
        report.contains(&line) && report.contains(" (spam)\n"),
        "{report}"
    );
}

#[test]
fn port_25_refuses_over_the_reject_score_and_lmtp_files_it() {
    let spamd = Spamd::start();
    let server = TestServer::start(&config(
        &["imap", "smtp", "lmtp"],
        &format!(
            "scanner = \"spamd\"\naddress = \"127.0.0.1:{}\"\nreject_score = 100.0\n",
            spamd.port
        ),
    ));
    assert_eq!(
        send(&server, "smtp", "gtube", GTUBE),
        "550 5.7.1 Message refused as spam"
    );
    let lmtp = send(&server, "lmtp", "gtube-lmtp", GTUBE);
    assert!(lmtp.starts_with("250 "), "{lmtp}");
    let junk = joined(&headers_in(&server, "Junk"));
    assert!(junk.contains("Subject: gtube-lmtp"), "{junk}");
    assert!(!joined(&headers_in(&server, "INBOX")).contains("Subject: gtube"));
}

#[test]
fn rspamd_scores_through_its_http_api() {
    let rspamd = Rspamd::start();
    let server = TestServer::start(&config(
        &["imap", "smtp"],
        &format!(
            "scanner = \"rspamd\"\naddress = \"127.0.0.1:{}\"\n",
            rspamd.port
        ),
    ));
    assert!(send(&server, "smtp", "gtube", GTUBE).starts_with("250 "));
    assert!(send(&server, "smtp", "hello", "Lunch on Friday?").starts_with("250 "));
    let junk = joined(&headers_in(&server, "Junk"));
    assert!(junk.contains("Subject: gtube"), "GTUBE not in Junk: {junk}");
    assert!(junk.contains("X-Spamd-Result: default: True ["), "{junk}");
    assert!(junk.contains("action=reject"), "{junk}");
    let inbox = joined(&headers_in(&server, "INBOX"));
    assert!(inbox.contains("Subject: hello"), "{inbox}");
    assert!(
        inbox.contains("X-Spamd-Result: default: False ["),
        "{inbox}"
    );
}

#[test]
fn a_scanner_that_is_down_costs_a_retry_or_a_pass_never_the_message() {
    let dead = free_loopback_port();
    let server = TestServer::start(&config(
        &["imap", "smtp"],
        &format!("scanner = \"spamd\"\naddress = \"127.0.0.1:{dead}\"\ntimeout_secs = 5\n"),
    ));
    assert_eq!(
        send(&server, "smtp", "retry", "hello"),
        "451 4.7.1 Content scanner unavailable; try again later"
    );
    assert!(headers_in(&server, "INBOX").is_empty());
    let server = TestServer::start(&config(
        &["imap", "smtp"],
        &format!("scanner = \"spamd\"\naddress = \"127.0.0.1:{dead}\"\non_failure = \"accept\"\n"),
    ));
    assert!(send(&server, "smtp", "passed", "hello").starts_with("250 "));
    let inbox = joined(&headers_in(&server, "INBOX"));
    assert!(
        inbox.contains("Subject: passed") && !inbox.contains("X-Spam"),
        "{inbox}"
    );
}

#[test]
fn a_bad_spam_section_is_a_config_error_with_its_line() {
    let server = TestServer::try_start(&config(&["smtp"], "scanner = \"clamav\"\n"));
    let log = server.err().expect("refused");
    assert!(log.contains("spam.scanner"), "{log}");
    assert!(log.contains("must be \"spamd\" or \"rspamd\""), "{log}");
}
