//! roost's TOML configuration: what the admin wrote, validated into [`Config`] with errors that
//! name the file, the line and the key.
//!
//! Relative paths in a config file are resolved against the file's own directory, so a config
//! and its certificates can move together.

pub mod aliases;
mod embedded;
mod error;
mod network;
mod raw;
mod sieve;
pub mod smtp;
pub mod spam;
mod validate;
mod web;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use roost_storage::quota::QuotaLimits;
use roost_storage::MailLocation;

pub use embedded::embedded;
pub use error::{AccessDenied, ConfigError, ConfigErrors};
pub use network::Network;
pub use sieve::SieveConfig;
pub use smtp::{Relayhost, SmtpConfig, MAX_RETRY_DELAY};
pub use web::{AutoconfigConfig, StatusConfig, UsernameForm, ADMIN_USER};

/// A protocol an admin can list in `protocols`, named as Dovecot and /etc/services name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// IMAP on 143, STARTTLS available.
    Imap,
    /// IMAP over implicit TLS on 993.
    Imaps,
    /// POP3 on 110, STLS available.
    Pop3,
    /// POP3 over implicit TLS on 995.
    Pop3s,
    /// Message submission on 587, STARTTLS available (RFC 6409).
    Submission,
    /// Message submission over implicit TLS on 465 (RFC 8314).
    Submissions,
    /// Inbound SMTP on 25: mail from the world for the local domains, no relaying.
    Smtp,
    /// LMTP (RFC 2033) for the MTA next door: loopback TCP or a unix socket.
    Lmtp,
    /// ManageSieve (RFC 5804) on 4190, STARTTLS available: users manage their Sieve scripts.
    Sieve,
}

impl Protocol {
    /// Every protocol this build serves, in listing order.
    pub const ALL: [Protocol; 9] = [
        Self::Imap,
        Self::Imaps,
        Self::Pop3,
        Self::Pop3s,
        Self::Submission,
        Self::Submissions,
        Self::Smtp,
        Self::Lmtp,
        Self::Sieve,
    ];

    /// The name used in `protocols` and `[listen]`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Imap => "imap",
            Self::Imaps => "imaps",
            Self::Pop3 => "pop3",
            Self::Pop3s => "pop3s",
            Self::Submission => "submission",
            Self::Submissions => "submissions",
            Self::Smtp => "smtp",
            Self::Lmtp => "lmtp",
            Self::Sieve => "sieve",
        }
    }

    /// Looks a protocol up by its config name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }

    /// The IANA port.
    pub fn default_port(self) -> u16 {
        match self {
            Self::Imap => 143,
            Self::Imaps => 993,
            Self::Pop3 => 110,
            Self::Pop3s => 995,
            Self::Submission => 587,
            Self::Submissions => 465,
            Self::Smtp => 25,
            Self::Lmtp => 24,
            Self::Sieve => 4190,
        }
    }

    /// The unprivileged port the embedded default uses (1000 + the IANA port).
    pub fn embedded_port(self) -> u16 {
        1000 + self.default_port()
    }

    /// Whether TLS starts before the first byte (imaps, pop3s, submissions).
    pub fn implicit_tls(self) -> bool {
        matches!(self, Self::Imaps | Self::Pop3s | Self::Submissions)
    }

    /// Whether its clients log in before they are served (IMAP, POP3, submission, ManageSieve), so the
    /// login timeout applies; port 25 and LMTP never log in.
    pub fn requires_login(self) -> bool {
        !matches!(self, Self::Smtp | Self::Lmtp)
    }

    /// The application protocol family the session speaks.
    pub fn family(self) -> Family {
        match self {
            Self::Imap | Self::Imaps => Family::Imap,
            Self::Pop3 | Self::Pop3s => Family::Pop3,
            Self::Submission | Self::Submissions => Family::Smtp,
            Self::Smtp => Family::Inbound,
            Self::Lmtp => Family::Lmtp,
            Self::Sieve => Family::Sieve,
        }
    }
}

/// The session state machine a protocol needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// IMAP4rev1/rev2.
    Imap,
    /// POP3.
    Pop3,
    /// SMTP submission.
    Smtp,
    /// Inbound SMTP from other mail servers (its own family, so autoconfig never offers it).
    Inbound,
    /// LMTP from the local MTA.
    Lmtp,
    /// ManageSieve.
    Sieve,
}

impl Family {
    /// Whether the session speaks SMTP or LMTP (and so needs the queue and delivery).
    pub fn is_smtp(self) -> bool {
        matches!(self, Self::Smtp | Self::Inbound | Self::Lmtp)
    }

    /// The service name used in log lines (`imap-login: ...`, `pop3(alice): ...`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Imap => "imap",
            Self::Pop3 => "pop3",
            Self::Smtp => "submission",
            Self::Inbound => "smtp",
            Self::Lmtp => "lmtp",
            Self::Sieve => "managesieve",
        }
    }
}

