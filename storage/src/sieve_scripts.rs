//! One user's Sieve scripts (RFC 5228), kept beside their mail so they move, back up and
//! belong with it: `sieve/` in a maildir root, `.roost/sieve/` in an mbox root.
//!
//! ```text
//!   <dir>/vacation.sieve     one file per script, written tmp → fsync → rename → fsync dir
//!   <dir>/work.sieve
//!   <dir>/active  ──symlink──► work.sieve     (absent: no script is active)
//! ```
//! The `active` link is replaced by renaming a new link over it, so a delivery reading it sees
//! the old active script or the new one, never none in between. A script is never removed
//! while it is the active one (RFC 5804 DELETESCRIPT answers `NO (ACTIVE)`), and a rename
//! moves the link along with the script.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::durable;
use crate::location::{MailFormat, MailLocation, UserVars};

/// The longest script name, in characters (Dovecot's limit too).
pub const MAX_NAME_CHARS: usize = 128;

/// The suffix of a script's file.
const SUFFIX: &str = ".sieve";

/// The symlink naming the active script.
const ACTIVE: &str = "active";

/// The most bytes read from one script file, whoever wrote it: far above any configurable
/// script size, so a file put there by other means cannot fill memory.
const MAX_READ: u64 = 16 * 1024 * 1024;

/// What can go wrong with a user's scripts; the ManageSieve session turns each into a reply.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    /// A name that cannot be a script's (empty, too long, `/`, control characters, leading `.`).
    #[error("invalid script name {0:?}: {1}")]
    InvalidName(String, &'static str),
    /// No script by that name (RFC 5804 `NONEXISTENT`).
    #[error("there is no script named {0:?}")]
    NotFound(String),
    /// A script by the new name exists already (RFC 5804 `ALREADYEXISTS`).
    #[error("a script named {0:?} exists already")]
    AlreadyExists(String),
    /// The active script cannot be deleted (RFC 5804 `ACTIVE`).
    #[error("script {0:?} is active; deactivate it first")]
    Active(String),
    /// Another script would exceed the user's limit (RFC 5804 `QUOTA/MAXSCRIPTS`).
    #[error("too many scripts (the limit is {0})")]
    TooManyScripts(usize),
    /// The script is larger than allowed (RFC 5804 `QUOTA/MAXSIZE`).
    #[error("script is too large (the limit is {0} bytes)")]
    TooLarge(u64),
    /// An I/O error, with the path it concerned.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

impl ScriptError {
    fn io(path: &Path, source: io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

impl From<crate::Error> for ScriptError {
    fn from(e: crate::Error) -> Self {
        match e {
            crate::Error::Io { path, source } => Self::Io { path, source },
            other => Self::Io {
                path: PathBuf::new(),
                source: io::Error::other(other.to_string()),
            },
        }
    }
}

/// Tells apart the temporary files of writes racing in one process (two sessions of a user).
static TMP_SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// A temporary name in the scripts directory no other write uses: hidden (a leading dot is
/// never a script's name), with this process's id and a sequence number.
fn tmp_name(target: &str) -> String {
    let n = TMP_SEQUENCE.fetch_add(1, Ordering::Relaxed);
    format!(".{target}.tmp.{}.{n}", std::process::id())
}

/// One script in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptInfo {
    /// The script's name as the user gave it.
    pub name: String,
    /// Whether delivery runs it.
    pub active: bool,
}

/// How many scripts of what size one user may keep (the `[sieve]` config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScriptLimits {
    /// Scripts per user.
    pub max_scripts: usize,
    /// Bytes per script.
    pub max_size: u64,
}

/// The Sieve scripts of one user.
#[derive(Debug, Clone)]
pub struct ScriptStore {
    dir: PathBuf,
}

/// Checks a script name against RFC 5804's rules and what a file name can hold.
pub fn check_name(name: &str) -> Result<(), ScriptError> {
    let bad = |why| Err(ScriptError::InvalidName(name.to_string(), why));
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return bad("it is longer than 128 characters");
    }
    if name.starts_with('.') {
        return bad("it starts with a dot");
    }
    if name.contains('/') {
        return bad("it contains a slash");
    }
    if name
        .chars()
        .any(|c| c.is_control() || c == '\u{2028}' || c == '\u{2029}')
    {
        return bad("it contains a control character");
    }
    Ok(())
}

