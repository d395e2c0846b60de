//! Dovecot-style passwd-file user database.
//!
//! Lets an administrator keep virtual mail users in one text file, in the
//! format Dovecot's `passdb passwd-file` reads:
//! `user:password:uid:gid:(gecos):home:(shell):extra_fields`. The file is
//! parsed once and cached; every lookup checks the file's metadata and
//! re-reads it when it changed, so edits take effect without a restart.
//!
//! The shell field is ignored, as Dovecot ignores it; the extra fields are read by
//! [`super::extra_fields`]: access restrictions are enforced, and a field that could decide
//! who logs in but is not supported stops the file from loading (`file:line: key: why`).

use std::collections::HashMap;
use std::fmt;
use std::fs::{self, File, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use super::extra_fields::{self, Access, FieldError};

/// One user's line from a passwd-file.
#[derive(Clone)]
pub struct Entry {
    /// The user name, compared exactly (case-sensitive).
    pub user: String,
    /// The stored password field, e.g. `{SHA512-CRYPT}$6$...`; check it with
    /// [`crate::password::verify`]. Hidden from `Debug` output.
    pub password: String,
    /// Numeric uid, if the field is present and non-empty.
    pub uid: Option<u32>,
    /// Numeric gid, if the field is present and non-empty.
    pub gid: Option<u32>,
    /// Home directory, if the field is present and non-empty.
    pub home: Option<PathBuf>,
    /// Who may log in with this entry (`nologin`, `deny`, `allow_nets` extra fields).
    pub access: Access,
    /// Its quota rules (`userdb_quota_rule*` extra fields), over the configured default.
    pub quota_rules: Vec<String>,
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("uid", &self.uid)
            .field("gid", &self.gid)
            .field("home", &self.home)
            .field("access", &self.access)
            .finish()
    }
}

