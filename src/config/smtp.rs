//! `[smtp]`: which domains are local, how addresses map to users (aliases, virtual map), who may
//! relay and through which smarthost, message limits, and the outbound queue.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::raw::RawSmtp;
use super::validate::Checker;
use super::Network;

mod relay_passwd;

use relay_passwd::PasswdFileError;
pub use relay_passwd::RelayCredentials;

/// How the connection to the relayhost is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayTls {
    /// `host:port`: plain SMTP; STARTTLS only when a password is to be sent.
    Plain,
    /// `smtp+starttls://host:port`: STARTTLS, always, or no attempt.
    StartTls,
    /// `smtps://host:port`: TLS from the first byte (RFC 8314).
    Implicit,
}

/// The smarthost non-local mail is handed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relayhost {
    /// Host name or IP address (brackets of `[host]:port` removed); also the name its
    /// certificate must carry.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Plain, STARTTLS or implicit TLS.
    pub tls: RelayTls,
}

impl std::fmt::Display for Relayhost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.tls {
            RelayTls::Plain => {}
            RelayTls::StartTls => f.write_str("smtp+starttls://")?,
            RelayTls::Implicit => f.write_str("smtps://")?,
        }
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// `[smtp]`, validated.
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    /// Domains delivered here, lowercased.
    pub local_domains: Vec<String>,
    /// The `/etc/aliases`-format file, if any.
    pub aliases: Option<PathBuf>,
    /// The virtual-address map, if any.
    pub virtual_map: Option<PathBuf>,
    /// Where mail for other domains goes; without it such mail is refused.
    pub relayhost: Option<Relayhost>,
    /// The CA certificates (PEM) the relayhost's certificate is checked against instead of
    /// the system's roots.
    pub relayhost_ca: Option<PathBuf>,
    /// `relayhost_password_file`, when set: with it, mail is never relayed without logging in.
    pub relayhost_password_file: Option<PathBuf>,
    /// The user name and password for the relayhost, read from `relayhost_password_file`
    /// (`None` there when this user may not read it: `roost deliver` run as a mail user).
    pub relay_credentials: Option<RelayCredentials>,
    /// Clients that may relay on port 25 without authenticating.
    pub relay_networks: Vec<Network>,
    /// Largest message accepted, in bytes (announced with SIZE).
    pub max_message_size: u64,
    /// Most recipients per message.
    pub max_recipients: usize,
    /// The outbound queue and DATA spool.
    pub queue_dir: PathBuf,
    /// Delay before the first retry; doubles per attempt up to [`MAX_RETRY_DELAY`].
    pub retry_delay: Duration,
    /// How long a message may stay queued before it bounces.
    pub queue_lifetime: Duration,
    /// Extra addresses a user may send as: user → addresses or `@domain`.
    pub senders: BTreeMap<String, Vec<String>>,
    /// The LMTP unix socket, when `[listen] lmtp` names a path.
    pub lmtp_socket: Option<PathBuf>,
}

/// The longest wait between two attempts.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(4 * 3600);

impl SmtpConfig {
    /// Defaults for a server without `[smtp]` (nothing local, no relaying).
    pub fn with_queue(queue_dir: PathBuf) -> Self {
        Self {
            local_domains: Vec::new(),
            aliases: None,
            virtual_map: None,
            relayhost: None,
            relayhost_ca: None,
            relayhost_password_file: None,
            relay_credentials: None,
            relay_networks: Vec::new(),
            max_message_size: 50 * 1024 * 1024,
            max_recipients: 100,
            queue_dir,
            retry_delay: Duration::from_secs(60),
            queue_lifetime: Duration::from_secs(5 * 24 * 3600),
            senders: BTreeMap::new(),
            lmtp_socket: None,
        }
    }

    /// Whether a domain (lowercased) is delivered here; a bare local part always is.
    pub fn is_local(&self, domain: Option<&str>) -> bool {
        domain.is_none_or(|d| self.local_domains.iter().any(|l| l == d))
    }
}

/// The default queue directory.
pub const DEFAULT_QUEUE_DIR: &str = "/var/spool/roost";

/// Validates `[smtp]`.
pub(super) fn smtp(c: &mut Checker<'_>, raw: &RawSmtp) -> SmtpConfig {
    let queue_dir = match &raw.queue_dir {
        Some(dir) if dir.get_ref().trim().is_empty() => {
            c.at(dir, "smtp.queue_dir", "empty path");
            PathBuf::new()
        }
        Some(dir) => c.path(dir.get_ref()),
        None => PathBuf::from(DEFAULT_QUEUE_DIR),
    };
    let mut out = SmtpConfig::with_queue(queue_dir);
    out.local_domains = local_domains(c, raw);
    out.aliases = map_file(c, raw.aliases.as_ref(), "smtp.aliases", false);
    out.virtual_map = map_file(c, raw.virtual_map.as_ref(), "smtp.virtual", true);
    out.relayhost = raw.relayhost.as_ref().and_then(|r| relayhost(c, r));
    relay_security(c, raw, &mut out);
    for (i, net) in raw.relay_networks.iter().flatten().enumerate() {
        match net.get_ref().parse::<Network>() {
            Ok(n) => out.relay_networks.push(n),
            Err(e) => c.at(net, format!("smtp.relay_networks[{i}]"), e),
        }
    }
    limits(c, raw, &mut out);
    senders(c, raw, &mut out);
    out
}

