//! SMTP over real sockets: submission (587/465), inbound SMTP (25), LMTP (TCP and unix socket),
//! every reply code path of RCPT/MAIL/DATA, the open-relay rules on every port, the relayhost
//! and its queue (retries, bounces), `roost deliver` and `roost queue`, and real clients
//! (swaks, smtplib, curl) delivering mail that POP3 and IMAP then read byte for byte.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{
    base_config, inbox_files, is_root, mail_client, roost_bin, uid_of, LineClient, TestServer,
    PASSWORD,
};

/// A message with its own Message-ID and Date, a dot-led line and CRLF line ends.
const MSG: &str = "From: Plain <plain@example.com>\r\nTo: sha512@example.com\r\nSubject: hello\r\nMessage-ID: <m1@client.test>\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\nBody line\r\n.leading dot\r\n\r\nend\r\n";

const ALL: &[&str] = &["submission", "submissions", "smtp", "lmtp"];

/// Aliases and virtual map in their own directory (they must exist before the server starts).
fn maps() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("aliases"),
        "# test aliases\npostmaster: plain\nteam: plain,\n  sha256\nfar: someone@far.example\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("virtual"), "sales@example.com  blf\n").unwrap();
    dir
}

fn smtp_section(maps: &Path, extra: &str) -> String {
    format!(
        "[smtp]\nlocal_domains = [\"example.com\"]\naliases = \"{}\"\nvirtual = \"{}\"\nmax_recipients = 3\nmax_message_size = 200000\n{extra}",
        maps.join("aliases").display(),
        maps.join("virtual").display()
    )
}

fn server(protocols: &[&str], maps: &Path, extra: &str) -> TestServer {
    TestServer::start(&base_config(protocols, &smtp_section(maps, extra)))
}

/// The contents of every message in a user's INBOX, oldest first.
fn inbox(server: &TestServer, user: &str) -> Vec<Vec<u8>> {
    inbox_files(server, user)
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect()
}

/// Owner uid of a user's first message file.
fn first_owner(server: &TestServer, user: &str) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    let files = inbox_files(server, user);
    Some(std::fs::metadata(files.first()?).ok()?.uid())
}

/// Waits (bounded) until a user's INBOX holds `n` messages.
fn wait_inbox(server: &TestServer, user: &str, n: usize) -> Vec<Vec<u8>> {
    common::wait_inbox_files(server, user, n)
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect()
}

/// The message without the trace fields the server put on top (Return-Path, Received).
fn without_trace(stored: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(stored).into_owned();
    let mut rest = text.as_str();
    loop {
        let is_trace = rest.starts_with("Return-Path:") || rest.starts_with("Received:");
        if !is_trace {
            return rest.as_bytes().to_vec();
        }
        let mut end = rest.find("\r\n").unwrap() + 2;
        while rest[end..].starts_with('\t') || rest[end..].starts_with(' ') {
            end += rest[end..].find("\r\n").unwrap() + 2;
        }
        rest = &rest[end..];
    }
}

/// Dot-stuffs a CRLF message for DATA.
fn stuffed(msg: &str) -> String {
    msg.split_inclusive("\r\n")
        .map(|l| {
            if l.starts_with('.') {
                format!(".{l}")
            } else {
                l.to_string()
            }
        })
        .collect()
}

fn first(c: &mut LineClient, line: &str) -> String {
    c.cmd(line, "").remove(0)
}

/// The final line of a (multi-line) reply.
fn last(c: &mut LineClient, line: &str) -> String {
    c.send(&format!("{line}\r\n"));
    loop {
        let l = c.line();
        assert!(!l.is_empty(), "closed after {line:?}");
        if l.as_bytes().get(3) != Some(&b'-') {
            return l;
        }
    }
}

fn connect(server: &TestServer, protocol: &str, helo: &str) -> LineClient {
    let mut c = LineClient::connect(server.addr(protocol));
    assert!(c.line().starts_with("220 "));
    assert!(last(&mut c, &format!("{helo} client.test")).starts_with("250 "));
    c
}

fn auth_plain(c: &mut LineClient, user: &str) -> String {
    use base64::Engine;
    let blob = base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{PASSWORD}"));
    first(c, &format!("AUTH PLAIN {blob}"))
}

/// Sends DATA and the message; returns the final reply.
fn data(c: &mut LineClient, msg: &str) -> String {
    assert!(first(c, "DATA").starts_with("354 "));
    // One write, as a real client's would be (two small ones meet Nagle and delayed ACKs).
    first(c, &format!("{}.", stuffed(msg)))
}

