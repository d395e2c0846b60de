//! The shared table of one mailbox: its messages with keywords as indices into the mailbox's
//! keyword table, and the numbered log of changes sessions catch up from.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::{Duration, SystemTime};

pub(super) use super::messages::Entry;
use super::messages::Messages;
use crate::mailbox::{Delta, Mailbox, MappedMessages, MessageInfo, SyncHeader, Uid};
use crate::Error;

/// How many changes the log keeps; a session further behind compares its whole sequence map
/// once instead.
const LOG_LIMIT: usize = 16_384;

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
    /// The messages, served from the backend's mapped index where it has a current one.
    pub messages: Messages,
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
    /// The table of a mailbox the caller just synced: served from the backend's mapped
    /// index when it lists the messages as they are, else copied message by message as the
    /// backend hands them over (never collected in between).
    pub fn new(mailbox: &mut dyn Mailbox) -> Result<Self, Error> {
        let mut table = Self {
            uidvalidity: 0,
            uidnext: 1,
            highestmodseq: 1,
            keywords: Vec::new(),
            keyword_ids: HashMap::new(),
            keyword_sets: vec![Box::default()],
            keyword_set_ids: HashMap::from([(Box::default(), 0)]),
            messages: Messages::default(),
            log: VecDeque::new(),
            log_start: 0,
            expunged_in_log: 0,
        };
        if let Some(mapped) = mailbox.mapped_messages() {
            table.set_header(mapped.header);
            table.messages = table.served_from(mapped, mailbox)?;
            table.forget_unused_keyword_sets();
            return Ok(table);
        }
        let (header, messages) = table.read_messages(mailbox)?;
        table.set_header(header);
        table.messages = Messages::owned(messages);
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

    /// Serves the messages from the backend's mapped index once it is based on a new one
    /// (it wrote one, or loaded one another process wrote): the changes kept beside the old
    /// base, or the whole copy, are dropped. The backend and the table change together, under
    /// the backend's lock, so they list the same messages. Costs a scan of the records'
    /// keyword bits, O(messages) once per index.
    pub fn rebase(&mut self, mailbox: &mut dyn Mailbox) -> Result<(), Error> {
        let Some(mapped) = mailbox.mapped_messages() else {
            return Ok(());
        };
        if mapped.header.uidvalidity != self.uidvalidity {
            return Ok(());
        }
        let messages = self.served_from(mapped, mailbox)?;
        if messages.len() == self.messages.len() {
            self.messages = messages;
            self.forget_unused_keyword_sets();
        }
        Ok(())
    }

    /// The messages served from `mapped`, each changed one as the backend has it now.
    fn served_from(
        &mut self,
        mapped: MappedMessages,
        mailbox: &mut dyn Mailbox,
    ) -> Result<Messages, Error> {
        let mut sets: HashMap<u32, u32> = HashMap::new();
        for record in mapped.index.iter() {
            if let std::collections::hash_map::Entry::Vacant(vacant) = sets.entry(record.keywords) {
                let names: BTreeSet<String> = (0..32)
                    .filter(|bit| record.keywords & (1 << bit) != 0)
                    .filter_map(|bit| mapped.keyword_names.get(bit)?.clone())
                    .collect();
                vacant.insert(self.keyword_set(&names));
            }
        }
        let mut messages = Messages::mapped(mapped.index, sets);
        for uid in mapped.changed {
            match mailbox.message_info(uid)? {
                Some(info) => messages.put(self.entry(&info)),
                None => {
                    messages.remove(uid);
                }
            }
        }
        Ok(messages)
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
        for set in self.messages.keyword_sets_mut() {
            renumber(set);
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

    /// A message present, or one expunged whose record the log still holds.
    pub fn find(&self, uid: Uid) -> Option<Entry> {
        self.messages.get(uid).or_else(|| {
            self.log.iter().rev().find_map(|c| match c {
                Logged::Expunged(e) if e.uid == uid => Some(*e),
                _ => None,
            })
        })
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
        self.messages.put(entry);
        self.forget_unused_keyword_sets();
    }

    /// Records the new state of messages session `origin` changed; a message whose flags and
    /// keywords stayed the same gets no log entry (its MODSEQ is still taken).
    pub fn stored(&mut self, changed: &[MessageInfo], origin: u64) {
        for info in changed {
            let entry = self.entry(info);
            self.highestmodseq = self.highestmodseq.max(info.modseq);
            if let Some(old) = self.messages.get(info.uid) {
                self.replace(old, entry, origin);
            }
        }
        self.forget_unused_keyword_sets();
    }

    /// Puts `entry` in place of `old`, logging a flag change by `origin` (0: from disk) when
    /// its flags or keywords differ.
    fn replace(&mut self, old: Entry, entry: Entry, origin: u64) {
        if old.flags != entry.flags || old.keywords != entry.keywords {
            let uid = entry.uid;
            self.push(Logged::Flags { uid, origin });
        }
        self.messages.put(entry);
    }

    /// Takes messages out of the table, logging each.
    pub fn remove(&mut self, uids: &[Uid]) {
        for uid in uids {
            if let Some(entry) = self.messages.remove(*uid) {
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
            match self.messages.get(info.uid) {
                Some(old) => self.replace(old, entry, 0),
                None => self.messages.put(entry),
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
            self.messages = Messages::owned(fresh);
            self.forget_unused_keyword_sets();
            return Ok(());
        }
        self.set_header(header);
        let mut changes = Vec::new();
        let mut old = self.messages.iter().peekable();
        for entry in &fresh {
            while let Some(gone) = old.next_if(|e| e.uid < entry.uid) {
                changes.push(Logged::Expunged(gone));
            }
            if let Some(was) = old.next_if(|e| e.uid == entry.uid) {
                if was.flags != entry.flags || was.keywords != entry.keywords {
                    changes.push(Logged::Flags {
                        uid: entry.uid,
                        origin: 0,
                    });
                }
            }
        }
        changes.extend(old.map(Logged::Expunged));
        changes.into_iter().for_each(|change| self.push(change));
        self.messages = Messages::owned(fresh);
        self.forget_unused_keyword_sets();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mailbox::Flags;
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
        let mut info = table.info(&table.messages.get(uid).unwrap());
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
        let entry = table.messages.get(uid).unwrap();
        assert_eq!(table.keyword_names(&entry), info.keywords);
    }
}
