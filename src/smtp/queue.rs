//! The durable on-disk queue: messages waiting for the relayhost or for a local delivery retry,
//! and the spool DATA is streamed into.
//!
//! ```text
//!   QUEUE/tmp/ID            DATA being received (unlinked if the client goes away)
//!   QUEUE/ID.msg            the message, fsynced            ─┐ an entry exists once its
//!   QUEUE/ID.env            the envelope, fsynced            ─┘ envelope does (the commit)
//!   QUEUE/corrupt/          envelopes that failed their check, kept for the admin
//! ```
//! Commit order: message file fsync, rename into QUEUE; envelope written to tmp, fsync, rename,
//! then the directory fsync. An envelope describes itself: `ROOSTQ 1 <length> <crc32>` and
//! then that many bytes of JSON; anything else is reported as corrupt with the reason.
//! Whoever works on an entry holds an exclusive `flock` on its envelope, so the server's
//! queue runner and `roost queue flush` never attempt one message twice at once.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use roost_protocol::smtp::address::{Address, ReversePath};
use roost_protocol::smtp::params::{Notify, Ret};
use serde::{Deserialize, Serialize};

/// The envelope file's magic word and version.
const MAGIC: &str = "ROOSTQ 1";
/// The largest envelope read.
const MAX_ENVELOPE: u64 = 16 * 1024 * 1024;

/// Why the queue or an entry cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// An I/O error, with the path it concerned.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// A queue directory the user running the queue may not create or enter.
    #[error(transparent)]
    Denied(#[from] crate::config::AccessDenied),
    /// An envelope that fails its check.
    #[error("{path}: corrupt envelope: {reason}")]
    Corrupt {
        /// The envelope file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> QueueError + '_ {
    move |source| QueueError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One recipient still to be served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    /// The address (as given in RCPT TO, or the remote alias target), for DSNs and relaying;
    /// checked again when the envelope is read.
    #[serde(with = "as_text")]
    pub address: Address,
    /// Set for a local delivery to retry: the user whose INBOX gets it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_user: Option<String>,
    /// RCPT's `NOTIFY` (RFC 3461), when the client gave one.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_text")]
    pub notify: Option<Notify>,
    /// RCPT's `ORCPT`, `addr-type;xtext` as given (checked again before it is sent on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orcpt: Option<String>,
}

impl Recipient {
    /// A recipient without DSN parameters.
    pub fn new(address: Address, local_user: Option<String>) -> Self {
        Self {
            address,
            local_user,
            notify: None,
            orcpt: None,
        }
    }

    /// Whether the sender wants to hear about a final failure (the default).
    pub fn wants_failure(&self) -> bool {
        self.notify.is_none_or(|n| n.failure)
    }

    /// Whether the sender asked to hear about success.
    pub fn wants_success(&self) -> bool {
        self.notify.is_some_and(|n| n.success)
    }
}

/// What the queue knows about one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The queue id (also the file names).
    pub id: String,
    /// The reverse path (written empty for the null sender, bounces); checked again when the
    /// envelope is read.
    #[serde(with = "as_text")]
    pub from: ReversePath,
    /// Whether the message needs 8BITMIME onwards.
    #[serde(default)]
    pub eight_bit: bool,
    /// Whether the message needs SMTPUTF8 onwards.
    #[serde(default)]
    pub smtputf8: bool,
    /// When it was accepted (seconds since the epoch).
    pub created: u64,
    /// Attempts made so far.
    pub attempts: u32,
    /// Not to be tried before this time (seconds since the epoch).
    pub next_attempt: u64,
    /// The last temporary failure, for `roost queue` and the bounce.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Who still needs it.
    pub recipients: Vec<Recipient>,
    /// MAIL's `RET` (RFC 3461): what a failure DSN returns.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_text")]
    pub ret: Option<Ret>,
    /// MAIL's `ENVID`, xtext as given (checked again before it is sent on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envid: Option<String>,
}

/// Optional values stored as their text, and parsed (so checked) when read.
mod opt_text {
    use std::fmt::Display;
    use std::str::FromStr;

    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<T: Display, S: Serializer>(
        value: &Option<T>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) => s.collect_str(v),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, T, D>(d: D) -> Result<Option<T>, D::Error>
    where
        T: FromStr<Err: Display>,
        D: Deserializer<'de>,
    {
        match Option::<String>::deserialize(d)? {
            Some(text) => text
                .parse()
                .map(Some)
                .map_err(|e| D::Error::custom(format!("{text:?}: {e}"))),
            None => Ok(None),
        }
    }
}

