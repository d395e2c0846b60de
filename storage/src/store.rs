//! A user's mail store: the entry point sessions and delivery use.

use std::io::Read;
use std::path::PathBuf;

use crate::location::{MailFormat, MailLocation, UserVars};
use std::collections::BTreeSet;

use crate::mailbox::{Flags, Mailbox, Uid};
use crate::maildir::folders::Folders;
use crate::maildir::{FolderStats, Maildir};
use crate::Error;

/// One user's mail, opened from the configured location.
#[derive(Debug)]
pub struct Store {
    inbox: Maildir,
    folders: Folders,
}

impl Store {
    /// Opens (creating if needed, 0700) the store of one user.
    pub fn open(location: &MailLocation, vars: &UserVars) -> Result<Self, Error> {
        match location.format {
            MailFormat::Maildir => {
                let root: PathBuf = location.root_for(vars)?;
                let inbox = Maildir::new(&root);
                inbox.ensure()?;
                Ok(Self {
                    inbox,
                    folders: Folders::new(root),
                })
            }
            MailFormat::Mbox => Err(Error::Unsupported("mbox")),
        }
    }

    /// Appends a message to INBOX durably; returns its UID.
    pub fn append_to_inbox(&mut self, message: &mut dyn Read) -> Result<Uid, Error> {
        self.inbox
            .append(message, Flags::empty(), &BTreeSet::new(), None)
    }

    /// The user's folders (list, create, delete, rename, open).
    pub fn folders(&self) -> &Folders {
        &self.folders
    }

    /// Message count and size of INBOX.
    pub fn inbox_stats(&mut self) -> Result<FolderStats, Error> {
        self.inbox.stats()
    }
}
