//! The storage layer's error type.

use std::path::PathBuf;

/// Everything that can go wrong below a session.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A mail location string that cannot be understood.
    #[error("invalid mail location {location:?}: {reason}")]
    InvalidLocation {
        /// The location as configured.
        location: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The location needs a home directory (`~` or `%h`) but the user has none.
    #[error("mail location uses the home directory, but user {0} has none")]
    NoHome(String),
    /// The format is recognised but not implemented yet.
    #[error("{0} storage is not implemented yet")]
    Unsupported(&'static str),
    /// No mailbox by that name.
    #[error("mailbox {0:?} does not exist")]
    NoSuchMailbox(String),
    /// A mailbox by that name exists already.
    #[error("mailbox {0:?} already exists")]
    AlreadyExists(String),
    /// A mailbox name that cannot be used.
    #[error("invalid mailbox name {0:?}: {1}")]
    InvalidName(String, String),
    /// Another process holds the mailbox lock and did not let go in time.
    #[error("{0}: mailbox is locked by another process")]
    Busy(PathBuf),
    /// Another program changed the mbox in place since the last sync: its offsets are stale
    /// until the next sync.
    #[error("{0}: changed by another program since the last sync")]
    Changed(PathBuf),
    /// A spool file (INBOX in a shared directory like /var/mail) that is not the session
    /// user's own.
    #[error("{0}: not owned by this user; refusing to use it")]
    NotOwner(PathBuf),
    /// The user's quota (bytes or messages) has no room for the message.
    #[error("quota exceeded (mailbox is full)")]
    OverQuota,
    /// No message with this UID (any more).
    #[error("no message with UID {0}")]
    NoSuchMessage(u32),
    /// An I/O error, with the path it concerned.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl Error {
    /// Wraps an I/O error with the path it happened on.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
