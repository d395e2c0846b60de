//! POP3 with real clients nobody here wrote: Python's `poplib`, `curl` (`pop3://`, STLS and
//! `pop3s://`) and `fetchmail` (plain POP3, STLS and POP3S; keep and delete modes). Each one
//! must download every message of a varied maildrop byte for byte: bare-LF and CRLF lines, lines
//! that need dot-stuffing, 8-bit UTF-8, a 1 MB attachment, messages without a final newline.
//!
//! curl and fetchmail are system packages (`.ci/setup` installs them); every external process
//! runs under `timeout`, so a hung client fails the test instead of hanging it.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use common::{
    base_config, crlf, maildir_uidvalidity, pop3_size, seed_maildir, TestServer, PASSWORD,
};

/// Seconds any one external client may run.
const CLIENT_LIMIT_SECS: &str = "120";

/// The maildrop every test downloads: (what it exercises, the bytes the MTA delivered).
fn fixtures() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (
            "bare-LF lines with leading dots",
            b"From: Alice <alice@example.com>\nTo: bob@example.com\nSubject: bare LF and dots\n\
              Message-ID: <dots@example.com>\n\n.starts with a dot\n..starts with two dots\n\
              .\n...\n. \nend\n"
                .to_vec(),
        ),
        (
            "CRLF lines",
            b"From: carol@example.com\r\nTo: bob@example.com\r\nSubject: CRLF lines\r\n\r\n\
              line 1\r\n.\r\nline 3\r\n\r\n"
                .to_vec(),
        ),
        (
            "8-bit UTF-8 text",
            "From: Dörte <doerte@example.com>\nTo: bob@example.com\n\
             Subject: Grüße aus Köln — 東京 🦀\nMIME-Version: 1.0\n\
             Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n\
             Grüße, ça va? Ünïcödé everywhere: 東京, Ελληνικά, עברית, 🦀🦀🦀\n\
             .ünïcödé line starting with a dot\n\u{a0}non-breaking space first\nLast line.\n"
                .as_bytes()
                .to_vec(),
        ),
        ("1 MB attachment, mixed line ends", big_message()),
        (
            "no final newline",
            b"From: dave@example.com\nSubject: no final newline\n\nlast line".to_vec(),
        ),
        (
            "a lone dot as the last line, no final newline",
            b"From: erin@example.com\nSubject: ends with a dot\n\nbody\n.".to_vec(),
        ),
        (
            "empty body",
            b"From: frank@example.com\r\nSubject: empty body\r\n\r\n".to_vec(),
        ),
    ]
}

/// About 1.1 MB: CRLF headers, a bare-LF text part where every third line starts with a dot
/// (lines of varying length, so dots and line ends fall on the server's 64 KiB chunk borders),
/// and a base64 attachment of pseudo-random bytes in 76-column lines.
fn big_message() -> Vec<u8> {
    let mut m =
        b"From: grace@example.com\r\nTo: bob@example.com\r\nSubject: the quarterly figures\r\n\
                  MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
                  --b1\r\nContent-Type: text/plain\n\n"
            .to_vec();
    for i in 0..4000 {
        let dot = if i % 3 == 0 { "." } else { "" };
        m.extend_from_slice(format!("{dot}{i:05} {}\n", "x".repeat(i * 7 % 101)).as_bytes());
    }
    m.extend_from_slice(
        b"--b1\r\nContent-Type: application/octet-stream; name=\"figures.bin\"\r\n\
          Content-Transfer-Encoding: base64\r\n\r\n",
    );
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let bytes: Vec<u8> = (0..660_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 32) as u8
        })
        .collect();
    for chunk in base64(&bytes).chunks(76) {
        m.extend_from_slice(chunk);
        m.extend_from_slice(b"\r\n");
    }
    m.extend_from_slice(b"--b1--\r\n");
    m
}

fn base64(data: &[u8]) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(data.len() / 3 * 4 + 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]);
            } else {
                out.push(b'=');
            }
        }
    }
    out
}

