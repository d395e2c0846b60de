//! The shared view of an open mailbox: sessions of one process share one table and see each
//! other's flag changes, appends and expunges, with sequence numbers that stay put until a
//! session catches up (RFC 3501 7.4.1) — for maildir and mbox; and sessions of one user
//! subscribing at once.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use roost_storage::{
    Changes, FlagChange, Flags, MailLocation, SessionView, Store, Updates, UserVars,
};

fn store(dir: &Path, format: &str) -> Store {
    std::fs::create_dir_all(dir.join("mail")).expect("mail root");
    let location =
        MailLocation::parse(&format!("{format}:{}", dir.join("mail").display())).expect("location");
    let vars = UserVars {
        user: "alice".into(),
        home: Some(dir.to_path_buf()),
    };
    Store::open(&location, &vars).expect("store")
}

fn kw(words: &[&str]) -> BTreeSet<String> {
    words.iter().map(|w| w.to_string()).collect()
}

/// A store whose INBOX holds `n` messages (UIDs 1..=n), appended through another instance
/// of the backend, as a delivery would.
fn populated(dir: &Path, format: &str, n: usize) -> Store {
    let mut store = store(dir, format);
    for i in 1..=n {
        let text = format!("Subject: {i}\r\n\r\nbody {i}\r\n");
        store
            .append_to_inbox(&mut text.as_bytes())
            .expect("deliver");
    }
    store
}

fn append(view: &SessionView, text: &str) -> u32 {
    view.shared()
        .append(&mut text.as_bytes(), Flags::empty(), &BTreeSet::new(), None)
        .expect("append")
}

fn formats() -> [&'static str; 2] {
    ["maildir", "mbox"]
}

#[test]
fn sessions_share_one_view_and_see_each_others_flag_changes() {
    for format in formats() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = populated(dir.path(), format, 3);
        let mut a = SessionView::open(&store, "INBOX").expect("open a");
        let mut b = SessionView::open(&store, "INBOX").expect("open b");
        assert!(Arc::ptr_eq(a.shared(), b.shared()), "{format}: one view");
        assert_eq!(a.uids(), &[1, 2, 3]);

        let changed = a
            .store(&[2], FlagChange::Add, Flags::FLAGGED, &kw(&["$Work"]))
            .expect("store");
        assert!(changed[0].flags.contains(Flags::FLAGGED));
        // A reported its own change with STORE; B hears of it once.
        assert_eq!(a.catch_up().expect("a"), Updates::default(), "{format}");
        let updates = b.catch_up().expect("b");
        assert_eq!(updates.flags.len(), 1, "{format}: {updates:?}");
        assert_eq!(updates.flags[0].0, 2);
        assert!(updates.flags[0].1.flags.contains(Flags::FLAGGED));
        assert_eq!(updates.flags[0].1.keywords, kw(&["$Work"]));
        assert!(updates.keywords.contains("$Work"));
        assert_eq!(b.catch_up().expect("b again"), Updates::default());
        assert!(b.keywords_in_use().contains("$Work"));
    }
}

#[test]
fn an_append_reaches_every_session_as_exists() {
    for format in formats() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = populated(dir.path(), format, 2);
        let mut a = SessionView::open(&store, "INBOX").expect("open a");
        let mut b = SessionView::open(&store, "INBOX").expect("open b");
        let uid = append(&a, "Subject: new\r\n\r\nnew\r\n");
        assert_eq!(uid, 3, "{format}");
        for view in [&mut a, &mut b] {
            let updates = view.catch_up().expect("catch up");
            assert_eq!(updates.exists, Some(3), "{format}");
            assert!(updates.expunged.is_empty() && updates.flags.is_empty());
            assert_eq!(view.uids(), &[1, 2, 3]);
        }
        let mut text = String::new();
        b.mailbox()
            .open_message(3)
            .expect("open")
            .read_to_string(&mut text)
            .expect("read");
        assert!(text.contains("Subject: new"), "{format}");
    }
}

