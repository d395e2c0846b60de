//! The shared table's messages: served from the backend's memory-mapped index when it has one
//! that lists them exactly, with what changed since kept beside it; otherwise a compact copy.
//!
//! ```text
//!   base:    Arc<Mapped> records ─┐  (no heap per message; the keyword bits of its
//!   changed: uid → Some(now)      ├─► merged in UID order
//!            uid → None (gone)    ┘   records map to the table's keyword sets)
//! ```
//! A folder opened from a current index costs the table nothing per message. The changes
//! grow until the backend writes its next index (after a bounded journal of them), which the
//! table then takes as its new base.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::index::{Mapped, Record};
use crate::mailbox::{Flags, Uid};

/// One message as the table hands it out, and as it keeps changed ones (40 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Entry {
    pub uid: Uid,
    pub flags: Flags,
    /// Its set of keywords: an index into the table's keyword sets (0: none).
    pub keywords: u32,
    pub size: u64,
    /// Internal date, in seconds since the epoch (IMAP shows no finer).
    pub internal_date: i64,
    pub modseq: u64,
}

/// A mapped index the messages are served from.
#[derive(Debug)]
struct Base {
    index: Arc<Mapped>,
    /// The table's keyword set for each pattern of keyword bits the records use, by pattern
    /// (a folder has few: a binary search, no hashing, on every read).
    sets: Vec<(u32, u32)>,
    /// Where the last lookup found its record: readers mostly go up the folder in order, so
    /// the next one is usually right after it.
    hint: AtomicUsize,
}

impl Base {
    /// Record `i` as an entry.
    fn entry(&self, i: usize) -> Entry {
        self.entry_of(&self.index.get(i))
    }

    fn entry_of(&self, record: &Record<'_>) -> Entry {
        let keywords = match self
            .sets
            .binary_search_by_key(&record.keywords, |(bits, _)| *bits)
        {
            Ok(k) => self.sets[k].1,
            Err(_) => 0,
        };
        Entry {
            uid: record.uid,
            flags: Flags::from_bits(record.flags),
            keywords,
            size: record.size,
            internal_date: record.date.secs.max(0),
            modseq: record.modseq.max(1),
        }
    }

    /// The position of `uid`'s record: next to the last one found, else by binary search.
    fn position(&self, uid: Uid) -> Option<usize> {
        let hint = self.hint.load(Ordering::Relaxed);
        let found = [hint, hint + 1]
            .into_iter()
            .find(|&i| i < self.index.len() && self.index.uid(i) == uid)
            .or_else(|| self.index.position(uid))?;
        self.hint.store(found, Ordering::Relaxed);
        Some(found)
    }
}

/// The messages of a mailbox, ascending by UID.
#[derive(Debug, Default)]
pub(super) struct Messages {
    base: Option<Base>,
    /// With a base: the messages that differ from it, changed or added (`Some`) or gone
    /// (`None`); a tree, so a change to a large folder costs O(log changes).
    changed: BTreeMap<Uid, Option<Entry>>,
    /// Without a base: every message, ascending by UID (the compact copy).
    own: Vec<Entry>,
    /// How many messages there are.
    len: usize,
}

impl Messages {
    /// Messages kept as a copy (ascending by UID).
    pub fn owned(entries: Vec<Entry>) -> Self {
        Self {
            len: entries.len(),
            own: entries,
            ..Self::default()
        }
    }

    /// Messages served from `index`, whose keyword bit patterns are the table's sets `sets`.
    pub fn mapped(index: Arc<Mapped>, sets: HashMap<u32, u32>) -> Self {
        let mut sets: Vec<(u32, u32)> = sets.into_iter().collect();
        sets.sort_unstable();
        Self {
            len: index.len(),
            base: Some(Base {
                index,
                sets,
                hint: AtomicUsize::new(0),
            }),
            ..Self::default()
        }
    }

    /// Whether these messages are served from `index`.
    pub fn served_from(&self, index: &Arc<Mapped>) -> bool {
        self.base
            .as_ref()
            .is_some_and(|b| Arc::ptr_eq(&b.index, index))
    }

    /// Whether they are served from a mapped index, and how many are kept beside it.
    #[cfg(test)]
    pub fn served(&self) -> (bool, usize) {
        (self.base.is_some(), self.own.len() + self.changed.len())
    }

    /// How many messages there are.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Message `uid`.
    pub fn get(&self, uid: Uid) -> Option<Entry> {
        let Some(base) = &self.base else {
            let k = self.own.binary_search_by_key(&uid, |e| e.uid).ok()?;
            return self.own.get(k).copied();
        };
        match self.changed.get(&uid) {
            Some(changed) => *changed,
            None => base.position(uid).map(|i| base.entry(i)),
        }
    }

    /// Whether message `uid` is there.
    pub fn contains(&self, uid: Uid) -> bool {
        self.get(uid).is_some()
    }

    /// Adds message `entry.uid`, or replaces it.
    pub fn put(&mut self, entry: Entry) {
        if self.base.is_none() {
            match self.own.binary_search_by_key(&entry.uid, |e| e.uid) {
                Ok(k) => self.own[k] = entry,
                Err(k) => {
                    self.own.insert(k, entry);
                    self.len += 1;
                }
            }
            return;
        }
        if !self.contains(entry.uid) {
            self.len += 1;
        }
        self.changed.insert(entry.uid, Some(entry));
    }

