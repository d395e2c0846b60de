//! The one mailbox API every front-end uses, whatever the format on disk.

use std::collections::BTreeSet;
use std::io::{Read, Seek, SeekFrom};
use std::time::SystemTime;

use crate::cache::{self, FieldCache};
use crate::staging::{Staged, Staging};
use crate::Error;

/// An IMAP UID: unique within a mailbox for one UIDVALIDITY, never reused.
pub type Uid = u32;

/// The system flags (RFC 3501 2.3.2), as a bit set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Flags(u8);

impl Flags {
    /// `\Seen`, maildir `S`.
    pub const SEEN: Flags = Flags(1);
    /// `\Answered`, maildir `R`.
    pub const ANSWERED: Flags = Flags(2);
    /// `\Flagged`, maildir `F`.
    pub const FLAGGED: Flags = Flags(4);
    /// `\Deleted`, maildir `T`.
    pub const DELETED: Flags = Flags(8);
    /// `\Draft`, maildir `D`.
    pub const DRAFT: Flags = Flags(16);
    /// All five system flags (for FLAGS and PERMANENTFLAGS responses).
    pub const ALL_SYSTEM: Flags = Flags(0x1f);
    /// Every system flag with its IMAP name and maildir letter, in maildir letter order.
    pub const ALL: [(Flags, &'static str, char); 5] = [
        (Flags::DRAFT, "\\Draft", 'D'),
        (Flags::FLAGGED, "\\Flagged", 'F'),
        (Flags::ANSWERED, "\\Answered", 'R'),
        (Flags::SEEN, "\\Seen", 'S'),
        (Flags::DELETED, "\\Deleted", 'T'),
    ];

    /// No flags.
    pub const fn empty() -> Flags {
        Flags(0)
    }

    /// Whether every flag of `other` is set.
    pub fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// The union.
    pub fn union(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }

    /// The flags of `self` not in `other`.
    pub fn difference(self, other: Flags) -> Flags {
        Flags(self.0 & !other.0)
    }

    /// The raw bits, for index records.
    pub fn bits(self) -> u8 {
        self.0
    }

    /// Rebuilds flags from index bits, ignoring unknown ones.
    pub fn from_bits(bits: u8) -> Flags {
        Flags(bits & 0x1f)
    }

    /// The IMAP flag for a name such as `\Seen` (case-insensitive).
    pub fn from_imap(name: &str) -> Option<Flags> {
        Self::ALL
            .iter()
            .find(|(_, n, _)| n.eq_ignore_ascii_case(name))
            .map(|(f, _, _)| *f)
    }

    /// The IMAP names of the flags set.
    pub fn imap_names(self) -> impl Iterator<Item = &'static str> {
        Self::ALL
            .into_iter()
            .filter(move |(f, _, _)| self.contains(*f))
            .map(|(_, n, _)| n)
    }
}

/// What a session knows about one message without opening it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageInfo {
    /// Its UID.
    pub uid: Uid,
    /// System flags.
    pub flags: Flags,
    /// Keywords (user-defined flags such as `$Junk` or `NonJunk`).
    pub keywords: BTreeSet<String>,
    /// Size in bytes as stored (RFC822.SIZE once line endings are normalised by the reader).
    pub size: u64,
    /// INTERNALDATE.
    pub internal_date: SystemTime,
    /// MODSEQ (RFC 7162): rises whenever the message's flags change.
    pub modseq: u64,
}

/// A consistent view of a mailbox at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// UIDVALIDITY: changes only when UIDs could not be kept.
    pub uidvalidity: u32,
    /// The UID the next message will get.
    pub uidnext: Uid,
    /// The messages, in ascending UID order (sequence number = position + 1).
    pub messages: Vec<MessageInfo>,
    /// HIGHESTMODSEQ: at least 1, never lower than any MODSEQ handed out before.
    pub highestmodseq: u64,
}

/// What a sync says of the mailbox as a whole: a [`Snapshot`] without its messages, which
/// [`Mailbox::sync_each`] hands over one by one instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncHeader {
    /// UIDVALIDITY.
    pub uidvalidity: u32,
    /// The UID the next message will get.
    pub uidnext: Uid,
    /// HIGHESTMODSEQ: at least 1.
    pub highestmodseq: u64,
}

impl Snapshot {
    /// The snapshot of a sync that said `header` and found `messages` (in UID order).
    pub fn of(header: SyncHeader, messages: Vec<MessageInfo>) -> Self {
        Self {
            uidvalidity: header.uidvalidity,
            uidnext: header.uidnext,
            messages,
            highestmodseq: header.highestmodseq,
        }
    }

