//! What every protocol's session shares: its context, the login step through the shared
//! authentication layer (with the classic log lines), and the hand-over after login to the
//! session running as the mail owner — through [`privileged::Privileged`], so session code does
//! not know whether it runs in one process or under a root master.

pub mod privileged;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use roost_protocol::line::{Line, LineDecoder};
use roost_protocol::sasl::{self, Credentials, Mechanism, SaslError};
use roost_storage::sieve_scripts::{ScriptLimits, ScriptStore};
use roost_storage::{MailLocation, Store, UserVars};

pub use self::privileged::Login;
use self::privileged::Privileged;
use crate::auth::sasl::{SaslExchange, SaslStep};
use crate::auth::{AuthError, MailUser};
use crate::config::{Config, Family, Protocol};
use crate::listen::conn::{Connection, Ended};
use crate::listen::tls::TlsStore;

/// The text with which every protocol refuses a password on an unprotected connection.
pub const PLAINTEXT_REFUSED: &str =
    "Plaintext authentication disallowed on non-secure (SSL/TLS) connections.";

/// Everything a pre-login session needs, shared by reference with the server.
#[derive(Clone)]
pub struct SessionContext {
    /// The running configuration.
    pub config: Arc<Config>,
    /// Who verifies logins, resolves recipients and delivers.
    pub privileged: Arc<dyn Privileged>,
    /// TLS material for STARTTLS/STLS.
    pub tls: Arc<TlsStore>,
    /// The listener's protocol.
    pub protocol: Protocol,
    /// The client's address.
    pub peer: SocketAddr,
    /// Our address.
    pub local: SocketAddr,
}

/// What an authenticated session needs; crosses the process boundary to a worker as arguments.
#[derive(Debug, Clone)]
pub struct UserSession {
    /// Who logged in.
    pub user: MailUser,
    /// Which protocol family's session runs.
    pub family: Family,
    /// The mail location template.
    pub location: MailLocation,
    /// The client's address, for log lines.
    pub peer: SocketAddr,
    /// Our address, for log lines.
    pub local: SocketAddr,
    /// Whether the client connection is encrypted.
    pub tls: bool,
    /// Autologout after this much silence.
    pub idle_timeout: Duration,
    /// Largest IMAP literal accepted.
    pub max_literal: u32,
    /// ManageSieve: how many scripts of what size the user may keep.
    pub sieve: ScriptLimits,
}

impl UserSession {
    /// Opens the user's mail store (creating it, 0700, on first login).
    pub fn open_store(&self) -> Result<Store, roost_storage::Error> {
        let vars = UserVars {
            user: self.user.name.clone(),
            home: self.user.home.clone(),
        };
        Store::open_with_quota(&self.location, &vars, self.user.quota)
    }

    /// The user's Sieve scripts, beside their mail (nothing is created until a script is put).
    pub fn script_store(&self) -> Result<ScriptStore, roost_storage::Error> {
        let vars = UserVars {
            user: self.user.name.clone(),
            home: self.user.home.clone(),
        };
        ScriptStore::for_user(&self.location, &vars)
    }
}

impl SessionContext {
    /// The `imap-login`-style prefix of log lines.
    fn service(&self) -> &'static str {
        self.protocol.family().name()
    }

    fn log_suffix(&self, tls: bool) -> String {
        let tls = if tls { ", TLS" } else { "" };
        format!("rip={}, lip={}{tls}", self.peer.ip(), self.local.ip())
    }

    /// Whether plaintext credentials may be sent on this connection now.
    pub fn plaintext_allowed(&self, tls: bool) -> bool {
        self.config.auth.plaintext_allowed(self.peer.ip(), tls)
    }

    /// Verifies credentials, writes the classic `Login:` or failure log line, and records the
    /// user in the session registry before the client hears the verdict.
    pub async fn login(
        &self,
        conn: &Connection,
        creds: Credentials,
        method: &str,
    ) -> Result<Login, AuthError> {
        let tls = conn.is_tls();
        let name = creds.username.clone();
        let result = self.privileged.authenticate(creds, self.peer.ip()).await;
        crate::counters::global().login(self.protocol, result.is_ok());
        let service = self.service();
        let suffix = self.log_suffix(tls);
        match &result {
            Ok(user) => tracing::info!("{service}-login: Login: user=<{}>, method={method}, {suffix}", user.name()),
            Err(AuthError::Temporary(reason)) => tracing::error!(
                "{service}-login: Aborted login (auth service error: {reason}): user=<{name}>, method={method}, {suffix}"
            ),
            Err(e) => tracing::warn!("{service}-login: Aborted login ({e}): user=<{name}>, method={method}, {suffix}"),
        }
        if let (Ok(identity), Some(h)) = (&result, conn.handle()) {
            h.set_user(identity.name());
        }
        result
    }

    /// The post-login session description for a locally verified `user`.
    pub fn user_session(&self, user: MailUser, tls: bool) -> UserSession {
        UserSession::new(
            user,
            self.protocol.family(),
            &self.config,
            self.peer,
            self.local,
            tls,
        )
    }
}

