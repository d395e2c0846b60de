//! A maildir no IMAP server has numbered yet (mail an MTA or procmail delivered, a Courier
//! maildir) is numbered on first sight without a repair being reported; losing the uidlist of
//! a maildir roost has numbered still is one. A test binary of its own: the repair count is
//! per process.

use std::fs;

use roost_storage::maildir::Maildir;
use roost_storage::{repair, Mailbox};

#[test]
fn first_numbering_is_no_repair_but_a_lost_uidlist_is() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("Maildir");
    for sub in ["cur", "new", "tmp"] {
        fs::create_dir_all(root.join(sub)).expect("maildir");
    }
    // Two already read by a client that keeps no uidlist (in cur/, flagged), one new.
    for (n, place) in [
        (0, "cur/1700000000.M0P1.mta:2,S"),
        (1, "cur/1700000001.M1P1.mta:2,"),
        (2, "new/1700000002.M2P1.mta"),
    ] {
        fs::write(root.join(place), format!("Subject: {n}\r\n\r\nbody\r\n")).expect("delivered");
    }
    let first = Maildir::new(&root).sync().expect("first sync");
    let uids: Vec<u32> = first.messages.iter().map(|m| m.uid).collect();
    assert_eq!(uids, vec![1, 2, 3]);
    assert_eq!(repair::count(), 0, "numbering new mail is no repair");

    fs::remove_file(root.join("dovecot-uidlist")).expect("uidlist written");
    let again = Maildir::new(&root).sync().expect("sync after the loss");
    assert_eq!(repair::count(), 1, "a lost uidlist is a repair");
    assert_eq!(
        again.uidvalidity, first.uidvalidity,
        "and the UIDs were kept"
    );
}
