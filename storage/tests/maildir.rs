//! Maildir folders through the `Mailbox` API: UIDs, flags, keywords, external deliveries, and
//! repair of every file roost keeps beside the mail.

use std::collections::BTreeSet;
use std::fs;
use std::io::Read;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, UNIX_EPOCH};

use roost_storage::maildir::Maildir;
use roost_storage::{repair, FlagChange, Flags, Mailbox, Snapshot};

fn kw(words: &[&str]) -> BTreeSet<String> {
    words.iter().map(|w| w.to_string()).collect()
}

fn append(md: &mut Maildir, text: &str) -> u32 {
    md.append(&mut text.as_bytes(), Flags::empty(), &BTreeSet::new(), None)
        .unwrap()
}

fn read(md: &Maildir, uid: u32) -> Vec<u8> {
    let mut out = Vec::new();
    md.open_message(uid).unwrap().read_to_end(&mut out).unwrap();
    out
}

fn uids(s: &Snapshot) -> Vec<u32> {
    s.messages.iter().map(|m| m.uid).collect()
}

/// A folder with three messages (UIDs 1..=3), the second one expunged, then one more (UID 4).
fn populated(dir: &Path) -> (Maildir, Snapshot) {
    let mut md = Maildir::new(dir.join("Maildir"));
    for i in 1..=3 {
        append(&mut md, &format!("Subject: {i}\r\n\r\nbody {i}\r\n"));
    }
    md.expunge(&[2]).unwrap();
    append(&mut md, "Subject: 4\r\n\r\nbody 4\r\n");
    md.store(&[1], FlagChange::Add, Flags::SEEN, &kw(&["$Junk"]))
        .unwrap();
    md.store(
        &[4],
        FlagChange::Add,
        Flags::FLAGGED.union(Flags::ANSWERED),
        &BTreeSet::new(),
    )
    .unwrap();
    let snap = md.sync().unwrap();
    (md, snap)
}

#[test]
fn appended_messages_get_ascending_uids_and_read_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let (md, snap) = populated(dir.path());
    assert_eq!(uids(&snap), vec![1, 3, 4]);
    assert_eq!(snap.uidnext, 5);
    assert_eq!(read(&md, 3), b"Subject: 3\r\n\r\nbody 3\r\n");
    assert_eq!(snap.messages[0].size, 22);
    assert!(snap.messages[0].flags.contains(Flags::SEEN));
    assert_eq!(snap.messages[0].keywords, kw(&["$Junk"]));
    assert!(snap.messages[2]
        .flags
        .contains(Flags::FLAGGED.union(Flags::ANSWERED)));
    assert!(md.open_message(2).is_err(), "expunged");

    // A second handle (another session) sees the same folder.
    let mut other = Maildir::new(dir.path().join("Maildir"));
    assert_eq!(other.sync().unwrap(), snap);
}

#[test]
fn flags_set_add_remove_and_internal_date() {
    let dir = tempfile::tempdir().unwrap();
    let mut md = Maildir::new(dir.path().join("M"));
    let date = UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    let uid = md
        .append(
            &mut &b"x\r\n"[..],
            Flags::DRAFT,
            &kw(&["NonJunk"]),
            Some(date),
        )
        .unwrap();
    let m = &md.sync().unwrap().messages[0];
    assert_eq!(
        (m.flags, m.internal_date, &m.keywords),
        (Flags::DRAFT, date, &kw(&["NonJunk"]))
    );
    let after = md
        .store(&[uid], FlagChange::Set, Flags::SEEN, &kw(&["$Forwarded"]))
        .unwrap();
    assert_eq!(
        (after[0].flags, &after[0].keywords),
        (Flags::SEEN, &kw(&["$Forwarded"]))
    );
    let after = md
        .store(
            &[uid],
            FlagChange::Remove,
            Flags::SEEN,
            &kw(&["$Forwarded"]),
        )
        .unwrap();
    assert_eq!(
        (after[0].flags, after[0].keywords.len()),
        (Flags::empty(), 0)
    );
    assert_eq!(
        md.sync().unwrap().messages[0].internal_date,
        date,
        "a rename keeps the date"
    );
}

