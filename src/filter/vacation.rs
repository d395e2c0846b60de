//! The vacation memory (RFC 5230 4.2 `:days`): which sender has been answered, for which
//! reply, until when, so each sender gets one reply per period. One small file per user,
//! beside their scripts, locked while it is read and rewritten so two deliveries at once
//! cannot both answer.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The file's name in the user's script directory.
pub const FILE_NAME: &str = "roost.vacation";

/// Entries kept at most; the oldest go first (a sender answered long ago may be answered again
/// a little early, never twice in a row within the period of a recent reply).
const MAX_ENTRIES: usize = 10_000;

/// Bytes read at most (an entry is under 40 bytes).
const MAX_BYTES: u64 = 1024 * 1024;

/// The memory's key for (handle, sender): the interpreter's stable hash, the sender's case
/// ignored.
fn key(handle: &str, sender: &str) -> String {
    let sender = sender.to_ascii_lowercase();
    roost_protocol::sieve::stable_hash(&[handle.as_bytes(), sender.as_bytes()])
}

/// One remembered reply: until when, and for what.
struct Entry {
    until: i64,
    key: String,
}

fn parse(text: &str, now: i64) -> Vec<Entry> {
    text.lines()
        .filter_map(|line| {
            let (until, key) = line.split_once(' ')?;
            let until: i64 = until.parse().ok()?;
            (until > now && key.len() == 16).then(|| Entry {
                until,
                key: key.to_string(),
            })
        })
        .collect()
}

/// Decides whether to send the reply for (`handle`, `sender`) now, and if so remembers it for
/// `period_seconds`. `Err` when the memory cannot be read or written: the caller then sends
/// nothing, since a reply too few is better than a reply storm.
pub fn should_reply(
    dir: &Path,
    handle: &str,
    sender: &str,
    now: i64,
    period_seconds: u64,
) -> std::io::Result<bool> {
    std::fs::create_dir_all(dir)?;
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(dir.join(FILE_NAME))?;
    file.lock()?;
    let mut bytes = Vec::new();
    (&file).take(MAX_BYTES).read_to_end(&mut bytes)?;
    let mut entries = parse(&String::from_utf8_lossy(&bytes), now);
    let wanted = key(handle, sender);
    if entries.iter().any(|e| e.key == wanted) {
        return Ok(false);
    }
    let period = i64::try_from(period_seconds).unwrap_or(i64::MAX);
    entries.push(Entry {
        until: now.saturating_add(period),
        key: wanted,
    });
    if entries.len() > MAX_ENTRIES {
        entries.sort_by_key(|e| std::cmp::Reverse(e.until));
        entries.truncate(MAX_ENTRIES);
    }
    rewrite(&mut file, &entries)?;
    Ok(true)
}

fn rewrite(file: &mut File, entries: &[Entry]) -> std::io::Result<()> {
    let mut out = String::with_capacity(entries.len() * 28);
    for e in entries {
        out.push_str(&format!("{} {}\n", e.until, e.key));
    }
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    file.write_all(out.as_bytes())?;
    file.sync_data()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_reply_per_sender_per_period_and_per_handle() {
        let dir = tempfile::tempdir().unwrap();
        let day: u64 = 86_400;
        let now: i64 = 1_800_000_000;
        assert!(should_reply(dir.path(), "away", "Bob@X.example", now, day).unwrap());
        assert!(!should_reply(dir.path(), "away", "bob@x.example", now + 60, day).unwrap());
        assert!(should_reply(dir.path(), "other", "bob@x.example", now + 60, day).unwrap());
        assert!(should_reply(dir.path(), "away", "carol@x.example", now + 60, day).unwrap());
        assert!(should_reply(dir.path(), "away", "bob@x.example", now + 86_401, day).unwrap());
    }

    #[test]
    fn a_damaged_memory_is_read_as_far_as_it_makes_sense() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), b"garbage\n\xff\xfe\n99 short\n").unwrap();
        assert!(should_reply(dir.path(), "h", "a@b", 10, 100).unwrap());
        assert!(!should_reply(dir.path(), "h", "a@b", 11, 100).unwrap());
    }
}