#[test]
fn submission_delivers_locally_and_pop3_and_imap_read_it_byte_exact() {
    let maps = maps();
    let s = server(&["submission", "pop3", "imap"], maps.path(), "");
    let mut c = connect(&s, "submission", "EHLO");
    let ehlo = c.cmd("EHLO client.test", "250 ").concat();
    for kw in [
        "PIPELINING",
        "8BITMIME",
        "SIZE 200000",
        "ENHANCEDSTATUSCODES",
        "STARTTLS",
        "AUTH PLAIN LOGIN",
        "SMTPUTF8",
        "DSN",
    ] {
        assert!(ehlo.contains(kw), "{kw} missing in {ehlo}");
    }
    assert_eq!(
        first(&mut c, "MAIL FROM:<plain@example.com>"),
        "530 5.7.0 Authentication required\r\n"
    );
    assert_eq!(
        auth_plain(&mut c, "plain"),
        "235 2.7.0 Authentication successful\r\n"
    );
    assert_eq!(
        first(
            &mut c,
            "MAIL FROM:<plain@example.com> SIZE=300 BODY=8BITMIME"
        ),
        "250 2.1.0 Ok\r\n"
    );
    assert_eq!(
        first(&mut c, "RCPT TO:<sha512@example.com>"),
        "250 2.1.5 Ok\r\n"
    );
    let done = data(&mut c, MSG);
    assert!(done.starts_with("250 2.0.0 Ok: queued as "), "{done}");
    assert_eq!(first(&mut c, "QUIT"), "221 2.0.0 Bye\r\n");

    let stored = inbox(&s, "sha512").remove(0);
    let text = String::from_utf8_lossy(&stored);
    assert!(
        text.starts_with(
            "Return-Path: <plain@example.com>\r\nReceived: from client.test ([127.0.0.1])\r\n\tby "
        ),
        "{text}"
    );
    assert!(text.contains(" (roost) with ESMTPA id "), "{text}");
    assert!(text.contains("\tfor <sha512@example.com>;"), "{text}");
    assert_eq!(
        without_trace(&stored),
        MSG.as_bytes(),
        "nothing but trace fields added"
    );
    if is_root() {
        assert_eq!(
            first_owner(&s, "sha512"),
            uid_of(common::ROOT_MAIL_USER),
            "written as the mail owner"
        );
    }

    // POP3 RETR gives exactly the stored bytes.
    let mut p = LineClient::connect(s.addr("pop3"));
    p.line();
    p.cmd("USER sha512", "+OK");
    assert!(first(&mut p, &format!("PASS {PASSWORD}")).starts_with("+OK"));
    let lines = p.cmd("RETR 1", ".\r\n");
    let body: String = lines[1..lines.len() - 1]
        .iter()
        .map(|l| l.strip_prefix('.').unwrap_or(l))
        .collect();
    assert_eq!(body.as_bytes(), &stored[..]);
    p.cmd("QUIT", "+OK");

    // IMAP BODY[] too.
    let mut i = LineClient::connect(s.addr("imap"));
    i.line();
    i.cmd(&format!("a LOGIN sha512 \"{PASSWORD}\""), "a OK");
    i.cmd("b SELECT INBOX", "b OK");
    i.send("c FETCH 1 BODY[]\r\n");
    let head = i.line();
    let n: usize = head
        .rsplit_once('{')
        .unwrap()
        .1
        .trim_end()
        .trim_end_matches('}')
        .parse()
        .unwrap();
    assert_eq!(i.read_exact(n), stored);
    i.until("c OK");
}

#[test]
fn submission_adds_message_id_and_date_where_missing() {
    let maps = maps();
    let s = server(&["submission"], maps.path(), "");
    let mut c = connect(&s, "submission", "EHLO");
    auth_plain(&mut c, "plain");
    first(&mut c, "MAIL FROM:<plain@example.com>");
    first(&mut c, "RCPT TO:<plain@example.com>");
    assert!(data(&mut c, "Subject: bare\r\n\r\nbody\r\n").starts_with("250 "));
    first(&mut c, "MAIL FROM:<plain@example.com>");
    first(&mut c, "RCPT TO:<plain@example.com>");
    assert!(data(&mut c, "Subject: no body and no blank line\r\n").starts_with("250 "));
    let got = inbox(&s, "plain");
    let one = String::from_utf8(without_trace(&got[0])).unwrap();
    let (header, body) = one.split_once("\r\n\r\n").unwrap();
    assert!(
        header.starts_with("Subject: bare\r\nMessage-ID: <"),
        "{one}"
    );
    assert!(header.contains("\r\nDate: "), "{one}");
    assert_eq!(body, "body\r\n");
    let two = String::from_utf8(without_trace(&got[1])).unwrap();
    assert!(
        two.starts_with("Subject: no body and no blank line\r\nMessage-ID: <")
            && two.contains("\r\nDate: "),
        "{two}"
    );
}

#[test]
fn an_idling_imap_session_sees_a_submitted_message_within_one_second() {
    let maps = maps();
    let s = server(&["submission", "imap"], maps.path(), "");
    let mut i = LineClient::connect(s.addr("imap"));
    i.line();
    i.cmd(&format!("a LOGIN sha256 \"{PASSWORD}\""), "a OK");
    i.cmd("b SELECT INBOX", "b OK");
    i.cmd("c IDLE", "+ ");
    let mut c = connect(&s, "submission", "EHLO");
    auth_plain(&mut c, "plain");
    first(&mut c, "MAIL FROM:<plain@example.com>");
    first(&mut c, "RCPT TO:<sha256@example.com>");
    assert!(data(&mut c, MSG).starts_with("250 "));
    let sent = Instant::now();
    i.set_timeout(Duration::from_secs(1));
    let seen = i.line();
    assert_eq!(seen, "* 1 EXISTS\r\n", "after {:?}", sent.elapsed());
    assert!(sent.elapsed() < Duration::from_secs(1));
}