#[test]
fn mail_delivered_by_others_is_picked_up_and_uids_are_never_reused() {
    let dir = tempfile::tempdir().unwrap();
    let (mut md, _) = populated(dir.path());
    md.expunge(&[4]).unwrap();
    let root = dir.path().join("Maildir");
    Maildir::new(&root)
        .deliver(&mut &b"Subject: from the MTA\r\n\r\nhi\r\n"[..])
        .unwrap();
    fs::write(
        root.join("cur/1699999999.dropped.host:2,S"),
        "Subject: dropped in cur\r\n\r\n",
    )
    .unwrap();
    let snap = md.sync().unwrap();
    assert_eq!(
        uids(&snap),
        vec![1, 3, 5, 6],
        "new UIDs above every UID ever used"
    );
    assert_eq!(
        fs::read_dir(root.join("new")).unwrap().count(),
        0,
        "new/ was emptied into cur/"
    );
    let seen = snap
        .messages
        .iter()
        .filter(|m| m.flags.contains(Flags::SEEN))
        .count();
    assert_eq!(seen, 2, "the dropped file keeps its S flag");
    fs::remove_file(
        fs::read_dir(root.join("cur"))
            .unwrap()
            .flatten()
            .find(|e| e.file_name().to_string_lossy().contains(",U=3"))
            .unwrap()
            .path(),
    )
    .unwrap();
    assert_eq!(
        uids(&md.sync().unwrap()),
        vec![1, 5, 6],
        "a file removed behind our back disappears"
    );
}

/// Damages the folder, reopens it, and checks a client would notice nothing; `logged` says
/// whether the damage must have been reported as a repair.
fn without_modseq(s: &Snapshot) -> Snapshot {
    let mut s = s.clone();
    s.highestmodseq = 0;
    for m in &mut s.messages {
        m.modseq = 0;
    }
    s
}

fn check_repaired(dir: &Path, before: &Snapshot, logged: bool, damage: impl Fn(&Path)) {
    let root = dir.join("Maildir");
    damage(&root);
    let repairs = repair::count();
    let after = Maildir::new(&root).sync().unwrap();
    assert_eq!(
        without_modseq(&after),
        without_modseq(before),
        "same UIDVALIDITY, UIDs, flags and keywords"
    );
    // MODSEQs may only move forward (a lost index makes clients recheck flags, never miss a change).
    assert!(after.highestmodseq >= before.highestmodseq);
    for (a, b) in after.messages.iter().zip(&before.messages) {
        assert!(a.modseq >= b.modseq, "MODSEQ of UID {} went back", a.uid);
    }
    if logged {
        assert!(repair::count() > repairs, "the repair was reported");
    }
    assert_eq!(
        Maildir::new(&root).sync().unwrap(),
        after,
        "and the repair sticks"
    );
}

#[test]
fn a_lost_or_mangled_uidlist_changes_nothing_a_client_sees() {
    let dir = tempfile::tempdir().unwrap();
    let (_, before) = populated(dir.path());
    let uidlist = dir.path().join("Maildir/dovecot-uidlist");
    let original = fs::read(&uidlist).unwrap();
    check_repaired(dir.path(), &before, true, |root| {
        fs::remove_file(root.join("dovecot-uidlist")).unwrap()
    });
    check_repaired(dir.path(), &before, true, |root| {
        fs::write(root.join("dovecot-uidlist"), b"\x00\xffgarbage").unwrap()
    });
    for cut in 0..original.len() {
        check_repaired(dir.path(), &before, true, |root| {
            fs::write(root.join("dovecot-uidlist"), &original[..cut]).unwrap()
        });
    }
    let mut flipped = original.clone();
    for i in 0..flipped.len() {
        flipped[i] ^= 0x5a;
        check_repaired(dir.path(), &before, false, |root| {
            fs::write(root.join("dovecot-uidlist"), &flipped).unwrap()
        });
        flipped[i] ^= 0x5a;
    }
}

