//! The attacks a security review tried against a running roost, each over a real socket, and
//! the limits that stop them. Every test also checks the blast radius: after the attack a
//! second client still gets served, so one session cannot take the process down (in the
//! one-process mode every user shares that process; CI runs this suite in both modes).

mod common;

use std::time::{Duration, Instant};

use common::{base_config, seed_maildir, LineClient, TestServer, PASSWORD};

fn logged_in(server: &TestServer) -> LineClient {
    let mut c = LineClient::connect(server.addr("imap"));
    c.line();
    c.cmd(&format!("a0 LOGIN plain \"{PASSWORD}\""), "a0 OK");
    c
}

/// The server still serves a fresh login, SELECT and FETCH.
fn still_serving(server: &TestServer) {
    let mut c = logged_in(server);
    c.cmd("z1 SELECT INBOX", "z1 OK");
    c.cmd("z2 NOOP", "z2 OK");
    c.cmd("z3 LOGOUT", "z3 OK");
}

fn last(lines: &[String]) -> &str {
    lines.last().map(String::as_str).unwrap_or("")
}

/// `depth` multiparts, each holding an attached message that holds the next level.
fn nested_message(depth: usize) -> Vec<u8> {
    let mut m = b"Subject: deep\r\nMessage-ID: <deep@x>\r\n".to_vec();
    for i in 0..depth {
        m.extend_from_slice(
            format!(
                "Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n\
                 Content-Type: message/rfc822\r\n\r\n"
            )
            .as_bytes(),
        );
    }
    m.extend_from_slice(b"Subject: leaf\r\n\r\nleaf text\r\n");
    for i in (0..depth).rev() {
        m.extend_from_slice(format!("--b{i}--\r\n").as_bytes());
    }
    m
}

#[test]
fn sixty_thousand_wildcards_in_list_do_not_take_the_server_down() {
    let server = TestServer::start(&base_config(&["imap"], ""));
    seed_maildir(
        &server.mail_root().join("plain"),
        &[b"Subject: a\r\n\r\nx\r\n"],
    );
    let mut c = logged_in(&server);
    // Was one recursion per `*`: "thread has overflowed its stack", every session gone.
    let stars = "*".repeat(60_000);
    let reply = c.cmd(&format!("a1 LIST \"\" \"{stars}\""), "a1 ");
    assert!(last(&reply).starts_with("a1 OK"), "{reply:?}");
    assert!(reply.iter().any(|l| l.contains("INBOX")), "{reply:?}");
    // Past the wildcard limit the pattern is refused, not matched.
    let many = "%a".repeat(101);
    let reply = c.cmd(&format!("a2 LIST \"\" \"{many}\""), "a2 ");
    assert!(last(&reply).starts_with("a2 NO [LIMIT]"), "{reply:?}");
    c.cmd("a3 LOGOUT", "a3 OK");
    still_serving(&server);
}

#[test]
fn a_deeply_nested_message_cannot_crash_fetch_or_search() {
    let server = TestServer::start(&base_config(&["imap"], ""));
    // 20,000 levels (2 MB): the walk over the part tree overflowed the stack; from 30,000
    // levels on so did the drop of mail-parser's tree (the unit tests take 50,000).
    seed_maildir(
        &server.mail_root().join("plain"),
        &[&nested_message(20_000), b"Subject: next\r\n\r\nok\r\n"],
    );
    let mut c = logged_in(&server);
    c.set_timeout(Duration::from_secs(60));
    c.cmd("a1 SELECT INBOX", "a1 OK");
    let reply = c.cmd("a2 FETCH 1 (BODYSTRUCTURE ENVELOPE)", "a2 ");
    assert!(last(&reply).starts_with("a2 OK"), "{:?}", last(&reply));
    assert!(
        reply[0].starts_with("* 1 FETCH (BODYSTRUCTURE ("),
        "{}",
        &reply[0][..60]
    );
    let reply = c.cmd("a3 FETCH 1 BODY[1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.MIME]", "a3 ");
    assert!(last(&reply).starts_with("a3 OK"), "{reply:?}");
    let reply = c.cmd("a4 SEARCH TEXT \"leaf text\"", "a4 ");
    assert!(last(&reply).starts_with("a4 OK"), "{reply:?}");
    c.cmd("a5 LOGOUT", "a5 OK");
    still_serving(&server);
}

