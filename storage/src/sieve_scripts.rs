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

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, ScriptStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = ScriptStore::new(dir.path().join("sieve"));
        (dir, store)
    }

    const LIMITS: ScriptLimits = ScriptLimits {
        max_scripts: 2,
        max_size: 10,
    };

    #[test]
    fn put_get_list_and_activate() {
        let (_dir, s) = store();
        assert_eq!(s.list().unwrap(), vec![]);
        assert!(s.active().unwrap().is_none());
        s.put("b", b"keep;").unwrap();
        s.put("a", b"discard;").unwrap();
        s.put("a", b"stop;").unwrap();
        assert_eq!(s.get("a").unwrap(), b"stop;");
        s.set_active(Some("b")).unwrap();
        let names: Vec<(String, bool)> = s
            .list()
            .unwrap()
            .into_iter()
            .map(|i| (i.name, i.active))
            .collect();
        assert_eq!(names, vec![("a".into(), false), ("b".into(), true)]);
        assert_eq!(s.active().unwrap(), Some(("b".into(), b"keep;".to_vec())));
        assert_eq!(s.usage().unwrap(), (2, 10));
        s.set_active(None).unwrap();
        assert!(s.active().unwrap().is_none());
        s.set_active(None).unwrap();
        let leftovers: Vec<_> = fs::read_dir(s.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().contains(".tmp."))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn missing_scripts_are_not_found() {
        let (_dir, s) = store();
        assert!(matches!(s.get("x"), Err(ScriptError::NotFound(_))));
        assert!(matches!(s.delete("x"), Err(ScriptError::NotFound(_))));
        assert!(matches!(
            s.set_active(Some("x")),
            Err(ScriptError::NotFound(_))
        ));
        assert!(matches!(s.rename("x", "y"), Err(ScriptError::NotFound(_))));
    }

    #[test]
    fn the_active_script_cannot_be_deleted_and_survives_a_rename() {
        let (_dir, s) = store();
        s.put("main", b"keep;").unwrap();
        s.put("other", b"keep;").unwrap();
        s.set_active(Some("main")).unwrap();
        assert!(matches!(s.delete("main"), Err(ScriptError::Active(_))));
        assert!(matches!(
            s.rename("main", "other"),
            Err(ScriptError::AlreadyExists(_))
        ));
        s.rename("main", "renamed").unwrap();
        assert_eq!(s.active_name().unwrap().as_deref(), Some("renamed"));
        assert!(matches!(s.get("main"), Err(ScriptError::NotFound(_))));
        s.delete("other").unwrap();
        assert_eq!(s.usage().unwrap().0, 1);
    }

    #[test]
    fn names_are_checked() {
        for bad in ["", ".hidden", "a/b", "nul\0", "tab\there", "x\u{2028}"] {
            assert!(
                matches!(check_name(bad), Err(ScriptError::InvalidName(..))),
                "{bad:?}"
            );
        }
        assert!(check_name(&"é".repeat(128)).is_ok());
        assert!(check_name(&"é".repeat(129)).is_err());
        let (_dir, s) = store();
        assert!(matches!(
            s.put("../x", b""),
            Err(ScriptError::InvalidName(..))
        ));
    }

    #[test]
    fn limits_count_new_scripts_and_every_size() {
        let (_dir, s) = store();
        s.has_space("a", 10, LIMITS).unwrap();
        assert!(matches!(
            s.has_space("a", 11, LIMITS),
            Err(ScriptError::TooLarge(10))
        ));
        s.put("a", b"1").unwrap();
        s.put("b", b"2").unwrap();
        assert!(matches!(
            s.has_space("c", 1, LIMITS),
            Err(ScriptError::TooManyScripts(2))
        ));
        s.has_space("b", 5, LIMITS).unwrap();
    }

    #[test]
    fn a_symlinked_script_is_not_followed() {
        let (dir, s) = store();
        s.ensure().unwrap();
        std::fs::write(dir.path().join("secret"), b"not a script").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), s.dir().join("x.sieve")).unwrap();
        assert!(matches!(s.get("x"), Err(ScriptError::NotFound(_))));
        assert_eq!(s.list().unwrap(), vec![]);
    }

    #[test]
    fn racing_puts_leave_one_whole_version() {
        let (_dir, s) = store();
        let versions: Vec<Vec<u8>> = (0..8u8).map(|i| vec![b'a' + i; 100_000]).collect();
        std::thread::scope(|scope| {
            for version in &versions {
                let s = s.clone();
                scope.spawn(move || s.put("race", version).unwrap());
            }
        });
        let stored = s.get("race").unwrap();
        assert!(versions.contains(&stored), "a whole version, never a mix");
        assert_eq!(s.usage().unwrap(), (1, 100_000));
    }

    #[test]
    fn a_dangling_active_link_means_none_active() {
        let (_dir, s) = store();
        s.ensure().unwrap();
        std::os::unix::fs::symlink("gone.sieve", s.dir().join(ACTIVE)).unwrap();
        assert!(s.active().unwrap().is_none());
        s.put("x", b"keep;").unwrap();
        assert!(!s.list().unwrap()[0].active);
    }

    #[test]
    fn locations_put_scripts_beside_the_mail() {
        let vars = UserVars {
            user: "alice".into(),
            home: None,
        };
        let maildir = MailLocation::parse("maildir:/srv/mail/%u").unwrap();
        let mbox = MailLocation::parse("mbox:/srv/mbox/%u").unwrap();
        assert_eq!(
            maildir.sieve_dir_for(&vars).unwrap(),
            PathBuf::from("/srv/mail/alice/sieve")
        );
        assert_eq!(
            mbox.sieve_dir_for(&vars).unwrap(),
            PathBuf::from("/srv/mbox/alice/.roost/sieve")
        );
    }
}
