//! POP3 over real sockets: every RFC 1939 command and state, the maildrop lock, and the rule
//! that only QUIT deletes anything.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{
    base_config, crlf, mail_client_ok, maildir_uidvalidity, peak_rss_kb_of_tree, seed_maildir,
    LineClient, TestServer, PASSWORD,
};

const ONE: &[u8] =
    b"From: a@example.com\nSubject: bare LF\n\n.starts with a dot\n..two dots\n.\nend\n";
const TWO: &[u8] = b"From: b@example.com\r\nSubject: CRLF\r\n\r\nline 1\r\nline 2\r\nline 3\r\n";
const THREE: &[u8] = b"Subject: no final newline\n\nlast line";

/// Logs in as `plain` and returns the client after the `+OK` to PASS.
fn login(server: &TestServer) -> (LineClient, String) {
    let mut c = LineClient::connect(server.addr("pop3"));
    assert!(c.line().starts_with("+OK"));
    assert!(c.cmd("USER plain", "").remove(0).starts_with("+OK"));
    let reply = c.cmd(&format!("PASS {PASSWORD}"), "").remove(0);
    (c, reply)
}

/// A multi-line response's body, un-dot-stuffed, as a client would rebuild the message.
fn multiline_body(lines: &[String]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in &lines[1..lines.len() - 1] {
        let line = line.strip_prefix('.').unwrap_or(line);
        out.extend_from_slice(line.as_bytes());
    }
    out
}

fn server_with(messages: &[&[u8]]) -> TestServer {
    let server = TestServer::start(&base_config(&["pop3", "imap"], ""));
    seed_maildir(&server.mail_root().join("plain"), messages);
    server
}

