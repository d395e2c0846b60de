//! Two IMAP sessions on one mailbox, over real sockets: each sees the other's flag changes,
//! appends and expunges, with sequence numbers that stay put while a FETCH, STORE or SEARCH
//! by sequence number runs (RFC 3501 7.4.1) and shift correctly once the expunge is reported.

mod common;

use common::{base_config, seed_maildir, LineClient, TestServer, PASSWORD};

fn message(n: usize) -> Vec<u8> {
    format!("From: a@example.com\r\nSubject: message {n}\r\n\r\nbody {n}\r\n").into_bytes()
}

/// A logged-in session with INBOX selected; returns it and its SELECT lines.
fn session(server: &TestServer) -> (LineClient, Vec<String>) {
    let mut c = LineClient::connect(server.addr("imap"));
    c.line();
    c.cmd(&format!("l LOGIN plain \"{PASSWORD}\""), "l OK");
    let lines = c.cmd("s SELECT INBOX", "s OK");
    (c, lines)
}

/// The untagged lines that are EXPUNGE responses, as their numbers, in order.
fn expunges(lines: &[String]) -> Vec<u32> {
    lines
        .iter()
        .filter_map(|l| {
            l.strip_prefix("* ")?
                .strip_suffix(" EXPUNGE\r\n")?
                .parse()
                .ok()
        })
        .collect()
}

/// The lines `* n FETCH ...`, as `(n, line)`.
fn fetches(lines: &[String]) -> Vec<(u32, String)> {
    lines
        .iter()
        .filter_map(|l| {
            let rest = l.strip_prefix("* ")?;
            let (n, rest) = rest.split_once(' ')?;
            let n: u32 = n.parse().ok()?;
            rest.starts_with("FETCH").then(|| (n, l.clone()))
        })
        .collect()
}

#[test]
fn two_sessions_see_each_others_changes_with_stable_sequence_numbers() {
    let server = TestServer::start(&base_config(&["imap"], ""));
    let messages: Vec<Vec<u8>> = (1..=5).map(message).collect();
    let refs: Vec<&[u8]> = messages.iter().map(|m| &m[..]).collect();
    seed_maildir(&server.mail_root().join("plain"), &refs);
    let (mut a, selected) = session(&server);
    assert!(
        selected.contains(&"* 5 EXISTS\r\n".to_string()),
        "{selected:?}"
    );
    let (mut b, _) = session(&server);
    let uids: Vec<String> = fetches(&b.cmd("u FETCH 1:* (UID)", "u OK"))
        .into_iter()
        .map(|(_, l)| l)
        .collect();
    assert_eq!(uids.len(), 5, "{uids:?}");

    // A flag change by A reaches B at its next command, once.
    let stored = a.cmd("a1 STORE 2 +FLAGS (\\Flagged)", "a1 OK");
    assert_eq!(fetches(&stored).len(), 1, "{stored:?}");
    let noop = b.cmd("b1 NOOP", "b1 OK");
    let changed = fetches(&noop);
    assert_eq!(changed.len(), 1, "{noop:?}");
    assert_eq!(changed[0].0, 2);
    assert!(changed[0].1.contains("\\Flagged"), "{noop:?}");
    let again = b.cmd("b2 NOOP", "b2 OK");
    assert_eq!(again, vec!["b2 OK NOOP completed.\r\n"]);
    // A does not hear of its own change again.
    let own = a.cmd("a2 NOOP", "a2 OK");
    assert_eq!(own.len(), 1, "{own:?}");

    // An append by A: both hear EXISTS.
    let text = "Subject: appended\r\n\r\nhello\r\n";
    a.send(&format!(
        "a3 APPEND INBOX {{{}+}}\r\n{text}\r\n",
        text.len()
    ));
    let appended = a.until("a3 OK");
    assert!(
        appended.contains(&"* 6 EXISTS\r\n".to_string()),
        "{appended:?}"
    );
    let noop = b.cmd("b3 NOOP", "b3 OK");
    assert!(noop.contains(&"* 6 EXISTS\r\n".to_string()), "{noop:?}");

    // A expunges 2 and 4: A hears it at once, highest first.
    a.cmd("a4 STORE 2,4 +FLAGS.SILENT (\\Deleted)", "a4 OK");
    let expunged = a.cmd("a5 EXPUNGE", "a5 OK");
    assert_eq!(expunges(&expunged), vec![4, 2], "{expunged:?}");

    // B, inside FETCH / STORE / SEARCH by sequence number, must not hear of it yet: its
    // numbers stay as they were (6 messages).
    let fetched = b.cmd("b4 FETCH 1:6 (FLAGS)", "b4 ");
    assert!(expunges(&fetched).is_empty(), "{fetched:?}");
    let numbers: Vec<u32> = fetches(&fetched).iter().map(|(n, _)| *n).collect();
    assert!(numbers.contains(&6), "{fetched:?}");
    let stored = b.cmd("b5 STORE 5 +FLAGS (\\Answered)", "b5 OK");
    assert!(expunges(&stored).is_empty(), "{stored:?}");
    assert_eq!(fetches(&stored)[0].0, 5, "{stored:?}");
    let searched = b.cmd("b6 SEARCH ANSWERED", "b6 OK");
    assert!(
        searched.contains(&"* SEARCH 5\r\n".to_string()),
        "{searched:?}"
    );
    assert!(expunges(&searched).is_empty(), "{searched:?}");

    // At its next command that may report expunges, B hears them, highest first; then its
    // message 5 (UID of the fifth) is number 3.
    let noop = b.cmd("b7 NOOP", "b7 OK");
    assert_eq!(expunges(&noop), vec![4, 2], "{noop:?}");
    let fetched = b.cmd("b8 FETCH 3 (UID FLAGS)", "b8 OK");
    let fifth_uid = uids[4]
        .split("UID ")
        .nth(1)
        .and_then(|r| r.split(')').next());
    let fifth_uid = fifth_uid.unwrap_or("?");
    assert!(
        fetched[0].contains(&format!("UID {fifth_uid} ")) && fetched[0].contains("\\Answered"),
        "{fetched:?} (wanted UID {fifth_uid})"
    );
    let count = b.cmd("b9 FETCH 4 (UID)", "b9 OK");
    assert!(count[0].starts_with("* 4 FETCH"), "{count:?}");
    let beyond = b.cmd("b10 FETCH 5 (UID)", "b10 ");
    assert!(beyond[0].starts_with("b10 BAD"), "{beyond:?}");

    // A hears of B's flag change.
    let noop = a.cmd("a6 NOOP", "a6 OK");
    let changed = fetches(&noop);
    assert_eq!(changed.len(), 1, "{noop:?}");
    assert_eq!(changed[0].0, 3);
    assert!(changed[0].1.contains("\\Answered"), "{noop:?}");
}