/// Envelope addresses stored as the text they print as, and parsed (so checked) when read:
/// an envelope edited to carry a CR or LF is corrupt, not a header injection.
mod as_text {
    use std::fmt::Display;
    use std::str::FromStr;

    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<T: Display, S: Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(value)
    }

    pub fn deserialize<'de, T, D>(d: D) -> Result<T, D::Error>
    where
        T: FromStr<Err: Display>,
        D: Deserializer<'de>,
    {
        let text = String::deserialize(d)?;
        text.parse()
            .map_err(|e| D::Error::custom(format!("address {text:?}: {e}")))
    }
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

impl Envelope {
    /// The bytes of the envelope file.
    pub fn encode(&self) -> Vec<u8> {
        let json = serde_json::to_vec(self).unwrap_or_default();
        let mut out =
            format!("{MAGIC} {} {:08x}\n", json.len(), crc32fast::hash(&json)).into_bytes();
        out.extend_from_slice(&json);
        out
    }

    /// Checks and parses the bytes of an envelope file; `Err` says what is wrong.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let nl = bytes
            .iter()
            .position(|&b| b == b'\n')
            .ok_or("no header line")?;
        let header = std::str::from_utf8(&bytes[..nl]).map_err(|_| "header is not text")?;
        let fields: Vec<&str> = header.split(' ').collect();
        let [m1, m2, len, crc] = fields.as_slice() else {
            return Err(format!("bad header {header:?}"));
        };
        if format!("{m1} {m2}") != MAGIC {
            return Err(format!("unknown format {m1} {m2}"));
        }
        let len: usize = len.parse().map_err(|_| "bad length")?;
        let body = &bytes[nl + 1..];
        if body.len() != len {
            return Err(format!("length {} instead of {len}", body.len()));
        }
        if format!("{:08x}", crc32fast::hash(body)) != *crc {
            return Err("checksum mismatch".into());
        }
        serde_json::from_slice(body).map_err(|e| format!("bad JSON: {e}"))
    }
}

/// DATA being received into `tmp/`; removed on drop unless committed.
#[derive(Debug)]
pub struct Spool {
    /// The queue id this message will have.
    pub id: String,
    path: PathBuf,
    file: File,
    committed: bool,
}

