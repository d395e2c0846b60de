//! The `dovecot-uidlist` file: UIDVALIDITY, UIDNEXT and the UID of every message base name.
//!
//! Written in Dovecot's version 3 format (`3 V<uidvalidity> N<uidnext>` then `<uid> :<base>`),
//! so a mailbox moved between Dovecot and roost keeps its UIDs. Rewritten atomically (temp file,
//! fsync, rename, fsync dir: `durable.rs`) when messages go; a new message only appends
//! its line. A reader that finds it torn or garbled says precisely why, and the folder rebuilds
//! it from the file names.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use crate::durable;
use crate::mailbox::Uid;
use crate::Error;

/// File name inside the folder.
pub const FILE_NAME: &str = "dovecot-uidlist";

/// The parsed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uidlist {
    /// UIDVALIDITY of the folder.
    pub uidvalidity: u32,
    /// The next UID to assign.
    pub uidnext: Uid,
    /// Message key (unique part of the base name) → (UID, full base name).
    pub entries: BTreeMap<String, (Uid, String)>,
}

/// Why a uidlist cannot be trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corrupt(pub String);

impl Uidlist {
    /// An empty list for a new folder.
    pub fn new(uidvalidity: u32) -> Self {
        Self {
            uidvalidity,
            uidnext: 1,
            entries: BTreeMap::new(),
        }
    }

    /// Parses the file's text.
    pub fn parse(text: &str) -> Result<Self, Corrupt> {
        let bad = |why: String| Corrupt(why);
        let mut lines = text.split('\n');
        let header = lines.next().unwrap_or_default();
        let mut fields = header.split(' ');
        if fields.next() != Some("3") {
            return Err(bad(format!(
                "unknown version in header {:?}",
                truncate(header)
            )));
        }
        let (mut validity, mut next) = (None, None);
        for field in fields {
            match field.split_at_checked(1) {
                Some(("V", v)) => validity = v.parse::<u32>().ok().filter(|v| *v > 0),
                Some(("N", v)) => next = v.parse::<u32>().ok().filter(|v| *v > 0),
                _ => {}
            }
        }
        let (Some(uidvalidity), Some(uidnext)) = (validity, next) else {
            return Err(bad("header lacks a valid V or N field".into()));
        };
        if !text.ends_with('\n') {
            return Err(bad("the last line is incomplete (torn write)".into()));
        }
        let mut list = Self::new(uidvalidity);
        list.uidnext = uidnext;
        let mut last = 0;
        for (n, line) in lines.enumerate().filter(|(_, l)| !l.is_empty()) {
            let (uid, base) = line
                .split_once(' ')
                .and_then(|(uid, rest)| Some((uid.parse::<Uid>().ok()?, rest.split_once(':')?.1)))
                .ok_or_else(|| bad(format!("line {} is malformed", n + 2)))?;
            if uid <= last || base.is_empty() {
                return Err(bad(format!(
                    "line {} has UID {uid} out of order or range",
                    n + 2
                )));
            }
            last = uid;
            // Lines appended after the header was written (by roost's APPEND, or Dovecot's)
            // leave its N behind: the next UID is past the last one listed.
            list.uidnext = list.uidnext.max(uid.saturating_add(1));
            let key = base.split(',').next().unwrap_or(base).to_string();
            list.entries.insert(key, (uid, base.to_string()));
        }
        Ok(list)
    }

    /// Reads the file; `Ok(None)` when it does not exist.
    pub fn read(dir: &Path) -> Result<Option<Result<Self, Corrupt>>, Error> {
        let path = dir.join(FILE_NAME);
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(match String::from_utf8(bytes) {
                Ok(text) => Self::parse(&text),
                Err(_) => Err(Corrupt("not valid UTF-8".into())),
            })),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// The file's text.
    pub fn render(&self) -> String {
        let mut by_uid: Vec<&(Uid, String)> = self.entries.values().collect();
        by_uid.sort_unstable_by_key(|(uid, _)| *uid);
        let mut out = format!("3 V{} N{}\n", self.uidvalidity, self.uidnext);
        for (uid, base) in by_uid {
            out.push_str(&format!("{uid} :{base}\n"));
        }
        out
    }

    /// Records one new message by appending its line (and fsyncing it), as Dovecot does, instead
    /// of rewriting a file that holds every message of the folder. The header's `N` stays
    /// behind; readers take the next UID from the last line.
    pub fn append_line(dir: &Path, uid: Uid, base: &str) -> Result<(), Error> {
        let path = dir.join(FILE_NAME);
        let appended = (|| {
            let mut file = OpenOptions::new().append(true).open(&path)?;
            file.write_all(format!("{uid} :{base}\n").as_bytes())?;
            file.sync_data()
        })();
        appended.map_err(|e| Error::io(path, e))
    }

    /// Writes the file atomically (temp file, fsync, rename, fsync the folder).
    pub fn write(&self, dir: &Path) -> Result<(), Error> {
        durable::replace(dir, FILE_NAME, self.render().as_bytes())
    }
}

fn truncate(text: &str) -> String {
    text.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_dovecot_text() {
        let text = "3 V1700000000 N5 Gabcdef\n1 :a.host,S=10\n4 W20 :b.host,S=20,U=4\n";
        let list = Uidlist::parse(text).unwrap();
        assert_eq!((list.uidvalidity, list.uidnext), (1700000000, 5));
        assert_eq!(list.entries["a.host"], (1, "a.host,S=10".to_string()));
        assert_eq!(list.entries["b.host"].0, 4);
        assert_eq!(Uidlist::parse(&list.render()).unwrap(), list);
    }

    #[test]
    fn every_truncation_and_garbage_is_detected_not_misread() {
        let text = Uidlist {
            uidvalidity: 77,
            uidnext: 12,
            entries: (1..12)
                .map(|u| (format!("m{u}"), (u, format!("m{u},U={u}"))))
                .collect(),
        }
        .render();
        for cut in 0..text.len() {
            if let Ok(list) = Uidlist::parse(&text[..cut]) {
                // A cut exactly at a line end is a shorter but valid list: never a wrong UID.
                assert!(text[..cut].ends_with('\n'));
                for (key, (uid, _)) in &list.entries {
                    assert_eq!(key, &format!("m{uid}"));
                }
            }
        }
        for junk in [
            "",
            "garbage",
            "3 V0 N1\n",
            "3 V1 N9\n2 :a\n1 :b\n",
            "3 V1 N9\n1 a\n",
        ] {
            assert!(Uidlist::parse(junk).is_err(), "{junk:?}");
        }
        // Lines appended after the header: N is stale, the next UID follows the last line.
        let appended = Uidlist::parse("3 V1 N2\n1 :a\n5 :x\n").unwrap();
        assert_eq!((appended.uidnext, appended.entries["x"].0), (6, 5));
    }
}
