//! One shared, in-memory view of each open mailbox per session thread ([`SharedMailbox`]),
//! and a session's own part of it ([`SessionView`]).
//!
//! Every session that selects a mailbox used to keep its own table of it and diff the whole
//! table after every change it heard of, so one change cost O(messages × sessions). Here each
//! thread keeps one table per mailbox (found through a registry keyed by the mailbox's path),
//! kept current by whichever session syncs first, and each change gets a number in the table's
//! change log. A session keeps only its sequence map and how far into the log it has reported,
//! so catching up costs O(changes since then).
//!
//! ```text
//!   SessionView ──Arc──► SharedMailbox ─┬─ Mutex ──► dyn Mailbox (disk work)
//!                                       └─ RwLock ─► Table { messages, keywords, log }
//!   (uids it told     (one per path per thread,        messages: the backend's mapped
//!    the client,       in the registry while a         index + what changed since, or
//!    log position)     session holds it)               a compact copy (mbox)
//! ```
//!
//! Where the backend keeps a memory-mapped index (maildir), the table is served from it: a
//! folder opened with a current index costs the table no heap per message, and the table
//! follows each index the backend writes. Keywords are kept as indices into the mailbox's
//! keyword table; front-ends see only [`MessageInfo`].

mod messages;
mod session;
mod table;

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::sync::{
    Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak,
};
use std::time::SystemTime;

use crate::mailbox::{Changes, Flags, Mailbox, Uid};
use crate::recent::RecentMark;
use crate::{Error, Store};

pub use session::{SessionView, Updates};
use table::Table;

/// A folder this large leaves megabytes of freed memory behind when it is listed or its
/// index written (the listing, the encoded index): worth handing back to the system at once.
const LARGE_FOLDER: usize = 10_000;

/// Returns freed heap memory to the system, so a large folder's open costs what the folder
/// keeps, not what reading it took (glibc keeps freed pages otherwise).
#[allow(unsafe_code)]
fn give_back_freed_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only releases free memory of the allocator; it has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// One message of an append that adds several at once (see [`SharedMailbox::append_all`]).
#[derive(Debug, Clone)]
pub struct Incoming<'a> {
    /// The message as the client sent it.
    pub data: &'a [u8],
    /// Its system flags.
    pub flags: Flags,
    /// Its keywords.
    pub keywords: BTreeSet<String>,
    /// Its internal date, when the client gave one.
    pub when: Option<SystemTime>,
}

/// The open mailboxes of this thread, by path; an entry lives while a session holds it.
type Registry = RefCell<HashMap<PathBuf, Weak<SharedMailbox>>>;

thread_local! {
    /// One registry per thread: a process serves its sessions on one thread per core (a
    /// worker process's one thread, the one-process server's session threads), and sessions
    /// of one mailbox on different threads keep a view each, kept in step through the disk as
    /// two processes' are, instead of making each thread wait for the other's disk work.
    static REGISTRY: Registry = Registry::default();
}

/// Locks a mutex even if a panicking thread held it: the table is consistent between calls.
fn lock<T: ?Sized>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Reads the table (any number of sessions at once).
fn read(table: &RwLock<Table>) -> RwLockReadGuard<'_, Table> {
    table.read().unwrap_or_else(PoisonError::into_inner)
}

/// Changes the table (briefly: readers wait meanwhile).
fn write(table: &RwLock<Table>) -> RwLockWriteGuard<'_, Table> {
    table.write().unwrap_or_else(PoisonError::into_inner)
}

/// One mailbox as this thread knows it, shared by every session of the thread that has it
/// open.
///
/// Two locks, always taken in this order: the backend's (disk work: syncs, writes, reading
/// messages and cached fields) and the table's (what every FETCH, SEARCH and catch-up reads,
/// message by message). Reading the table never waits for disk work of another session.
pub struct SharedMailbox {
    /// Where it lives (the registry key and the change-notification watch path).
    path: PathBuf,
    /// The one open [`Mailbox`] behind the table.
    mailbox: Mutex<Box<dyn Mailbox>>,
    /// The table that mirrors it.
    table: RwLock<Table>,
    /// Where the folder keeps which messages sessions have claimed as `\Recent`.
    recent: Option<RecentMark>,
    /// `(UIDVALIDITY, UID)`: every UID below this one is known to be claimed, so a session
    /// that would claim nothing more need not lock the mark file.
    claimed: Mutex<(u32, Uid)>,
}