impl Spool {
    /// The open spool file (for writing the message, and reading it back for delivery).
    pub fn file(&self) -> &File {
        &self.file
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// An entry being worked on: its envelope is locked until this is dropped.
#[derive(Debug)]
pub struct Locked {
    /// The envelope as read under the lock.
    pub envelope: Envelope,
    /// The message (its lock is the entry's).
    pub message: File,
}

/// The queue directory.
#[derive(Debug, Clone)]
pub struct Queue {
    dir: PathBuf,
}

/// A fresh queue id: time, then randomness (sortable, unguessable).
fn new_id() -> String {
    format!("{:010}.{:016x}", now(), rand::random::<u64>())
}

/// Whether a name is a queue id (so a file name from the directory can be trusted in paths).
fn is_id(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_hexdigit() || c == '.')
}

impl Queue {
    /// Opens (creating, 0700) the queue directory and its `tmp/` and `corrupt/`.
    pub fn open(dir: &Path) -> Result<Self, QueueError> {
        for sub in ["", "tmp", "corrupt"] {
            let path = dir.join(sub);
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&path)
                .map_err(io_err(&path))?;
        }
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Removes leftovers of a crash: spool files older than a day, and message files whose
    /// envelope never got written (older than an hour).
    pub fn clean(&self) {
        let old = |path: &Path, age: Duration| {
            fs::metadata(path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|e| e > age)
        };
        for entry in fs::read_dir(self.dir.join("tmp"))
            .into_iter()
            .flatten()
            .flatten()
        {
            if old(&entry.path(), Duration::from_secs(86400)) {
                let _ = fs::remove_file(entry.path());
            }
        }
        for entry in fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "msg")
                && !path.with_extension("env").exists()
                && old(&path, Duration::from_secs(3600))
            {
                tracing::warn!(
                    "queue: removing {} (its envelope was never written)",
                    path.display()
                );
                let _ = fs::remove_file(&path);
            }
        }
    }

    /// A new spool file for DATA.
    pub fn spool(&self) -> Result<Spool, QueueError> {
        let id = new_id();
        let path = self.dir.join("tmp").join(&id);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(io_err(&path))?;
        self.give_to_owner(&file);
        Ok(Spool {
            id,
            path,
            file,
            committed: false,
        })
    }

    /// Makes a spooled message a queue entry, durably: after this returns, a crash loses nothing.
    pub fn commit(&self, spool: &mut Spool, envelope: &Envelope) -> Result<(), QueueError> {
        spool.file.sync_all().map_err(io_err(&spool.path))?;
        let msg = self.dir.join(format!("{}.msg", spool.id));
        fs::rename(&spool.path, &msg).map_err(io_err(&msg))?;
        spool.committed = true;
        spool.path = msg;
        self.write_envelope(envelope)
    }

    /// Writes (or replaces) an entry's envelope: tmp, fsync, rename, directory fsync.
    pub fn write_envelope(&self, envelope: &Envelope) -> Result<(), QueueError> {
        let tmp = self.dir.join("tmp").join(format!("{}.env", envelope.id));
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io_err(&tmp))?;
        file.write_all(&envelope.encode())
            .and_then(|()| file.sync_all())
            .map_err(io_err(&tmp))?;
        self.give_to_owner(&file);
        let path = self.env_path(&envelope.id);
        fs::rename(&tmp, &path).map_err(io_err(&path))?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err(&self.dir))
    }

    /// `roost queue flush` run as root: new files belong to the queue's owner (the server's
    /// login user), or the server could not read them.
    fn give_to_owner(&self, file: &File) {
        if let Some((uid, gid)) = owner_of(&self.dir) {
            if crate::system::running_as_root() {
                let _ = std::os::unix::fs::fchown(file, Some(uid), Some(gid));
            }
        }
    }

    fn env_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.env"))
    }

    /// The ids of every entry, oldest first.
    pub fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let id = name.strip_suffix(".env")?;
                is_id(id).then(|| id.to_string())
            })
            .collect();
        ids.sort();
        ids
    }

    /// Reads an envelope without locking (for listing).
    pub fn read(&self, id: &str) -> Result<Envelope, QueueError> {
        let path = self.env_path(id);
        let mut bytes = Vec::new();
        File::open(&path)
            .and_then(|f| f.take(MAX_ENVELOPE).read_to_end(&mut bytes))
            .map_err(io_err(&path))?;
        Envelope::decode(&bytes).map_err(|reason| QueueError::Corrupt { path, reason })
    }

    /// Locks an entry for an attempt; `Ok(None)` if someone else holds it or it is gone.
    /// The lock is on the message file, which is never replaced (the envelope is).
    /// A corrupt envelope is moved to `corrupt/` (with its message) and reported.
    pub fn lock(&self, id: &str) -> Result<Option<Locked>, QueueError> {
        let msg = self.dir.join(format!("{id}.msg"));
        let message = match File::open(&msg) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(&msg)(e)),
        };
        match message.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Ok(None),
            Err(fs::TryLockError::Error(e)) => return Err(io_err(&msg)(e)),
        }
        // Whoever held the lock before may have finished the entry meanwhile.
        match self.read(id) {
            Ok(envelope) => Ok(Some(Locked { envelope, message })),
            Err(QueueError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                Ok(None)
            }
            Err(e @ QueueError::Corrupt { .. }) => {
                self.set_aside(id);
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// Moves an entry's files to `corrupt/`.
    fn set_aside(&self, id: &str) {
        for ext in ["env", "msg"] {
            let name = format!("{id}.{ext}");
            let _ = fs::rename(self.dir.join(&name), self.dir.join("corrupt").join(&name));
        }
    }

    /// Removes a finished entry (envelope first: without it the message is no entry).
    pub fn remove(&self, id: &str) -> Result<(), QueueError> {
        let env = self.env_path(id);
        fs::remove_file(&env).map_err(io_err(&env))?;
        let _ = fs::remove_file(self.dir.join(format!("{id}.msg")));
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err(&self.dir))
    }

    /// The size of an entry's message.
    pub fn message_size(&self, id: &str) -> u64 {
        fs::metadata(self.dir.join(format!("{id}.msg")))
            .map(|m| m.len())
            .unwrap_or(0)
    }
}

