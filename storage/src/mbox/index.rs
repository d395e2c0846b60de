//! The mbox index: the last scan of an mbox (where each message starts and ends, its flags and
//! UID) and the identity of the file it described, so a new session opens an unchanged mbox
//! without reading it, and one an MTA appended to by reading only the new tail.
//!
//! ```text
//!   header   "ROOSTMB1" version count inode len mtime(s, ns) imapbase(flag, V, N) scanned-len
//!            body CRC, header CRC
//!   records  (68 bytes each) from start end size modseq uid digest envelope(off, len)
//!            keywords(off, len) flags
//!   strings  the envelopes (`From ` lines) and keyword lists the records point into
//! ```
//! Checked completely before use; anything wrong means a full scan (reported once).
#![allow(unsafe_code)]

use std::fs;
use std::io;
use std::path::Path;

use super::parse::{RawMessage, Scan};
use crate::durable;
use crate::mailbox::Flags;
use crate::Error;

const MAGIC: &[u8; 8] = b"ROOSTMB1";
const VERSION: u32 = 4;
/// Bytes per record: offsets, size, MODSEQ, UID, digest, two string refs, flags, padding.
const RECORD: usize = 5 * 8 + 2 * 4 + 4 * 4 + 4;
const HEADER: usize = 8 + 4 + 4 + 8 + 8 + 8 + 8 + 1 + 4 + 4 + 8 + 4 + 4;

/// What identifies an mbox's content without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileId {
    /// Inode number: a rewrite (rename) changes it.
    pub inode: u64,
    /// Length in bytes.
    pub len: u64,
    /// Modification time (seconds, nanoseconds).
    pub mtime: (i64, i64),
}

struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Option<u64> {
        let b = self.take(8)?;
        let mut raw = [0u8; 8];
        raw.copy_from_slice(b);
        Some(u64::from_le_bytes(raw))
    }
}

/// Encodes a scan of the file `id`.
pub fn encode(id: FileId, scan: &Scan) -> Vec<u8> {
    let mut body = Writer(Vec::with_capacity(scan.messages.len() * RECORD));
    let mut strings = Vec::new();
    for m in &scan.messages {
        body.u64(m.from_line);
        body.u64(m.start);
        body.u64(m.end);
        body.u64(m.size);
        body.u64(m.modseq);
        body.u32(m.uid.unwrap_or(0));
        body.u32(m.digest);
        let keywords = m.keywords.iter().cloned().collect::<Vec<_>>().join(" ");
        for text in [m.envelope.as_bytes(), keywords.as_bytes()] {
            body.u32(strings.len() as u32);
            body.u32(text.len() as u32);
            strings.extend_from_slice(text);
        }
        body.u8(m.flags.bits());
        body.0.extend_from_slice(&[0; 3]);
    }
    body.0.extend_from_slice(&strings);
    let mut out = Writer(Vec::with_capacity(HEADER + body.0.len()));
    out.0.extend_from_slice(MAGIC);
    out.u32(VERSION);
    out.u32(scan.messages.len() as u32);
    out.u64(id.inode);
    out.u64(id.len);
    out.u64(id.mtime.0 as u64);
    out.u64(id.mtime.1 as u64);
    let (flag, v, n) = scan.imapbase.map_or((0, 0, 0), |(v, n)| (1, v, n));
    out.u8(flag);
    out.u32(v);
    out.u32(n);
    out.u64(scan.len);
    out.u32(crc32fast::hash(&body.0));
    let crc = crc32fast::hash(&out.0);
    out.u32(crc);
    out.0.extend_from_slice(&body.0);
    out.0
}

/// Decodes and checks an index; `None` if anything is wrong.
pub fn decode(bytes: &[u8]) -> Option<(FileId, Scan)> {
    let header = Header::decode(bytes)?;
    let body = &bytes[HEADER..];
    if crc32fast::hash(body) != header.body_crc {
        return None;
    }
    let records = body.get(..header.count.checked_mul(RECORD)?)?;
    let strings = &body[records.len()..];
    let mut r = Reader(records);
    let mut messages = Vec::with_capacity(header.count);
    for _ in 0..header.count {
        messages.push(decode_record(&mut r, strings, header.scan_len)?);
    }
    let scan = Scan {
        messages,
        imapbase: header.imapbase,
        len: header.scan_len,
    };
    Some((header.id, scan))
}

