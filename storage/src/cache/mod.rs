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
//! offset table lives in memory (names interned, so an entry is a few words). Opening reads the
//! file sequentially in large chunks; a FETCH, SEARCH or SORT set is read ahead with
//! [`FieldCache::prefetch`] in as few reads as the records' places allow (see `window`), and
//! any other value with one positioned read. Every record read is checked again (length, CRC,
//! UID, name), so one that changed under us is a miss, never a wrong value.
//!
//! Why reads and not a memory map: the file is appended to and, when started over or cut at a
//! torn tail, truncated in place by other processes; a map of it could fault (SIGBUS) on a page
//! that no longer exists, and its pages would count in every process's memory.

mod record;
mod window;

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use crate::mailbox::Uid;
use crate::{repair, Error};
use record::Counted;
use window::{Plans, Window};

const MAGIC: &[u8; 8] = b"ROOSTCA1";
const HEADER: u64 = 12;
/// Largest value cached (a BODYSTRUCTURE of a huge multipart is still far below this).
const MAX_VALUE: usize = 1 << 20;
/// How much of the file one read takes while it is scanned at open.
const SCAN_CHUNK: usize = 256 * 1024;

/// Where one cached value's record lies.
#[derive(Debug, Clone, Copy)]
struct Slot {
    /// Offset of the record (its length field).
    at: u64,
    /// Length of the value.
    value_len: u32,
}

/// One folder's cache file.
#[derive(Debug)]
pub struct FieldCache {
    path: PathBuf,
    file: Option<File>,
    /// Field names seen, each with the number keys use for it.
    names: HashMap<String, u32>,
    /// (uid, field number) → its record.
    slots: HashMap<(Uid, u32), Slot>,
    /// Records planned by [`FieldCache::prefetch`], read on first use (behind a lock so
    /// [`FieldCache::get`] can fill it through `&self` and the cache stays `Sync`).
    window: Mutex<Plans>,
    /// Reads made of the file (see [`FieldCache::reads`]).
    reads: AtomicU64,
}

impl FieldCache {
    /// Opens (or starts) the cache at `path` for a folder with this UIDVALIDITY; a cache of
    /// another UIDVALIDITY, or one whose header is damaged, starts over.
    pub fn open(path: impl Into<PathBuf>, uidvalidity: u32) -> Self {
        let mut cache = Self {
            path: path.into(),
            file: None,
            names: HashMap::new(),
            slots: HashMap::new(),
            window: Mutex::default(),
            reads: AtomicU64::new(0),
        };
        if let Err(e) = cache.load(uidvalidity) {
            tracing::warn!(cache = %cache.path.display(), "field cache unusable, starting over: {e}");
            cache.file = None;
            let _ = cache.reset(uidvalidity);
        }
        cache
    }

