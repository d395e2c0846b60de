//! `\Recent` (RFC 3501 2.3.2): a message is recent in exactly one session, the first one to
//! learn of it. Which UIDs have been claimed is one number per folder, the first UID no session
//! has claimed yet, kept in a small file beside the folder's index, so sessions in other
//! processes (another worker, a server started again) agree. Claims take a file lock, so two
//! sessions never claim the same message.
//!
//! The file is 8 bytes: UIDVALIDITY and the first unclaimed UID, little-endian. It is written
//! in place without fsync: after a crash or without the file, the folder's messages are
//! recent once more for the next session that selects it, nothing worse.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::mailbox::Uid;
use crate::Error;

/// The name of the file inside a maildir folder (an mbox keeps it beside its state file).
pub const FILE_NAME: &str = "roost.recent";

/// Where one folder keeps which of its messages a session has claimed as recent.
#[derive(Debug, Clone)]
pub struct RecentMark {
    path: PathBuf,
}

impl RecentMark {
    /// The mark kept in file `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The first UID no session has claimed (under `uidvalidity`; a mark of another
    /// UIDVALIDITY, or none, leaves every message unclaimed). For EXAMINE and STATUS, which
    /// look without claiming.
    pub fn first_unclaimed(&self, uidvalidity: u32) -> Uid {
        match File::open(&self.path) {
            Ok(file) => read_mark(&file, uidvalidity),
            Err(_) => 1,
        }
    }

    /// Claims every unclaimed UID below `uidnext` for the caller; returns the first one
    /// claimed (`uidnext` or more when there was nothing left to claim).
    pub fn claim(&self, uidvalidity: u32, uidnext: Uid) -> Result<Uid, Error> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&self.path)
            .map_err(|e| self.error(e))?;
        file.lock().map_err(|e| self.error(e))?;
        let first = read_mark(&file, uidvalidity);
        if first < uidnext {
            let mut mark = [0u8; 8];
            mark[..4].copy_from_slice(&uidvalidity.to_le_bytes());
            mark[4..].copy_from_slice(&uidnext.to_le_bytes());
            file.write_all_at(&mark, 0).map_err(|e| self.error(e))?;
        }
        // Dropping the file releases the lock.
        Ok(first)
    }

    /// Where the mark lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn error(&self, e: io::Error) -> Error {
        Error::io(&self.path, e)
    }
}

/// The first unclaimed UID a mark file says, for `uidvalidity`.
fn read_mark(file: &File, uidvalidity: u32) -> Uid {
    let mut mark = [0u8; 8];
    if file.read_exact_at(&mut mark, 0).is_err() {
        return 1;
    }
    let (valid, first) = mark.split_at(4);
    let (Ok(valid), Ok(first)) = (<[u8; 4]>::try_from(valid), <[u8; 4]>::try_from(first)) else {
        return 1;
    };
    if u32::from_le_bytes(valid) != uidvalidity {
        return 1;
    }
    u32::from_le_bytes(first).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_uid_is_claimed_once() {
        let dir = tempfile::tempdir().unwrap();
        let mark = RecentMark::new(dir.path().join(FILE_NAME));
        assert_eq!(mark.first_unclaimed(7), 1);
        assert_eq!(mark.claim(7, 4).unwrap(), 1);
        assert_eq!(mark.claim(7, 4).unwrap(), 4, "nothing left to claim");
        assert_eq!(mark.first_unclaimed(7), 4);
        assert_eq!(mark.claim(7, 6).unwrap(), 4);
        // A rebuilt folder (new UIDVALIDITY) starts over.
        assert_eq!(mark.first_unclaimed(8), 1);
        assert_eq!(mark.claim(8, 2).unwrap(), 1);
    }

    #[test]
    fn a_damaged_mark_leaves_everything_unclaimed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        std::fs::write(&path, b"xy").unwrap();
        let mark = RecentMark::new(&path);
        assert_eq!(mark.first_unclaimed(1), 1);
        assert_eq!(mark.claim(1, 3).unwrap(), 1);
        assert_eq!(mark.first_unclaimed(1), 3);
    }
}
