//! A user's mail store: the entry point sessions and delivery use, whatever the format.

use std::collections::BTreeSet;
use std::io::Read;

use crate::location::{MailFormat, MailLocation, UserVars};
use crate::mailbox::{Flags, FolderStats, FolderTree, Mailbox, Uid};
use crate::maildir::folders::Folders;
use crate::maildir::Maildir;
use crate::mbox::folders::MboxFolders;
use crate::Error;

/// One user's mail, opened from the configured location.
pub struct Store {
    inbox: Box<dyn Mailbox>,
    folders: Box<dyn FolderTree>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
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
                    folders: Box::new(Folders::new(root)),
                })
            }
            MailFormat::Mbox => {
                let inbox = location
                    .inbox_for(vars)?
                    .unwrap_or_else(|| root.join("inbox"));
                let folders = MboxFolders::new(root, inbox);
                Ok(Self {
                    inbox: folders.open("INBOX")?,
                    folders: Box::new(folders),
                })
            }
        }
    }

    /// Appends a message to INBOX durably; returns its UID.
    pub fn append_to_inbox(&mut self, message: &mut dyn Read) -> Result<Uid, Error> {
        self.inbox
            .append(message, Flags::empty(), &BTreeSet::new(), None)
    }

    /// The user's folders (list, create, delete, rename, open).
    pub fn folders(&self) -> &dyn FolderTree {
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
