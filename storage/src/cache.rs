//! The field cache: what clients ask for again and again (ENVELOPE, BODYSTRUCTURE, selected
//! header fields, line counts), computed once from the message and kept beside the mail, so the
//! second FETCH of those fields opens no message file. Dovecot calls this self-optimizing.
//!
//! ```text
//!   header   "ROOSTCA1" UIDVALIDITY(u32)
//!   records  len(u32) crc(u32) | uid(u32) name_len(u16) name value     (appended, never edited)
//! ```
//! The cache can always be recomputed, so it is written without fsync; every record carries a
//! CRC, and a torn or garbled tail is cut off at the last good record (reported once). Only an
//! offset table lives in memory; values are read with one positioned read each.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::mailbox::Uid;
use crate::{repair, Error};

const MAGIC: &[u8; 8] = b"ROOSTCA1";
const HEADER: u64 = 12;
/// Largest value cached (a BODYSTRUCTURE of a huge multipart is still far below this).
const MAX_VALUE: usize = 1 << 20;

/// One folder's cache file.
#[derive(Debug)]
pub struct FieldCache {
    path: PathBuf,
    file: Option<File>,
    /// (uid, field) → (offset of value, length).
    offsets: HashMap<(Uid, String), (u64, u32)>,
    end: u64,
}

impl FieldCache {
    /// Opens (or starts) the cache at `path` for a folder with this UIDVALIDITY; a cache of
    /// another UIDVALIDITY, or one whose header is damaged, starts over.
    pub fn open(path: impl Into<PathBuf>, uidvalidity: u32) -> Self {
        let path = path.into();
        let mut cache = Self {
            path,
            file: None,
            offsets: HashMap::new(),
            end: 0,
        };
        if let Err(e) = cache.load(uidvalidity) {
            tracing::warn!(cache = %cache.path.display(), "field cache unusable, starting over: {e}");
            cache.offsets.clear();
            cache.file = None;
            let _ = cache.reset(uidvalidity);
        }
        cache
    }

    fn load(&mut self, uidvalidity: u32) -> io::Result<()> {
        let mut file = match OpenOptions::new().read(true).write(true).open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return self.reset(uidvalidity),
            Err(e) => return Err(e),
        };
        // Sessions of other processes append to the same file: read (and cut a torn tail)
        // only while none of them is half-way through a record.
        file.lock()?;
        let mut header = [0u8; HEADER as usize];
        let len = file.metadata()?.len();
        if len < HEADER || file.read_exact(&mut header).is_err() || &header[..8] != MAGIC {
            repair::report(
                &self.path,
                "the field cache header is damaged",
                "started a new cache",
            );
            return self.reset(uidvalidity);
        }
        if u32::from_le_bytes([header[8], header[9], header[10], header[11]]) != uidvalidity {
            return self.reset(uidvalidity);
        }
        let mut at = HEADER;
        while at < len {
            match read_record(&file, at, len) {
                Some((uid, name, value_at, value_len, next)) => {
                    self.offsets.insert((uid, name), (value_at, value_len));
                    at = next;
                }
                None => {
                    repair::report(
                        &self.path,
                        "the field cache ends in a torn or garbled record",
                        "cut it off at the last good record",
                    );
                    file.set_len(at)?;
                    break;
                }
            }
        }
        self.end = at;
        file.unlock()?;
        self.file = Some(file);
        Ok(())
    }

    fn reset(&mut self, uidvalidity: u32) -> io::Result<()> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&self.path)?;
        file.write_all(MAGIC)?;
        file.write_all(&uidvalidity.to_le_bytes())?;
        self.offsets.clear();
        self.end = HEADER;
        self.file = Some(file);
        Ok(())
    }

    /// A cached field.
    pub fn get(&self, uid: Uid, field: &str) -> Option<Vec<u8>> {
        let (at, len) = *self.offsets.get(&(uid, field.to_string()))?;
        let mut value = vec![0u8; len as usize];
        self.file.as_ref()?.read_exact_at(&mut value, at).ok()?;
        Some(value)
    }

    /// Caches a field (best effort: a cache that cannot be written only costs speed).
    pub fn put(&mut self, uid: Uid, field: &str, value: &[u8]) -> Result<(), Error> {
        if value.len() > MAX_VALUE || field.len() > usize::from(u16::MAX) {
            return Ok(());
        }
        let Some(file) = self.file.as_ref() else {
            return Ok(());
        };
        let mut body = Vec::with_capacity(6 + field.len() + value.len());
        body.extend_from_slice(&uid.to_le_bytes());
        body.extend_from_slice(&(field.len() as u16).to_le_bytes());
        body.extend_from_slice(field.as_bytes());
        body.extend_from_slice(value);
        let mut record = Vec::with_capacity(8 + body.len());
        record.extend_from_slice(&(body.len() as u32).to_le_bytes());
        record.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        record.extend_from_slice(&body);
        // Other sessions append too: under the lock, write at the true end of the file.
        let io = |e| Error::io(&self.path, e);
        file.lock().map_err(io)?;
        let written = file
            .metadata()
            .and_then(|m| file.write_all_at(&record, m.len()).map(|()| m.len()));
        let _ = file.unlock();
        let at = written.map_err(io)?;
        self.end = at;
        let value_at = self.end + 8 + 6 + field.len() as u64;
        self.offsets
            .insert((uid, field.to_string()), (value_at, value.len() as u32));
        self.end += record.len() as u64;
        Ok(())
    }

    /// Number of cached fields.
    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// Deletes the cache file (the folder was deleted).
    pub fn remove(path: &Path) {
        let _ = fs::remove_file(path);
    }
}

