//! The embedded default: what `roost` runs with when given no config, so a newcomer can point a
//! mail client at it within a minute. Everything binds to loopback on unprivileged ports, mail
//! and users live in `./data`, certificates in `./certs`.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use rand::distributions::{Alphanumeric, DistString};
use roost_storage::MailLocation;

use super::{
    AuthConfig, Config, Limits, Listener, MailConfig, Network, Passdb, Protocol, SmtpConfig,
    StatusConfig, TlsConfig,
};
use crate::password::{self, Scheme};
use crate::system::SystemUser;

/// The embedded config, plus the first user's password when it was just created.
pub struct EmbeddedSetup {
    /// The configuration to serve.
    pub config: Config,
    /// `(user, password)` of a freshly created first user, to print once.
    pub new_user: Option<(String, String)>,
}

/// Builds the embedded default under `dir`, creating `data/` and a first user if missing.
pub fn embedded(dir: &Path) -> anyhow::Result<EmbeddedSetup> {
    let data = dir.join("data");
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data.join("mail"))
        .with_context(|| format!("creating {}", data.display()))?;
    let users = data.join("users");
    let new_user = if users.exists() {
        None
    } else {
        Some(create_first_user(&users)?)
    };
    let mail_user = if crate::system::running_as_root() {
        Some(hand_mail_root_to_nobody(&data)?)
    } else {
        None
    };
    let location = format!("maildir:{}/%u", data.join("mail").display());
    let config = Config {
        listeners: Protocol::ALL
            .iter()
            .filter(|p| !matches!(p, Protocol::Smtp | Protocol::Lmtp))
            .map(|&protocol| Listener {
                protocol,
                addr: SocketAddr::from(([127, 0, 0, 1], protocol.embedded_port())),
            })
            .collect(),
        mail: MailConfig {
            location: MailLocation::parse(&location)?,
            user: mail_user,
            privileged_gid: None,
        },
        auth: AuthConfig {
            passdbs: vec![Passdb::PasswdFile(users)],
            allow_plaintext_without_tls: false,
            trusted_networks: Network::loopback(),
            failure_delay: Duration::from_secs(2),
            max_failures_per_ip: 10,
            max_failures_per_user: 20,
        },
        tls: TlsConfig {
            cert: dir.join("certs/server.crt"),
            key: dir.join("certs/server.key"),
            configured: false,
        },
        limits: Limits {
            max_connections: 1000,
            max_connections_per_ip: 50,
            imap_idle_timeout: Duration::from_secs(30 * 60),
            pop3_idle_timeout: Duration::from_secs(10 * 60),
            smtp_idle_timeout: Duration::from_secs(5 * 60),
            login_timeout: Duration::from_secs(3 * 60),
            tls_handshake_timeout: Duration::from_secs(30),
            max_literal_bytes: 50 * 1024 * 1024,
        },
        smtp: SmtpConfig {
            local_domains: vec![
                "localhost".into(),
                roost_storage::host::name().to_lowercase(),
            ],
            ..SmtpConfig::with_queue(data.join("queue"))
        },
        status: StatusConfig {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 8025))),
            admin_password: None,
            admin_users: Vec::new(),
        },
        autoconfig: None,
        log_level: "info".into(),
        login_user: super::DEFAULT_LOGIN_USER.to_string(),
        path: None,
    };
    Ok(EmbeddedSetup { config, new_user })
}

/// Started as root, sessions never run as root: the embedded default stores mail as `nobody`
/// (a real deployment names its own `[mail] user`, such as `vmail`).
fn hand_mail_root_to_nobody(data: &Path) -> anyhow::Result<String> {
    const OWNER: &str = "nobody";
    let owner =
        SystemUser::by_name(OWNER).context("the embedded default as root needs the user nobody")?;
    fs::set_permissions(data, fs::Permissions::from_mode(0o711))?;
    std::os::unix::fs::chown(data.join("mail"), Some(owner.uid), Some(owner.gid))?;
    Ok(OWNER.to_string())
}

/// Writes a passwd-file with one user named after the account running roost.
fn create_first_user(users: &Path) -> anyhow::Result<(String, String)> {
    let name = std::env::var("USER")
        .ok()
        .filter(|u| {
            !u.is_empty()
                && u.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        })
        .unwrap_or_else(|| "roost".into());
    let password = Alphanumeric.sample_string(&mut rand::thread_rng(), 16);
    let hashed = password::hash(Scheme::Sha512Crypt, &password)?;
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(users)
        .with_context(|| format!("creating {}", users.display()))?;
    writeln!(
        file,
        "# roost passwd-file (Dovecot format): user:{{SCHEME}}hash:uid:gid::home::"
    )?;
    writeln!(file, "{name}:{hashed}::::::")?;
    file.sync_all()?;
    fs::set_permissions(users, fs::Permissions::from_mode(0o600))?;
    Ok((name, password))
}