    fn load(&mut self, uidvalidity: u32) -> io::Result<()> {
        let file = match OpenOptions::new().read(true).write(true).open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return self.reset(uidvalidity),
            Err(e) => return Err(e),
        };
        // Sessions of other processes append to the same file: read (and cut a torn tail)
        // only while none of them is half-way through a record.
        file.lock()?;
        let scanned = self.scan(&file, uidvalidity);
        file.unlock()?;
        match scanned? {
            true => {
                self.file = Some(file);
                Ok(())
            }
            false => self.reset(uidvalidity),
        }
    }

    /// Reads the whole file in large chunks, keeping every good record's place and cutting a
    /// torn tail; `false` when it must start over (damaged header, other UIDVALIDITY).
    fn scan(&mut self, file: &File, uidvalidity: u32) -> io::Result<bool> {
        let len = file.metadata()?.len();
        let counted = Counted {
            inner: file,
            reads: &self.reads,
        };
        let mut reader = BufReader::with_capacity(SCAN_CHUNK, counted);
        let mut header = [0u8; HEADER as usize];
        if len < HEADER || reader.read_exact(&mut header).is_err() || &header[..8] != MAGIC {
            repair::report(
                &self.path,
                "the field cache header is damaged",
                "started a new cache",
            );
            return Ok(false);
        }
        if header[8..] != uidvalidity.to_le_bytes() {
            return Ok(false);
        }
        let (mut at, mut buf) = (HEADER, Vec::new());
        while at < len {
            let found = record::read_next(&mut reader, len - at, &mut buf)
                .and_then(|()| record::parse(&buf));
            let Some(r) = found else {
                repair::report(
                    &self.path,
                    "the field cache ends in a torn or garbled record",
                    "cut it off at the last good record",
                );
                file.set_len(at)?;
                break;
            };
            let id = intern(&mut self.names, r.name);
            let value_len = r.value.len() as u32;
            self.slots.insert((r.uid, id), Slot { at, value_len });
            at += buf.len() as u64;
        }
        Ok(true)
    }

    fn reset(&mut self, uidvalidity: u32) -> io::Result<()> {
        self.names.clear();
        self.slots.clear();
        *self.window_mut() = Plans::default();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&self.path)?;
        file.write_all(MAGIC)?;
        file.write_all(&uidvalidity.to_le_bytes())?;
        self.file = Some(file);
        Ok(())
    }

    /// A cached field: from the records planned by [`FieldCache::prefetch`] (reading their
    /// span on first use), else with one positioned read.
    pub fn get(&self, uid: Uid, field: &str) -> Option<Vec<u8>> {
        let slot = *self.slots.get(&(uid, *self.names.get(field)?))?;
        let len = record::len(field, slot.value_len);
        let mut window = self.window.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(bytes) = window.slice(slot.at, len, |at, len| self.read_at(at, len)) {
            return record::value_of(bytes, uid, field).map(<[u8]>::to_vec);
        }
        drop(window);
        let bytes = self.read_at(slot.at, len)?;
        record::value_of(&bytes, uid, field).map(<[u8]>::to_vec)
    }

    /// Plans to read ahead the records of these fields of these messages, grouped in as few
    /// spans as their places allow; each span is read when one of its values is first asked
    /// for, so the [`FieldCache::get`]s that follow cost a read per span, not one per value.
    /// Each caller's plan is its own (other sessions' plans stay); returns its number for
    /// [`FieldCache::forget_prefetched`]. A field not cached is skipped (a FETCH then computes
    /// it).
    pub fn prefetch(&mut self, uids: &[Uid], fields: &[&str]) -> u64 {
        let mut wanted = Vec::with_capacity(uids.len() * fields.len());
        for field in fields {
            let Some(&id) = self.names.get(*field) else {
                continue;
            };
            for &uid in uids {
                if let Some(slot) = self.slots.get(&(uid, id)) {
                    wanted.push((slot.at, record::len(field, slot.value_len)));
                }
            }
        }
        self.window_mut().add(Window::planned(wanted))
    }

    /// Lets go of what [`FieldCache::prefetch`] planned as `plan` and read (the command is
    /// done, or goes on to its next chunk).
    pub fn forget_prefetched(&mut self, plan: u64) {
        self.window_mut().remove(plan);
    }

    fn window_mut(&mut self) -> &mut Plans {
        self.window
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads made of the file since it was opened (the scan at open included): what tests and
    /// measurements look at to see that a FETCH of many messages costs a read, not one a value.
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    /// `len` bytes at `at`, with one positioned read (counted).
    fn read_at(&self, at: u64, len: u64) -> Option<Vec<u8>> {
        let mut bytes = vec![0u8; usize::try_from(len).ok()?];
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.file.as_ref()?.read_exact_at(&mut bytes, at).ok()?;
        Some(bytes)
    }

    /// Caches a field (best effort: a cache that cannot be written only costs speed).
    pub fn put(&mut self, uid: Uid, field: &str, value: &[u8]) -> Result<(), Error> {
        if !record::fits(field, value) {
            return Ok(());
        }
        let Some(file) = self.file.as_ref() else {
            return Ok(());
        };
        let bytes = record::encode(uid, field, value);
        // Other sessions append too: under the lock, write at the true end of the file.
        let io = |e| Error::io(&self.path, e);
        file.lock().map_err(io)?;
        let written = file
            .metadata()
            .and_then(|m| file.write_all_at(&bytes, m.len()).map(|()| m.len()));
        let _ = file.unlock();
        let at = written.map_err(io)?;
        let id = intern(&mut self.names, field);
        let value_len = value.len() as u32;
        self.slots.insert((uid, id), Slot { at, value_len });
        Ok(())
    }

    /// Number of cached fields.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Deletes the cache file (the folder was deleted).
    pub fn remove(path: &Path) {
        let _ = fs::remove_file(path);
    }
}

