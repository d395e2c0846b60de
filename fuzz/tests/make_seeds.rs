//! Writes the binary seed inputs (indexes, journals, caches, a real maildir) into
//! `fuzz/corpus/`, from roost's own writers, so the seeds follow the formats. Run after a
//! format change:
//!
//! ```text
//! cargo test -p roost-fuzz --test make_seeds -- --ignored
//! ```

use std::collections::BTreeSet;
use std::fs;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use roost_fuzz::mbox::SEP;
use roost_storage::cache::FieldCache;
use roost_storage::index::{Index, IndexRecord, Stamp};
use roost_storage::mailbox::{FlagChange, Flags, Mailbox};
use roost_storage::maildir::{journal, Maildir};
use roost_storage::mbox::{index as mbox_index, parse};

fn corpus(target: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn join(parts: &[&[u8]]) -> Vec<u8> {
    parts.join(SEP)
}

fn stamp(secs: i64) -> Stamp {
    Stamp { secs, nanos: 5 }
}

#[test]
#[ignore = "writes seed files; run by hand after a format change"]
fn make_seeds() {
    // The maildir index.
    let record = |uid, file: &str| IndexRecord {
        uid,
        flags: Flags::SEEN.bits(),
        keywords: 0b101,
        size: 120,
        date: stamp(1_700_000_000),
        file: file.into(),
        modseq: 3,
    };
    let index = Index {
        uidvalidity: 1_700_000_000,
        uidnext: 9,
        cur: stamp(1_700_000_100),
        new: stamp(1_700_000_101),
        uidlist: stamp(1_700_000_102),
        records: vec![record(5, "a,S=120,U=5:2,Sac"), record(7, "b,U=7:2,")],
        keywords: "0 $Junk\n2 NonJunk\n".into(),
        highestmodseq: 9,
    };
    fs::write(corpus("maildir_index").join("two"), index.encode()).unwrap();
    fs::write(
        corpus("maildir_index").join("empty"),
        Index::default().encode(),
    )
    .unwrap();

    // The journal.
    let dir = roost_fuzz::scratch_dir();
    let rec = |uid, change| journal::Record {
        change,
        uid,
        modseq: 10 + u64::from(uid),
        after: [stamp(1), stamp(2), stamp(3)],
        file: format!("m{uid},U={uid}:2,S"),
    };
    journal::append(
        dir.path(),
        7,
        &[
            rec(1, journal::Change::Flags),
            rec(
                2,
                journal::Change::Added {
                    size: 99,
                    date: stamp(4),
                },
            ),
            rec(3, journal::Change::Removed),
        ],
    )
    .unwrap();
    fs::copy(
        dir.path().join(journal::FILE_NAME),
        corpus("journal").join("three"),
    )
    .unwrap();

    // The field cache.
    let path = dir.path().join("cache");
    let mut cache = FieldCache::open(&path, 42);
    cache.put(1, "ENVELOPE", b"(NIL NIL NIL)").unwrap();
    cache
        .put(2, "BODYSTRUCTURE", b"(\"text\" \"plain\")")
        .unwrap();
    cache.put(1, "ENVELOPE", b"(\"x\")").unwrap();
    drop(cache);
    fs::copy(&path, corpus("field_cache").join("three")).unwrap();

    // The mbox index, from a scan of the mbox seed.
    let mbox = fs::read(corpus("mbox_reader").join("two")).unwrap();
    let scan = parse::scan(&mut Cursor::new(&mbox)).unwrap();
    let id = mbox_index::FileId {
        inode: 1,
        len: mbox.len() as u64,
        mtime: (1_700_000_000, 0),
    };
    fs::write(
        corpus("mbox_index").join("two"),
        mbox_index::encode(id, &scan),
    )
    .unwrap();

    // Maildir folders: a hand-made one, and a real one roost synced, stored flags in, and
    // whose index and journal are part of the input.
    fs::write(
        corpus("maildir_open").join("plain"),
        join(&[
            b"3 V1700000000 N9\n5 :1700000000.M1P2.host,S=120\n",
            b"0 $Junk\n1 NonJunk\n",
            b"1700000000.M1P2.host,S=120:2,Sa\n1700000009.M9.host,U=3:2,F\n",
            b"1700000100.M5P6.host\n1700000101.M7P8.host,S=5\n",
        ]),
    )
    .unwrap();
    let root = dir.path().join("real");
    let mut folder = Maildir::new(&root);
    for n in 0..3 {
        let msg = format!("Subject: {n}\r\n\r\nbody\r\n");
        folder
            .append(&mut msg.as_bytes(), Flags::empty(), &BTreeSet::new(), None)
            .unwrap();
    }
    folder.sync().unwrap();
    let keywords: BTreeSet<String> = ["$Junk".to_string()].into();
    folder
        .store(&[2], FlagChange::Add, Flags::SEEN, &keywords)
        .unwrap();
    drop(folder);
    let names = |sub: &str| {
        let mut names: Vec<String> = fs::read_dir(root.join(sub))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().into_string().unwrap())
            .collect();
        names.sort();
        names.join("\n").into_bytes()
    };
    let read = |name: &str| fs::read(root.join(name)).unwrap_or_default();
    fs::write(
        corpus("maildir_open").join("real"),
        join(&[
            &read("dovecot-uidlist"),
            &read("dovecot-keywords"),
            &names("cur"),
            &names("new"),
            &read("roost.index"),
            &read(journal::FILE_NAME),
        ]),
    )
    .unwrap();
}
