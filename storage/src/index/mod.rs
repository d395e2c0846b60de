//! The per-folder index file: everything a sync needs to know about a folder, so that opening
//! a folder whose index is current reads no message file, stats none, and lists no directory.
//!
//! ```text
//!   header (84 bytes)   magic "ROOSTIX1", version, counts, UIDVALIDITY, UIDNEXT, the mtimes of
//!                       cur/, new/ and dovecot-uidlist it describes, HIGHESTMODSEQ, CRCs of
//!                       body and header
//!   records (48 bytes)  UID, flags, keyword bits, size, internal date, file name offset/length,
//!                       MODSEQ
//!   names               the file names, back to back
//!   keywords            a copy of the keyword table (dovecot-keywords text), so losing that
//!                       file loses no keyword
//! ```
//! The file describes itself and is checked completely before use (lengths, CRCs, UID order,
//! name bounds): a torn, truncated or garbled index is detected, never misread, and rebuilt.
//! Replaced whole by rename, without fsync (`durable.rs`: a crash costs at most a rebuild);
//! read through a memory map.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::path::Path;

use crate::durable;
use crate::mailbox::Uid;
use crate::Error;

/// File name inside the folder.
pub const FILE_NAME: &str = "roost.index";
const MAGIC: &[u8; 8] = b"ROOSTIX1";
const VERSION: u32 = 3;
const HEADER: usize = 84;
const RECORD: usize = 48;

/// A modification time with nanoseconds, as the index records it; zero means "unknown".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stamp {
    /// Seconds since the epoch.
    pub secs: i64,
    /// Nanoseconds.
    pub nanos: u32,
}

impl Stamp {
    /// The mtime of a path, or the zero stamp if it cannot be read.
    pub fn of(path: &Path) -> Stamp {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path)
            .map(|m| Stamp {
                secs: m.mtime(),
                nanos: m.mtime_nsec() as u32,
            })
            .unwrap_or_default()
    }

    /// As a `SystemTime` (dates before 1970 clamp to the epoch).
    pub fn to_system_time(self) -> std::time::SystemTime {
        let secs = u64::try_from(self.secs).unwrap_or(0);
        std::time::UNIX_EPOCH + std::time::Duration::new(secs, self.nanos.min(999_999_999))
    }
}

/// One message as the index remembers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexRecord {
    /// Its UID.
    pub uid: Uid,
    /// System flag bits.
    pub flags: u8,
    /// Keyword letters `a`..`z` as bits 0..25.
    pub keywords: u32,
    /// Size in bytes.
    pub size: u64,
    /// Internal date.
    pub date: Stamp,
    /// Its file name in `cur/`.
    pub file: String,
    /// MODSEQ (RFC 7162): raised at every change of the message's flags.
    pub modseq: u64,
}

/// The whole index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Index {
    /// UIDVALIDITY.
    pub uidvalidity: u32,
    /// UIDNEXT.
    pub uidnext: Uid,
    /// mtime of `cur/` the records describe.
    pub cur: Stamp,
    /// mtime of `new/` (which was empty) the records describe.
    pub new: Stamp,
    /// mtime of `dovecot-uidlist` the records agree with.
    pub uidlist: Stamp,
    /// The messages in UID order.
    pub records: Vec<IndexRecord>,
    /// The keyword table, as `dovecot-keywords` text.
    pub keywords: String,
    /// HIGHESTMODSEQ of the folder.
    pub highestmodseq: u64,
}

/// Why an index cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corrupt(pub String);

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut raw = [0u8; 4];
    raw.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(raw)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut raw = [0u8; 8];
    raw.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(raw)
}

fn corrupt(why: &str) -> Corrupt {
    Corrupt(why.to_string())
}