/// Why a passwd-file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PasswdFileError {
    /// The file could not be opened, inspected or read.
    #[error("passwd-file {}: {source}", path.display())]
    Io {
        /// The passwd-file's path.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A line is not in passwd-file format.
    #[error("passwd-file {}:{line}: {reason}", path.display())]
    Syntax {
        /// The passwd-file's path.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with the line (never includes the password).
        reason: String,
    },
    /// An extra field is malformed, or could decide who logs in and is not supported.
    #[error("passwd-file {}:{line}: {key}: {reason}", path.display())]
    Field {
        /// The passwd-file's path.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The extra field's key.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Why one line could not be read.
enum LineError {
    /// The line's shape is wrong.
    Syntax(String),
    /// One of its extra fields is refused.
    Field(FieldError),
}

/// A passwd-file on disk, with a cache of its parsed contents.
pub struct PasswdFile {
    path: PathBuf,
    cache: Mutex<Option<Cache>>,
}

/// The parsed file plus the metadata it was parsed from.
struct Cache {
    stamp: Stamp,
    users: HashMap<String, Entry>,
}

/// File identity and change markers; any difference triggers a re-read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    /// Captures the change markers of `meta`.
    fn of(meta: &Metadata) -> Self {
        Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

impl fmt::Debug for PasswdFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswdFile")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl PasswdFile {
    /// Creates a handle for the file at `path`; nothing is read yet.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        PasswdFile {
            path: path.into(),
            cache: Mutex::new(None),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Parses the file now (used at start-up to report errors with
    /// `file:line`) and returns the number of distinct users.
    pub fn check(&self) -> Result<usize, PasswdFileError> {
        let fresh = self.load()?;
        let count = fresh.users.len();
        *self.lock() = Some(fresh);
        Ok(count)
    }

    /// Looks a user up, re-reading the file if it changed on disk since last
    /// time. A file that no longer parses is an error (logins fail closed).
    pub fn lookup(&self, user: &str) -> Result<Option<Entry>, PasswdFileError> {
        let meta = fs::metadata(&self.path).map_err(|e| self.io_error(e))?;
        let stamp = Stamp::of(&meta);
        let mut cache = self.lock();
        let current = match cache.take() {
            Some(cached) if cached.stamp == stamp => cached,
            _ => self.load()?,
        };
        let found = current.users.get(user).cloned();
        *cache = Some(current);
        Ok(found)
    }

    /// Locks the cache; a poisoned lock only means a panic elsewhere, and
    /// the cache is replaced wholesale, so its contents are still coherent.
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Cache>> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads and parses the file; the stamp comes from the open handle so
    /// it describes the bytes actually read.
    fn load(&self) -> Result<Cache, PasswdFileError> {
        let mut file = File::open(&self.path).map_err(|e| self.io_error(e))?;
        let meta = file.metadata().map_err(|e| self.io_error(e))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(|e| self.io_error(e))?;
        let users = self.parse(&bytes)?;
        tracing::debug!(path = %self.path.display(), users = users.len(), "loaded passwd-file");
        Ok(Cache {
            stamp: Stamp::of(&meta),
            users,
        })
    }

    /// Parses the whole file; the first entry for a user wins.
    fn parse(&self, bytes: &[u8]) -> Result<HashMap<String, Entry>, PasswdFileError> {
        let mut users = HashMap::new();
        for (index, raw) in bytes.split(|&b| b == b'\n').enumerate() {
            let line = index + 1;
            let text = std::str::from_utf8(raw)
                .map_err(|_| self.syntax_error(line, "line is not valid UTF-8"))?;
            let text = text.strip_suffix('\r').unwrap_or(text);
            if text.trim().is_empty() || text.trim_start().starts_with('#') {
                continue;
            }
            let (entry, ignored) = parse_line(text).map_err(|e| self.line_error(line, e))?;
            if !ignored.is_empty() {
                tracing::warn!(
                    path = %self.path.display(),
                    line,
                    fields = %ignored.join(", "),
                    "passwd-file extra fields not supported by roost are ignored"
                );
            }
            if users.contains_key(&entry.user) {
                tracing::warn!(
                    path = %self.path.display(),
                    line,
                    user = %entry.user,
                    "duplicate user in passwd-file; keeping the first entry"
                );
                continue;
            }
            users.insert(entry.user.clone(), entry);
        }
        Ok(users)
    }

    /// Wraps an I/O error with the file's path.
    fn io_error(&self, source: io::Error) -> PasswdFileError {
        PasswdFileError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// Builds the error for a bad `line`.
    fn line_error(&self, line: usize, error: LineError) -> PasswdFileError {
        match error {
            LineError::Syntax(reason) => self.syntax_error(line, reason),
            LineError::Field(FieldError { key, reason }) => PasswdFileError::Field {
                path: self.path.clone(),
                line,
                key,
                reason,
            },
        }
    }

    /// Builds a syntax error for `line`.
    fn syntax_error(&self, line: usize, reason: impl Into<String>) -> PasswdFileError {
        PasswdFileError::Syntax {
            path: self.path.clone(),
            line,
            reason: reason.into(),
        }
    }
}

/// Parses one non-comment line into an entry and the extra fields it ignores.
fn parse_line(text: &str) -> Result<(Entry, Vec<String>), LineError> {
    // Extra fields (the 8th) may themselves contain ':'.
    let mut fields = text.splitn(8, ':');
    let user = fields.next().unwrap_or_default();
    let password = fields
        .next()
        .ok_or_else(|| LineError::Syntax("missing ':' after the user name".to_owned()))?;
    if user.is_empty() {
        return Err(LineError::Syntax("empty user name".to_owned()));
    }
    let uid = parse_id(fields.next(), "uid").map_err(LineError::Syntax)?;
    let gid = parse_id(fields.next(), "gid").map_err(LineError::Syntax)?;
    let _gecos = fields.next();
    let home = fields.next().filter(|h| !h.is_empty()).map(PathBuf::from);
    let _shell = fields.next();
    let extra = extra_fields::parse(fields.next().unwrap_or_default()).map_err(LineError::Field)?;
    let entry = Entry {
        user: user.to_owned(),
        password: password.to_owned(),
        uid: extra.uid.or(uid),
        gid: extra.gid.or(gid),
        home: extra.home.or(home),
        access: extra.access,
        quota_rules: extra.quota_rules,
    };
    Ok((entry, extra.ignored))
}

/// Parses an optional numeric uid/gid field.
fn parse_id(field: Option<&str>, what: &str) -> Result<Option<u32>, String> {
    match field {
        None | Some("") => Ok(None),
        Some(value) => value
            .parse::<u32>()
            .map(Some)
            .map_err(|_| format!("{what} {value:?} is not a number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write_file(contents: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(contents.as_bytes()).unwrap();
        file.flush().unwrap();
        file
    }

    const SAMPLE: &str = "\
# virtual users
alice:{SHA512-CRYPT}$6$abc$def:1000:1000::/home/alice::

  # indented comment
bob:{PLAIN}pw
carol:{PLAIN}x:1001::Carol C:/srv/carol:/bin/false:userdb_mail=maildir:~/Maildir nologin
dave::::
alice:{PLAIN}second:1:1::/nope::
Alice:{PLAIN}upper
";

    #[test]
    fn parses_all_field_shapes() {
        let file = write_file(SAMPLE);
        let db = PasswdFile::new(file.path());
        assert_eq!(db.path(), file.path());
        assert_eq!(db.check().unwrap(), 5);

        let alice = db.lookup("alice").unwrap().unwrap();
        assert_eq!(alice.password, "{SHA512-CRYPT}$6$abc$def");
        assert_eq!((alice.uid, alice.gid), (Some(1000), Some(1000)));
        assert_eq!(alice.home.as_deref(), Some(Path::new("/home/alice")));

        let bob = db.lookup("bob").unwrap().unwrap();
        assert_eq!(bob.password, "{PLAIN}pw");
        assert_eq!((bob.uid, bob.gid, bob.home), (None, None, None));

        let carol = db.lookup("carol").unwrap().unwrap();
        assert_eq!((carol.uid, carol.gid), (Some(1001), None));
        assert_eq!(carol.home.as_deref(), Some(Path::new("/srv/carol")));

        let dave = db.lookup("dave").unwrap().unwrap();
        assert_eq!(dave.password, "");
    }

    #[test]
    fn lookup_is_exact_and_first_entry_wins() {
        let file = write_file(SAMPLE);
        let db = PasswdFile::new(file.path());
        assert_eq!(db.lookup("alice").unwrap().unwrap().uid, Some(1000));
        assert_eq!(
            db.lookup("Alice").unwrap().unwrap().password,
            "{PLAIN}upper"
        );
        assert!(db.lookup("ALICE").unwrap().is_none());
        assert!(db.lookup("nobody").unwrap().is_none());
        assert!(db.lookup("").unwrap().is_none());
        assert!(db.lookup("# virtual users").unwrap().is_none());
    }

    #[test]
    fn crlf_and_missing_final_newline() {
        let file = write_file("a:{PLAIN}1:5\r\nb:{PLAIN}2");
        let db = PasswdFile::new(file.path());
        assert_eq!(db.lookup("a").unwrap().unwrap().uid, Some(5));
        assert_eq!(db.lookup("b").unwrap().unwrap().password, "{PLAIN}2");
    }

    #[test]
    fn reloads_after_rewrite() {
        let file = write_file("alice:{PLAIN}old\n");
        let db = PasswdFile::new(file.path());
        assert_eq!(db.lookup("alice").unwrap().unwrap().password, "{PLAIN}old");
        assert!(db.lookup("bob").unwrap().is_none());

        // Same size, rewritten in place.
        fs::write(file.path(), "alice:{PLAIN}new\n").unwrap();
        assert_eq!(db.lookup("alice").unwrap().unwrap().password, "{PLAIN}new");

        // Replaced by rename, as editors and config management do.
        let dir = file.path().parent().unwrap();
        let mut replacement = tempfile::NamedTempFile::new_in(dir).unwrap();
        replacement.write_all(b"bob:{PLAIN}b\n").unwrap();
        replacement.persist(file.path()).unwrap();
        assert!(db.lookup("alice").unwrap().is_none());
        assert_eq!(db.lookup("bob").unwrap().unwrap().password, "{PLAIN}b");
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let cases = [
            ("ok:{PLAIN}x\nbad-no-colon\n", 2, "missing ':'"),
            ("# c\n\nu:{PLAIN}x:abc:1\n", 3, "uid"),
            ("u:{PLAIN}x:1:-5\n", 1, "gid"),
            ("u:{PLAIN}x:99999999999:1\n", 1, "uid"),
            (":{PLAIN}x\n", 1, "empty user"),
        ];
        for (contents, want_line, want_reason) in cases {
            let file = write_file(contents);
            let db = PasswdFile::new(file.path());
            match db.check() {
                Err(PasswdFileError::Syntax { line, reason, path }) => {
                    assert_eq!(line, want_line, "{contents:?}");
                    assert!(reason.contains(want_reason), "{reason}");
                    assert_eq!(path, file.path());
                }
                other => panic!("{contents:?}: unexpected {other:?}"),
            }
            assert!(matches!(
                db.lookup("u"),
                Err(PasswdFileError::Syntax { .. })
            ));
        }
    }

    #[test]
    fn invalid_utf8_is_a_syntax_error() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(b"a:{PLAIN}x\nb:\xff\xfe\n").unwrap();
        let db = PasswdFile::new(file.path());
        let err = db.check().unwrap_err();
        assert!(
            matches!(err, PasswdFileError::Syntax { line: 2, .. }),
            "{err}"
        );
    }

    #[test]
    fn syntax_error_message_hides_password() {
        let file = write_file("u:{PLAIN}hunter2:notanumber\n");
        let err = PasswdFile::new(file.path()).check().unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(shown.contains(":1:"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn missing_file_is_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent");
        let db = PasswdFile::new(&path);
        assert!(matches!(db.check(), Err(PasswdFileError::Io { .. })));
        match db.lookup("alice") {
            Err(PasswdFileError::Io { path: p, source }) => {
                assert_eq!(p, path);
                assert_eq!(source.kind(), io::ErrorKind::NotFound);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn file_deleted_after_load_is_io_error() {
        let file = write_file("alice:{PLAIN}x\n");
        let db = PasswdFile::new(file.path());
        assert!(db.lookup("alice").unwrap().is_some());
        let path = file.path().to_owned();
        drop(file);
        assert!(!path.exists());
        assert!(matches!(
            db.lookup("alice"),
            Err(PasswdFileError::Io { .. })
        ));
    }

    #[test]
    fn extra_fields_restrict_access_and_override_userdb_fields() {
        let file = write_file(SAMPLE);
        let db = PasswdFile::new(file.path());
        let carol = db.lookup("carol").unwrap().unwrap();
        assert!(
            carol.access.nologin,
            "the shell field is skipped, the extras are read"
        );
        assert!(!db.lookup("alice").unwrap().unwrap().access.nologin);

        let file = write_file(
            "a:{PLAIN}x:1:2::/h:/bin/sh:allow_nets=192.0.2.0/24 userdb_uid=7 userdb_home=/v\n\
             b:{PLAIN}x::::::deny reason=gone\n",
        );
        let db = PasswdFile::new(file.path());
        let a = db.lookup("a").unwrap().unwrap();
        assert_eq!(
            (a.uid, a.gid, a.home.as_deref()),
            (Some(7), Some(2), Some(Path::new("/v")))
        );
        assert!(a.access.admits("192.0.2.9".parse().unwrap()));
        assert!(!a.access.admits("198.51.100.1".parse().unwrap()));
        let b = db.lookup("b").unwrap().unwrap();
        assert!(b.access.deny && !b.access.admits("192.0.2.9".parse().unwrap()));
    }

    #[test]
    fn unsupported_extra_fields_name_file_line_and_key() {
        let file = write_file(
            "ok:{PLAIN}x::::::userdb_mail=maildir:~/M\n# c\nu:{PLAIN}x::::::host=10.1.1.1\n",
        );
        let db = PasswdFile::new(file.path());
        let err = db.check().unwrap_err();
        match &err {
            PasswdFileError::Field {
                path, line, key, ..
            } => {
                assert_eq!(
                    (path.as_path(), *line, key.as_str()),
                    (file.path(), 3, "host")
                );
            }
            other => panic!("unexpected {other:?}"),
        }
        let shown = err.to_string();
        assert!(
            shown.contains(&format!("{}:3: host: ", file.path().display())),
            "{shown}"
        );
        assert!(db.lookup("ok").is_err(), "a refused file fails closed");
    }

    #[test]
    fn debug_hides_password() {
        let file = write_file("alice:{PLAIN}hunter2:1:2::/h\n");
        let entry = PasswdFile::new(file.path())
            .lookup("alice")
            .unwrap()
            .unwrap();
        let shown = format!("{entry:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("alice") && shown.contains("redacted"));
    }
}
