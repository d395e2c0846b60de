//! The shared table of one mailbox: its messages with keywords as indices into the mailbox's
//! keyword table, and the numbered log of changes sessions catch up from.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::SystemTime;

use crate::mailbox::{Delta, Flags, MessageInfo, Snapshot, Uid};

/// How many changes the log keeps; a session further behind compares its whole sequence map
/// once instead.
const LOG_LIMIT: usize = 16_384;

/// One message, as compact as the table can keep it.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub uid: Uid,
    pub flags: Flags,
    /// Indices into [`Table::keywords`], ascending.
    pub keywords: Box<[u32]>,
    pub size: u64,
    pub internal_date: SystemTime,
    pub modseq: u64,
}

/// One numbered change.
#[derive(Debug, Clone)]
pub(super) enum Logged {
    /// A message's flags or keywords changed, by session `origin` (0: from disk).
    Flags { uid: Uid, origin: u64 },
    /// A message left the mailbox; what it was, for sessions not yet allowed to say so.
    Expunged(Entry),
}

/// The messages and their change log.
pub(super) struct Table {
    pub uidvalidity: u32,
    pub uidnext: Uid,
    pub highestmodseq: u64,
    /// Every keyword name seen in this mailbox; entries refer to them by position.
    keywords: Vec<String>,
    keyword_ids: HashMap<String, u32>,
    /// Ascending by UID.
    pub messages: Vec<Entry>,
    pub log: VecDeque<Logged>,
    /// The number of the first change still in `log`.
    pub log_start: u64,
}

impl Table {
    /// The table of a freshly synced mailbox.
    pub fn new(snapshot: Snapshot) -> Self {
        let mut table = Self {
            uidvalidity: snapshot.uidvalidity,
            uidnext: snapshot.uidnext,
            highestmodseq: snapshot.highestmodseq.max(1),
            keywords: Vec::new(),
            keyword_ids: HashMap::new(),
            messages: Vec::with_capacity(snapshot.messages.len()),
            log: VecDeque::new(),
            log_start: 0,
        };
        for info in &snapshot.messages {
            let entry = table.entry(info);
            table.messages.push(entry);
        }
        table
    }

    /// The number the next change will get.
    pub fn log_end(&self) -> u64 {
        self.log_start + self.log.len() as u64
    }

    fn push(&mut self, change: Logged) {
        self.log.push_back(change);
        while self.log.len() > LOG_LIMIT {
            self.log.pop_front();
            self.log_start += 1;
        }
    }

    /// The compact form of `info`, entering new keywords in the keyword table.
    fn entry(&mut self, info: &MessageInfo) -> Entry {
        let mut keywords: Vec<u32> = info.keywords.iter().map(|k| self.keyword_id(k)).collect();
        keywords.sort_unstable();
        Entry {
            uid: info.uid,
            flags: info.flags,
            keywords: keywords.into_boxed_slice(),
            size: info.size,
            internal_date: info.internal_date,
            modseq: info.modseq,
        }
    }

    fn keyword_id(&mut self, name: &str) -> u32 {
        if let Some(id) = self.keyword_ids.get(name) {
            return *id;
        }
        let id = self.keywords.len() as u32;
        self.keywords.push(name.to_string());
        self.keyword_ids.insert(name.to_string(), id);
        id
    }

    /// The keyword names of an entry.
    pub fn keyword_names(&self, entry: &Entry) -> BTreeSet<String> {
        entry
            .keywords
            .iter()
            .filter_map(|id| self.keywords.get(*id as usize).cloned())
            .collect()
    }

    /// What front-ends see of an entry.
    pub fn info(&self, entry: &Entry) -> MessageInfo {
        MessageInfo {
            uid: entry.uid,
            flags: entry.flags,
            keywords: self.keyword_names(entry),
            size: entry.size,
            internal_date: entry.internal_date,
            modseq: entry.modseq,
        }
    }

    /// The position of `uid` in `messages`.
    pub fn position(&self, uid: Uid) -> Result<usize, usize> {
        self.messages.binary_search_by_key(&uid, |e| e.uid)
    }

