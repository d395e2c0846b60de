//! The one authentication layer every front-end uses: password databases (Dovecot passwd-file,
//! PAM), SASL, the failure delay and throttling, and the plaintext-without-TLS policy.
//!
//! ```text
//!   session ── Credentials, peer IP ──► Authenticator::authenticate ──► passwd-file | PAM
//!                  throttle: per network and per user │  (blocking pool; passwd-file extra
//!                  failure: delay, counted for both    │   fields: deny, allow_nets, nologin)
//!                                  └──────────── MailUser (name, uid, gid, home) ◄─┘
//! ```
//! As root the master runs this (the login process sends it the client's IP), otherwise the
//! one process does; either way one throttle sees every login.

pub mod extra_fields;
pub mod pam;
pub mod passwd_file;
pub mod sasl;
pub mod throttle;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use roost_protocol::sasl::Credentials;
use roost_storage::quota::QuotaLimits;

use crate::config::{AuthConfig, Passdb};
use crate::system::SystemUser;

/// Which database vouched for a user; decides whose uid touches their mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A virtual user from a passwd-file.
    PasswdFile,
    /// A system user authenticated through PAM.
    Pam,
}

impl Source {
    /// The name used in log lines and worker arguments.
    pub fn name(self) -> &'static str {
        match self {
            Self::PasswdFile => "passwd-file",
            Self::Pam => "pam",
        }
    }
}

/// An authenticated user and what storage needs to know about them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailUser {
    /// The login name.
    pub name: String,
    /// The database that authenticated them.
    pub source: Source,
    /// The uid their mail belongs to, if the database says.
    pub uid: Option<u32>,
    /// The gid their mail belongs to, if the database says.
    pub gid: Option<u32>,
    /// Their home directory, for `~` in the mail location.
    pub home: Option<PathBuf>,
    /// What they may keep: the configured default with their passdb entry's rules applied.
    pub quota: QuotaLimits,
}

/// Why a login did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Wrong user name or password.
    #[error("Authentication failed")]
    Failed,
    /// Too many recent failures from this client's network or for this user name.
    #[error("Too many failed logins; try again later")]
    Throttled,
    /// The password was right but the account may not log in (passwd-file `nologin`); the
    /// administrator's `reason=`, if any, is for the client.
    #[error("Login disabled{}", reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default())]
    Refused {
        /// The text to show the client, from the passwd-file.
        reason: Option<String>,
    },
    /// A database could not be consulted; the client may retry.
    #[error("Temporary authentication failure")]
    Temporary(String),
}

enum Backend {
    PasswdFile(passwd_file::PasswdFile),
    Pam(pam::Pam),
}

/// Verifies credentials against the configured databases, in order.
pub struct Authenticator {
    backends: Vec<Backend>,
    /// The quota of a user whose entry sets none.
    default_quota: QuotaLimits,
    failure_delay: Duration,
    throttle: throttle::Throttle,
}

impl Authenticator {
    /// Builds the layer from `[auth]`.
    pub fn new(config: &AuthConfig) -> Self {
        let backends = config
            .passdbs
            .iter()
            .map(|p| match p {
                Passdb::PasswdFile(path) => Backend::PasswdFile(passwd_file::PasswdFile::new(path)),
                Passdb::Pam(service) => Backend::Pam(pam::Pam::new(service.clone())),
            })
            .collect();
        Self {
            backends,
            default_quota: config.default_quota,
            failure_delay: config.failure_delay,
            throttle: throttle::Throttle::new(throttle::Limits {
                per_ip: config.max_failures_per_ip,
                per_user: config.max_failures_per_user,
            }),
        }
    }

    /// Parses every passwd-file now, so a broken one stops start-up with its line number.
    pub fn check(&self) -> anyhow::Result<()> {
        for backend in &self.backends {
            if let Backend::PasswdFile(file) = backend {
                file.check()?;
            }
        }
        Ok(())
    }

    /// Whether any backend is PAM (which needs root to check other users' passwords).
    pub fn uses_pam(&self) -> bool {
        self.backends.iter().any(|b| matches!(b, Backend::Pam(_)))
    }

    /// Verifies credentials; failures are answered only after the failure delay.
    pub async fn authenticate(
        self: &Arc<Self>,
        creds: Credentials,
        peer: IpAddr,
    ) -> Result<MailUser, AuthError> {
        let attempt = match self.throttle.begin(peer, &creds.username) {
            Ok(attempt) => attempt,
            Err(blocked) => {
                tracing::info!(user = %creds.username, %peer, ?blocked, "auth: throttled");
                tokio::time::sleep(self.failure_delay).await;
                return Err(AuthError::Throttled);
            }
        };
        let started = tokio::time::Instant::now();
        let this = Arc::clone(self);
        let verdict = tokio::task::spawn_blocking(move || this.verify(&creds, peer)).await;
        let refusal = match verdict {
            Ok(Ok(Verdict::Accepted(user))) => {
                attempt.succeeded();
                return Ok(user);
            }
            Ok(Ok(Verdict::Rejected)) => {
                attempt.failed();
                AuthError::Failed
            }
            // The password was right: neither a failure nor a success for the throttle.
            Ok(Ok(Verdict::NoLogin(reason))) => AuthError::Refused { reason },
            Ok(Err(reason)) => return Err(AuthError::Temporary(reason)),
            Err(join) => return Err(AuthError::Temporary(join.to_string())),
        };
        // pam_unix already sleeps about 2 s on failure; only make up the difference.
        tokio::time::sleep_until(started + self.failure_delay).await;
        Err(refusal)
    }

