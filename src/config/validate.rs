//! Turns the raw file into a [`Config`], collecting every problem with its line and key.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use roost_storage::quota::QuotaLimits;
use roost_storage::MailLocation;
use toml::Spanned;

use super::raw::RawConfig;
use super::{
    AuthConfig, Config, ConfigError, ConfigErrors, Limits, Listener, MailConfig, Network, Passdb,
    Protocol, TlsConfig,
};

/// Collects errors against one file.
pub(super) struct Checker<'a> {
    file: &'a Path,
    text: &'a str,
    base: PathBuf,
    errors: Vec<ConfigError>,
}

impl Checker<'_> {
    fn line_of(&self, offset: usize) -> usize {
        self.text[..offset.min(self.text.len())]
            .matches('\n')
            .count()
            + 1
    }

    /// Records a problem with a value, at its line.
    pub(super) fn at<T>(
        &mut self,
        value: &Spanned<T>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) {
        let line = self.line_of(value.span().start);
        self.errors.push(ConfigError {
            file: self.file.to_path_buf(),
            line: Some(line),
            key: Some(key.into()),
            message: message.into(),
        });
    }

    fn missing(&mut self, key: &str, message: &str) {
        self.errors.push(ConfigError {
            file: self.file.to_path_buf(),
            line: None,
            key: Some(key.to_string()),
            message: message.to_string(),
        });
    }

    /// Resolves a path relative to the config file's directory.
    pub(super) fn path(&self, value: &str) -> PathBuf {
        let p = Path::new(value);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base.join(p)
        }
    }

    /// The `[section]` enclosing a byte offset, to complete keys in serde's messages.
    fn section_at(&self, offset: usize) -> Option<String> {
        self.text[..offset.min(self.text.len())]
            .lines()
            .rev()
            .filter_map(|l| {
                let l = l.trim();
                l.strip_prefix('[')?
                    .strip_suffix(']')
                    .map(|s| s.trim().to_string())
            })
            .next()
    }
}

/// Parses and validates the text of a config file.
pub fn parse(file: &Path, text: &str) -> Result<Config, ConfigErrors> {
    let mut c = Checker {
        file,
        text,
        base: file
            .parent()
            .map(Path::to_path_buf)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from(".")),
        errors: Vec::new(),
    };
    let raw: RawConfig = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => return Err(ConfigErrors::single(syntax_error(&c, &e))),
    };
    let (listeners, lmtp_socket) = listeners(&mut c, &raw);
    let mut smtp = super::smtp::smtp(&mut c, &raw.smtp);
    smtp.lmtp_socket = lmtp_socket;
    let spam = super::spam::spam(&mut c, &raw.spam);
    let mail = mail(&mut c, &raw);
    let auth = auth(&mut c, &raw);
    let tls = tls(&mut c, &raw);
    let limits = limits(&mut c, &raw);
    let status = super::web::status(&mut c, &raw.status);
    let sieve = super::sieve::sieve(&mut c, &raw.sieve);
    let autoconfig = super::web::autoconfig(&mut c, &raw.autoconfig, raw.tls.cert.is_some());
    let log_level = match &raw.log.level {
        Some(level)
            if !["error", "warn", "info", "debug", "trace"].contains(&level.get_ref().as_str()) =>
        {
            c.at(
                level,
                "log.level",
                "must be one of error, warn, info, debug, trace",
            );
            String::new()
        }
        Some(level) => level.get_ref().clone(),
        None => "info".into(),
    };
    match (c.errors.is_empty(), mail, auth) {
        (true, Some(mail), Some(auth)) => Ok(Config {
            listeners,
            mail,
            auth,
            tls,
            limits,
            smtp,
            spam,
            status,
            sieve,
            autoconfig,
            log_level,
            login_user: raw
                .server
                .login_user
                .as_ref()
                .map(|u| u.get_ref().clone())
                .unwrap_or_else(|| super::DEFAULT_LOGIN_USER.to_string()),
            path: Some(std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf())),
        }),
        _ => Err(ConfigErrors(c.errors)),
    }
}

