//! The IMAP extensions beyond RFC 3501 over a real socket, line by line: ESEARCH and ESORT,
//! LIST-EXTENDED and LIST-STATUS, SORT and THREAD, CONDSTORE/QRESYNC, BINARY, IMAP4rev2 with
//! UTF-8 mailbox names, and COMPRESS=DEFLATE (driven by Python's zlib).

mod common;

use std::process::Command;

use common::{base_config, imap_login, imap_run as run, LineClient, TestServer, PASSWORD};

fn logged_in(server: &TestServer) -> LineClient {
    imap_login(server, "plain")
}

fn append(c: &mut LineClient, tag: &str, message: &str) {
    c.send(&format!(
        "{tag} APPEND INBOX {{{}+}}\r\n{message}\r\n",
        message.len()
    ));
    let reply = c.until(&format!("{tag} "));
    assert!(
        reply.last().unwrap().starts_with(&format!("{tag} OK")),
        "{reply:?}"
    );
}

fn server_with_thread() -> (TestServer, LineClient) {
    let server = TestServer::start(&base_config(&["imap"], ""));
    let mut c = logged_in(&server);
    append(&mut c, "p1", "Subject: b topic\r\nMessage-ID: <1@x>\r\nDate: Mon, 2 Nov 2026 10:00:00 +0000\r\n\r\nfirst\r\n");
    append(&mut c, "p2", "Subject: a other\r\nMessage-ID: <2@x>\r\nDate: Tue, 3 Nov 2026 10:00:00 +0000\r\n\r\nsecond\r\n");
    append(&mut c, "p3", "Subject: Re: b topic\r\nMessage-ID: <3@x>\r\nIn-Reply-To: <1@x>\r\nReferences: <1@x>\r\nDate: Wed, 4 Nov 2026 10:00:00 +0000\r\n\r\nthird\r\n");
    run(&mut c, "s", "SELECT INBOX");
    (server, c)
}

#[test]
fn esearch_esort_sort_and_thread_answer_in_their_formats() {
    let (_server, mut c) = server_with_thread();
    let (u, t) = run(&mut c, "e1", "UID SEARCH RETURN (MIN MAX COUNT ALL) ALL");
    assert_eq!(
        u,
        ["* ESEARCH (TAG \"e1\") UID MIN 1 MAX 3 COUNT 3 ALL 1:3"]
    );
    assert!(t.starts_with("e1 OK"), "{t}");
    let (u, _) = run(&mut c, "e2", "SEARCH RETURN (COUNT) SUBJECT topic");
    assert_eq!(u, ["* ESEARCH (TAG \"e2\") COUNT 2"]);
    let (u, _) = run(&mut c, "s1", "SORT (SUBJECT) UTF-8 ALL");
    assert_eq!(
        u,
        ["* SORT 2 1 3"],
        "base subjects: \"a other\", \"b topic\" twice"
    );
    let (u, _) = run(&mut c, "s2", "SORT (REVERSE DATE) UTF-8 ALL");
    assert_eq!(u, ["* SORT 3 2 1"]);
    let (u, _) = run(&mut c, "s3", "UID SORT RETURN (ALL) (SUBJECT) UTF-8 ALL");
    assert_eq!(u, ["* ESEARCH (TAG \"s3\") UID ALL 2,1,3"]);
    let (u, _) = run(&mut c, "t1", "THREAD REFERENCES UTF-8 ALL");
    assert_eq!(u, ["* THREAD (1 3)(2)"]);
    let (u, _) = run(&mut c, "t2", "THREAD ORDEREDSUBJECT UTF-8 ALL");
    assert_eq!(
        u,
        ["* THREAD (1 3)(2)"],
        "threads ordered by their first message's date"
    );
}

#[test]
fn list_extended_and_list_status_select_and_report() {
    let server = TestServer::start(&base_config(&["imap"], ""));
    let mut c = logged_in(&server);
    let (u, _) = run(&mut c, "l1", "LIST (SPECIAL-USE) \"\" *");
    assert_eq!(u.len(), 5, "{u:?}");
    assert!(
        u.contains(&"* LIST (\\HasNoChildren \\Sent) \"/\" Sent".to_string()),
        "{u:?}"
    );
    let (u, _) = run(
        &mut c,
        "l2",
        "LIST \"\" INBOX RETURN (SUBSCRIBED STATUS (MESSAGES UIDNEXT))",
    );
    assert_eq!(
        u,
        [
            "* LIST (\\HasNoChildren \\Subscribed) \"/\" INBOX",
            "* STATUS INBOX (MESSAGES 0 UIDNEXT 1)"
        ]
    );
}

