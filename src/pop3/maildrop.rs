//! The maildrop of one POP3 session (RFC 1939): INBOX as it was at login, numbered 1..n for the
//! whole session, with deletion marks that only the UPDATE state carries out.
//!
//! The maildrop lock keeps a second POP3 session out (`[IN-USE]`); IMAP sessions and deliveries
//! go on, and what they add appears at the next POP3 login, as in Dovecot.

use std::collections::BTreeSet;

use roost_storage::mailbox::MessageReader;
use roost_storage::{Error as StorageError, FlagChange, Flags, MaildropLock, Store, Uid};

use crate::session::UserSession;

/// Why the maildrop could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Another POP3 session holds the lock.
    #[error("the maildrop is locked by another POP3 session")]
    InUse,
    /// The mail store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Why a message number was refused; the text is sent after `-ERR`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MessageError {
    /// Beyond the messages of this session.
    #[error("There's no message {0}.")]
    NoSuchMessage(u32),
    /// Marked for deletion by DELE in this session.
    #[error("Message {0} is deleted.")]
    Deleted(u32),
}

/// One message of the session.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    /// Its IMAP UID in INBOX.
    pub uid: Uid,
    /// Its size with CRLF line endings: exactly what RETR sends before dot-stuffing
    /// ([`roost_storage::Mailbox::pop3_size`]).
    pub size: u64,
    deleted: bool,
    retrieved: bool,
}

/// What the session did, for the classic `Disconnected:` log line.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counters {
    /// TOP commands and bytes sent for them.
    pub top: (u64, u64),
    /// RETR commands and bytes sent for them.
    pub retr: (u64, u64),
    /// Messages deleted in UPDATE.
    pub deleted: usize,
}

/// INBOX, locked for one POP3 session.
pub struct Maildrop {
    store: Store,
    /// Held from login to the end of UPDATE.
    lock: Option<MaildropLock>,
    uidvalidity: u32,
    entries: Vec<Entry>,
    /// Total size at login (the log line's `size=`).
    initial_bytes: u64,
    /// Statistics for the log line.
    pub counters: Counters,
}

impl Maildrop {
    /// Locks and reads the user's INBOX.
    pub fn open(session: &UserSession) -> Result<Self, OpenError> {
        let mut store = session.open_store()?;
        let lock = store.lock_maildrop()?.ok_or(OpenError::InUse)?;
        let inbox = store.inbox();
        let snapshot = inbox.sync()?;
        let mut entries = Vec::with_capacity(snapshot.messages.len());
        for m in &snapshot.messages {
            entries.push(Entry {
                uid: m.uid,
                size: inbox.pop3_size(m.uid)?,
                deleted: false,
                retrieved: false,
            });
        }
        let initial_bytes = entries.iter().map(|e| e.size).sum();
        Ok(Self {
            store,
            lock: Some(lock),
            uidvalidity: snapshot.uidvalidity,
            entries,
            initial_bytes,
            counters: Counters::default(),
        })
    }

    /// Messages not marked deleted, and their total size (STAT).
    pub fn stat(&self) -> (usize, u64) {
        self.live()
            .fold((0, 0), |(n, bytes), (_, e)| (n + 1, bytes + e.size))
    }

    /// The messages not marked deleted, with their numbers (LIST, UIDL without argument).
    pub fn live(&self) -> impl Iterator<Item = (u32, &Entry)> {
        (1u32..).zip(&self.entries).filter(|(_, e)| !e.deleted)
    }

    /// The message numbered `n`, unless it does not exist or is marked deleted.
    pub fn get(&self, n: u32) -> Result<&Entry, MessageError> {
        let entry = n
            .checked_sub(1)
            .and_then(|i| self.entries.get(i as usize))
            .ok_or(MessageError::NoSuchMessage(n))?;
        if entry.deleted {
            return Err(MessageError::Deleted(n));
        }
        Ok(entry)
    }

    /// The unique-id listing value: Dovecot's default `%08Xu%08Xv` (UID and UIDVALIDITY in hex),
    /// so it stays stable across sessions and matches what IMAP reports for INBOX.
    pub fn unique_id(&self, entry: &Entry) -> String {
        format!("{:08x}{:08x}", entry.uid, self.uidvalidity)
    }

    /// Marks message `n` for deletion at QUIT (DELE).
    pub fn delete(&mut self, n: u32) -> Result<(), MessageError> {
        self.get(n)?;
        self.entries[n as usize - 1].deleted = true;
        Ok(())
    }

    /// Unmarks every message (RSET).
    pub fn reset(&mut self) {
        self.entries.iter_mut().for_each(|e| e.deleted = false);
    }

    /// Opens message `n` for RETR or TOP; a RETR is remembered so UPDATE marks it `\Seen`.
    pub fn open_message(
        &mut self,
        n: u32,
        whole: bool,
    ) -> Result<Result<Box<dyn MessageReader>, StorageError>, MessageError> {
        let uid = self.get(n)?.uid;
        if whole {
            self.entries[n as usize - 1].retrieved = true;
        }
        Ok(self.store.inbox().open_message(uid))
    }

    /// Gives up the maildrop once UPDATE is done, before the reply to QUIT: a client that
    /// connects again as soon as it reads that reply (fetchmail polling, a phone) must not be
    /// told the maildrop is still in use.
    pub fn release(&mut self) {
        self.lock = None;
    }

    /// The UPDATE state (after QUIT): removes the messages marked deleted and marks retrieved
    /// ones `\Seen`, as Dovecot does by default. Returns how many were deleted.
    pub fn update(&mut self) -> Result<usize, StorageError> {
        let doomed: Vec<Uid> = self
            .entries
            .iter()
            .filter(|e| e.deleted)
            .map(|e| e.uid)
            .collect();
        let seen: Vec<Uid> = self
            .entries
            .iter()
            .filter(|e| e.retrieved && !e.deleted)
            .map(|e| e.uid)
            .collect();
        let inbox = self.store.inbox();
        if !seen.is_empty() {
            inbox.store(&seen, FlagChange::Add, Flags::SEEN, &BTreeSet::new())?;
        }
        let removed = if doomed.is_empty() {
            0
        } else {
            inbox.expunge(&doomed)?.len()
        };
        self.counters.deleted = removed;
        Ok(removed)
    }

    /// `top=…, retr=…, del=…, size=…`, Dovecot's `pop3_logout_format`.
    pub fn logout_summary(&self) -> String {
        let c = &self.counters;
        format!(
            "top={}/{}, retr={}/{}, del={}/{}, size={}",
            c.top.0,
            c.top.1,
            c.retr.0,
            c.retr.1,
            c.deleted,
            self.entries.len(),
            self.initial_bytes
        )
    }
}
