//! Per-session mailbox state over real sockets, as a client notices it: `\Recent` seen by
//! exactly one session (RFC 3501 2.3.2), keywords announced in FLAGS before a FETCH shows
//! them, expunges and arrivals reported at the right time with legal sequence numbers, a new
//! UIDVALIDITY for a mailbox deleted and created again, and special-use folders that already
//! existed subscribed at the first login.

mod common;

use common::{
    base_config, give_to_mail_owner, imap_login, imap_ok as run, seed_maildir, LineClient,
    TestServer,
};

fn logged_in(server: &TestServer) -> LineClient {
    imap_login(server, "plain")
}

fn append(c: &mut LineClient, tag: &str, mailbox: &str, flags: &str, message: &str) {
    let flags = if flags.is_empty() {
        String::new()
    } else {
        format!("{flags} ")
    };
    c.send(&format!(
        "{tag} APPEND {mailbox} {flags}{{{}+}}\r\n{message}\r\n",
        message.len()
    ));
    let reply = c.until(&format!("{tag} "));
    assert!(
        reply.last().unwrap().starts_with(&format!("{tag} OK")),
        "{reply:?}"
    );
}

fn message(n: u32) -> String {
    format!("From: a@example.org\r\nSubject: message {n}\r\n\r\nbody {n}\r\n")
}

fn server() -> TestServer {
    TestServer::start(&base_config(&["imap"], ""))
}

#[test]
fn a_new_message_is_recent_in_exactly_one_session() {
    let server = server();
    let mut writer = logged_in(&server);
    append(&mut writer, "p1", "INBOX", "", &message(1));
    append(&mut writer, "p2", "INBOX", "(\\Seen)", &message(2));
    let (status, _) = run(&mut writer, "s0", "STATUS INBOX (RECENT MESSAGES)");
    assert_eq!(status, ["* STATUS INBOX (RECENT 2 MESSAGES 2)"]);

    // EXAMINE looks without taking: the messages stay recent for the next SELECT.
    let mut looker = logged_in(&server);
    let (untagged, _) = run(&mut looker, "e", "EXAMINE INBOX");
    assert!(untagged.contains(&"* 2 RECENT".to_string()), "{untagged:?}");

    let mut first = logged_in(&server);
    let (untagged, _) = run(&mut first, "s1", "SELECT INBOX");
    assert!(untagged.contains(&"* 2 RECENT".to_string()), "{untagged:?}");
    let (fetched, _) = run(&mut first, "f1", "FETCH 1:2 FLAGS");
    assert_eq!(
        fetched,
        [
            "* 1 FETCH (FLAGS (\\Recent))",
            "* 2 FETCH (FLAGS (\\Seen \\Recent))"
        ]
    );
    let (found, _) = run(&mut first, "r1", "SEARCH RECENT");
    assert_eq!(found, ["* SEARCH 1 2"]);
    let (found, _) = run(&mut first, "n1", "SEARCH NEW");
    assert_eq!(found, ["* SEARCH 1"]);
    let (found, _) = run(&mut first, "o1", "SEARCH OLD");
    assert_eq!(found, ["* SEARCH"]);

    // A second session finds them taken.
    let mut second = logged_in(&server);
    let (untagged, _) = run(&mut second, "s2", "SELECT INBOX");
    assert!(untagged.contains(&"* 0 RECENT".to_string()), "{untagged:?}");
    let (found, _) = run(&mut second, "o2", "SEARCH OLD");
    assert_eq!(found, ["* SEARCH 1 2"]);
    let (fetched, _) = run(&mut second, "f2", "FETCH 1 FLAGS");
    assert_eq!(fetched, ["* 1 FETCH (FLAGS ())"]);
    let (status, _) = run(&mut writer, "s3", "STATUS INBOX (RECENT)");
    assert_eq!(status, ["* STATUS INBOX (RECENT 0)"]);

    // A message that arrives later is recent in the session that hears of it first only.
    append(&mut writer, "p3", "INBOX", "", &message(3));
    let (untagged, _) = run(&mut first, "n3", "NOOP");
    assert_eq!(untagged, ["* 3 EXISTS", "* 3 RECENT"]);
    let (untagged, _) = run(&mut second, "n4", "NOOP");
    assert_eq!(untagged, ["* 3 EXISTS", "* 0 RECENT"]);

    // IMAP4rev2 has no \Recent at all.
    let mut rev2 = logged_in(&server);
    run(&mut rev2, "v", "ENABLE IMAP4rev2");
    append(&mut writer, "p4", "INBOX", "", &message(4));
    let (untagged, _) = run(&mut rev2, "s5", "SELECT INBOX");
    assert!(
        !untagged.iter().any(|l| l.contains("RECENT")),
        "{untagged:?}"
    );
    let (fetched, _) = run(&mut rev2, "f5", "FETCH 4 FLAGS");
    assert_eq!(fetched, ["* 4 FETCH (FLAGS ())"]);
    // ... and takes nothing from an IMAP4rev1 session.
    let (untagged, _) = run(&mut first, "n5", "NOOP");
    assert_eq!(untagged, ["* 4 EXISTS", "* 4 RECENT"]);
}

