//! One field cache record, as it lies in the file: built by [`encode`], checked by [`parse`]
//! (length, CRC, UID, name) whenever it is read — at open and at every later read — so a
//! record that changed under us (another process started the cache over) is never misread.
//!
//! ```text
//!   len(u32) crc(u32) | uid(u32) name_len(u16) name value
//!   └── HEAD ───────┘   └── body: len bytes, crc over it ────┘
//! ```

use std::io::{self, Read};

use super::MAX_VALUE;
use crate::mailbox::Uid;

/// Bytes before the body: its length and its CRC.
pub(super) const HEAD: usize = 8;
/// Bytes of the body before the name: UID and name length.
const PREFIX: usize = 6;
/// The largest body a record may have.
const MAX_BODY: usize = MAX_VALUE + PREFIX + u16::MAX as usize;

/// A checked record, borrowing the bytes it was read from.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Record<'a> {
    /// The message.
    pub uid: Uid,
    /// The field.
    pub name: &'a str,
    /// The cached value.
    pub value: &'a [u8],
}

/// The whole record for a value (its length is [`len`] of the name and value).
pub(super) fn encode(uid: Uid, name: &str, value: &[u8]) -> Vec<u8> {
    let mut record = vec![0u8; HEAD];
    record.extend_from_slice(&uid.to_le_bytes());
    record.extend_from_slice(&(name.len() as u16).to_le_bytes());
    record.extend_from_slice(name.as_bytes());
    record.extend_from_slice(value);
    let body_len = (record.len() - HEAD) as u32;
    let crc = crc32fast::hash(&record[HEAD..]);
    record[..4].copy_from_slice(&body_len.to_le_bytes());
    record[4..HEAD].copy_from_slice(&crc.to_le_bytes());
    record
}

/// Length of the record holding `name` and a value of `value_len` bytes.
pub(super) fn len(name: &str, value_len: u32) -> u64 {
    (HEAD + PREFIX + name.len()) as u64 + u64::from(value_len)
}

/// Whether a name and value fit in a record (larger ones are not cached).
pub(super) fn fits(name: &str, value: &[u8]) -> bool {
    value.len() <= MAX_VALUE && name.len() <= usize::from(u16::MAX)
}

/// The whole length of the record that starts with `head`, if it is a plausible one.
fn len_from_head(head: &[u8]) -> Option<usize> {
    let body_len = u32::from_le_bytes(head.get(..4)?.try_into().ok()?) as usize;
    (PREFIX..=MAX_BODY)
        .contains(&body_len)
        .then_some(HEAD + body_len)
}

/// Checks `bytes` as exactly one record: length, CRC, a name in UTF-8.
pub(super) fn parse(bytes: &[u8]) -> Option<Record<'_>> {
    if len_from_head(bytes)? != bytes.len() {
        return None;
    }
    let crc = u32::from_le_bytes(bytes.get(4..HEAD)?.try_into().ok()?);
    let body = bytes.get(HEAD..)?;
    if crc32fast::hash(body) != crc {
        return None;
    }
    let uid = u32::from_le_bytes(body.get(..4)?.try_into().ok()?);
    let name_len = usize::from(u16::from_le_bytes(body.get(4..PREFIX)?.try_into().ok()?));
    let name = std::str::from_utf8(body.get(PREFIX..PREFIX + name_len)?).ok()?;
    let value = body.get(PREFIX + name_len..)?;
    Some(Record { uid, name, value })
}

/// The value of `bytes` if they are the record of `uid`'s `name`, intact.
pub(super) fn value_of<'a>(bytes: &'a [u8], uid: Uid, name: &str) -> Option<&'a [u8]> {
    parse(bytes)
        .filter(|r| r.uid == uid && r.name == name)
        .map(|r| r.value)
}

/// Reads the next record from a sequential reader into `buf` (which it replaces), when one
/// whole and plausible record lies within the `left` bytes; `None` at a torn or garbled one.
pub(super) fn read_next(reader: &mut impl Read, left: u64, buf: &mut Vec<u8>) -> Option<()> {
    buf.clear();
    buf.resize(HEAD, 0);
    reader.read_exact(buf).ok()?;
    let len = len_from_head(buf)?;
    if len as u64 > left {
        return None;
    }
    buf.resize(len, 0);
    reader.read_exact(&mut buf[HEAD..]).ok()?;
    Some(())
}

/// A sequential reader that counts the reads it makes of the file (see `FieldCache::reads`).
pub(super) struct Counted<'a, R> {
    /// The file.
    pub inner: R,
    /// Where reads are counted.
    pub reads: &'a std::sync::atomic::AtomicU64,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner.read(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_and_any_damage_is_refused() {
        let bytes = encode(7, "ENVELOPE", b"(NIL)");
        assert_eq!(bytes.len() as u64, len("ENVELOPE", 5));
        let record = parse(&bytes).unwrap();
        assert_eq!(
            (record.uid, record.name, record.value),
            (7, "ENVELOPE", &b"(NIL)"[..])
        );
        assert_eq!(value_of(&bytes, 7, "ENVELOPE"), Some(&b"(NIL)"[..]));
        assert_eq!(value_of(&bytes, 8, "ENVELOPE"), None, "another message");
        assert_eq!(value_of(&bytes, 7, "BODY"), None, "another field");
        for i in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[i] ^= 0x20;
            assert_eq!(value_of(&flipped, 7, "ENVELOPE"), None, "byte {i}");
        }
        for cut in 0..bytes.len() {
            assert_eq!(parse(&bytes[..cut]), None, "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(parse(&longer), None, "one record, exactly");
    }
}
