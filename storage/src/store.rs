//! A user's mail store: the entry point sessions and delivery use, whatever the format.

use std::collections::BTreeSet;
use std::fs::{DirBuilder, File, TryLockError};
use std::io::Read;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use crate::location::{MailFormat, MailLocation, UserVars};
use crate::mailbox::{Flags, FolderStats, FolderTree, Mailbox, Uid};
use crate::maildir::folders::Folders;
use crate::maildir::Maildir;
use crate::mbox::folders::MboxFolders;
use crate::quota::{Quota, QuotaLimits};
use crate::Error;

/// One user's mail, opened from the configured location.
pub struct Store {
    /// Where the maildrop lock lives: the maildir itself, or an mbox root's `.roost/`.
    lock_dir: PathBuf,
    /// INBOX once opened. A maildir INBOX is opened at first use (an IMAP session reaches its
    /// folders through the shared views and mostly never does), an mbox one at once.
    inbox: Option<Box<dyn Mailbox>>,
    folders: Box<dyn FolderTree>,
    /// The user's quota, when limited.
    quota: Option<Quota>,
}

/// The subscription list (RFC 3501 LSUB), one mailbox name per line, as Dovecot keeps it.
const SUBSCRIPTIONS: &str = "subscriptions";
/// Taken while the subscriptions are read and replaced.
const SUBSCRIPTIONS_LOCK: &str = "roost-subscriptions.lock";

/// The file in a store's root whose lock marks a POP3 session (RFC 1939's exclusive maildrop).
const MAILDROP_LOCK: &str = "roost-pop3.lock";

/// Held while a POP3 session owns the maildrop; dropping it (or the process dying) releases it.
#[derive(Debug)]
pub struct MaildropLock {
    _file: File,
}

/// The INBOX of a maildir store rooted at `root`.
fn maildir_inbox(root: &Path, quota: Option<&Quota>) -> Maildir {
    Maildir::new(root).in_tree(root).with_quota(quota.cloned())
}