impl SharedMailbox {
    /// This thread's view of folder `name` of `store`: the one already open, brought up to
    /// date, or a new one synced from disk.
    pub fn open(store: &Store, name: &str) -> Result<Arc<Self>, Error> {
        let mailbox = store.folders().open(name)?;
        let path = mailbox.watch_path().to_path_buf();
        let existing = REGISTRY.with_borrow(|r| r.get(&path).and_then(Weak::upgrade));
        if let Some(shared) = existing {
            shared.refresh()?;
            return Ok(shared);
        }
        // Synchronous from here to the insert: no other session of this thread runs between.
        let fresh = Self::build(mailbox, path.clone())?;
        REGISTRY.with_borrow_mut(|registry| {
            registry.retain(|_, weak| weak.strong_count() > 0);
            registry.insert(path, Arc::downgrade(&fresh));
        });
        Ok(fresh)
    }

    /// A view of a mailbox nobody on this thread has open yet.
    fn build(mut mailbox: Box<dyn Mailbox>, path: PathBuf) -> Result<Arc<Self>, Error> {
        // The first look takes in everything; whatever it reports is the same mailbox.
        mailbox.outside_changes(true)?;
        let table = Table::new(mailbox.as_mut())?;
        if table.messages.len() >= LARGE_FOLDER {
            give_back_freed_memory();
        }
        Ok(Arc::new(Self {
            path,
            recent: mailbox.recent_mark(),
            claimed: Mutex::new((0, 0)),
            mailbox: Mutex::new(mailbox),
            table: RwLock::new(table),
        }))
    }

    /// Takes in whatever changed on disk since the last look (other processes, deliveries).
    fn refresh(&self) -> Result<(), Error> {
        let mut mailbox = lock(&self.mailbox);
        self.take_in(mailbox.as_mut(), true)
    }

    /// Enters the backend's outside changes in the table: only the messages concerned when
    /// the backend can say which, else a comparison of the whole mailbox. `sync`: look at the
    /// disk first; without, take in what the backend learnt while making a change of ours.
    fn take_in(&self, mailbox: &mut dyn Mailbox, sync: bool) -> Result<(), Error> {
        // Whether the backend did O(messages) work (a listing, a new index): what it freed
        // is worth handing back for a large folder.
        let mut whole = false;
        match mailbox.outside_changes(sync)? {
            None => {}
            Some(Changes::Some(delta)) => {
                let mut table = write(&self.table);
                if delta.uidvalidity == table.uidvalidity {
                    table.apply(delta);
                } else {
                    table.absorb(mailbox)?;
                    whole = true;
                }
            }
            Some(Changes::All) => {
                write(&self.table).absorb(mailbox)?;
                whole = true;
            }
        }
        if let Some(highest) = mailbox.highestmodseq() {
            if read(&self.table).highestmodseq < highest {
                write(&self.table).highestmodseq = highest;
            }
        }
        let new_base = mailbox
            .mapped_index()
            .is_some_and(|index| !read(&self.table).messages.served_from(index));
        if new_base {
            write(&self.table).rebase(mailbox)?;
        }
        if (whole || new_base) && read(&self.table).messages.len() >= LARGE_FOLDER {
            give_back_freed_memory();
        }
        Ok(())
    }

    /// Where change notification for this mailbox watches.
    pub fn watch_path(&self) -> &Path {
        &self.path
    }

    /// UIDVALIDITY as of the last sync.
    pub fn uidvalidity(&self) -> u32 {
        read(&self.table).uidvalidity
    }

    /// HIGHESTMODSEQ as the table has it now (every session's writes included, reported to
    /// this session or not).
    pub fn highestmodseq(&self) -> u64 {
        read(&self.table).highestmodseq
    }

