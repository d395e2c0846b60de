//! mbox folders: INBOX where the admin put it (`/var/mail/%u`), other folders as files under the
//! mail root (`~/mail/Sent`, `~/mail/Lists/rust`), directories for hierarchy — the layout of
//! UW-imapd, Dovecot and mutt. roost's own files live in `.roost/` under the root.

use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::Mbox;
use crate::mailbox::{FolderTree, Mailbox};
use crate::names::{parts, SEPARATOR};
use crate::quota::Quota;
use crate::Error;

/// Deepest hierarchy listed (a guard against symlink loops).
const MAX_DEPTH: usize = 16;

/// The folders of one user's mbox tree.
#[derive(Debug, Clone)]
pub struct MboxFolders {
    root: PathBuf,
    inbox: PathBuf,
    /// The owner's quota, given to every folder opened.
    quota: Option<Quota>,
}

impl MboxFolders {
    /// Folders under `root`, INBOX at `inbox`.
    pub fn new(root: impl Into<PathBuf>, inbox: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            inbox: inbox.into(),
            quota: None,
        }
    }

    /// The same tree under its owner's quota (`None`: unlimited).
    pub fn with_quota(mut self, quota: Option<Quota>) -> Self {
        self.quota = quota;
        self
    }

    /// Where this tree's `maildirsize` lives (beside the side files).
    pub fn quota_file(&self) -> PathBuf {
        self.root.join(".roost").join(crate::quota::FILE_NAME)
    }

    /// The mbox file of a folder. A folder whose path under the mail root passes through a
    /// symbolic link is refused: `ln -s /var/mail ~/mail/var` must not make `var/bob` a
    /// folder of this user's. (Each existing component is checked without following it; the
    /// mail root itself may be a link the admin made. Files are opened with O_NOFOLLOW too.)
    fn path(&self, name: &str) -> Result<PathBuf, Error> {
        let Some(parts) = parts(name)? else {
            return Ok(self.inbox.clone());
        };
        let mut path = self.root.clone();
        let mut exists = true;
        for part in parts {
            path.push(part);
            if !exists {
                continue;
            }
            match fs::symlink_metadata(&path) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    return Err(Error::InvalidName(
                        name.to_string(),
                        "its path passes through a symbolic link".into(),
                    ))
                }
                Ok(_) => {}
                Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => {
                    exists = false
                }
                Err(e) => return Err(Error::io(&path, e)),
            }
        }
        Ok(path)
    }

    /// Where roost keeps its side files for a folder.
    fn state(&self, name: &str) -> Result<PathBuf, Error> {
        let leaf = match parts(name)? {
            None => "INBOX".to_string(),
            Some(parts) => parts.join("%2F"),
        };
        Ok(self.root.join(".roost").join(format!("{leaf}.uids")))
    }

    fn walk(&self, dir: &Path, prefix: &str, depth: usize, out: &mut Vec<String>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if name.starts_with('.') || name.ends_with(".lock") {
                continue;
            }
            let full = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}{SEPARATOR}{name}")
            };
            match entry.file_type() {
                Ok(t) if t.is_dir() && depth < MAX_DEPTH => {
                    self.walk(&entry.path(), &full, depth + 1, out)
                }
                Ok(t) if t.is_file() && entry.path() != self.inbox => out.push(full),
                _ => {}
            }
        }
    }

    fn side_files(&self, name: &str) -> Result<[PathBuf; 4], Error> {
        let uids = self.state(name)?;
        Ok([
            uids.with_extension("index"),
            uids.with_extension("cache"),
            uids.with_extension("recent"),
            uids,
        ])
    }
}

impl FolderTree for MboxFolders {
    fn list(&self) -> Result<Vec<String>, Error> {
        let mut names = Vec::new();
        self.walk(&self.root, "", 0, &mut names);
        names.sort();
        names.insert(0, "INBOX".to_string());
        Ok(names)
    }

    fn create(&self, name: &str) -> Result<(), Error> {
        let path = self.path(name)?;
        if parts(name)?.is_none() {
            return Err(Error::AlreadyExists(name.to_string()));
        }
        if let Some(parent) = path.parent() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(|e| Error::io(parent, e))?;
        }
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
        {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                Err(Error::AlreadyExists(name.to_string()))
            }
            Err(e) => Err(Error::io(path, e)),
        }
    }

    fn delete(&self, name: &str) -> Result<(), Error> {
        if parts(name)?.is_none() {
            return Err(Error::InvalidName(
                name.to_string(),
                "INBOX cannot be deleted".into(),
            ));
        }
        let path = self.path(name)?;
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::NoSuchMailbox(name.to_string()))
            }
            Err(e) => return Err(Error::io(path, e)),
        }
        for side in self.side_files(name)? {
            let _ = fs::remove_file(side);
        }
        Ok(())
    }

    fn rename(&self, from: &str, to: &str) -> Result<(), Error> {
        let (Some(_), Some(_)) = (parts(from)?, parts(to)?) else {
            return Err(Error::InvalidName(
                from.to_string(),
                "renaming INBOX is not supported yet".into(),
            ));
        };
        let (old, new) = (self.path(from)?, self.path(to)?);
        if fs::symlink_metadata(&old).is_err() {
            return Err(Error::NoSuchMailbox(from.to_string()));
        }
        if fs::symlink_metadata(&new).is_ok() {
            return Err(Error::AlreadyExists(to.to_string()));
        }
        if let Some(parent) = new.parent() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(|e| Error::io(parent, e))?;
        }
        fs::rename(&old, &new).map_err(|e| Error::io(&old, e))?;
        for (a, b) in self.side_files(from)?.into_iter().zip(self.side_files(to)?) {
            let _ = fs::rename(a, b);
        }
        Ok(())
    }

    fn open(&self, name: &str) -> Result<Box<dyn Mailbox>, Error> {
        let path = self.path(name)?;
        let mbox = Mbox::new(&path, self.state(name)?).with_quota(self.quota.clone());
        if parts(name)?.is_none() {
            return Ok(Box::new(mbox.spool_inbox()));
        }
        if !fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) {
            return Err(Error::NoSuchMailbox(name.to_string()));
        }
        Ok(Box::new(mbox))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Flags;
    use std::collections::BTreeSet;

    #[test]
    fn folders_are_files_and_hierarchy_is_directories() {
        let dir = tempfile::tempdir().unwrap();
        let folders = MboxFolders::new(dir.path().join("mail"), dir.path().join("inbox"));
        for name in ["Sent", "Lists/rust", "Lists/go"] {
            folders.create(name).unwrap();
        }
        assert!(matches!(
            folders.create("Sent"),
            Err(Error::AlreadyExists(_))
        ));
        assert!(folders.create("../escape").is_err());
        let mut sent = folders.open("Sent").unwrap();
        sent.append(
            &mut &b"Subject: s\n\nx\n"[..],
            Flags::SEEN,
            &BTreeSet::new(),
            None,
        )
        .unwrap();
        assert_eq!(
            folders.list().unwrap(),
            ["INBOX", "Lists/go", "Lists/rust", "Sent"]
        );
        folders.rename("Sent", "Archive/2024").unwrap();
        assert_eq!(
            folders
                .open("Archive/2024")
                .unwrap()
                .sync()
                .unwrap()
                .messages
                .len(),
            1
        );
        folders.delete("Lists/go").unwrap();
        assert!(matches!(
            folders.open("Lists/go"),
            Err(Error::NoSuchMailbox(_))
        ));
        assert_eq!(
            folders.list().unwrap(),
            ["INBOX", "Archive/2024", "Lists/rust"]
        );
    }
}