#[test]
fn keywords_are_announced_in_flags_before_a_fetch_shows_them() {
    let server = server();
    let mut a = logged_in(&server);
    append(&mut a, "p1", "INBOX", "", &message(1));
    let mut b = logged_in(&server);
    run(&mut a, "s", "SELECT INBOX");
    run(&mut b, "s", "SELECT INBOX");

    let (untagged, _) = run(&mut a, "k1", "STORE 1 +FLAGS (ProjectX)");
    assert_eq!(untagged.len(), 3, "{untagged:?}");
    assert!(
        untagged[0].starts_with("* FLAGS (") && untagged[0].contains("ProjectX"),
        "{untagged:?}"
    );
    assert!(untagged[1].starts_with("* OK [PERMANENTFLAGS (") && untagged[1].contains("ProjectX"));
    assert!(untagged[2].starts_with("* 1 FETCH (FLAGS (") && untagged[2].contains("ProjectX"));
    // Known keywords are not announced again.
    let (untagged, _) = run(&mut a, "k2", "STORE 1 -FLAGS (ProjectX)");
    assert_eq!(untagged.len(), 1, "{untagged:?}");

    // Another session hears of a keyword through FLAGS before the FETCH that shows it.
    run(&mut a, "k3", "STORE 1 +FLAGS (Later)");
    let (untagged, _) = run(&mut b, "n", "NOOP");
    let flags = untagged
        .iter()
        .position(|l| l.starts_with("* FLAGS") && l.contains("Later"));
    let fetch = untagged
        .iter()
        .position(|l| l.contains("FETCH") && l.contains("Later"));
    assert!(flags.is_some() && flags < fetch, "{untagged:?}");

    // A copy with a keyword new to the mailbox, arriving in the selected mailbox.
    run(&mut a, "c1", "CREATE Other");
    append(&mut a, "p2", "Other", "(FromElsewhere)", &message(2));
    run(&mut b, "c2", "SELECT Other");
    let (untagged, _) = run(&mut b, "c3", "COPY 1 INBOX");
    assert!(untagged.is_empty(), "{untagged:?}");
    let (untagged, _) = run(&mut a, "n2", "NOOP");
    let flags = untagged
        .iter()
        .position(|l| l.starts_with("* FLAGS") && l.contains("FromElsewhere"));
    let exists = untagged.iter().position(|l| l == "* 2 EXISTS");
    assert!(flags.is_some() && flags < exists, "{untagged:?}");
}

#[test]
fn expunges_by_another_session_are_reported_by_noop_and_check() {
    let server = server();
    let mut a = logged_in(&server);
    for n in 1..=4 {
        append(&mut a, &format!("p{n}"), "INBOX", "", &message(n));
    }
    let mut b = logged_in(&server);
    run(&mut a, "s", "SELECT INBOX");
    run(&mut b, "s", "SELECT INBOX");

    run(&mut b, "d1", "STORE 2 +FLAGS.SILENT (\\Deleted)");
    let (untagged, _) = run(&mut b, "x1", "EXPUNGE");
    assert_eq!(untagged, ["* 2 EXPUNGE"]);
    let (untagged, _) = run(&mut a, "n1", "NOOP");
    // The flag change that preceded the expunge may be reported first, under the old number.
    assert_eq!(
        untagged.last().map(String::as_str),
        Some("* 2 EXPUNGE"),
        "{untagged:?}"
    );
    assert!(
        untagged.iter().all(|l| l.starts_with("* 2 ")),
        "{untagged:?}"
    );

    run(&mut b, "d2", "STORE 1 +FLAGS.SILENT (\\Deleted)");
    run(&mut b, "x2", "EXPUNGE");
    let (untagged, _) = run(&mut a, "c1", "CHECK");
    assert!(
        untagged.contains(&"* 1 EXPUNGE".to_string()),
        "{untagged:?}"
    );
    let (untagged, _) = run(&mut a, "f", "FETCH 1:* UID");
    assert_eq!(untagged, ["* 1 FETCH (UID 3)", "* 2 FETCH (UID 4)"]);
}