    /// Appends a message durably (APPEND, COPY into this mailbox); returns its UID.
    pub fn append(
        &self,
        message: &mut dyn Read,
        flags: Flags,
        keywords: &BTreeSet<String>,
        when: Option<SystemTime>,
    ) -> Result<Uid, Error> {
        // The message is written and fsynced before the mailbox is locked, where the backend
        // allows: other sessions of the mailbox do not wait for this one's disk.
        let staging = lock(&self.mailbox).staging();
        let staged = match staging {
            Some(staging) => Some(staging.write(message, when)?),
            None => None,
        };
        let mut mailbox = lock(&self.mailbox);
        let uid = match staged {
            Some(staged) => mailbox.append_staged(staged, flags, keywords)?,
            None => mailbox.append(message, flags, keywords, when)?,
        };
        self.enter_appended(mailbox.as_mut(), &[uid])?;
        Ok(uid)
    }

    /// Appends several messages, all or none (MULTIAPPEND, RFC 3502); returns their UIDs in
    /// order. Every message is written and fsynced before the first is added; one that cannot
    /// be added takes the ones added before it away again.
    pub fn append_all(&self, messages: &[Incoming<'_>]) -> Result<Vec<Uid>, Error> {
        let staging = lock(&self.mailbox).staging();
        let mut staged = Vec::with_capacity(messages.len());
        if let Some(staging) = staging {
            for m in messages {
                // A failure drops (and so removes) what was staged so far.
                staged.push(Some(staging.write(&mut { m.data }, m.when)?));
            }
        }
        let mut mailbox = lock(&self.mailbox);
        let mut uids = Vec::with_capacity(messages.len());
        for (i, m) in messages.iter().enumerate() {
            let added = match staged.get_mut(i).and_then(Option::take) {
                Some(file) => mailbox.append_staged(file, m.flags, &m.keywords),
                None => mailbox.append(&mut { m.data }, m.flags, &m.keywords, m.when),
            };
            match added {
                Ok(uid) => uids.push(uid),
                Err(e) => {
                    if let Err(undo) = mailbox.expunge(&uids) {
                        tracing::error!(
                            "{}: a failed multiple append left {} of its messages: {undo}",
                            self.path.display(),
                            uids.len()
                        );
                    }
                    self.take_in(mailbox.as_mut(), true)?;
                    return Err(e);
                }
            }
        }
        self.enter_appended(mailbox.as_mut(), &uids)?;
        Ok(uids)
    }

    /// Enters messages this process just appended in the table, and whatever else the
    /// backend learnt meanwhile.
    fn enter_appended(&self, mailbox: &mut dyn Mailbox, uids: &[Uid]) -> Result<(), Error> {
        for uid in uids {
            if let Some(info) = mailbox.message_info(*uid)? {
                write(&self.table).insert(&info);
            }
        }
        self.take_in(mailbox, false)
    }

    /// Claims for the caller every message below `uidnext` that no session has had as
    /// `\Recent`; returns the first UID claimed (nothing was when it is `uidnext` or more).
    pub fn claim_recent(&self, uidvalidity: u32, uidnext: Uid) -> Result<Uid, Error> {
        let Some(mark) = &self.recent else {
            return Ok(uidnext);
        };
        let mut claimed = lock(&self.claimed);
        if claimed.0 == uidvalidity && claimed.1 >= uidnext {
            return Ok(uidnext);
        }
        let first = mark.claim(uidvalidity, uidnext)?;
        *claimed = (uidvalidity, first.max(uidnext));
        Ok(first)
    }

    /// The first UID no session has claimed as `\Recent` (for a read-only look).
    pub fn first_unclaimed(&self, uidvalidity: u32) -> Uid {
        self.recent
            .as_ref()
            .map_or(Uid::MAX, |mark| mark.first_unclaimed(uidvalidity))
    }

    /// The backend, for reading messages and their cached fields. Changes go through
    /// [`SessionView`], so the table and its log see them.
    pub fn mailbox(&self) -> MailboxGuard<'_> {
        MailboxGuard(lock(&self.mailbox))
    }
}