    /// Its header.
    pub fn header(&self) -> SyncHeader {
        SyncHeader {
            uidvalidity: self.uidvalidity,
            uidnext: self.uidnext,
            highestmodseq: self.highestmodseq,
        }
    }

    /// The messages with these UIDs (what STORE and friends answer with).
    pub fn only(self, uids: &[Uid]) -> Vec<MessageInfo> {
        let wanted: BTreeSet<Uid> = uids.iter().copied().collect();
        self.messages
            .into_iter()
            .filter(|m| wanted.contains(&m.uid))
            .collect()
    }
}

/// A backend's messages as a memory-mapped index file lists them plus the messages that
/// changed since it was written, so the shared view serves its table from the map instead of
/// copying every message into the heap.
#[derive(Debug, Clone)]
pub struct MappedMessages {
    /// The index the backend's messages are based on.
    pub index: std::sync::Arc<crate::index::Mapped>,
    /// The keyword each of the records' keyword bits stands for (bit `i`: `names[i]`).
    pub keyword_names: Vec<Option<String>>,
    /// What the backend's last sync established about the folder.
    pub header: SyncHeader,
    /// The messages that differ from the index: changed, added or gone since (ask
    /// [`Mailbox::message_info`] for each).
    pub changed: Vec<Uid>,
}

/// What a mailbox took in from elsewhere, for the shared view to enter and log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changes {
    /// Only these messages changed.
    Some(Delta),
    /// Anything may have changed: compare the whole mailbox ([`Mailbox::sync_each`]).
    All,
}

/// The messages that changed, arrived or left, so taking them in costs O(changes).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Delta {
    /// UIDVALIDITY the changes belong to (a new one always comes as [`Changes::All`]).
    pub uidvalidity: u32,
    /// UIDNEXT now.
    pub uidnext: Uid,
    /// HIGHESTMODSEQ now.
    pub highestmodseq: u64,
    /// Messages that arrived or whose flags changed, as they are now, in UID order.
    pub present: Vec<MessageInfo>,
    /// Messages that left.
    pub removed: Vec<Uid>,
}

/// A MODSEQ above `previous` and above every one handed out before a lost index: microseconds
/// of the clock, so a rebuilt index can only move forward (clients then resync their flags).
pub fn next_modseq(previous: u64) -> u64 {
    let now = SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    now.max(previous + 1)
}

/// Message count and total size of a folder (POP3 STAT, IMAP STATUS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FolderStats {
    /// Number of messages.
    pub messages: usize,
    /// Sum of their sizes in bytes.
    pub bytes: u64,
}

/// A message's bytes, readable and seekable without loading it whole.
pub trait MessageReader: Read + Seek + Send {}
impl<T: Read + Seek + Send> MessageReader for T {}

/// How a flag update applies (IMAP STORE FLAGS / +FLAGS / -FLAGS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagChange {
    /// Replace the flags.
    Set,
    /// Add to them.
    Add,
    /// Remove from them.
    Remove,
}

impl FlagChange {
    /// The flags and keywords (names, or maildir letters) after this change.
    pub fn apply<K: Ord + Clone>(
        self,
        (flags, keywords): (Flags, &BTreeSet<K>),
        (change_flags, change_keywords): (Flags, &BTreeSet<K>),
    ) -> (Flags, BTreeSet<K>) {
        match self {
            Self::Set => (change_flags, change_keywords.clone()),
            Self::Add => (
                flags.union(change_flags),
                keywords.union(change_keywords).cloned().collect(),
            ),
            Self::Remove => (
                flags.difference(change_flags),
                keywords.difference(change_keywords).cloned().collect(),
            ),
        }
    }
}

/// One open mailbox (a folder), whatever its format.
pub trait Mailbox: Send {
    /// Brings the view up to date with the disk (new deliveries, other sessions' changes,
    /// files that appeared or vanished) and returns it.
    fn sync(&mut self) -> Result<Snapshot, Error>;

    /// [`Mailbox::sync`] without collecting the messages: each is handed to `each` in UID
    /// order, so a caller that keeps its own compact table never holds both.
    fn sync_each(&mut self, each: &mut dyn FnMut(MessageInfo)) -> Result<SyncHeader, Error> {
        let snapshot = self.sync()?;
        let header = snapshot.header();
        snapshot.messages.into_iter().for_each(each);
        Ok(header)
    }