/// A validated, ready-to-use configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// What to bind, one entry per listed protocol.
    pub listeners: Vec<Listener>,
    /// Where and as whom mail is stored.
    pub mail: MailConfig,
    /// How users are authenticated.
    pub auth: AuthConfig,
    /// Certificate and key.
    pub tls: TlsConfig,
    /// Connection limits and timeouts.
    pub limits: Limits,
    /// `[smtp]`: local domains, aliases, relaying, the queue.
    pub smtp: SmtpConfig,
    /// `[spam]`: the content scanner, if one is configured.
    pub spam: Option<spam::SpamConfig>,
    /// The HTTP status page and who may read it.
    pub status: StatusConfig,
    /// `[sieve]`: ManageSieve limits and the admin's scripts around the user's.
    pub sieve: SieveConfig,
    /// The mail-client self-configuration listener, if enabled.
    pub autoconfig: Option<AutoconfigConfig>,
    /// Default log filter (overridden by `RUST_LOG`).
    pub log_level: String,
    /// When started as root: the unprivileged account that accepts connections, speaks TLS
    /// and runs the pre-login dialogue (Dovecot's `default_login_user`).
    pub login_user: String,
    /// The file this was read from (`None`: the embedded default), shown on the status page.
    pub path: Option<PathBuf>,
}

/// The login user when the config names none.
pub const DEFAULT_LOGIN_USER: &str = "nobody";

/// One protocol on one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listener {
    /// The protocol served.
    pub protocol: Protocol,
    /// The socket address bound.
    pub addr: SocketAddr,
}

/// `[mail]`, validated.
#[derive(Debug, Clone)]
pub struct MailConfig {
    /// The mail location template.
    pub location: MailLocation,
    /// The system user owning virtual users' mail, when started as root.
    pub user: Option<String>,
    /// gid of the group workers keep as their saved set-group-ID for the INBOX spool in
    /// `/var/mail` (never effective or supplementary), if configured.
    pub privileged_gid: Option<u32>,
    /// A delivery to a full mailbox is a temporary failure (LMTP 452 4.2.2, kept in the queue,
    /// `roost deliver` exit 75) rather than a permanent one (552 5.2.2, bounced): Dovecot's
    /// `quota_full_tempfail`.
    pub quota_full_tempfail: bool,
}

/// One password database, tried in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Passdb {
    /// Dovecot passwd-file.
    PasswdFile(PathBuf),
    /// PAM with the given service name.
    Pam(String),
}

/// `[auth]`, validated.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// Password databases, first match wins.
    pub passdbs: Vec<Passdb>,
    /// Allow plaintext passwords on unencrypted connections from untrusted networks.
    pub allow_plaintext_without_tls: bool,
    /// Networks whose unencrypted connections may send plaintext passwords.
    pub trusted_networks: Vec<Network>,
    /// Delay before answering a failed login.
    pub failure_delay: Duration,
    /// Failures per client network (IPv4 address, IPv6 /64) within the throttle window before
    /// its logins are refused for a while; 0: no limit.
    pub max_failures_per_ip: u32,
    /// Failures per user name, from all addresses, within the throttle window before that
    /// user's logins are refused for a while; 0: no limit.
    pub max_failures_per_user: u32,
    /// The quota every user gets unless their passdb entry sets one (`[mail] quota` and
    /// `quota_messages`; a passwd-file `userdb_quota_rule` overrides); unlimited by default.
    /// Kept here because the user lookup is where a user's limits are settled.
    pub default_quota: QuotaLimits,
}

impl AuthConfig {
    /// Whether a client may send a plaintext password: over TLS, from a trusted network, or
    /// where the admin allowed it everywhere.
    pub fn plaintext_allowed(&self, peer: std::net::IpAddr, tls: bool) -> bool {
        tls || self.allow_plaintext_without_tls
            || self.trusted_networks.iter().any(|n| n.contains(peer))
    }
}

/// `[tls]`, validated.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// Certificate chain (PEM).
    pub cert: PathBuf,
    /// Private key (PEM).
    pub key: PathBuf,
    /// True when the admin named the files; false when roost may generate them.
    pub configured: bool,
}

/// `[limits]`, validated.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Simultaneous connections over all listeners.
    pub max_connections: u32,
    /// Simultaneous connections from one client IP.
    pub max_connections_per_ip: u32,
    /// IMAP autologout (RFC 3501: at least 30 minutes).
    pub imap_idle_timeout: Duration,
    /// POP3 autologout (RFC 1939: at least 10 minutes).
    pub pop3_idle_timeout: Duration,
    /// SMTP command timeout (RFC 5321: 5 minutes).
    pub smtp_idle_timeout: Duration,
    /// From the greeting to a successful login (IMAP, POP3, submission), whatever the client
    /// sends meanwhile (Dovecot: 3 minutes).
    pub login_timeout: Duration,
    /// A TLS handshake, implicit or after STARTTLS/STLS.
    pub tls_handshake_timeout: Duration,
    /// Largest IMAP literal accepted (after login).
    pub max_literal_bytes: u32,
}

impl Limits {
    /// The idle timeout for a protocol family.
    pub fn idle_timeout(&self, family: Family) -> Duration {
        match family {
            Family::Imap => self.imap_idle_timeout,
            Family::Pop3 => self.pop3_idle_timeout,
            Family::Smtp | Family::Inbound | Family::Lmtp => self.smtp_idle_timeout,
            // Dovecot's managesieve idles like IMAP before it autologs out.
            Family::Sieve => self.imap_idle_timeout,
        }
    }
}

impl Config {
    /// Whether any SMTP, submission or LMTP listener is configured.
    pub fn serves_smtp(&self) -> bool {
        self.smtp.lmtp_socket.is_some()
            || self.listeners.iter().any(|l| l.protocol.family().is_smtp())
    }

    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors::single(ConfigError::file(path, format!("cannot read: {e}")))
        })?;
        validate::parse(path, &text)
    }
}