#[test]
fn rcpt_mail_and_data_reply_codes() {
    let maps = maps();
    let s = server(&["submission", "smtp"], maps.path(), "");
    let mut c = connect(&s, "smtp", "EHLO");
    // Inbound: no AUTH needed for local users; unknown users, other domains refused.
    assert_eq!(
        first(&mut c, "RCPT TO:<plain@example.com>"),
        "503 5.5.1 Need MAIL command first\r\n"
    );
    assert_eq!(
        first(&mut c, "DATA"),
        "503 5.5.1 Need MAIL command first\r\n"
    );
    assert_eq!(
        first(&mut c, "MAIL FROM:<someone@far.example>"),
        "250 2.1.0 Ok\r\n"
    );
    assert_eq!(
        first(&mut c, "MAIL FROM:<x@y.example>"),
        "503 5.5.1 Nested MAIL command\r\n"
    );
    assert_eq!(first(&mut c, "DATA"), "554 5.5.1 No valid recipients\r\n");
    assert_eq!(
        first(&mut c, "RCPT TO:<nosuchuser@example.com>"),
        "550 5.1.1 <nosuchuser@example.com>: Recipient address rejected: User unknown\r\n"
    );
    assert_eq!(
        first(&mut c, "RCPT TO:<victim@far.example>"),
        "554 5.7.1 <victim@far.example>: Relay access denied\r\n"
    );
    assert_eq!(
        first(&mut c, "RCPT TO:<a b@example.com>"),
        "501 5.1.3 Bad recipient address: Invalid address syntax\r\n"
    );
    assert_eq!(first(&mut c, "RCPT TO:<far@example.com>"), "550 5.3.5 <far@example.com>: Alias forwards to another domain, but no relayhost is configured\r\n");
    assert_eq!(
        first(&mut c, "RCPT TO:<plain@example.com> NOTIFY=SOMETIMES"),
        "501 5.5.4 Invalid NOTIFY parameter: expected NEVER or SUCCESS, FAILURE, DELAY\r\n"
    );
    assert_eq!(
        first(&mut c, "RCPT TO:<plain@example.com> X-FOO=1"),
        "555 5.5.4 Unsupported parameter X-FOO\r\n"
    );
    // Aliases, the virtual map and postmaster (without a domain) resolve.
    for ok in ["<postmaster>", "<Team@Example.COM>", "<sales@example.com>"] {
        assert_eq!(
            first(&mut c, &format!("RCPT TO:{ok}")),
            "250 2.1.5 Ok\r\n",
            "{ok}"
        );
    }
    assert_eq!(
        first(&mut c, "RCPT TO:<plain@example.com>"),
        "452 4.5.3 Too many recipients\r\n"
    );
    assert!(data(&mut c, MSG).starts_with("250 2.0.0 Ok: queued as "));
    assert_eq!(
        inbox(&s, "plain").len(),
        1,
        "postmaster and team both reach plain, once"
    );
    assert_eq!(inbox(&s, "sha256").len(), 1);
    assert_eq!(inbox(&s, "blf").len(), 1);
    let received = String::from_utf8_lossy(&inbox(&s, "blf")[0]).into_owned();
    assert!(received.contains(" with ESMTP id "), "{received}");
    assert!(received.starts_with("Return-Path: <someone@far.example>\r\n"));

    // SIZE at MAIL and after DATA, long lines, NUL, bare LF.
    assert_eq!(
        first(&mut c, "MAIL FROM:<x@far.example> SIZE=999999"),
        "552 5.3.4 Message size exceeds fixed limit of 200000 bytes\r\n"
    );
    assert_eq!(
        first(&mut c, "MAIL FROM:<x@far.example> X-FOO=1"),
        "555 5.5.4 Unsupported parameter X-FOO\r\n"
    );
    let big = format!(
        "Subject: big\r\n\r\n{}",
        "0123456789abcdef0123456789abcdef\r\n".repeat(7000)
    );
    let refused = |c: &mut LineClient, msg: &str| {
        first(c, "MAIL FROM:<x@far.example>");
        first(c, "RCPT TO:<plain@example.com>");
        data(c, msg)
    };
    assert_eq!(
        refused(&mut c, &big),
        "552 5.3.4 Message size exceeds fixed limit of 200000 bytes\r\n"
    );
    let long = format!("Subject: long\r\n\r\n{}\r\n", "x".repeat(1200));
    assert_eq!(
        refused(&mut c, &long),
        "500 5.5.2 Line too long (RFC 5321 allows 1000 octets per line)\r\n"
    );
    assert_eq!(
        refused(&mut c, "Subject: nul\r\n\r\na\0b\r\n"),
        "554 5.6.0 Message contains NUL characters\r\n"
    );
    assert_eq!(
        inbox(&s, "plain").len(),
        1,
        "refused messages are not stored"
    );
    first(&mut c, "MAIL FROM:<x@far.example>");
    first(&mut c, "RCPT TO:<plain@example.com>");
    assert!(first(&mut c, "DATA").starts_with("354"));
    c.send("Subject: bare LF\n\nline\n.\nstill data\r\n.\r\n");
    assert_eq!(
        c.line(),
        "554 5.6.0 Message contains bare <LF>; lines must end with <CR><LF>\r\n",
        "only CRLF.CRLF ends DATA, and bare LF refuses the message"
    );
    assert_eq!(inbox(&s, "plain").len(), 1);
    assert_eq!(first(&mut c, "RSET"), "250 2.0.0 Ok\r\n");
    assert_eq!(
        first(&mut c, "LHLO x"),
        "500 5.5.1 LHLO is for LMTP; this is SMTP\r\n"
    );
    assert_eq!(first(&mut c, "QUIT"), "221 2.0.0 Bye\r\n");

    // Submission: the sender must be the user's own; no relayhost, no remote recipients.
    let mut c = connect(&s, "submission", "EHLO");
    auth_plain(&mut c, "plain");
    assert_eq!(
        first(&mut c, "MAIL FROM:<sha512@example.com>"),
        "553 5.7.1 <sha512@example.com>: Sender address rejected: not owned by user plain\r\n"
    );
    assert_eq!(
        first(&mut c, "MAIL FROM:<plain@far.example>"),
        "553 5.7.1 <plain@far.example>: Sender address rejected: not owned by user plain\r\n"
    );
    assert_eq!(
        first(&mut c, "MAIL FROM:<Plain@Example.com>"),
        "250 2.1.0 Ok\r\n"
    );
    assert_eq!(first(&mut c, "RCPT TO:<friend@far.example>"), "550 5.4.4 <friend@far.example>: Cannot send to other domains: this server has no relayhost configured\r\n");
    assert_eq!(first(&mut c, "RSET"), "250 2.0.0 Ok\r\n");
    // postmaster resolves to plain alone: plain may send as postmaster@.
    assert_eq!(
        first(&mut c, "MAIL FROM:<postmaster@example.com>"),
        "250 2.1.0 Ok\r\n"
    );
}

