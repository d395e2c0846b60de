//! The operations a session needs that the process serving it may not be allowed to do itself:
//! verify a password, start the logged-in session as the mail owner, find where an address's
//! mail goes, and deliver into a user's INBOX.
//!
//! ```text
//!   session code ── Arc<dyn Privileged> ──┬── privilege::InProcess  (roost started as a user:
//!                                         │     this process reads the passdbs and the mail)
//!                                         └── privilege::MasterClient (the login process: asks
//!                                               the root master over the control channel)
//! ```
//! Session code never learns which one it has. A successful [`Privileged::authenticate`] gives
//! a [`Login`], the one capability that can start the user's session; what it carries (a user
//! record, or the master's one-time ticket) is the implementation's business, so no session can
//! hold a ticket in a process without a master, or a user record the master never checked.

use std::fs::File;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use roost_protocol::sasl::Credentials;
use roost_protocol::smtp::address::{Address, ReversePath};

use super::SessionContext;
use crate::auth::AuthError;
use crate::listen::acceptor::Continuation;
use crate::listen::conn::Connection;

/// A boxed future, so the trait can be used as `dyn Privileged`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The privileged operations every protocol's session goes through.
pub trait Privileged: Send + Sync {
    /// Verifies credentials (passdbs, throttling, failure delay); the peer is for throttling
    /// and PAM's rhost.
    fn authenticate(
        &self,
        creds: Credentials,
        peer: IpAddr,
    ) -> BoxFuture<'_, Result<Login, AuthError>>;

    /// Every target of an address: local users and remote addresses (virtual map, aliases,
    /// user databases).
    fn resolve<'a>(
        &'a self,
        address: &'a Address,
    ) -> BoxFuture<'a, Result<Vec<Target>, ResolveError>>;

    /// Delivers the spooled message to each local recipient as their mail owner (their
    /// Sieve scripts deciding where it goes); one outcome per recipient, in order, and the
    /// mail the deliveries ask to send.
    fn deliver<'a>(
        &'a self,
        message: &'a File,
        return_path: &'a ReversePath,
        recipients: &'a [LocalRecipient],
    ) -> BoxFuture<'a, Deliveries>;
}

/// One local delivery to make: the user, and the address the message was sent to (what
/// Sieve's `envelope :to` and `:detail` see).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalRecipient {
    /// The canonical user name (from an earlier resolve).
    pub user: String,
    /// The recipient address as the client gave it.
    pub address: String,
}

/// What a batch of local deliveries did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deliveries {
    /// One per recipient, in order.
    pub outcomes: Vec<Outcome>,
    /// Mail the deliveries ask to send (Sieve redirects, vacation replies), to be queued.
    pub followups: Vec<crate::filter::Followup>,
}

impl Deliveries {
    /// The same outcome for every one of `n` recipients, nothing to send.
    pub fn all(outcome: Outcome, n: usize) -> Self {
        Self {
            outcomes: vec![outcome; n],
            followups: Vec::new(),
        }
    }
}

/// A verified login: the canonical user name and the right to start that user's session.
pub struct Login {
    name: String,
    grant: Box<dyn Grant>,
}

impl Login {
    /// A login for `name`, started by `grant`.
    pub fn new(name: String, grant: impl Grant + 'static) -> Self {
        Self {
            name,
            grant: Box::new(grant),
        }
    }

    /// The canonical user name (as the passdb spells it).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The authenticated session on `conn` as the mail owner, to run here or in a worker
    /// process the master starts; it borrows nothing of the login, whose state can go.
    pub fn start(self, conn: Connection, ctx: &SessionContext) -> Continuation {
        self.grant.start(conn, ctx)
    }
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login").field("name", &self.name).finish()
    }
}

/// How one implementation of [`Privileged`] starts the session of a login it verified.
pub trait Grant: Send + Sync {
    /// The authenticated session on `conn` (what it needs of `ctx` taken now).
    fn start(self: Box<Self>, conn: Connection, ctx: &SessionContext) -> Continuation;
}

/// Where one address's mail ends up.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    /// A local user's INBOX (the canonical user name).
    Local(String),
    /// An address elsewhere, reached through the relayhost.
    Remote(Address),
}

/// Why an address has no targets.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ResolveError {
    /// No such user, alias or virtual address: 550 5.1.1.
    #[error("no such user here")]
    Unknown,
    /// Aliases that expand too deep or in a circle.
    #[error("alias expansion loops or is too deep")]
    Loop,
    /// A database could not be consulted: 451.
    #[error("temporary lookup failure: {0}")]
    Temporary(String),
}

/// What became of one user's copy of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// In the INBOX, durably.
    Delivered,
    /// Not now; retry later.
    Temporary(String),
    /// Never (no such user, no mail owner).
    Permanent(String),
    /// The user's quota has no room for it (552 5.2.2, or 452 4.2.2 where the admin wants
    /// senders to retry: `[mail] quota_full_tempfail`).
    MailboxFull,
    /// The recipient's Sieve script refused it (`reject`/`ereject`, RFC 5429): 550 5.7.1 with
    /// this reason while the sender is connected, else a bounce.
    Rejected(String),
}
