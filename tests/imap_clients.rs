//! IMAP with real clients nobody here wrote: Python's `imaplib` (a tour of every command over
//! plain IMAP, STARTTLS and IMAPS, `tests/clients/imap_tour.py`), `curl` (`imap://` and
//! `imaps://`: LIST, byte-exact messages by UID, a custom command) and `mbsync` from isync (a
//! two-way sync with a local maildir: pull, push of flags and a new message, a remote deletion).
//!
//! curl and isync are system packages (`.ci/setup` installs them); every external process runs
//! under `timeout`, so a hung client fails the test instead of hanging it.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

use sha2::{Digest, Sha256};

use common::{base_config, crlf, seed_maildir, TestServer, PASSWORD};

/// Seconds any one external client may run.
const CLIENT_LIMIT_SECS: &str = "120";

/// The INBOX every test starts with (UIDs 1 to 4).
fn fixtures() -> Vec<Vec<u8>> {
    let mut big = b"From: Grace <grace@example.com>\r\nTo: bob@example.com\r\n\
                    Subject: big figures\r\n\r\n"
        .to_vec();
    let mut i = 0;
    while big.len() < 300_000 {
        big.extend_from_slice(format!("{i:05} {}\n", "z".repeat(i * 7 % 89)).as_bytes());
        i += 1;
    }
    vec![
        b"From: Alice <alice@example.com>\nTo: bob@example.com\nSubject: plain one\n\
          Date: Mon, 02 Mar 2020 10:00:00 +0000\nMessage-ID: <c1@example.com>\n\n\
          Hello Bob,\nbare LF lines.\n"
            .to_vec(),
        concat!(
            "From: carol@example.org\r\n",
            "To: alice@example.com\r\n",
            "Subject: Fwd: nested\r\n",
            "MIME-Version: 1.0\r\n",
            "Content-Type: multipart/mixed; boundary=\"b\"\r\n",
            "\r\n",
            "--b\r\n",
            "Content-Type: text/plain; charset=utf-8\r\n",
            "Content-Transfer-Encoding: quoted-printable\r\n",
            "\r\n",
            "Gr=C3=BC=C3=9Fe aus K=C3=B6ln.\r\n",
            "--b\r\n",
            "Content-Type: message/rfc822\r\n",
            "\r\n",
            "From: dave@example.net\r\n",
            "Subject: original\r\n",
            "\r\n",
            "The original.\r\n",
            "--b--\r\n",
        )
        .as_bytes()
        .to_vec(),
        "From: Dörte <doerte@example.com>\nSubject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\n\
         MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\
         Content-Transfer-Encoding: 8bit\n\nÜnïcödé, 東京, 🦀\nno final newline"
            .as_bytes()
            .to_vec(),
        big,
    ]
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// IMAP and IMAPS, with the fixtures in `plain`'s INBOX.
fn seeded_server() -> TestServer {
    let server = TestServer::start(&base_config(&["imap", "imaps"], ""));
    let messages = fixtures();
    let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
    seed_maildir(&server.mail_root().join("plain"), &refs);
    server
}

/// Runs `program args` under `timeout` with `envs`; fails clearly when it hangs or is missing.
fn run_bounded(program: &str, args: &[&str], envs: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new("timeout");
    cmd.args(["-k", "5", CLIENT_LIMIT_SECS, program]).args(args);
    for (key, value) in envs {
        cmd.env(key, value);
    }
    let out = cmd.output().expect("coreutils' timeout runs");
    match out.status.code() {
        Some(124) | Some(137) => panic!(
            "{program} {args:?} did not finish within {CLIENT_LIMIT_SECS} s:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Some(126) | Some(127) => panic!(
            "{program} is not installed (the project's .ci/setup installs it): {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        _ => out,
    }
}

/// Runs `tests/clients/imap_tour.py MODE` against `port`; asserts success; returns stdout.
fn imaplib(mode: &str, port: u16, args: &[&str]) -> String {
    let script = common::client_script("imap_tour.py");
    let script = script.to_str().expect("a UTF-8 path");
    let port = port.to_string();
    let mut all = vec![
        script,
        mode,
        "--port",
        &port,
        "--user",
        "plain",
        "--password",
        PASSWORD,
    ];
    all.extend_from_slice(args);
    let out = run_bounded("python3", &all, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "imap_tour.py {mode} {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn imaplib_tour(tls: &str, protocol: &str) {
    let server = seeded_server();
    let out = imaplib(
        "tour",
        server.addr(protocol).port(),
        &["--tls", tls, "--folder", "Tour", "--expect", "4"],
    );
    assert!(out.contains("\nTOUR OK\n"), "{out}");
    // Every message came back byte for byte (CRLF line ends).
    let bodies: Vec<&str> = out.lines().filter(|l| l.starts_with("BODY ")).collect();
    let expected: Vec<String> = fixtures()
        .iter()
        .enumerate()
        .map(|(i, m)| format!("BODY {} {}", i + 1, sha256_hex(&crlf(m))))
        .collect();
    assert_eq!(bodies, expected, "{out}");
    server.wait_for_log("imap(plain): Disconnected: Logged out");
}

#[test]
fn imaplib_tour_over_plain_imap() {
    imaplib_tour("none", "imap");
}

#[test]
fn imaplib_tour_over_starttls() {
    imaplib_tour("starttls", "imap");
}

#[test]
fn imaplib_tour_over_imaps() {
    imaplib_tour("implicit", "imaps");
}

fn curl(args: &[&str]) -> Vec<u8> {
    let mut all = vec!["-sS", "--max-time", "60", "--user"];
    let user = format!("plain:{PASSWORD}");
    all.push(&user);
    all.extend_from_slice(args);
    let out = run_bounded("curl", &all, &[]);
    assert!(
        out.status.success(),
        "curl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn curl_lists_fetches_by_uid_byte_exactly_and_runs_custom_commands() {
    let server = seeded_server();
    let imap = format!("imap://127.0.0.1:{}", server.addr("imap").port());
    let imaps = format!("imaps://127.0.0.1:{}", server.addr("imaps").port());
    // Expunge UID 1 first, so UIDs and sequence numbers differ.
    imaplib(
        "delete",
        server.addr("imap").port(),
        &["--subject", "plain one"],
    );

    let list = String::from_utf8(curl(&[&format!("{imap}/")])).unwrap();
    for name in ["INBOX", "Drafts", "Sent", "Trash", "Junk", "Archive"] {
        assert!(
            list.lines()
                .any(|l| l.starts_with("* LIST (") && l.ends_with(name)),
            "{name} in:\n{list}"
        );
    }
    assert!(list.contains("\\Sent"), "{list}");

    let messages = fixtures();
    for uid in 2..=4 {
        let expected = crlf(&messages[uid - 1]);
        let url = format!("{imap}/INBOX;UID={uid}");
        assert!(curl(&[&url]) == expected, "imap:// UID {uid}");
        assert!(
            curl(&["--ssl-reqd", "-k", &url]) == expected,
            "STARTTLS UID {uid}"
        );
        let url = format!("{imaps}/INBOX;UID={uid}");
        assert!(curl(&["-k", &url]) == expected, "imaps:// UID {uid}");
    }
    // ;MAILINDEX= is the sequence number: message 1 is now UID 2.
    assert!(curl(&[&format!("{imap}/INBOX;MAILINDEX=1")]) == crlf(&messages[1]));
    // A section.
    let header = curl(&[&format!("{imap}/INBOX;UID=3;SECTION=HEADER")]);
    let whole = crlf(&messages[2]);
    let end = whole.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(
        String::from_utf8_lossy(&header),
        String::from_utf8_lossy(&whole[..end])
    );
    // A search in the URL, and a custom command: curl shows the untagged responses.
    let search = String::from_utf8(curl(&[&format!("{imap}/INBOX?SUBJECT%20nested")])).unwrap();
    assert_eq!(
        search.trim_end(),
        "* SEARCH 1",
        "sequence numbers: {search}"
    );
    let examine = String::from_utf8(curl(&["-X", "EXAMINE INBOX", &format!("{imap}/")])).unwrap();
    assert!(examine.contains("* 3 EXISTS"), "{examine}");
    assert!(examine.contains("[UIDVALIDITY "), "{examine}");
    let examine =
        String::from_utf8(curl(&["-k", "-X", "EXAMINE INBOX", &format!("{imaps}/")])).unwrap();
    assert!(examine.contains("* 3 EXISTS"), "{examine}");
}

/// Flags of a maildir file name (`...:2,FS`), as IMAP names them.
fn maildir_flags(name: &str) -> BTreeSet<String> {
    let info = name.rsplit_once(":2,").map_or("", |(_, f)| f);
    info.chars()
        .filter_map(|c| match c {
            'D' => Some("\\Draft"),
            'F' => Some("\\Flagged"),
            'R' => Some("\\Answered"),
            'S' => Some("\\Seen"),
            'T' => Some("\\Deleted"),
            _ => None,
        })
        .map(String::from)
        .collect()
}

/// `(flags, sha256 of the normalized content)` of every message in a local maildir.
fn local_messages(maildir: &Path) -> Vec<(BTreeSet<String>, String)> {
    let mut out = Vec::new();
    for sub in ["cur", "new"] {
        for entry in std::fs::read_dir(maildir.join(sub)).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let bytes = std::fs::read(entry.path()).unwrap();
            out.push((maildir_flags(&name), sha256_hex(&normalized(&bytes))));
        }
    }
    out.sort();
    out
}

/// The same for a server folder, from `imap_tour.py dump`.
fn server_messages(server: &TestServer, folder: &str) -> Vec<(BTreeSet<String>, String)> {
    let out = imaplib("dump", server.addr("imap").port(), &["--folder", folder]);
    let mut messages: Vec<(BTreeSet<String>, String)> = out
        .lines()
        .filter_map(|l| l.strip_prefix("MSG "))
        .map(|l| {
            let fields: Vec<&str> = l.split(' ').collect();
            let flags = fields[1]
                .split(',')
                .filter(|f| *f != "-")
                .map(String::from)
                .collect();
            (flags, fields[2].to_string())
        })
        .collect();
    messages.sort();
    messages
}

/// LF line ends and no `X-TUID` header (mbsync's bookkeeping in the copies it writes), so
/// the server's and the local copy of a message compare equal; `imap_tour.py` does the same.
fn normalized(bytes: &[u8]) -> Vec<u8> {
    let mut lf = Vec::with_capacity(bytes.len());
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
            continue;
        }
        lf.push(b);
    }
    let split = lf.windows(2).position(|w| w == b"\n\n").unwrap_or(lf.len());
    let (head, rest) = lf.split_at(split);
    let kept: Vec<&[u8]> = head
        .split(|&b| b == b'\n')
        .filter(|l| !l.starts_with(b"X-TUID: "))
        .collect();
    let mut out = kept.join(&b'\n');
    out.extend_from_slice(rest);
    out
}

/// The local file holding the message whose header contains `needle`.
fn local_file(maildir: &Path, needle: &str) -> std::path::PathBuf {
    for sub in ["cur", "new"] {
        for entry in std::fs::read_dir(maildir.join(sub)).unwrap().flatten() {
            let text = String::from_utf8_lossy(&std::fs::read(entry.path()).unwrap()).into_owned();
            if text.contains(needle) {
                return entry.path();
            }
        }
    }
    panic!("no local message with {needle:?} in {}", maildir.display());
}

fn mbsync(config: &Path, home: &Path) -> String {
    let out = run_bounded(
        "mbsync",
        &["-c", config.to_str().unwrap(), "-a"],
        &[("HOME", home)],
    );
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "mbsync failed:\n{text}");
    text
}