fn syntax_error(c: &Checker<'_>, e: &toml::de::Error) -> ConfigError {
    let span = e.span();
    let line = span.as_ref().map(|s| c.line_of(s.start));
    let key = span.and_then(|s| {
        let word = c.text.get(s.clone())?.trim().trim_matches('"').to_string();
        let plausible = !word.is_empty()
            && word
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || "_-.".contains(ch));
        let word = plausible.then_some(word)?;
        Some(match c.section_at(s.start) {
            Some(section) if section != word => format!("{section}.{word}"),
            _ => word,
        })
    });
    ConfigError {
        file: c.file.to_path_buf(),
        line,
        key,
        message: e.message().trim().to_string(),
    }
}

/// `host:port`, `[v6]:port`, or a bare host taking the default port.
pub(super) fn parse_addr(text: &str, default_port: u16) -> Option<SocketAddr> {
    let text = text.trim();
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Some(addr);
    }
    let host = text.trim_start_matches('[').trim_end_matches(']');
    let host = if host == "*" { "0.0.0.0" } else { host };
    host.parse::<IpAddr>()
        .ok()
        .map(|ip| SocketAddr::new(ip, default_port))
}

/// The LMTP socket path, when `[listen] lmtp` is a path (`/run/roost/lmtp` or `unix:PATH`).
fn unix_path(c: &Checker<'_>, text: &str) -> Option<PathBuf> {
    match text.strip_prefix("unix:") {
        Some(path) if !path.is_empty() => Some(c.path(path)),
        _ if text.starts_with('/') => Some(PathBuf::from(text)),
        _ => None,
    }
}

fn listeners(c: &mut Checker<'_>, raw: &RawConfig) -> (Vec<Listener>, Option<PathBuf>) {
    let Some(protocols) = &raw.protocols else {
        c.missing(
            "protocols",
            "missing: list what to serve, e.g. protocols = [\"imap\", \"pop3s\"]",
        );
        return (Vec::new(), None);
    };
    let chosen = chosen_protocols(c, protocols);
    let (addrs, lmtp_socket) = listen_addresses(c, raw);
    let mut out: Vec<Listener> = Vec::new();
    for p in chosen {
        if p == Protocol::Lmtp && lmtp_socket.is_some() {
            continue;
        }
        let default_ip = if p == Protocol::Lmtp {
            [127, 0, 0, 1]
        } else {
            [0, 0, 0, 0]
        };
        let (addr, span) = addrs
            .get(&p)
            .copied()
            .unwrap_or((SocketAddr::from((default_ip, p.default_port())), None));
        if let Some(other) = out.iter().find(|l| conflicts(l.addr, addr)) {
            let msg = format!("{addr} is also used by {}", other.protocol.name());
            match span {
                Some(s) => c.at(s, format!("listen.{}", p.name()), msg),
                None => c.missing(&format!("listen.{}", p.name()), &msg),
            }
            continue;
        }
        out.push(Listener { protocol: p, addr });
    }
    let lmtp_listed = protocols.iter().any(|p| p.get_ref() == "lmtp");
    (out, lmtp_socket.filter(|_| lmtp_listed))
}

fn known_protocols() -> String {
    let known: Vec<&str> = Protocol::ALL.iter().map(|p| p.name()).collect();
    known.join(", ")
}

/// `protocols = [...]`: each name known and listed once, in the admin's order.
fn chosen_protocols(c: &mut Checker<'_>, protocols: &[Spanned<String>]) -> Vec<Protocol> {
    let mut chosen = Vec::new();
    for (i, name) in protocols.iter().enumerate() {
        match Protocol::from_name(name.get_ref()) {
            Some(p) if chosen.contains(&p) => c.at(
                name,
                format!("protocols[{i}]"),
                format!("{:?} is listed twice", name.get_ref()),
            ),
            Some(p) => chosen.push(p),
            None => c.at(
                name,
                format!("protocols[{i}]"),
                format!(
                    "unknown protocol {:?} (known: {})",
                    name.get_ref(),
                    known_protocols()
                ),
            ),
        }
    }
    chosen
}