fn owner_of(path: &Path) -> Option<(u32, u32)> {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(path).ok().map(|m| (m.uid(), m.gid()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(id: &str) -> Envelope {
        Envelope {
            id: id.into(),
            from: "a@b.example".parse().unwrap(),
            eight_bit: false,
            smtputf8: false,
            created: 1,
            attempts: 0,
            next_attempt: 0,
            last_error: None,
            recipients: vec![Recipient::new("c@d.example".parse().unwrap(), None)],
            ret: None,
            envid: None,
        }
    }

    #[test]
    fn dsn_fields_round_trip_and_old_envelopes_still_load() {
        let mut env = envelope("1.ab");
        let old = env.encode();
        assert_eq!(
            Envelope::decode(&old).unwrap(),
            env,
            "no DSN fields written"
        );
        assert!(!String::from_utf8_lossy(&old).contains("notify"));
        env.ret = Some(Ret::Hdrs);
        env.envid = Some("QQ+2B1".into());
        env.recipients[0].notify = Some("SUCCESS,FAILURE".parse().unwrap());
        env.recipients[0].orcpt = Some("rfc822;c@d.example".into());
        let bytes = env.encode();
        assert_eq!(Envelope::decode(&bytes).unwrap(), env);
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.contains("\"notify\":\"SUCCESS,FAILURE\""), "{text}");
        assert!(text.contains("\"ret\":\"HDRS\""), "{text}");
    }

    #[test]
    fn an_envelope_address_with_a_line_break_is_corrupt() {
        let json = String::from_utf8(envelope("1.ab").encode()).unwrap();
        let json = json.split_once('\n').unwrap().1;
        for (good, bad) in [
            ("a@b.example", "a@b.example\\r\\nX-Injected: 1"),
            ("c@d.example", "c\\r@d.example"),
            ("a@b.example", "@r.example:a@b.example"),
        ] {
            let body = json.replacen(good, bad, 1);
            let mut framed = format!(
                "{MAGIC} {} {:08x}\n",
                body.len(),
                crc32fast::hash(body.as_bytes())
            );
            framed.push_str(&body);
            let err = Envelope::decode(framed.as_bytes()).unwrap_err();
            assert!(err.starts_with("bad JSON: address"), "{bad}: {err}");
        }
        let null = json.replacen("\"a@b.example\"", "\"\"", 1);
        let framed = format!(
            "{MAGIC} {} {:08x}\n{null}",
            null.len(),
            crc32fast::hash(null.as_bytes())
        );
        assert_eq!(
            Envelope::decode(framed.as_bytes()).unwrap().from,
            ReversePath::Null
        );
    }

    #[test]
    fn envelopes_check_themselves() {
        let env = envelope("1.ab");
        let bytes = env.encode();
        assert_eq!(Envelope::decode(&bytes), Ok(env));
        let mut flipped = bytes.clone();
        let last = flipped.len() - 2;
        flipped[last] ^= 1;
        assert_eq!(Envelope::decode(&flipped), Err("checksum mismatch".into()));
        assert!(Envelope::decode(&bytes[..bytes.len() - 1])
            .unwrap_err()
            .starts_with("length"));
        assert!(Envelope::decode(b"").is_err());
        assert!(Envelope::decode(b"ROOSTQ 9 2 0\n{}").is_err());
    }

    #[test]
    fn spool_commit_lock_remove() {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::open(&dir.path().join("q")).unwrap();
        let dropped = q.spool().unwrap();
        drop(dropped);
        assert_eq!(
            fs::read_dir(q.dir().join("tmp")).unwrap().count(),
            0,
            "an abandoned spool leaves nothing"
        );
        let mut spool = q.spool().unwrap();
        spool.file().write_all(b"Subject: x\r\n\r\nhi\r\n").unwrap();
        let env = envelope(&spool.id);
        q.commit(&mut spool, &env).unwrap();
        drop(spool);
        assert_eq!(q.ids(), vec![env.id.clone()]);
        let locked = q.lock(&env.id).unwrap().unwrap();
        assert!(q.lock(&env.id).unwrap().is_none(), "one worker per entry");
        assert_eq!(locked.envelope, env);
        drop(locked);
        q.remove(&env.id).unwrap();
        assert!(q.ids().is_empty());
        assert!(q.lock(&env.id).unwrap().is_none());
        // A damaged envelope is set aside, not retried forever.
        fs::write(q.dir().join("9.ab.env"), b"garbage").unwrap();
        fs::write(q.dir().join("9.ab.msg"), b"x").unwrap();
        assert!(matches!(q.lock("9.ab"), Err(QueueError::Corrupt { .. })));
        assert!(q.dir().join("corrupt/9.ab.env").exists());
    }
}
