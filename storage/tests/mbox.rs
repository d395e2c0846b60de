//! mbox folders through the `Mailbox` API, against files written by Python's `mailbox` module
//! and by "another process" appending behind roost's back.

use std::collections::BTreeSet;
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use roost_storage::mbox::Mbox;
use roost_storage::{FlagChange, Flags, Mailbox};

fn python(script: &str, mbox: &Path) {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(mbox)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn read(mb: &Mbox, uid: u32) -> String {
    let mut s = String::new();
    mb.open_message(uid)
        .unwrap()
        .read_to_string(&mut s)
        .unwrap();
    s
}

/// A temp dir with an INBOX written by Python's `mailbox` module, and where its side file goes.
fn python_mbox() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("INBOX");
    let state = dir.path().join(".roost/INBOX.uids");
    python(PY_WRITE, &path);
    (dir, path, state)
}

fn without_modseq(s: &roost_storage::Snapshot) -> roost_storage::Snapshot {
    let mut s = s.clone();
    s.highestmodseq = 0;
    s.messages.iter_mut().for_each(|m| m.modseq = 0);
    s
}

const PY_WRITE: &str = r#"
import mailbox, sys
mb = mailbox.mbox(sys.argv[1])
for i, flags in enumerate(["", "R", "RA", "FD"]):
    m = mailbox.mboxMessage(("From: a%d@example.com\nSubject: py %d\n\nline one\nline two\n" % (i, i)).encode())
    m.set_flags(flags)
    mb.add(m)
mb.flush()
"#;

