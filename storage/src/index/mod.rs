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
//! Replaced whole by rename, without fsync (`durable.rs`: a crash costs at most a rebuild).
//! Checked by reading it piece by piece, then served in place through a memory map
//! ([`Mapped`]): the maildir view reads a message's record when it needs it, and a SELECT
//! touches the records, never the name table.
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

/// What an index's header says about the folder it describes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Header {
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
    /// HIGHESTMODSEQ of the folder.
    pub highestmodseq: u64,
    /// How many messages it lists.
    pub count: usize,
}

/// One message as an index file holds it, borrowed from the file's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
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
    /// MODSEQ.
    pub modseq: u64,
    /// Its file name's bytes, not read until [`Record::file`] asks (a SELECT reads the
    /// records only, not the name table).
    name: &'a [u8],
}

impl<'a> Record<'a> {
    /// Its file name in `cur/` (checked as UTF-8 when the index was opened).
    pub fn file(&self) -> &'a str {
        std::str::from_utf8(self.name).unwrap_or_default()
    }

    /// The owned form.
    pub fn to_owned_record(&self) -> IndexRecord {
        IndexRecord {
            uid: self.uid,
            flags: self.flags,
            keywords: self.keywords,
            size: self.size,
            date: self.date,
            file: self.file().to_string(),
            modseq: self.modseq,
        }
    }
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

fn stamp_at(b: &[u8], at: usize) -> Stamp {
    Stamp {
        secs: u64_at(b, at) as i64,
        nanos: u32_at(b, at + 8),
    }
}

fn corrupt(why: &str) -> Corrupt {
    Corrupt(why.to_string())
}

/// Where the parts of a checked index lie, and its keyword table.
#[derive(Debug, Clone)]
struct Layout {
    header: Header,
    /// Offset of the name table in the file.
    names_at: usize,
    /// The keyword table (small; kept as text).
    keywords: String,
}

/// Reads bytes at an offset: the file when an index is opened, a buffer when one is decoded.
trait ReadAt {
    fn read_exact_at(&self, buf: &mut [u8], at: u64) -> io::Result<()>;
}

impl ReadAt for File {
    fn read_exact_at(&self, buf: &mut [u8], at: u64) -> io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(self, buf, at)
    }
}

impl ReadAt for [u8] {
    fn read_exact_at(&self, buf: &mut [u8], at: u64) -> io::Result<()> {
        let bytes = usize::try_from(at)
            .ok()
            .and_then(|at| self.get(at..at.checked_add(buf.len())?))
            .ok_or(io::ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(bytes);
        Ok(())
    }
}

/// How much the check reads at once: a whole number of records.
const CHUNK: usize = RECORD * 1365;

/// Calls `each` with consecutive pieces of `src` from `from` to `to`.
fn for_each_chunk(
    src: &(impl ReadAt + ?Sized),
    from: usize,
    to: usize,
    mut each: impl FnMut(&[u8]),
) -> Result<(), Corrupt> {
    let mut buf = vec![0u8; CHUNK.min(to - from)];
    let mut at = from;
    while at < to {
        let piece = &mut buf[..CHUNK.min(to - at)];
        src.read_exact_at(piece, at as u64)
            .map_err(|e| Corrupt(format!("unreadable ({e})")))?;
        each(piece);
        at += piece.len();
    }
    Ok(())
}

/// The fixed part of the file, checked: its magic, version and CRC, and a length that
/// matches what it says follows. Returns the header, the name table's offset and the keyword
/// table's offset and length.
fn check_header(
    src: &(impl ReadAt + ?Sized),
    len: u64,
) -> Result<([u8; HEADER], Header, usize, usize, usize), Corrupt> {
    if len < HEADER as u64 {
        return Err(corrupt("shorter than its header"));
    }
    let mut b = [0u8; HEADER];
    src.read_exact_at(&mut b, 0)
        .map_err(|e| Corrupt(format!("unreadable ({e})")))?;
    if &b[..8] != MAGIC {
        return Err(corrupt("wrong magic"));
    }
    if crc32fast::hash(&b[..HEADER - 4]) != u32_at(&b, HEADER - 4) {
        return Err(corrupt("header checksum mismatch"));
    }
    if u32_at(&b, 8) != VERSION {
        return Err(corrupt("unknown format version"));
    }
    let count = u32_at(&b, 12) as usize;
    let names_len = u32_at(&b, 16) as usize;
    let keywords_len = u32_at(&b, 20) as usize;
    let names_at = HEADER + count * RECORD;
    let keywords_at = names_at + names_len;
    if len != (keywords_at + keywords_len) as u64 {
        return Err(corrupt(
            "length does not match its header (truncated or extended)",
        ));
    }
    let header = Header {
        uidvalidity: u32_at(&b, 24),
        uidnext: u32_at(&b, 28),
        cur: stamp_at(&b, 32),
        new: stamp_at(&b, 44),
        uidlist: stamp_at(&b, 56),
        highestmodseq: u64_at(&b, 68),
        count,
    };
    Ok((b, header, names_at, keywords_at, keywords_len))
}

/// The body's CRC as it is read, and the first problem found in what it says.
struct BodyCheck {
    crc: crc32fast::Hasher,
    problem: Option<&'static str>,
}

impl BodyCheck {
    /// The records: UIDs rising and below UIDNEXT, MODSEQs at most HIGHESTMODSEQ, names
    /// back to back in record order. Returns each name's length.
    fn records(
        &mut self,
        src: &(impl ReadAt + ?Sized),
        header: &Header,
        names_at: usize,
        names_len: usize,
    ) -> Result<Vec<usize>, Corrupt> {
        let mut name_lens = Vec::with_capacity(header.count);
        let (mut last_uid, mut next_name) = (0, 0usize);
        for_each_chunk(src, HEADER, names_at, |chunk| {
            self.crc.update(chunk);
            for r in chunk.chunks_exact(RECORD) {
                let uid = u32_at(r, 0);
                let (off, len) = (u32_at(r, 32) as usize, u32_at(r, 36) as usize);
                let why = if uid <= last_uid {
                    Some("UIDs out of order")
                } else if uid >= header.uidnext {
                    Some("a UID is not below UIDNEXT")
                } else if u64_at(r, 40) > header.highestmodseq {
                    // CONDSTORE clients trust HIGHESTMODSEQ to cover every message (found by
                    // fuzzing).
                    Some("a MODSEQ is above HIGHESTMODSEQ")
                } else if off != next_name || off + len > names_len {
                    Some("a file name lies outside the name table")
                } else {
                    None
                };
                self.problem = self.problem.or(why);
                last_uid = uid;
                next_name = off.saturating_add(len);
                name_lens.push(len);
            }
        })?;
        Ok(name_lens)
    }