#[test]
fn qresync_reports_vanished_and_changed_flags() {
    let (_server, mut c) = server_with_thread();
    let (u, _) = run(&mut c, "q1", "ENABLE QRESYNC");
    assert_eq!(u, ["* ENABLED QRESYNC"]);
    let (u, _) = run(&mut c, "q2", "SELECT INBOX");
    let validity: String = u
        .iter()
        .find_map(|l| l.strip_prefix("* OK [UIDVALIDITY "))
        .and_then(|r| r.split(']').next())
        .unwrap()
        .to_string();
    let highest: u64 = u
        .iter()
        .find_map(|l| l.strip_prefix("* OK [HIGHESTMODSEQ "))
        .and_then(|r| r.split(']').next())
        .unwrap()
        .parse()
        .unwrap();
    run(&mut c, "q3", "UID STORE 2 +FLAGS.SILENT (\\Deleted)");
    let (u, _) = run(&mut c, "q4", "UID EXPUNGE 2");
    assert_eq!(u, ["* VANISHED 2"], "QRESYNC reports VANISHED, not EXPUNGE");
    run(&mut c, "q5", "UID STORE 3 +FLAGS.SILENT (\\Flagged)");
    let (u, t) = run(
        &mut c,
        "q6",
        &format!("SELECT INBOX (QRESYNC ({validity} {highest} 1:3))"),
    );
    assert!(t.starts_with("q6 OK"), "{t}");
    assert!(
        u.contains(&"* OK [CLOSED] Previous mailbox closed.".to_string()),
        "{u:?}"
    );
    assert!(u.contains(&"* VANISHED (EARLIER) 2".to_string()), "{u:?}");
    let changed: Vec<&String> = u.iter().filter(|l| l.contains(" FETCH (UID 3 ")).collect();
    assert_eq!(changed.len(), 1, "{u:?}");
    assert!(
        changed[0].contains("\\Flagged") && changed[0].contains("MODSEQ ("),
        "{u:?}"
    );
}

#[test]
fn binary_undoes_the_transfer_encoding() {
    let server = TestServer::start(&base_config(&["imap"], ""));
    let mut c = logged_in(&server);
    append(&mut c, "b0", "Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8gd29ybGQ=\r\n--B\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin\r\n--B--\r\n");
    run(&mut c, "s", "SELECT INBOX");
    let lines = c.cmd("b1 FETCH 1 (BINARY.PEEK[1] BINARY.SIZE[1])", "b1 ");
    assert_eq!(lines[0], "* 1 FETCH (BINARY[1] {11}\r\n");
    assert_eq!(lines[1], "hello world BINARY.SIZE[1] 11)\r\n");
    let (_, t) = run(&mut c, "b2", "FETCH 1 (BINARY.PEEK[2])");
    assert!(t.starts_with("b2 NO [UNKNOWN-CTE]"), "{t}");
}

#[test]
fn imap4rev2_speaks_utf8_names_and_esearch() {
    let server = TestServer::start(&base_config(&["imap"], ""));
    let mut c = logged_in(&server);
    let (u, _) = run(&mut c, "r1", "ENABLE IMAP4rev2");
    assert_eq!(u, ["* ENABLED IMAP4rev2"]);
    let (_, t) = run(&mut c, "r2", "CREATE \"Entwürfe\"");
    assert!(t.starts_with("r2 OK"), "{t}");
    assert!(
        server.mail_root().join("plain/.Entw&APw-rfe").is_dir(),
        "stored in modified UTF-7, as Dovecot does"
    );
    let (u, _) = run(&mut c, "r3", "LIST \"\" Entw*");
    assert_eq!(u, ["* LIST (\\HasNoChildren) \"/\" \"Entwürfe\""]);
    let (u, _) = run(&mut c, "r4", "SELECT \"Entwürfe\"");
    assert!(
        u.contains(&"* LIST () \"/\" \"Entwürfe\"".to_string()),
        "{u:?}"
    );
    assert!(
        !u.iter().any(|l| l.contains("RECENT")),
        "no RECENT in rev2: {u:?}"
    );
    let (u, _) = run(&mut c, "r5", "SEARCH ALL");
    assert_eq!(u, ["* ESEARCH (TAG \"r5\")"]);
    // Without UTF-8 enabled, a raw UTF-8 name is refused rather than stored wrongly.
    let mut old = logged_in(&server);
    let (_, t) = run(&mut old, "o1", "CREATE \"Grüße\"");
    assert!(t.starts_with("o1 NO"), "{t}");
}

