//! Maildir (cur/ new/ tmp/) creation, durable delivery and counting.
//!
//! Delivery follows the maildir protocol's durable order: write to `tmp/`, fsync the file,
//! rename into `new/`, fsync `new/`. Only then is a message reported as stored.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::Error;

/// One maildir folder on disk.
#[derive(Debug, Clone)]
pub struct Maildir {
    root: PathBuf,
}

/// Message count and total size of a folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FolderStats {
    /// Number of messages in `new/` and `cur/`.
    pub messages: usize,
    /// Sum of their file sizes in bytes.
    pub bytes: u64,
}

static DELIVERY_COUNTER: AtomicU64 = AtomicU64::new(0);

impl Maildir {
    /// A maildir rooted at `root` (not touched until used).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The folder's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates the folder and its `cur/ new/ tmp/` with mode 0700 where missing.
    pub fn ensure(&self) -> Result<(), Error> {
        let mut builder = DirBuilder::new();
        builder.recursive(true).mode(0o700);
        for sub in ["cur", "new", "tmp"] {
            let dir = self.root.join(sub);
            builder.create(&dir).map_err(|e| Error::io(&dir, e))?;
        }
        Ok(())
    }

    /// Stores a message durably in `new/` and returns its file name.
    pub fn deliver(&self, message: &mut dyn Read) -> Result<String, Error> {
        let name = unique_name();
        let tmp_path = self.root.join("tmp").join(&name);
        let new_path = self.root.join("new").join(&name);
        let written = write_synced(&tmp_path, message);
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp_path);
            return Err(Error::io(&tmp_path, e));
        }
        fs::rename(&tmp_path, &new_path).map_err(|e| Error::io(&new_path, e))?;
        let new_dir = self.root.join("new");
        File::open(&new_dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io(&new_dir, e))?;
        Ok(name)
    }

    /// Counts the messages in `new/` and `cur/`.
    pub fn stats(&self) -> Result<FolderStats, Error> {
        let mut stats = FolderStats::default();
        for sub in ["new", "cur"] {
            let dir = self.root.join(sub);
            let entries = fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))?;
            for entry in entries {
                let entry = entry.map_err(|e| Error::io(&dir, e))?;
                if entry.file_name().as_encoded_bytes().starts_with(b".") {
                    continue;
                }
                // A file renamed or expunged by another process meanwhile is simply not counted.
                if let Ok(meta) = entry.metadata() {
                    if meta.is_file() {
                        stats.messages += 1;
                        stats.bytes += meta.len();
                    }
                }
            }
        }
        Ok(stats)
    }
}

fn write_synced(path: &Path, message: &mut dyn Read) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    io::copy(message, &mut file)?;
    file.flush()?;
    file.sync_all()
}

/// `secs.MmicrosPpidQn.host`, unique per process and call as the maildir spec asks.
fn unique_name() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let n = DELIVERY_COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "{}.M{}P{}Q{}.{}",
        now.as_secs(),
        now.subsec_micros(),
        std::process::id(),
        n,
        hostname()
    )
}

fn hostname() -> String {
    let raw =
        fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_else(|_| "localhost".into());
    raw.trim().replace('/', "\\057").replace(':', "\\072")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn delivery_is_private_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let md = Maildir::new(dir.path().join("Maildir"));
        md.ensure().unwrap();
        let mode = fs::metadata(md.root().join("new"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        let a = md
            .deliver(&mut &b"Subject: a\r\n\r\nhello\r\n"[..])
            .unwrap();
        let b = md.deliver(&mut &b"Subject: b\r\n\r\nx\r\n"[..]).unwrap();
        assert_ne!(a, b);
        let file = md.root().join("new").join(&a);
        assert_eq!(
            fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(fs::read(file).unwrap(), b"Subject: a\r\n\r\nhello\r\n");
        assert_eq!(
            md.stats().unwrap(),
            FolderStats {
                messages: 2,
                bytes: 38
            }
        );
        assert_eq!(fs::read_dir(md.root().join("tmp")).unwrap().count(), 0);
    }
}
