//! The shared table of one mailbox: its messages with keywords as indices into the mailbox's
//! keyword table, and the numbered log of changes sessions catch up from.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::{Duration, SystemTime};

use crate::mailbox::{Delta, Flags, Mailbox, MessageInfo, SyncHeader, Uid};
use crate::Error;

/// How many changes the log keeps; a session further behind compares its whole sequence map
/// once instead.
const LOG_LIMIT: usize = 16_384;

/// One message, as compact as the table can keep it (40 bytes).
#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub uid: Uid,
    pub flags: Flags,
    /// Its set of keywords: an index into [`Table::keyword_sets`] (0: none).
    pub keywords: u32,
    pub size: u64,
    /// Internal date, in seconds since the epoch (IMAP shows no finer).
    pub internal_date: i64,
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
    /// Every keyword name seen in this mailbox; keyword sets refer to them by position.
    keywords: Vec<String>,
    keyword_ids: HashMap<String, u32>,
    /// Every distinct set of keywords a message has had (indices into `keywords`,
    /// ascending); entries refer to them by position. A mailbox has few: most messages share
    /// the empty set or one of a handful.
    keyword_sets: Vec<Box<[u32]>>,
    keyword_set_ids: HashMap<Box<[u32]>, u32>,
    /// Ascending by UID.
    pub messages: Vec<Entry>,
    pub log: VecDeque<Logged>,
    /// The number of the first change still in `log`.
    pub log_start: u64,
    /// How many of `log`'s changes are expunges (whose entries keep a keyword set).
    expunged_in_log: usize,
}

/// Seconds since the epoch of a time (negative before it).
fn seconds(time: SystemTime) -> i64 {
    match time.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(after) => after.as_secs() as i64,
        Err(before) => -(before.duration().as_secs() as i64),
    }
}

/// The time `secs` seconds after the epoch.
fn time_of(secs: i64) -> SystemTime {
    let magnitude = Duration::from_secs(secs.unsigned_abs());
    if secs >= 0 {
        SystemTime::UNIX_EPOCH + magnitude
    } else {
        SystemTime::UNIX_EPOCH - magnitude
    }
}

impl Table {
    /// The table of a mailbox, synced from disk: its messages are entered one by one as the
    /// backend hands them over, never collected in between.
    pub fn new(mailbox: &mut dyn Mailbox) -> Result<Self, Error> {
        let mut table = Self {
            uidvalidity: 0,
            uidnext: 1,
            highestmodseq: 1,
            keywords: Vec::new(),
            keyword_ids: HashMap::new(),
            keyword_sets: vec![Box::default()],
            keyword_set_ids: HashMap::from([(Box::default(), 0)]),
            messages: Vec::new(),
            log: VecDeque::new(),
            log_start: 0,
            expunged_in_log: 0,
        };
        let (header, messages) = table.read_messages(mailbox)?;
        table.set_header(header);
        table.messages = messages;
        Ok(table)
    }

    /// The mailbox's messages as entries (new keywords entered in the tables).
    fn read_messages(
        &mut self,
        mailbox: &mut dyn Mailbox,
    ) -> Result<(SyncHeader, Vec<Entry>), Error> {
        // Reserved as the backend counts (it syncs first only when it found nothing yet):
        // growing by doubling would take up to twice the room at the peak.
        let mut messages = Vec::with_capacity(mailbox.count_hint().max(self.messages.len()));
        let header = mailbox.sync_each(&mut |info| messages.push(self.entry(&info)))?;
        messages.shrink_to_fit();
        Ok((header, messages))
    }

    fn set_header(&mut self, header: SyncHeader) {
        self.uidvalidity = header.uidvalidity;
        self.uidnext = header.uidnext;
        self.highestmodseq = self.highestmodseq.max(header.highestmodseq).max(1);
    }

    /// The number the next change will get.
    pub fn log_end(&self) -> u64 {
        self.log_start + self.log.len() as u64
    }

    fn push(&mut self, change: Logged) {
        self.expunged_in_log += usize::from(matches!(change, Logged::Expunged(_)));
        self.log.push_back(change);
        while self.log.len() > LOG_LIMIT {
            if let Some(Logged::Expunged(_)) = self.log.pop_front() {
                self.expunged_in_log -= 1;
            }
            self.log_start += 1;
        }
    }

    /// The compact form of `info`, entering new keywords in the keyword tables.
    fn entry(&mut self, info: &MessageInfo) -> Entry {
        Entry {
            uid: info.uid,
            flags: info.flags,
            keywords: self.keyword_set(&info.keywords),
            size: info.size,
            internal_date: seconds(info.internal_date),
            modseq: info.modseq,
        }
    }

