//! The shared authentication layer, through real sockets and Python's stdlib clients:
//! every passwd-file scheme, every front-end's login paths, the failure delay, the log lines,
//! and the plaintext-without-TLS policy.

mod common;

use std::time::{Duration, Instant};

use common::{base_config, mail_client, mail_client_ok, LineClient, TestServer, PASSWORD};

const ALL: &[&str] = &[
    "imap",
    "imaps",
    "pop3",
    "pop3s",
    "submission",
    "submissions",
];

#[test]
fn every_scheme_logs_in_over_imap_pop3_and_submission() {
    let server = TestServer::start(&base_config(ALL, ""));
    for user in ["plain", "sha512", "sha256", "blf", "argon"] {
        let creds = ["--user", user, "--password", PASSWORD];
        let out = mail_client_ok("imap", server.addr("imap"), &creds);
        assert!(out.contains("LOGGED-IN"), "{out}");
        let out = mail_client_ok(
            "pop3",
            server.addr("pop3s"),
            &[&creds[..], &["--tls", "implicit"]].concat(),
        );
        assert!(out.contains("STAT 0 0"), "{out}");
        let out = mail_client_ok(
            "smtp",
            server.addr("submissions"),
            &[&creds[..], &["--tls", "implicit", "--auth", "plain"]].concat(),
        );
        assert!(out.contains("LOGGED-IN 235"), "{out}");
    }
    let line = server.wait_for_log(
        "imap-login: Login: user=<argon>, method=PLAIN, rip=127.0.0.1, lip=127.0.0.1",
    );
    assert!(
        !line.contains("TLS"),
        "plain IMAP is not marked TLS: {line}"
    );
    server.wait_for_log(
        "pop3-login: Login: user=<blf>, method=PLAIN, rip=127.0.0.1, lip=127.0.0.1, TLS",
    );
}

#[test]
fn sasl_plain_and_login_with_and_without_initial_response() {
    let server = TestServer::start(&base_config(ALL, ""));
    let creds = ["--user", "sha512", "--password", PASSWORD];
    for auth in ["plain", "login-mech"] {
        let out = mail_client_ok(
            "imap",
            server.addr("imaps"),
            &[&creds[..], &["--tls", "implicit", "--auth", auth]].concat(),
        );
        assert!(out.contains("LOGGED-IN"), "{auth}: {out}");
    }
    let out = mail_client_ok(
        "pop3",
        server.addr("pop3"),
        &[&creds[..], &["--auth", "plain"]].concat(),
    );
    assert!(out.contains("LOGGED-IN"), "{out}");
    let out = mail_client_ok(
        "smtp",
        server.addr("submission"),
        &[&creds[..], &["--tls", "starttls", "--auth", "login"]].concat(),
    );
    assert!(out.contains("LOGGED-IN 235"), "{out}");
    server.wait_for_log("imap-login: Login: user=<sha512>, method=LOGIN");

    // SASL-IR in one line, and the two-step PLAIN continuation, byte-exact.
    let mut c = LineClient::connect(server.addr("imap"));
    c.line();
    let ir = "AHNoYTUxMgBTM2NyZXQgcGFzcw=="; // \0sha512\0S3cret pass
    let reply = c.cmd(&format!("a1 AUTHENTICATE PLAIN {ir}"), "a1 ");
    assert!(
        reply
            .last()
            .unwrap()
            .starts_with("a1 OK [CAPABILITY IMAP4rev1"),
        "{reply:?}"
    );
    let mut c = LineClient::connect(server.addr("imap"));
    c.line();
    assert_eq!(c.cmd("a1 AUTHENTICATE PLAIN", "+"), vec!["+ \r\n"]);
    let reply = c.cmd(ir, "a1 ");
    assert!(reply[0].starts_with("a1 OK"), "{reply:?}");
    let mut c = LineClient::connect(server.addr("imap"));
    c.line();
    c.cmd("a1 AUTHENTICATE LOGIN", "+");
    assert_eq!(
        c.cmd("*", "a1 "),
        vec!["a1 BAD Authentication aborted by client.\r\n"]
    );
}

