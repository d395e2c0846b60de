//! `relayhost_password_file`: the relayhost's user name and password, in Postfix's
//! `sasl_passwd` format (`[host]:port user:password` or `host user:password`, `#` comments).
//! Read once at startup, by whoever loads the configuration (root in the master, so the file
//! can stay root-only); the password is never printed, not even by `Debug`.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::Relayhost;

/// The largest password file read.
const MAX_FILE: u64 = 64 * 1024;

/// The user name and password roost authenticates to the relayhost with.
#[derive(Clone, PartialEq, Eq)]
pub struct RelayCredentials {
    /// The SASL user name.
    pub user: String,
    /// The password (never logged).
    pub password: String,
}

impl std::fmt::Debug for RelayCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayCredentials")
            .field("user", &self.user)
            .field("password", &"(hidden)")
            .finish()
    }
}

/// Why the password file cannot be used (the message never quotes a password).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswdFileError {
    /// Opening or reading failed.
    #[error("{message}")]
    Read {
        /// The file and the error.
        message: String,
        /// Whether this user may not read it (so a command that never relays can go on).
        denied: bool,
    },
    /// Group or others may read it.
    #[error("{path} is accessible by group or others (mode {mode:03o}); `chmod 600` it")]
    Open {
        /// The file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// roost runs as root and the file belongs to someone else, who could change the password.
    #[error("{path} must be owned by root (it belongs to uid {uid})")]
    NotRoot {
        /// The file.
        path: String,
        /// Its owner.
        uid: u32,
    },
    /// A line that is not `key user:password`.
    #[error("{path}:{line}: expected \"[host]:port user:password\"")]
    Syntax {
        /// The file.
        path: String,
        /// The 1-based line.
        line: usize,
    },
    /// No line is for the configured relayhost.
    #[error("{path} has no line for {key} (nor for {host})")]
    Missing {
        /// The file.
        path: String,
        /// The `[host]:port` key looked for.
        key: String,
        /// The bare host looked for.
        host: String,
    },
}

/// Checks the file's owner and mode, then finds the line for `relayhost`: `[host]:port` first,
/// then `host:port`, then the bare `host`.
pub fn load(path: &Path, relayhost: &Relayhost) -> Result<RelayCredentials, PasswdFileError> {
    let shown = path.display().to_string();
    let text = read_private(path, &shown)?;
    let entries = parse(&text, &shown)?;
    let keys = [
        format!("[{}]:{}", relayhost.host, relayhost.port),
        format!("{}:{}", relayhost.host, relayhost.port),
        relayhost.host.clone(),
    ];
    keys.iter()
        .find_map(|k| {
            entries
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(k))
                .map(|(_, c)| c.clone())
        })
        .ok_or_else(|| PasswdFileError::Missing {
            path: shown,
            key: keys[0].clone(),
            host: relayhost.host.clone(),
        })
}

/// Reads the file after checking nobody but its (root, when roost is root) owner may read it.
fn read_private(path: &Path, shown: &str) -> Result<String, PasswdFileError> {
    use std::io::Read;
    let read = |e: std::io::Error| PasswdFileError::Read {
        message: format!("{shown}: {e}"),
        denied: e.kind() == std::io::ErrorKind::PermissionDenied,
    };
    let file = std::fs::File::open(path).map_err(read)?;
    let meta = file.metadata().map_err(read)?;
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(PasswdFileError::Open {
            path: shown.to_string(),
            mode,
        });
    }
    if crate::system::running_as_root() && meta.uid() != 0 {
        return Err(PasswdFileError::NotRoot {
            path: shown.to_string(),
            uid: meta.uid(),
        });
    }
    let mut text = String::new();
    file.take(MAX_FILE)
        .read_to_string(&mut text)
        .map_err(read)?;
    Ok(text)
}

/// `key user:password` lines; blank lines and `#` comments skipped.
fn parse(text: &str, shown: &str) -> Result<Vec<(String, RelayCredentials)>, PasswdFileError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let syntax = || PasswdFileError::Syntax {
            path: shown.to_string(),
            line: i + 1,
        };
        let (key, value) = line.split_once([' ', '\t']).ok_or_else(syntax)?;
        let (user, password) = value.trim().split_once(':').ok_or_else(syntax)?;
        if user.is_empty() || password.is_empty() {
            return Err(syntax());
        }
        out.push((
            key.to_string(),
            RelayCredentials {
                user: user.to_string(),
                password: password.to_string(),
            },
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn relay(host: &str, port: u16) -> Relayhost {
        Relayhost {
            host: host.into(),
            port,
            tls: super::super::RelayTls::StartTls,
        }
    }

    #[test]
    fn lines_match_host_and_port_and_modes_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("passwd");
        std::fs::write(
            &path,
            "# comment\n[mx.example]:587 alice:s3cr:et\nother.example bob:pw\n",
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let c = load(&path, &relay("mx.example", 587)).unwrap();
        assert_eq!((c.user.as_str(), c.password.as_str()), ("alice", "s3cr:et"));
        assert!(!format!("{c:?}").contains("s3cr"), "Debug hides it");
        assert_eq!(
            load(&path, &relay("other.example", 25)).unwrap().user,
            "bob"
        );
        let missing = load(&path, &relay("mx.example", 25)).unwrap_err();
        assert!(
            matches!(missing, PasswdFileError::Missing { .. }),
            "{missing}"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let open = load(&path, &relay("mx.example", 587)).unwrap_err();
        assert!(open.to_string().contains("mode 640"), "{open}");
        std::fs::write(&path, "mx.example nocolon\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let bad = load(&path, &relay("mx.example", 587)).unwrap_err();
        assert!(bad
            .to_string()
            .ends_with(":1: expected \"[host]:port user:password\""));
        assert!(!bad.to_string().contains("nocolon"));
    }
}