/// The number keys use for a field name (a new one gets the next number).
fn intern(names: &mut HashMap<String, u32>, name: &str) -> u32 {
    if let Some(&id) = names.get(name) {
        return id;
    }
    let id = names.len() as u32;
    names.insert(name.to_string(), id);
    id
}

/// A number as the cache keeps it: decimal ASCII, as every cache file written so far holds it.
pub(crate) fn encode_number(n: u64) -> Vec<u8> {
    n.to_string().into_bytes()
}

/// A number from a cached value; `None` for a value that is not one (then it is recomputed).
pub(crate) fn decode_number(value: &[u8]) -> Option<u64> {
    std::str::from_utf8(value).ok()?.parse().ok()
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

    /// Fills a cache with an ENVELOPE and a HEADER for each of 50 messages.
    fn fifty(path: &Path) {
        let mut cache = FieldCache::open(path, 7);
        for uid in 1..=50 {
            cache
                .put(uid, "HEADER", format!("Subject: {uid}\r\n\r\n").as_bytes())
                .unwrap();
            cache
                .put(uid, "ENVELOPE", format!("(\"envelope {uid}\")").as_bytes())
                .unwrap();
        }
    }

    #[test]
    fn opening_reads_the_file_in_chunks_and_a_prefetched_set_costs_one_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("roost.cache");
        fifty(&path);
        let mut cache = FieldCache::open(&path, 7);
        assert_eq!(cache.len(), 100);
        assert!(cache.reads() <= 2, "scan at open: {} reads", cache.reads());
        let before = cache.reads();
        let uids: Vec<Uid> = (1..=50).collect();
        let plan = cache.prefetch(&uids, &["HEADER", "ENVELOPE", "NEVER CACHED"]);
        assert_eq!(
            cache.reads(),
            before,
            "a plan reads nothing until a value is asked for"
        );
        for &uid in &uids {
            let header = cache.get(uid, "HEADER").unwrap();
            assert_eq!(header, format!("Subject: {uid}\r\n\r\n").as_bytes());
            let envelope = cache.get(uid, "ENVELOPE").unwrap();
            assert_eq!(envelope, format!("(\"envelope {uid}\")").as_bytes());
        }
        assert_eq!(
            cache.reads() - before,
            1,
            "100 values of 50 messages in one read"
        );
        cache.forget_prefetched(plan);
        assert!(cache.get(9, "HEADER").is_some());
        assert_eq!(
            cache.reads() - before,
            2,
            "without a prefetch, one read per value"
        );
    }

    #[test]
    fn a_record_changed_under_us_is_a_miss_not_a_wrong_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("roost.cache");
        fifty(&path);
        let mut cache = FieldCache::open(&path, 7);
        // Another process starts the cache over (another UIDVALIDITY) and fills it anew.
        let mut other = FieldCache::open(&path, 8);
        for uid in 1..=50 {
            other.put(uid, "ENVELOPE", b"(\"someone else's\")").unwrap();
            other.put(uid, "HEADER", b"X: y\r\n\r\n").unwrap();
        }
        for uid in 1..=50 {
            assert_eq!(cache.get(uid, "ENVELOPE"), None, "{uid}");
        }
        cache.prefetch(&[1, 2, 3], &["ENVELOPE", "HEADER"]);
        assert_eq!(cache.get(2, "HEADER"), None);
    }
}