#[test]
fn mbsync_two_way_sync_agrees_with_the_server() {
    let server = seeded_server();
    let local = tempfile::tempdir().unwrap();
    let port = server.addr("imap").port();
    let root = local.path().join("mail");
    std::fs::create_dir(&root).unwrap();
    let inbox = root.join("INBOX");
    let config = local.path().join("mbsyncrc");
    std::fs::write(
        &config,
        format!(
            "IMAPAccount roost\nHost 127.0.0.1\nPort {port}\nUser plain\nPass \"{PASSWORD}\"\n\
             SSLType None\nAuthMechs LOGIN\nTimeout 60\n\n\
             IMAPStore remote\nAccount roost\n\n\
             MaildirStore local\nPath {}/\nInbox {}\nSubFolders Verbatim\n\n\
             Channel sync\nFar :remote:\nNear :local:\nPatterns *\nSync All\nCreate Both\n\
             Expunge Both\nSyncState *\n",
            root.display(),
            inbox.display()
        ),
    )
    .unwrap();

    // Pull everything.
    mbsync(&config, local.path());

    let pulled = local_messages(&inbox);
    assert_eq!(pulled.len(), 4, "{pulled:?}");
    assert_eq!(pulled, server_messages(&server, "INBOX"));
    let expected: BTreeSet<String> = fixtures()
        .iter()
        .map(|m| sha256_hex(&normalized(&crlf(m))))
        .collect();
    let got: BTreeSet<String> = pulled.iter().map(|(_, h)| h.clone()).collect();
    assert_eq!(got, expected, "the local copies are the messages");
    for folder in ["Drafts", "Sent", "Trash", "Junk", "Archive"] {
        assert!(
            root.join(folder).join("cur").is_dir(),
            "{folder} created locally"
        );
    }

    // Flag one locally (rename its file as a maildir client does), and write a new message.
    let nested = local_file(&inbox, "Subject: Fwd: nested");
    let name = nested.file_name().unwrap().to_string_lossy().into_owned();
    let base = name.split(":2,").next().unwrap();
    std::fs::rename(&nested, inbox.join("cur").join(format!("{base}:2,FS"))).unwrap();
    let fresh = b"From: me@example.com\nTo: bob@example.com\nSubject: written offline\n\n\
                  Composed without a connection.\n";
    std::fs::write(inbox.join("new").join("1800000000.local1.host"), fresh).unwrap();
    mbsync(&config, local.path());
    let on_server = server_messages(&server, "INBOX");
    assert_eq!(on_server.len(), 5, "{on_server:?}");
    let nested_hash = sha256_hex(&normalized(&crlf(&fixtures()[1])));
    let flagged: Vec<&BTreeSet<String>> = on_server
        .iter()
        .filter(|(_, h)| *h == nested_hash)
        .map(|(f, _)| f)
        .collect();
    assert_eq!(
        flagged,
        [&["\\Flagged".to_string(), "\\Seen".to_string()].into()],
        "the local flags reached the server"
    );
    assert!(
        on_server.iter().any(|(_, h)| *h == sha256_hex(fresh)),
        "the new local message reached the server: {on_server:?}"
    );

    // Delete one on the server; the next sync removes the local copy.
    imaplib("delete", port, &["--subject", "plain one"]);
    mbsync(&config, local.path());
    let on_server = server_messages(&server, "INBOX");
    let here = local_messages(&inbox);
    assert_eq!(on_server.len(), 4, "{on_server:?}");
    assert_eq!(here, on_server, "server and local copy agree");
    // A sync with nothing to do changes nothing.
    mbsync(&config, local.path());
    assert_eq!(local_messages(&inbox), server_messages(&server, "INBOX"));
}
