//! Dovecot-style mail locations: `maildir:/srv/mail/%u`, `maildir:~/Maildir`,
//! `mbox:~/mail:INBOX=/var/mail/%u`, and the per-user expansion of `%u %n %d %h ~`.

use std::path::PathBuf;

use crate::Error;

/// The on-disk format of a user's mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailFormat {
    /// Maildir++ (`cur/ new/ tmp/`, folders as `.Name`).
    Maildir,
    /// mbox files (INBOX usually in `/var/mail/%u`, folders under `~/mail`).
    Mbox,
}

/// A parsed mail location template, before it is expanded for a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailLocation {
    /// Maildir or mbox.
    pub format: MailFormat,
    /// The mail root template (`/srv/mail/%u`, `~/Maildir`).
    pub root: String,
    /// Where INBOX lives when it is not inside the root (mbox's `/var/mail/%u`).
    pub inbox: Option<String>,
}

/// What a location template is expanded with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserVars {
    /// The login name, `%u` (may be `local@domain`).
    pub user: String,
    /// The home directory, `%h` and `~`.
    pub home: Option<PathBuf>,
}

impl std::fmt::Display for MailLocation {
    /// The location as it is configured, which [`MailLocation::parse`] reads back.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let format = match self.format {
            MailFormat::Maildir => "maildir",
            MailFormat::Mbox => "mbox",
        };
        write!(f, "{format}:{}", self.root)?;
        if let Some(inbox) = &self.inbox {
            write!(f, ":INBOX={inbox}")?;
        }
        Ok(())
    }
}

impl MailLocation {
    /// Parses `format:path[:KEY=value...]`.
    pub fn parse(spec: &str) -> Result<Self, Error> {
        let invalid = |reason: &str| Error::InvalidLocation {
            location: spec.to_string(),
            reason: reason.to_string(),
        };
        let (format, rest) = spec
            .split_once(':')
            .ok_or_else(|| invalid("expected \"maildir:PATH\" or \"mbox:PATH\""))?;
        let format = match format {
            "maildir" => MailFormat::Maildir,
            "mbox" => MailFormat::Mbox,
            other => {
                return Err(invalid(&format!(
                    "unknown format {other:?} (use maildir or mbox)"
                )))
            }
        };
        let mut parts = rest.split(':');
        let root = parts.next().unwrap_or_default().to_string();
        if root.is_empty() {
            return Err(invalid("the path is empty"));
        }
        if !(root.starts_with('/')
            || root.starts_with("~/")
            || root == "~"
            || root.starts_with("%h"))
        {
            return Err(invalid("the path must be absolute, or start with ~ or %h"));
        }
        let mut inbox = None;
        for option in parts {
            match option.split_once('=') {
                Some(("INBOX", path)) if !path.is_empty() => inbox = Some(path.to_string()),
                _ => {
                    return Err(invalid(&format!(
                        "unknown option {option:?} (known: INBOX=PATH)"
                    )))
                }
            }
        }
        Ok(Self {
            format,
            root,
            inbox,
        })
    }

    /// The mail root directory for one user.
    pub fn root_for(&self, vars: &UserVars) -> Result<PathBuf, Error> {
        expand(&self.root, vars)
    }

    /// The INBOX path for one user, when it lives outside the root.
    pub fn inbox_for(&self, vars: &UserVars) -> Result<Option<PathBuf>, Error> {
        self.inbox.as_deref().map(|t| expand(t, vars)).transpose()
    }
}

/// Expands `%u` (user), `%n` (local part), `%d` (domain), `%h` and a leading `~` (home), `%%`.
/// A user name that would climb out of the template (`/`, `..`, NUL) is refused.
pub fn expand(template: &str, vars: &UserVars) -> Result<PathBuf, Error> {
    if vars.user.contains('/') || vars.user.contains('\0') || vars.user.starts_with('.') {
        return Err(Error::InvalidLocation {
            location: template.to_string(),
            reason: format!("user name {:?} cannot be used in a path", vars.user),
        });
    }
    let home = || {
        vars.home
            .as_ref()
            .map(|h| h.to_string_lossy().into_owned())
            .ok_or_else(|| Error::NoHome(vars.user.clone()))
    };
    let (local, domain) = vars.user.split_once('@').unwrap_or((&vars.user, ""));
    let mut out = String::new();
    let mut rest = template;
    if let Some(after) = rest.strip_prefix('~') {
        out.push_str(&home()?);
        rest = after;
    }
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('u') => out.push_str(&vars.user),
            Some('n') => out.push_str(local),
            Some('d') => out.push_str(domain),
            Some('h') => out.push_str(&home()?),
            Some('%') => out.push('%'),
            other => {
                return Err(Error::InvalidLocation {
                    location: template.to_string(),
                    reason: format!("unknown variable %{}", other.unwrap_or(' ')),
                })
            }
        }
    }
    Ok(PathBuf::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> UserVars {
        UserVars {
            user: "alice@example.com".into(),
            home: Some("/home/alice".into()),
        }
    }

    #[test]
    fn dovecot_style_locations_parse_and_expand() {
        let loc = MailLocation::parse("maildir:/srv/mail/%d/%n").unwrap();
        assert_eq!(loc.format, MailFormat::Maildir);
        assert_eq!(
            loc.root_for(&alice()).unwrap(),
            PathBuf::from("/srv/mail/example.com/alice")
        );

        let loc = MailLocation::parse("maildir:~/Maildir").unwrap();
        assert_eq!(
            loc.root_for(&alice()).unwrap(),
            PathBuf::from("/home/alice/Maildir")
        );

        let loc = MailLocation::parse("mbox:~/mail:INBOX=/var/mail/%u").unwrap();
        assert_eq!(loc.format, MailFormat::Mbox);
        assert_eq!(MailLocation::parse(&loc.to_string()).unwrap(), loc);
        assert_eq!(
            loc.inbox_for(&alice()).unwrap(),
            Some(PathBuf::from("/var/mail/alice@example.com"))
        );
    }

    #[test]
    fn bad_locations_and_hostile_users_are_refused() {
        assert!(MailLocation::parse("maildir").is_err());
        assert!(MailLocation::parse("mdbox:/x").is_err());
        assert!(MailLocation::parse("maildir:relative/path").is_err());
        assert!(MailLocation::parse("maildir:/x:LAYOUT=fs").is_err());
        let loc = MailLocation::parse("maildir:/srv/mail/%u").unwrap();
        for user in ["../root", "a/b", ".hidden", "nul\0"] {
            let vars = UserVars {
                user: user.into(),
                home: None,
            };
            assert!(loc.root_for(&vars).is_err(), "{user:?}");
        }
        let loc = MailLocation::parse("maildir:~/Maildir").unwrap();
        let vars = UserVars {
            user: "bob".into(),
            home: None,
        };
        assert!(matches!(loc.root_for(&vars), Err(Error::NoHome(_))));
    }
}