/// Addresses the listeners were given in `[listen]`.
type ListenAddrs<'a> = HashMap<Protocol, (SocketAddr, Option<&'a Spanned<String>>)>;

/// `[listen]`: an address per protocol (with the span that set it), and LMTP's unix socket.
fn listen_addresses<'a>(
    c: &mut Checker<'_>,
    raw: &'a RawConfig,
) -> (ListenAddrs<'a>, Option<PathBuf>) {
    let mut addrs = ListenAddrs::new();
    let mut lmtp_socket = None;
    for (key, value) in &raw.listen {
        let Some(p) = Protocol::from_name(key.get_ref()) else {
            c.at(
                key,
                format!("listen.{}", key.get_ref()),
                format!("unknown protocol (known: {})", known_protocols()),
            );
            continue;
        };
        if let Some(path) = unix_path(c, value.get_ref()) {
            if p == Protocol::Lmtp {
                lmtp_socket = Some(path);
            } else {
                c.at(
                    value,
                    format!("listen.{}", p.name()),
                    "only lmtp may listen on a unix socket",
                );
            }
            continue;
        }
        match parse_addr(value.get_ref(), p.default_port()) {
            Some(addr) if p == Protocol::Lmtp && !addr.ip().is_loopback() => c.at(
                value,
                "listen.lmtp",
                "LMTP has no authentication: listen on loopback (127.0.0.1:24) or a unix socket path",
            ),
            Some(addr) => {
                addrs.insert(p, (addr, Some(value)));
            }
            None => c.at(
                value,
                format!("listen.{}", p.name()),
                format!(
                    "{:?} is not an address like 0.0.0.0:{}",
                    value.get_ref(),
                    p.default_port()
                ),
            ),
        }
    }
    (addrs, lmtp_socket)
}

/// Two listeners clash when they share a port and one address covers the other.
fn conflicts(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() != 0
        && a.port() == b.port()
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

fn mail(c: &mut Checker<'_>, raw: &RawConfig) -> Option<MailConfig> {
    let location = match &raw.mail.location {
        Some(loc) => match MailLocation::parse(loc.get_ref()) {
            Ok(parsed) => parsed,
            Err(e) => {
                c.at(loc, "mail.location", e.to_string());
                return None;
            }
        },
        None => {
            c.missing(
                "mail.location",
                "missing: where mail lives, e.g. \"maildir:~/Maildir\" or \"maildir:/srv/mail/%u\"",
            );
            return None;
        }
    };
    Some(MailConfig {
        location,
        user: raw.mail.user.as_ref().map(|u| u.get_ref().clone()),
        privileged_gid: privileged_gid(c, raw),
        quota_full_tempfail: raw.mail.quota_full_tempfail.unwrap_or(false),
    })
}

/// `[mail] quota` (a size: "1G", "500M") and `quota_messages` (a count; 0 is no limit).
fn quota(c: &mut Checker<'_>, raw: &RawConfig) -> QuotaLimits {
    let mut limits = QuotaLimits {
        storage: None,
        messages: raw.mail.quota_messages.filter(|n| *n > 0),
    };
    if let Some(size) = &raw.mail.quota {
        match roost_storage::quota::parse_size(size.get_ref()) {
            Some(0) => {}
            Some(bytes) => limits.storage = Some(bytes),
            None => c.at(
                size,
                "mail.quota",
                format!(
                    "{:?} is not a size: write bytes or a number with k, M, G or T, e.g. \"2G\"",
                    size.get_ref()
                ),
            ),
        }
    }
    limits
}

fn privileged_gid(c: &mut Checker<'_>, raw: &RawConfig) -> Option<u32> {
    let group = raw.mail.privileged_group.as_ref()?;
    let gid = crate::system::group_id(group.get_ref());
    if gid.is_none() {
        c.at(
            group,
            "mail.privileged_group",
            format!("group {:?} does not exist on this system", group.get_ref()),
        );
    }
    gid
}

fn auth(c: &mut Checker<'_>, raw: &RawConfig) -> Option<AuthConfig> {
    let Some(entries) = raw.auth.passdb.as_ref().filter(|p| !p.is_empty()) else {
        c.missing(
            "auth.passdb",
            "missing: e.g. passdb = [\"passwd-file:/etc/roost/users\"] or [\"pam:roost\"]",
        );
        return None;
    };
    let mut passdbs = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let key = format!("auth.passdb[{i}]");
        let (driver, arg) = entry
            .get_ref()
            .split_once(':')
            .unwrap_or((entry.get_ref(), ""));
        match driver {
            "passwd-file" if arg.is_empty() => c.at(
                entry,
                key,
                "passwd-file needs a path: \"passwd-file:/etc/roost/users\"",
            ),
            "passwd-file" => {
                let path = c.path(arg);
                if !path.is_file() {
                    c.at(
                        entry,
                        key,
                        format!("passwd-file {} does not exist", path.display()),
                    );
                    continue;
                }
                passdbs.push(Passdb::PasswdFile(path));
            }
            "pam" => passdbs.push(Passdb::Pam(if arg.is_empty() {
                "roost".into()
            } else {
                arg.into()
            })),
            other => c.at(
                entry,
                key,
                format!("unknown passdb driver {other:?} (known: passwd-file, pam)"),
            ),
        }
    }
    let mut trusted_networks = Network::loopback();
    if let Some(nets) = &raw.auth.trusted_networks {
        trusted_networks.clear();
        for (i, net) in nets.iter().enumerate() {
            match net.get_ref().parse::<Network>() {
                Ok(n) => trusted_networks.push(n),
                Err(e) => c.at(net, format!("auth.trusted_networks[{i}]"), e),
            }
        }
    }
    Some(AuthConfig {
        passdbs,
        allow_plaintext_without_tls: raw.auth.allow_plaintext_without_tls.unwrap_or(false),
        trusted_networks,
        failure_delay: Duration::from_millis(raw.auth.failure_delay_ms.unwrap_or(2000)),
        max_failures_per_ip: raw.auth.max_failures_per_ip.unwrap_or(10),
        max_failures_per_user: raw.auth.max_failures_per_user.unwrap_or(20),
        default_quota: quota(c, raw),
    })
}