    /// The number of a set of keywords.
    fn keyword_set(&mut self, names: &BTreeSet<String>) -> u32 {
        if names.is_empty() {
            return 0;
        }
        let mut ids: Vec<u32> = names.iter().map(|k| self.keyword_id(k)).collect();
        ids.sort_unstable();
        let ids = ids.into_boxed_slice();
        if let Some(set) = self.keyword_set_ids.get(&ids) {
            return *set;
        }
        let set = self.keyword_sets.len() as u32;
        self.keyword_sets.push(ids.clone());
        self.keyword_set_ids.insert(ids, set);
        set
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

    /// Renumbers the keyword sets once most of them are no longer used by any message (in
    /// the table or the log): every new combination a client stores makes a set, and the
    /// table would otherwise keep them all for as long as the mailbox is open. O(messages),
    /// after at least as many new sets.
    fn forget_unused_keyword_sets(&mut self) {
        let live = self.messages.len() + self.expunged_in_log;
        if self.keyword_sets.len() <= 2 * live + 64 {
            return;
        }
        let mut renumbered: HashMap<u32, u32> = HashMap::from([(0, 0)]);
        let mut sets: Vec<Box<[u32]>> = vec![Box::default()];
        let mut renumber = |set: &mut u32| {
            let next = sets.len() as u32;
            let new = *renumbered.entry(*set).or_insert_with(|| {
                sets.push(self.keyword_sets[*set as usize].clone());
                next
            });
            *set = new;
        };
        for entry in &mut self.messages {
            renumber(&mut entry.keywords);
        }
        for change in &mut self.log {
            if let Logged::Expunged(entry) = change {
                renumber(&mut entry.keywords);
            }
        }
        self.keyword_set_ids = sets
            .iter()
            .enumerate()
            .map(|(i, ids)| (ids.clone(), i as u32))
            .collect();
        self.keyword_sets = sets;
    }

    /// The keyword indices of a set.
    fn keyword_ids_of(&self, set: u32) -> &[u32] {
        self.keyword_sets.get(set as usize).map_or(&[], |ids| ids)
    }

    /// The keyword names of an entry.
    pub fn keyword_names(&self, entry: &Entry) -> BTreeSet<String> {
        self.keyword_ids_of(entry.keywords)
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
            internal_date: time_of(entry.internal_date),
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
        let sets: BTreeSet<u32> = self.messages.iter().map(|e| e.keywords).collect();
        let used: BTreeSet<u32> = sets
            .into_iter()
            .flat_map(|set| self.keyword_ids_of(set).iter().copied())
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
        self.forget_unused_keyword_sets();
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
        self.forget_unused_keyword_sets();
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
        self.forget_unused_keyword_sets();
    }

    /// Brings the table in line with a sync of the disk, logging every difference; a new
    /// UIDVALIDITY replaces the table (sessions notice and start over).
    pub fn absorb(&mut self, mailbox: &mut dyn Mailbox) -> Result<(), Error> {
        let (header, fresh) = self.read_messages(mailbox)?;
        if header.uidvalidity != self.uidvalidity {
            let log_end = self.log_end();
            self.log.clear();
            self.expunged_in_log = 0;
            self.log_start = log_end;
            self.highestmodseq = 1;
            self.set_header(header);
            self.messages = fresh;
            self.forget_unused_keyword_sets();
            return Ok(());
        }
        self.set_header(header);
        let old = std::mem::take(&mut self.messages);
        let mut old = old.into_iter().peekable();
        for entry in &fresh {
            while let Some(gone) = old.next_if(|e| e.uid < entry.uid) {
                self.push(Logged::Expunged(gone));
            }
            if let Some(was) = old.next_if(|e| e.uid == entry.uid) {
                if was.flags != entry.flags || was.keywords != entry.keywords {
                    self.push(Logged::Flags {
                        uid: entry.uid,
                        origin: 0,
                    });
                }
            }
        }
        for gone in old {
            self.push(Logged::Expunged(gone));
        }
        self.messages = fresh;
        self.forget_unused_keyword_sets();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maildir::Maildir;

    #[test]
    fn keyword_sets_no_message_has_any_more_are_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let mut mailbox = Maildir::new(dir.path());
        let uid = mailbox
            .append(
                &mut &b"Subject: x\r\n\r\nbody\r\n"[..],
                Flags::empty(),
                &BTreeSet::new(),
                None,
            )
            .unwrap();
        let mut table = Table::new(&mut mailbox).unwrap();
        let mut info = table.info(&table.messages[0]);
        // A client storing ever new keyword combinations on one message.
        for round in 0..2_000u32 {
            info.keywords = (0..8)
                .filter(|bit| round & (1 << bit) != 0)
                .map(|bit| format!("k{bit}"))
                .chain([format!("r{}", round % 3)])
                .collect();
            table.stored(std::slice::from_ref(&info), 1);
            assert!(table.keyword_sets.len() <= 2 + 64 + 1);
        }
        assert_eq!(table.messages[0].uid, uid);
        assert_eq!(table.keyword_names(&table.messages[0]), info.keywords);
    }
}
