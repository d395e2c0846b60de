//! The two HTTP listeners' sections: `[status]` (the admin's page, JSON, metrics, kick) and
//! `[autoconfig]` (what mail clients fetch to configure themselves).

use std::net::SocketAddr;

use super::raw::{RawAutoconfig, RawStatus};
use super::validate::{parse_addr, Checker};

/// `[status]`, validated.
#[derive(Debug, Clone, Default)]
pub struct StatusConfig {
    /// Where the page listens, if enabled.
    pub listen: Option<SocketAddr>,
    /// `{SCHEME}hash` of the password of the basic-auth user [`ADMIN_USER`].
    pub admin_password: Option<String>,
    /// passdb users who may sign in to the page with their mail password.
    pub admin_users: Vec<String>,
}

/// The basic-auth user name that `admin_password` belongs to.
pub const ADMIN_USER: &str = "admin";

impl StatusConfig {
    /// Whether the page asks for a password (it must when reachable from other machines).
    pub fn requires_auth(&self) -> bool {
        self.admin_password.is_some() || !self.admin_users.is_empty()
    }
}

/// How a client should spell the user name it logs in with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsernameForm {
    /// The whole address, `alice@example.com` (virtual users keyed by address).
    Address,
    /// The part before the `@`, `alice` (system users, single-domain passwd-files).
    LocalPart,
}

/// `[autoconfig]`, validated (present only when `listen` or `listen_tls` is set).
#[derive(Debug, Clone)]
pub struct AutoconfigConfig {
    /// Where the autoconfig/autodiscover documents are served over plain HTTP.
    pub listen: Option<SocketAddr>,
    /// Where they are served over HTTPS with the `[tls]` certificate (Outlook asks only there).
    pub listen_tls: Option<SocketAddr>,
    /// The server name clients are told to connect to.
    pub hostname: String,
    /// The user name clients are told to log in with.
    pub username: UsernameForm,
}

/// Validates `[status]`; a page reachable from other machines must ask for a password.
pub(super) fn status(c: &mut Checker<'_>, raw: &RawStatus) -> StatusConfig {
    let listen = raw.listen.as_ref().and_then(|s| {
        let parsed = parse_addr(s.get_ref(), 8025);
        if parsed.is_none() {
            c.at(
                s,
                "status.listen",
                format!("{:?} is not an address like 127.0.0.1:8025", s.get_ref()),
            );
        }
        parsed
    });
    let admin_password =
        raw.admin_password.as_ref().and_then(|hash| {
            match crate::password::verify(hash.get_ref(), "") {
                Ok(_) => Some(hash.get_ref().clone()),
                Err(e) => {
                    c.at(
                        hash,
                        "status.admin_password",
                        format!("not a password hash ({e}): make one with `roost pw`"),
                    );
                    None
                }
            }
        });
    let mut admin_users = Vec::new();
    for (i, user) in raw.admin_users.iter().flatten().enumerate() {
        if user.get_ref().trim().is_empty() {
            c.at(user, format!("status.admin_users[{i}]"), "empty user name");
        } else {
            admin_users.push(user.get_ref().clone());
        }
    }
    let config = StatusConfig {
        listen,
        admin_password,
        admin_users,
    };
    if let (Some(addr), Some(span)) = (config.listen, &raw.listen) {
        let asks = config.requires_auth() || raw.admin_password.is_some();
        if !addr.ip().is_loopback() && !asks {
            c.at(
                span,
                "status.listen",
                format!(
                    "{addr} is reachable from other machines, so the page needs a password: \
                     set admin_password (a hash from `roost pw`) or admin_users, or listen on 127.0.0.1"
                ),
            );
        }
    }
    config
}

/// Validates `[autoconfig]`; without `listen` or `listen_tls` it is off. `listen_tls` needs a
/// configured `[tls] cert` (`tls_configured`): Outlook refuses the self-signed one roost would
/// generate, without asking the user.
pub(super) fn autoconfig(
    c: &mut Checker<'_>,
    raw: &RawAutoconfig,
    tls_configured: bool,
) -> Option<AutoconfigConfig> {
    let hostname = match &raw.hostname {
        Some(name) if !is_host_name(name.get_ref()) => {
            c.at(
                name,
                "autoconfig.hostname",
                format!(
                    "{:?} is not a host name like mail.example.com",
                    name.get_ref()
                ),
            );
            String::new()
        }
        Some(name) => name.get_ref().clone(),
        None => roost_storage::host::name().to_string(),
    };
    let username = match &raw.username {
        None => UsernameForm::Address,
        Some(form) => match form.get_ref().as_str() {
            "address" => UsernameForm::Address,
            "localpart" => UsernameForm::LocalPart,
            _ => {
                c.at(
                    form,
                    "autoconfig.username",
                    "must be \"address\" (alice@example.com) or \"localpart\" (alice)",
                );
                UsernameForm::Address
            }
        },
    };
    let mut address = |key: &str, value: &Option<toml::Spanned<String>>, port: u16| {
        let value = value.as_ref()?;
        let parsed = parse_addr(value.get_ref(), port);
        if parsed.is_none() {
            c.at(
                value,
                format!("autoconfig.{key}"),
                format!(
                    "{:?} is not an address like 0.0.0.0:{port}",
                    value.get_ref()
                ),
            );
        }
        parsed
    };
    let listen = address("listen", &raw.listen, 80);
    let listen_tls = address("listen_tls", &raw.listen_tls, 443);
    if let (Some(span), false) = (&raw.listen_tls, tls_configured) {
        c.at(
            span,
            "autoconfig.listen_tls",
            "needs the certificate of [tls] cert and key: Outlook refuses the self-signed one \
             roost would generate (without asking the user)",
        );
    }
    if listen.is_none() && listen_tls.is_none() {
        return None;
    }
    Some(AutoconfigConfig {
        listen,
        listen_tls,
        hostname,
        username,
    })
}

/// A DNS name or an IP address: what a client can be told to connect to.
fn is_host_name(name: &str) -> bool {
    name.parse::<std::net::IpAddr>().is_ok()
        || (!name.is_empty()
            && name.len() <= 253
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && label
                        .chars()
                        .all(|ch| ch.is_ascii_alphanumeric() || ch == '-')
            }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names() {
        for good in ["mail.example.com", "localhost", "127.0.0.1", "::1", "a-b.c"] {
            assert!(is_host_name(good), "{good}");
        }
        for bad in ["", "a..b", "-a.b", "a b", "mail.example.com/x", "<x>"] {
            assert!(!is_host_name(bad), "{bad}");
        }
    }
}