    /// Hands over what this mailbox took in from elsewhere (other processes, deliveries, other
    /// programs) since the last call: `None` when nothing. With `sync` it first looks at the
    /// disk (the shared view's check before each response, a few stats when nothing moved);
    /// without, it reports only what the syncs inside a write just made took in. Backends that
    /// cannot tell what changed hand over the whole mailbox to compare.
    fn outside_changes(&mut self, sync: bool) -> Result<Option<Changes>, Error> {
        // The comparison syncs (`sync_each`).
        let _ = sync;
        Ok(Some(Changes::All))
    }

    /// How many messages the last sync found, if the backend knows without counting: room
    /// to reserve before [`Mailbox::sync_each`] hands them over.
    fn count_hint(&self) -> usize {
        0
    }

    /// One message as the last sync knows it (the shared view enters an append with it).
    fn message_info(&mut self, uid: Uid) -> Result<Option<MessageInfo>, Error> {
        Ok(self.sync()?.messages.into_iter().find(|m| m.uid == uid))
    }

    /// Opens one message for reading.
    fn open_message(&self, uid: Uid) -> Result<Box<dyn MessageReader>, Error>;

    /// Appends a message durably; returns its UID.
    fn append(
        &mut self,
        message: &mut dyn Read,
        flags: Flags,
        keywords: &BTreeSet<String>,
        internal_date: Option<SystemTime>,
    ) -> Result<Uid, Error>;

    /// Where a message for this mailbox may be written ahead of its append without holding
    /// the mailbox (see [`crate::staging`]); `None` when [`Mailbox::append`] must write it
    /// itself (an mbox appends in place).
    fn staging(&self) -> Option<Staging> {
        None
    }

    /// Appends a message written with this mailbox's [`Mailbox::staging`]; returns its UID.
    fn append_staged(
        &mut self,
        staged: Staged,
        flags: Flags,
        keywords: &BTreeSet<String>,
    ) -> Result<Uid, Error> {
        let _ = (staged, flags, keywords);
        Err(Error::Unsupported("staged append"))
    }

    /// Changes the flags and keywords of some messages; returns their new state.
    fn store(
        &mut self,
        uids: &[Uid],
        change: FlagChange,
        flags: Flags,
        keywords: &BTreeSet<String>,
    ) -> Result<Vec<MessageInfo>, Error>;

    /// Removes messages for good; returns the UIDs actually removed.
    fn expunge(&mut self, uids: &[Uid]) -> Result<Vec<Uid>, Error>;

    /// HIGHESTMODSEQ as this backend has it now (its own writes raise it: an EXPUNGE leaves
    /// no message to carry the new value); `None` when it does not keep one.
    fn highestmodseq(&self) -> Option<u64> {
        None
    }

    /// The mapped index the backend's messages are based on (cheap: the shared view checks
    /// it after every change, to follow each index the backend writes).
    fn mapped_index(&self) -> Option<&std::sync::Arc<crate::index::Mapped>> {
        None
    }

    /// The messages as [`Mailbox::mapped_index`] and the changes since list them; `None` for
    /// a backend without such an index. The shared view serves its table from it.
    fn mapped_messages(&self) -> Option<MappedMessages> {
        None
    }

    /// Where this folder keeps which messages sessions have claimed as `\Recent`; `None` for a
    /// backend that keeps no such mark (its messages are then never recent).
    fn recent_mark(&self) -> Option<crate::recent::RecentMark> {
        None
    }

    /// Where a change-notification watch for this folder goes (the maildir, the mbox file).
    fn watch_path(&self) -> &std::path::Path;

    /// The folder's field cache (`None` before the first sync, which knows UIDVALIDITY).
    fn field_cache(&mut self) -> Option<&mut FieldCache>;

    /// A field cached for a message (ENVELOPE, BODYSTRUCTURE, ...), if computed before.
    fn cached(&mut self, uid: Uid, field: &str) -> Option<Vec<u8>> {
        self.field_cache()?.get(uid, field)
    }

    /// Remembers a field computed from a message, for the next FETCH.
    fn cache(&mut self, uid: Uid, field: &str, value: &[u8]) -> Result<(), Error> {
        match self.field_cache() {
            Some(cache) => cache.put(uid, field, value),
            None => Ok(()),
        }
    }

    /// The message's size with CRLF line endings (RFC822.SIZE, POP3 LIST): learned at append,
    /// or counted once from the file and kept in the field cache.
    fn crlf_size(&mut self, uid: Uid) -> Result<u64, Error> {
        counted_crlf_size(self, uid)
    }