/// What RETR delivers once un-dot-stuffed: every line ending CRLF, and a final CRLF added when
/// the message has none (the terminating `.` needs a line of its own).
fn on_the_wire(message: &[u8]) -> Vec<u8> {
    let mut out = crlf(message);
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A POP3 and POP3S server whose user `plain` has the fixtures in `new/`.
fn seeded_server() -> TestServer {
    let server = TestServer::start(&base_config(&["pop3", "pop3s"], ""));
    let messages = fixtures();
    let refs: Vec<&[u8]> = messages.iter().map(|(_, m)| m.as_slice()).collect();
    seed_maildir(&server.mail_root().join("plain"), &refs);
    server
}

/// Runs `program args` under `timeout`, with `envs` set; fails clearly when it is missing.
fn run_bounded(program: &str, args: &[&str], envs: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new("timeout");
    cmd.args(["-k", "5", CLIENT_LIMIT_SECS, program]).args(args);
    for (key, value) in envs {
        cmd.env(key, value);
    }
    let out = cmd.output().expect("coreutils' timeout runs");
    match out.status.code() {
        Some(124) | Some(137) => panic!(
            "{program} {args:?} did not finish within {CLIENT_LIMIT_SECS} s:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Some(126) | Some(127) => {
            panic!(
                "{program} is not installed: run .ci/setup as root (it installs the test clients)"
            )
        }
        _ => out,
    }
}

/// Escaped bytes around `at`, for failure messages.
fn excerpt(bytes: &[u8], at: usize) -> String {
    let start = at.saturating_sub(40);
    let end = (at + 40).min(bytes.len());
    format!("{:?}", String::from_utf8_lossy(&bytes[start..end]))
}

/// Checks that `downloaded` (label, bytes) is exactly the fixtures, each once, each as
/// `expect(fixture)`; the order does not matter. On a mismatch, shows where the closest
/// fixture differs.
fn assert_all_downloaded(
    client: &str,
    downloaded: &[(String, Vec<u8>)],
    expect: impl Fn(&[u8]) -> Vec<u8>,
) -> Vec<usize> {
    let fixtures = fixtures();
    let wanted: Vec<Vec<u8>> = fixtures.iter().map(|(_, m)| expect(m)).collect();
    assert_eq!(
        downloaded.len(),
        fixtures.len(),
        "{client}: downloaded {} messages, the maildrop has {}",
        downloaded.len(),
        fixtures.len()
    );
    let mut which = Vec::new();
    for (label, got) in downloaded {
        let Some(i) = wanted.iter().position(|w| w == got) else {
            let common = |w: &Vec<u8>| w.iter().zip(got).take_while(|(a, b)| a == b).count();
            let (i, at) = wanted
                .iter()
                .map(common)
                .enumerate()
                .max_by_key(|&(_, n)| n)
                .unwrap();
            panic!(
                "{client}: {label} ({} bytes) is no message of the maildrop; closest is \
                 \"{}\" ({} bytes), first difference at byte {at}:\n  expected {}\n  got      {}",
                got.len(),
                fixtures[i].0,
                wanted[i].len(),
                excerpt(&wanted[i], at),
                excerpt(got, at)
            );
        };
        which.push(i);
    }
    for (i, (name, _)) in fixtures.iter().enumerate() {
        let times = which.iter().filter(|&&w| w == i).count();
        assert_eq!(times, 1, "{client}: \"{name}\" downloaded {times} times");
    }
    which
}

/// Message number → value, from lines like `LIST 3 1234` (with `prefix` "LIST ").
fn numbered(stdout: &str, prefix: &str) -> BTreeMap<u32, String> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix(prefix))
        .map(|l| {
            let (n, v) = l.split_once(' ').unwrap();
            (n.parse().unwrap(), v.to_string())
        })
        .collect()
}