/// `local_domains`: lower-cased, each a valid domain name.
fn local_domains(c: &mut Checker<'_>, raw: &RawSmtp) -> Vec<String> {
    let mut out = Vec::new();
    for (i, domain) in raw.local_domains.iter().flatten().enumerate() {
        let d = domain.get_ref().trim().to_lowercase();
        let valid = roost_protocol::smtp::address::Address::parse(&format!("x@{d}"))
            .is_ok_and(|a| a.domain() == Some(d.as_str()));
        if valid {
            out.push(d);
        } else {
            c.at(
                domain,
                format!("smtp.local_domains[{i}]"),
                format!("{:?} is not a domain name", domain.get_ref()),
            );
        }
    }
    out
}

/// `relayhost_ca` (readable, with at least one certificate) and `relayhost_password_file`
/// (private, with a line for the relayhost).
fn relay_security(c: &mut Checker<'_>, raw: &RawSmtp, out: &mut SmtpConfig) {
    if let Some(ca) = &raw.relayhost_ca {
        let path = c.path(ca.get_ref());
        match std::fs::read(&path) {
            Ok(pem) if has_certificate(&pem) => out.relayhost_ca = Some(path),
            Ok(_) => c.at(
                ca,
                "smtp.relayhost_ca",
                format!("{}: no PEM certificate in it", path.display()),
            ),
            Err(e) => c.at(ca, "smtp.relayhost_ca", format!("{}: {e}", path.display())),
        }
    }
    let Some(file) = &raw.relayhost_password_file else {
        return;
    };
    let Some(relayhost) = &out.relayhost else {
        c.at(file, "smtp.relayhost_password_file", "needs a relayhost");
        return;
    };
    let path = c.path(file.get_ref());
    match relay_passwd::load(&path, relayhost) {
        Ok(credentials) => out.relay_credentials = Some(credentials),
        // Commands that never relay (`roost deliver` as a mail user, `roost config check`) go
        // on; the relay refuses to send without the login and says why.
        Err(PasswdFileError::Read { denied: true, .. }) if !crate::system::running_as_root() => {}
        Err(e) => c.at(file, "smtp.relayhost_password_file", e.to_string()),
    }
    out.relayhost_password_file = Some(path);
}

/// Whether PEM text holds at least one readable certificate.
fn has_certificate(pem: &[u8]) -> bool {
    use rustls::pki_types::pem::PemObject;
    let mut certs = rustls::pki_types::CertificateDer::pem_slice_iter(pem);
    matches!(certs.next(), Some(Ok(_)))
}

/// `relayhost`: host:port.
fn relayhost(c: &mut Checker<'_>, raw: &toml::Spanned<String>) -> Option<Relayhost> {
    let parsed = parse_relayhost(raw.get_ref());
    if parsed.is_none() {
        c.at(
            raw,
            "smtp.relayhost",
            format!(
                "{:?} is not host:port, smtp+starttls://host:port or smtps://host:port (e.g. \"smtp+starttls://smtp.example.net:587\" or \"[192.0.2.1]:25\")",
                raw.get_ref()
            ),
        );
    }
    parsed
}

/// Message size, recipients per message, queue retry and lifetime.
fn limits(c: &mut Checker<'_>, raw: &RawSmtp, out: &mut SmtpConfig) {
    if let Some(size) = &raw.max_message_size {
        if *size.get_ref() < 1024 {
            c.at(size, "smtp.max_message_size", "must be at least 1024 bytes");
        } else {
            out.max_message_size = *size.get_ref();
        }
    }
    if let Some(n) = &raw.max_recipients {
        match *n.get_ref() {
            0 => c.at(n, "smtp.max_recipients", "must be at least 1"),
            n => out.max_recipients = n as usize,
        }
    }
    let mut secs = |v: &Option<toml::Spanned<u64>>, key: &str, slot: &mut Duration| {
        if let Some(s) = v {
            match *s.get_ref() {
                0 => c.at(s, format!("smtp.{key}"), "must be at least 1"),
                n => *slot = Duration::from_secs(n),
            }
        }
    };
    secs(
        &raw.queue_retry_secs,
        "queue_retry_secs",
        &mut out.retry_delay,
    );
    secs(
        &raw.queue_lifetime_secs,
        "queue_lifetime_secs",
        &mut out.queue_lifetime,
    );
}

