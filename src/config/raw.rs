//! The config file as written: serde structures with spans, before validation.
//!
//! Every value an admin can get wrong is `Spanned`, so validation can name its line.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub protocols: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    pub listen: BTreeMap<Spanned<String>, Spanned<String>>,
    #[serde(default)]
    pub mail: RawMail,
    #[serde(default)]
    pub auth: RawAuth,
    #[serde(default)]
    pub tls: RawTls,
    #[serde(default)]
    pub limits: RawLimits,
    #[serde(default)]
    pub status: RawStatus,
    #[serde(default)]
    pub autoconfig: RawAutoconfig,
    #[serde(default)]
    pub log: RawLog,
    #[serde(default)]
    pub server: RawServer,
    #[serde(default)]
    pub smtp: RawSmtp,
    #[serde(default)]
    pub spam: super::spam::RawSpam,
    #[serde(default)]
    pub sieve: RawSieve,
}

/// `[sieve]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSieve {
    /// Scripts per user.
    pub max_scripts: Option<Spanned<u64>>,
    /// Bytes per script.
    pub max_script_size: Option<Spanned<u64>>,
    /// Admin scripts run before the user's.
    pub before: Option<Vec<Spanned<String>>>,
    /// Admin scripts run after the user's.
    pub after: Option<Vec<Spanned<String>>>,
}

/// `[smtp]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSmtp {
    /// Domains whose mail is delivered here.
    pub local_domains: Option<Vec<Spanned<String>>>,
    /// An `/etc/aliases`-format file.
    pub aliases: Option<Spanned<String>>,
    /// A virtual-address map (`sales@example.com  willie`).
    #[serde(rename = "virtual")]
    pub virtual_map: Option<Spanned<String>>,
    /// The smarthost for non-local mail, `host:port`, `smtp+starttls://host:port` or
    /// `smtps://host:port`.
    pub relayhost: Option<Spanned<String>>,
    /// CA certificates (PEM) for the relayhost's certificate, instead of the system's roots.
    pub relayhost_ca: Option<Spanned<String>>,
    /// The relayhost's user name and password, Postfix `sasl_passwd` format.
    pub relayhost_password_file: Option<Spanned<String>>,
    /// Networks that may relay without authenticating.
    pub relay_networks: Option<Vec<Spanned<String>>>,
    pub max_message_size: Option<Spanned<u64>>,
    pub max_recipients: Option<Spanned<u32>>,
    pub queue_dir: Option<Spanned<String>>,
    pub queue_retry_secs: Option<Spanned<u64>>,
    pub queue_lifetime_secs: Option<Spanned<u64>>,
    /// Extra sender addresses per user (`alice = ["info@example.com", "@example.org"]`).
    #[serde(default)]
    pub senders: BTreeMap<Spanned<String>, Vec<Spanned<String>>>,
}

/// `[server]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    /// The unprivileged account the network-facing process runs as (Dovecot's login user).
    pub login_user: Option<Spanned<String>>,
}

/// `[mail]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMail {
    pub location: Option<Spanned<String>>,
    /// The system user that owns virtual users' mail (Dovecot's mail_uid).
    pub user: Option<Spanned<String>>,
    /// A group workers keep as their saved set-group-ID only, made effective for one thread
    /// and one directory operation on the INBOX spool (dotlock, creation, rewrite) in
    /// /var/mail (Dovecot's mail_privileged_group).
    pub privileged_group: Option<Spanned<String>>,
    /// Each user's storage limit, e.g. "1G" (a passwd-file `userdb_quota_rule` overrides it).
    pub quota: Option<Spanned<String>>,
    /// Each user's message-count limit.
    pub quota_messages: Option<u64>,
    /// Dovecot's `quota_full_tempfail`: a full mailbox is a temporary failure (452 4.2.2).
    pub quota_full_tempfail: Option<bool>,
}

/// `[auth]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    pub passdb: Option<Vec<Spanned<String>>>,
    pub allow_plaintext_without_tls: Option<bool>,
    pub trusted_networks: Option<Vec<Spanned<String>>>,
    pub failure_delay_ms: Option<u64>,
    pub max_failures_per_ip: Option<u32>,
    pub max_failures_per_user: Option<u32>,
}

/// `[tls]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    pub cert: Option<Spanned<String>>,
    pub key: Option<Spanned<String>>,
}

/// `[limits]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    pub max_connections: Option<Spanned<u32>>,
    pub max_connections_per_ip: Option<Spanned<u32>>,
    pub imap_idle_timeout_secs: Option<u64>,
    pub pop3_idle_timeout_secs: Option<u64>,
    pub smtp_idle_timeout_secs: Option<u64>,
    pub login_timeout_secs: Option<u64>,
    pub tls_handshake_timeout_secs: Option<u64>,
    pub max_literal_bytes: Option<u32>,
}

/// `[status]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStatus {
    pub listen: Option<Spanned<String>>,
    /// A `{SCHEME}hash` (from `roost pw`) for the basic-auth user `admin`.
    pub admin_password: Option<Spanned<String>>,
    /// passdb users who may sign in with their own mail password.
    pub admin_users: Option<Vec<Spanned<String>>>,
}

/// `[autoconfig]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAutoconfig {
    pub listen: Option<Spanned<String>>,
    /// The same documents over HTTPS (Outlook asks only there), with the `[tls]` certificate.
    pub listen_tls: Option<Spanned<String>>,
    /// The name clients are told to connect to (default: this machine's host name).
    pub hostname: Option<Spanned<String>>,
    /// `"address"` (log in as alice@example.com) or `"localpart"` (as alice).
    pub username: Option<Spanned<String>>,
}

/// `[log]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLog {
    pub level: Option<Spanned<String>>,
}