/// The locked backend of a [`SharedMailbox`]; other sessions of the mailbox wait while it is
/// held, so hold it for one call.
pub struct MailboxGuard<'a>(MutexGuard<'a, Box<dyn Mailbox>>);

impl Deref for MailboxGuard<'_> {
    type Target = dyn Mailbox;

    fn deref(&self) -> &Self::Target {
        self.0.as_ref()
    }
}

impl DerefMut for MailboxGuard<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        self.0.as_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mailbox::FlagChange;
    use crate::{MailLocation, UserVars};

    fn store(dir: &Path) -> Store {
        let location = MailLocation::parse(&format!("maildir:{}", dir.display())).unwrap();
        let vars = UserVars {
            user: "alice".into(),
            home: Some(dir.to_path_buf()),
        };
        Store::open(&location, &vars).unwrap()
    }

    fn served(view: &SessionView) -> (bool, usize) {
        read(&view.shared().table).messages.served()
    }

    fn keywords(words: &[&str]) -> BTreeSet<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn the_table_is_served_from_the_mapped_index_and_follows_each_index_written() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = store(dir.path());
        for i in 1..=200 {
            let text = format!("Subject: {i}\r\n\r\nbody {i}\r\n");
            store.append_to_inbox(&mut text.as_bytes()).unwrap();
        }
        let mut a = SessionView::open(&store, "INBOX").unwrap();
        // The deliveries were journaled since the index was written: they are kept beside it.
        assert_eq!(served(&a), (true, 200));

        // A keyword the folder did not have: the backend writes a new index at once.
        a.store(&[7], FlagChange::Add, Flags::FLAGGED, &keywords(&["$Work"]))
            .unwrap();
        assert_eq!(served(&a), (true, 0), "rebased onto the new index");
        let mut b = SessionView::open(&store, "INBOX").unwrap();
        assert!(Arc::ptr_eq(a.shared(), b.shared()));
        assert_eq!(b.info(6).keywords, keywords(&["$Work"]));
        // Known keywords and flags: journaled, kept beside the map until the next index.
        a.store(
            &[9, 11],
            FlagChange::Add,
            Flags::SEEN,
            &keywords(&["$Work"]),
        )
        .unwrap();
        a.expunge(&[3]).unwrap();
        let uid = a
            .shared()
            .append(
                &mut &b"Subject: new\r\n\r\nnew\r\n"[..],
                Flags::DRAFT,
                &keywords(&["$Work"]),
                None,
            )
            .unwrap();
        assert!(served(&a).1 >= 3, "{:?}", served(&a));

        let updates = b.catch_up().unwrap();
        assert_eq!(updates.expunged, [(3, 3)]);
        assert_eq!(updates.exists, Some(200));
        let changed: Vec<(u32, Flags, BTreeSet<String>)> = updates
            .flags
            .iter()
            .map(|(seq, m)| (*seq, m.flags, m.keywords.clone()))
            .collect();
        assert_eq!(
            changed,
            [
                (8, Flags::SEEN, keywords(&["$Work"])),
                (10, Flags::SEEN, keywords(&["$Work"])),
            ]
        );
        // Served from the map or from the changes, every message reads the same.
        let seen = |view: &SessionView| -> Vec<(Uid, Flags, BTreeSet<String>, u64)> {
            (0..view.len())
                .map(|i| view.info(i))
                .map(|m| (m.uid, m.flags, m.keywords, m.size))
                .collect()
        };
        let before = seen(&b);
        assert_eq!(before.len(), 200);
        assert_eq!(before[199].0, uid);
        assert_eq!(before[199].1, Flags::DRAFT);

        // Another new keyword: a new index, the changes beside the map dropped.
        a.store(
            &[uid],
            FlagChange::Add,
            Flags::empty(),
            &keywords(&["$Later"]),
        )
        .unwrap();
        assert_eq!(served(&a), (true, 0));
        b.catch_up().unwrap();
        let mut expected = before;
        expected[199].2.insert("$Later".into());
        assert_eq!(seen(&b), expected);
        assert_eq!(b.keywords_in_use(), keywords(&["$Work", "$Later"]));
    }
}