impl MailLocation {
    /// Where `vars`'s Sieve scripts live: `sieve/` in a maildir root, `.roost/sieve/` in an
    /// mbox root (beside the other files roost keeps there).
    pub fn sieve_dir_for(&self, vars: &UserVars) -> Result<PathBuf, crate::Error> {
        let root = self.root_for(vars)?;
        Ok(match self.format {
            MailFormat::Maildir => root.join("sieve"),
            MailFormat::Mbox => root.join(".roost").join("sieve"),
        })
    }
}

impl ScriptStore {
    /// The scripts kept in `dir` (created, 0700, on the first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The scripts of the user `vars` under `location`.
    pub fn for_user(location: &MailLocation, vars: &UserVars) -> Result<Self, crate::Error> {
        location.sieve_dir_for(vars).map(Self::new)
    }

    /// The directory holding the scripts.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}{SUFFIX}"))
    }

    /// Every script, sorted by name, with the active one marked.
    pub fn list(&self) -> Result<Vec<ScriptInfo>, ScriptError> {
        let active = self.active_name()?;
        let mut scripts: Vec<ScriptInfo> = self
            .names()?
            .into_iter()
            .map(|name| ScriptInfo {
                active: active.as_deref() == Some(name.as_str()),
                name,
            })
            .collect();
        scripts.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(scripts)
    }

    /// The names of every stored script (files `<name>.sieve` with a valid name).
    fn names(&self) -> Result<Vec<String>, ScriptError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(ScriptError::io(&self.dir, e)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| ScriptError::io(&self.dir, e))?;
            let file_name = entry.file_name();
            let Some(name) = file_name.to_str().and_then(|n| n.strip_suffix(SUFFIX)) else {
                continue;
            };
            let is_file = entry.file_type().map(|t| t.is_file()).unwrap_or(false);
            if is_file && check_name(name).is_ok() {
                names.push(name.to_string());
            }
        }
        Ok(names)
    }

    /// How many scripts there are and their total size in bytes.
    pub fn usage(&self) -> Result<(usize, u64), ScriptError> {
        let names = self.names()?;
        let mut bytes = 0u64;
        for name in &names {
            let path = self.file(name);
            let meta = fs::metadata(&path).map_err(|e| ScriptError::io(&path, e))?;
            bytes = bytes.saturating_add(meta.len());
        }
        Ok((names.len(), bytes))
    }

    /// Whether a script `name` of `size` bytes may be stored (RFC 5804 HAVESPACE, PUTSCRIPT):
    /// replacing an existing script never counts against the number of scripts.
    pub fn has_space(
        &self,
        name: &str,
        size: u64,
        limits: ScriptLimits,
    ) -> Result<(), ScriptError> {
        check_name(name)?;
        if size > limits.max_size {
            return Err(ScriptError::TooLarge(limits.max_size));
        }
        if self.exists(name) {
            return Ok(());
        }
        let (count, _) = self.usage()?;
        if count >= limits.max_scripts {
            return Err(ScriptError::TooManyScripts(limits.max_scripts));
        }
        Ok(())
    }

    fn exists(&self, name: &str) -> bool {
        fs::symlink_metadata(self.file(name))
            .map(|m| m.is_file())
            .unwrap_or(false)
    }

    /// The script's bytes.
    pub fn get(&self, name: &str) -> Result<Vec<u8>, ScriptError> {
        check_name(name)?;
        let path = self.file(name);
        // Never through a symlink: a script is a file of this directory, nothing else.
        let opened = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path);
        let file = match opened {
            Ok(file) => file,
            Err(e)
                if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ELOOP) =>
            {
                return Err(ScriptError::NotFound(name.to_string()))
            }
            Err(e) => return Err(ScriptError::io(&path, e)),
        };
        let mut bytes = Vec::new();
        file.take(MAX_READ + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| ScriptError::io(&path, e))?;
        if bytes.len() as u64 > MAX_READ {
            return Err(ScriptError::TooLarge(MAX_READ));
        }
        Ok(bytes)
    }

    /// Stores a script durably (tmp, fsync, rename, fsync dir): readers see the old version
    /// or the new one, never a part. Limits are the caller's ([`ScriptStore::has_space`]).
    pub fn put(&self, name: &str, bytes: &[u8]) -> Result<(), ScriptError> {
        check_name(name)?;
        self.ensure()?;
        let target = self.file(name);
        let tmp = self.dir.join(tmp_name(&format!("{name}{SUFFIX}")));
        let written = (|| {
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            file.write_all(bytes)?;
            file.sync_all()?;
            fs::rename(&tmp, &target)
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(ScriptError::io(&target, e));
        }
        durable::sync_dir(&self.dir).map_err(Into::into)
    }

    /// The active script's name, if one is active and still exists.
    pub fn active_name(&self) -> Result<Option<String>, ScriptError> {
        let link = self.dir.join(ACTIVE);
        let target = match fs::read_link(&link) {
            Ok(target) => target,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::InvalidInput
                ) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(ScriptError::io(&link, e)),
        };
        let name = target
            .to_str()
            .and_then(|t| t.strip_suffix(SUFFIX))
            .filter(|n| check_name(n).is_ok() && self.exists(n));
        Ok(name.map(str::to_string))
    }

    /// The active script's name and bytes, for delivery; `None` when no script is active.
    pub fn active(&self) -> Result<Option<(String, Vec<u8>)>, ScriptError> {
        let Some(name) = self.active_name()? else {
            return Ok(None);
        };
        match self.get(&name) {
            Ok(bytes) => Ok(Some((name, bytes))),
            Err(ScriptError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Makes `name` the active script (`Some`), or leaves none active (`None`), atomically.
    pub fn set_active(&self, name: Option<&str>) -> Result<(), ScriptError> {
        let link = self.dir.join(ACTIVE);
        let Some(name) = name else {
            return match fs::remove_file(&link) {
                Ok(()) => durable::sync_dir(&self.dir).map_err(Into::into),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(ScriptError::io(&link, e)),
            };
        };
        check_name(name)?;
        if !self.exists(name) {
            return Err(ScriptError::NotFound(name.to_string()));
        }
        let tmp = self.dir.join(tmp_name(ACTIVE));
        let linked = std::os::unix::fs::symlink(format!("{name}{SUFFIX}"), &tmp)
            .and_then(|()| fs::rename(&tmp, &link));
        if let Err(e) = linked {
            let _ = fs::remove_file(&tmp);
            return Err(ScriptError::io(&link, e));
        }
        durable::sync_dir(&self.dir).map_err(Into::into)
    }

    /// Removes a script; the active one is refused.
    pub fn delete(&self, name: &str) -> Result<(), ScriptError> {
        check_name(name)?;
        if self.active_name()?.as_deref() == Some(name) {
            return Err(ScriptError::Active(name.to_string()));
        }
        let path = self.file(name);
        match fs::remove_file(&path) {
            Ok(()) => durable::sync_dir(&self.dir).map_err(Into::into),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(ScriptError::NotFound(name.to_string()))
            }
            Err(e) => Err(ScriptError::io(&path, e)),
        }
    }

    /// Renames a script, keeping it active if it was. The new name must be free: the script
    /// is linked under it first (which fails rather than replace), then the old name goes.
    pub fn rename(&self, old: &str, new: &str) -> Result<(), ScriptError> {
        check_name(old)?;
        check_name(new)?;
        if !self.exists(old) {
            return Err(ScriptError::NotFound(old.to_string()));
        }
        let (from, to) = (self.file(old), self.file(new));
        match fs::hard_link(&from, &to) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(ScriptError::AlreadyExists(new.to_string()))
            }
            Err(e) => return Err(ScriptError::io(&to, e)),
        }
        if self.active_name()?.as_deref() == Some(old) {
            self.set_active(Some(new))?;
        }
        fs::remove_file(&from).map_err(|e| ScriptError::io(&from, e))?;
        durable::sync_dir(&self.dir).map_err(Into::into)
    }

    /// Creates the directory (0700) if it is missing.
    pub fn ensure(&self) -> Result<(), ScriptError> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(|e| ScriptError::io(&self.dir, e))
    }
}

mod problems;
pub use problems::{MAX_PROBLEMS, PROBLEMS_FILE};

#[cfg(test)]
mod tests;
