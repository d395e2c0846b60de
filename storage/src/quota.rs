//! Per-user quota: how much mail a user may keep (bytes and messages), how much they keep, and
//! the refusal of a message that would go over (IMAP `NO [OVERQUOTA]`, SMTP/LMTP 552 5.2.2).
//!
//! Usage is kept the Maildir++ way, in `maildirsize` at the root of the user's maildir (the
//! file Dovecot's and Courier's maildir quota keep, so either server reads the other's): a
//! first line with the limits, then one `bytes messages` line per change, appended (one small
//! `O_APPEND` write each, so writers never interleave). Reading it is one small read; it is
//! counted afresh from the folders' file names (sizes are in them: `,W=`, else `,S=`) only
//! when it is missing, names other limits, or has grown past 5120 bytes, as the Maildir++
//! rules say. A message counts with its RFC822.SIZE (CRLF line ends), so the usage is the sum
//! of every folder's STATUS SIZE.

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::maildir::filename;
use crate::{durable, Error};

/// The file's name in the root of a maildir tree.
pub const FILE_NAME: &str = "maildirsize";

/// Past this size the file is counted afresh and rewritten (Maildir++).
const RECOUNT_ABOVE: u64 = 5120;

/// What one user may keep; `None` is no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuotaLimits {
    /// Bytes of mail.
    pub storage: Option<u64>,
    /// Messages.
    pub messages: Option<u64>,
}

/// A quota rule that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("quota rule {rule:?}: {reason}")]
pub struct BadRule {
    /// The rule as written.
    pub rule: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl QuotaLimits {
    /// Whether nothing is limited (no usage is then kept).
    pub fn is_unlimited(&self) -> bool {
        self.storage.is_none() && self.messages.is_none()
    }

    /// Applies one rule in Dovecot's `quota_rule` form: `*:storage=1G`, `*:messages=10000`,
    /// `storage=512M` (the `*:` root is optional; a limit of 0 or `none`/`unlimited` lifts it).
    pub fn apply_rule(&mut self, rule: &str) -> Result<(), BadRule> {
        let bad = |reason| BadRule {
            rule: rule.to_string(),
            reason,
        };
        let body = rule.strip_prefix("*:").unwrap_or(rule);
        let (key, value) = body
            .split_once('=')
            .ok_or_else(|| bad("expected storage=SIZE or messages=COUNT"))?;
        let value = value.trim();
        let lifted = matches!(value, "0" | "none" | "unlimited");
        match key.trim().to_ascii_lowercase().as_str() {
            "storage" | "bytes" => {
                self.storage = match lifted {
                    true => None,
                    false => Some(parse_size(value).ok_or_else(|| bad("unreadable size"))?),
                }
            }
            "messages" => {
                self.messages = match lifted {
                    true => None,
                    false => Some(value.parse().map_err(|_| bad("unreadable count"))?),
                }
            }
            _ => return Err(bad("only storage= and messages= are known")),
        }
        Ok(())
    }
}

/// A size as admins write them: bytes, or with `k`, `M`, `G`, `T` (powers of 1024, either
/// case, an optional trailing `B`).
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let text = text
        .strip_suffix(['B', 'b'])
        .filter(|t| t.ends_with(|c: char| c.is_ascii_alphabetic()))
        .unwrap_or(text);
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, ""),
    };
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        _ => return None,
    };
    digits.parse::<u64>().ok()?.checked_mul(1 << shift)
}

/// How much mail a user keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Bytes of mail, as stored.
    pub bytes: u64,
    /// Messages.
    pub messages: u64,
}

/// One user's quota: the limits and the usage file of their mail.
#[derive(Debug, Clone)]
pub struct Quota {
    /// The `maildirsize` file.
    file: PathBuf,
    /// The maildir tree a lost or stale file is counted afresh from; `None` for mbox, whose
    /// count is made when the store is opened (see [`Quota::set_usage`]).
    tree: Option<PathBuf>,
    limits: QuotaLimits,
}