#[test]
fn the_uidvalidity_marker_the_keywords_and_the_lock_file_may_go_too() {
    let dir = tempfile::tempdir().unwrap();
    let (_, before) = populated(dir.path());
    let marker = |root: &Path| {
        fs::read_dir(root)
            .unwrap()
            .flatten()
            .find(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("roost-uidvalidity.")
            })
            .unwrap()
            .path()
    };
    check_repaired(dir.path(), &before, false, |root| {
        fs::remove_file(marker(root)).unwrap()
    });
    check_repaired(dir.path(), &before, false, |root| {
        fs::write(root.join("roost.lock"), b"junk").unwrap()
    });
    check_repaired(dir.path(), &before, false, |root| {
        fs::remove_file(root.join("roost.lock")).unwrap()
    });

    // Uidlist and marker both gone: UIDs survive in the file names, UIDVALIDITY must change
    // (it is time-based: let the clock move past the original one).
    std::thread::sleep(Duration::from_millis(1100));
    let root = dir.path().join("Maildir");
    fs::remove_file(root.join("dovecot-uidlist")).unwrap();
    fs::remove_file(marker(&root)).unwrap();
    let after = Maildir::new(&root).sync().unwrap();
    assert_eq!(uids(&after), uids(&before));
    assert!(
        after.uidvalidity > before.uidvalidity,
        "{} vs {}",
        after.uidvalidity,
        before.uidvalidity
    );
}

#[test]
fn a_maildir_written_by_pythons_mailbox_module_reads_back_byte_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("py");
    let script = r#"
import mailbox, sys
md = mailbox.Maildir(sys.argv[1], create=True)
for i, flags in enumerate(["", "S", "RS", "FT"]):
    m = mailbox.MaildirMessage(("Subject: py %d\nFrom: a@b.example\n\nline one\n.dot line\n" % i).encode())
    m.set_flags(flags)
    if flags:
        m.set_subdir("cur")
    md.add(m)
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&root)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut md = Maildir::new(&root);
    let snap = md.sync().unwrap();
    assert_eq!(snap.messages.len(), 4);
    let mut subjects = Vec::new();
    for m in &snap.messages {
        let body = read(&md, m.uid);
        let text = String::from_utf8(body).unwrap();
        assert!(text.ends_with("\n\nline one\n.dot line\n"), "{text:?}");
        subjects.push((text.lines().next().unwrap().to_string(), m.flags));
    }
    subjects.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(subjects[0], ("Subject: py 0".to_string(), Flags::empty()));
    assert_eq!(subjects[1], ("Subject: py 1".to_string(), Flags::SEEN));
    assert_eq!(
        subjects[2],
        (
            "Subject: py 2".to_string(),
            Flags::SEEN.union(Flags::ANSWERED)
        )
    );
    assert_eq!(
        subjects[3],
        (
            "Subject: py 3".to_string(),
            Flags::FLAGGED.union(Flags::DELETED)
        )
    );

    // And Python reads what roost wrote, flags included.
    append(&mut md, "Subject: from roost\r\n\r\nhello\r\n");
    md.store(&[5], FlagChange::Add, Flags::SEEN, &BTreeSet::new())
        .unwrap();
    let check = r#"
import mailbox, sys
md = mailbox.Maildir(sys.argv[1], create=False)
found = [k for k, m in md.items() if m["Subject"] == "from roost"]
assert len(found) == 1 and md[found[0]].get_flags() == "S", found
raw = md.get_bytes(found[0])
assert raw == b"Subject: from roost\r\n\r\nhello\r\n", repr(raw)
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(check)
        .arg(&root)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_damaged_or_lost_index_is_rebuilt_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (_, before) = populated(dir.path());
    let root = dir.path().join("Maildir");
    // The sync above wrote an index; open once more so it is current, then damage it.
    Maildir::new(&root).sync().unwrap();
    let index = root.join("roost.index");
    let original = fs::read(&index).unwrap();
    assert!(original.starts_with(b"ROOSTIX1"));
    check_repaired(dir.path(), &before, true, |root| {
        fs::remove_file(root.join("roost.index")).unwrap()
    });
    check_repaired(dir.path(), &before, true, |root| {
        fs::write(root.join("roost.index"), b"").unwrap()
    });
    check_repaired(dir.path(), &before, true, |root| {
        fs::write(root.join("roost.index"), b"garbage garbage garbage").unwrap()
    });
    for cut in (0..original.len()).step_by(7) {
        check_repaired(dir.path(), &before, true, |root| {
            fs::write(root.join("roost.index"), &original[..cut]).unwrap()
        });
    }
    for i in (0..original.len()).step_by(5) {
        let mut flipped = original.clone();
        flipped[i] ^= 0x10;
        check_repaired(dir.path(), &before, true, |root| {
            fs::write(root.join("roost.index"), &flipped).unwrap()
        });
    }
}