/// Asserts that message n has UIDL `%08x%08x` of UID n and the maildir's UIDVALIDITY (the
/// fresh maildrop numbers its messages 1..n, so message number n is UID n), and that each
/// LIST size is the CRLF size of the message it turned out to be.
fn assert_list_and_uidl(
    client: &str,
    server: &TestServer,
    list: &BTreeMap<u32, String>,
    uidl: &BTreeMap<u32, String>,
    contents: &[usize],
) {
    let fixtures = fixtures();
    let validity = maildir_uidvalidity(&server.mail_root().join("plain"));
    let n = fixtures.len() as u32;
    assert_eq!(
        list.keys().copied().collect::<Vec<_>>(),
        (1..=n).collect::<Vec<_>>()
    );
    assert_eq!(
        uidl.keys().copied().collect::<Vec<_>>(),
        (1..=n).collect::<Vec<_>>()
    );
    for (number, &i) in (1..=n).zip(contents) {
        let (name, message) = &fixtures[i];
        assert_eq!(
            list[&number],
            pop3_size(message).to_string(),
            "{client}: LIST size of message {number} (\"{name}\") is not what RETR sends"
        );
        assert_eq!(
            uidl[&number],
            format!("{number:08x}{validity:08x}"),
            "{client}: UIDL of message {number}"
        );
    }
}

/// One poplib session that LISTs, UIDLs and RETRs everything; returns its stdout and the
/// downloaded messages in message-number order.
fn poplib_download(server: &TestServer, tls: &str) -> (String, Vec<(String, Vec<u8>)>) {
    let script = common::client_script("mailclients.py");
    let script = script.to_str().expect("a UTF-8 path");
    let dir = tempfile::tempdir().unwrap();
    let addr = server.addr(if tls == "implicit" { "pop3s" } else { "pop3" });
    let port = addr.port().to_string();
    let out = run_bounded(
        "python3",
        &[
            script,
            "pop3",
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--user",
            "plain",
            "--password",
            PASSWORD,
            "--tls",
            tls,
            "--download",
            &dir.path().display().to_string(),
        ],
        &[],
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "poplib ({tls}) failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut messages: Vec<(u32, Vec<u8>)> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let n = e.file_name().to_string_lossy().parse().unwrap();
            (n, std::fs::read(e.path()).unwrap())
        })
        .collect();
    messages.sort();
    let messages = messages
        .into_iter()
        .map(|(n, m)| (format!("message {n}"), m))
        .collect();
    (stdout, messages)
}

#[test]
fn poplib_downloads_every_message_byte_exactly_over_pop3_stls_and_pop3s() {
    let server = seeded_server();
    let mut uidls = Vec::new();
    for tls in ["none", "starttls", "implicit"] {
        let client = format!("poplib ({tls})");
        let (stdout, messages) = poplib_download(&server, tls);
        let total: usize = fixtures().iter().map(|(_, m)| pop3_size(m)).sum();
        assert!(
            stdout.contains(&format!("STAT {} {total}\n", fixtures().len())),
            "{client}: STAT before any RETR:\n{stdout}"
        );
        let contents = assert_all_downloaded(&client, &messages, on_the_wire);
        let uidl = numbered(&stdout, "UIDL ");
        assert_list_and_uidl(
            &client,
            &server,
            &numbered(&stdout, "LIST "),
            &uidl,
            &contents,
        );
        uidls.push(uidl);
    }
    // Three sessions, three times the same unique ids: a client keeping mail on the server
    // must never see a message as new twice.
    assert_eq!(uidls[0], uidls[1], "UIDL changed between sessions");
    assert_eq!(uidls[1], uidls[2], "UIDL changed between sessions");
    server.wait_for_log(
        "pop3-login: Login: user=<plain>, method=PLAIN, rip=127.0.0.1, lip=127.0.0.1, TLS",
    );
}

