//! One suite, run against every backend: whatever the format, a session sees the same mailbox
//! behaviour through the `Mailbox` API.

use std::collections::BTreeSet;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use roost_storage::maildir::Maildir;
use roost_storage::mbox::Mbox;
use roost_storage::{FlagChange, Flags, Mailbox};

fn maildir(dir: &Path, name: &str) -> Box<dyn Mailbox> {
    Box::new(Maildir::new(dir.join(name)))
}

fn mbox(dir: &Path, name: &str) -> Box<dyn Mailbox> {
    Box::new(Mbox::new(
        dir.join(name),
        dir.join(format!(".roost/{name}.uids")),
    ))
}

fn text(mb: &dyn Mailbox, uid: u32) -> String {
    let mut s = String::new();
    mb.open_message(uid)
        .unwrap()
        .read_to_string(&mut s)
        .unwrap();
    s
}

const MESSAGES: [&str; 3] = [
    "From: a@example.com\r\nSubject: one\r\n\r\nFrom the top\r\n",
    "Subject: two\r\n\r\n>From quoted\r\n\r\n\r\n",
    "Subject: three\r\n\r\nno final newline",
];

/// `adds_final_newline`: mbox cannot store a message whose last line lacks its newline (the
/// separator needs one), so it adds one; maildir keeps the bytes exactly.
fn round_trip(open: fn(&Path, &str) -> Box<dyn Mailbox>, adds_final_newline: bool) {
    let dir = tempfile::tempdir().unwrap();
    let mut mb = open(dir.path(), "INBOX");
    let date = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let kw: BTreeSet<String> = ["$Label1".to_string()].into();
    let mut uids = Vec::new();
    for (i, m) in MESSAGES.iter().enumerate() {
        let flags = if i == 1 { Flags::SEEN } else { Flags::empty() };
        uids.push(
            mb.append(&mut m.as_bytes(), flags, &kw, Some(date))
                .unwrap(),
        );
    }
    assert_eq!(uids, vec![1, 2, 3]);
    let snap = open(dir.path(), "INBOX").sync().unwrap();
    assert_eq!(snap.uidnext, 4);
    for (m, info) in MESSAGES.iter().zip(&snap.messages) {
        let expected = if m.ends_with('\n') || !adds_final_newline {
            m.to_string()
        } else {
            format!("{m}\n")
        };
        assert_eq!(text(mb.as_ref(), info.uid), expected, "uid {}", info.uid);
        assert_eq!(
            info.size,
            expected.len() as u64,
            "RFC822.SIZE of uid {}",
            info.uid
        );
        assert_eq!((info.internal_date, &info.keywords), (date, &kw));
    }
    assert_eq!(snap.messages[1].flags, Flags::SEEN);

    // A byte range without reading the rest.
    let mut view = mb.open_message(1).unwrap();
    view.seek(SeekFrom::Start(21)).unwrap();
    let mut five = [0u8; 7];
    view.read_exact(&mut five).unwrap();
    assert_eq!(&five, b"Subject");

    mb.store(
        &[1, 3],
        FlagChange::Add,
        Flags::FLAGGED.union(Flags::DELETED),
        &BTreeSet::new(),
    )
    .unwrap();
    assert_eq!(mb.expunge(&[1, 3]).unwrap(), vec![1, 3]);
    let after = open(dir.path(), "INBOX").sync().unwrap();
    assert_eq!(
        after.messages.iter().map(|m| m.uid).collect::<Vec<_>>(),
        vec![2]
    );
    assert_eq!(after.uidvalidity, snap.uidvalidity);
    let uid = mb
        .append(
            &mut &b"Subject: four\r\n\r\n"[..],
            Flags::empty(),
            &BTreeSet::new(),
            None,
        )
        .unwrap();
    assert_eq!(uid, 4, "UIDs are never reused");

    // COPY and MOVE into another folder of the same format.
    let mut archive = open(dir.path(), "Archive");
    let copied = mb.copy_to(&[2], archive.as_mut()).unwrap();
    assert_eq!(copied, vec![(2, 1)]);
    assert_eq!(text(archive.as_ref(), 1), text(mb.as_ref(), 2));
    assert_eq!(archive.sync().unwrap().messages[0].flags, Flags::SEEN);
    let moved = mb.move_to(&[4], archive.as_mut()).unwrap();
    assert_eq!(moved, vec![(4, 2)]);
    assert_eq!(mb.sync().unwrap().messages.len(), 1);
    assert_eq!(archive.sync().unwrap().messages.len(), 2);
}

