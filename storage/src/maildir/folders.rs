//! Maildir++ folders: INBOX is the maildir itself; `Lists/rust` lives in `.Lists.rust/`.
//!
//! IMAP names use `/` as the hierarchy separator whatever the format, so clients see the same
//! tree on maildir and mbox. On disk Maildir++ uses `.`; a `.` or `%` inside a name is stored as
//! `%2E` / `%25` so every name maps to exactly one directory and back. Names that could escape the
//! mail root (empty parts, `.`/`..`, NUL or control characters) are refused.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::Maildir;
use crate::mailbox::{FolderTree, Mailbox};
use crate::names::{parts, SEPARATOR};
use crate::quota::Quota;
use crate::Error;

/// `Lists/rust` → `.Lists.rust`
fn dir_name(parts: &[&str]) -> String {
    let encoded: Vec<String> = parts
        .iter()
        .map(|p| p.replace('%', "%25").replace('.', "%2E"))
        .collect();
    format!(".{}", encoded.join("."))
}

/// `.Lists.rust` → `Lists/rust`; `None` for directories that are not folders.
fn imap_name(dir: &str) -> Option<String> {
    let inner = dir.strip_prefix('.')?;
    if inner.is_empty() || inner.starts_with('.') {
        return None;
    }
    let parts: Option<Vec<String>> = inner
        .split('.')
        .map(|p| {
            (!p.is_empty()).then(|| {
                p.replace("%2E", ".")
                    .replace("%2e", ".")
                    .replace("%25", "%")
            })
        })
        .collect();
    Some(parts?.join("/"))
}

/// The folders of one maildir++ tree rooted at the INBOX maildir.
#[derive(Debug, Clone)]
pub struct Folders {
    root: PathBuf,
    /// The owner's quota, given to every folder opened.
    quota: Option<Quota>,
}

impl Folders {
    /// The tree whose INBOX is `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            quota: None,
        }
    }

    /// The same tree under its owner's quota (`None`: unlimited).
    pub fn with_quota(mut self, quota: Option<Quota>) -> Self {
        self.quota = quota;
        self
    }

    /// The directory of a folder.
    pub fn path(&self, name: &str) -> Result<PathBuf, Error> {
        Ok(match parts(name)? {
            None => self.root.clone(),
            Some(parts) => self.root.join(dir_name(&parts)),
        })
    }

    /// Opens a folder that exists.
    pub fn open(&self, name: &str) -> Result<Maildir, Error> {
        let path = self.path(name)?;
        if !path.join("cur").is_dir() && parts(name)?.is_some() {
            return Err(Error::NoSuchMailbox(name.to_string()));
        }
        Ok(Maildir::new(path)
            .in_tree(&self.root)
            .with_quota(self.quota.clone()))
    }

    /// Every folder, INBOX first, then by name.
    pub fn list(&self) -> Result<Vec<String>, Error> {
        let mut names = Vec::new();
        let entries = fs::read_dir(&self.root).map_err(|e| Error::io(&self.root, e))?;
        for entry in entries.flatten() {
            let Ok(dir) = entry.file_name().into_string() else {
                continue;
            };
            if entry.path().join("cur").is_dir() {
                names.extend(imap_name(&dir));
            }
        }
        names.sort();
        names.insert(0, "INBOX".to_string());
        Ok(names)
    }

    /// Creates a folder (0700) and, as Maildir++ expects, marks it with `maildirfolder`.
    pub fn create(&self, name: &str) -> Result<(), Error> {
        let path = self.path(name)?;
        if parts(name)?.is_none() || path.exists() {
            return Err(Error::AlreadyExists(name.to_string()));
        }
        let folder = Maildir::new(&path).in_tree(&self.root);
        folder.ensure()?;
        let marker = path.join("maildirfolder");
        fs::write(&marker, b"").map_err(|e| Error::io(marker, e))
    }

    /// Deletes a folder and its mail (not its children, which stay reachable by name).
    pub fn delete(&self, name: &str) -> Result<(), Error> {
        if parts(name)?.is_none() {
            return Err(Error::InvalidName(
                name.to_string(),
                "INBOX cannot be deleted".into(),
            ));
        }
        let path = self.path(name)?;
        match fs::remove_dir_all(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(Error::NoSuchMailbox(name.to_string()))
            }
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// Renames a folder together with its children.
    pub fn rename(&self, from: &str, to: &str) -> Result<(), Error> {
        let (Some(_), Some(_)) = (parts(from)?, parts(to)?) else {
            return Err(Error::InvalidName(
                from.to_string(),
                "renaming INBOX is not supported yet".into(),
            ));
        };
        let (old, new) = (self.path(from)?, self.path(to)?);
        if !old.is_dir() {
            return Err(Error::NoSuchMailbox(from.to_string()));
        }
        if new.exists() {
            return Err(Error::AlreadyExists(to.to_string()));
        }
        let children: Vec<String> = self
            .list()?
            .into_iter()
            .filter(|n| n.starts_with(&format!("{from}{SEPARATOR}")))
            .collect();
        rename_dir(&old, &new)?;
        for child in children {
            let renamed = format!("{to}{}", &child[from.len()..]);
            rename_dir(&self.path(&child)?, &self.path(&renamed)?)?;
        }
        Ok(())
    }
}

