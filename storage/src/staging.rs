//! Messages written durably before they are appended: the bytes go to a file beside the
//! mailbox (a maildir's `tmp/`) and are fsynced without holding the mailbox, so a slow disk
//! holds up only the session that is appending, not every session of the mailbox; the append
//! itself then only renames the file under the lock.

use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::wire::CountingReader;
use crate::Error;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Where a mailbox lets messages be written ahead of their append (a directory on the same
/// file system, so the append is a rename).
#[derive(Debug, Clone)]
pub struct Staging {
    dir: PathBuf,
}

/// A message written and fsynced, waiting to be appended; removed if it never is.
#[derive(Debug)]
pub struct Staged {
    path: PathBuf,
    key: String,
    size: u64,
    crlf_size: u64,
    taken: bool,
}

impl Staging {
    /// Staging in `dir` (it must exist).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// Writes `message` to a new file with a unique maildir-style name, sets its mtime to
    /// `mtime` (the INTERNALDATE) if given, and fsyncs it.
    pub fn write(
        &self,
        message: &mut dyn Read,
        mtime: Option<SystemTime>,
    ) -> Result<Staged, Error> {
        let key = unique_name();
        let path = self.dir.join(&key);
        let written = (|| {
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)?;
            let mut counting = CountingReader::new(message);
            let size = io::copy(&mut counting, &mut file)?;
            file.flush()?;
            if let Some(mtime) = mtime {
                file.set_modified(mtime)?;
            }
            file.sync_all()?;
            Ok((size, counting.crlf_size()))
        })();
        match written {
            Ok((size, crlf_size)) => Ok(Staged {
                path,
                key,
                size,
                crlf_size,
                taken: false,
            }),
            Err(e) => {
                let _ = fs::remove_file(&path);
                Err(Error::io(path, e))
            }
        }
    }
}

impl Staged {
    /// The file's unique name (the maildir key).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its size in bytes as written.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Its size with CRLF line ends (RFC822.SIZE).
    pub fn crlf_size(&self) -> u64 {
        self.crlf_size
    }

    /// The file has been moved into the mailbox: it is no longer removed on drop.
    pub(crate) fn taken(mut self) {
        self.taken = true;
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.taken {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// `secs.MmicrosPpidQn.host`, unique per process and call as the maildir spec asks.
fn unique_name() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "{}.M{}P{}Q{}.{}",
        now.as_secs(),
        now.subsec_micros(),
        std::process::id(),
        n,
        maildir_host()
    )
}

/// The host name as maildir file names need it (`/`, `:` and `,` escaped), computed once.
fn maildir_host() -> &'static str {
    static ESCAPED: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ESCAPED.get_or_init(|| {
        crate::host::name()
            .replace('/', "\\057")
            .replace(':', "\\072")
            .replace(',', "\\054")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_staged_message_is_written_whole_and_removed_unless_taken() {
        let dir = tempfile::tempdir().unwrap();
        let staging = Staging::new(dir.path());
        let staged = staging.write(&mut &b"a\nb\n"[..], None).unwrap();
        assert_eq!((staged.size(), staged.crlf_size()), (4, 6));
        assert_eq!(fs::read(staged.path()).unwrap(), b"a\nb\n");
        let path = staged.path().to_path_buf();
        drop(staged);
        assert!(
            !path.exists(),
            "an append that never happened leaves nothing behind"
        );
        let kept = staging.write(&mut &b"x"[..], None).unwrap();
        let path = kept.path().to_path_buf();
        kept.taken();
        assert!(path.exists());
    }
}