#[test]
fn a_current_index_is_trusted_and_a_stale_one_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let (_, before) = populated(dir.path());
    let root = dir.path().join("Maildir");
    Maildir::new(&root).sync().unwrap();
    // Something renames a message behind roost's back (a MUA marking it deleted): cur/ changes,
    // the index is stale, and the change is seen.
    let file = fs::read_dir(root.join("cur"))
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().contains(",U=3:2,"))
        .unwrap();
    let name = file.file_name().into_string().unwrap();
    fs::rename(file.path(), root.join("cur").join(format!("{name}T"))).unwrap();
    let after = Maildir::new(&root).sync().unwrap();
    assert!(after.messages[1].flags.contains(Flags::DELETED));
    assert_eq!(uids(&after), uids(&before));
}

#[test]
fn cached_fields_are_served_again_without_the_message_file() {
    let dir = tempfile::tempdir().unwrap();
    let (mut md, _) = populated(dir.path());
    assert_eq!(md.cached(3, "ENVELOPE"), None);
    md.cache(3, "ENVELOPE", b"(NIL \"3\" NIL)").unwrap();
    // A new session, with the message file made unreadable (emptied, same name): the cached
    // field is still served, so no message file is read for it.
    let root = dir.path().join("Maildir");
    let mut reopened = Maildir::new(&root);
    reopened.sync().unwrap();
    let file = fs::read_dir(root.join("cur"))
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().contains(",U=3:"))
        .unwrap()
        .path();
    fs::write(&file, b"").unwrap();
    assert_eq!(
        reopened.cached(3, "ENVELOPE").as_deref(),
        Some(&b"(NIL \"3\" NIL)"[..])
    );
    // A lost or garbled cache only costs a recomputation.
    fs::write(root.join("roost.cache"), b"garbage").unwrap();
    let mut damaged = Maildir::new(&root);
    damaged.sync().unwrap();
    assert_eq!(damaged.cached(3, "ENVELOPE"), None);
    damaged.cache(3, "ENVELOPE", b"again").unwrap();
    assert_eq!(
        damaged.cached(3, "ENVELOPE").as_deref(),
        Some(&b"again"[..])
    );
}

#[test]
fn modseq_rises_for_changed_messages_only_and_across_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let (mut md, _) = populated(dir.path());
    let root = dir.path().join("Maildir");
    let before = Maildir::new(&root).sync().unwrap();
    assert!(before.highestmodseq >= 1 && before.messages.iter().all(|m| m.modseq >= 1));
    let changed = md
        .store(&[3], FlagChange::Add, Flags::DRAFT, &BTreeSet::new())
        .unwrap();
    assert!(changed[0].modseq > before.highestmodseq);
    let after = Maildir::new(&root).sync().unwrap();
    assert!(after.highestmodseq >= changed[0].modseq);
    for (a, b) in after.messages.iter().zip(&before.messages) {
        if a.uid == 3 {
            assert!(a.modseq > before.highestmodseq, "the changed message");
        } else {
            assert_eq!(a.modseq, b.modseq, "UID {} did not change", a.uid);
        }
    }
}

fn flags_of(s: &Snapshot) -> Vec<(u32, Flags)> {
    s.messages.iter().map(|m| (m.uid, m.flags)).collect()
}