impl Quota {
    /// The quota of the maildir tree rooted at `tree` (the file in its root).
    pub fn new(tree: &Path, limits: QuotaLimits) -> Self {
        Self {
            file: tree.join(FILE_NAME),
            tree: Some(tree.to_path_buf()),
            limits,
        }
    }

    /// A quota kept in `file` for mail that cannot be counted from file names (mbox): the
    /// store counts it with [`Quota::set_usage`] when [`Quota::needs_count`] says so.
    pub fn counted(file: PathBuf, limits: QuotaLimits) -> Self {
        Self {
            file,
            tree: None,
            limits,
        }
    }

    /// The limits.
    pub fn limits(&self) -> QuotaLimits {
        self.limits
    }

    /// Whether the file is missing, stale or names other limits, so the usage must be
    /// counted afresh.
    pub fn needs_count(&self) -> bool {
        !matches!(self.recorded(), Ok(Some(_)))
    }

    /// The usage the file records, when it can be trusted: `None` when it is missing, names
    /// other limits, has an unreadable line, or has grown past [`RECOUNT_ABOVE`] (read no
    /// further than that, whoever made the file).
    fn recorded(&self) -> std::io::Result<Option<Usage>> {
        let file = match fs::File::open(&self.file) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut text = String::new();
        file.take(RECOUNT_ABOVE + 1).read_to_string(&mut text)?;
        Ok(match text.len() as u64 > RECOUNT_ABOVE {
            true => None,
            false => self.sum(&text),
        })
    }