#[test]
fn compress_deflate_carries_the_rest_of_the_session() {
    let server = TestServer::start(&base_config(&["imap"], ""));
    let script = r#"
import socket, sys, zlib
s = socket.create_connection(("127.0.0.1", int(sys.argv[1]))); s.settimeout(10)
f = s.makefile("rb")
def send(l): s.sendall(l.encode() + b"\r\n")
f.readline(); send('a LOGIN plain "' + sys.argv[2] + '"'); f.readline()
send("b COMPRESS DEFLATE"); print(f.readline().decode().strip())
c = zlib.compressobj(wbits=-15); d = zlib.decompressobj(wbits=-15)
s.sendall(c.compress(b"c NAMESPACE\r\n") + c.flush(zlib.Z_SYNC_FLUSH))
buf = b""
while b"c OK" not in buf:
    buf += d.decompress(s.recv(65536))
print(buf.decode().strip())
"#;
    let out = Command::new("python3")
        .args([
            "-c",
            script,
            &server.addr("imap").port().to_string(),
            PASSWORD,
        ])
        .output()
        .expect("python3");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.starts_with("b OK DEFLATE active."), "{text}");
    assert!(
        text.contains("* NAMESPACE ((\"\" \"/\")) NIL NIL"),
        "{text}"
    );
}

#[test]
fn searchres_saves_a_result_that_dollar_names_later() {
    let (_server, mut c) = server_with_thread();
    let (u, t) = run(&mut c, "r0", "FETCH $ (FLAGS)");
    assert!(
        u.is_empty() && t.starts_with("r0 OK"),
        "nothing saved yet: {u:?} {t}"
    );
    let (u, t) = run(&mut c, "r1", "SEARCH RETURN (SAVE) SUBJECT topic");
    assert!(u.is_empty(), "SAVE alone answers no ESEARCH: {u:?}");
    assert!(t.starts_with("r1 OK"), "{t}");
    let (u, _) = run(&mut c, "r2", "UID FETCH $ (UID)");
    assert_eq!(u, ["* 1 FETCH (UID 1)", "* 3 FETCH (UID 3)"]);
    let (u, _) = run(&mut c, "r3", "SEARCH $ BODY third");
    assert_eq!(u, ["* SEARCH 3"]);
    run(&mut c, "r4", "UID STORE 1 +FLAGS.SILENT (\\Deleted)");
    run(&mut c, "r5", "EXPUNGE");
    let (u, _) = run(&mut c, "r6", "FETCH $ (UID)");
    assert_eq!(
        u,
        ["* 2 FETCH (UID 3)"],
        "expunged messages leave the saved result"
    );
}

#[test]
fn list_extended_takes_several_patterns() {
    let server = TestServer::start(&base_config(&["imap"], ""));
    let mut c = logged_in(&server);
    let (u, t) = run(&mut c, "m1", "LIST \"\" (\"INBOX\" \"S*\" \"Trash\")");
    assert!(t.starts_with("m1 OK"), "{t}");
    let names: Vec<&str> = u.iter().filter_map(|l| l.rsplit(' ').next()).collect();
    assert_eq!(names, ["INBOX", "Sent", "Trash"], "{u:?}");
}

/// Ten messages with the subjects given, INBOX selected.
fn server_with_subjects(subjects: &[&str]) -> (TestServer, LineClient) {
    let server = TestServer::start(&base_config(&["imap"], ""));
    let mut c = logged_in(&server);
    for (i, subject) in subjects.iter().enumerate() {
        let message = format!("Subject: {subject}\r\n\r\nbody {i}\r\n");
        append(&mut c, &format!("p{i}"), &message);
    }
    run(&mut c, "s", "SELECT INBOX");
    (server, c)
}

