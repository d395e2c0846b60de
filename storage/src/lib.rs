//! # roost-storage
//!
//! The one place where mail lives. Every front-end (IMAP, POP3, SMTP delivery, LMTP) reaches a
//! user's mail through [`Store`], so two sessions of one user always see one mailbox.
//!
//! ```text
//!   "maildir:~/Maildir" ──► location::MailLocation ──expand(user)──► Store ──► maildir::Maildir
//! ```
//!
//! This crate never touches sockets. It creates files 0600 and directories 0700, and makes every
//! accepted message durable (tmp, fsync, rename, fsync dir) before it reports success.
//!
//! Present state: mail locations; maildir folders (UIDs kept in `dovecot-uidlist` and in the file
//! names, flags, keywords, append/store/expunge, Maildir++ folder management); a memory-mapped,
//! self-checking index per folder; repair of any one lost or damaged file kept beside the mail;
//! inotify change notification; mbox folders (mboxrd, dotlock + fcntl, X-UID/X-IMAPbase/Status
//! headers, whole-file rewrites). Not yet: an index and folder management for mbox, and the
//! cache of FETCH fields.
#![deny(unsafe_code)]

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
pub mod repair;
pub mod store;
pub mod wire;

pub use error::Error;
pub use location::{MailFormat, MailLocation, UserVars};
pub use mailbox::{FlagChange, Flags, FolderTree, Mailbox, MessageInfo, Snapshot, Uid};
pub use store::{MaildropLock, Store};
