//! What every protocol's session shares: its context, the login step through the shared
//! authentication layer (with the classic log lines), and the hand-over after login, either to
//! the in-process authenticated session or to a worker process running as the mail owner.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use roost_protocol::sasl::Credentials;
use roost_storage::{MailLocation, Store, UserVars};

use crate::auth::{AuthError, Authenticator, MailUser};
use crate::config::{Config, Family, Protocol};
use crate::listen::conn::Connection;
use crate::listen::tls::TlsStore;
use crate::privilege;

/// Everything a pre-login session needs, shared by reference with the server.
#[derive(Clone)]
pub struct SessionContext {
    /// The running configuration.
    pub config: Arc<Config>,
    /// The shared authentication layer.
    pub auth: Arc<Authenticator>,
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
}

impl UserSession {
    /// Opens the user's mail store (creating it, 0700, on first login).
    pub fn open_store(&self) -> Result<Store, roost_storage::Error> {
        let vars = UserVars {
            user: self.user.name.clone(),
            home: self.user.home.clone(),
        };
        Store::open(&self.location, &vars)
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
        self.auth.plaintext_allowed(self.peer.ip(), tls)
    }

    /// Verifies credentials and writes the classic `Login:` or failure log line.
    pub async fn login(
        &self,
        creds: Credentials,
        method: &str,
        tls: bool,
    ) -> Result<MailUser, AuthError> {
        let name = creds.username.clone();
        let result = self.auth.authenticate(creds, self.peer.ip()).await;
        let service = self.service();
        let suffix = self.log_suffix(tls);
        match &result {
            Ok(user) => tracing::info!("{service}-login: Login: user=<{}>, method={method}, {suffix}", user.name),
            Err(AuthError::Temporary(reason)) => tracing::error!(
                "{service}-login: Aborted login (auth service error: {reason}): user=<{name}>, method={method}, {suffix}"
            ),
            Err(e) => tracing::warn!("{service}-login: Aborted login ({e}): user=<{name}>, method={method}, {suffix}"),
        }
        result
    }

    /// The post-login session description for `user` on this connection.
    pub fn user_session(&self, user: MailUser, tls: bool) -> UserSession {
        let family = self.protocol.family();
        UserSession {
            user,
            family,
            location: self.config.mail.location.clone(),
            peer: self.peer,
            local: self.local,
            tls,
            idle_timeout: self.config.limits.idle_timeout(family),
            max_literal: self.config.limits.max_literal_bytes,
        }
    }
}

/// Runs the authenticated part of a session: in a worker process as the mail owner when roost
/// runs as root, otherwise right here.
pub async fn hand_over(conn: Connection, ctx: &SessionContext, session: UserSession) {
    if let Some(h) = conn.handle() {
        h.set_user(&session.user.name);
    }
    if privilege::running_as_root() {
        let owner = match privilege::mail_owner(&session.user, ctx.config.mail.user.as_deref()) {
            Ok(owner) => owner,
            Err(e) => {
                tracing::error!(user = %session.user.name, "{e}");
                return refuse_after_login(conn, session.family).await;
            }
        };
        privilege::worker::run(conn, &session, owner).await;
    } else {
        run_authenticated(conn, session).await;
    }
}

/// Runs the protocol's authenticated session in this process.
pub async fn run_authenticated(mut conn: Connection, session: UserSession) {
    match session.family {
        Family::Imap => crate::imap::authenticated::run(&mut conn, &session).await,
        Family::Pop3 => crate::pop3::transaction::run(&mut conn, &session).await,
        Family::Smtp => {}
    }
}

/// Closes a session that logged in but cannot be served, in the protocol's words.
async fn refuse_after_login(mut conn: Connection, family: Family) {
    let bye: &[u8] = match family {
        Family::Imap => b"* BYE [UNAVAILABLE] Internal error: mail owner not configured\r\n",
        Family::Pop3 => b"-ERR [SYS/PERM] Internal error: mail owner not configured\r\n",
        Family::Smtp => b"421 4.3.0 Internal error\r\n",
    };
    let _ = conn.write(bye).await;
}