#[test]
fn an_expunge_waits_until_the_session_may_report_it() {
    for format in formats() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = populated(dir.path(), format, 5);
        let mut a = SessionView::open(&store, "INBOX").expect("open a");
        let mut b = SessionView::open(&store, "INBOX").expect("open b");
        a.store(&[2, 4], FlagChange::Add, Flags::DELETED, &BTreeSet::new())
            .expect("store");
        let removed = a.expunge(&[2, 4]).expect("expunge");
        assert_eq!(removed, vec![2, 4], "{format}");
        // A expunged them itself: highest first, each number right when sent.
        assert_eq!(a.forget(&removed), vec![(4, 4), (2, 2)]);
        assert_eq!(a.uids(), &[1, 3, 5]);

        // B (say, inside a FETCH by sequence number) still numbers the old way, and still
        // knows what the gone messages were.
        assert_eq!(b.len(), 5);
        assert_eq!(b.uid(3), 4);
        assert_eq!(b.info(3).uid, 4);
        assert!(b.flags(3).contains(Flags::DELETED), "{format}");
        assert_eq!(b.uid(4), 5);

        // Meanwhile another message arrives and message 5's flags change.
        append(&a, "Subject: 6\r\n\r\nsix\r\n");
        a.store(&[5], FlagChange::Add, Flags::SEEN, &BTreeSet::new())
            .expect("store 5");

        // At B's next allowed command: the expunges (highest first, each number valid when
        // sent), then the flag change under the new numbering, then EXISTS.
        let updates = b.catch_up().expect("catch up");
        assert_eq!(updates.expunged, vec![(4, 4), (2, 2)], "{format}");
        assert_eq!(updates.flags.len(), 1);
        assert_eq!(updates.flags[0].0, 3, "message 5 is now number 3");
        assert_eq!(updates.flags[0].1.uid, 5);
        assert_eq!(updates.exists, Some(4));
        assert_eq!(b.uids(), &[1, 3, 5, 6]);
        assert_eq!(a.catch_up().expect("a").exists, Some(4));
    }
}

#[test]
fn changes_from_another_process_arrive_through_the_disk() {
    for format in formats() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = populated(dir.path(), format, 3);
        let mut b = SessionView::open(&store, "INBOX").expect("open");
        // Another process: its own backend instance over the same folder.
        let mut other = store.folders().open("INBOX").expect("other");
        other.sync().expect("sync");
        other
            .store(&[1], FlagChange::Add, Flags::ANSWERED, &BTreeSet::new())
            .expect("store");
        other.expunge(&[3]).expect("expunge");
        other
            .append(
                &mut &b"Subject: x\r\n\r\nx\r\n"[..],
                Flags::empty(),
                &kw(&[]),
                None,
            )
            .expect("append");
        let updates = b.catch_up().expect("catch up");
        assert_eq!(updates.expunged, vec![(3, 3)], "{format}: {updates:?}");
        assert_eq!(updates.flags.len(), 1, "{format}");
        assert_eq!(updates.flags[0].0, 1);
        assert!(updates.flags[0].1.flags.contains(Flags::ANSWERED));
        assert_eq!(updates.exists, Some(3));
        assert_eq!(b.uids(), &[1, 2, 4]);
    }
}

#[test]
fn sessions_on_two_threads_keep_a_view_each_and_stay_in_step_through_the_disk() {
    for format in formats() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = populated(dir.path(), format, 4);
        let mut here = SessionView::open(&store, "INBOX").expect("open here");
        let here_view = Arc::as_ptr(here.shared()) as usize;
        std::thread::scope(|scope| {
            let other = scope.spawn(|| {
                // A session thread of its own: its own view, as another process's would be.
                let own_store = self::store(dir.path(), format);
                let mut there = SessionView::open(&own_store, "INBOX").expect("open there");
                assert_ne!(Arc::as_ptr(there.shared()) as usize, here_view, "{format}");
                // Writes from both threads at once, each under the folder's lock.
                for i in 0..20 {
                    there
                        .store(&[2], FlagChange::Add, Flags::FLAGGED, &kw(&[]))
                        .expect("store there");
                    append(&there, &format!("Subject: there {i}\r\n\r\nx\r\n"));
                }
                there.expunge(&[4]).expect("expunge there");
            });
            for i in 0..20 {
                append(&here, &format!("Subject: here {i}\r\n\r\nx\r\n"));
            }
            other.join().expect("thread");
        });
        let updates = here.catch_up().expect("catch up");
        assert_eq!(updates.expunged, vec![(4, 4)], "{format}: {updates:?}");
        assert!(
            updates
                .flags
                .iter()
                .any(|(seq, m)| *seq == 2 && m.flags.contains(Flags::FLAGGED)),
            "{format}: {updates:?}"
        );
        // Every append of both threads got its own UID; none was lost.
        assert_eq!(here.len(), 3 + 40, "{format}");
        let unique: BTreeSet<u32> = here.uids().iter().copied().collect();
        assert_eq!(unique.len(), 43, "{format}");
    }
}