/// UIDs follow delivery order, which for seeded files is the order of their names.
#[test]
fn every_transaction_command_answers_as_rfc_1939_says() {
    let server = server_with(&[ONE, TWO, THREE]);
    // What RETR sends: CRLF line ends, and a final CRLF added where the message lacks one.
    let sizes: Vec<usize> = [ONE, TWO, THREE]
        .iter()
        .map(|m| crlf(m).len() + if m.ends_with(b"\n") { 0 } else { 2 })
        .collect();
    let total: usize = sizes.iter().sum();
    let (mut c, reply) = login(&server);
    assert_eq!(
        reply,
        format!("+OK Logged in; 3 messages ({total} octets).\r\n")
    );

    assert_eq!(c.cmd("STAT", "").remove(0), format!("+OK 3 {total}\r\n"));
    let list = c.cmd("LIST", ".");
    assert_eq!(
        list[1..],
        [
            format!("1 {}\r\n", sizes[0]),
            format!("2 {}\r\n", sizes[1]),
            format!("3 {}\r\n", sizes[2]),
            ".\r\n".to_string()
        ]
    );
    assert_eq!(
        c.cmd("LIST 2", "").remove(0),
        format!("+OK 2 {}\r\n", sizes[1])
    );
    assert_eq!(
        c.cmd("LIST 9", "").remove(0),
        "-ERR There's no message 9.\r\n"
    );
    assert_eq!(
        c.cmd("LIST 0", "").remove(0),
        "-ERR Invalid message number\r\n"
    );
    assert_eq!(
        c.cmd("LIST x", "").remove(0),
        "-ERR Invalid message number\r\n"
    );

    let validity = maildir_uidvalidity(&server.mail_root().join("plain"));
    let uidl = c.cmd("UIDL", ".");
    assert_eq!(uidl.len(), 5, "{uidl:?}");
    for (n, line) in (1..=3).zip(&uidl[1..4]) {
        assert_eq!(*line, format!("{n} {n:08x}{validity:08x}\r\n"));
    }
    assert_eq!(
        c.cmd("UIDL 3", "").remove(0),
        format!("+OK 3 {:08x}{validity:08x}\r\n", 3)
    );

    // RETR: the octet count is exact, and the bytes are the message with CRLF line ends.
    for (n, message) in [ONE, TWO, THREE].iter().enumerate() {
        let lines = c.cmd(&format!("RETR {}", n + 1), ".\r\n");
        assert_eq!(lines[0], format!("+OK {} octets\r\n", sizes[n]));
        let mut expected = crlf(message);
        if !expected.ends_with(b"\r\n") {
            expected.extend_from_slice(b"\r\n"); // the terminator needs a line of its own
        }
        assert_eq!(multiline_body(&lines), expected, "message {}", n + 1);
    }
    // The wire form really is dot-stuffed.
    let raw = c.cmd("RETR 1", ".\r\n");
    assert!(
        raw.contains(&"..starts with a dot\r\n".to_string()),
        "{raw:?}"
    );
    assert!(raw.contains(&"...two dots\r\n".to_string()), "{raw:?}");
    assert!(raw.contains(&"..\r\n".to_string()), "{raw:?}");

    // TOP: the header, the blank line, then n body lines.
    let top = c.cmd("TOP 2 0", ".\r\n");
    assert_eq!(
        top,
        [
            "+OK\r\n",
            "From: b@example.com\r\n",
            "Subject: CRLF\r\n",
            "\r\n",
            ".\r\n"
        ]
    );
    let top = c.cmd("TOP 2 2", ".\r\n");
    assert_eq!(top[4..], ["line 1\r\n", "line 2\r\n", ".\r\n"]);
    assert_eq!(
        c.cmd("TOP 2", "").remove(0),
        "-ERR TOP needs a message number and a line count\r\n"
    );
    assert_eq!(
        c.cmd("TOP 2 x", "").remove(0),
        "-ERR Invalid line count\r\n"
    );

    // DELE marks; the mark hides the message until RSET.
    assert_eq!(
        c.cmd("DELE 1", "").remove(0),
        "+OK Marked to be deleted.\r\n"
    );
    assert_eq!(
        c.cmd("DELE 1", "").remove(0),
        "-ERR Message 1 is deleted.\r\n"
    );
    assert_eq!(
        c.cmd("RETR 1", "").remove(0),
        "-ERR Message 1 is deleted.\r\n"
    );
    assert_eq!(
        c.cmd("LIST 1", "").remove(0),
        "-ERR Message 1 is deleted.\r\n"
    );
    assert_eq!(
        c.cmd("STAT", "").remove(0),
        format!("+OK 2 {}\r\n", sizes[1] + sizes[2])
    );
    assert_eq!(c.cmd("LIST", ".").len(), 4);
    assert!(c.cmd("RSET", "").remove(0).starts_with("+OK 3 messages"));
    assert_eq!(c.cmd("STAT", "").remove(0), format!("+OK 3 {total}\r\n"));
    assert_eq!(c.cmd("NOOP", "").remove(0), "+OK\r\n");

    let capa = c.cmd("CAPA", ".").concat();
    for cap in [
        "TOP",
        "UIDL",
        "RESP-CODES",
        "PIPELINING",
        "IMPLEMENTATION roost",
    ] {
        assert!(capa.contains(&format!("{cap}\r\n")), "{capa}");
    }
    assert!(!capa.contains("STLS"), "no STLS after login: {capa}");

    // Commands of the wrong state, and nonsense: clear errors, the session goes on.
    assert_eq!(
        c.cmd("USER plain", "").remove(0),
        "-ERR Already logged in.\r\n"
    );
    assert_eq!(
        c.cmd("STLS", "").remove(0),
        "-ERR STLS is only allowed before login.\r\n"
    );
    assert_eq!(
        c.cmd("XYZZY", "").remove(0),
        "-ERR Unknown command: XYZZY\r\n"
    );
    let long = format!("LIST {}", "9".repeat(10_000));
    assert!(c.cmd(&long, "").remove(0).starts_with("-ERR Line too long"));
    assert_eq!(c.cmd("STAT", "").remove(0), format!("+OK 3 {total}\r\n"));

    // QUIT applies the deletion (UPDATE state).
    assert_eq!(
        c.cmd("DELE 2", "").remove(0),
        "+OK Marked to be deleted.\r\n"
    );
    assert_eq!(c.cmd("QUIT", "").remove(0), "+OK Logging out.\r\n");
    assert_eq!(c.rest(), "", "the server closes after QUIT");
    let line = server.wait_for_log("pop3(plain): Disconnected: Logged out");
    assert!(line.contains(", del=1/3, "), "{line}");
    assert!(line.contains(&format!("size={total}")), "{line}");
    assert!(line.contains("retr=4/"), "{line}");
    assert!(line.contains("top=2/"), "{line}");

    let (mut c, reply) = login(&server);
    assert!(reply.starts_with("+OK Logged in; 2 messages"), "{reply}");
    let uidl = c.cmd("UIDL", ".");
    assert_eq!(uidl[1], format!("1 {:08x}{validity:08x}\r\n", 1));
    assert_eq!(
        uidl[2],
        format!("2 {:08x}{validity:08x}\r\n", 3),
        "UIDs stay with their messages after a deletion"
    );
    c.cmd("QUIT", "+OK");
}

