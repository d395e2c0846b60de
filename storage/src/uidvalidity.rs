//! Handing out UIDVALIDITY values that never repeat within one user's mail (RFC 3501
//! 2.3.1.1): a folder deleted and created again, even within the same second, gets a value
//! above its old one, so a client's cached UIDs of the old folder are never taken for the new
//! one's. The last value handed out is kept in one small file per user (Dovecot keeps
//! `dovecot-uidvalidity` for the same reason), under a file lock, so every process agrees.

use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::Error;

/// The file's name in a maildir tree's root (an mbox tree keeps it in its `.roost` folder).
pub const FILE_NAME: &str = "roost.uidvalidity";

/// The current time as a UIDVALIDITY candidate (never 0).
fn now() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_secs() as u32)
        .max(1)
}

/// A new UIDVALIDITY: the current time, but above `floor`-1 and above every value handed out
/// through the file at `path` before. Without a usable file, the time and `floor` alone.
pub fn issue(path: Option<&Path>, floor: u32) -> u32 {
    let fallback = now().max(floor).max(1);
    let Some(path) = path else {
        return fallback;
    };
    match issue_through(path, fallback) {
        Ok(value) => value,
        Err(e) => {
            tracing::warn!("{e}: UIDVALIDITY taken from the clock alone");
            fallback
        }
    }
}

fn issue_through(path: &Path, candidate: u32) -> Result<u32, Error> {
    let io = |e| Error::io(path, e);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    file.lock().map_err(io)?;
    let mut text = String::new();
    // A damaged file counts as none: the clock still gives a fresh value.
    // One number: read no more than one could take, whatever the file holds.
    let _ = (&mut file).take(32).read_to_string(&mut text);
    let last: u32 = text.trim().parse().unwrap_or(0);
    let value = candidate.max(last.saturating_add(1));
    file.set_len(0).map_err(io)?;
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    file.write_all(format!("{value}\n").as_bytes())
        .map_err(io)?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_rise_even_within_one_second() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let a = issue(Some(&path), 1);
        let b = issue(Some(&path), 1);
        let c = issue(Some(&path), 1);
        assert!(a < b && b < c, "{a} {b} {c}");
        assert!(issue(Some(&path), u32::MAX - 1) == u32::MAX - 1);
        std::fs::write(&path, b"garbage").unwrap();
        assert!(issue(Some(&path), 5) >= now());
    }
}
