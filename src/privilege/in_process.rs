//! [`Privileged`] for a process that may do everything itself: roost started as an ordinary
//! user (which is then the only mail owner), or a root command-line tool such as
//! `roost queue flush`, which delivers through workers started as each mail owner.

use std::fs::File;
use std::net::IpAddr;
use std::sync::Arc;

use roost_protocol::sasl::Credentials;
use roost_protocol::smtp::address::{Address, ReversePath};
use roost_storage::MailLocation;

use super::delivery::Spawner;
use crate::auth::{AuthError, Authenticator, MailUser};
use crate::config::{Config, Family};
use crate::filter::run::{site_scripts, SiteScripts};
use crate::listen::acceptor::Continuation;
use crate::listen::conn::Connection;
use crate::session::privileged::{
    BoxFuture, Deliveries, Grant, LocalRecipient, Login, Outcome, Privileged, ResolveError, Target,
};
use crate::session::{SessionContext, UserSession};
use crate::smtp::deliver::deliver_one;
use crate::smtp::resolve::Resolver;

/// This process's own passdbs, maps and mail.
pub struct InProcess {
    auth: Arc<Authenticator>,
    resolver: Arc<Resolver>,
    delivery: Delivery,
}

/// How this process writes into a user's INBOX.
enum Delivery {
    /// Directly: this process is the mail owner.
    Direct(MailLocation, SiteScripts),
    /// Through `roost deliver-worker` processes, one per mail owner: this process is root.
    AsOwner(Spawner),
}

impl InProcess {
    /// This process is the mail owner: it delivers directly (roost started as a user).
    pub fn new(config: &Config, auth: Arc<Authenticator>) -> Self {
        let resolver = Arc::new(Resolver::new(&config.smtp, auth.clone()));
        let delivery = Delivery::Direct(config.mail.location.clone(), site_scripts(config));
        Self {
            auth,
            resolver,
            delivery,
        }
    }

    /// The right one for a command-line tool: through delivery workers when this process is
    /// root, directly when it is a user.
    pub fn for_this_process(config: &Config, auth: Arc<Authenticator>) -> Self {
        match crate::system::running_as_root() {
            true => Self::as_root(config, auth),
            false => Self::new(config, auth),
        }
    }

    /// This process is root: it delivers through a worker started as each mail owner.
    pub fn as_root(config: &Config, auth: Arc<Authenticator>) -> Self {
        let mut this = Self::new(config, auth);
        this.delivery = Delivery::AsOwner(Spawner {
            location: config.mail.location.clone(),
            mail_user: config.mail.user.clone(),
            privileged_gid: config.mail.privileged_gid,
            resolver: Arc::clone(&this.resolver),
            events: None,
            site: site_scripts(config),
        });
        this
    }

    async fn deliver_directly(
        &self,
        (location, site): (&MailLocation, &SiteScripts),
        message: &File,
        return_path: &ReversePath,
        recipients: &[LocalRecipient],
    ) -> Deliveries {
        let count = recipients.len();
        let file = match message.try_clone() {
            Ok(f) => f,
            Err(e) => return Deliveries::all(Outcome::Temporary(e.to_string()), count),
        };
        let (resolver, location, site) =
            (Arc::clone(&self.resolver), location.clone(), site.clone());
        let (rp, recipients) = (return_path.clone(), recipients.to_vec());
        tokio::task::spawn_blocking(move || {
            let mut out = Deliveries::default();
            let filters = site.load();
            for r in &recipients {
                let outcome = match resolver.user(&r.user) {
                    Ok(Some(user)) => {
                        let done =
                            deliver_one(&location, &user, &r.address, Some(&rp), &file, &filters);
                        out.followups.extend(done.followups);
                        done.outcome
                    }
                    Ok(None) => Outcome::Permanent("no such user".into()),
                    Err(e) => Outcome::Temporary(e),
                };
                out.outcomes.push(outcome);
            }
            out
        })
        .await
        .unwrap_or_else(|e| Deliveries::all(Outcome::Temporary(e.to_string()), count))
    }
}

impl Privileged for InProcess {
    fn authenticate(
        &self,
        creds: Credentials,
        peer: IpAddr,
    ) -> BoxFuture<'_, Result<Login, AuthError>> {
        Box::pin(async move {
            let user = self.auth.authenticate(creds, peer).await?;
            Ok(Login::new(user.name.clone(), UserGrant(user)))
        })
    }

    fn resolve<'a>(
        &'a self,
        address: &'a Address,
    ) -> BoxFuture<'a, Result<Vec<Target>, ResolveError>> {
        Box::pin(async move {
            let resolver = Arc::clone(&self.resolver);
            let address = address.clone();
            tokio::task::spawn_blocking(move || resolver.resolve(&address))
                .await
                .map_err(|e| ResolveError::Temporary(e.to_string()))?
        })
    }

    fn deliver<'a>(
        &'a self,
        message: &'a File,
        return_path: &'a ReversePath,
        users: &'a [LocalRecipient],
    ) -> BoxFuture<'a, Deliveries> {
        Box::pin(async move {
            match &self.delivery {
                Delivery::Direct(location, site) => {
                    self.deliver_directly((location, site), message, return_path, users)
                        .await
                }
                Delivery::AsOwner(spawner) => spawner.deliver(message, return_path, users).await,
            }
        })
    }
}

/// A login this process verified: the user's session runs right here.
struct UserGrant(MailUser);

impl Grant for UserGrant {
    fn start(self: Box<Self>, conn: Connection, ctx: &SessionContext) -> Continuation {
        let session = ctx.user_session(self.0, conn.is_tls());
        Box::pin(run_authenticated(conn, session))
    }
}

/// Runs the protocol's authenticated session in this process (roost started as a user, or a
/// worker running as the mail owner).
///
/// An `async` block rather than an `async fn`: the fn would keep a second copy of its
/// arguments in the future, and this future lives as long as the connection.
#[allow(
    clippy::manual_async_fn,
    reason = "an async fn would store its arguments twice"
)]
pub fn run_authenticated(
    mut conn: Connection,
    session: UserSession,
) -> impl std::future::Future<Output = ()> + Send {
    async move {
        conn.end_login_clock();
        // Each protocol's session boxed on its own: this future would otherwise be as large
        // as the largest of them, whichever protocol the connection speaks.
        match session.family {
            Family::Imap => Box::pin(crate::imap::authenticated::run(&mut conn, &session)).await,
            Family::Pop3 => Box::pin(crate::pop3::transaction::run(&mut conn, &session)).await,
            Family::Sieve => {
                Box::pin(crate::managesieve::session::run(&mut conn, &session)).await;
            }
            Family::Smtp | Family::Inbound | Family::Lmtp => {}
        }
    }
}