/// Checks what holds the file together before any record is read: length, magic, version,
/// both CRCs, and a body exactly as long as the header says. Returns the record count and the
/// length of the name table.
fn check_frame(b: &[u8]) -> Result<(usize, usize), Corrupt> {
    if b.len() < HEADER {
        return Err(corrupt("shorter than its header"));
    }
    if &b[..8] != MAGIC {
        return Err(corrupt("wrong magic"));
    }
    if crc32fast::hash(&b[..HEADER - 4]) != u32_at(b, HEADER - 4) {
        return Err(corrupt("header checksum mismatch"));
    }
    if u32_at(b, 8) != VERSION {
        return Err(corrupt("unknown format version"));
    }
    let count = u32_at(b, 12) as usize;
    let names_len = u32_at(b, 16) as usize;
    let keywords_len = u32_at(b, 20) as usize;
    let body = &b[HEADER..];
    if body.len() != count * RECORD + names_len + keywords_len {
        return Err(corrupt(
            "length does not match its header (truncated or extended)",
        ));
    }
    if crc32fast::hash(body) != u32_at(b, HEADER - 8) {
        return Err(corrupt("record checksum mismatch"));
    }
    Ok((count, names_len))
}

/// The fixed-size records, each with its file name from the name table, in strictly rising
/// UID order.
fn decode_records(table: &[u8], names: &[u8]) -> Result<Vec<IndexRecord>, Corrupt> {
    let mut records = Vec::with_capacity(table.len() / RECORD);
    let mut last = 0;
    for r in table.chunks_exact(RECORD) {
        let uid = u32_at(r, 0);
        let (off, len) = (u32_at(r, 32) as usize, u32_at(r, 36) as usize);
        let Some(file) = names
            .get(off..off + len)
            .and_then(|n| std::str::from_utf8(n).ok())
        else {
            return Err(corrupt("a file name lies outside the name table"));
        };
        if uid <= last {
            return Err(corrupt("UIDs out of order"));
        }
        last = uid;
        records.push(IndexRecord {
            uid,
            flags: r[4],
            keywords: u32_at(r, 8),
            size: u64_at(r, 12),
            date: Stamp {
                secs: u64_at(r, 20) as i64,
                nanos: u32_at(r, 28),
            },
            file: file.to_string(),
            modseq: u64_at(r, 40),
        });
    }
    Ok(records)
}