    /// Blocking: finds a user without a password (a userdb lookup, for mail delivery): the
    /// passwd-files in order, then system accounts when PAM is configured (never root).
    pub fn lookup_user(&self, name: &str) -> Result<Option<MailUser>, String> {
        for backend in &self.backends {
            match backend {
                Backend::PasswdFile(file) => {
                    if let Some(entry) = file.lookup(name).map_err(|e| e.to_string())? {
                        return Ok(Some(MailUser {
                            name: entry.user.clone(),
                            source: Source::PasswdFile,
                            uid: entry.uid,
                            gid: entry.gid,
                            home: entry.home.clone(),
                            quota: quota_of(self.default_quota, &entry.quota_rules),
                        }));
                    }
                }
                Backend::Pam(_) => {
                    if let Some(system) = SystemUser::by_name(name).filter(|u| u.uid != 0) {
                        return Ok(Some(MailUser {
                            name: system.name,
                            source: Source::Pam,
                            uid: Some(system.uid),
                            gid: Some(system.gid),
                            home: Some(system.home),
                            quota: self.default_quota,
                        }));
                    }
                }
            }
        }
        Ok(None)
    }

    /// Blocking: asks each backend in turn; the first with a verdict decides.
    fn verify(&self, creds: &Credentials, peer: IpAddr) -> Result<Verdict, String> {
        let mut first_error = None;
        for backend in &self.backends {
            let outcome = match backend {
                Backend::PasswdFile(file) => {
                    verify_passwd_file(file, creds, peer, self.default_quota)
                }
                Backend::Pam(pam) => verify_pam(pam, creds, peer, self.default_quota),
            };
            match outcome {
                Ok(Some(verdict)) => return Ok(verdict),
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(error = %e, "auth: passdb lookup failed");
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(Verdict::Rejected),
        }
    }
}

/// What the passdbs decided about one login.
enum Verdict {
    /// The credentials are good and the account may log in.
    Accepted(MailUser),
    /// Wrong password, unknown user, or an entry that refuses this client (`deny`,
    /// `allow_nets`): a failed login.
    Rejected,
    /// Right password, but the entry says `nologin`, perhaps with a reason.
    NoLogin(Option<String>),
}

/// `Ok(None)`: not this file's user, or a wrong password (the next passdb may know better).
/// An entry's `deny` and `allow_nets` are final: no later passdb can override them.
/// A user's limits: `default` with their entry's rules applied (checked when the file was
/// read, so none fails here).
fn quota_of(default: QuotaLimits, rules: &[String]) -> QuotaLimits {
    let mut limits = default;
    for rule in rules {
        let _ = limits.apply_rule(rule);
    }
    limits
}

fn verify_passwd_file(
    file: &passwd_file::PasswdFile,
    creds: &Credentials,
    peer: IpAddr,
    default_quota: QuotaLimits,
) -> Result<Option<Verdict>, String> {
    let Some(entry) = file.lookup(&creds.username).map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    if !entry.access.admits(peer) {
        tracing::info!(user = %creds.username, %peer, "auth: passwd-file entry refuses this client (deny or allow_nets)");
        return Ok(Some(Verdict::Rejected));
    }
    match crate::password::verify(&entry.password, &creds.password) {
        Ok(true) if entry.access.nologin => Ok(Some(Verdict::NoLogin(entry.access.reason))),
        Ok(true) => Ok(Some(Verdict::Accepted(MailUser {
            name: entry.user.clone(),
            source: Source::PasswdFile,
            uid: entry.uid,
            gid: entry.gid,
            home: entry.home.clone(),
            quota: quota_of(default_quota, &entry.quota_rules),
        }))),
        Ok(false) => Ok(None),
        Err(e) => {
            tracing::error!(user = %creds.username, file = %file.path().display(), error = %e, "auth: unusable password hash");
            Ok(None)
        }
    }
}

fn verify_pam(
    pam: &pam::Pam,
    creds: &Credentials,
    peer: IpAddr,
    default_quota: QuotaLimits,
) -> Result<Option<Verdict>, String> {
    let rhost = peer.to_string();
    if !pam
        .authenticate(&creds.username, &creds.password, Some(&rhost))
        .map_err(|e| e.to_string())?
    {
        return Ok(None);
    }
    let Some(system) = SystemUser::by_name(&creds.username) else {
        return Err(format!(
            "PAM accepted {} but the system has no such user",
            creds.username
        ));
    };
    Ok(Some(Verdict::Accepted(MailUser {
        name: system.name,
        source: Source::Pam,
        uid: Some(system.uid),
        gid: Some(system.gid),
        home: Some(system.home),
        quota: default_quota,
    })))
}