#[test]
fn commands_before_login_are_refused_clearly() {
    let server = server_with(&[ONE]);
    let mut c = LineClient::connect(server.addr("pop3"));
    c.line();
    for cmd in ["STAT", "RETR 1", "DELE 1", "LIST"] {
        let keyword = cmd.split(' ').next().unwrap();
        assert_eq!(
            c.cmd(cmd, "").remove(0),
            format!("-ERR {keyword} is not allowed before login.\r\n")
        );
    }
    assert_eq!(
        c.cmd("PASS x", "").remove(0),
        "-ERR No user name given: send USER first.\r\n"
    );
    let capa = c.cmd("CAPA", ".").concat();
    assert!(
        capa.contains("USER\r\n") && capa.contains("TOP\r\n"),
        "{capa}"
    );
}

#[test]
fn a_dropped_connection_deletes_nothing() {
    let server = server_with(&[ONE, TWO]);
    let (mut c, _) = login(&server);
    c.cmd("DELE 1", "+OK");
    c.cmd("DELE 2", "+OK");
    drop(c); // no QUIT: the UPDATE state is never entered
    let line = server.wait_for_log("pop3(plain): Disconnected: Connection closed");
    assert!(line.contains("del=0/2"), "{line}");
    let (mut c, reply) = login(&server);
    assert!(reply.starts_with("+OK Logged in; 2 messages"), "{reply}");
    c.cmd("QUIT", "+OK");
}

#[test]
fn a_second_pop3_session_is_in_use_while_imap_and_deliveries_go_on() {
    let server = server_with(&[ONE]);
    let (mut first, reply) = login(&server);
    assert!(reply.starts_with("+OK"), "{reply}");

    let (mut second, reply) = login(&server);
    assert_eq!(
        reply,
        "-ERR [IN-USE] Mailbox is locked by another POP3 session.\r\n"
    );
    assert_eq!(second.rest(), "", "the refused session is closed");

    // IMAP goes on meanwhile: it can append to the same INBOX.
    let out = mail_client_ok(
        "imap",
        server.addr("imap"),
        &[
            "--user",
            "plain",
            "--password",
            PASSWORD,
            "--append",
            "Subject: via IMAP\\n\\nhi\\n",
        ],
    );
    assert!(out.contains("MESSAGES 2"), "{out}");
    // The POP3 session keeps its numbering: the new message is not in it.
    assert!(first.cmd("STAT", "").remove(0).starts_with("+OK 1 "));
    first.cmd("QUIT", "+OK");
    first.rest();

    let (mut again, reply) = login(&server);
    assert!(reply.starts_with("+OK Logged in; 2 messages"), "{reply}");
    again.cmd("QUIT", "+OK");
}

#[test]
fn a_client_logging_in_again_right_after_quit_finds_the_maildrop_free() {
    let server = server_with(&[ONE, TWO]);
    // As fetchmail polling does: QUIT, and the next session as soon as the +OK is read,
    // without waiting for the server to close the first connection.
    for round in 0..20 {
        let (mut c, reply) = login(&server);
        assert!(reply.starts_with("+OK Logged in"), "round {round}: {reply}");
        c.cmd("RETR 2", ".");
        c.cmd("QUIT", "+OK");
    }
}

#[test]
fn retr_marks_seen_at_quit_for_imap_clients() {
    let server = server_with(&[ONE, TWO]);
    let (mut c, _) = login(&server);
    c.cmd("RETR 2", ".\r\n");
    c.cmd("TOP 1 1", ".\r\n");
    c.cmd("QUIT", "+OK");
    c.rest();
    let cur = server.mail_root().join("plain/cur");
    let names: Vec<String> = std::fs::read_dir(cur)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let seen: Vec<&String> = names.iter().filter(|n| n.ends_with(":2,S")).collect();
    assert_eq!(
        seen.len(),
        1,
        "only the RETRieved message is \\Seen: {names:?}"
    );
    assert!(seen[0].contains(",U=2"), "{names:?}");
}