    /// Takes message `uid` away.
    pub fn remove(&mut self, uid: Uid) -> Option<Entry> {
        let Some(base) = &self.base else {
            let k = self.own.binary_search_by_key(&uid, |e| e.uid).ok()?;
            self.len -= 1;
            return Some(self.own.remove(k));
        };
        let entry = self.get(uid)?;
        if base.index.position(uid).is_some() {
            self.changed.insert(uid, None);
        } else {
            self.changed.remove(&uid);
        }
        self.len -= 1;
        Some(entry)
    }

    /// Every message, in UID order.
    pub fn iter(&self) -> Box<dyn Iterator<Item = Entry> + '_> {
        self.above(0)
    }

    /// The messages above `uid`, in UID order: the base's records and the changes merged,
    /// gone ones left out.
    pub fn above(&self, uid: Uid) -> Box<dyn Iterator<Item = Entry> + '_> {
        let Some(base) = &self.base else {
            let from = self.own.partition_point(|e| e.uid <= uid);
            return Box::new(self.own[from..].iter().copied());
        };
        let mut i = uid
            .checked_add(1)
            .map_or(base.index.len(), |next| base.index.first_from(next));
        let mut changed = self
            .changed
            .range((Bound::Excluded(uid), Bound::Unbounded))
            .peekable();
        Box::new(std::iter::from_fn(move || loop {
            let next_base = (i < base.index.len()).then(|| base.index.uid(i));
            let next_changed = changed.peek().map(|(uid, _)| **uid);
            match (next_base, next_changed) {
                (None, None) => return None,
                (Some(b), Some(c)) if c <= b => {
                    if c == b {
                        i += 1;
                    }
                    if let Some((_, Some(entry))) = changed.next() {
                        return Some(*entry);
                    }
                }
                (None, Some(_)) => {
                    if let Some((_, Some(entry))) = changed.next() {
                        return Some(*entry);
                    }
                }
                (Some(_), _) => {
                    i += 1;
                    return Some(base.entry(i - 1));
                }
            }
        }))
    }

    /// Every keyword set number these messages hold (the copy's or the changed ones', and
    /// the base's per pattern of keyword bits), for renumbering.
    pub fn keyword_sets_mut(&mut self) -> impl Iterator<Item = &mut u32> + '_ {
        let base = self
            .base
            .iter_mut()
            .flat_map(|b| b.sets.iter_mut().map(|(_, set)| set));
        let changed = self.changed.values_mut().flatten().map(|e| &mut e.keywords);
        self.own
            .iter_mut()
            .map(|e| &mut e.keywords)
            .chain(changed)
            .chain(base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(dir: &std::path::Path, uids: &[Uid]) -> Arc<Mapped> {
        Arc::new(crate::index::write_for_test(dir, uids, |uid| {
            (u32::from(uid == 4), u64::from(uid) * 10)
        }))
    }

    fn entry(uid: Uid) -> Entry {
        Entry {
            uid,
            flags: Flags::SEEN,
            keywords: 0,
            size: 1,
            internal_date: 0,
            modseq: 2,
        }
    }

    fn uids(messages: &Messages, above: Uid) -> Vec<Uid> {
        messages.above(above).map(|e| e.uid).collect()
    }

    #[test]
    fn changes_overlay_the_mapped_index_in_uid_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut messages = Messages::mapped(index(dir.path(), &[2, 4, 6, 8]), [(1, 5)].into());
        assert_eq!(messages.len(), 4);
        assert_eq!(messages.served(), (true, 0));
        assert_eq!(messages.get(4).unwrap().size, 40);
        assert_eq!(messages.get(4).unwrap().keywords, 5);
        messages.put(entry(4));
        messages.put(entry(9));
        messages.put(entry(1));
        assert_eq!(messages.remove(6).unwrap().size, 60);
        assert!(messages.remove(6).is_none());
        assert!(messages.remove(1).is_some());
        assert_eq!(messages.len(), 4);
        assert_eq!(uids(&messages, 0), [2, 4, 8, 9]);
        assert_eq!(uids(&messages, 4), [8, 9]);
        assert_eq!(uids(&messages, 5), [8, 9]);
        assert_eq!(uids(&messages, 9), [] as [Uid; 0]);
        assert_eq!(messages.get(4).unwrap().flags, Flags::SEEN);
        assert!(messages.contains(8) && !messages.contains(6) && !messages.contains(1));
        messages.remove(2);
        messages.remove(8);
        assert_eq!(uids(&messages, 0), [4, 9]);
        assert_eq!(messages.len(), 2);
        for set in messages.keyword_sets_mut() {
            *set += 1;
        }
        assert_eq!(messages.get(4).unwrap().keywords, 1);
    }

    #[test]
    fn a_copy_without_base_keeps_every_message() {
        let mut messages = Messages::owned(vec![entry(1), entry(3)]);
        messages.put(entry(2));
        assert_eq!(messages.remove(1).map(|e| e.uid), Some(1));
        assert_eq!(uids(&messages, 0), [2, 3]);
        assert_eq!((messages.len(), messages.own.len()), (2, 2));
    }
}
