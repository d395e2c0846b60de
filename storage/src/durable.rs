//! Replacing a small file so that a crash leaves either the old or the new one, never a mix:
//! the one implementation behind `dovecot-uidlist`, `dovecot-keywords`, the maildir index,
//! the mbox index and UID side file, and the subscriptions file.
//!
//! The order of the durable steps, which every caller relies on:
//!
//! ```text
//!   1. write tmp      `.<name>.tmp.<pid>` beside the target, 0600, created afresh
//!   2. fsync          the tmp file's bytes reach the disk
//!   3. rename         tmp → name: atomic, readers see the old file or the new, whole
//!   4. fsync dir      the rename itself survives a crash
//! ```
//! A file that can always be rebuilt (the CRC-checked index) skips steps 2 and 4
//! ([`replace_rebuildable`]): readers still never see a half-written file, and a crash costs at
//! most a rebuild. On any error the tmp file is removed and the target is left as it was.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use crate::Error;

/// Whether [`replace_in`] fsyncs (steps 2 and 4) or only renames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Durability {
    /// Every step: the file holds what cannot be recomputed.
    Durable,
    /// Write and rename only: the file is rebuilt if a crash loses it.
    Rebuildable,
}

/// Replaces the file at `path` with `bytes` durably, creating its directory (0700) if needed,
/// for files whose folder may not exist yet (an mbox's side files, the subscriptions).
pub fn replace_file(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::io(dir, e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    replace(dir, &name, bytes)
}

/// Opens (creating, 0600) a lock file, for an flock on it.
pub fn open_lock_file(path: &Path) -> Result<File, Error> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io(path, e))
}

/// Opens a lock file ([`open_lock_file`]) and waits for its exclusive lock, held until the
/// file is dropped.
pub fn lock_exclusive(path: &Path) -> Result<File, Error> {
    let file = open_lock_file(path)?;
    file.lock().map_err(|e| Error::io(path, e))?;
    Ok(file)
}

/// Replaces `dir/name` with `bytes` durably (write tmp, fsync, rename, fsync dir).
pub fn replace(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), Error> {
    replace_in(dir, name, bytes, Durability::Durable).map(drop)
}

/// Replaces `dir/name` with `bytes` without the fsyncs (write tmp, rename), for files that can
/// always be rebuilt: the index, CRC-checked and self-healing. Returns the new file, open for
/// reading, so the writer can map what it wrote.
pub fn replace_rebuildable(dir: &Path, name: &str, bytes: &[u8]) -> Result<File, Error> {
    replace_in(dir, name, bytes, Durability::Rebuildable)
}

/// Step 4 on its own: makes renames and creations in `dir` survive a crash (after a message
/// moved from `tmp/` into `new/` or `cur/`, after a marker file was created).
pub fn sync_dir(dir: &Path) -> Result<(), Error> {
    fsync_dir(dir).map_err(|e| Error::io(dir, e))
}

/// [`sync_dir`] with the bare I/O error, for callers that add their own context (the mbox
/// rewrite reports the mbox, not its directory).
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The four steps; on failure the tmp file is removed and the error names the target. Returns
/// the new file, open for reading and writing.
fn replace_in(dir: &Path, name: &str, bytes: &[u8], durability: Durability) -> Result<File, Error> {
    // Unique per call, not only per process: two sessions of one process may replace the same
    // file at once, and one's rename must not take the other's temporary file away.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.tmp.{}.{n}", std::process::id()));
    let target = dir.join(name);
    let durable = durability == Durability::Durable;
    let written = (|| {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(bytes)?;
        if durable {
            file.sync_all()?;
        }
        fs::rename(&tmp, &target)?;
        if durable {
            fsync_dir(dir)?;
        }
        Ok(file)
    })();
    written.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::io(target, e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_and_leaves_no_tmp_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/dir/file");
        replace_file(&path, b"old").unwrap();
        replace_file(&path, b"new").unwrap();
        replace_rebuildable(&dir.path().join("sub/dir"), "index", b"ix").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        let names: Vec<String> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.contains(".tmp.")), "{names:?}");
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn a_failed_replace_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        replace(dir.path(), "file", b"old").unwrap();
        // A directory in the way of the rename: the write fails, the old file stays.
        let blocked = dir.path().join("blocked");
        fs::create_dir_all(blocked.join("x")).unwrap();
        assert!(replace(dir.path(), "blocked", b"new").is_err());
        assert_eq!(fs::read(dir.path().join("file")).unwrap(), b"old");
        assert!(!dir
            .path()
            .join(".blocked.tmp.".to_string() + &std::process::id().to_string())
            .exists());
    }
}