/// curl's arguments for one transport: the URL scheme and port, and its TLS options.
fn curl_transport<'a>(server: &TestServer, transport: &'a str) -> (String, Vec<&'a str>) {
    match transport {
        "plain" => (format!("pop3://{}", server.addr("pop3")), vec![]),
        "stls" => (
            format!("pop3://{}", server.addr("pop3")),
            vec!["--ssl-reqd", "-k"],
        ),
        "pop3s" => (format!("pop3s://{}", server.addr("pop3s")), vec!["-k"]),
        _ => unreachable!(),
    }
}

fn curl(url: &str, tls: &[&str]) -> Output {
    let user = format!("plain:{PASSWORD}");
    let args = [
        &["-sS", "-v", "--max-time", "60", "-u", &user][..],
        tls,
        &[url],
    ]
    .concat();
    run_bounded("curl", &args, &[])
}

#[test]
fn curl_downloads_every_message_byte_exactly_over_pop3_stls_and_pop3s() {
    let server = seeded_server();
    let n = fixtures().len();
    for transport in ["plain", "stls", "pop3s"] {
        let client = format!("curl ({transport})");
        let (base, tls) = curl_transport(&server, transport);
        // No message number: curl sends LIST and prints its lines as they came.
        let out = curl(&format!("{base}/"), &tls);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{client} LIST failed:\n{stderr}");
        let listing = String::from_utf8(out.stdout).unwrap();
        assert!(
            listing.ends_with("\r\n") && listing.lines().count() == n,
            "{client}: LIST printed {listing:?}"
        );
        if transport == "stls" {
            assert!(
                stderr.contains("> STLS"),
                "curl did not use STLS:\n{stderr}"
            );
        }
        let list: BTreeMap<u32, String> = listing
            .lines()
            .map(|l| {
                let (n, size) = l.split_once(' ').unwrap();
                (n.parse().unwrap(), size.to_string())
            })
            .collect();

        let mut messages = Vec::new();
        for number in 1..=n {
            let out = curl(&format!("{base}/{number}"), &tls);
            assert!(
                out.status.success(),
                "{client} RETR {number} failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            messages.push((format!("message {number}"), out.stdout));
        }
        // curl removes the dot-stuffing and the terminator; the rest is the wire form.
        let contents = assert_all_downloaded(&client, &messages, on_the_wire);
        let fixtures = fixtures();
        for (number, &i) in (1..=n as u32).zip(&contents) {
            assert_eq!(
                list[&number],
                pop3_size(&fixtures[i].1).to_string(),
                "{client}: LIST size of message {number} (\"{}\")",
                fixtures[i].0
            );
        }
    }
}

/// How fetchmail reaches the server.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Fetch {
    /// Plain POP3; `sslproto ''` stops fetchmail from upgrading with STLS on its own.
    Plain,
    /// POP3 on the plain port; `sslproto 'TLS1.2+'` without `ssl` makes STLS mandatory.
    Stls,
    /// POP3S (`ssl`).
    Pop3s,
}

/// A fetchmail set-up: its rcfile, HOME, id and pid files, and the directory its MDA delivers
/// to (one file per message).
struct Fetchmail {
    dir: tempfile::TempDir,
    rc: std::path::PathBuf,
}