#[test]
fn esearch_and_esort_write_compact_sequence_sets() {
    let subjects = ["c", "c", "a", "a", "b", "z", "z", "z", "z", "z"];
    let (_server, mut c) = server_with_subjects(&subjects);
    let (u, _) = run(&mut c, "e1", "UID SEARCH RETURN (ALL) 1:5");
    assert_eq!(u, ["* ESEARCH (TAG \"e1\") UID ALL 1:5"]);
    let (u, _) = run(&mut c, "e2", "SEARCH RETURN (ALL) 9:10,7,1:3");
    assert_eq!(u, ["* ESEARCH (TAG \"e2\") ALL 1:3,7,9:10"]);
    let (u, _) = run(
        &mut c,
        "e3",
        "UID SEARCH RETURN () OR 10 OR 9 OR 7 OR 3 OR 1 2",
    );
    assert_eq!(u, ["* ESEARCH (TAG \"e3\") UID ALL 1:3,7,9:10"]);
    // ESORT keeps the sort order: only ascending runs within it become ranges.
    let (u, _) = run(&mut c, "o1", "SORT RETURN (ALL) (SUBJECT) UTF-8 1:5");
    assert_eq!(u, ["* ESEARCH (TAG \"o1\") ALL 3:5,1:2"], "a a b c c");
    let (u, _) = run(
        &mut c,
        "o2",
        "UID SORT RETURN (ALL) (REVERSE SUBJECT) UTF-8 3:5",
    );
    assert_eq!(u, ["* ESEARCH (TAG \"o2\") UID ALL 5,3:4"], "b a a");
    let (u, _) = run(&mut c, "o3", "SORT RETURN (ALL) (SUBJECT) UTF-8 ALL");
    assert_eq!(u, ["* ESEARCH (TAG \"o3\") ALL 3:5,1:2,6:10"]);
}

/// The `n` of a tagged `OK [HIGHESTMODSEQ n]`, if it has one.
fn highest_in(tagged: &str) -> Option<u64> {
    let rest = tagged.split("[HIGHESTMODSEQ ").nth(1)?;
    rest.split(']').next()?.parse().ok()
}

/// The mod-sequence in a `* n FETCH (... MODSEQ (m) ...)` line.
fn modseq_in(line: &str) -> u64 {
    let rest = line.split("MODSEQ (").nth(1).unwrap_or_default();
    rest.split(')')
        .next()
        .unwrap_or_default()
        .parse()
        .unwrap_or(0)
}

#[test]
fn a_modseq_item_or_modifier_enables_condstore_implicitly() {
    let (server, mut c) = server_with_thread();
    let (u, t) = run(&mut c, "f0", "FETCH 1 (FLAGS)");
    assert!(
        !u[0].contains("MODSEQ") && highest_in(&t).is_none(),
        "{u:?} {t}"
    );
    let (u, t) = run(&mut c, "f1", "FETCH 1 (MODSEQ)");
    assert!(u[0].contains("MODSEQ ("), "{u:?}");
    assert!(t.starts_with("f1 OK [HIGHESTMODSEQ "), "{t}");
    let (_, t) = run(&mut c, "f2", "FETCH 1 (MODSEQ)");
    assert!(highest_in(&t).is_none(), "only the enabling command: {t}");
    // From now on flag changes, and a read that sets \Seen, carry the mod-sequence.
    let (u, _) = run(&mut c, "f3", "STORE 1 +FLAGS (\\Flagged)");
    assert!(u[0].contains("MODSEQ ("), "{u:?}");
    let (u, _) = run(&mut c, "f4", "FETCH 2 (BODY[TEXT])");
    assert!(u.concat().contains("MODSEQ ("), "{u:?}");
    let enabling = [
        "FETCH 1:* (FLAGS) (CHANGEDSINCE 1)",
        "STORE 3 (UNCHANGEDSINCE 9000000000000000000) +FLAGS (\\Answered)",
        "SEARCH MODSEQ 1",
    ];
    for command in enabling {
        let mut c = logged_in(&server);
        run(&mut c, "s", "SELECT INBOX");
        let (u, t) = run(&mut c, "m", command);
        let highest = highest_in(&t).unwrap_or_else(|| panic!("{command}: {t}"));
        let (all, _) = run(&mut c, "n", "FETCH 1:* (MODSEQ)");
        let max = all.iter().map(|l| modseq_in(l)).max().unwrap_or(0);
        assert_eq!(highest, max, "{command}: {u:?} {t}");
    }
}