fn tls(c: &mut Checker<'_>, raw: &RawConfig) -> TlsConfig {
    match (&raw.tls.cert, &raw.tls.key) {
        (Some(cert), Some(key)) => {
            let (cert_path, key_path) = (c.path(cert.get_ref()), c.path(key.get_ref()));
            if !cert_path.is_file() {
                c.at(
                    cert,
                    "tls.cert",
                    format!("certificate file {} does not exist", cert_path.display()),
                );
            }
            if !key_path.is_file() {
                c.at(
                    key,
                    "tls.key",
                    format!("key file {} does not exist", key_path.display()),
                );
            }
            TlsConfig {
                cert: cert_path,
                key: key_path,
                configured: true,
            }
        }
        (Some(one), None) | (None, Some(one)) => {
            let key = if raw.tls.cert.is_some() {
                "tls.key"
            } else {
                "tls.cert"
            };
            c.at(one, key, "tls.cert and tls.key must be given together");
            TlsConfig {
                cert: PathBuf::new(),
                key: PathBuf::new(),
                configured: true,
            }
        }
        (None, None) => TlsConfig {
            cert: c.path("certs/server.crt"),
            key: c.path("certs/server.key"),
            configured: false,
        },
    }
}

fn limits(c: &mut Checker<'_>, raw: &RawConfig) -> Limits {
    let l = &raw.limits;
    let mut positive = |v: &Option<Spanned<u32>>, key: &str, default: u32| match v {
        Some(s) if *s.get_ref() == 0 => {
            c.at(s, format!("limits.{key}"), "must be at least 1");
            default
        }
        Some(s) => *s.get_ref(),
        None => default,
    };
    let max_connections = positive(&l.max_connections, "max_connections", 1000);
    let max_connections_per_ip = positive(&l.max_connections_per_ip, "max_connections_per_ip", 50);
    let secs =
        |v: Option<u64>, default: u64| Duration::from_secs(v.filter(|s| *s > 0).unwrap_or(default));
    Limits {
        max_connections,
        max_connections_per_ip,
        imap_idle_timeout: secs(l.imap_idle_timeout_secs, 30 * 60),
        pop3_idle_timeout: secs(l.pop3_idle_timeout_secs, 10 * 60),
        smtp_idle_timeout: secs(l.smtp_idle_timeout_secs, 5 * 60),
        login_timeout: secs(l.login_timeout_secs, 3 * 60),
        tls_handshake_timeout: secs(l.tls_handshake_timeout_secs, 30),
        max_literal_bytes: l.max_literal_bytes.unwrap_or(50 * 1024 * 1024),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<Config, ConfigErrors> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("users"), "alice:{PLAIN}pw\n").unwrap();
        parse(&dir.path().join("roost.toml"), text)
    }

    const GOOD: &str = r#"