impl UserSession {
    /// Describes the session of `user` over a connection with these properties.
    pub fn new(
        user: MailUser,
        family: Family,
        config: &Config,
        peer: SocketAddr,
        local: SocketAddr,
        tls: bool,
    ) -> Self {
        UserSession {
            user,
            family,
            location: config.mail.location.clone(),
            peer,
            local,
            tls,
            idle_timeout: config.limits.idle_timeout(family),
            max_literal: config.limits.max_literal_bytes,
            sieve: ScriptLimits {
                max_scripts: config.sieve.max_scripts,
                max_size: config.sieve.max_script_size,
            },
        }
    }
}

/// What one pre-login command led to, in every protocol's login phase.
pub enum Next {
    /// Read the next command.
    Continue,
    /// The user logged in: hand the session over. IMAP and SMTP have sent their success reply;
    /// POP3 sends it after the hand-over, once the maildrop is locked (or `[IN-USE]`).
    LoggedIn(Login),
    /// End the connection.
    Close,
}

/// Sends a reply; a connection that cannot take it ends.
pub async fn write(conn: &mut Connection, bytes: &[u8]) -> Next {
    match conn.write(bytes).await {
        Ok(()) => Next::Continue,
        Err(_) => Next::Close,
    }
}

/// How a STARTTLS (IMAP, ManageSieve) or STLS (POP3) went.
pub enum TlsUpgrade {
    /// The connection is TLS already; nothing was sent (the caller says no its own way).
    AlreadyActive,
    /// `go_ahead` was sent and the handshake succeeded.
    Upgraded,
    /// The reply could not be sent or the handshake failed: the connection is over.
    Closed,
}

/// Sends `go_ahead` and swaps the connection to TLS, unless it already is.
pub async fn upgrade_to_tls(
    conn: &mut Connection,
    ctx: &SessionContext,
    go_ahead: &[u8],
) -> TlsUpgrade {
    if conn.is_tls() {
        return TlsUpgrade::AlreadyActive;
    }
    if conn.write(go_ahead).await.is_err() {
        return TlsUpgrade::Closed;
    }
    match conn.start_tls(&ctx.tls.acceptor()).await {
        Ok(()) => TlsUpgrade::Upgraded,
        Err(e) => {
            tracing::debug!(peer = %ctx.peer, "STARTTLS handshake failed: {e}");
            TlsUpgrade::Closed
        }
    }
}

/// How a line-framed SASL exchange (POP3 AUTH, SMTP AUTH) ended.
pub enum LineSasl {
    /// The client supplied credentials.
    Credentials(Credentials),
    /// The exchange failed or was cancelled.
    Failed(SaslError),
    /// The connection ended meanwhile (EOF, timeout, shutdown).
    Ended(Ended),
}

/// Runs a SASL exchange where challenges are lines built by `challenge` and answers are base64
/// lines; `initial` is the optional initial response from the command line.
pub async fn sasl_over_lines(
    conn: &mut Connection,
    lines: &mut LineDecoder,
    mechanism: Mechanism,
    initial: Option<String>,
    challenge: impl Fn(&str) -> Vec<u8>,
) -> LineSasl {
    let initial = match initial
        .map(|i| sasl::decode_base64_line(i.as_bytes()))
        .transpose()
    {
        Ok(initial) => initial,
        Err(e) => return LineSasl::Failed(e),
    };
    let (mut exchange, mut step) = SaslExchange::start(mechanism, initial);
    loop {
        match step {
            SaslStep::Done(creds) => return LineSasl::Credentials(creds),
            SaslStep::Failed(e) => return LineSasl::Failed(e),
            SaslStep::Challenge(text) => {
                if conn.write(&challenge(text)).await.is_err() {
                    return LineSasl::Ended(Ended::Closed);
                }
                step = match conn.read_line(lines).await {
                    Ok(Line::Complete(answer)) => match sasl::decode_base64_line(&answer) {
                        Ok(data) => exchange.answer(data),
                        Err(e) => SaslStep::Failed(e),
                    },
                    Ok(Line::TooLong) => SaslStep::Failed(SaslError::Base64),
                    Err(why) => return LineSasl::Ended(why),
                };
            }
        }
    }
}
