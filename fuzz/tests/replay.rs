//! Replays every committed fuzz input (`fuzz/corpus/<target>/` seeds and
//! `fuzz/regressions/<target>/` crashes found earlier) through its target, so CI checks them
//! with an ordinary `cargo test`.

use std::fs;
use std::path::{Path, PathBuf};

fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(kind)
        .join(target);
    let Ok(entries) = fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// The regression inputs listed in `regressions/KNOWN`: bugs found and not fixed yet.
fn known() -> Vec<String> {
    let list = Path::new(env!("CARGO_MANIFEST_DIR")).join("regressions/KNOWN");
    fs::read_to_string(list)
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// Runs the inputs of `kind` for `target` (`open`: only the known open bugs, else all but
/// them); one failure message per input that panics.
fn replay(kind: &str, target: &str, open: bool) -> (usize, Vec<String>) {
    let (_, body) = roost_fuzz::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .unwrap_or_else(|| panic!("no target {target}"));
    let known = known();
    let files: Vec<PathBuf> = inputs(kind, target)
        .into_iter()
        .filter(|p| {
            let name = format!("{target}/{}", p.file_name().unwrap().to_string_lossy());
            known.contains(&name) == open
        })
        .collect();
    let mut failures = Vec::new();
    for path in &files {
        let data = fs::read(path).unwrap();
        if std::panic::catch_unwind(|| body(&data)).is_err() {
            failures.push(format!("{}", path.display()));
        }
    }
    (files.len(), failures)
}

fn check(target: &str) {
    let (seeds, mut failures) = replay("corpus", target, false);
    assert!(seeds > 0, "{target} has no seed corpus");
    let (_, more) = replay("regressions", target, false);
    failures.extend(more);
    assert!(
        failures.is_empty(),
        "{target} fails on:\n{}",
        failures.join("\n")
    );
}

macro_rules! replay_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                check(stringify!($name));
            }
        )*

        #[test]
        fn every_target_is_replayed() {
            let tested = [$(stringify!($name)),*];
            for (name, _) in roost_fuzz::TARGETS {
                assert!(tested.contains(name), "{name} has no replay test");
            }
        }
    };
}

replay_tests!(
    imap_decoder,
    imap_message,
    pop3,
    smtp_command,
    smtp_data,
    sasl,
    mbox_reader,
    mbox_index,
    maildir_text,
    maildir_index,
    journal,
    field_cache,
    maildir_open,
    user_files,
    sieve,
    managesieve,
);

#[test]
#[ignore = "the bugs listed in regressions/KNOWN are not fixed yet"]
fn known_bugs_are_fixed() {
    let mut failures = Vec::new();
    for (target, _) in roost_fuzz::TARGETS {
        failures.extend(replay("regressions", target, true).1);
    }
    assert!(
        failures.is_empty(),
        "still failing:\n{}",
        failures.join("\n")
    );
}

#[test]
fn header_sizes_match_the_formats() {
    let scan = roost_storage::mbox::parse::Scan::default();
    let id = roost_storage::mbox::index::FileId {
        inode: 0,
        len: 0,
        mtime: (0, 0),
    };
    let empty = roost_storage::mbox::index::encode(id, &scan);
    assert_eq!(empty.len(), roost_fuzz::mbox::MBOX_INDEX_HEADER);
    assert_eq!(roost_fuzz::maildir::index_header_len(), 84);
}
