//! # roost-storage
//!
//! The one place where mail lives. Every front-end (IMAP, POP3, SMTP delivery, LMTP) reaches a
//! user's mail through [`Store`], so two sessions of one user always see one mailbox, and
//! through the [`Mailbox`] trait, so a session never knows whether it reads maildir or mbox.
//!
//! ```text
//!   "maildir:~/Maildir" ──► location::MailLocation ──expand(user)──► Store
//!                                                                      │ inbox(), folders()
//!                              ┌───────────────────────────────────────┤
//!                              ▼                                       ▼
//!     dyn Mailbox ── sync() ─► Snapshot (UIDs, flags, sizes)     dyn FolderTree
//!          │     sync_each() ─► the same, one message at a time (view::Table, STATUS)
//!          │     mapped_messages() ─► the mapped index + changes (view::Table serves from it)
//!          │  open_message, append, store, expunge, crlf_size, pop3_size, cached
//!          ├── maildir::Maildir   cur/ new/ tmp/, dovecot-uidlist, dovecot-keywords,
//!          │                      roost.index (served from its map) + its journal,
//!          │                      roost.cache (field cache)
//!          └── mbox::Mbox         one mboxrd file, X-UID/X-IMAPbase, dotlock + fcntl,
//!                                 mbox::index, a UID side file, cache
//!     notify: inotify on Mailbox::watch_path ──► "changed" for IMAP IDLE
//!     durable: write tmp, fsync, rename, fsync dir — for every small file kept beside the mail
//!     repair: every damaged file found is rebuilt, logged once and counted
//! ```
//!
//! What it never does: touch sockets, parse or encode a protocol's commands and responses, or
//! decide what a client may do.
//! It creates files 0600 and directories 0700, and makes every accepted message durable (tmp,
//! fsync, rename, fsync dir) before it reports success. Files it keeps beside the mail are
//! checked before use (the binary ones carry magic, version and CRCs): a damaged one is
//! detected, never misread, and rebuilt from the mail. Cached values (the field cache) are encoded and decoded here only; front-ends ask
//! for values (`crlf_size`, `pop3_size`) or store opaque bytes.
//!
//! Present state: mail locations; maildir folders (UIDs kept in `dovecot-uidlist` and in the
//! file names, flags, keywords, append/store/expunge, Maildir++ folder management); a
//! memory-mapped, self-checking index per folder with a journal of flag changes; the field
//! cache; repair of any one lost or damaged file kept beside the mail; inotify change
//! notification; mbox folders (mboxrd, dotlock + fcntl, X-UID/X-IMAPbase/Status headers,
//! whole-file rewrites, an index that spares re-reading an unchanged or appended-to file,
//! folder management).
#![deny(unsafe_code)]
#![deny(missing_docs)]

pub mod cache;
mod durable;
pub mod error;
pub mod host;
pub mod index;
pub mod location;
pub mod mailbox;
pub mod maildir;
pub mod mbox;
pub mod names;
pub mod notify;
pub mod quota;
pub mod recent;
pub mod repair;
pub mod sieve_scripts;
pub mod staging;
pub mod store;
pub mod uidvalidity;
pub mod view;
pub mod wire;

pub use error::Error;
pub use location::{MailFormat, MailLocation, UserVars};
pub use mailbox::{
    Changes, Delta, FlagChange, Flags, FolderTree, Mailbox, MessageInfo, Snapshot, SyncHeader, Uid,
};
pub use store::{MaildropLock, Store};
pub use view::{Incoming, SessionView, SharedMailbox, Updates};