impl FolderTree for Folders {
    fn list(&self) -> Result<Vec<String>, Error> {
        Folders::list(self)
    }
    fn create(&self, name: &str) -> Result<(), Error> {
        Folders::create(self, name)
    }
    fn delete(&self, name: &str) -> Result<(), Error> {
        Folders::delete(self, name)
    }
    fn rename(&self, from: &str, to: &str) -> Result<(), Error> {
        Folders::rename(self, from, to)
    }
    fn open(&self, name: &str) -> Result<Box<dyn Mailbox>, Error> {
        Ok(Box::new(Folders::open(self, name)?))
    }
}

fn rename_dir(from: &Path, to: &Path) -> Result<(), Error> {
    fs::rename(from, to).map_err(|e| Error::io(from, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_one_to_one_and_hostile_names_are_refused() {
        for (imap, dir) in [
            ("Sent", ".Sent"),
            ("Lists/rust", ".Lists.rust"),
            ("Mr. Smith", ".Mr%2E Smith"),
            ("100%", ".100%25"),
        ] {
            assert_eq!(dir_name(&parts(imap).unwrap().unwrap()), dir);
            assert_eq!(imap_name(dir).as_deref(), Some(imap));
        }
        for bad in [
            "",
            "/x",
            "x/",
            "a//b",
            "..",
            "a/../b",
            "nul\0",
            "tab\tname",
            "INBOX/child",
        ] {
            assert!(parts(bad).is_err(), "{bad:?}");
        }
        assert!(parts("inbox").unwrap().is_none());
        assert_eq!(imap_name(".."), None);
        assert_eq!(imap_name("cur"), None);
    }

    #[test]
    fn create_list_rename_delete() {
        let dir = tempfile::tempdir().unwrap();
        let folders = Folders::new(dir.path().join("Maildir"));
        Maildir::new(dir.path().join("Maildir")).ensure().unwrap();
        for name in ["Lists", "Lists/rust", "Lists/rust/announce", "Mr. Smith"] {
            folders.create(name).unwrap();
        }
        assert!(matches!(
            folders.create("Lists"),
            Err(Error::AlreadyExists(_))
        ));
        assert!(matches!(
            folders.create("INBOX"),
            Err(Error::AlreadyExists(_))
        ));
        assert_eq!(
            folders.list().unwrap(),
            [
                "INBOX",
                "Lists",
                "Lists/rust",
                "Lists/rust/announce",
                "Mr. Smith"
            ]
        );
        folders.rename("Lists", "Archive/Lists").unwrap();
        assert_eq!(
            folders.list().unwrap(),
            [
                "INBOX",
                "Archive/Lists",
                "Archive/Lists/rust",
                "Archive/Lists/rust/announce",
                "Mr. Smith"
            ]
        );
        folders.delete("Mr. Smith").unwrap();
        assert!(matches!(
            folders.delete("Mr. Smith"),
            Err(Error::NoSuchMailbox(_))
        ));
        assert!(folders.delete("INBOX").is_err());
        assert!(matches!(folders.open("Nope"), Err(Error::NoSuchMailbox(_))));
        assert!(folders.open("Archive/Lists/rust").is_ok());
    }
}
