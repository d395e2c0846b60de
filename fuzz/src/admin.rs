//! The files an administrator writes: the Dovecot-style passwd-file and the aliases / virtual
//! maps. Their parsers live in the `roost` binary crate, which has no library, so the two
//! self-contained modules are compiled here once more from their own source files.

//!
//! Their unit tests belong to the binary crate and may use its other modules, so nothing here
//! is compiled in a `cfg(test)` build of this lib (which only `clippy --all-targets` makes: the
//! lib has `test = false`).

#[cfg(not(test))]
use std::path::Path;

#[cfg(not(test))]
#[allow(dead_code)]
#[path = "../../src/auth/passwd_file.rs"]
mod passwd_file;

#[cfg(not(test))]
#[allow(dead_code)]
#[path = "../../src/auth/extra_fields.rs"]
mod extra_fields;

#[cfg(not(test))]
#[allow(dead_code)]
#[path = "../../src/config/aliases.rs"]
mod aliases;

#[cfg(not(test))]
use aliases::AliasMap;
#[cfg(not(test))]
use passwd_file::PasswdFile;

/// Stands in for the target in a `cfg(test)` build, which never runs it.
#[cfg(test)]
pub fn user_files(_data: &[u8]) {
    unreachable!("roost-fuzz is not built as a unit test");
}

/// The input as a passwd-file (through the file, as the server reads it: every user a line
/// names is found, with that line's fields) and as an aliases and a virtual map (keys are
/// lowercase words, targets are never programs or files).
#[cfg(not(test))]
pub fn user_files(data: &[u8]) {
    let dir = crate::scratch_dir();
    let path = dir.path().join("passwd");
    std::fs::write(&path, data).unwrap();
    let file = PasswdFile::new(&path);
    if let Ok(count) = file.check() {
        let text = std::str::from_utf8(data).expect("a passwd-file that parsed is UTF-8");
        let mut users = std::collections::BTreeSet::new();
        for line in text.split('\n').take(50) {
            let Some((user, _)) = line.split_once(':') else {
                continue;
            };
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            users.insert(user);
            let entry = file.lookup(user).unwrap();
            assert!(entry.is_some_and(|e| e.user == user), "{user:?} not found");
        }
        assert!(users.len() <= count);
    }

    let text = String::from_utf8_lossy(data);
    for virtual_format in [false, true] {
        let Ok(map) = AliasMap::parse(Path::new("map"), &text, virtual_format) else {
            continue;
        };
        for line in text.lines().take(50) {
            let key = if virtual_format {
                line.split_whitespace().next()
            } else {
                line.split(':').next()
            };
            let Some(targets) = key.and_then(|k| map.get(k.trim())) else {
                continue;
            };
            assert!(!targets.is_empty());
            for t in targets {
                assert!(!t.is_empty() && !t.starts_with(['|', '/']), "target {t:?}");
            }
        }
    }
}