protocols = ["imap", "pop3s"]
[listen]
imap = "127.0.0.1:1143"
[mail]
location = "maildir:/srv/mail/%u"
[auth]
passdb = ["passwd-file:users", "pam"]
"#;

    #[test]
    fn a_good_config_validates() {
        let cfg = check(GOOD).unwrap();
        assert_eq!(cfg.listeners.len(), 2);
        assert_eq!(cfg.listeners[0].addr, "127.0.0.1:1143".parse().unwrap());
        assert_eq!(cfg.listeners[1].addr, "0.0.0.0:995".parse().unwrap());
        assert_eq!(cfg.auth.passdbs[1], Passdb::Pam("roost".into()));
        assert!(!cfg.tls.configured);
    }

    #[test]
    fn the_sieve_section_has_defaults_and_checked_limits() {
        let cfg = check(GOOD).unwrap();
        assert_eq!(cfg.sieve, super::super::SieveConfig::default());
        assert_eq!(
            (cfg.sieve.max_scripts, cfg.sieve.max_script_size),
            (20, 65536)
        );
        let cfg = check(&format!(
            "{GOOD}[sieve]\nmax_scripts = 3\nmax_script_size = 100\n"
        ))
        .unwrap();
        assert_eq!((cfg.sieve.max_scripts, cfg.sieve.max_script_size), (3, 100));
        let e = first_error(&format!("{GOOD}[sieve]\nmax_scripts = 0\n"));
        assert!(
            e.ends_with(":10: sieve.max_scripts: must be at least 1"),
            "{e}"
        );
        let e = first_error(&format!("{GOOD}[sieve]\nafter = [\"missing.sieve\"]\n"));
        assert!(e.contains(":10: sieve.after: cannot read "), "{e}");
    }

    fn first_error(text: &str) -> String {
        check(text).unwrap_err().0[0].to_string()
    }

    #[test]
    fn errors_name_line_and_key() {
        let e = first_error(&GOOD.replace("\"pop3s\"", "\"imap5\""));
        assert!(e.ends_with(":2: protocols[1]: unknown protocol \"imap5\" (known: imap, imaps, pop3, pop3s, submission, submissions, smtp, lmtp, sieve)"), "{e}");
        let e = first_error(&GOOD.replace("[mail]", "[mail]\nmailbox_size = 5"));
        assert!(e.contains(":6: mail.mailbox_size: unknown field"), "{e}");
        let e = first_error(&GOOD.replace("imap = \"127.0.0.1:1143\"", "imap = \"127.0.0.1:995\""));
        assert!(
            e.ends_with("roost.toml: listen.pop3s: 0.0.0.0:995 is also used by imap"),
            "{e}"
        );
        let e = first_error(&format!(
            "{GOOD}[tls]\ncert = \"nope.crt\"\nkey = \"nope.key\"\n"
        ));
        assert!(e.contains(":10: tls.cert: certificate file"), "{e}");
        let e = first_error(&GOOD.replace("maildir:/srv", "maildir:srv"));
        assert!(e.contains(":6: mail.location: "), "{e}");
        let e = first_error("protocols = [\"imap\"\n");
        assert!(e.contains("roost.toml:"), "{e}");
    }
}