/// Sends MAIL, RCPT (each of `rcpts`) and DATA, then `wire` in one write.
fn send_raw_data(c: &mut LineClient, rcpts: &[&str], wire: &str) {
    assert_eq!(first(c, "MAIL FROM:<x@far.example>"), "250 2.1.0 Ok\r\n");
    for rcpt in rcpts {
        assert_eq!(first(c, &format!("RCPT TO:<{rcpt}>")), "250 2.1.5 Ok\r\n");
    }
    assert!(first(c, "DATA").starts_with("354 "));
    c.send(wire);
}

#[test]
fn smtp_smuggling_with_a_bare_lf_or_cr_stores_nothing_and_stays_in_step() {
    let maps = maps();
    let s = server(&["smtp", "lmtp"], maps.path(), "");
    let smuggled = "MAIL FROM:<evil@far.example>\r\nRCPT TO:<plain@example.com>\r\nDATA\r\nSubject: smuggled\r\n\r\nsmuggled\r\n.\r\n";
    let cases = [
        ("\n.\r\n", "<LF>"),
        ("\r.\r\n", "<CR>"),
        ("\r\n.\n", "<LF>"),
        ("\n.\n", "<LF>"),
    ];
    for (end, bare) in cases {
        let mut c = connect(&s, "smtp", "EHLO");
        let wire = format!("Subject: first\r\n\r\nhello{end}{smuggled}");
        send_raw_data(&mut c, &["plain@example.com"], &wire);
        let refusal =
            format!("554 5.6.0 Message contains bare {bare}; lines must end with <CR><LF>\r\n");
        assert_eq!(c.line(), refusal, "{end:?}");
        assert_eq!(
            first(&mut c, "NOOP"),
            "250 2.0.0 Ok\r\n",
            "{end:?}: in step"
        );
        assert_eq!(first(&mut c, "QUIT"), "221 2.0.0 Bye\r\n");
        assert!(inbox(&s, "plain").is_empty(), "{end:?}: nothing stored");
    }
    // LMTP refuses it for every recipient.
    let mut l = connect(&s, "lmtp", "LHLO");
    let wire = format!("Subject: first\r\n\r\nhello\n.\r\n{smuggled}");
    send_raw_data(&mut l, &["plain@example.com", "sha256@example.com"], &wire);
    for _ in 0..2 {
        assert!(l.line().starts_with("554 5.6.0 Message contains bare <LF>"));
    }
    assert_eq!(first(&mut l, "NOOP"), "250 2.0.0 Ok\r\n");
    assert!(inbox(&s, "plain").is_empty() && inbox(&s, "sha256").is_empty());
    // The same session still takes a well-formed message, exactly once.
    send_raw_data(
        &mut l,
        &["plain@example.com"],
        &format!("{}.\r\n", stuffed(MSG)),
    );
    assert!(l.line().starts_with("250 2.0.0 <plain@example.com> Ok"));
    assert_eq!(inbox(&s, "plain").len(), 1);
}