    /// The name table: each name UTF-8.
    fn names(
        &mut self,
        src: &(impl ReadAt + ?Sized),
        names: std::ops::Range<usize>,
        name_lens: &[usize],
    ) -> Result<(), Corrupt> {
        let mut pending: Vec<u8> = Vec::new();
        let mut lens = name_lens.iter().copied();
        let mut wanted = lens.next();
        for_each_chunk(src, names.start, names.end, |chunk| {
            self.crc.update(chunk);
            pending.extend_from_slice(chunk);
            let mut start = 0;
            while let Some(len) = wanted.filter(|len| pending.len() - start >= *len) {
                if std::str::from_utf8(&pending[start..start + len]).is_err() {
                    self.problem = self.problem.or(Some("a file name is not UTF-8"));
                }
                start += len;
                wanted = lens.next();
            }
            pending.drain(..start);
        })
    }
}

/// Checks a whole index before any of it is used, reading it piece by piece (so checking a
/// mapped index does not make all of it resident): the header ([`check_header`]), the body's
/// CRC, what the records say ([`BodyCheck`]).
fn check(src: &(impl ReadAt + ?Sized), len: u64) -> Result<Layout, Corrupt> {
    let (b, header, names_at, keywords_at, keywords_len) = check_header(src, len)?;
    let mut body = BodyCheck {
        crc: crc32fast::Hasher::new(),
        problem: None,
    };
    let name_lens = body.records(src, &header, names_at, keywords_at - names_at)?;
    body.names(src, names_at..keywords_at, &name_lens)?;
    let mut keywords = vec![0u8; keywords_len];
    src.read_exact_at(&mut keywords, keywords_at as u64)
        .map_err(|e| Corrupt(format!("unreadable ({e})")))?;
    body.crc.update(&keywords);
    if body.crc.finalize() != u32_at(&b, HEADER - 8) {
        return Err(corrupt("record checksum mismatch"));
    }
    if let Some(why) = body.problem {
        return Err(corrupt(why));
    }
    let keywords =
        String::from_utf8(keywords).map_err(|_| corrupt("the keyword table is not UTF-8"))?;
    Ok(Layout {
        header,
        names_at,
        keywords,
    })
}

/// Record `i` of a checked index's bytes (`file` is the whole file).
fn record_at(file: &[u8], names_at: usize, i: usize) -> Record<'_> {
    let r = &file[HEADER + i * RECORD..HEADER + (i + 1) * RECORD];
    let (off, len) = (u32_at(r, 32) as usize, u32_at(r, 36) as usize);
    let name = file
        .get(names_at + off..names_at + off + len)
        .unwrap_or_default();
    Record {
        uid: u32_at(r, 0),
        flags: r[4],
        keywords: u32_at(r, 8),
        size: u64_at(r, 12),
        date: stamp_at(r, 20),
        modseq: u64_at(r, 40),
        name,
    }
}