#[test]
fn mbox_messages_come_back_unquoted_and_crlf() {
    let config = base_config(&["pop3"], "").replace(
        "maildir:MAILROOT/%u",
        "mbox:MAILROOT/%u:INBOX=MAILROOT/%u.inbox",
    );
    let server = TestServer::start(&config);
    let inbox = server.mail_root().join("plain.inbox");
    std::fs::write(
        &inbox,
        "From a@example.com Mon Nov 23 10:00:00 2026\nSubject: one\n\n>From the start\n.dot\n\n\
         From b@example.com Mon Nov 23 10:01:00 2026\nSubject: two\n\nsecond\n",
    )
    .unwrap();
    common::give_to_mail_owner(&server.mail_root());
    let (mut c, reply) = login(&server);
    assert!(reply.starts_with("+OK Logged in; 2 messages"), "{reply}");
    let first = b"Subject: one\n\nFrom the start\n.dot\n";
    let list = c.cmd("LIST", ".");
    assert_eq!(list[1], format!("1 {}\r\n", crlf(first).len()));
    let lines = c.cmd("RETR 1", ".\r\n");
    assert_eq!(lines[0], format!("+OK {} octets\r\n", crlf(first).len()));
    assert_eq!(multiline_body(&lines), crlf(first));
    c.cmd("DELE 1", "+OK");
    c.cmd("QUIT", "+OK");
    c.rest();
    let left = std::fs::read_to_string(&inbox).unwrap();
    assert!(
        !left.contains("Subject: one") && left.contains("Subject: two"),
        "{left}"
    );
}