/// An mbox tree's quota, its usage counted afresh (every folder synced, no lock of another
/// held meanwhile) when the file cannot be trusted.
fn count_mbox_quota(folders: &MboxFolders, limits: QuotaLimits) -> Result<Quota, Error> {
    let quota = Quota::counted(folders.quota_file(), limits);
    if quota.needs_count() {
        let mut usage = crate::quota::Usage::default();
        for name in folders.list()? {
            let Ok(mut folder) = folders.open(&name) else {
                continue;
            };
            for message in folder.sync()?.messages {
                usage.bytes += message.size;
                usage.messages += 1;
            }
        }
        quota.set_usage(usage)?;
    }
    Ok(quota)
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed, 0700) the store of one user.
    pub fn open(location: &MailLocation, vars: &UserVars) -> Result<Self, Error> {
        Self::open_with_quota(location, vars, QuotaLimits::default())
    }

    /// Opens the store of one user who may keep no more than `limits` (kept in `maildirsize`,
    /// see [`crate::quota`]).
    pub fn open_with_quota(
        location: &MailLocation,
        vars: &UserVars,
        limits: QuotaLimits,
    ) -> Result<Self, Error> {
        let root = location.root_for(vars)?;
        match location.format {
            MailFormat::Maildir => {
                let quota = (!limits.is_unlimited()).then(|| Quota::new(&root, limits));
                maildir_inbox(&root, quota.as_ref()).ensure()?;
                Ok(Self {
                    folders: Box::new(Folders::new(root.clone()).with_quota(quota.clone())),
                    lock_dir: root,
                    inbox: None,
                    quota,
                })
            }
            MailFormat::Mbox => {
                let inbox = location
                    .inbox_for(vars)?
                    .unwrap_or_else(|| root.join("inbox"));
                let mut folders = MboxFolders::new(&root, inbox);
                let quota = match limits.is_unlimited() {
                    true => None,
                    false => Some(count_mbox_quota(&folders, limits)?),
                };
                folders = folders.with_quota(quota.clone());
                Ok(Self {
                    lock_dir: root.join(".roost"),
                    inbox: Some(folders.open("INBOX")?),
                    folders: Box::new(folders),
                    quota,
                })
            }
        }
    }

    /// Appends a message to INBOX durably; returns its UID.
    pub fn append_to_inbox(&mut self, message: &mut dyn Read) -> Result<Uid, Error> {
        self.inbox()
            .append(message, Flags::empty(), &BTreeSet::new(), None)
    }

    /// The user's quota, when they have limits (RFC 9208 GETQUOTA, STATUS, delivery).
    pub fn quota(&self) -> Option<&Quota> {
        self.quota.as_ref()
    }

    /// The user's Sieve scripts, kept beside this store's mail (see [`crate::sieve_scripts`]).
    pub fn sieve_scripts(&self) -> crate::sieve_scripts::ScriptStore {
        crate::sieve_scripts::ScriptStore::new(self.lock_dir.join("sieve"))
    }

    /// INBOX, open for the whole session.
    pub fn inbox(&mut self) -> &mut dyn Mailbox {
        // Only a maildir store starts without one; its root is `lock_dir`.
        let (root, quota) = (&self.lock_dir, self.quota.as_ref());
        self.inbox
            .get_or_insert_with(|| Box::new(maildir_inbox(root, quota)))
            .as_mut()
    }

    /// Takes the POP3 maildrop lock: `Ok(None)` when another POP3 session holds it. IMAP
    /// sessions and deliveries ignore it, as RFC 1939 allows and Dovecot does.
    pub fn lock_maildrop(&self) -> Result<Option<MaildropLock>, Error> {
        let path = self.lock_path(MAILDROP_LOCK)?;
        let file = crate::durable::open_lock_file(&path)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(MaildropLock { _file: file })),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(e)) => Err(Error::io(&path, e)),
        }
    }

    /// The subscribed mailbox names (RFC 3501 SUBSCRIBE), in the order they were added.
    pub fn subscriptions(&self) -> Result<Vec<String>, Error> {
        let path = self.lock_dir.join(SUBSCRIPTIONS);
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(text
                .lines()
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// Subscribes to (or unsubscribes from) a name; the file is replaced atomically, under a
    /// lock, so sessions (of this process or another) subscribing at once lose none of it.
    pub fn set_subscribed(&self, name: &str, subscribed: bool) -> Result<(), Error> {
        let _locked = self.lock_subscriptions()?;
        let mut names = self.subscriptions()?;
        let had = names.iter().any(|n| n == name);
        if had == subscribed {
            return Ok(());
        }
        if subscribed {
            names.push(name.to_string());
        } else {
            names.retain(|n| n != name);
        }
        let mut text = names.join("\n");
        text.push('\n');
        crate::durable::replace_file(&self.lock_dir.join(SUBSCRIPTIONS), text.as_bytes())
    }

    /// Holds the subscriptions' lock file, exclusively, until dropped.
    fn lock_subscriptions(&self) -> Result<File, Error> {
        crate::durable::lock_exclusive(&self.lock_path(SUBSCRIPTIONS_LOCK)?)
    }

    /// Where the lock file `name` goes, its folder created (0700) if needed.
    fn lock_path(&self, name: &str) -> Result<PathBuf, Error> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.lock_dir)
            .map_err(|e| Error::io(&self.lock_dir, e))?;
        Ok(self.lock_dir.join(name))
    }

    /// The user's folders (list, create, delete, rename, open).
    pub fn folders(&self) -> &dyn FolderTree {
        self.folders.as_ref()
    }

    /// Message count and size of INBOX.
    pub fn inbox_stats(&mut self) -> Result<FolderStats, Error> {
        let snapshot = self.inbox().sync()?;
        Ok(FolderStats {
            messages: snapshot.messages.len(),
            bytes: snapshot.messages.iter().map(|m| m.size).sum(),
        })
    }
}