#[test]
fn search_modseq_takes_an_entry_and_reports_the_highest_match() {
    let (_server, mut c) = server_with_thread();
    run(&mut c, "x1", "STORE 2 +FLAGS (\\Seen)");
    let (u, t) = run(&mut c, "x2", r#"SEARCH MODSEQ "/flags/\\seen" all 1"#);
    let highest = highest_in(&t).unwrap_or_else(|| panic!("{t}"));
    assert_eq!(u, [format!("* SEARCH 1 2 3 (MODSEQ {highest})")]);
    let (all, _) = run(&mut c, "x3", "FETCH 1:3 (MODSEQ)");
    let second = modseq_in(&all[1]);
    assert_eq!(second, highest, "message 2 changed last: {all:?}");
    let command = format!(r#"SEARCH MODSEQ "/flags/$mdnsent" priv {second}"#);
    let (u, _) = run(&mut c, "x4", &command);
    assert_eq!(u, [format!("* SEARCH 2 (MODSEQ {second})")]);
    let command = r#"UID SEARCH RETURN (MIN ALL) MODSEQ "/flags/\\seen" shared 1"#;
    let (u, _) = run(&mut c, "x5", command);
    assert_eq!(
        u,
        [format!(
            "* ESEARCH (TAG \"x5\") UID MIN 1 ALL 1:3 MODSEQ {second}"
        )]
    );
}

#[test]
fn list_extended_refuses_unknown_options_and_reports_childinfo() {
    let server = TestServer::start(&base_config(&["imap"], ""));
    let mut c = logged_in(&server);
    let refused = [
        "LIST (FOO) \"\" *",
        "LIST \"\" * RETURN (FOO)",
        "LIST (RECURSIVEMATCH) \"\" *",
        "LIST (REMOTE RECURSIVEMATCH) \"\" *",
    ];
    for command in refused {
        let (u, t) = run(&mut c, "b", command);
        assert!(
            u.is_empty() && t.starts_with("b BAD "),
            "{command}: {u:?} {t}"
        );
    }
    let (_, t) = run(&mut c, "r", "LIST (REMOTE) \"\" INBOX");
    assert!(t.starts_with("r OK"), "{t}");
    // RFC 5258 5, example 9.
    for name in [
        "Foo2",
        "Foo2/Bar1",
        "Foo2/Bar2",
        "Baz2",
        "Eps2",
        "Eps2/Mailbox1",
    ] {
        run(&mut c, "c", &format!("CREATE {name}"));
    }
    for name in ["Foo2/Bar1", "Baz2", "Eps2", "Eps2/Mailbox1", "Qux2/Bar2"] {
        let (_, t) = run(&mut c, "u", &format!("SUBSCRIBE {name}"));
        assert!(t.starts_with("u OK"), "{name}: {t}");
    }
    let (u, t) = run(&mut c, "l1", "LIST (SUBSCRIBED RECURSIVEMATCH) \"\" %2");
    assert!(t.starts_with("l1 OK"), "{t}");
    assert_eq!(
        u,
        [
            "* LIST (\\HasNoChildren \\Subscribed) \"/\" Baz2",
            "* LIST (\\HasChildren \\Subscribed) \"/\" Eps2 (CHILDINFO (\"SUBSCRIBED\"))",
            "* LIST (\\HasChildren) \"/\" Foo2 (CHILDINFO (\"SUBSCRIBED\"))",
            "* LIST (\\NonExistent \\HasChildren) \"/\" Qux2 (CHILDINFO (\"SUBSCRIBED\"))",
        ]
    );
    // Without RECURSIVEMATCH there is no CHILDINFO, and only subscribed names are listed.
    let (u, _) = run(&mut c, "l2", "LIST (SUBSCRIBED) \"\" %2");
    assert_eq!(
        u,
        [
            "* LIST (\\HasNoChildren \\Subscribed) \"/\" Baz2",
            "* LIST (\\HasChildren \\Subscribed) \"/\" Eps2",
        ]
    );
}

/// Sends `command` line by line, waiting for the `+` go-ahead after each synchronizing
/// literal announcement, and returns the untagged lines and the tagged one.
fn send_with_literals(c: &mut LineClient, tag: &str, parts: &[&str]) -> (Vec<String>, String) {
    for (i, part) in parts.iter().enumerate() {
        c.send(part);
        if i + 1 < parts.len() {
            let go = c.line();
            if !go.starts_with('+') {
                return (Vec::new(), go.trim_end().to_string());
            }
        }
    }
    let mut lines: Vec<String> = c
        .until(&format!("{tag} "))
        .into_iter()
        .map(|l| l.trim_end().to_string())
        .collect();
    let tagged = lines.pop().unwrap_or_default();
    (lines, tagged)
}

#[test]
fn multiappend_stores_every_message_or_none() {
    let server = TestServer::start(&base_config(&["imap"], ""));
    let mut c = logged_in(&server);
    let (_, caps) = run(&mut c, "c", "CAPABILITY");
    assert!(caps.starts_with("c OK"), "{caps}");
    run(&mut c, "k", "CREATE Saved");
    // RFC 3502's example shape: several messages, flags and a date on some, one literal8.
    let (one, two, three) = (
        "Subject: one\r\n\r\nfirst",
        "Subject: two\r\n\r\nsecond",
        "Subject: three\r\n\r\nend",
    );
    let (_, tagged) = send_with_literals(
        &mut c,
        "m1",
        &[
            &format!("m1 APPEND Saved (\\Seen) {{{}}}\r\n", one.len()),
            &format!(
                "{one} (\\Flagged $Work) \"05-Feb-2019 14:30:00 +0000\" {{{}}}\r\n",
                two.len()
            ),
            &format!("{two} ~{{{}}}\r\n", three.len()),
            &format!("{three}\r\n"),
        ],
    );
    let code = tagged
        .strip_prefix("m1 OK [APPENDUID ")
        .unwrap_or_else(|| panic!("{tagged}"));
    assert!(
        code.split(']').next().unwrap().ends_with(" 1:3"),
        "{tagged}"
    );
    run(&mut c, "s", "SELECT Saved");
    let (u, _) = run(
        &mut c,
        "f",
        "FETCH 1:* (FLAGS INTERNALDATE BODY.PEEK[HEADER.FIELDS (SUBJECT)])",
    );
    let fetched = u.join("\n");
    assert!(fetched.contains("Subject: one"), "{fetched}");
    assert!(fetched.contains("Subject: three"), "{fetched}");
    assert!(
        fetched.contains("$Work") && fetched.contains("05-Feb-2019 14:30:00 +0000"),
        "{fetched}"
    );
    assert_eq!(
        u.iter()
            .filter(|l| l.starts_with("* ") && l.contains("FETCH"))
            .count(),
        3
    );

    // A message the grammar refuses (a bad date) refuses the whole command: nothing is stored.
    let (_, tagged) = send_with_literals(
        &mut c,
        "m2",
        &[
            "m2 APPEND Saved {17}\r\n",
            "Subject: four\r\n\r\n \"31-Foo-2019 14:30:00 +0000\" {17}\r\n",
            "Subject: five\r\n\r\n\r\n",
        ],
    );
    assert!(tagged.starts_with("m2 BAD"), "{tagged}");
    let (u, _) = run(&mut c, "t", "STATUS Saved (MESSAGES)");
    assert_eq!(u, ["* STATUS Saved (MESSAGES 3)"]);
    // Into a folder that does not exist: TRYCREATE, nothing made.
    let (_, tagged) = send_with_literals(
        &mut c,
        "m3",
        &["m3 APPEND Nowhere {3}\r\n", "abc {3}\r\n", "def\r\n"],
    );
    assert!(tagged.starts_with("m3 NO [TRYCREATE]"), "{tagged}");
}

#[test]
fn partial_pages_search_and_sort_results() {
    let (_server, mut c) = server_with_subjects(&["e", "d", "c", "b", "a"]);
    let (u, t) = run(&mut c, "p1", "SEARCH RETURN (PARTIAL 2:3) ALL");
    assert!(t.starts_with("p1 OK"), "{t}");
    assert_eq!(u, ["* ESEARCH (TAG \"p1\") PARTIAL (2:3 2:3)"]);
    // From the end, either order, and with COUNT of the whole result.
    let (u, _) = run(&mut c, "p2", "UID SEARCH RETURN (COUNT PARTIAL -1:-2) ALL");
    assert_eq!(
        u,
        ["* ESEARCH (TAG \"p2\") UID COUNT 5 PARTIAL (-1:-2 4:5)"]
    );
    let (u, _) = run(&mut c, "p3", "SEARCH RETURN (PARTIAL 10:20) ALL");
    assert_eq!(u, ["* ESEARCH (TAG \"p3\") PARTIAL (10:20 NIL)"]);
    // Pages of a sorted result keep its order.
    let (u, _) = run(
        &mut c,
        "p4",
        "SORT RETURN (PARTIAL 1:2) (SUBJECT) UTF-8 ALL",
    );
    assert_eq!(u, ["* ESEARCH (TAG \"p4\") PARTIAL (1:2 5,4)"]);
    for (tag, options) in [
        ("b1", "PARTIAL 0:3"),
        ("b2", "ALL PARTIAL 1:2"),
        ("b3", "BOGUS"),
        ("b4", "PARTIAL 1:-2"),
    ] {
        let (_, t) = run(&mut c, tag, &format!("SEARCH RETURN ({options}) ALL"));
        assert!(t.starts_with(&format!("{tag} BAD")), "{options}: {t}");
    }
}

#[test]
fn context_search_keeps_a_result_current_until_cancelupdate() {
    let (server, mut a) = server_with_subjects(&["one", "two", "three"]);
    let mut b = logged_in(&server);
    run(&mut b, "s", "SELECT INBOX");
    let (u, t) = run(&mut a, "u1", "UID SEARCH RETURN (UPDATE) UNSEEN");
    assert!(t.starts_with("u1 OK"), "{t}");
    assert_eq!(u, ["* ESEARCH (TAG \"u1\") UID ALL 1:3"]);
    let (u, _) = run(&mut a, "s1", "SEARCH RETURN (COUNT UPDATE CONTEXT) FLAGGED");
    assert_eq!(u, ["* ESEARCH (TAG \"s1\") COUNT 0"]);

    // Another session reads message 2 and flags message 3.
    run(&mut b, "f", "STORE 2 +FLAGS.SILENT (\\Seen)");
    run(&mut b, "g", "STORE 3 +FLAGS.SILENT (\\Flagged)");
    let (u, _) = run(&mut a, "n1", "NOOP");
    let updates: Vec<&String> = u.iter().filter(|l| l.contains("ESEARCH")).collect();
    assert_eq!(
        updates,
        [
            "* ESEARCH (TAG \"u1\") UID REMOVEFROM (0 2)",
            "* ESEARCH (TAG \"s1\") ADDTO (0 3)"
        ],
        "{u:?}"
    );
    assert!(
        u.iter().position(|l| l.contains("FETCH")) < u.iter().position(|l| l.contains("ESEARCH"))
    );

    // New mail enters after its EXISTS; an expunged match leaves before its EXPUNGE.
    append(&mut b, "p", "Subject: four\r\n\r\nbody\r\n");
    let (u, _) = run(&mut a, "n2", "NOOP");
    let exists = u.iter().position(|l| l == "* 4 EXISTS");
    let added = u
        .iter()
        .position(|l| l == "* ESEARCH (TAG \"u1\") UID ADDTO (0 4)");
    assert!(exists.is_some() && exists < added, "{u:?}");
    run(&mut b, "d", "STORE 1 +FLAGS.SILENT (\\Deleted)");
    run(&mut b, "x", "EXPUNGE");
    let (u, _) = run(&mut a, "n3", "NOOP");
    let removed = u
        .iter()
        .position(|l| l == "* ESEARCH (TAG \"u1\") UID REMOVEFROM (0 1)");
    let expunge = u.iter().position(|l| l == "* 1 EXPUNGE");
    assert!(removed.is_some() && removed < expunge, "{u:?}");

    // A tag in use cannot start another; CANCELUPDATE stops the updates.
    let (_, t) = run(&mut a, "u1", "SEARCH RETURN (UPDATE) ALL");
    assert!(t.starts_with("u1 BAD"), "{t}");
    let (_, t) = run(&mut a, "c", "CANCELUPDATE \"u1\" \"s1\"");
    assert!(t.starts_with("c OK"), "{t}");
    run(&mut b, "h", "STORE 1 -FLAGS.SILENT (\\Seen \\Flagged)");
    let (u, _) = run(&mut a, "n4", "NOOP");
    assert!(u.iter().all(|l| !l.contains("ESEARCH")), "{u:?}");

    // A session keeps only so many.
    for n in 0..8 {
        run(&mut a, &format!("k{n}"), "SEARCH RETURN (UPDATE COUNT) ALL");
    }
    let (u, t) = run(&mut a, "k8", "SEARCH RETURN (UPDATE COUNT) ALL");
    assert!(t.starts_with("k8 OK"), "{t}");
    assert!(
        u.iter().any(|l| l.starts_with("* NO [NOUPDATE \"k8\"]")),
        "{u:?}"
    );
}

#[test]
fn context_sort_reports_positions_in_the_sorted_result() {
    let (server, mut a) = server_with_subjects(&["c", "a", "b"]);
    let mut b = logged_in(&server);
    run(&mut b, "s", "SELECT INBOX");
    let (u, t) = run(
        &mut a,
        "r1",
        "UID SORT RETURN (UPDATE ALL) (SUBJECT) UTF-8 UNSEEN",
    );
    assert!(t.starts_with("r1 OK"), "{t}");
    assert_eq!(u, ["* ESEARCH (TAG \"r1\") UID ALL 2:3,1"]);
    run(&mut b, "f", "STORE 3 +FLAGS.SILENT (\\Seen)");
    append(&mut b, "p", "Subject: aa\r\n\r\nbody\r\n");
    let (u, _) = run(&mut a, "n", "NOOP");
    let updates: Vec<&String> = u.iter().filter(|l| l.contains("ESEARCH")).collect();
    // a(2) b(3) c(1) -> b leaves position 2, aa (UID 4) enters at position 2: a aa c.
    assert_eq!(
        updates,
        [
            "* ESEARCH (TAG \"r1\") UID REMOVEFROM (2 3)",
            "* ESEARCH (TAG \"r1\") UID ADDTO (2 4)"
        ],
        "{u:?}"
    );
    // An expunge inside the sorted result names its position.
    run(&mut b, "d", "UID STORE 2 +FLAGS.SILENT (\\Deleted)");
    run(&mut b, "x", "EXPUNGE");
    let (u, _) = run(&mut a, "m", "NOOP");
    let removed = u
        .iter()
        .position(|l| l == "* ESEARCH (TAG \"r1\") UID REMOVEFROM (1 2)");
    let expunge = u.iter().position(|l| l.ends_with(" EXPUNGE"));
    assert!(removed.is_some() && removed < expunge, "{u:?}");
}

#[test]
fn catenate_builds_a_message_from_text_and_parts_on_the_server() {
    let server = TestServer::start(&base_config(&["imap"], ""));
    let mut c = logged_in(&server);
    let original = "From: a@example.org\r\nSubject: report\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nThe figures.\r\n--b\r\nContent-Type: text/csv\r\n\r\n1,2,3\r\n--b--\r\n";
    append(&mut c, "p", original);
    let (u, _) = run(&mut c, "v", "STATUS INBOX (UIDVALIDITY)");
    let validity: u32 = u[0]
        .trim_end_matches(')')
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let head = "From: me@example.org\r\nSubject: Fwd: report\r\n\r\nSee below:\r\n";
    let tail = "\r\n-- \r\nme\r\n";
    let (_, t) = send_with_literals(
        &mut c,
        "c1",
        &[
            &format!(
                "c1 APPEND Drafts (\\Draft) CATENATE (TEXT {{{}}}\r\n",
                head.len()
            ),
            &format!(
                "{head} URL \"/INBOX;UIDVALIDITY={validity}/;UID=1/;SECTION=1\" TEXT {{{}}}\r\n",
                tail.len()
            ),
            &format!("{tail})\r\n"),
        ],
    );
    assert!(t.starts_with("c1 OK [APPENDUID "), "{t}");
    run(&mut c, "s", "SELECT Drafts");
    let lines = c.cmd("f FETCH 1 BODY.PEEK[]", "f OK");
    let body: String = lines[1..lines.len() - 2].concat();
    assert_eq!(body, format!("{head}The figures.{tail}"));

    // A whole message by an absolute URL of the same user, beside a message of its own.
    let (_, t) = send_with_literals(
        &mut c,
        "c2",
        &[
            "c2 APPEND Drafts CATENATE (URL \"imap://plain@localhost/INBOX/;UID=1\") {3}\r\n",
            "abc\r\n",
        ],
    );
    assert!(t.starts_with("c2 OK [APPENDUID "), "{t}");
    let (u, _) = run(&mut c, "n", "FETCH 3 BODY.PEEK[]");
    assert!(u.iter().any(|l| l.starts_with("abc")), "{u:?}");
    let lines = c.cmd("g FETCH 2 RFC822.SIZE", "g OK");
    assert!(
        lines[0].contains(&format!("RFC822.SIZE {}", original.len())),
        "{lines:?}"
    );

    // What cannot be followed is BADURL, and nothing is stored.
    for (tag, url) in [
        ("b1", "/INBOX/;UID=99".to_string()),
        ("b2", format!("/INBOX;UIDVALIDITY={}/;UID=1", validity + 1)),
        ("b3", "imap://sha512@localhost/INBOX/;UID=1".to_string()),
        ("b4", "/Nowhere/;UID=1".to_string()),
    ] {
        let (_, t) = run(
            &mut c,
            tag,
            &format!("APPEND Drafts CATENATE (URL \"{url}\")"),
        );
        assert!(
            t.starts_with(&format!("{tag} NO [BADURL \"{url}\"]")),
            "{t}"
        );
    }
    let (u, _) = run(&mut c, "t", "STATUS Drafts (MESSAGES)");
    assert_eq!(u, ["* STATUS Drafts (MESSAGES 3)"]);
}
