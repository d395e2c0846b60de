//! A session's own part of a shared mailbox: the UIDs it has told its client about (its
//! sequence map) and how far into the shared change log it has reported.

use std::collections::BTreeSet;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use super::table::{Logged, Table};
use super::{lock, read, write, MailboxGuard, SharedMailbox};
use crate::mailbox::{FlagChange, Flags, MessageInfo, Uid};
use crate::{Error, Store};

/// Numbers sessions, so a session's own flag changes are not reported back to it.
static NEXT_SESSION: AtomicU64 = AtomicU64::new(1);

/// What happened since a session last caught up, in the order to report it.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Updates {
    /// The mailbox was rebuilt under a new UIDVALIDITY: nothing the client knows holds.
    pub rebuilt: bool,
    /// The keywords of every message whose flags changed or that arrived (to tell whether a
    /// new FLAGS response is due).
    pub keywords: BTreeSet<String>,
    /// Expunged messages as `(sequence number, UID)`, highest first, so each number is right
    /// when it is sent.
    pub expunged: Vec<(u32, Uid)>,
    /// Messages whose flags changed, as `(sequence number, now)`, in sequence order.
    pub flags: Vec<(u32, MessageInfo)>,
    /// The new message count, when messages arrived.
    pub exists: Option<u32>,
}

/// One session's view of a shared mailbox.
pub struct SessionView {
    shared: Arc<SharedMailbox>,
    /// This session's number in the change log.
    id: u64,
    /// The UIDs the client knows, ascending: sequence number = position + 1.
    uids: Vec<Uid>,
    /// The change log number this session has reported up to.
    position: u64,
    uidvalidity: u32,
    uidnext: Uid,
    highestmodseq: u64,
    /// The UIDs that are `\Recent` in this session, as half-open ranges, ascending: what it
    /// claimed (or, read-only, saw unclaimed).
    recent: Vec<(Uid, Uid)>,
}

impl SessionView {
    /// Opens folder `name` for a session: every message present is known to the client.
    pub fn open(store: &Store, name: &str) -> Result<Self, Error> {
        let shared = SharedMailbox::open(store, name)?;
        let table = read(&shared.table);
        let mut uids = Vec::with_capacity(table.messages.len());
        uids.extend(table.messages.iter().map(|e| e.uid));
        let view = Self {
            shared: Arc::clone(&shared),
            id: NEXT_SESSION.fetch_add(1, Ordering::Relaxed),
            uids,
            position: table.log_end(),
            uidvalidity: table.uidvalidity,
            uidnext: table.uidnext,
            highestmodseq: table.highestmodseq.max(1),
            recent: Vec::new(),
        };
        drop(table);
        Ok(view)
    }

    /// The mailbox this view is of.
    pub fn shared(&self) -> &Arc<SharedMailbox> {
        &self.shared
    }