#[test]
fn wrong_password_is_delayed_refused_and_logged() {
    let server = TestServer::start(&base_config(&["imap", "pop3", "submission"], ""));
    let started = Instant::now();
    let run = mail_client(
        "imap",
        server.addr("imap"),
        &["--user", "sha512", "--password", "wrong"],
    );
    assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("AUTHENTICATIONFAILED"),
        "{}",
        run.stdout
    );
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "failure answered before the configured delay"
    );
    server.wait_for_log("imap-login: Aborted login (Authentication failed): user=<sha512>, method=PLAIN, rip=127.0.0.1");

    let run = mail_client(
        "pop3",
        server.addr("pop3"),
        &["--user", "nobody-here", "--password", "x"],
    );
    assert_eq!(run.code, 3);
    assert!(
        run.stdout.contains("-ERR [AUTH] Authentication failed."),
        "{}",
        run.stdout
    );
    let run = mail_client(
        "smtp",
        server.addr("submission"),
        &["--user", "plain", "--password", "x", "--auth", "plain"],
    );
    assert_eq!(run.code, 3);
    assert!(run.stdout.contains("535"), "{}", run.stdout);
}

#[test]
fn repeated_failures_from_one_address_are_throttled() {
    let extra = "[auth]\npassdb = [\"passwd-file:users\"]\nfailure_delay_ms = 10\nmax_failures_per_ip = 3\n";
    let server = TestServer::start(&base_config(&["pop3"], extra));
    let mut c = LineClient::connect(server.addr("pop3"));
    c.line();
    for _ in 0..3 {
        c.cmd("USER plain", "+OK");
        assert_eq!(
            c.cmd("PASS wrong", "-ERR"),
            vec!["-ERR [AUTH] Authentication failed.\r\n"]
        );
    }
    c.cmd("USER plain", "+OK");
    let reply = c.cmd(&format!("PASS {PASSWORD}"), "-ERR");
    assert!(
        reply[0].starts_with("-ERR [LOGIN-DELAY]"),
        "even the right password waits: {reply:?}"
    );
}

/// Only 127.0.0.3 is trusted here, so our 127.0.0.1 connections count as remote.
const UNTRUSTED: &str = "[auth]\npassdb = [\"passwd-file:users\"]\nfailure_delay_ms = 300\ntrusted_networks = [\"127.0.0.3/32\"]\n";

#[test]
fn plaintext_is_refused_without_tls_from_untrusted_networks() {
    let server = TestServer::start(&base_config(&["imap", "pop3", "submission"], UNTRUSTED));
    let mut c = LineClient::connect(server.addr("imap"));
    let greeting = c.line();
    assert!(
        greeting.contains("LOGINDISABLED") && !greeting.contains("AUTH=PLAIN"),
        "{greeting}"
    );
    let reply = c.cmd(&format!("a1 LOGIN plain \"{PASSWORD}\""), "a1 ");
    assert_eq!(reply, vec!["a1 NO [PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.\r\n"]);

    let mut c = LineClient::connect(server.addr("pop3"));
    c.line();
    let reply = c.cmd("USER plain", "-ERR");
    assert!(
        reply[0].starts_with("-ERR [AUTH] Plaintext authentication disallowed"),
        "{reply:?}"
    );

    let mut c = LineClient::connect(server.addr("submission"));
    c.line();
    let ehlo = c.cmd("EHLO client.test", "250 ");
    assert!(
        !ehlo.iter().any(|l| l.contains("AUTH")),
        "no AUTH before STARTTLS: {ehlo:?}"
    );
    assert_eq!(
        c.cmd("AUTH PLAIN AHBsYWluAHg=", "5"),
        vec!["538 5.7.11 Encryption required for requested authentication mechanism\r\n"]
    );

    // After STARTTLS/STLS the same logins work.
    let creds = ["--user", "plain", "--password", PASSWORD];
    mail_client_ok(
        "imap",
        server.addr("imap"),
        &[&creds[..], &["--tls", "starttls"]].concat(),
    );
    mail_client_ok(
        "pop3",
        server.addr("pop3"),
        &[&creds[..], &["--tls", "starttls"]].concat(),
    );
    mail_client_ok(
        "smtp",
        server.addr("submission"),
        &[&creds[..], &["--tls", "starttls", "--auth", "plain"]].concat(),
    );
}