impl Fetchmail {
    /// `keep`: leave the mail on the server and remember UIDL values (`uidl`) so the next run
    /// fetches only new mail. `exact`: `no stripcr` and `--invisible` (see `run`).
    fn new(server: &TestServer, how: Fetch, keep: bool, exact: bool) -> Fetchmail {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        std::fs::create_dir(dir.path().join("home")).unwrap();
        let (port, tls) = match how {
            Fetch::Plain => (server.addr("pop3").port(), "sslproto ''"),
            Fetch::Stls => (server.addr("pop3").port(), "sslproto 'TLS1.2+'"),
            Fetch::Pop3s => (server.addr("pop3s").port(), "ssl"),
        };
        let rc = dir.path().join("fetchmailrc");
        std::fs::write(
            &rc,
            format!(
                "set no syslog\n\
                 poll 127.0.0.1 service {port} with proto POP3 uidl\n\
                 \x20 user \"plain\" there with password \"{PASSWORD}\"\n\
                 \x20 {keep}\n\
                 \x20 no rewrite\n\
                 \x20 {stripcr}\n\
                 \x20 {tls}\n\
                 \x20 no sslcertck\n\
                 \x20 mda \"/bin/sh -c 'cat > {out}/msg.$$'\"\n",
                keep = if keep { "keep" } else { "no keep" },
                stripcr = if exact { "no stripcr" } else { "stripcr" },
                out = out.display(),
            ),
        )
        .unwrap();
        // fetchmail refuses an rcfile others can read (it holds a password).
        std::fs::set_permissions(&rc, std::fs::Permissions::from_mode(0o600)).unwrap();
        Fetchmail { dir, rc }
    }

    /// Runs fetchmail once (verbose, so a failure shows the POP3 dialogue); returns the exit
    /// code (0 mail fetched, 1 no mail) and the transcript.
    fn run(&self, exact: bool) -> (i32, String) {
        let d = self.dir.path();
        let rc = self.rc.display().to_string();
        let idfile = d.join("fetchids").display().to_string();
        let pidfile = d.join("fetchmail.pid").display().to_string();
        let mut args = vec![
            "-f",
            &rc,
            "-v",
            "--nodetach",
            "--idfile",
            &idfile,
            "--pidfile",
            &pidfile,
        ];
        if exact {
            // Without it fetchmail prepends its own Received: header.
            args.push("--invisible");
        }
        let out = run_bounded("fetchmail", &args, &[("HOME", &d.join("home"))]);
        let transcript = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), transcript)
    }

    /// What the MDA received, one entry per message.
    fn delivered(&self) -> Vec<(String, Vec<u8>)> {
        std::fs::read_dir(self.dir.path().join("out"))
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect()
    }
}

/// Messages in the server's maildir (new/ and cur/).
fn messages_on_server(server: &TestServer) -> usize {
    ["new", "cur"]
        .iter()
        .map(|sub| {
            std::fs::read_dir(server.mail_root().join("plain").join(sub))
                .unwrap()
                .count()
        })
        .sum()
}

/// fetchmail in keep mode: everything arrives byte for byte, nothing leaves the server, and
/// the second run finds nothing new because fetchmail remembered the UIDL values.
///
/// With an MDA, fetchmail hands over the message as RETR/TOP sent it, un-dot-stuffed, except
/// for what its documentation lists: a `Received:` header (off with `--invisible`), CRs at the
/// ends of lines removed (`stripcr`, the default with an MDA; off with `no stripcr`), address
/// rewriting in To/Cc/From (off with `no rewrite`) and MIME decoding (off unless `mimedecode`).
/// So here the MDA must receive exactly the CRLF wire form.
fn fetchmail_keeps_mail(how: Fetch) {
    let server = seeded_server();
    let n = fixtures().len();
    let fetchmail = Fetchmail::new(&server, how, true, true);
    let (code, transcript) = fetchmail.run(true);
    assert_eq!(
        code, 0,
        "fetchmail ({how:?}, keep) did not fetch mail:\n{transcript}"
    );
    match how {
        Fetch::Stls => assert!(
            transcript.contains("POP3> STLS") && transcript.contains("upgrade to TLS succeeded"),
            "fetchmail did not upgrade with STLS:\n{transcript}"
        ),
        Fetch::Plain => assert!(!transcript.contains("POP3> STLS"), "{transcript}"),
        Fetch::Pop3s => assert!(
            transcript.contains("SSL/TLS: using protocol"),
            "{transcript}"
        ),
    }
    let client = format!("fetchmail ({how:?}, keep)");
    assert_all_downloaded(&client, &fetchmail.delivered(), on_the_wire);
    assert!(
        transcript.contains("not flushed"),
        "{client} did not keep:\n{transcript}"
    );
    assert_eq!(
        messages_on_server(&server),
        n,
        "{client} left the mail on the server"
    );

    let (code, transcript) = fetchmail.run(true);
    assert_eq!(
        code, 1,
        "{client}, second run: expected exit 1 (no new mail):\n{transcript}"
    );
    assert!(
        transcript.contains(&format!("{n} messages ({n} seen)")),
        "{client}, second run: every message should count as seen:\n{transcript}"
    );
    assert_eq!(
        fetchmail.delivered().len(),
        n,
        "{client}, second run delivered again"
    );
    assert_eq!(messages_on_server(&server), n);
}