    /// The backend, for reading messages (see [`SharedMailbox::mailbox`]).
    pub fn mailbox(&self) -> MailboxGuard<'_> {
        self.shared.mailbox()
    }

    /// How many messages the client knows.
    pub fn len(&self) -> usize {
        self.uids.len()
    }

    /// Whether the client knows no message.
    pub fn is_empty(&self) -> bool {
        self.uids.is_empty()
    }

    /// The UIDs the client knows, in sequence order.
    pub fn uids(&self) -> &[Uid] {
        &self.uids
    }

    /// The UID of message `i` (sequence number - 1).
    pub fn uid(&self, i: usize) -> Uid {
        self.uids.get(i).copied().unwrap_or(0)
    }

    /// The position (sequence number - 1) of `uid`, if the client knows it.
    pub fn index_of(&self, uid: Uid) -> Option<usize> {
        self.uids.binary_search(&uid).ok()
    }

    /// UIDVALIDITY as last reported.
    pub fn uidvalidity(&self) -> u32 {
        self.uidvalidity
    }

    /// UIDNEXT as last reported.
    pub fn uidnext(&self) -> Uid {
        self.uidnext
    }

    /// HIGHESTMODSEQ as last reported.
    pub fn highestmodseq(&self) -> u64 {
        self.highestmodseq
    }

    /// Takes the messages the client knows that no session has had as `\Recent` yet: claims
    /// them, or, `read_only` (EXAMINE), only looks (they stay recent for the next session).
    pub fn take_recent(&mut self, read_only: bool) -> Result<(), Error> {
        let upto = self.uids.last().map_or(0, |last| last.saturating_add(1));
        if read_only {
            let first = self.shared.first_unclaimed(self.uidvalidity);
            self.recent.clear();
            if first < upto {
                self.recent.push((first, upto));
            }
            return Ok(());
        }
        let first = self
            .shared
            .claim_recent(self.uidvalidity, upto)?
            .max(self.recent.last().map_or(0, |r| r.1));
        if first < upto {
            match self.recent.last_mut() {
                Some(last) if last.1 == first => last.1 = upto,
                _ => self.recent.push((first, upto)),
            }
        }
        Ok(())
    }

    /// A mark that moves whenever the shared mailbox changes (a flag change, an expunge, an
    /// arrival, by anyone): whether results derived from it need another look.
    pub fn change_mark(&self) -> (u64, Uid) {
        let table = read(&self.shared.table);
        (table.log_end(), table.uidnext)
    }

    /// Whether message `uid` is `\Recent` in this session.
    pub fn is_recent(&self, uid: Uid) -> bool {
        let after = self.recent.partition_point(|r| r.0 <= uid);
        after > 0 && uid < self.recent[after - 1].1
    }

    /// How many of the messages the client knows are `\Recent` in this session.
    pub fn recent_count(&self) -> usize {
        self.recent
            .iter()
            .map(|&(from, to)| {
                self.uids.partition_point(|u| *u < to) - self.uids.partition_point(|u| *u < from)
            })
            .sum()
    }

    /// Message `i` as it is now; a message expunged by another session that this one may not
    /// report yet keeps its last state (or, long gone, an empty one: reading it fails).
    pub fn info(&self, i: usize) -> MessageInfo {
        let uid = self.uid(i);
        let table = read(&self.shared.table);
        match table.find(uid) {
            Some(entry) => table.info(&entry),
            None => MessageInfo {
                uid,
                flags: Flags::empty(),
                keywords: BTreeSet::new(),
                size: 0,
                internal_date: SystemTime::UNIX_EPOCH,
                modseq: 1,
            },
        }
    }

    /// The system flags of message `i` (none when it is long gone).
    pub fn flags(&self, i: usize) -> Flags {
        read(&self.shared.table)
            .find(self.uid(i))
            .map_or(Flags::empty(), |e| e.flags)
    }

    /// The MODSEQ of message `i` (0 when it is long gone).
    pub fn modseq(&self, i: usize) -> u64 {
        read(&self.shared.table)
            .find(self.uid(i))
            .map_or(0, |e| e.modseq)
    }

    /// The keywords in use by some message now (for FLAGS).
    pub fn keywords_in_use(&self) -> BTreeSet<String> {
        read(&self.shared.table).keywords_in_use()
    }

    /// The position of the first message the client knows without `\Seen`.
    pub fn first_unseen(&self) -> Option<usize> {
        let table = read(&self.shared.table);
        // Both ascending: one walk, not a lookup per message.
        let mut present = table.messages.iter().peekable();
        self.uids.iter().position(|uid| {
            while present.next_if(|e| e.uid < *uid).is_some() {}
            let entry = match present.peek() {
                Some(e) if e.uid == *uid => Some(*e),
                _ => table.find(*uid),
            };
            entry.is_some_and(|e| !e.flags.contains(Flags::SEEN))
        })
    }

    /// The messages whose MODSEQ is above `modseq`, as `(sequence number, now)` (QRESYNC).
    pub fn changed_since(&self, modseq: u64) -> Vec<(u32, MessageInfo)> {
        let table = read(&self.shared.table);
        self.uids
            .iter()
            .enumerate()
            .filter_map(|(i, uid)| Some((i, table.find(*uid)?)))
            .filter(|(_, e)| e.modseq > modseq)
            .map(|(i, e)| (i as u32 + 1, table.info(&e)))
            .collect()
    }

    /// Syncs with the disk and says what changed since this session last caught up, and
    /// takes it as reported: O(changes) while the log reaches back that far.
    pub fn catch_up(&mut self) -> Result<Updates, Error> {
        let shared = Arc::clone(&self.shared);
        shared.refresh()?;
        let table = read(&shared.table);
        let table = &*table;
        let rebuilt = table.uidvalidity != self.uidvalidity;
        let (gone, changed) = if rebuilt || self.position < table.log_start {
            self.compare_all(table)
        } else {
            self.read_log(table)
        };
        if rebuilt {
            self.recent.clear();
        }
        let mut updates = Updates {
            rebuilt,
            ..Updates::default()
        };
        for uid in gone.iter().rev() {
            if let Ok(i) = self.uids.binary_search(uid) {
                self.uids.remove(i);
                updates.expunged.push((i as u32 + 1, *uid));
            }
        }
        for uid in changed {
            if let (Some(i), Some(entry)) = (self.index_of(uid), table.find(uid)) {
                updates.keywords.extend(table.keyword_names(&entry));
                updates.flags.push((i as u32 + 1, table.info(&entry)));
            }
        }
        self.take_arrivals(table, &mut updates);
        self.position = table.log_end();
        self.uidvalidity = table.uidvalidity;
        self.uidnext = table.uidnext;
        self.highestmodseq = table.highestmodseq.max(1);
        Ok(updates)
    }

    /// The UIDs expunged and flag-changed since `position`, from the log; this session's own
    /// flag changes were reported when made.
    fn read_log(&self, table: &Table) -> (BTreeSet<Uid>, BTreeSet<Uid>) {
        let mut gone = BTreeSet::new();
        let mut changed = BTreeSet::new();
        let skip = (self.position - table.log_start) as usize;
        for change in table.log.range(skip.min(table.log.len())..) {
            match change {
                Logged::Flags { uid, origin } if *origin == self.id => changed.remove(uid),
                Logged::Flags { uid, .. } => changed.insert(*uid),
                Logged::Expunged(entry) => gone.insert(entry.uid),
            };
        }
        (gone, changed)
    }

    /// The slow way, when the log no longer reaches back far enough: every known UID not in
    /// the table is gone, every message changed since the last HIGHESTMODSEQ is reported.
    fn compare_all(&self, table: &Table) -> (BTreeSet<Uid>, BTreeSet<Uid>) {
        let gone = self
            .uids
            .iter()
            .filter(|uid| !table.messages.contains(**uid))
            .copied()
            .collect();
        let changed = table
            .messages
            .iter()
            .filter(|e| e.modseq > self.highestmodseq)
            .map(|e| e.uid)
            .collect();
        (gone, changed)
    }

    /// Adds the messages above the highest UID known, for EXISTS.
    fn take_arrivals(&mut self, table: &Table, updates: &mut Updates) {
        let last = self.uids.last().copied().unwrap_or(0);
        let before = self.uids.len();
        for entry in table.messages.above(last) {
            updates.keywords.extend(table.keyword_names(&entry));
            self.uids.push(entry.uid);
        }
        if self.uids.len() > before {
            updates.exists = Some(self.uids.len() as u32);
        }
    }

    /// Takes expunged messages out of the sequence map (after this session expunged them or
    /// reported their expunge); returns `(sequence number, UID)`, highest first.
    pub fn forget(&mut self, uids: &[Uid]) -> Vec<(u32, Uid)> {
        let gone: BTreeSet<Uid> = uids.iter().copied().collect();
        let mut removed = Vec::new();
        for uid in gone.iter().rev() {
            if let Ok(i) = self.uids.binary_search(uid) {
                self.uids.remove(i);
                removed.push((i as u32 + 1, *uid));
            }
        }
        removed
    }

    /// Changes flags and keywords (STORE, and `\Seen` set by reading); returns the messages'
    /// new state. Other sessions hear of it when they next catch up; this one does not.
    pub fn store(
        &mut self,
        uids: &[Uid],
        change: FlagChange,
        flags: Flags,
        keywords: &BTreeSet<String>,
    ) -> Result<Vec<MessageInfo>, Error> {
        let mut mailbox = lock(&self.shared.mailbox);
        let changed = mailbox.store(uids, change, flags, keywords)?;
        write(&self.shared.table).stored(&changed, self.id);
        self.shared.take_in(mailbox.as_mut(), false)?;
        Ok(changed)
    }

    /// Removes messages for good; returns the UIDs removed. The caller reports them (and
    /// takes them out of the sequence map with [`SessionView::forget`]).
    pub fn expunge(&mut self, uids: &[Uid]) -> Result<Vec<Uid>, Error> {
        let mut mailbox = lock(&self.shared.mailbox);
        let removed = mailbox.expunge(uids)?;
        write(&self.shared.table).remove(&removed);
        self.shared.take_in(mailbox.as_mut(), false)?;
        Ok(removed)
    }

    /// Copies messages (bytes, flags, keywords, internal date) into `dest`, in UID order;
    /// returns `(source UID, new UID)` pairs for COPYUID. `dest` may be this very mailbox.
    pub fn copy_to(&self, uids: &[Uid], dest: &SharedMailbox) -> Result<Vec<(Uid, Uid)>, Error> {
        let wanted: BTreeSet<Uid> = uids.iter().copied().collect();
        let mut pairs = Vec::new();
        for uid in wanted {
            let (info, mut reader) = {
                let info = {
                    let table = read(&self.shared.table);
                    let Some(entry) = table.messages.get(uid) else {
                        continue;
                    };
                    table.info(&entry)
                };
                (info, lock(&self.shared.mailbox).open_message(uid)?)
            };
            let reader: &mut dyn Read = &mut reader;
            let new = dest.append(reader, info.flags, &info.keywords, Some(info.internal_date))?;
            pairs.push((uid, new));
        }
        Ok(pairs)
    }

    /// Moves messages into `dest`: copy, then expunge here. A crash in between leaves the
    /// message in both places, never in neither.
    pub fn move_to(
        &mut self,
        uids: &[Uid],
        dest: &SharedMailbox,
    ) -> Result<Vec<(Uid, Uid)>, Error> {
        let pairs = self.copy_to(uids, dest)?;
        let moved: Vec<Uid> = pairs.iter().map(|(from, _)| *from).collect();
        self.expunge(&moved)?;
        Ok(pairs)
    }
}