    /// A message present, or one expunged whose record the log still holds.
    pub fn find(&self, uid: Uid) -> Option<&Entry> {
        match self.position(uid) {
            Ok(i) => self.messages.get(i),
            Err(_) => self.log.iter().rev().find_map(|c| match c {
                Logged::Expunged(e) if e.uid == uid => Some(e),
                _ => None,
            }),
        }
    }

    /// The keyword names in use by some message.
    pub fn keywords_in_use(&self) -> BTreeSet<String> {
        let used: BTreeSet<u32> = self
            .messages
            .iter()
            .flat_map(|e| e.keywords.iter().copied())
            .collect();
        used.into_iter()
            .filter_map(|id| self.keywords.get(id as usize).cloned())
            .collect()
    }

    /// Enters a message just appended (by this process).
    pub fn insert(&mut self, info: &MessageInfo) {
        let entry = self.entry(info);
        self.uidnext = self.uidnext.max(info.uid + 1);
        self.highestmodseq = self.highestmodseq.max(info.modseq);
        match self.position(info.uid) {
            Ok(i) => self.messages[i] = entry,
            Err(i) => self.messages.insert(i, entry),
        }
    }

    /// Records the new state of messages session `origin` changed; a message whose flags and
    /// keywords stayed the same gets no log entry (its MODSEQ is still taken).
    pub fn stored(&mut self, changed: &[MessageInfo], origin: u64) {
        for info in changed {
            let entry = self.entry(info);
            self.highestmodseq = self.highestmodseq.max(info.modseq);
            let Ok(i) = self.position(info.uid) else {
                continue;
            };
            self.replace(i, entry, origin);
        }
    }

    /// Puts `entry` in place of message `i`, logging a flag change by `origin` (0: from disk)
    /// when its flags or keywords differ.
    fn replace(&mut self, i: usize, entry: Entry, origin: u64) {
        let old = &self.messages[i];
        if old.flags != entry.flags || old.keywords != entry.keywords {
            let uid = entry.uid;
            self.push(Logged::Flags { uid, origin });
        }
        self.messages[i] = entry;
    }

    /// Takes messages out of the table, logging each.
    pub fn remove(&mut self, uids: &[Uid]) {
        for uid in uids {
            if let Ok(i) = self.position(*uid) {
                let entry = self.messages.remove(i);
                self.push(Logged::Expunged(entry));
            }
        }
    }

    /// Takes in the messages another process or program changed, added or removed, logging
    /// each: O(changes), whatever the mailbox's size.
    pub fn apply(&mut self, delta: Delta) {
        self.remove(&delta.removed);
        for info in &delta.present {
            let entry = self.entry(info);
            match self.position(info.uid) {
                Ok(i) => self.replace(i, entry, 0),
                Err(i) => self.messages.insert(i, entry),
            }
        }
        self.uidnext = self.uidnext.max(delta.uidnext);
        self.highestmodseq = self.highestmodseq.max(delta.highestmodseq);
    }

    /// Brings the table in line with a sync of the disk, logging every difference; a new
    /// UIDVALIDITY replaces the table (sessions notice and start over).
    pub fn absorb(&mut self, snapshot: Snapshot) {
        if snapshot.uidvalidity != self.uidvalidity {
            let log_end = self.log_end();
            *self = Self::new(snapshot);
            self.log_start = log_end;
            return;
        }
        self.uidnext = snapshot.uidnext;
        self.highestmodseq = self.highestmodseq.max(snapshot.highestmodseq);
        let old = std::mem::take(&mut self.messages);
        let mut old = old.into_iter().peekable();
        let mut merged = Vec::with_capacity(snapshot.messages.len());
        for info in &snapshot.messages {
            while let Some(gone) = old.next_if(|e| e.uid < info.uid) {
                self.push(Logged::Expunged(gone));
            }
            let entry = self.entry(info);
            if let Some(was) = old.next_if(|e| e.uid == info.uid) {
                if was.flags != entry.flags || was.keywords != entry.keywords {
                    self.push(Logged::Flags {
                        uid: info.uid,
                        origin: 0,
                    });
                }
            }
            merged.push(entry);
        }
        for gone in old {
            self.push(Logged::Expunged(gone));
        }
        self.messages = merged;
    }
}