/// A number as the cache keeps it: decimal ASCII, as every cache file written so far holds it.
pub(crate) fn encode_number(n: u64) -> Vec<u8> {
    n.to_string().into_bytes()
}

/// A number from a cached value; `None` for a value that is not one (then it is recomputed).
pub(crate) fn decode_number(value: &[u8]) -> Option<u64> {
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// Reads and checks the record at `at`: `(uid, name, value offset, value length, next)`.
fn read_record(file: &File, at: u64, len: u64) -> Option<(Uid, String, u64, u32, u64)> {
    let mut head = [0u8; 8];
    file.read_exact_at(&mut head, at).ok()?;
    let body_len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as u64;
    let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    if body_len < 6
        || body_len > (MAX_VALUE + 6 + usize::from(u16::MAX)) as u64
        || at + 8 + body_len > len
    {
        return None;
    }
    let mut body = vec![0u8; body_len as usize];
    file.read_exact_at(&mut body, at + 8).ok()?;
    if crc32fast::hash(&body) != crc {
        return None;
    }
    let uid = u32::from_le_bytes([body[0], body[1], body[2], body[3]]);
    let name_len = u16::from_le_bytes([body[4], body[5]]) as usize;
    let name = std::str::from_utf8(body.get(6..6 + name_len)?)
        .ok()?
        .to_string();
    let value_at = at + 8 + 6 + name_len as u64;
    let value_len = (body_len - 6 - name_len as u64) as u32;
    Some((uid, name, value_at, value_len, at + 8 + body_len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip_and_garbage_is_no_number() {
        for n in [0, 7, u64::MAX] {
            assert_eq!(decode_number(&encode_number(n)), Some(n));
        }
        assert_eq!(encode_number(1234), b"1234");
        for junk in [&b""[..], b"-1", b"12a", b"\xff"] {
            assert_eq!(decode_number(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn values_survive_reopen_and_a_torn_tail_keeps_the_good_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("roost.cache");
        let mut cache = FieldCache::open(&path, 7);
        for uid in 1..=50 {
            cache
                .put(uid, "ENVELOPE", format!("(\"envelope {uid}\")").as_bytes())
                .unwrap();
            cache
                .put(uid, "BODYSTRUCTURE", b"(\"text\" \"plain\")")
                .unwrap();
        }
        assert_eq!(cache.get(9, "ENVELOPE").unwrap(), b"(\"envelope 9\")");
        let again = FieldCache::open(&path, 7);
        assert_eq!(again.len(), 100);
        assert_eq!(
            again.get(50, "BODYSTRUCTURE").unwrap(),
            b"(\"text\" \"plain\")"
        );
        assert_eq!(again.get(51, "ENVELOPE"), None);

        let bytes = fs::read(&path).unwrap();
        for cut in (0..bytes.len()).step_by(13) {
            fs::write(&path, &bytes[..cut]).unwrap();
            let torn = FieldCache::open(&path, 7);
            for uid in 1..=50 {
                if let Some(v) = torn.get(uid, "ENVELOPE") {
                    assert_eq!(v, format!("(\"envelope {uid}\")").as_bytes(), "cut {cut}");
                }
            }
        }
        let mut flipped = bytes.clone();
        flipped[bytes.len() / 2] ^= 0xff;
        fs::write(&path, &flipped).unwrap();
        let damaged = FieldCache::open(&path, 7);
        assert!(damaged.len() < 100 && !damaged.is_empty());
        assert!(
            FieldCache::open(&path, 8).is_empty(),
            "another UIDVALIDITY starts over"
        );
    }
}
