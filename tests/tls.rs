//! TLS: implicit TLS on imaps/pop3s/submissions, STARTTLS/STLS upgrades, the self-signed
//! certificate generated at first start, and certificate reload on SIGHUP without dropping
//! sessions.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{base_config, mail_client_ok, LineClient, TestServer, PASSWORD};

fn fingerprint_of(server: &TestServer, protocol: &str) -> String {
    mail_client_ok("fingerprint", server.addr(protocol), &[])
        .trim()
        .to_string()
}

#[test]
fn self_signed_certificate_is_generated_private_and_its_fingerprint_logged() {
    let server = TestServer::start(&base_config(&["imaps", "pop3s", "submissions"], ""));
    let certs = server.dir.path().join("certs");
    let key_mode = std::fs::metadata(certs.join("server.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(key_mode & 0o777, 0o600, "the private key is private");
    let served = fingerprint_of(&server, "imaps");
    let logged = server.wait_for_log("generated a self-signed certificate");
    assert!(
        logged.contains(&format!("sha256={served}")),
        "log {logged} vs served {served}"
    );
    assert_eq!(fingerprint_of(&server, "pop3s"), served);
    assert_eq!(fingerprint_of(&server, "submissions"), served);
}

#[test]
fn implicit_tls_and_upgrades_carry_real_sessions() {
    let server = TestServer::start(&base_config(
        &[
            "imap",
            "imaps",
            "pop3",
            "pop3s",
            "submission",
            "submissions",
        ],
        "",
    ));
    let creds = ["--user", "plain", "--password", PASSWORD];
    for (protocol, addr, tls) in [
        ("imap", "imaps", "implicit"),
        ("imap", "imap", "starttls"),
        ("pop3", "pop3s", "implicit"),
        ("pop3", "pop3", "starttls"),
        ("smtp", "submissions", "implicit"),
        ("smtp", "submission", "starttls"),
    ] {
        let out = mail_client_ok(
            protocol,
            server.addr(addr),
            &[&creds[..], &["--tls", tls]].concat(),
        );
        assert!(out.contains("LOGGED-IN"), "{addr} {tls}: {out}");
        // After the upgrade, STARTTLS is no longer offered.
        assert!(
            !out.contains("STARTTLS") && !out.contains("STLS"),
            "{addr} {tls}: {out}"
        );
    }
    server.wait_for_log(
        "imap-login: Login: user=<plain>, method=PLAIN, rip=127.0.0.1, lip=127.0.0.1, TLS",
    );
    server.wait_for_log(
        "submission-login: Login: user=<plain>, method=LOGIN, rip=127.0.0.1, lip=127.0.0.1, TLS",
    );
}

#[test]
fn starttls_twice_or_on_implicit_tls_is_refused_and_pipelined_plaintext_is_dropped() {
    let server = TestServer::start(&base_config(&["imap"], ""));
    let mut c = LineClient::connect(server.addr("imap"));
    c.line();
    // A command smuggled after STARTTLS in the same packet must not run inside TLS.
    c.send("a1 STARTTLS\r\na2 LOGOUT\r\n");
    assert_eq!(c.until("a1"), vec!["a1 OK Begin TLS negotiation now.\r\n"]);
    // The server now expects a handshake; plaintext gets no IMAP answer (the handshake fails).
    c.send("a3 NOOP\r\n");
    assert!(
        !c.rest().contains("a2 OK"),
        "the pipelined LOGOUT was discarded"
    );
}

#[test]
fn sighup_reloads_the_certificate_without_dropping_sessions() {
    let server = TestServer::start(&base_config(&["imap", "imaps"], ""));
    let before = fingerprint_of(&server, "imaps");
    let mut session = LineClient::connect(server.addr("imap"));
    session.line();
    session.cmd(&format!("a1 LOGIN plain \"{PASSWORD}\""), "a1 OK");

    // Replace the pair with a fresh one, as certbot would, then SIGHUP.
    let certs = server.dir.path().join("certs");
    make_pair(&certs);
    server.signal("HUP");
    server.wait_for_log("SIGHUP: TLS certificate reloaded");
    // As root the master logs that line when it has sent the pair to the login process,
    // which installs it a moment later: wait (bounded) for new connections to see it.
    let deadline = Instant::now() + Duration::from_secs(10);
    let after = loop {
        let now = fingerprint_of(&server, "imaps");
        if now != before || Instant::now() > deadline {
            break now;
        }
    };
    assert_ne!(before, after, "new connections get the new certificate");
    assert_eq!(
        session.cmd("a2 NOOP", "a2"),
        vec!["a2 OK NOOP completed.\r\n"],
        "old session lives on"
    );

    // A broken pair is refused and the server keeps the one it has.
    std::fs::write(certs.join("server.crt"), "not a certificate").unwrap();
    server.signal("HUP");
    // The log line comes after the decision: nothing about the certificate changes later.
    server.wait_for_log("SIGHUP: TLS reload failed, keeping the old certificate");
    assert_eq!(fingerprint_of(&server, "imaps"), after);
}

/// Writes a new self-signed pair into `certs` with the openssl command-line tool.
fn make_pair(certs: &std::path::Path) {
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
        ])
        .args(["-subj", "/CN=localhost", "-keyout"])
        .arg(certs.join("server.key"))
        .arg("-out")
        .arg(certs.join("server.crt"))
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl is installed (the project's .ci/setup installs it)");
    assert!(status.success());
}