    /// Writes the file anew with this usage (after a count of the mail).
    pub fn set_usage(&self, usage: Usage) -> Result<(), Error> {
        let text = format!("{}\n{} {}\n", self.header(), usage.bytes, usage.messages);
        let file = &self.file;
        let dir = file.parent().unwrap_or(Path::new("."));
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| Error::io(dir, e))?;
        durable::replace_rebuildable(dir, FILE_NAME, text.as_bytes()).map(drop)
    }

    /// The limits line this quota writes first.
    fn header(&self) -> String {
        let storage = self.limits.storage.unwrap_or(0);
        let messages = self.limits.messages.unwrap_or(0);
        format!("{storage}S,{messages}C")
    }

    /// The usage now: the file's sum, or a fresh count when the file cannot be trusted.
    pub fn usage(&self) -> Result<Usage, Error> {
        match self.recorded() {
            Ok(Some(usage)) => Ok(usage),
            Ok(None) => self.recount(),
            Err(e) => Err(Error::io(&self.file, e)),
        }
    }

    /// The sum of the file's lines; `None` when its limits line is not this quota's or a line
    /// is unreadable (a recount follows).
    fn sum(&self, text: &str) -> Option<Usage> {
        let mut lines = text.lines();
        if lines.next()? != self.header() {
            return None;
        }
        let (mut bytes, mut messages) = (0i64, 0i64);
        for line in lines.filter(|l| !l.trim().is_empty()) {
            let mut fields = line.split_whitespace();
            bytes = bytes.checked_add(fields.next()?.parse().ok()?)?;
            messages = messages.checked_add(fields.next()?.parse().ok()?)?;
        }
        Some(Usage {
            bytes: bytes.max(0) as u64,
            messages: messages.max(0) as u64,
        })
    }

    /// Refuses a new message of `size` bytes that would take the user over a limit.
    pub fn admit(&self, size: u64) -> Result<(), Error> {
        let usage = self.usage()?;
        let over_storage = self
            .limits
            .storage
            .is_some_and(|limit| usage.bytes.saturating_add(size) > limit);
        let over_messages = self
            .limits
            .messages
            .is_some_and(|limit| usage.messages.saturating_add(1) > limit);
        match over_storage || over_messages {
            true => Err(Error::OverQuota),
            false => Ok(()),
        }
    }

    /// Records a change of usage (a message added: positive; removed: negative). A failure is
    /// logged, never returned: the mail change it records has already happened, and the next
    /// recount puts the file right.
    pub fn charge(&self, bytes: i64, messages: i64) {
        if bytes == 0 && messages == 0 {
            return;
        }
        let path = &self.file;
        let written = OpenOptions::new()
            .append(true)
            .mode(0o600)
            .open(path)
            .and_then(|mut file| file.write_all(format!("{bytes} {messages}\n").as_bytes()));
        if let Err(e) = written {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!("{}: cannot record quota usage: {e}", path.display());
            }
            // Without the file, the next look counts afresh anyway.
        }
    }

    /// Counts the tree's messages from their file names and writes the file anew (mbox: the
    /// count made at the store's opening stands; without one, nothing is counted).
    fn recount(&self) -> Result<Usage, Error> {
        let Some(tree) = &self.tree else {
            return Ok(Usage::default());
        };
        let mut usage = Usage::default();
        let mut folders = vec![tree.clone()];
        if let Ok(entries) = fs::read_dir(tree) {
            folders.extend(
                entries
                    .flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
                    .map(|e| e.path())
                    .filter(|p| p.join("cur").is_dir()),
            );
        }
        for folder in folders {
            for place in ["cur", "new"] {
                let Ok(entries) = fs::read_dir(folder.join(place)) else {
                    continue;
                };
                for entry in entries.flatten() {
                    let name = entry.file_name();
                    let name = name.to_string_lossy();
                    if name.starts_with('.') {
                        continue;
                    }
                    let size = filename::field(&name, "W=")
                        .or_else(|| filename::field(&name, "S="))
                        .or_else(|| entry.metadata().ok().map(|m| m.size()))
                        .unwrap_or(0);
                    usage.bytes += size;
                    usage.messages += 1;
                }
            }
        }
        self.set_usage(usage)?;
        Ok(usage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_rules_read_as_admins_write_them() {
        assert_eq!(parse_size("1024"), Some(1024));
        assert_eq!(parse_size("10k"), Some(10 << 10));
        assert_eq!(parse_size("512M"), Some(512 << 20));
        assert_eq!(parse_size("1GB"), Some(1 << 30));
        assert_eq!(parse_size("2T"), Some(2 << 40));
        assert_eq!(parse_size("1X"), None);
        assert_eq!(parse_size("G"), None);
        let mut limits = QuotaLimits::default();
        limits.apply_rule("*:storage=1G").unwrap();
        limits.apply_rule("messages=100").unwrap();
        assert_eq!(limits.storage, Some(1 << 30));
        assert_eq!(limits.messages, Some(100));
        limits.apply_rule("*:storage=none").unwrap();
        assert_eq!(limits.storage, None);
        assert!(limits.apply_rule("*:inodes=5").is_err());
        assert!(limits.apply_rule("storage").is_err());
    }

    #[test]
    fn usage_follows_charges_and_a_recount_finds_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for place in ["cur", "new", ".Sent/cur", ".Sent/new"] {
            fs::create_dir_all(root.join(place)).unwrap();
        }
        fs::write(root.join("cur/1.M1.host,S=100:2,S"), vec![b'x'; 100]).unwrap();
        fs::write(root.join("new/2.M2.host"), vec![b'x'; 40]).unwrap();
        fs::write(root.join(".Sent/cur/3.M3.host,S=60:2,"), vec![b'x'; 60]).unwrap();
        let limits = QuotaLimits {
            storage: Some(300),
            messages: Some(4),
        };
        let quota = Quota::new(root, limits);
        assert_eq!(
            quota.usage().unwrap(),
            Usage {
                bytes: 200,
                messages: 3
            }
        );
        assert!(quota.admit(100).is_ok());
        assert!(matches!(quota.admit(101), Err(Error::OverQuota)));
        quota.charge(50, 1);
        assert_eq!(quota.usage().unwrap().messages, 4);
        assert!(
            matches!(quota.admit(1), Err(Error::OverQuota)),
            "4 of 4 messages"
        );
        quota.charge(-50, -1);
        assert_eq!(quota.usage().unwrap().bytes, 200);
        // Other limits (the admin changed them): counted afresh under the new line.
        let looser = Quota::new(root, QuotaLimits::default());
        assert_eq!(looser.usage().unwrap().messages, 3);
        let text = fs::read_to_string(root.join(FILE_NAME)).unwrap();
        assert!(text.starts_with("0S,0C\n"), "{text}");
    }
}