#[test]
fn a_connection_dropped_in_data_stores_nothing() {
    let maps = maps();
    let s = server(&["smtp"], maps.path(), "");
    let mut c = connect(&s, "smtp", "HELO");
    first(&mut c, "MAIL FROM:<x@far.example>");
    first(&mut c, "RCPT TO:<plain@example.com>");
    assert!(first(&mut c, "DATA").starts_with("354"));
    c.send("Subject: cut\r\n\r\nhalf a message\r\n");
    drop(c);
    let mut c = connect(&s, "smtp", "HELO");
    assert_eq!(first(&mut c, "NOOP"), "250 2.0.0 Ok\r\n");
    drop(c);
    // The session removes its spool file when it sees the connection end; once the file is
    // gone, the session has decided, and nothing may have been stored.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let spool: Vec<_> = std::fs::read_dir(s.dir.path().join("queue/tmp"))
            .unwrap()
            .collect();
        if spool.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the spool file is removed: {spool:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(inbox(&s, "plain").is_empty());
    assert!(std::fs::read_dir(s.dir.path().join("queue"))
        .unwrap()
        .flatten()
        .all(|e| e.path().is_dir()));
}

#[test]
fn nobody_unauthenticated_relays_on_any_port() {
    let maps = maps();
    let sm = Smarthost::start("250 2.1.5 Ok");
    let extra = format!("relayhost = \"{}\"\n", sm.addr);
    let s = server(ALL, maps.path(), &extra);
    // Plain: smtp and submission; implicit TLS: submissions (smtplib); LMTP.
    let mut c = connect(&s, "smtp", "EHLO");
    first(&mut c, "MAIL FROM:<spammer@far.example>");
    assert_eq!(
        first(&mut c, "RCPT TO:<victim@elsewhere.example>"),
        "554 5.7.1 <victim@elsewhere.example>: Relay access denied\r\n"
    );
    assert_eq!(
        first(&mut c, "RCPT TO:<victim@example.com.elsewhere.example>"),
        "554 5.7.1 <victim@example.com.elsewhere.example>: Relay access denied\r\n"
    );
    assert_eq!(
        first(&mut c, "RCPT TO:<@example.com:victim@elsewhere.example>"),
        "554 5.7.1 <victim@elsewhere.example>: Relay access denied\r\n"
    );
    let mut c = connect(&s, "submission", "EHLO");
    assert_eq!(
        first(&mut c, "MAIL FROM:<spammer@far.example>"),
        "530 5.7.0 Authentication required\r\n"
    );
    assert_eq!(
        first(&mut c, "RCPT TO:<victim@elsewhere.example>"),
        "503 5.5.1 Need MAIL command first\r\n"
    );
    let mut l = connect(&s, "lmtp", "LHLO");
    first(&mut l, "MAIL FROM:<spammer@far.example>");
    assert_eq!(
        first(&mut l, "RCPT TO:<victim@elsewhere.example>"),
        "554 5.7.1 <victim@elsewhere.example>: Relay access denied\r\n"
    );
    let run = mail_client(
        "smtp",
        s.addr("submissions"),
        &[
            "--tls",
            "implicit",
            "--auth",
            "none",
            "--mail-from",
            "spammer@far.example",
            "--rcpt",
            "victim@elsewhere.example",
        ],
    );
    assert_eq!(run.code, 4, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("MAIL-REFUSED 530"), "{}", run.stdout);
    let run = mail_client(
        "smtp",
        s.addr("smtp"),
        &[
            "--auth",
            "none",
            "--mail-from",
            "spammer@far.example",
            "--rcpt",
            "victim@elsewhere.example",
        ],
    );
    assert!(run.stdout.contains("RCPT-REFUSED 554"), "{}", run.stdout);
    assert!(sm.received().is_empty(), "nothing reached the smarthost");

    // Authenticated, the same mail goes to the relayhost.
    let run = mail_client(
        "smtp",
        s.addr("submissions"),
        &[
            "--tls",
            "implicit",
            "--user",
            "plain",
            "--password",
            PASSWORD,
            "--mail-from",
            "plain@example.com",
            "--rcpt",
            "friend@elsewhere.example",
        ],
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let got = sm.wait(1);
    assert_eq!(got[0].from, "plain@example.com");
    assert_eq!(got[0].rcpts, ["friend@elsewhere.example"]);
    assert!(
        got[0].data.starts_with(b"Received: from client.test"),
        "{}",
        String::from_utf8_lossy(&got[0].data)
    );
    assert!(got[0].data.ends_with(b"\r\nhello\r\n"));
}

#[test]
fn relay_networks_may_relay_on_port_25() {
    let maps = maps();
    let sm = Smarthost::start("250 2.1.5 Ok");
    let extra = format!(
        "relayhost = \"{}\"\nrelay_networks = [\"127.0.0.0/8\"]\n",
        sm.addr
    );
    let s = server(&["smtp", "lmtp"], maps.path(), &extra);
    let mut c = connect(&s, "smtp", "EHLO");
    first(&mut c, "MAIL FROM:<app@example.com>");
    assert_eq!(
        first(&mut c, "RCPT TO:<out@elsewhere.example>"),
        "250 2.1.5 Ok\r\n"
    );
    assert_eq!(
        first(&mut c, "RCPT TO:<plain@example.com>"),
        "250 2.1.5 Ok\r\n"
    );
    assert!(data(&mut c, MSG).starts_with("250 "));
    let got = sm.wait(1);
    assert_eq!(got[0].rcpts, ["out@elsewhere.example"]);
    assert_eq!(
        without_trace(&got[0].data),
        MSG.as_bytes(),
        "relayed byte-exactly, dot-stuffing undone"
    );
    assert_eq!(inbox(&s, "plain").len(), 1);
    // LMTP still never relays.
    let mut l = connect(&s, "lmtp", "LHLO");
    first(&mut l, "MAIL FROM:<app@example.com>");
    assert!(first(&mut l, "RCPT TO:<out@elsewhere.example>").starts_with("554 5.7.1"));
}

#[test]
fn envelope_paths_are_checked_and_source_routes_never_reach_a_header_or_the_relay() {
    let maps = maps();
    let sm = Smarthost::start("250 2.1.5 Ok");
    let extra = format!(
        "relayhost = \"{}\"\nrelay_networks = [\"127.0.0.0/8\"]\n",
        sm.addr
    );
    let s = server(&["smtp"], maps.path(), &extra);
    let mut c = connect(&s, "smtp", "EHLO");
    // A CR hidden in the source route used to reach Return-Path and the relay's MAIL FROM.
    assert_eq!(
        first(&mut c, "MAIL FROM:<@a\rX-Injected:x@far.example>"),
        "501 5.1.7 Bad sender address: Invalid source route\r\n"
    );
    assert_eq!(
        first(&mut c, "MAIL FROM:<x\r@far.example>"),
        "501 5.1.7 Bad sender address: Invalid address syntax\r\n"
    );
    assert_eq!(
        first(&mut c, "MAIL FROM:<j\u{f6}rg@far.example>"),
        "553 5.6.7 Non-ASCII address requires the SMTPUTF8 parameter on MAIL FROM\r\n"
    );
    // A valid route is dropped (RFC 5321 4.1.1.3); a quoted local part that needs no quotes
    // is the plain one.
    assert_eq!(
        first(
            &mut c,
            "MAIL FROM:<@hop1.example,@[192.0.2.1]:x@far.example>"
        ),
        "250 2.1.0 Ok\r\n"
    );
    assert_eq!(
        first(&mut c, "RCPT TO:<@hop.example:\"plain\"@example.com>"),
        "250 2.1.5 Ok\r\n"
    );
    assert_eq!(
        first(&mut c, "RCPT TO:<@hop.example:out@elsewhere.example>"),
        "250 2.1.5 Ok\r\n"
    );
    assert_eq!(
        first(&mut c, "RCPT TO:<@hop.example:a@b\rc.example>"),
        "501 5.1.3 Bad recipient address: Invalid address syntax\r\n"
    );
    assert!(data(&mut c, MSG).starts_with("250 "));
    let stored = String::from_utf8(inbox(&s, "plain").remove(0)).unwrap();
    assert!(
        stored.starts_with("Return-Path: <x@far.example>\r\nReceived: from client.test "),
        "{stored}"
    );
    let got = sm.wait(1);
    assert_eq!(got[0].from, "x@far.example");
    assert_eq!(got[0].rcpts, ["out@elsewhere.example"]);
    // The greeting name goes into Received: one word of visible characters only.
    assert_eq!(
        first(&mut c, "EHLO bad\x1bname"),
        "501 5.5.4 Invalid domain name\r\n"
    );
}

#[test]
fn the_queue_retries_with_backoff_then_bounces_to_the_sender() {
    let maps = maps();
    let sm = Smarthost::start("451 4.3.0 Try later");
    let extra = format!(
        "relayhost = \"{}\"\nqueue_retry_secs = 1\nqueue_lifetime_secs = 3\n",
        sm.addr
    );
    let s = server(&["submission"], maps.path(), &extra);
    let mut c = connect(&s, "submission", "EHLO");
    auth_plain(&mut c, "plain");
    first(&mut c, "MAIL FROM:<plain@example.com>");
    first(&mut c, "RCPT TO:<friend@elsewhere.example>");
    let reply = data(&mut c, MSG);
    let id = reply.trim_end().rsplit(' ').next().unwrap().to_string();
    // Listed while it waits.
    let cfg = s.dir.path().join("roost.toml");
    let listed = queue_cli(&cfg, false);
    assert!(
        listed.contains(&id) && listed.contains("friend@elsewhere.example"),
        "{listed}"
    );
    // Several attempts, then the bounce in the sender's INBOX, and the queue empty.
    let bounce = wait_inbox(&s, "plain", 1).remove(0);
    let text = String::from_utf8_lossy(&bounce);
    assert!(sm.attempts() >= 2, "retried: {} attempts", sm.attempts());
    assert!(text.contains("Return-Path: <>\r\n"), "{text}");
    assert!(
        text.contains("Subject: Undelivered Mail Returned to Sender"),
        "{text}"
    );
    assert!(
        text.contains("Content-Type: multipart/report; report-type=delivery-status;"),
        "{text}"
    );
    assert!(text.contains("Final-Recipient: rfc822; friend@elsewhere.example\r\nAction: failed\r\nStatus: 5.3.0\r\n"), "{text}");
    assert!(text.contains("gave up after"), "{text}");
    assert!(
        text.contains("Message-ID: <m1@client.test>"),
        "the original header is quoted: {text}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !queue_cli(&cfg, false).contains("-- 0 messages") {
        assert!(Instant::now() < deadline, "{}", queue_cli(&cfg, false));
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_permanent_refusal_bounces_at_once_and_flush_attempts_now() {
    let maps = maps();
    let sm = Smarthost::start("550 5.1.1 No such user there");
    let extra = format!("relayhost = \"{}\"\nqueue_retry_secs = 3600\n", sm.addr);
    let s = server(&["submission"], maps.path(), &extra);
    let mut c = connect(&s, "submission", "EHLO");
    auth_plain(&mut c, "plain");
    first(&mut c, "MAIL FROM:<plain@example.com>");
    first(&mut c, "RCPT TO:<gone@elsewhere.example>");
    assert!(data(&mut c, MSG).starts_with("250 "));
    let bounce = String::from_utf8(wait_inbox(&s, "plain", 1).remove(0)).unwrap();
    assert!(
        bounce.contains("Status: 5.1.1\r\n") && bounce.contains("550 5.1.1 No such user there"),
        "{bounce}"
    );
    assert_eq!(sm.attempts(), 1);
    // A queued message and `roost queue --flush`.
    sm.set_rcpt_reply("451 4.3.0 Later");
    first(&mut c, "MAIL FROM:<plain@example.com>");
    first(&mut c, "RCPT TO:<later@elsewhere.example>");
    assert!(data(&mut c, MSG).starts_with("250 "));
    let cfg = s.dir.path().join("roost.toml");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !queue_cli(&cfg, false).contains("(attempts: 1)") {
        assert!(Instant::now() < deadline, "the runner tried at once");
        std::thread::sleep(Duration::from_millis(20));
    }
    sm.set_rcpt_reply("250 2.1.5 Ok");
    let flushed = queue_cli(&cfg, true);
    assert!(
        flushed.contains("1 message(s) attempted, 0 left"),
        "{flushed}"
    );
    assert_eq!(sm.wait(1)[0].rcpts, ["later@elsewhere.example"]);
}

fn queue_cli(cfg: &Path, flush: bool) -> String {
    let mut cmd = Command::new(roost_bin());
    cmd.args(["queue", "-c"]).arg(cfg);
    if flush {
        cmd.arg("--flush");
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn lmtp_answers_per_recipient_over_tcp_and_a_unix_socket() {
    let maps = maps();
    let socket_dir = tempfile::tempdir().unwrap();
    let socket = socket_dir.path().join("lmtp");
    if is_root() {
        std::fs::set_permissions(
            socket_dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o777),
        )
        .unwrap();
    }
    let s = server(&["lmtp"], maps.path(), "");
    let mut l = connect(&s, "lmtp", "LHLO");
    assert_eq!(
        first(&mut l, "EHLO x"),
        "500 5.5.1 This is LMTP: send LHLO\r\n"
    );
    first(&mut l, "MAIL FROM:<mta@far.example>");
    assert_eq!(
        first(&mut l, "RCPT TO:<plain@example.com>"),
        "250 2.1.5 Ok\r\n"
    );
    assert!(first(&mut l, "RCPT TO:<unknown@example.com>").starts_with("550 5.1.1"));
    assert_eq!(first(&mut l, "RCPT TO:<sha256>"), "250 2.1.5 Ok\r\n");
    assert!(first(&mut l, "DATA").starts_with("354"));
    l.send(&stuffed(MSG));
    l.send(".\r\n");
    let one = l.line();
    let two = l.line();
    assert!(
        one.starts_with("250 2.0.0 <plain@example.com> Ok: "),
        "{one}"
    );
    assert!(two.starts_with("250 2.0.0 <sha256> Ok: "), "{two}");
    assert!(String::from_utf8_lossy(&inbox(&s, "plain")[0]).contains(" with LMTP id "));
    assert_eq!(inbox(&s, "sha256").len(), 1);
    drop(s);

    let config = base_config(&["lmtp"], &smtp_section(maps.path(), "")).replace(
        "lmtp = \"127.0.0.1:0\"",
        &format!("lmtp = \"{}\"", socket.display()),
    );
    let s = TestServer::start(&config);
    assert_eq!(s.sockets["lmtp"], socket);
    let unix = std::os::unix::net::UnixStream::connect(&socket).unwrap();
    unix.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut r = BufReader::new(unix.try_clone().unwrap());
    let mut w = unix;
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert!(line.starts_with("220 ") && line.contains("LMTP"), "{line}");
    write!(
        w,
        "LHLO mta\r\nMAIL FROM:<>\r\nRCPT TO:<blf@example.com>\r\nDATA\r\n"
    )
    .unwrap();
    let mut replies = Vec::new();
    while !replies
        .last()
        .is_some_and(|l: &String| l.starts_with("354"))
    {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        assert!(!line.is_empty());
        replies.push(line);
    }
    write!(w, "{}.\r\nQUIT\r\n", stuffed(MSG)).unwrap();
    let mut done = String::new();
    r.read_line(&mut done).unwrap();
    assert!(
        done.starts_with("250 2.0.0 <blf@example.com>"),
        "{replies:?} {done}"
    );
    assert!(String::from_utf8_lossy(&inbox(&s, "blf")[0]).starts_with("Return-Path: <>\r\n"));
}

#[test]
fn roost_deliver_reads_stdin_like_dovecot_lda() {
    let maps = maps();
    let s = server(&["lmtp"], maps.path(), "");
    let cfg = s.dir.path().join("roost.toml");
    let run = |user: &str| {
        let mut child = Command::new(roost_bin())
            .args(["deliver", "-c"])
            .arg(&cfg)
            .args(["-u", user, "-f", "sender@far.example"])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // An unknown user is refused before the message is read: the pipe may break.
        let _ = child
            .stdin
            .take()
            .unwrap()
            .write_all(b"Subject: lda\n\nbody\n");
        child.wait_with_output().unwrap()
    };
    let ok = run("argon");
    assert!(ok.status.success(), "{ok:?}");
    let stored = inbox(&s, "argon").remove(0);
    assert_eq!(
        stored,
        b"Return-Path: <sender@far.example>\r\nSubject: lda\n\nbody\n"
    );
    if is_root() {
        assert_eq!(first_owner(&s, "argon"), uid_of(common::ROOT_MAIL_USER));
    }
    let unknown = run("nosuchuser");
    assert_eq!(unknown.status.code(), Some(67), "EX_NOUSER: {unknown:?}");
    // A sender that is not a mailbox never becomes a Return-Path line.
    let bad = Command::new(roost_bin())
        .args(["deliver", "-c"])
        .arg(&cfg)
        .args(["-u", "argon", "-f", "x\r\nX-Injected: 1@far.example"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(64), "EX_USAGE: {bad:?}");
    assert_eq!(inbox(&s, "argon").len(), 1);
}

#[test]
fn swaks_submits_with_starttls_and_implicit_tls() {
    if Command::new("swaks").arg("--version").output().is_err() {
        panic!("swaks is not installed (.ci/setup installs it)");
    }
    let maps = maps();
    let s = server(&["submission", "submissions"], maps.path(), "");
    for (protocol, tls, auth) in [
        ("submission", "--tls", "PLAIN"),
        ("submissions", "--tlsc", "LOGIN"),
    ] {
        let out = Command::new("swaks")
            .args(["--server", &s.addr(protocol).to_string(), tls])
            .args([
                "--auth",
                auth,
                "--auth-user",
                "plain",
                "--auth-password",
                PASSWORD,
            ])
            .args(["--from", "plain@example.com", "--to", "sha512@example.com"])
            .args([
                "--header",
                &format!("Subject: swaks over {protocol}"),
                "--body",
                "hello from swaks",
            ])
            .args(["--timeout", "20"])
            .output()
            .unwrap();
        let transcript = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{transcript}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            transcript.contains("<~  250 2.0.0 Ok: queued as"),
            "{transcript}"
        );
    }
    let got = inbox(&s, "sha512");
    assert_eq!(got.len(), 2);
    let first = String::from_utf8_lossy(&got[0]);
    assert!(
        first.contains("Subject: swaks over submission\r\n") && first.contains("hello from swaks"),
        "{first}"
    );
    assert!(first.contains(" with ESMTPSA id "), "{first}");
}

#[test]
fn smtplib_submits_on_587_with_starttls_and_on_465() {
    let maps = maps();
    let s = server(&["submission", "submissions"], maps.path(), "");
    let dir = tempfile::tempdir().unwrap();
    let msg = dir.path().join("msg");
    std::fs::write(&msg, MSG).unwrap();
    for (protocol, tls, auth) in [
        ("submission", "starttls", "plain"),
        ("submissions", "implicit", "login"),
    ] {
        let run = mail_client(
            "smtp",
            s.addr(protocol),
            &[
                "--tls",
                tls,
                "--auth",
                auth,
                "--user",
                "plain",
                "--password",
                PASSWORD,
                "--mail-from",
                "plain@example.com",
                "--rcpt",
                "blf@example.com",
                "--data",
                msg.to_str().unwrap(),
            ],
        );
        assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
        assert!(run.stdout.contains("SENT 1"), "{}", run.stdout);
    }
    let got = inbox(&s, "blf");
    assert_eq!(got.len(), 2);
    for m in got {
        assert_eq!(without_trace(&m), MSG.as_bytes());
    }
}

#[test]
fn curl_sends_a_plain_message_to_port_25() {
    let maps = maps();
    let s = server(&["smtp"], maps.path(), "");
    let dir = tempfile::tempdir().unwrap();
    let msg = dir.path().join("msg");
    std::fs::write(&msg, MSG).unwrap();
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "20",
            &format!("smtp://{}/client.test", s.addr("smtp")),
        ])
        .args([
            "--mail-from",
            "curl@far.example",
            "--mail-rcpt",
            "sha256@example.com",
            "--upload-file",
        ])
        .arg(&msg)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let got = inbox(&s, "sha256");
    assert_eq!(without_trace(&got[0]), MSG.as_bytes());
}

/// A tiny SMTP server standing in for the relayhost: records what it gets; RCPT gets the
/// configured reply.
struct Smarthost {
    addr: SocketAddr,
    state: Arc<Mutex<SmarthostState>>,
}

struct SmarthostState {
    rcpt_reply: String,
    received: Vec<Got>,
    attempts: usize,
}

#[derive(Clone, Debug)]
struct Got {
    from: String,
    rcpts: Vec<String>,
    data: Vec<u8>,
}

impl Smarthost {
    fn start(rcpt_reply: &str) -> Smarthost {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(SmarthostState {
            rcpt_reply: rcpt_reply.to_string(),
            received: Vec::new(),
            attempts: 0,
        }));
        let st = Arc::clone(&state);
        std::thread::spawn(move || {
            for stream in listener.incoming().take(100).flatten() {
                let _ = Self::session(stream, &st);
            }
        });
        Smarthost { addr, state }
    }

    fn session(stream: TcpStream, state: &Mutex<SmarthostState>) -> std::io::Result<()> {
        stream.set_read_timeout(Some(Duration::from_secs(20)))?;
        let mut w = stream.try_clone()?;
        let mut r = BufReader::new(stream);
        w.write_all(b"220 smarthost.test ESMTP\r\n")?;
        state.lock().unwrap().attempts += 1;
        let mut got = Got {
            from: String::new(),
            rcpts: Vec::new(),
            data: Vec::new(),
        };
        loop {
            let mut line = String::new();
            if r.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let upper = line.to_ascii_uppercase();
            let reply = if upper.starts_with("EHLO") {
                "250-smarthost.test\r\n250 8BITMIME\r\n".to_string()
            } else if upper.starts_with("MAIL FROM:") {
                got.from = line[10..]
                    .trim()
                    .trim_start_matches('<')
                    .split('>')
                    .next()
                    .unwrap_or("")
                    .to_string();
                "250 2.1.0 Ok\r\n".into()
            } else if upper.starts_with("RCPT TO:") {
                let reply = state.lock().unwrap().rcpt_reply.clone();
                if reply.starts_with('2') {
                    got.rcpts
                        .push(line[8..].trim().trim_matches(['<', '>']).to_string());
                }
                format!("{reply}\r\n")
            } else if upper.starts_with("DATA") {
                w.write_all(b"354 go\r\n")?;
                loop {
                    let mut l = Vec::new();
                    r.read_until(b'\n', &mut l)?;
                    if l.is_empty() || l == b".\r\n" {
                        break;
                    }
                    let l = if l.starts_with(b".") { &l[1..] } else { &l[..] };
                    got.data.extend_from_slice(l);
                }
                state.lock().unwrap().received.push(got.clone());
                "250 2.0.0 Ok: stored\r\n".into()
            } else if upper.starts_with("QUIT") {
                w.write_all(b"221 Bye\r\n")?;
                return Ok(());
            } else {
                "250 Ok\r\n".into()
            };
            w.write_all(reply.as_bytes())?;
        }
    }

    fn set_rcpt_reply(&self, reply: &str) {
        self.state.lock().unwrap().rcpt_reply = reply.to_string();
    }

    fn received(&self) -> Vec<Got> {
        self.state.lock().unwrap().received.clone()
    }

    fn attempts(&self) -> usize {
        self.state.lock().unwrap().attempts
    }

    /// Waits (bounded) for `n` messages.
    fn wait(&self, n: usize) -> Vec<Got> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "the smarthost got {} of {n} messages",
                got.len()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn a_login_before_starttls_does_not_survive_the_handshake() {
    let maps = maps();
    let s = server(&["submission"], maps.path(), "");
    let mut c = connect(&s, "submission", "EHLO");
    // Loopback may log in without TLS; the login belongs to the plaintext part only.
    assert_eq!(
        auth_plain(&mut c, "plain"),
        "235 2.7.0 Authentication successful\r\n"
    );
    assert!(first(&mut c, "STARTTLS").starts_with("220 "));
    let mut tls = c.into_tls();
    let ehlo = tls.cmd("EHLO client.test", "250 ").concat();
    assert!(ehlo.contains("AUTH PLAIN"), "AUTH is offered again: {ehlo}");
    assert_eq!(
        tls.cmd("MAIL FROM:<plain@example.com>", "5"),
        vec!["530 5.7.0 Authentication required\r\n"]
    );
}
