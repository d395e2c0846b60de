//! The messages of a maildir as this process knows them: the index it last loaded or wrote,
//! read in place through its memory map, and what changed since.
//!
//! A folder of 100,000 messages opened from a current index costs no memory per message here:
//! a message's record is read from the map when it is asked for. Changes since (this
//! process's STOREs, APPENDs and EXPUNGEs, other sessions' journal records) are kept beside
//! the map until the next index is written, which then becomes the map.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{Entry, Meta, Place};
use crate::index::{Mapped, Record};
use crate::mailbox::{Flags, Uid};

/// The messages in `cur/` by UID.
#[derive(Debug, Default)]
pub(super) struct Files {
    /// The index the view was loaded from or last wrote; `None` after a listing that has not
    /// written one yet.
    base: Option<Arc<Mapped>>,
    /// Messages that differ from `base`: changed or added (`Some`), or gone (`None`).
    changed: BTreeMap<Uid, Option<Entry>>,
    /// How many messages there are.
    len: usize,
}

impl Meta {
    /// What an index record says of its message.
    fn from_record(r: &Record<'_>) -> Self {
        Self {
            size: r.size,
            date: r.date,
            modseq: r.modseq,
            keywords: r.keywords,
            flags: Flags::from_bits(r.flags),
        }
    }
}

impl Files {
    /// The messages an index lists.
    pub fn from_index(index: Arc<Mapped>) -> Self {
        Self {
            len: index.len(),
            base: Some(index),
            changed: BTreeMap::new(),
        }
    }

    /// Messages found by listing the folder.
    pub fn from_entries(entries: BTreeMap<Uid, Entry>) -> Self {
        Self {
            len: entries.len(),
            base: None,
            changed: entries.into_iter().map(|(uid, e)| (uid, Some(e))).collect(),
        }
    }

    /// The index these messages are based on, if any.
    pub fn base(&self) -> Option<&Arc<Mapped>> {
        self.base.as_ref()
    }

    /// The messages that differ from the base (changed, added or gone), in UID order.
    pub fn changed_uids(&self) -> impl Iterator<Item = Uid> + '_ {
        self.changed.keys().copied()
    }

    /// How many messages there are.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Message `uid`.
    pub fn get(&self, uid: Uid) -> Option<Entry> {
        self.find(uid).map(|at| at.entry())
    }

    /// What is known of message `uid` besides its name (which is not read).
    pub fn meta(&self, uid: Uid) -> Option<Meta> {
        self.find(uid).map(|at| at.meta())
    }

    /// Whether message `uid` is there.
    pub fn contains(&self, uid: Uid) -> bool {
        self.find(uid).is_some()
    }

    /// Where message `uid` is: among the changes, else in the base.
    fn find(&self, uid: Uid) -> Option<At<'_>> {
        match self.changed.get(&uid) {
            Some(changed) => changed.as_ref().map(At::Changed),
            None => {
                let base = self.base.as_ref()?;
                Some(At::Base(base.get(base.position(uid)?)))
            }
        }
    }

    fn in_base(&self, uid: Uid) -> bool {
        self.base
            .as_ref()
            .is_some_and(|b| b.position(uid).is_some())
    }

    /// Adds or replaces message `uid`.
    pub fn insert(&mut self, uid: Uid, entry: Entry) {
        if !self.contains(uid) {
            self.len += 1;
        }
        self.changed.insert(uid, Some(entry));
    }

    /// Takes message `uid` away.
    pub fn remove(&mut self, uid: Uid) -> Option<Entry> {
        let gone = self.get(uid)?;
        if self.in_base(uid) {
            self.changed.insert(uid, None);
        } else {
            self.changed.remove(&uid);
        }
        self.len -= 1;
        Some(gone)
    }

    /// Every message in UID order.
    pub fn iter(&self) -> impl Iterator<Item = (Uid, Entry)> + '_ {
        self.merged().map(|(uid, at)| (uid, at.entry()))
    }

    /// Every message in UID order, without its name: a folder opened from its index reads
    /// only the records, not the name table.
    pub fn metas(&self) -> impl Iterator<Item = (Uid, Meta)> + '_ {
        self.merged().map(|(uid, at)| (uid, at.meta()))
    }

    /// The base's records and the changes, merged in UID order; gone messages left out.
    fn merged(&self) -> impl Iterator<Item = (Uid, At<'_>)> + '_ {
        let base = self.base.as_deref();
        let base_len = base.map_or(0, Mapped::len);
        let mut i = 0;
        let mut changed = self.changed.iter().peekable();
        std::iter::from_fn(move || loop {
            let next_base = (i < base_len).then(|| base.map(|b| b.uid(i))).flatten();
            let next_changed = changed.peek().map(|(uid, _)| **uid);
            let (uid, from_base) = match (next_base, next_changed) {
                (None, None) => return None,
                (Some(b), Some(c)) if c <= b => (c, c == b),
                (Some(b), _) => {
                    i += 1;
                    return Some((b, At::Base(base?.get(i - 1))));
                }
                (None, Some(c)) => (c, false),
            };
            if from_base {
                i += 1;
            }
            let (_, entry) = changed.next()?;
            if let Some(entry) = entry {
                return Some((uid, At::Changed(entry)));
            }
        })
    }
}

/// Where a message was found: in the base index, or among the changes.
enum At<'a> {
    Base(Record<'a>),
    Changed(&'a Entry),
}

impl At<'_> {
    /// The message, its name included.
    fn entry(&self) -> Entry {
        match self {
            At::Base(r) => Entry::with_meta(r.file().into(), Place::Cur, Meta::from_record(r)),
            At::Changed(entry) => (*entry).clone(),
        }
    }

    /// What is known of it besides its name.
    fn meta(&self) -> Meta {
        match self {
            At::Base(r) => Meta::from_record(r),
            At::Changed(entry) => entry.meta(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::Stamp;

    fn index(dir: &std::path::Path, uids: &[Uid]) -> Mapped {
        crate::index::write_for_test(dir, uids, |uid| (0, u64::from(uid)))
    }

    fn entry(uid: Uid) -> Entry {
        Entry {
            file: format!("n{uid}:2,S").into(),
            size: 1,
            date: Stamp::default(),
            modseq: 2,
            keywords: 0,
            flags: Flags::SEEN,
            place: Place::Cur,
        }
    }

    #[test]
    fn changes_overlay_the_mapped_index_in_uid_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = Files::from_index(Arc::new(index(dir.path(), &[2, 4, 6, 8])));
        assert_eq!(files.len(), 4);
        assert_eq!(files.get(4).unwrap().size, 4);
        files.insert(4, entry(4));
        files.insert(9, entry(9));
        files.insert(1, entry(1));
        assert_eq!(files.remove(6).unwrap().size, 6);
        assert!(files.remove(6).is_none());
        assert!(files.remove(1).is_some());
        assert_eq!(files.len(), 4);
        assert_eq!(
            files.iter().map(|(uid, _)| uid).collect::<Vec<_>>(),
            [2, 4, 8, 9]
        );
        let names: Vec<String> = files.iter().map(|(_, e)| e.file.to_string()).collect();
        assert_eq!(names, ["k2,U=2:2,", "n4:2,S", "k8,U=8:2,", "n9:2,S"]);
        assert!(files.contains(8) && !files.contains(6) && !files.contains(1));
        assert!(files.get(6).is_none());
    }
}