#[test]
fn own_expunge_with_another_sessions_flag_change_uses_legal_numbers() {
    let server = server();
    let mut a = logged_in(&server);
    for n in 1..=3 {
        append(&mut a, &format!("p{n}"), "INBOX", "", &message(n));
    }
    let mut b = logged_in(&server);
    run(&mut a, "s", "SELECT INBOX");
    run(&mut b, "s", "SELECT INBOX");
    // b flags message 3; a deletes message 2 and expunges.
    run(&mut b, "f", "STORE 3 +FLAGS (\\Flagged)");
    run(&mut a, "d", "STORE 2 +FLAGS.SILENT (\\Deleted)");
    let (untagged, _) = run(&mut a, "x", "EXPUNGE");
    // Whatever the order, each number must name the message as the client knows it then.
    let mut known = vec![1u32, 2, 3];
    for line in &untagged {
        let words: Vec<&str> = line.split_whitespace().collect();
        let seq: usize = words[1].parse().unwrap();
        match words[2] {
            "EXPUNGE" => {
                assert_eq!(known[seq - 1], 2, "{untagged:?}");
                known.remove(seq - 1);
            }
            "FETCH" => assert_eq!(known[seq - 1], 3, "{untagged:?}"),
            _ => {}
        }
    }
    assert!(
        untagged.iter().any(|l| l.contains("EXPUNGE")),
        "{untagged:?}"
    );
    assert!(
        untagged.iter().any(|l| l.contains("\\Flagged")),
        "{untagged:?}"
    );
    assert_eq!(known, [1, 3]);
}

#[test]
fn copy_and_move_into_the_selected_mailbox_report_the_new_messages() {
    let server = server();
    let mut a = logged_in(&server);
    append(&mut a, "p1", "INBOX", "", &message(1));
    append(&mut a, "p2", "INBOX", "", &message(2));
    run(&mut a, "s", "SELECT INBOX");
    let (untagged, tagged) = run(&mut a, "c", "COPY 1 INBOX");
    assert!(tagged.contains("[COPYUID "), "{tagged}");
    assert!(untagged.contains(&"* 3 EXISTS".to_string()), "{untagged:?}");
    let (untagged, _) = run(&mut a, "m", "MOVE 2 INBOX");
    assert!(
        untagged.iter().any(|l| l.starts_with("* OK [COPYUID ")),
        "{untagged:?}"
    );
    assert!(untagged.contains(&"* 3 EXISTS".to_string()), "{untagged:?}");
    assert!(
        untagged.contains(&"* 2 EXPUNGE".to_string()),
        "{untagged:?}"
    );
    let (untagged, _) = run(
        &mut a,
        "f",
        "FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])",
    );
    let uids: Vec<&String> = untagged.iter().filter(|l| l.contains("FETCH")).collect();
    assert_eq!(uids.len(), 3, "{untagged:?}");
}

#[test]
fn a_mailbox_deleted_and_created_again_gets_a_new_uidvalidity() {
    let server = server();
    let mut a = logged_in(&server);
    run(&mut a, "c1", "CREATE Projects");
    append(&mut a, "p1", "Projects", "", &message(1));
    let (untagged, _) = run(&mut a, "s1", "SELECT Projects");
    let old = uidvalidity_of(&untagged);
    let (status, _) = run(&mut a, "t1", "STATUS Projects (UIDVALIDITY)");
    assert_eq!(status, [format!("* STATUS Projects (UIDVALIDITY {old})")]);
    run(&mut a, "u", "UNSELECT");
    run(&mut a, "d", "DELETE Projects");
    run(&mut a, "c2", "CREATE Projects");
    let (status, _) = run(&mut a, "t2", "STATUS Projects (UIDVALIDITY UIDNEXT)");
    let (untagged, _) = run(&mut a, "s2", "SELECT Projects");
    let new = uidvalidity_of(&untagged);
    assert!(new > old, "old {old}, new {new}");
    assert_eq!(
        status,
        [format!("* STATUS Projects (UIDVALIDITY {new} UIDNEXT 1)")]
    );
}

fn uidvalidity_of(untagged: &[String]) -> u32 {
    untagged
        .iter()
        .find_map(|l| l.strip_prefix("* OK [UIDVALIDITY "))
        .and_then(|rest| rest.split(']').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no UIDVALIDITY in {untagged:?}"))
}

#[test]
fn existing_special_use_folders_are_subscribed_at_the_first_login() {
    let server = server();
    let maildir = server.mail_root().join("plain");
    seed_maildir(&maildir, &[]);
    for folder in [".Sent", ".Trash"] {
        seed_maildir(&maildir.join(folder), &[]);
        std::fs::write(maildir.join(folder).join("maildirfolder"), b"").unwrap();
    }
    give_to_mail_owner(&maildir);
    let mut a = logged_in(&server);
    let (untagged, _) = run(
        &mut a,
        "l",
        "LIST (SUBSCRIBED) \"\" \"*\" RETURN (SPECIAL-USE)",
    );
    for (name, attribute) in [
        ("Sent", "\\Sent"),
        ("Trash", "\\Trash"),
        ("Drafts", "\\Drafts"),
    ] {
        assert!(
            untagged.iter().any(|l| l.ends_with(&format!(" {name}"))
                && l.contains(attribute)
                && l.contains("\\Subscribed")),
            "{name}: {untagged:?}"
        );
    }
    // Only at the first login: an unsubscribe sticks.
    run(&mut a, "u", "UNSUBSCRIBE Sent");
    drop(a);
    let mut b = logged_in(&server);
    let (untagged, _) = run(&mut b, "l", "LSUB \"\" \"*\"");
    assert!(
        !untagged.iter().any(|l| l.ends_with(" Sent")),
        "{untagged:?}"
    );
}