impl Index {
    /// What its header says.
    pub fn header(&self) -> Header {
        Header {
            uidvalidity: self.uidvalidity,
            uidnext: self.uidnext,
            cur: self.cur,
            new: self.new,
            uidlist: self.uidlist,
            highestmodseq: self.highestmodseq,
            count: self.records.len(),
        }
    }

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
        let layout = check(b, b.len() as u64)?;
        let h = layout.header;
        Ok(Index {
            uidvalidity: h.uidvalidity,
            uidnext: h.uidnext,
            cur: h.cur,
            new: h.new,
            uidlist: h.uidlist,
            records: (0..h.count)
                .map(|i| record_at(b, layout.names_at, i).to_owned_record())
                .collect(),
            keywords: layout.keywords,
            highestmodseq: h.highestmodseq,
        })
    }

    /// Writes the index atomically and returns it mapped: the file just written, which no
    /// later writer can change (they replace it by rename).
    pub fn write(&self, dir: &Path) -> Result<Mapped, Error> {
        let bytes = self.encode();
        let file = durable::replace_rebuildable(dir, FILE_NAME, &bytes)?;
        let map = Bytes::written(bytes, &file, &dir.join(FILE_NAME))?;
        let names_at = HEADER + self.records.len() * RECORD;
        Ok(Mapped {
            map,
            layout: Layout {
                header: self.header(),
                names_at,
                keywords: self.keywords.clone(),
            },
        })
    }
}

/// A checked index file, read in place through a memory map: opening a folder with a current
/// index costs the pages of it that are used, not a copy of every record.
///
/// roost never writes an index in place: a new one replaces it by rename, so the mapped bytes
/// never change. A program that truncated the file in place would make a read past its new
/// end fault, as with any mapped index (Dovecot's included); the index is the mail owner's
/// file, which no client can reach.
pub struct Mapped {
    map: Bytes,
    layout: Layout,
}

/// An index's bytes: mapped, or for a small one read into memory (a mapping costs at least a
/// resident page per open folder, more than a folder of a few messages needs).
enum Bytes {
    Mapped(memmap2::Mmap),
    Read(Box<[u8]>),
}

/// Up to this size an index is read rather than mapped.
const READ_BELOW: u64 = 16 * 1024;

impl std::ops::Deref for Bytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Mapped(map) => map,
            Bytes::Read(bytes) => bytes,
        }
    }
}

impl Bytes {
    /// The file's bytes, `len` long as checked: read when small, else mapped; `None` when the
    /// file no longer has that length.
    fn of(file: &File, len: u64, path: &Path) -> Result<Option<Bytes>, Error> {
        if len < READ_BELOW {
            let mut bytes = vec![0u8; len as usize];
            return match file.read_exact_at(&mut bytes, 0) {
                Ok(()) => Ok(Some(Bytes::Read(bytes.into_boxed_slice()))),
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
                Err(e) => Err(Error::io(path, e)),
            };
        }
        let map = Self::map(file, path)?;
        Ok((map.len() as u64 == len).then_some(Bytes::Mapped(map)))
    }

    /// The bytes just written to `file`: kept when small (no read back), else mapped.
    fn written(bytes: Vec<u8>, file: &File, path: &Path) -> Result<Bytes, Error> {
        if (bytes.len() as u64) < READ_BELOW {
            return Ok(Bytes::Read(bytes.into_boxed_slice()));
        }
        Self::map(file, path).map(Bytes::Mapped)
    }

    fn map(file: &File, path: &Path) -> Result<memmap2::Mmap, Error> {
        // SAFETY: the index is only ever replaced by rename, never written in place, so the
        // bytes cannot change under the map (see `Mapped`).
        unsafe { memmap2::Mmap::map(file) }.map_err(|e| Error::io(path, e))
    }
}

impl std::fmt::Debug for Mapped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mapped")
            .field("header", &self.layout.header)
            .finish_non_exhaustive()
    }
}