#[test]
fn a_session_far_behind_compares_once_and_stays_right() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = populated(dir.path(), "maildir", 2);
    let mut a = SessionView::open(&store, "INBOX").expect("open a");
    let mut b = SessionView::open(&store, "INBOX").expect("open b");
    // More changes than the log keeps.
    for n in 0..9_000 {
        let change = if n % 2 == 0 {
            FlagChange::Add
        } else {
            FlagChange::Remove
        };
        a.store(&[1], change, Flags::SEEN, &BTreeSet::new())
            .expect("store");
    }
    a.expunge(&[2]).expect("expunge");
    let updates = b.catch_up().expect("catch up");
    assert_eq!(updates.expunged, vec![(2, 2)]);
    assert_eq!(b.uids(), &[1]);
    assert_eq!(b.catch_up().expect("again"), Updates::default());
}

#[test]
fn another_process_s_changes_come_as_the_messages_concerned_not_the_whole_folder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = populated(dir.path(), "maildir", 50);
    let mut mine = store.folders().open("INBOX").expect("mine");
    mine.sync().expect("sync");
    assert!(
        matches!(mine.outside_changes(false), Ok(Some(Changes::All))),
        "the first look takes in the whole folder"
    );
    let mut other = store.folders().open("INBOX").expect("other");
    other.sync().expect("sync");
    other
        .store(&[7], FlagChange::Add, Flags::FLAGGED, &BTreeSet::new())
        .expect("store");
    other.expunge(&[9]).expect("expunge");
    let new = other
        .append(
            &mut &b"Subject: x\r\n\r\nx\r\n"[..],
            Flags::SEEN,
            &kw(&[]),
            None,
        )
        .expect("append");
    match mine.outside_changes(true).expect("changes") {
        Some(Changes::Some(delta)) => {
            let present: Vec<_> = delta.present.iter().map(|m| (m.uid, m.flags)).collect();
            assert_eq!(present, vec![(7, Flags::FLAGGED), (new, Flags::SEEN)]);
            assert_eq!(delta.removed, vec![9]);
            assert_eq!(delta.uidnext, new + 1);
        }
        other => panic!("expected only the messages concerned, got {other:?}"),
    }
    assert_eq!(mine.outside_changes(true).expect("again"), None);
}

#[test]
fn an_expunge_raises_highestmodseq_for_the_next_select_in_the_same_process() {
    // Maildir only: an mbox keeps no HIGHESTMODSEQ of its own yet, it is the highest of its
    // messages' MODSEQs, so removing messages cannot raise it.
    let dir = tempfile::tempdir().expect("tempdir");
    let store = populated(dir.path(), "maildir", 3);
    let mut a = SessionView::open(&store, "INBOX").expect("open a");
    let before = a.highestmodseq();
    a.expunge(&[2]).expect("expunge");
    let b = SessionView::open(&store, "INBOX").expect("open b");
    assert!(
        b.highestmodseq() > before,
        "HIGHESTMODSEQ {} after an expunge, was {before}",
        b.highestmodseq()
    );
    let other = store
        .folders()
        .open("INBOX")
        .expect("other")
        .sync()
        .expect("sync");
    assert_eq!(
        b.highestmodseq(),
        other.highestmodseq,
        "as another process sees it"
    );
}

/// Sessions of one user (threads of one process here, as in a worker; the lock holds across
/// processes too) subscribing at the same moment, as a client's many connections do on first
/// login, neither fail nor lose each other's names.
#[test]
fn sessions_subscribing_at_once_lose_nothing() {
    for format in ["maildir", "mbox"] {
        let dir = tempfile::tempdir().expect("temp dir");
        let sessions: Vec<_> = (0..8)
            .map(|session| {
                let path = dir.path().to_path_buf();
                std::thread::spawn(move || {
                    let store = store(&path, format);
                    for n in 0..10 {
                        store
                            .set_subscribed(&format!("folder-{session}-{n}"), true)
                            .expect("subscribe");
                    }
                })
            })
            .collect();
        for session in sessions {
            session.join().expect("a session panicked");
        }
        let mut names = store(dir.path(), format).subscriptions().expect("read");
        names.sort();
        assert_eq!(names.len(), 80, "{format}: {names:?}");
        names.dedup();
        assert_eq!(names.len(), 80, "{format}: no name twice");
    }
}