impl Index {
    /// The file's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let names_len: usize = self.records.iter().map(|r| r.file.len()).sum();
        let mut body = Vec::with_capacity(self.records.len() * RECORD + names_len);
        let mut offset = 0u32;
        for r in &self.records {
            body.extend_from_slice(&r.uid.to_le_bytes());
            body.extend_from_slice(&[r.flags, 0, 0, 0]);
            body.extend_from_slice(&r.keywords.to_le_bytes());
            body.extend_from_slice(&r.size.to_le_bytes());
            body.extend_from_slice(&r.date.secs.to_le_bytes());
            body.extend_from_slice(&r.date.nanos.to_le_bytes());
            body.extend_from_slice(&offset.to_le_bytes());
            body.extend_from_slice(&(r.file.len() as u32).to_le_bytes());
            body.extend_from_slice(&r.modseq.to_le_bytes());
            offset += r.file.len() as u32;
        }
        for r in &self.records {
            body.extend_from_slice(r.file.as_bytes());
        }
        body.extend_from_slice(self.keywords.as_bytes());
        let mut out = Vec::with_capacity(HEADER + body.len());
        out.extend_from_slice(MAGIC);
        for v in [
            VERSION,
            self.records.len() as u32,
            names_len as u32,
            self.keywords.len() as u32,
            self.uidvalidity,
            self.uidnext,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for stamp in [self.cur, self.new, self.uidlist] {
            out.extend_from_slice(&stamp.secs.to_le_bytes());
            out.extend_from_slice(&stamp.nanos.to_le_bytes());
        }
        out.extend_from_slice(&self.highestmodseq.to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        let header_crc = crc32fast::hash(&out);
        out.extend_from_slice(&header_crc.to_le_bytes());
        debug_assert_eq!(out.len(), HEADER);
        out.extend_from_slice(&body);
        out
    }

    /// Checks and decodes the file's bytes.
    pub fn decode(b: &[u8]) -> Result<Index, Corrupt> {
        let (count, names_len) = check_frame(b)?;
        let body = &b[HEADER..];
        let table = count * RECORD;
        let names = &body[table..table + names_len];
        let Ok(keywords) = std::str::from_utf8(&body[table + names_len..]) else {
            return Err(corrupt("the keyword table is not UTF-8"));
        };
        let records = decode_records(&body[..table], names)?;
        let stamp = |at: usize| Stamp {
            secs: u64_at(b, at) as i64,
            nanos: u32_at(b, at + 8),
        };
        let index = Index {
            uidvalidity: u32_at(b, 24),
            uidnext: u32_at(b, 28),
            cur: stamp(32),
            new: stamp(44),
            uidlist: stamp(56),
            records,
            keywords: keywords.to_string(),
            highestmodseq: u64_at(b, 68),
        };
        index.check_bounds()?;
        Ok(index)
    }

    /// The limits the records must keep: every UID below UIDNEXT, every MODSEQ at most
    /// HIGHESTMODSEQ (CONDSTORE clients trust it to cover every message; found by fuzzing).
    fn check_bounds(&self) -> Result<(), Corrupt> {
        if self.records.last().is_some_and(|r| r.uid >= self.uidnext) {
            return Err(corrupt("a UID is not below UIDNEXT"));
        }
        if self.records.iter().any(|r| r.modseq > self.highestmodseq) {
            return Err(corrupt("a MODSEQ is above HIGHESTMODSEQ"));
        }
        Ok(())
    }

    /// Reads the index through a memory map; `Ok(None)` when there is none.
    pub fn read(dir: &Path) -> Result<Option<Result<Index, Corrupt>>, Error> {
        let path = dir.join(FILE_NAME);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(path, e)),
        };
        if file.metadata().map_err(|e| Error::io(&path, e))?.len() == 0 {
            return Ok(Some(Err(Corrupt("empty file".into()))));
        }
        // SAFETY: the map is read-only and private to this call. The file is only ever replaced
        // by rename, never written in place, so its bytes cannot change under the map; anything
        // else that truncated it would at worst make decode() see a short or garbled buffer,
        // which it rejects.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(&path, e))?;
        Ok(Some(Index::decode(&map)))
    }

    /// Writes the index atomically.
    pub fn write(&self, dir: &Path) -> Result<(), Error> {
        durable::replace_rebuildable(dir, FILE_NAME, &self.encode())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Index {
        Index {
            uidvalidity: 1_700_000_000,
            uidnext: 9,
            cur: Stamp { secs: 5, nanos: 6 },
            new: Stamp { secs: 7, nanos: 8 },
            uidlist: Stamp { secs: 9, nanos: 10 },
            records: (1..=8)
                .map(|uid| IndexRecord {
                    uid,
                    flags: uid as u8 & 0x1f,
                    keywords: 1 << uid,
                    size: 1000 + u64::from(uid),
                    date: Stamp {
                        secs: i64::from(uid) * 100,
                        nanos: uid,
                    },
                    file: format!("17000.M{uid}.host,S={},U={uid}:2,S", 1000 + uid),
                    modseq: u64::from(uid) * 10,
                })
                .collect(),
            keywords: "0 $Junk\n1 NonJunk\n".into(),
            highestmodseq: 80,
        }
    }

    #[test]
    fn round_trip() {
        let index = sample();
        assert_eq!(Index::decode(&index.encode()).unwrap(), index);
        assert_eq!(
            Index::decode(&Index::default().encode()).unwrap(),
            Index::default()
        );
    }

    #[test]
    fn every_truncation_and_every_flipped_byte_is_detected() {
        let bytes = sample().encode();
        for cut in 0..bytes.len() {
            assert!(Index::decode(&bytes[..cut]).is_err(), "truncated at {cut}");
        }
        let mut extended = bytes.clone();
        extended.push(0);
        assert!(Index::decode(&extended).is_err());
        for i in 0..bytes.len() {
            for bit in [0x01u8, 0x80] {
                let mut flipped = bytes.clone();
                flipped[i] ^= bit;
                assert!(Index::decode(&flipped).is_err(), "byte {i} bit {bit:#x}");
            }
        }
    }

    #[test]
    fn a_modseq_above_highestmodseq_is_corrupt() {
        let mut index = sample();
        index.highestmodseq = 10;
        assert!(Index::decode(&index.encode()).is_err());
    }
}