#[test]
fn an_mbox_written_by_python_reads_back_with_flags_and_exact_bytes() {
    let (_dir, path, state) = python_mbox();
    let mut mb = Mbox::new(&path, &state);
    let snap = mb.sync().unwrap();
    assert_eq!(snap.messages.len(), 4);
    assert_eq!(
        snap.messages.iter().map(|m| m.uid).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    assert_eq!(snap.messages[0].flags, Flags::empty());
    assert_eq!(snap.messages[1].flags, Flags::SEEN);
    assert_eq!(snap.messages[2].flags, Flags::SEEN.union(Flags::ANSWERED));
    assert_eq!(snap.messages[3].flags, Flags::FLAGGED.union(Flags::DELETED));
    let text = read(&mb, 3);
    assert_eq!(
        text, "From: a2@example.com\nSubject: py 2\n\nline one\nline two\n",
        "Status headers hidden"
    );
    assert_eq!(snap.messages[2].size, text.len() as u64);
    // Seeking into the middle gives the same bytes as reading through.
    let mut view = mb.open_message(3).unwrap();
    view.seek(SeekFrom::Start(21)).unwrap();
    let mut tail = String::new();
    view.read_to_string(&mut tail).unwrap();
    assert_eq!(tail, &text[21..]);
}

#[test]
fn append_store_expunge_keep_uids_and_python_still_reads_it() {
    let (_dir, path, state) = python_mbox();
    let mut mb = Mbox::new(&path, &state);
    let before = mb.sync().unwrap();
    let kw: BTreeSet<String> = ["$Junk".to_string()].into();
    let date = SystemTime::UNIX_EPOCH + Duration::from_secs(1_704_067_200);
    let uid = mb
        .append(
            &mut &b"Subject: appended\n\nFrom here on\n>From quoted\n"[..],
            Flags::DRAFT,
            &kw,
            Some(date),
        )
        .unwrap();
    assert_eq!(uid, 5);
    assert_eq!(
        read(&mb, 5),
        "Subject: appended\n\nFrom here on\n>From quoted\n",
        "mboxrd quoting is invisible"
    );
    let snap = mb.sync().unwrap();
    assert_eq!(
        (
            snap.messages[4].flags,
            &snap.messages[4].keywords,
            snap.messages[4].internal_date
        ),
        (Flags::DRAFT, &kw, date)
    );

    mb.store(
        &[1],
        FlagChange::Add,
        Flags::SEEN.union(Flags::FLAGGED),
        &BTreeSet::new(),
    )
    .unwrap();
    mb.expunge(&[2]).unwrap();
    let after = Mbox::new(&path, &state).sync().unwrap();
    assert_eq!(after.uidvalidity, before.uidvalidity);
    assert_eq!(
        after.messages.iter().map(|m| m.uid).collect::<Vec<_>>(),
        vec![1, 3, 4, 5]
    );
    assert!(after.messages[0]
        .flags
        .contains(Flags::SEEN.union(Flags::FLAGGED)));
    assert_eq!(
        read(&mb, 4),
        "From: a3@example.com\nSubject: py 3\n\nline one\nline two\n"
    );

    // The rewrite put the UIDs into the mail: the side file can go.
    fs::remove_file(&state).unwrap();
    assert_eq!(Mbox::new(&path, &state).sync().unwrap(), after);

    let check = r#"
import mailbox, sys
mb = mailbox.mbox(sys.argv[1])
subjects = [m["Subject"] for m in mb]
assert subjects == ["py 0", "py 2", "py 3", "appended"], subjects
assert mb[0]["X-UID"] == "1" and "R" in mb[0].get_flags() and "F" in mb[0].get_flags(), dict(mb[0])
"#;
    python(check, &path);
}

#[test]
fn mail_appended_by_another_program_gets_the_next_uid_and_keeps_it() {
    let (_dir, path, state) = python_mbox();
    let mut mb = Mbox::new(&path, &state);
    mb.sync().unwrap();
    mb.expunge(&[1]).unwrap();
    // An MTA appends while the session is open.
    let mta = "import mailbox, sys\nmb = mailbox.mbox(sys.argv[1])\nmb.add(b'Subject: from the MTA\\n\\nhi\\n')\nmb.flush()\n";
    python(mta, &path);
    let snap = mb.sync().unwrap();
    assert_eq!(
        snap.messages.iter().map(|m| m.uid).collect::<Vec<_>>(),
        vec![2, 3, 4, 5]
    );
    assert_eq!(read(&mb, 5), "Subject: from the MTA\n\nhi\n");
    // A second session agrees, before any rewrite put X-UID into that message.
    assert_eq!(Mbox::new(&path, &state).sync().unwrap(), snap);
    // Its UID survives a garbled side file too, as long as the rest of the mail has X-UIDs.
    fs::write(&state, b"garbage").unwrap();
    assert_eq!(
        Mbox::new(&path, &state)
            .sync()
            .unwrap()
            .messages
            .last()
            .map(|m| m.uid),
        Some(5)
    );
}

#[test]
fn a_stale_dotlock_is_broken_and_ours_is_released() {
    let (dir, path, state) = python_mbox();
    let lock = dir.path().join("INBOX.lock");
    fs::write(&lock, b"").unwrap();
    let long_ago = SystemTime::now() - Duration::from_secs(3600);
    fs::File::options()
        .write(true)
        .open(&lock)
        .unwrap()
        .set_modified(long_ago)
        .unwrap();
    let mut mb = Mbox::new(&path, &state);
    assert_eq!(mb.sync().unwrap().messages.len(), 4, "stale dotlock broken");
    assert!(!lock.exists(), "and our own dotlock released");
}

#[test]
fn an_open_session_reading_only_the_appended_tail_agrees_with_a_full_scan() {
    let (_dir, path, state) = python_mbox();
    let mut session = Mbox::new(&path, &state);
    session.sync().unwrap();
    for i in 0..5 {
        let body = format!("Subject: tail {i}\n\nFrom a line that needs quoting\nend {i}");
        let append = format!("import mailbox, sys\nmb = mailbox.mbox(sys.argv[1])\nmb.add({body:?}.encode())\nmb.flush()\n");
        python(&append, &path);
        let incremental = session.sync().unwrap();
        let full = Mbox::new(&path, &state).sync().unwrap();
        assert_eq!(incremental, full, "after append {i}");
        assert_eq!(incremental.messages.len(), 5 + i);
    }
}

#[test]
fn mbox_fields_are_cached_beside_the_side_file() {
    let (_dir, path, state) = python_mbox();
    let mut mb = Mbox::new(&path, &state);
    mb.sync().unwrap();
    mb.cache(2, "BODYSTRUCTURE", b"(\"text\" \"plain\")")
        .unwrap();
    let mut again = Mbox::new(&path, &state);
    again.sync().unwrap();
    assert_eq!(
        again.cached(2, "BODYSTRUCTURE").as_deref(),
        Some(&b"(\"text\" \"plain\")"[..])
    );
}

#[test]
fn the_mbox_index_opens_an_unchanged_mbox_and_heals_when_damaged_or_stale() {
    let (dir, path, state) = python_mbox();
    let first = Mbox::new(&path, &state).sync().unwrap();
    let index = dir.path().join(".roost/INBOX.index");
    assert!(index.exists());
    assert_eq!(
        Mbox::new(&path, &state).sync().unwrap(),
        first,
        "from the index"
    );
    let bytes = fs::read(&index).unwrap();
    for damage in [
        Vec::new(),
        b"garbage".to_vec(),
        bytes[..bytes.len() / 2].to_vec(),
    ] {
        fs::write(&index, &damage).unwrap();
        let repairs = roost_storage::repair::count();
        let healed = Mbox::new(&path, &state).sync().unwrap();
        // Same mailbox; MODSEQs only move forward after an index is lost.
        assert_eq!(without_modseq(&healed), without_modseq(&first));
        assert!(healed.highestmodseq >= first.highestmodseq);
        assert!(roost_storage::repair::count() > repairs, "reported");
    }
    // Another mail reader adds a Status header in place (same inode, longer file): seen.
    let text = fs::read_to_string(&path).unwrap();
    let changed = text.replacen("Subject: py 0\n", "Status: R\nSubject: py 0\n", 1);
    std::thread::sleep(Duration::from_millis(10));
    fs::write(&path, changed).unwrap();
    let after = Mbox::new(&path, &state).sync().unwrap();
    assert_eq!(
        after.messages.len(),
        4,
        "{:?}",
        fs::read_to_string(&path).unwrap()
    );
    assert!(after.messages[0].flags.contains(Flags::SEEN));
    assert_eq!(
        after.messages.iter().map(|m| m.uid).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
}

#[test]
fn after_the_first_open_the_mail_alone_keeps_uidvalidity_and_uids() {
    let (dir, path, state) = python_mbox();
    let first = Mbox::new(&path, &state).sync().unwrap();
    assert!(
        fs::read_to_string(&path).unwrap().contains("X-IMAPbase: "),
        "recorded in the mail"
    );
    fs::remove_dir_all(dir.path().join(".roost")).unwrap();
    let again = Mbox::new(&path, &state).sync().unwrap();
    assert_eq!(again.uidvalidity, first.uidvalidity);
    assert_eq!(
        again.messages.iter().map(|m| m.uid).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    // Python still reads it, with its flags.
    python("import mailbox, sys\nmb = mailbox.mbox(sys.argv[1])\nassert [m.get_flags() for m in mb] == ['O', 'RO', 'ROA', 'OFD'], [m.get_flags() for m in mb]\n", &path);
}

#[test]
fn mbox_modseq_rises_for_changed_messages_only_and_across_sessions() {
    let (_dir, path, state) = python_mbox();
    let mut mb = Mbox::new(&path, &state);
    let before = mb.sync().unwrap();
    let again = Mbox::new(&path, &state).sync().unwrap();
    assert_eq!(
        again, before,
        "a new session sees the same MODSEQs (from the index)"
    );
    let changed = mb
        .store(&[2], FlagChange::Add, Flags::FLAGGED, &BTreeSet::new())
        .unwrap();
    assert!(changed[0].modseq > before.highestmodseq);
    let after = Mbox::new(&path, &state).sync().unwrap();
    assert!(after.highestmodseq >= changed[0].modseq);
    for (a, b) in after.messages.iter().zip(&before.messages) {
        if a.uid == 2 {
            assert!(a.modseq > before.highestmodseq);
        } else {
            assert_eq!(a.modseq, b.modseq, "UID {} did not change", a.uid);
        }
    }
}

/// The bookkeeping headers a sender must not be able to set.
const FORGED: &str = "X-UID: 4294967295\nX-IMAPbase: 1 4294967295\nX-IMAP: 1 4294967295\nStatus: RO\nX-Status: DAF\nX-Keywords: $Forged\n  $Folded\nContent-Length: 3\n";

fn uids(snap: &roost_storage::Snapshot) -> Vec<u32> {
    snap.messages.iter().map(|m| m.uid).collect()
}

#[test]
fn bookkeeping_headers_in_appended_or_delivered_mail_are_stripped_not_trusted() {
    let (dir, path, state) = python_mbox();
    let mut mb = Mbox::new(&path, &state);
    mb.sync().unwrap();
    let message = format!("Subject: forged\n{FORGED}X-Keep: yes\n\nbody\nX-UID: 7 (body)\n");
    let uid = mb
        .append(
            &mut message.as_bytes(),
            Flags::empty(),
            &BTreeSet::new(),
            None,
        )
        .unwrap();
    assert_eq!(uid, 5);
    // Local delivery (LMTP, `roost deliver`) into the same INBOX.
    let location = roost_storage::MailLocation::parse(&format!(
        "mbox:{}:INBOX={}",
        dir.path().display(),
        path.display()
    ))
    .unwrap();
    let vars = roost_storage::UserVars {
        user: "u".into(),
        home: None,
    };
    let delivered = format!("Return-Path: <a@b>\n{FORGED}Subject: delivered\n\nhi\n");
    let second = roost_storage::Store::open(&location, &vars)
        .unwrap()
        .append_to_inbox(&mut delivered.as_bytes())
        .unwrap();
    assert_eq!(second, 6, "the UID space was not taken over");
    let snap = Mbox::new(&path, &state).sync().unwrap();
    assert_eq!(uids(&snap), vec![1, 2, 3, 4, 5, 6]);
    assert_eq!(snap.uidnext, 7);
    for m in &snap.messages[4..] {
        assert_eq!(m.flags, Flags::empty(), "no flags from the sender");
        assert!(m.keywords.is_empty(), "no keywords from the sender");
    }
    assert_eq!(
        read(&mb, 5),
        "Subject: forged\nX-Keep: yes\n\nbody\nX-UID: 7 (body)\n",
        "the header block lost the bookkeeping headers, the body kept its text"
    );
    let text = fs::read_to_string(&path).unwrap();
    assert!(
        !text.contains("4294967295") && !text.contains("$Folded"),
        "{text}"
    );
    // Expunging one removes exactly that one.
    mb.expunge(&[5]).unwrap();
    let after = Mbox::new(&path, &state).sync().unwrap();
    assert_eq!(uids(&after), vec![1, 2, 3, 4, 6]);
}

/// An mbox as an MTA that does not strip headers (or an attacker with the file) leaves it.
fn raw_mbox(text: &str) -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("INBOX");
    fs::write(&path, text).unwrap();
    let state = dir.path().join(".roost/INBOX.uids");
    (dir, path, state)
}

fn message(headers: &str, subject: &str) -> String {
    format!("From a@b Mon Jan  1 00:00:00 2024\n{headers}Subject: {subject}\n\nbody {subject}\n\n")
}

#[test]
fn x_uids_out_of_order_or_beyond_uidnext_are_renumbered_as_a_repair() {
    let text = [
        message("X-IMAPbase: 100 5\nX-UID: 1\n", "one"),
        message("X-UID: 4294967295\n", "huge"),
        message("X-UID: 2\n", "two"),
        message("X-UID: 2\n", "duplicate"),
        message("X-UID: 3\n", "three"),
        message("", "new"),
    ]
    .concat();
    let (_dir, path, state) = raw_mbox(&text);
    let repairs = roost_storage::repair::count();
    let mut mb = Mbox::new(&path, &state);
    let snap = mb.sync().unwrap();
    assert!(
        roost_storage::repair::count() > repairs,
        "logged as a repair"
    );
    assert_eq!(snap.uidvalidity, 100);
    // "huge" (not below UIDNEXT 5) and "duplicate" (not above 2) get new UIDs from 5 on.
    assert_eq!(uids(&snap), vec![1, 5, 6, 7, 8, 9]);
    assert_eq!(snap.uidnext, 10);
    assert_eq!(read(&mb, 5), "Subject: huge\n\nbody huge\n");
    // "three" lost its X-UID 3 because it must rise above 6.
    assert_eq!(read(&mb, 8), "Subject: three\n\nbody three\n");
    // The fix is recorded in the mail: another session, even without side files, agrees.
    assert!(!fs::read_to_string(&path).unwrap().contains("4294967295"));
    fs::remove_file(&state).unwrap();
    assert_eq!(uids(&Mbox::new(&path, &state).sync().unwrap()), uids(&snap));
    // EXPUNGE of one removes only that one.
    mb.expunge(&[6]).unwrap();
    let after = Mbox::new(&path, &state).sync().unwrap();
    assert_eq!(uids(&after), vec![1, 5, 7, 8, 9]);
    assert_eq!(read(&mb, 7), "Subject: duplicate\n\nbody duplicate\n");
}

#[test]
fn an_mbox_written_by_uw_imapd_or_dovecot_keeps_its_uids() {
    // They record the last UID given in X-IMAPbase, not the next one.
    let text = [
        message("X-IMAPbase: 1700000000 0000000003\nX-UID: 1\n", "one"),
        message("X-UID: 2\n", "two"),
        message("X-UID: 3\n", "three"),
    ]
    .concat();
    let (_dir, path, state) = raw_mbox(&text);
    let snap = Mbox::new(&path, &state).sync().unwrap();
    assert_eq!(
        (snap.uidvalidity, uids(&snap)),
        (1_700_000_000, vec![1, 2, 3])
    );
    assert_eq!(snap.uidnext, 4);
}

#[test]
fn an_exhausted_uid_space_means_a_new_uidvalidity_never_a_wrapped_uid() {
    let text = [
        message("X-IMAPbase: 7 4294967295\nX-UID: 4294967293\n", "one"),
        message("X-UID: 4294967294\n", "two"),
    ]
    .concat();
    let (_dir, path, state) = raw_mbox(&text);
    let mut mb = Mbox::new(&path, &state);
    let snap = mb.sync().unwrap();
    assert_eq!(
        (snap.uidvalidity, uids(&snap), snap.uidnext),
        (8, vec![1, 2], 3)
    );
    let uid = mb
        .append(
            &mut &b"Subject: three\n\nx\n"[..],
            Flags::empty(),
            &BTreeSet::new(),
            None,
        )
        .unwrap();
    assert_eq!(uid, 3);
    assert_eq!(read(&mb, 2), "Subject: two\n\nbody two\n");
    // The new numbering is in the mail: a session without side files sees the same.
    fs::remove_dir_all(path.parent().unwrap().join(".roost")).unwrap();
    let again = Mbox::new(&path, &state).sync().unwrap();
    assert_eq!(
        (again.uidvalidity, uids(&again), again.uidnext),
        (8, vec![1, 2, 3], 4)
    );
}

#[test]
fn reads_use_the_file_the_offsets_came_from_after_another_handle_rewrote_the_mbox() {
    let (_dir, path, state) = python_mbox();
    let mut a = Mbox::new(&path, &state);
    a.sync().unwrap();
    let (three, four) = (read(&a, 3), read(&a, 4));
    assert_eq!(
        three,
        "From: a2@example.com\nSubject: py 2\n\nline one\nline two\n"
    );
    let mut open_before = a.open_message(4).unwrap();
    let mut head = [0u8; 5];
    open_before.read_exact(&mut head).unwrap();

    // Another session (or process) changes flags: the mbox is rewritten and renamed into
    // place, every message after the first moves by the length of the new headers.
    let mut b = Mbox::new(&path, &state);
    b.sync().unwrap();
    let kw: BTreeSet<String> = ["$AKeywordLongEnoughToMoveEverything".to_string()].into();
    b.store(
        &[1, 2],
        FlagChange::Add,
        Flags::FLAGGED.union(Flags::ANSWERED),
        &kw,
    )
    .unwrap();
    assert_ne!(read(&b, 3), "", "b sees the new file");

    // A has not synced yet: its reads still return exactly the messages it indexed.
    assert_eq!(read(&a, 3), three);
    assert_eq!(read(&a, 4), four);
    let mut rest = String::new();
    open_before.read_to_string(&mut rest).unwrap();
    assert_eq!(
        format!("{}{rest}", std::str::from_utf8(&head).unwrap()),
        four
    );
    // A copy (COPY, MOVE) reads the same way.
    let mut copied = Vec::new();
    a.open_message(3).unwrap().read_to_end(&mut copied).unwrap();
    assert_eq!(copied, three.as_bytes());
    // After its next sync A reads the new file, with the same result.
    a.sync().unwrap();
    assert_eq!((read(&a, 3), read(&a, 4)), (three, four));
}

#[test]
fn a_message_moved_by_an_in_place_rewrite_is_refused_until_the_next_sync() {
    let (_dir, path, state) = python_mbox();
    let mut a = Mbox::new(&path, &state);
    a.sync().unwrap();
    let three = read(&a, 3);
    // A mail reader that rewrites in place (same inode) adds a header to the first message.
    let text = fs::read_to_string(&path).unwrap();
    let changed = text.replacen("Subject: py 0\n", "X-Label: moved\nSubject: py 0\n", 1);
    std::thread::sleep(Duration::from_millis(10));
    fs::write(&path, changed).unwrap();
    match a.open_message(3) {
        Err(roost_storage::Error::Changed(_)) => {}
        Err(e) => panic!("unexpected error {e}"),
        Ok(mut view) => {
            let mut got = String::new();
            view.read_to_string(&mut got).unwrap();
            panic!("read stale offsets: {got:?}");
        }
    }
    a.sync().unwrap();
    assert_eq!(read(&a, 3), three);
}

#[test]
fn folder_paths_through_a_symlink_are_refused_and_mail_files_are_not_followed() {
    use roost_storage::mbox::folders::MboxFolders;
    use roost_storage::{Error, FolderTree};
    let dir = tempfile::tempdir().unwrap();
    let (root, spool) = (dir.path().join("mail"), dir.path().join("spool"));
    fs::create_dir_all(&root).unwrap();
    fs::create_dir_all(&spool).unwrap();
    let victim = spool.join("bob");
    fs::write(&victim, message("", "secret")).unwrap();
    std::os::unix::fs::symlink(&spool, root.join("var")).unwrap();
    std::os::unix::fs::symlink(&victim, root.join("bob")).unwrap();
    let folders = MboxFolders::new(&root, dir.path().join("inbox"));
    let refused = |r: Result<(), Error>, what: &str| match r {
        Err(Error::InvalidName(_, why)) => assert!(why.contains("symbolic link"), "{what}: {why}"),
        other => panic!("{what}: {other:?}"),
    };
    for name in ["var/bob", "bob"] {
        refused(folders.open(name).map(drop), name);
        refused(folders.delete(name), name);
        refused(folders.rename(name, "Mine"), name);
        refused(folders.rename("Mine", name), name);
    }
    refused(folders.create("var/new"), "create");
    assert!(!spool.join("new").exists());
    assert_eq!(fs::read_to_string(&victim).unwrap(), message("", "secret"));
    assert_eq!(folders.list().unwrap(), ["INBOX"], "links are not listed");
    // An INBOX that is a symlink is not followed either.
    std::os::unix::fs::symlink(&victim, dir.path().join("inbox")).unwrap();
    assert!(folders.open("INBOX").unwrap().sync().is_err());
    assert_eq!(fs::read_to_string(&victim).unwrap(), message("", "secret"));
}

#[test]
fn reads_survive_a_rewrite_by_rename_in_another_process() {
    let (_dir, path, state) = python_mbox();
    let mut a = Mbox::new(&path, &state);
    a.sync().unwrap();
    let (three, four) = (read(&a, 3), read(&a, 4));
    // Another program (Python's mailbox module, as a mail reader would) gives the first
    // message a longer header and flushes: a temporary file renamed over the mbox.
    let script = "import mailbox, sys\n\
                  box = mailbox.mbox(sys.argv[1])\n\
                  box.lock()\n\
                  key = next(iter(box.keys()))\n\
                  msg = box[key]\n\
                  msg['X-Label'] = 'moved ' * 40\n\
                  box[key] = msg\n\
                  box.flush()\n\
                  box.unlock()\n";
    let status = Command::new("python3")
        .args(["-c", script])
        .arg(&path)
        .status()
        .expect("python3 runs");
    assert!(status.success());
    assert!(fs::read_to_string(&path)
        .unwrap()
        .contains("X-Label: moved"));
    // A has not synced: it reads the file it indexed, byte for byte.
    assert_eq!((read(&a, 3), read(&a, 4)), (three.clone(), four.clone()));
    a.sync().unwrap();
    assert_eq!((read(&a, 3), read(&a, 4)), (three, four));
}