#[test]
fn thread_references_survives_long_chains_and_huge_references() {
    let server = TestServer::start(&base_config(&["imap"], ""));
    let mut messages: Vec<Vec<u8>> = Vec::new();
    // One message whose References: names 100,000 ids (about 1.5 MB of header).
    let ids: Vec<String> = (0..100_000).map(|i| format!("<r{i}@x>")).collect();
    messages.push(
        format!(
            "Subject: huge\r\nMessage-ID: <huge@x>\r\nReferences: {}\r\n\r\nx\r\n",
            ids.join("\r\n ")
        )
        .into_bytes(),
    );
    // A reply chain 3,000 messages long, each naming its parent.
    for i in 0..3_000 {
        let parent = if i == 0 {
            String::new()
        } else {
            format!(
                "In-Reply-To: <c{}@x>\r\nReferences: <c{}@x>\r\n",
                i - 1,
                i - 1
            )
        };
        messages.push(
            format!("Subject: Re: chain\r\nMessage-ID: <c{i}@x>\r\n{parent}\r\nx\r\n").into_bytes(),
        );
    }
    let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
    seed_maildir(&server.mail_root().join("plain"), &refs);
    let mut c = logged_in(&server);
    c.cmd("a1 SELECT INBOX", "a1 OK");
    let reply = c.cmd("a2 THREAD REFERENCES UTF-8 ALL", "a2 ");
    assert!(last(&reply).starts_with("a2 OK"), "{:?}", last(&reply));
    let thread = reply
        .iter()
        .find(|l| l.starts_with("* THREAD"))
        .expect("a THREAD line");
    assert!(thread.len() > 3_000 * 2, "{}", &thread[..80]);
    c.cmd("a3 LOGOUT", "a3 OK");
    still_serving(&server);
}

#[test]
fn a_big_literal_before_login_ends_the_connection_unread() {
    let server = TestServer::start(&base_config(&["imap"], ""));
    let mut c = LineClient::connect(server.addr("imap"));
    c.line();
    // LITERAL+: the client does not wait; the server must not read (or buffer) 50 MB.
    c.send("a1 LOGIN {50000000+}\r\n");
    let bye = c.line();
    assert!(bye.starts_with("* BYE"), "{bye:?}");
    assert!(bye.contains("4096"), "{bye:?}");
    c.set_timeout(Duration::from_secs(5));
    assert_eq!(c.rest(), "", "the connection ends after BYE");
    // A synchronizing literal over the limit is refused before it is sent.
    let mut c = LineClient::connect(server.addr("imap"));
    c.line();
    let reply = c.cmd("a1 LOGIN {5000}", "a1 ");
    assert!(last(&reply).starts_with("a1 BAD"), "{reply:?}");
    // Within the limit a password literal works as before.
    c.send(&format!(
        "a2 LOGIN plain {{{}+}}\r\n{PASSWORD}\r\n",
        PASSWORD.len()
    ));
    let reply = c.until("a2 ");
    assert!(last(&reply).starts_with("a2 OK"), "{reply:?}");
    still_serving(&server);
}

#[test]
fn starttls_without_a_handshake_is_dropped_after_the_handshake_timeout() {
    let limits = "[limits]\ntls_handshake_timeout_secs = 1\n";
    let server = TestServer::start(&base_config(&["imap", "pop3"], limits));
    let mut imap = LineClient::connect(server.addr("imap"));
    imap.line();
    imap.cmd("a1 STARTTLS", "a1 OK");
    let mut pop = LineClient::connect(server.addr("pop3"));
    pop.line();
    pop.cmd("STLS", "+OK");
    // Both then say nothing: the server closes each within the limit (read timeout 10 s).
    let started = Instant::now();
    assert_eq!(imap.rest(), "");
    assert_eq!(pop.rest(), "");
    assert!(started.elapsed() < Duration::from_secs(9));
    still_serving(&server);
}

