//! A user's mail store: the entry point sessions and delivery use, whatever the format.

use std::collections::BTreeSet;
use std::io::Read;

use crate::location::{MailFormat, MailLocation, UserVars};
use crate::mailbox::{Flags, FolderStats, Mailbox, Uid};
use crate::maildir::folders::Folders;
use crate::maildir::Maildir;
use crate::mbox::Mbox;
use crate::Error;

/// One user's mail, opened from the configured location.
pub struct Store {
    inbox: Box<dyn Mailbox>,
    folders: Option<Folders>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("folders", &self.folders)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed, 0700) the store of one user.
    pub fn open(location: &MailLocation, vars: &UserVars) -> Result<Self, Error> {
        let root = location.root_for(vars)?;
        match location.format {
            MailFormat::Maildir => {
                let inbox = Maildir::new(&root);
                inbox.ensure()?;
                Ok(Self {
                    inbox: Box::new(inbox),
                    folders: Some(Folders::new(root)),
                })
            }
            MailFormat::Mbox => {
                let inbox = location
                    .inbox_for(vars)?
                    .unwrap_or_else(|| root.join("inbox"));
                let state = root.join(".roost").join("INBOX.uids");
                Ok(Self {
                    inbox: Box::new(Mbox::new(inbox, state)),
                    folders: None,
                })
            }
        }
    }

    /// Appends a message to INBOX durably; returns its UID.
    pub fn append_to_inbox(&mut self, message: &mut dyn Read) -> Result<Uid, Error> {
        self.inbox
            .append(message, Flags::empty(), &BTreeSet::new(), None)
    }

    /// The user's maildir folders (list, create, delete, rename, open); `None` for mbox, whose
    /// folders are not served yet.
    pub fn folders(&self) -> Option<&Folders> {
        self.folders.as_ref()
    }

    /// Message count and size of INBOX.
    pub fn inbox_stats(&mut self) -> Result<FolderStats, Error> {
        let snapshot = self.inbox.sync()?;
        Ok(FolderStats {
            messages: snapshot.messages.len(),
            bytes: snapshot.messages.iter().map(|m| m.size).sum(),
        })
    }
}