#[test]
fn roost_pw_hashes_verify_and_unknown_schemes_are_refused() {
    let out = std::process::Command::new(common::roost_bin())
        .args(["pw", "-s", "MD5-CRYPT", "-p", "x"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown scheme \"MD5-CRYPT\""));
    let out = std::process::Command::new(common::roost_bin())
        .args(["pw", "-p", "x"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("{SHA512-CRYPT}$6$"));
}

/// The IMAP twin of POP3's STLS injection test: a LOGIN pipelined behind STARTTLS in the same
/// packet is plaintext from before the handshake and is never executed.
#[test]
fn imap_commands_pipelined_after_starttls_are_discarded() {
    let server = TestServer::start(&base_config(&["imap"], ""));
    let mut c = LineClient::connect(server.addr("imap"));
    c.line();
    c.send(&format!(
        "a STARTTLS\r\nb LOGIN plain \"{PASSWORD}\"\r\nc CAPABILITY\r\n"
    ));
    assert_eq!(c.line(), "a OK Begin TLS negotiation now.\r\n");
    let mut tls = c.into_tls();
    let reply = tls.cmd("d NOOP", "d ");
    assert_eq!(
        reply,
        vec!["d OK NOOP completed.\r\n"],
        "b and c were dropped"
    );
    let reply = tls.cmd("e LOGOUT", "e ");
    assert!(reply.last().unwrap().starts_with("e OK"), "{reply:?}");
}

/// One POP3 USER/PASS login on a fresh connection from `source`; the first reply line to PASS.
fn pop3_login(server: &TestServer, source: &str, user: &str, password: &str) -> String {
    let mut c = LineClient::connect_from(server.addr("pop3"), source.parse().unwrap());
    c.line();
    c.cmd(&format!("USER {user}"), "+OK");
    let reply = c.cmd(&format!("PASS {password}"), "").remove(0);
    if reply.starts_with("+OK") {
        c.cmd("QUIT", "+OK");
    }
    reply
}

#[test]
fn a_valid_account_does_not_reset_the_address_count() {
    let extra = "[auth]\npassdb = [\"passwd-file:users\"]\nfailure_delay_ms = 10\nmax_failures_per_ip = 3\nmax_failures_per_user = 100\n";
    let server = TestServer::start(&base_config(&["pop3"], extra));
    let me = "127.0.0.1";
    for _ in 0..2 {
        let reply = pop3_login(&server, me, "sha256", "guess");
        assert_eq!(reply, "-ERR [AUTH] Authentication failed.\r\n");
    }
    // The attacker's own valid account logs in between guesses...
    assert!(pop3_login(&server, me, "plain", PASSWORD).starts_with("+OK"));
    pop3_login(&server, me, "sha256", "guess");
    // ...and still the address is refused after the third wrong guess.
    let reply = pop3_login(&server, me, "plain", PASSWORD);
    assert!(reply.starts_with("-ERR [LOGIN-DELAY]"), "{reply}");
    // Another address is not affected.
    assert!(pop3_login(&server, "127.0.0.2", "plain", PASSWORD).starts_with("+OK"));
}

#[test]
fn guesses_at_one_user_from_many_addresses_are_throttled() {
    let extra = "[auth]\npassdb = [\"passwd-file:users\"]\nfailure_delay_ms = 10\nmax_failures_per_ip = 100\nmax_failures_per_user = 3\n";
    let server = TestServer::start(&base_config(&["pop3"], extra));
    for n in 2..5 {
        let reply = pop3_login(&server, &format!("127.0.0.{n}"), "sha256", "guess");
        assert_eq!(reply, "-ERR [AUTH] Authentication failed.\r\n");
    }
    let reply = pop3_login(&server, "127.0.0.9", "sha256", PASSWORD);
    assert!(reply.starts_with("-ERR [LOGIN-DELAY]"), "{reply}");
    // Other users, from the same addresses, are not affected.
    assert!(pop3_login(&server, "127.0.0.2", "plain", PASSWORD).starts_with("+OK"));
}

/// Appends entries to the running server's passwd-file (it is re-read when it changes).
fn add_users(server: &TestServer, lines: &str) {
    let path = server.dir.path().join("users");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(lines);
    std::fs::write(&path, text).unwrap();
}

#[test]
fn passwd_file_nologin_deny_and_allow_nets_are_enforced() {
    let server = TestServer::start(&base_config(&["pop3", "imap"], ""));
    add_users(
        &server,
        &format!(
            "moved:{{PLAIN}}{PASSWORD}::::::nologin reason=Your mail moved to mail.example.net\n\
             quiet:{{PLAIN}}{PASSWORD}::::::nologin=y userdb_quota_rule=*:storage=1G\n\
             denied:{{PLAIN}}{PASSWORD}::::::deny=y\n\
             lan:{{PLAIN}}{PASSWORD}::::::allow_nets=10.0.0.0/8,127.0.0.2/32,::1\n"
        ),
    );
    let me = "127.0.0.1";
    let failed = "-ERR [AUTH] Authentication failed.\r\n";
    assert_eq!(
        pop3_login(&server, me, "moved", PASSWORD),
        "-ERR [AUTH] Your mail moved to mail.example.net\r\n"
    );
    assert_eq!(
        pop3_login(&server, me, "moved", "wrong"),
        failed,
        "reason only with the password"
    );
    assert_eq!(pop3_login(&server, me, "quiet", PASSWORD), failed);
    assert_eq!(pop3_login(&server, me, "denied", PASSWORD), failed);
    assert_eq!(pop3_login(&server, me, "lan", PASSWORD), failed);
    assert!(pop3_login(&server, "127.0.0.2", "lan", PASSWORD).starts_with("+OK"));

    let mut c = LineClient::connect(server.addr("imap"));
    c.line();
    let reply = c.cmd(&format!("a LOGIN moved \"{PASSWORD}\""), "a ");
    assert_eq!(
        reply,
        vec!["a NO [ALERT] Your mail moved to mail.example.net\r\n"]
    );
    let reply = c.cmd(&format!("b LOGIN lan \"{PASSWORD}\""), "b ");
    assert_eq!(
        reply,
        vec!["b NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"]
    );
    server.wait_for_log(
        "Aborted login (Login disabled: Your mail moved to mail.example.net): user=<moved>",
    );
}

#[test]
fn passwd_file_with_an_unsupported_access_field_is_refused_at_start() {
    let users = tempfile::tempdir().unwrap();
    let path = users.path().join("users");
    std::fs::write(
        &path,
        "ok:{PLAIN}x::::::userdb_mail=maildir:~/Mail\nproxied:{PLAIN}x::::::proxy=y host=10.0.0.2\n",
    )
    .unwrap();
    let extra = format!(
        "[auth]\npassdb = [\"passwd-file:{}\"]\nfailure_delay_ms = 10\n",
        path.display()
    );
    let log = match TestServer::try_start(&base_config(&["pop3"], &extra)) {
        Ok(_) => panic!("started with a proxy=y entry it cannot honour"),
        Err(log) => log,
    };
    assert!(
        log.contains(&format!(
            "{}:2: proxy: unsupported passdb extra field",
            path.display()
        )),
        "{log}"
    );
}