/// `[smtp.senders]`: the addresses (or @domains) each user may send as.
fn senders(c: &mut Checker<'_>, raw: &RawSmtp, out: &mut SmtpConfig) {
    for (user, addresses) in &raw.senders {
        let list = out.senders.entry(user.get_ref().clone()).or_default();
        for (i, a) in addresses.iter().enumerate() {
            let text = a.get_ref().trim();
            let ok = match text.strip_prefix('@') {
                Some(domain) => !domain.is_empty() && !domain.contains('@'),
                None => roost_protocol::smtp::address::Address::parse(text)
                    .is_ok_and(|a| a.domain().is_some()),
            };
            if ok {
                list.push(text.to_lowercase());
            } else {
                c.at(
                    a,
                    format!("smtp.senders.{}[{i}]", user.get_ref()),
                    format!("{text:?} is neither an address nor @domain"),
                );
            }
        }
    }
}

/// An aliases or virtual file: must exist and parse; its own errors carry its line.
fn map_file(
    c: &mut Checker<'_>,
    value: Option<&toml::Spanned<String>>,
    key: &str,
    virtual_format: bool,
) -> Option<PathBuf> {
    let value = value?;
    let path = c.path(value.get_ref());
    match crate::config::aliases::AliasMap::load(&path, virtual_format) {
        Ok(_) => Some(path),
        Err(e) => {
            c.at(value, key, e.to_string());
            None
        }
    }
}

/// `host:port`, `[host]:port`, `[v6]:port`, or `host` (port 25), each optionally after
/// `smtp+starttls://` (port 587 by default) or `smtps://` (port 465).
pub fn parse_relayhost(text: &str) -> Option<Relayhost> {
    let text = text.trim();
    let (tls, text, default) = if let Some(rest) = text.strip_prefix("smtp+starttls://") {
        (RelayTls::StartTls, rest, 587)
    } else if let Some(rest) = text.strip_prefix("smtps://") {
        (RelayTls::Implicit, rest, 465)
    } else {
        (
            RelayTls::Plain,
            text.strip_prefix("smtp://").unwrap_or(text),
            25,
        )
    };
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => default,
            None => return None,
        };
        (host, port)
    } else {
        match text.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h, p.parse().ok()?),
            Some(_) => return None,
            None => (text, default),
        }
    };
    let plausible = !host.is_empty()
        && port != 0
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_:".contains(c));
    plausible.then(|| Relayhost {
        host: host.to_string(),
        port,
        tls,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relayhosts_parse() {
        let r = |s: &str| parse_relayhost(s).map(|r| r.to_string());
        assert_eq!(
            r("smtp.example.net:587").as_deref(),
            Some("smtp.example.net:587")
        );
        assert_eq!(r("[192.0.2.1]:25").as_deref(), Some("192.0.2.1:25"));
        assert_eq!(r("mx.example").as_deref(), Some("mx.example:25"));
        assert_eq!(r("[::1]:2525").as_deref(), Some("[::1]:2525"));
        assert_eq!(
            r("smtp+starttls://smtp.example.net").as_deref(),
            Some("smtp+starttls://smtp.example.net:587")
        );
        assert_eq!(r("smtps://[::1]").as_deref(), Some("smtps://[::1]:465"));
        assert_eq!(r("smtp://mx.example:26").as_deref(), Some("mx.example:26"));
        for bad in [
            "",
            ":25",
            "host:x",
            "host:0",
            "a b:25",
            "::1:25",
            "[x]y",
            "smtps://",
            "imap://host:143",
            "smtps://host:25/x",
        ] {
            assert_eq!(r(bad), None, "{bad}");
        }
    }

    #[test]
    fn relay_security_keys_are_checked_where_they_are_written() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), "not a certificate\n").unwrap();
        let passwd = dir.path().join("passwd");
        std::fs::write(&passwd, "[mx.example]:587 u:p\n").unwrap();
        std::fs::set_permissions(&passwd, std::fs::Permissions::from_mode(0o600)).unwrap();
        let text = |relayhost: &str| {
            format!(
                "protocols = [\"submission\"]\n[smtp]\n{relayhost}relayhost_ca = \"ca.pem\"\nrelayhost_password_file = \"passwd\"\n"
            )
        };
        let file = dir.path().join("roost.toml");
        let errors = super::super::validate::parse(&file, &text(""))
            .unwrap_err()
            .to_string();
        assert!(
            errors.contains("roost.toml:3: smtp.relayhost_ca: "),
            "{errors}"
        );
        assert!(errors.contains("no PEM certificate in it"), "{errors}");
        assert!(
            errors.contains("roost.toml:4: smtp.relayhost_password_file: needs a relayhost"),
            "{errors}"
        );
        let with = text("relayhost = \"smtp+starttls://mx.example\"\n");
        let errors = super::super::validate::parse(&file, &with)
            .unwrap_err()
            .to_string();
        assert!(!errors.contains("relayhost_password_file"), "{errors}");
        let with = text("relayhost = \"smtps://mx.example\"\n");
        let errors = super::super::validate::parse(&file, &with)
            .unwrap_err()
            .to_string();
        assert!(
            errors.contains("has no line for [mx.example]:465"),
            "{errors}"
        );
    }
}