#[test]
fn fetchmail_keep_mode_over_plain_pop3_fetches_everything_once() {
    fetchmail_keeps_mail(Fetch::Plain);
}

#[test]
fn fetchmail_keep_mode_over_stls_fetches_everything_once() {
    fetchmail_keeps_mail(Fetch::Stls);
}

#[test]
fn fetchmail_keep_mode_over_pop3s_fetches_everything_once() {
    fetchmail_keeps_mail(Fetch::Pop3s);
}

/// fetchmail's defaults with an MDA: LF line ends (`stripcr`) and its own `Received:` header
/// first. That header is taken off; the rest must be the message with LF line ends.
fn without_fetchmail_header(client: &str, message: &[u8]) -> Vec<u8> {
    let text = message;
    assert!(
        text.starts_with(b"Received: from 127.0.0.1"),
        "{client}: expected fetchmail's Received: header first, got {}",
        excerpt(text, 0)
    );
    let mut at = 0;
    loop {
        let end = at + text[at..].iter().position(|&b| b == b'\n').unwrap() + 1;
        let header_goes_on = matches!(text.get(end), Some(b' ') | Some(b'\t'));
        at = end;
        if !header_goes_on {
            break;
        }
    }
    let header = String::from_utf8_lossy(&text[..at]);
    assert!(
        header.contains("with POP3 (fetchmail-"),
        "{client}: {header}"
    );
    text[at..].to_vec()
}

fn lf(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len());
    for (i, &b) in message.iter().enumerate() {
        if !(b == b'\r' && message.get(i + 1) == Some(&b'\n')) {
            out.push(b);
        }
    }
    out
}

/// fetchmail in delete mode, with its defaults: every message arrives, the maildrop is empty
/// afterwards, and a second run finds no mail.
fn fetchmail_deletes_mail(how: Fetch) {
    let server = seeded_server();
    let client = format!("fetchmail ({how:?}, delete)");
    let fetchmail = Fetchmail::new(&server, how, false, false);
    let (code, transcript) = fetchmail.run(false);
    assert_eq!(code, 0, "{client} did not fetch mail:\n{transcript}");
    let delivered: Vec<(String, Vec<u8>)> = fetchmail
        .delivered()
        .into_iter()
        .map(|(name, m)| {
            let m = without_fetchmail_header(&client, &m);
            (name, m)
        })
        .collect();
    assert_all_downloaded(&client, &delivered, |m| lf(&on_the_wire(m)));
    assert_eq!(
        messages_on_server(&server),
        0,
        "{client}: the maildrop should be empty after QUIT:\n{transcript}"
    );
    server.wait_for_log(&format!("del={n}/{n}", n = fixtures().len()));

    let (code, transcript) = fetchmail.run(false);
    assert_eq!(
        code, 1,
        "{client}, second run: expected exit 1 (no mail):\n{transcript}"
    );
    assert_eq!(fetchmail.delivered().len(), fixtures().len());
}

#[test]
fn fetchmail_delete_mode_over_plain_pop3_empties_the_maildrop() {
    fetchmail_deletes_mail(Fetch::Plain);
}

#[test]
fn fetchmail_delete_mode_over_pop3s_empties_the_maildrop() {
    fetchmail_deletes_mail(Fetch::Pop3s);
}
