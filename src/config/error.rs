//! Config errors that point at `file:line: key: problem`.

use std::fmt;
use std::path::{Path, PathBuf};

/// One problem in the config, located as precisely as possible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The config file.
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// The dotted key (`listen.imap`, `protocols[2]`), when known.
    pub key: Option<String>,
    /// What is wrong and, where possible, how to fix it.
    pub message: String,
}

impl ConfigError {
    /// An error about the file as a whole.
    pub fn file(file: &Path, message: String) -> Self {
        Self {
            file: file.to_path_buf(),
            line: None,
            key: None,
            message,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        write!(f, ": ")?;
        if let Some(key) = &self.key {
            write!(f, "{key}: ")?;
        }
        write!(f, "{}", self.message)
    }
}

/// All problems found in one pass, so the admin can fix them together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// Wraps one error.
    pub fn single(error: ConfigError) -> Self {
        Self(vec![error])
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// A path that one of roost's processes cannot reach as the user it runs as. Started as root,
/// roost hands paths to processes that are not root (the login process, the mail workers), so
/// a "permission denied" needs three facts to be fixed: which path, which user, and the setting
/// that moves the path. This is that error, raised at start wherever one of those is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessDenied {
    /// What was needed (a directory roost must create, open or pass through).
    pub path: PathBuf,
    /// The account that needed it (`nobody`, `vmail`, the user running roost).
    pub user: String,
    /// Who runs as that account: `the login process`, `the mail workers`, `roost`.
    pub role: &'static str,
    /// The directory on the way that the user may not pass through, with its mode, if found.
    pub blocked_at: Option<(PathBuf, u32)>,
    /// The config key that moves `path` (`[smtp] queue_dir`, `[mail] location`), or what to
    /// do instead when no key applies.
    pub key: String,
}

impl fmt::Display for AccessDenied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: permission denied for user {} ({})",
            self.path.display(),
            self.user,
            self.role
        )?;
        if let Some((dir, mode)) = &self.blocked_at {
            write!(
                f,
                ", which cannot pass through {} (mode {mode:04o})",
                dir.display()
            )?;
        }
        write!(f, "; set {} to a place {} can reach", self.key, self.user)?;
        if let Some((dir, _)) = &self.blocked_at {
            write!(f, ", or let it pass with `chmod o+x {}`", dir.display())?;
        }
        Ok(())
    }
}

impl std::error::Error for AccessDenied {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_denial_names_the_path_the_user_and_the_key() {
        let denied = AccessDenied {
            path: PathBuf::from("/var/spool/roost/tmp"),
            user: "alice".into(),
            role: "roost",
            blocked_at: None,
            key: "[smtp] queue_dir".into(),
        };
        assert_eq!(
            denied.to_string(),
            "/var/spool/roost/tmp: permission denied for user alice (roost); \
             set [smtp] queue_dir to a place alice can reach"
        );
        let blocked = AccessDenied {
            path: PathBuf::from("/root/roost/data/queue"),
            user: "nobody".into(),
            role: "the login process",
            blocked_at: Some((PathBuf::from("/root"), 0o700)),
            key: "[smtp] queue_dir".into(),
        };
        assert_eq!(
            blocked.to_string(),
            "/root/roost/data/queue: permission denied for user nobody (the login process), \
             which cannot pass through /root (mode 0700); set [smtp] queue_dir to a place \
             nobody can reach, or let it pass with `chmod o+x /root`"
        );
    }
}
