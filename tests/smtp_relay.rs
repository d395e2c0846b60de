//! The relayhost over TLS with a password: STARTTLS and implicit TLS against a smarthost whose
//! certificate comes from a test CA (`relayhost_ca`), AUTH PLAIN and LOGIN from a Postfix-style
//! `relayhost_password_file`, and the refusals a user would notice: a wrong password, a
//! smarthost without STARTTLS, a certificate from the wrong CA — each leaves the message
//! queued with its reason, and the password is never sent in clear.

mod common;
mod smarthost;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{base_config, roost_bin, LineClient, TestServer, PASSWORD};
use smarthost::{Options, Security, Smarthost, TestCa};

const MSG: &str = "From: <plain@example.com>\r\nTo: <friend@elsewhere.example>\r\nSubject: relayed\r\nMessage-ID: <r1@client.test>\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\nHello over TLS\r\n.dot line\r\n";

/// The files roost is configured with: the CA it trusts and the password file.
struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new(ca: &TestCa, password_line: &str) -> Files {
        let dir = tempfile::tempdir().unwrap();
        ca.write_ca(&dir.path().join("ca.pem"));
        let passwd = dir.path().join("relay_passwd");
        std::fs::write(&passwd, format!("# relayhost login\n{password_line}\n")).unwrap();
        std::fs::set_permissions(&passwd, std::fs::Permissions::from_mode(0o600)).unwrap();
        Files { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}

fn start(relayhost: &str, files: &Files) -> TestServer {
    let smtp = format!(
        "[smtp]\nlocal_domains = [\"example.com\"]\nrelayhost = \"{relayhost}\"\nrelayhost_ca = \"{}\"\nrelayhost_password_file = \"{}\"\n",
        files.path("ca.pem"),
        files.path("relay_passwd")
    );
    TestServer::start(&base_config(&["submission"], &smtp))
}

fn smarthost(tls: Security, mechanisms: &'static str, ca: &TestCa) -> Smarthost {
    let opts = Options {
        tls,
        login: Some(("relayuser".into(), "relay secret".into())),
        mechanisms,
        ..Options::default()
    };
    Smarthost::start(opts, ca)
}

/// Submits [`MSG`] as user plain to friend@elsewhere.example; returns the queue id.
fn submit(server: &TestServer) -> String {
    submit_to(server, &["friend@elsewhere.example"])
}

/// Submits [`MSG`] as user plain to `rcpts`; returns the queue id.
fn submit_to(server: &TestServer, rcpts: &[&str]) -> String {
    use base64::Engine;
    let mut c = LineClient::connect(server.addr("submission"));
    assert!(c.line().starts_with("220 "));
    c.cmd("EHLO client.test", "250 ");
    let blob = base64::engine::general_purpose::STANDARD.encode(format!("\0plain\0{PASSWORD}"));
    assert!(c.cmd(&format!("AUTH PLAIN {blob}"), "")[0].starts_with("235 "));
    assert!(c.cmd("MAIL FROM:<plain@example.com>", "")[0].starts_with("250 "));
    for rcpt in rcpts {
        assert!(c.cmd(&format!("RCPT TO:<{rcpt}>"), "")[0].starts_with("250 "));
    }
    assert!(c.cmd("DATA", "")[0].starts_with("354 "));
    let wire = MSG.replace("\r\n.", "\r\n..");
    let reply = c.cmd(&format!("{wire}."), "").remove(0);
    assert!(reply.starts_with("250 "), "{reply}");
    reply.trim_end().rsplit(' ').next().unwrap().to_string()
}

fn queue_list(server: &TestServer) -> String {
    let out = Command::new(roost_bin())
        .args(["queue", "-c"])
        .arg(server.dir.path().join("roost.toml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// Waits (bounded) until the entry was attempted once and is still queued; returns the listing.
fn wait_queued(server: &TestServer, id: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let listed = queue_list(server);
        if listed.contains(id) && listed.contains("(attempts: 1)") {
            return listed;
        }
        assert!(Instant::now() < deadline, "not attempted: {listed}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn relayhost(scheme: &str, sm: &Smarthost) -> String {
    format!("{scheme}localhost:{}", sm.addr.port())
}

/// Asserts the smarthost's transcript: nothing about the password or the mail before TLS.
fn nothing_sensitive_in_clear(sm: &Smarthost) {
    for seen in sm.seen() {
        let upper = seen.line.to_ascii_uppercase();
        let sensitive = ["AUTH", "MAIL", "RCPT"]
            .iter()
            .any(|p| upper.starts_with(p));
        assert!(seen.tls || !sensitive, "sent in clear: {:?}", seen.line);
    }
}

#[test]
fn starttls_and_auth_plain_deliver_and_the_message_arrives_byte_exact() {
    let ca = TestCa::new();
    let sm = smarthost(Security::StartTls, "LOGIN PLAIN", &ca);
    let files = Files::new(
        &ca,
        &format!("[localhost]:{} relayuser:relay secret", sm.addr.port()),
    );
    let server = start(&relayhost("smtp+starttls://", &sm), &files);
    submit(&server);
    let got = sm.wait(1).remove(0);
    assert!(got.tls && got.authenticated, "{got:?}");
    assert_eq!(got.mail, "MAIL FROM:<plain@example.com>");
    assert_eq!(got.rcpts, ["RCPT TO:<friend@elsewhere.example>"]);
    let data = String::from_utf8(got.data).unwrap();
    assert!(
        data.ends_with("\r\n\r\nHello over TLS\r\n.dot line\r\n"),
        "{data:?}"
    );
    assert!(data.contains("Subject: relayed\r\n"), "{data}");
    assert!(sm.saw("STARTTLS"));
    assert!(sm.saw("AUTH PLAIN "), "PLAIN is preferred: {:?}", sm.seen());
    assert!(!sm.saw("AUTH LOGIN"));
    nothing_sensitive_in_clear(&sm);
    assert!(
        !server.log_text().contains("relay secret"),
        "the password is never logged"
    );
}

#[test]
fn implicit_tls_with_auth_login_delivers() {
    let ca = TestCa::new();
    let sm = smarthost(Security::Implicit, "LOGIN", &ca);
    let files = Files::new(&ca, "localhost relayuser:relay secret");
    let server = start(&relayhost("smtps://", &sm), &files);
    submit(&server);
    let got = sm.wait(1).remove(0);
    assert!(got.tls && got.authenticated, "{got:?}");
    assert!(sm.saw("AUTH LOGIN"));
    assert!(sm.seen().iter().all(|s| s.tls), "every line over TLS");
    let _ = server;
}

#[test]
fn a_plain_relayhost_with_a_password_switches_to_starttls_and_recipients_fail_alone() {
    let ca = TestCa::new();
    let opts = Options {
        tls: Security::StartTls,
        login: Some(("relayuser".into(), "relay secret".into())),
        refuse: Some("gone@".into()),
        ..Options::default()
    };
    let sm = Smarthost::start(opts, &ca);
    let files = Files::new(&ca, "localhost relayuser:relay secret");
    let server = start(&relayhost("", &sm), &files);
    submit_to(
        &server,
        &["gone@elsewhere.example", "friend@elsewhere.example"],
    );
    let got = sm.wait(1).remove(0);
    assert!(got.tls && got.authenticated, "{got:?}");
    assert_eq!(got.rcpts, ["RCPT TO:<friend@elsewhere.example>"]);
    nothing_sensitive_in_clear(&sm);
    // The refused recipient bounces on its own; the sender (a local user) gets the report.
    let deadline = Instant::now() + Duration::from_secs(20);
    let bounce = loop {
        let inbox = server.mail_root().join("plain");
        let found = ["new", "cur"]
            .iter()
            .flat_map(|d| {
                std::fs::read_dir(inbox.join(d))
                    .into_iter()
                    .flatten()
                    .flatten()
            })
            .next();
        if let Some(entry) = found {
            break std::fs::read_to_string(entry.path()).unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "no bounce: {}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        bounce.contains("Final-Recipient: rfc822; gone@elsewhere.example\r\nAction: failed\r\nStatus: 5.1.1\r\n"),
        "{bounce}"
    );
    assert!(
        !bounce.contains("friend@elsewhere.example\r\nAction"),
        "{bounce}"
    );
}

#[test]
fn a_wrong_password_delivers_nothing_and_keeps_the_message_queued_with_the_reply() {
    let ca = TestCa::new();
    let sm = smarthost(Security::StartTls, "PLAIN LOGIN", &ca);
    let files = Files::new(&ca, "localhost relayuser:wrong one");
    let server = start(&relayhost("smtp+starttls://", &sm), &files);
    let id = submit(&server);
    let listed = wait_queued(&server, &id);
    assert!(
        listed.contains("535 5.7.8 Authentication credentials invalid"),
        "{listed}"
    );
    assert!(listed.contains("friend@elsewhere.example"), "{listed}");
    assert!(sm.received().is_empty());
    assert!(!sm.saw("MAIL"), "no transaction after a refused login");
    nothing_sensitive_in_clear(&sm);
}

#[test]
fn without_starttls_the_password_is_never_sent() {
    let ca = TestCa::new();
    let sm = smarthost(Security::Plain, "PLAIN LOGIN", &ca);
    let files = Files::new(&ca, "localhost relayuser:relay secret");
    let server = start(&relayhost("", &sm), &files);
    let id = submit(&server);
    let listed = wait_queued(&server, &id);
    assert!(
        listed.contains("relayhost offers no TLS; not sending the password in clear"),
        "{listed}"
    );
    assert!(sm.saw("EHLO"), "it did connect: {:?}", sm.seen());
    assert!(
        !sm.saw("AUTH"),
        "the smarthost never saw AUTH: {:?}",
        sm.seen()
    );
    assert!(!sm.saw("MAIL"));
    assert!(sm.received().is_empty());
}

#[test]
fn a_certificate_from_another_ca_is_refused_before_anything_is_sent() {
    let ca = TestCa::new();
    let other = TestCa::new();
    for (tls, scheme) in [
        (Security::StartTls, "smtp+starttls://"),
        (Security::Implicit, "smtps://"),
    ] {
        let sm = smarthost(tls, "PLAIN", &ca);
        // roost trusts `other`, not the CA that signed the smarthost's certificate.
        let files = Files::new(&other, "localhost relayuser:relay secret");
        let server = start(&relayhost(scheme, &sm), &files);
        let id = submit(&server);
        let listed = wait_queued(&server, &id);
        assert!(listed.to_lowercase().contains("certificate"), "{listed}");
        assert!(!sm.saw("AUTH") && !sm.saw("MAIL"), "{:?}", sm.seen());
        assert!(sm.received().is_empty());
    }
}

#[test]
fn a_password_file_others_can_read_is_a_config_error() {
    let ca = TestCa::new();
    let files = Files::new(&ca, "localhost relayuser:relay secret");
    let passwd = Path::new(&files.path("relay_passwd")).to_path_buf();
    std::fs::set_permissions(&passwd, std::fs::Permissions::from_mode(0o644)).unwrap();
    let smtp = format!(
        "[smtp]\nlocal_domains = [\"example.com\"]\nrelayhost = \"smtp+starttls://localhost:2525\"\nrelayhost_password_file = \"{}\"\n",
        passwd.display()
    );
    let log = TestServer::try_start(&base_config(&["submission"], &smtp))
        .err()
        .expect("refused at startup");
    assert!(log.contains("smtp.relayhost_password_file"), "{log}");
    assert!(
        log.contains("accessible by group or others (mode 644)"),
        "{log}"
    );
    assert!(!log.contains("relay secret"), "{log}");
    if common::is_root() {
        // Root's password file must be root's: its owner could change what root sends.
        std::fs::set_permissions(&passwd, std::fs::Permissions::from_mode(0o600)).unwrap();
        let uid = common::uid_of("nobody").unwrap();
        std::os::unix::fs::chown(&passwd, Some(uid), None).unwrap();
        let log = TestServer::try_start(&base_config(&["submission"], &smtp))
            .err()
            .expect("refused at startup");
        assert!(
            log.contains(&format!("must be owned by root (it belongs to uid {uid})")),
            "{log}"
        );
    }
}
