//! `roost.journal`: the changes made since the index was last written.
//!
//! A STORE renames a few files, an APPEND adds one, an EXPUNGE removes some; rewriting the whole
//! index for each (8 MB at 100,000 messages) and making every other session reload all of it
//! cost O(mailbox) per change. Instead the writer appends one record per message changed here,
//! and other sessions read only the records they have not seen yet. Each record carries the
//! mtimes `cur/`, `new/` and the uidlist had after the change, so a reader can tell that the
//! journal explains everything that happened; anything else (a record that does not check, an
//! index written since, a change by another program) sends it back to the index or a directory
//! listing, which always work.
//!
//! ```text
//!   header   "ROOSTJ02" index-id(u64)
//!   records  len(u32) crc(u32) | kind(u8) uid(u32) modseq(u64) cur new uidlist(3 x i64+u32)
//!            size(u64) date(i64+u32) file-name
//! ```
//! Like the index it can always be rebuilt, so it is written without fsync.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::index::{Header, Stamp};
use crate::mailbox::Uid;

/// File name inside the folder.
pub const FILE_NAME: &str = "roost.journal";
const MAGIC: &[u8; 8] = b"ROOSTJ02";
/// Bytes of a record body before the file name.
const FIXED: usize = 1 + 4 + 8 + 3 * 12 + 8 + 12;
const HEADER: u64 = 16;
/// Past this size (or [`PER_MESSAGE`] bytes per message, if more) the next change rewrites the
/// index and starts a new journal.
const MIN_LIMIT: u64 = 256 * 1024;
/// Journal bytes allowed per message: the index rewrite (about 80 bytes per message) then
/// comes once per so many changes that its cost per change does not grow with the mailbox.
const PER_MESSAGE: u64 = 64;

/// How long the journal of a folder of `messages` may grow before the index is rewritten.
pub fn limit(messages: usize) -> u64 {
    MIN_LIMIT.max(messages as u64 * PER_MESSAGE)
}

/// What happened to a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Its flags changed: it was renamed.
    Flags,
    /// It arrived (APPEND, COPY, delivery), with its size and internal date.
    Added {
        /// Size in bytes.
        size: u64,
        /// Internal date.
        date: Stamp,
    },
    /// It was expunged.
    Removed,
}

/// One changed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// What happened.
    pub change: Change,
    /// Its UID.
    pub uid: Uid,
    /// Its new MODSEQ.
    pub modseq: u64,
    /// The mtimes of `cur/`, `new/` and the uidlist after the change that wrote this record.
    pub after: [Stamp; 3],
    /// Its file name in `cur/` (empty for a removal).
    pub file: String,
}

/// Which index a journal continues: a digest of what the index says about the folder.
pub fn index_id(index: &Header) -> u64 {
    let mut h = crc32fast::Hasher::new();
    for n in [
        u64::from(index.uidvalidity),
        u64::from(index.uidnext),
        index.highestmodseq,
        index.cur.secs as u64,
        u64::from(index.cur.nanos),
        index.new.secs as u64,
        u64::from(index.new.nanos),
        index.uidlist.secs as u64,
        u64::from(index.uidlist.nanos),
        index.count as u64,
    ] {
        h.update(&n.to_le_bytes());
    }
    let low = u64::from(h.finalize());
    (index.highestmodseq << 32) ^ low
}

/// Appends records for the index `id` (starting the journal if it is missing or belongs to
/// another index); returns the journal's new length.
pub fn append(dir: &Path, id: u64, records: &[Record]) -> io::Result<u64> {
    let path = dir.join(FILE_NAME);
    let fresh = match read_header(&path) {
        Ok(Some(found)) => found != id,
        Ok(None) | Err(_) => true,
    };
    let mut bytes = Vec::new();
    if fresh {
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&id.to_le_bytes());
    }
    for r in records {
        let (kind, size, date) = match r.change {
            Change::Flags => (0u8, 0, Stamp::default()),
            Change::Added { size, date } => (1, size, date),
            Change::Removed => (2, 0, Stamp::default()),
        };
        let mut body = Vec::with_capacity(FIXED + r.file.len());
        body.push(kind);
        body.extend_from_slice(&r.uid.to_le_bytes());
        body.extend_from_slice(&r.modseq.to_le_bytes());
        for stamp in r.after.iter().chain([&date]) {
            body.extend_from_slice(&stamp.secs.to_le_bytes());
            body.extend_from_slice(&stamp.nanos.to_le_bytes());
        }
        body.extend_from_slice(&size.to_le_bytes());
        body.extend_from_slice(r.file.as_bytes());
        bytes.extend_from_slice(&(body.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        bytes.extend_from_slice(&body);
    }
    let mut file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(fresh)
        .append(!fresh)
        .mode(0o600)
        .open(&path)?;
    file.write_all(&bytes)?;
    file.metadata().map(|m| m.len())
}

/// Removes the journal (the index was just rewritten and says it all).
pub fn remove(dir: &Path) {
    let _ = fs::remove_file(dir.join(FILE_NAME));
}

fn read_header(path: &Path) -> io::Result<Option<u64>> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut header = [0u8; HEADER as usize];
    if file.read_exact(&mut header).is_err() || &header[..8] != MAGIC {
        return Ok(None);
    }
    let mut id = [0u8; 8];
    id.copy_from_slice(&header[8..]);
    Ok(Some(u64::from_le_bytes(id)))
}