/// Sends `command` every quarter second until the server says goodbye; returns the goodbye
/// and how long it took.
fn busy_until_goodbye(c: &mut LineClient, command: &str, goodbye: &str) -> (String, Duration) {
    let started = Instant::now();
    for _ in 0..80 {
        c.send(&format!("{command}\r\n"));
        let line = c.line();
        if line.starts_with(goodbye) || line.is_empty() {
            return (line, started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!("still connected after 20 s of {command}");
}

#[test]
fn a_busy_client_that_never_logs_in_is_dropped_after_the_login_timeout() {
    let limits = "[limits]\nlogin_timeout_secs = 2\n";
    let server = TestServer::start(&base_config(&["imap", "pop3", "submission"], limits));
    // Busy with harmless commands, well inside the 30 / 10 minute idle timeouts.
    let mut imap = LineClient::connect(server.addr("imap"));
    imap.line();
    let (bye, after) = busy_until_goodbye(&mut imap, "n NOOP", "* BYE");
    assert_eq!(bye, "* BYE Disconnected for inactivity.\r\n");
    assert!(after >= Duration::from_millis(1500), "{after:?}");
    let mut pop = LineClient::connect(server.addr("pop3"));
    pop.line();
    let (bye, _) = busy_until_goodbye(&mut pop, "USER plain", "-ERR");
    assert_eq!(bye, "-ERR Disconnected for inactivity.\r\n");
    let mut smtp = LineClient::connect(server.addr("submission"));
    smtp.line();
    let (bye, _) = busy_until_goodbye(&mut smtp, "NOOP", "421");
    assert_eq!(bye, "421 4.4.2 Timeout exceeded\r\n");
    // A client that logs in in time keeps its session past the login timeout: once a client
    // that connected after it (and never logs in) is dropped, its own deadline has passed too.
    let mut c = logged_in(&server);
    let mut later = LineClient::connect(server.addr("imap"));
    later.line();
    assert_eq!(later.rest(), "* BYE Disconnected for inactivity.\r\n");
    c.cmd("a1 NOOP", "a1 OK");
}

#[test]
fn the_total_connection_limit_refuses_in_each_protocols_words() {
    let limits = "[limits]\nmax_connections = 2\n";
    let server = TestServer::start(&base_config(&["imap", "pop3", "submission"], limits));
    let mut a = LineClient::connect(server.addr("imap"));
    let mut b = LineClient::connect(server.addr("pop3"));
    assert!(a.line().starts_with("* OK"));
    assert!(b.line().starts_with("+OK"));
    let mut imap = LineClient::connect(server.addr("imap"));
    assert!(imap.rest().starts_with("* BYE [UNAVAILABLE]"));
    let mut pop = LineClient::connect(server.addr("pop3"));
    assert!(pop.rest().starts_with("-ERR [SYS/TEMP]"));
    let mut smtp = LineClient::connect(server.addr("submission"));
    assert!(smtp.rest().starts_with("421 4.7.0"));
    a.cmd("a1 NOOP", "a1 OK");
}

#[test]
fn over_long_command_lines_get_a_clear_error_and_the_session_goes_on() {
    let server = TestServer::start(&base_config(&["imap", "submission"], ""));
    seed_maildir(
        &server.mail_root().join("plain"),
        &[b"Subject: a\r\n\r\nx\r\n"],
    );
    // Before login: 8 KiB.
    let mut c = LineClient::connect(server.addr("imap"));
    c.line();
    let reply = c.cmd(&format!("a1 LOGIN plain {}", "x".repeat(9_000)), "a1 ");
    assert!(last(&reply).starts_with("a1 BAD"), "{reply:?}");
    c.cmd(&format!("a2 LOGIN plain \"{PASSWORD}\""), "a2 OK");
    // After login: 64 KiB.
    let reply = c.cmd(&format!("a3 SELECT {}", "x".repeat(70_000)), "a3 ");
    assert!(last(&reply).starts_with("a3 BAD"), "{reply:?}");
    c.cmd("a4 SELECT INBOX", "a4 OK");
    // SMTP: 4096 bytes.
    let mut s = LineClient::connect(server.addr("submission"));
    s.line();
    let reply = s.cmd(&format!("EHLO {}", "x".repeat(5_000)), "5");
    assert_eq!(reply, vec!["500 5.5.2 Line too long\r\n"]);
    s.cmd("EHLO client.example", "250 ");
}