/// Flag changes travel between sessions through `roost.journal`; whatever happens to it, or
/// behind its back, every session still sees the folder as it is.
#[test]
fn flag_changes_reach_other_sessions_through_the_journal_and_nothing_is_missed() {
    let dir = tempfile::tempdir().unwrap();
    let (mut a, _) = populated(dir.path());
    let root = dir.path().join("Maildir");
    let mut b = Maildir::new(&root);
    b.sync().unwrap();

    a.store(&[3], FlagChange::Add, Flags::SEEN, &BTreeSet::new())
        .unwrap();
    assert!(root.join("roost.journal").exists(), "a STORE is journaled");
    let seen_by_b = b.sync().unwrap();
    assert_eq!(flags_of(&seen_by_b), flags_of(&a.sync().unwrap()));
    assert!(seen_by_b.messages[1].flags.contains(Flags::SEEN));

    // Back the other way, several times, and a fresh session reads index plus journal.
    for round in 0..5 {
        let flag = if round % 2 == 0 {
            Flags::FLAGGED
        } else {
            Flags::DRAFT
        };
        b.store(&[1, 4], FlagChange::Add, flag, &BTreeSet::new())
            .unwrap();
        assert_eq!(flags_of(&a.sync().unwrap()), flags_of(&b.sync().unwrap()));
    }
    let fresh = Maildir::new(&root).sync().unwrap();
    assert_eq!(flags_of(&fresh), flags_of(&a.sync().unwrap()));
    let modseqs = |s: &Snapshot| s.messages.iter().map(|m| m.modseq).collect::<Vec<_>>();
    assert_eq!(
        modseqs(&fresh),
        modseqs(&b.sync().unwrap()),
        "MODSEQs agree too"
    );

    // Another program renames a file in cur/ (a flag change without the journal): noticed.
    let cur = root.join("cur");
    let victim = fs::read_dir(&cur)
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().contains(",U=3"))
        .unwrap()
        .path();
    let renamed = victim.to_string_lossy().replace(":2,S", ":2,ST");
    fs::rename(&victim, &renamed).unwrap();
    let after = a.sync().unwrap();
    assert!(
        after.messages[1].flags.contains(Flags::DELETED),
        "{after:?}"
    );
    assert_eq!(flags_of(&b.sync().unwrap()), flags_of(&after));

    // A garbled or deleted journal costs a listing, never a wrong flag.
    a.store(&[1], FlagChange::Remove, Flags::SEEN, &BTreeSet::new())
        .unwrap();
    fs::write(root.join("roost.journal"), b"ROOSTJ01garbage!").unwrap();
    assert_eq!(flags_of(&b.sync().unwrap()), flags_of(&a.sync().unwrap()));
    a.store(&[1], FlagChange::Add, Flags::SEEN, &BTreeSet::new())
        .unwrap();
    fs::remove_file(root.join("roost.journal")).unwrap();
    assert_eq!(flags_of(&b.sync().unwrap()), flags_of(&a.sync().unwrap()));
    assert_eq!(
        flags_of(&Maildir::new(&root).sync().unwrap()),
        flags_of(&a.sync().unwrap())
    );
}

/// Appends and expunges travel through the journal too, and a session opened afterwards reads
/// index plus journal to the same folder.
#[test]
fn appends_and_expunges_reach_other_sessions_through_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let (mut a, _) = populated(dir.path());
    let root = dir.path().join("Maildir");
    let mut b = Maildir::new(&root);
    b.sync().unwrap();
    let mut added = Vec::new();
    for i in 0..5 {
        added.push(append(
            &mut a,
            &format!("Subject: j{i}\r\n\r\njournal {i}\r\n"),
        ));
        let seen = b.sync().unwrap();
        assert_eq!(seen, a.sync().unwrap(), "after append {i}");
        assert_eq!(
            read(&b, added[i]),
            format!("Subject: j{i}\r\n\r\njournal {i}\r\n").as_bytes()
        );
    }
    assert!(root.join("roost.journal").exists(), "appends are journaled");
    b.expunge(&[added[1], added[3]]).unwrap();
    let after = a.sync().unwrap();
    assert_eq!(after, b.sync().unwrap());
    assert!(!uids(&after).contains(&added[1]) && uids(&after).contains(&added[2]));
    assert_eq!(
        Maildir::new(&root).sync().unwrap(),
        after,
        "a new session agrees"
    );
    assert_eq!(
        append(&mut b, "Subject: next\r\n\r\n"),
        added[4] + 1,
        "UIDs never reused"
    );
    assert_eq!(a.sync().unwrap().uidnext, added[4] + 2);
}