/// The records from byte `from` on (0: from the start) of the journal continuing index `id`,
/// and the journal's length; `None` when there is no such journal or a record does not check.
pub fn read(dir: &Path, id: u64, from: u64) -> Option<(Vec<Record>, u64)> {
    let mut file = File::open(dir.join(FILE_NAME)).ok()?;
    let mut header = [0u8; HEADER as usize];
    file.read_exact(&mut header).ok()?;
    if &header[..8] != MAGIC || u64::from_le_bytes(header[8..].try_into().ok()?) != id {
        return None;
    }
    let start = from.max(HEADER);
    file.seek(SeekFrom::Start(start)).ok()?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).ok()?;
    let mut at = 0usize;
    let mut records = Vec::new();
    while at < bytes.len() {
        let len = u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?) as usize;
        let crc = u32::from_le_bytes(bytes.get(at + 4..at + 8)?.try_into().ok()?);
        let body = bytes.get(at + 8..at + 8 + len)?;
        if crc32fast::hash(body) != crc || len < FIXED {
            return None;
        }
        records.push(decode(body)?);
        at += 8 + len;
    }
    Some((records, start + bytes.len() as u64))
}

fn decode(body: &[u8]) -> Option<Record> {
    let stamp = |at: usize| -> Option<Stamp> {
        Some(Stamp {
            secs: i64::from_le_bytes(body.get(at..at + 8)?.try_into().ok()?),
            nanos: u32::from_le_bytes(body.get(at + 8..at + 12)?.try_into().ok()?),
        })
    };
    let after = [stamp(13)?, stamp(25)?, stamp(37)?];
    let date = stamp(49)?;
    let size = u64::from_le_bytes(body.get(61..69)?.try_into().ok()?);
    let change = match body[0] {
        0 => Change::Flags,
        1 => Change::Added { size, date },
        2 => Change::Removed,
        _ => return None,
    };
    Some(Record {
        change,
        uid: u32::from_le_bytes(body.get(1..5)?.try_into().ok()?),
        modseq: u64::from_le_bytes(body.get(5..13)?.try_into().ok()?),
        after,
        file: String::from_utf8(body[FIXED..].to_vec()).ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(uid: Uid) -> Record {
        let stamp = |n| Stamp { secs: 5, nanos: n };
        Record {
            change: match uid % 3 {
                0 => Change::Flags,
                1 => Change::Added {
                    size: 1234,
                    date: stamp(9),
                },
                _ => Change::Removed,
            },
            uid,
            modseq: 100 + u64::from(uid),
            after: [stamp(uid), stamp(1), stamp(2)],
            file: format!("m{uid},U={uid}:2,S"),
        }
    }

    #[test]
    fn records_round_trip_and_belong_to_one_index() {
        let dir = tempfile::tempdir().unwrap();
        let end = append(dir.path(), 7, &[record(1), record(2)]).unwrap();
        let (all, len) = read(dir.path(), 7, 0).unwrap();
        assert_eq!((all, len), (vec![record(1), record(2)], end));
        let more = append(dir.path(), 7, &[record(3)]).unwrap();
        assert_eq!(read(dir.path(), 7, end).unwrap(), (vec![record(3)], more));
        assert!(read(dir.path(), 8, 0).is_none(), "another index's journal");
        // A new index starts a new journal.
        append(dir.path(), 8, &[record(4)]).unwrap();
        assert_eq!(read(dir.path(), 8, 0).unwrap().0, vec![record(4)]);
        assert!(read(dir.path(), 7, 0).is_none());
    }

    #[test]
    fn a_torn_or_garbled_journal_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        append(dir.path(), 7, &[record(1), record(2)]).unwrap();
        let path = dir.path().join(FILE_NAME);
        let bytes = fs::read(&path).unwrap();
        for cut in HEADER as usize + 1..bytes.len() {
            fs::write(&path, &bytes[..cut]).unwrap();
            let ok = read(dir.path(), 7, 0);
            assert!(
                ok.is_none() || ok.unwrap().0 == vec![record(1)],
                "cut {cut}"
            );
        }
        let mut flipped = bytes.clone();
        flipped[HEADER as usize + 20] ^= 1;
        fs::write(&path, &flipped).unwrap();
        assert!(read(dir.path(), 7, 0).is_none());
    }
}