impl Mapped {
    /// Opens and checks the folder's index; `Ok(None)` when there is none.
    pub fn open(dir: &Path) -> Result<Option<Result<Mapped, Corrupt>>, Error> {
        let path = dir.join(FILE_NAME);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(path, e)),
        };
        let len = file.metadata().map_err(|e| Error::io(&path, e))?.len();
        if len == 0 {
            return Ok(Some(Err(Corrupt("empty file".into()))));
        }
        let layout = match check(&file, len) {
            Ok(layout) => layout,
            Err(corrupt) => return Ok(Some(Err(corrupt))),
        };
        match Bytes::of(&file, len, &path)? {
            Some(map) => Ok(Some(Ok(Mapped { map, layout }))),
            None => Ok(Some(Err(corrupt("changed while it was read")))),
        }
    }

    /// What its header says.
    pub fn header(&self) -> &Header {
        &self.layout.header
    }

    /// The keyword table, as `dovecot-keywords` text.
    pub fn keywords(&self) -> &str {
        &self.layout.keywords
    }

    /// How many messages it lists.
    pub fn len(&self) -> usize {
        self.layout.header.count
    }

    /// Whether it lists none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `i`th message in UID order (`i` below [`Mapped::len`]).
    pub fn get(&self, i: usize) -> Record<'_> {
        record_at(&self.map, self.layout.names_at, i)
    }

    /// The UID of the `i`th message, without reading the rest of its record.
    pub fn uid(&self, i: usize) -> Uid {
        u32_at(&self.map, HEADER + i * RECORD)
    }

    /// Where message `uid` is, if it is listed.
    pub fn position(&self, uid: Uid) -> Option<usize> {
        let i = self.first_from(uid);
        (i < self.len() && self.uid(i) == uid).then_some(i)
    }

    /// The position of the first record whose UID is `uid` or above (a binary search: UIDs
    /// rise); [`Mapped::len`] when there is none.
    pub fn first_from(&self, uid: Uid) -> usize {
        let (mut low, mut high) = (0, self.len());
        while low < high {
            let mid = low + (high - low) / 2;
            if self.uid(mid) < uid {
                low = mid + 1;
            } else {
                high = mid;
            }
        }
        low
    }

    /// Every message in UID order.
    pub fn iter(&self) -> impl Iterator<Item = Record<'_>> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }
}

/// An index of messages `uids` written to `dir`, for tests: each record's keyword bits and
/// size as `describe` says, a file name that names its UID.
#[cfg(test)]
pub(crate) fn write_for_test(
    dir: &Path,
    uids: &[Uid],
    describe: impl Fn(Uid) -> (u32, u64),
) -> Mapped {
    let index = Index {
        uidvalidity: 7,
        uidnext: 100,
        records: uids
            .iter()
            .map(|&uid| IndexRecord {
                uid,
                flags: 0,
                keywords: describe(uid).0,
                size: describe(uid).1,
                date: Stamp::default(),
                file: format!("k{uid},U={uid}:2,"),
                modseq: 1,
            })
            .collect(),
        highestmodseq: 1,
        ..Index::default()
    };
    index.write(dir).expect("index written")
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
    fn a_written_index_is_served_from_its_map_and_a_damaged_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let index = sample();
        let written = index.write(dir.path()).unwrap();
        let opened = Mapped::open(dir.path()).unwrap().unwrap().unwrap();
        for mapped in [&written, &opened] {
            assert_eq!(*mapped.header(), index.header());
            assert_eq!(mapped.keywords(), index.keywords);
            let records: Vec<IndexRecord> = mapped.iter().map(|r| r.to_owned_record()).collect();
            assert_eq!(records, index.records);
            assert_eq!(mapped.position(5), Some(4));
            assert_eq!(mapped.position(9), None);
        }
        drop((written, opened));
        let path = dir.path().join(FILE_NAME);
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(Mapped::open(dir.path()).unwrap().unwrap().is_err());
        std::fs::remove_file(&path).unwrap();
        assert!(Mapped::open(dir.path()).unwrap().is_none());
    }

    #[test]
    fn a_large_index_is_mapped_and_read_alike() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = sample();
        index.uidnext = 5000;
        index.records = (1..5000)
            .map(|uid| IndexRecord {
                uid,
                file: format!("1700{uid}.M1.host,S=9,U={uid}:2,"),
                ..sample().records[0].clone()
            })
            .collect();
        let written = index.write(dir.path()).unwrap();
        assert!(matches!(written.map, Bytes::Mapped(_)));
        let opened = Mapped::open(dir.path()).unwrap().unwrap().unwrap();
        assert!(matches!(opened.map, Bytes::Mapped(_)));
        for mapped in [&written, &opened] {
            assert_eq!(mapped.len(), 4999);
            let r = mapped.get(mapped.position(4321).unwrap());
            assert_eq!((r.uid, r.file()), (4321, "17004321.M1.host,S=9,U=4321:2,"));
        }
    }

    #[test]
    fn a_modseq_above_highestmodseq_is_corrupt() {
        let mut index = sample();
        index.highestmodseq = 10;
        assert!(Index::decode(&index.encode()).is_err());
    }
}