    /// The bytes POP3 RETR sends before its terminator: the CRLF size, plus the CRLF that RETR
    /// adds when the message lacks a final line end, so LIST and RETR agree exactly (fetchmail
    /// checks). Counted once, then kept in the field cache.
    fn pop3_size(&mut self, uid: Uid) -> Result<u64, Error> {
        counted_pop3_size(self, uid)
    }

    /// Copies messages (bytes, flags, keywords, internal date) into `dest`, in UID order;
    /// returns `(source UID, new UID)` pairs for COPYUID.
    fn copy_to(&mut self, uids: &[Uid], dest: &mut dyn Mailbox) -> Result<Vec<(Uid, Uid)>, Error> {
        let wanted: BTreeSet<Uid> = uids.iter().copied().collect();
        let snapshot = self.sync()?;
        let mut pairs = Vec::new();
        for m in snapshot.messages.iter().filter(|m| wanted.contains(&m.uid)) {
            let mut reader = self.open_message(m.uid)?;
            let new = dest.append(&mut reader, m.flags, &m.keywords, Some(m.internal_date))?;
            pairs.push((m.uid, new));
        }
        Ok(pairs)
    }

    /// Moves messages into `dest`: copy, then expunge here. A crash in between leaves the
    /// message in both places, never in neither.
    fn move_to(&mut self, uids: &[Uid], dest: &mut dyn Mailbox) -> Result<Vec<(Uid, Uid)>, Error> {
        let pairs = self.copy_to(uids, dest)?;
        let moved: Vec<Uid> = pairs.iter().map(|(from, _)| *from).collect();
        self.expunge(&moved)?;
        Ok(pairs)
    }
}

/// The field under which [`Mailbox::crlf_size`] keeps its answer.
pub const CRLF_SIZE_FIELD: &str = "RFC822.SIZE";

/// [`Mailbox::crlf_size`] by reading the message (once: the answer goes into the field cache).
pub fn counted_crlf_size<M: Mailbox + ?Sized>(mailbox: &mut M, uid: Uid) -> Result<u64, Error> {
    if let Some(size) = cached_number(mailbox, uid, CRLF_SIZE_FIELD) {
        return Ok(size);
    }
    let mut reader = mailbox.open_message(uid)?;
    let size = crate::wire::crlf_size(&mut reader).map_err(|e| message_error(uid, e))?;
    mailbox.cache(uid, CRLF_SIZE_FIELD, &cache::encode_number(size))?;
    Ok(size)
}

/// The field under which [`Mailbox::pop3_size`] keeps its answer.
const POP3_SIZE_FIELD: &str = "POP3.SIZE";

/// [`Mailbox::pop3_size`] from the CRLF size and the message's last byte (once: the answer
/// goes into the field cache).
fn counted_pop3_size<M: Mailbox + ?Sized>(mailbox: &mut M, uid: Uid) -> Result<u64, Error> {
    if let Some(size) = cached_number(mailbox, uid, POP3_SIZE_FIELD) {
        return Ok(size);
    }
    let size = mailbox.crlf_size(uid)?;
    let mut reader = mailbox.open_message(uid)?;
    let ends_with_lf = if size == 0 {
        true
    } else {
        let mut last = [0u8; 1];
        reader
            .seek(SeekFrom::End(-1))
            .and_then(|_| reader.read_exact(&mut last))
            .map_err(|e| message_error(uid, e))?;
        last[0] == b'\n'
    };
    let size = size + if ends_with_lf { 0 } else { 2 };
    mailbox.cache(uid, POP3_SIZE_FIELD, &cache::encode_number(size))?;
    Ok(size)
}

/// A number the field cache holds for a message, if any (the encoding stays in `cache`).
fn cached_number<M: Mailbox + ?Sized>(mailbox: &mut M, uid: Uid, field: &str) -> Option<u64> {
    cache::decode_number(&mailbox.cached(uid, field)?)
}

/// An I/O error while reading message `uid`.
fn message_error(uid: Uid, e: std::io::Error) -> Error {
    Error::io(format!("message UID {uid}"), e)
}

/// A user's folders, whatever the format: what IMAP LIST, CREATE, DELETE and RENAME act on.
pub trait FolderTree: Send + Sync {
    /// Every folder, INBOX first.
    fn list(&self) -> Result<Vec<String>, Error>;
    /// Creates a folder.
    fn create(&self, name: &str) -> Result<(), Error>;
    /// Deletes a folder and its mail.
    fn delete(&self, name: &str) -> Result<(), Error>;
    /// Renames a folder (and its children).
    fn rename(&self, from: &str, to: &str) -> Result<(), Error>;
    /// Opens a folder that exists.
    fn open(&self, name: &str) -> Result<Box<dyn Mailbox>, Error>;
}