#[test]
fn maildir_behaves() {
    round_trip(maildir, false);
}

#[test]
fn mbox_behaves() {
    round_trip(mbox, true);
}

/// POP3 LIST and IMAP RFC822.SIZE report the CRLF size, whatever line ends the file has.
fn crlf_sizes(open: fn(&Path, &str) -> Box<dyn Mailbox>) {
    let dir = tempfile::tempdir().unwrap();
    let mut mb = open(dir.path(), "INBOX");
    let bare_lf = "Subject: lf\n\nline one\nline two\n";
    let crlf = "Subject: crlf\r\n\r\nbody\r\n";
    for m in [bare_lf, crlf] {
        mb.append(&mut m.as_bytes(), Flags::empty(), &BTreeSet::new(), None)
            .unwrap();
    }
    mb.sync().unwrap();
    assert_eq!(mb.crlf_size(1).unwrap(), bare_lf.len() as u64 + 4);
    assert_eq!(mb.crlf_size(2).unwrap(), crlf.len() as u64);
    // A second session learns it without being told at append time.
    let mut again = open(dir.path(), "INBOX");
    again.sync().unwrap();
    assert_eq!(again.crlf_size(1).unwrap(), bare_lf.len() as u64 + 4);
}

#[test]
fn crlf_sizes_on_maildir() {
    crlf_sizes(maildir);
    // A file an MTA dropped into new/ (no W= in its name) is counted once and cached.
    let dir = tempfile::tempdir().unwrap();
    let mut mb = maildir(dir.path(), "INBOX");
    mb.sync().unwrap();
    let body = "Subject: mta\n\nhello\n";
    std::fs::write(dir.path().join("INBOX/new/123.mta.host"), body).unwrap();
    let snap = mb.sync().unwrap();
    let uid = snap.messages[0].uid;
    assert_eq!(mb.crlf_size(uid).unwrap(), body.len() as u64 + 3);
    std::fs::write(
        dir.path()
            .join("INBOX/cur")
            .read_dir()
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path(),
        "changed underneath, the cache still answers",
    )
    .unwrap();
    let mut again = maildir(dir.path(), "INBOX");
    again.sync().unwrap();
    assert_eq!(again.crlf_size(uid).unwrap(), body.len() as u64 + 3);
}

#[test]
fn crlf_sizes_on_mbox() {
    crlf_sizes(mbox);
}

/// POP3 LIST announces what RETR sends: the CRLF size, plus the CRLF RETR adds after a last
/// line without its newline; a second session gets the same answer from the field cache.
fn pop3_sizes(open: fn(&Path, &str) -> Box<dyn Mailbox>) {
    let dir = tempfile::tempdir().unwrap();
    let mut mb = open(dir.path(), "INBOX");
    for m in MESSAGES {
        mb.append(&mut m.as_bytes(), Flags::empty(), &BTreeSet::new(), None)
            .unwrap();
    }
    let snap = mb.sync().unwrap();
    let mut expected = Vec::new();
    for info in &snap.messages {
        let unterminated = !text(mb.as_ref(), info.uid).ends_with('\n');
        let size = mb.crlf_size(info.uid).unwrap() + if unterminated { 2 } else { 0 };
        assert_eq!(mb.pop3_size(info.uid).unwrap(), size, "UID {}", info.uid);
        expected.push(size);
    }
    let mut again = open(dir.path(), "INBOX");
    let snap = again.sync().unwrap();
    let sizes: Vec<u64> = snap
        .messages
        .iter()
        .map(|m| again.pop3_size(m.uid).unwrap())
        .collect();
    assert_eq!(sizes, expected);
}

#[test]
fn pop3_sizes_on_maildir() {
    pop3_sizes(maildir);
}

#[test]
fn pop3_sizes_on_mbox() {
    pop3_sizes(mbox);
}