/// What the header says, once its CRC, magic and version are checked.
struct Header {
    count: usize,
    id: FileId,
    imapbase: Option<(u32, u32)>,
    scan_len: u64,
    body_crc: u32,
}

impl Header {
    fn decode(bytes: &[u8]) -> Option<Header> {
        if bytes.len() < HEADER
            || crc32fast::hash(&bytes[..HEADER - 4]) != Reader(&bytes[HEADER - 4..HEADER]).u32()?
        {
            return None;
        }
        let mut h = Reader(&bytes[..HEADER]);
        if h.take(8)? != MAGIC || h.u32()? != VERSION {
            return None;
        }
        let count = h.u32()? as usize;
        let id = FileId {
            inode: h.u64()?,
            len: h.u64()?,
            mtime: (h.u64()? as i64, h.u64()? as i64),
        };
        let (flag, v, n) = (h.u8()?, h.u32()?, h.u32()?);
        Some(Header {
            count,
            id,
            imapbase: (flag == 1).then_some((v, n)),
            scan_len: h.u64()?,
            body_crc: h.u32()?,
        })
    }
}

/// One record, its strings looked up in `strings`; `None` if it points outside them or its
/// offsets are out of order or past the scanned length.
fn decode_record(r: &mut Reader, strings: &[u8], scan_len: u64) -> Option<RawMessage> {
    let text = |off: u32, len: u32| -> Option<&str> {
        let (off, len) = (off as usize, len as usize);
        std::str::from_utf8(strings.get(off..off.checked_add(len)?)?).ok()
    };
    let (from_line, start, end, size, modseq) = (r.u64()?, r.u64()?, r.u64()?, r.u64()?, r.u64()?);
    let (uid, digest) = (r.u32()?, r.u32()?);
    let envelope = text(r.u32()?, r.u32()?)?.to_string();
    let keywords = text(r.u32()?, r.u32()?)?;
    let flags = r.u8()?;
    r.take(3)?;
    if !(from_line < start && start <= end && end <= scan_len) {
        return None;
    }
    Some(RawMessage {
        from_line,
        start,
        end,
        envelope,
        uid: (uid > 0).then_some(uid),
        flags: Flags::from_bits(flags),
        keywords: keywords
            .split(' ')
            .filter(|k| !k.is_empty())
            .map(str::to_string)
            .collect(),
        size,
        digest,
        modseq,
    })
}

/// Reads the index at `path` through a memory map; `Ok(None)` if missing, `Ok(Some(None))` if
/// damaged.
pub fn read(path: &Path) -> Result<Option<Option<(FileId, Scan)>>, Error> {
    let file = match fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    if file.metadata().map_err(|e| Error::io(path, e))?.len() == 0 {
        return Ok(Some(None));
    }
    // SAFETY: read-only, private map of a file that is only ever replaced by rename, never
    // written in place; a file truncated under us would only give decode() bytes it rejects.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
    Ok(Some(decode(&map)))
}

/// Writes the index atomically.
pub fn write(path: &Path, id: FileId, scan: &Scan) -> Result<(), Error> {
    durable::replace_file(path, &encode(id, scan))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_every_damage_is_detected() {
        let text = b"From a Mon Jan  1 00:00:00 2024\nX-UID: 4\nStatus: RO\nX-Keywords: $Junk\nSubject: x\n\nbody\n\nFrom b Mon Jan  1 00:00:00 2024\nSubject: y\n\n>From z\n\n";
        let scan = super::super::parse::scan(&mut &text[..]).unwrap();
        let id = FileId {
            inode: 5,
            len: text.len() as u64,
            mtime: (1, 2),
        };
        let bytes = encode(id, &scan);
        assert_eq!(decode(&bytes), Some((id, scan)));
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_none(), "cut {cut}");
        }
        for i in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[i] ^= 0x04;
            assert!(decode(&flipped).is_none(), "byte {i}");
        }
    }
}