/// RETR of a 50 MB message streams: the server's memory does not grow with it.
#[test]
fn a_50_mb_message_streams_without_growing_the_server() {
    let server = TestServer::start(&base_config(&["pop3"], ""));
    let mut big = b"Subject: big\n\n".to_vec();
    let line = b"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\n";
    while big.len() < 50 << 20 {
        big.extend_from_slice(line);
    }
    seed_maildir(&server.mail_root().join("plain"), &[&big]);
    let expected = crlf(&big).len();
    drop(big);

    let mut s = TcpStream::connect(server.addr("pop3")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(s, "USER plain\r\nPASS {PASSWORD}\r\n").unwrap();
    let mut all = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    while !String::from_utf8_lossy(&all).contains("+OK Logged in") {
        let n = read_some(&mut s, &mut buf);
        assert!(n > 0, "connection closed during login");
        all.extend_from_slice(&buf[..n]);
    }
    // The maildrop is open (its sizes counted by streaming the file): the baseline.
    let before_kb = peak_rss_kb_of_tree(server.child.id());
    all.clear();
    write!(s, "RETR 1\r\n").unwrap();
    while !all.ends_with(b"\r\n.\r\n") {
        let n = read_some(&mut s, &mut buf);
        assert!(n > 0, "connection closed during RETR");
        all.extend_from_slice(&buf[..n]);
    }
    // Measured while the session (its worker, as root) is still alive.
    let peak_kb = peak_rss_kb_of_tree(server.child.id());
    write!(s, "QUIT\r\n").unwrap();
    s.read_to_end(&mut all).unwrap();
    let text_end = all.len().min(300);
    let head = String::from_utf8_lossy(&all[..text_end]).into_owned();
    assert!(
        head.contains(&format!("+OK {expected} octets\r\n")),
        "{head}"
    );
    assert!(all.ends_with(b".\r\n+OK Logging out.\r\n"), "ends properly");
    let grew_kb = peak_kb.saturating_sub(before_kb);
    eprintln!("server processes: {before_kb} kB after login, peak {peak_kb} kB after a 50 MB RETR");
    assert!(
        grew_kb < 8_000,
        "the server's processes grew by {grew_kb} kB for a 50 MB RETR ({before_kb} -> {peak_kb})"
    );
}

/// The maildrop keeps working on a large mailbox (LIST and UIDL of 50,000 messages).
#[test]
fn a_50000_message_maildrop_lists_every_message() {
    let server = TestServer::start(&base_config(&["pop3"], ""));
    let maildir = server.mail_root().join("plain");
    seed_maildir(&maildir, &[]);
    for i in 0..50_000u32 {
        let body = format!("Subject: {i}\n\n{i}\n");
        let name = format!(
            "1700000000.M{i}P1.bulk,S={},W={}",
            body.len(),
            body.len() + 3
        );
        std::fs::write(maildir.join("new").join(name), body).unwrap();
    }
    common::give_to_mail_owner(&maildir);
    let mut c = LineClient::connect(server.addr("pop3"));
    // The first login files 50,000 new messages away (a rename each): on a loaded machine
    // that takes longer than the usual read timeout.
    c.set_timeout(std::time::Duration::from_secs(120));
    assert!(c.line().starts_with("+OK"));
    assert!(c.cmd("USER plain", "").remove(0).starts_with("+OK"));
    let reply = c.cmd(&format!("PASS {PASSWORD}"), "").remove(0);
    assert!(
        reply.starts_with("+OK Logged in; 50000 messages"),
        "{reply}"
    );
    assert_eq!(c.cmd("LIST", ".\r\n").len(), 50_002);
    assert_eq!(c.cmd("UIDL", ".\r\n").len(), 50_002);
    assert!(c.cmd("LIST 50000", "").remove(0).starts_with("+OK 50000 "));
    assert_eq!(
        c.cmd("LIST 50001", "").remove(0),
        "-ERR There's no message 50001.\r\n"
    );
    c.cmd("QUIT", "+OK");
}

#[test]
fn stls_and_pop3s_reach_the_transaction_state() {
    let server = TestServer::start(&base_config(&["pop3", "pop3s"], ""));
    seed_maildir(&server.mail_root().join("plain"), &[ONE, TWO]);
    let creds = ["--user", "plain", "--password", PASSWORD];
    let out = mail_client_ok(
        "pop3",
        server.addr("pop3"),
        &[&creds[..], &["--tls", "starttls"]].concat(),
    );
    assert!(out.contains("STAT 2 "), "{out}");
    let out = mail_client_ok(
        "pop3",
        server.addr("pop3s"),
        &[&creds[..], &["--tls", "implicit"]].concat(),
    );
    assert!(out.contains("STAT 2 "), "{out}");
}

/// One read, retried when a signal interrupts it.
fn read_some(s: &mut TcpStream, buf: &mut [u8]) -> usize {
    loop {
        match s.read(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            other => return other.unwrap(),
        }
    }
}

/// RFC 2595 4: a USER sent before STLS is forgotten, so PASS after the handshake has no user
/// (a man in the middle cannot choose the account the client's password goes to).
#[test]
fn user_before_stls_does_not_survive_the_handshake() {
    let server = TestServer::start(&base_config(&["pop3"], ""));
    let mut c = LineClient::connect(server.addr("pop3"));
    assert!(c.line().starts_with("+OK"));
    assert!(c.cmd("USER plain", "").remove(0).starts_with("+OK"));
    assert_eq!(
        c.cmd("STLS", "").remove(0),
        "+OK Begin TLS negotiation now.\r\n"
    );
    let mut tls = c.into_tls();
    assert_eq!(
        tls.cmd(&format!("PASS {PASSWORD}"), "").remove(0),
        "-ERR No user name given: send USER first.\r\n"
    );
    assert!(tls.cmd("USER plain", "").remove(0).starts_with("+OK"));
    let reply = tls.cmd(&format!("PASS {PASSWORD}"), "").remove(0);
    assert!(reply.starts_with("+OK"), "{reply}");
}

/// STARTTLS command injection (CVE-2011-0411 class): commands in the same packet as STLS are
/// plaintext a man in the middle may have added; they are dropped, never run after TLS.
#[test]
fn commands_pipelined_after_stls_are_discarded() {
    let server = TestServer::start(&base_config(&["pop3"], ""));
    let mut c = LineClient::connect(server.addr("pop3"));
    assert!(c.line().starts_with("+OK"));
    c.send("STLS\r\nUSER plain\r\nCAPA\r\n");
    assert_eq!(c.line(), "+OK Begin TLS negotiation now.\r\n");
    let mut tls = c.into_tls();
    assert_eq!(
        tls.cmd(&format!("PASS {PASSWORD}"), "").remove(0),
        "-ERR No user name given: send USER first.\r\n",
        "neither the injected USER nor CAPA was answered"
    );
}
