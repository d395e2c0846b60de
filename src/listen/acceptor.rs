//! Binding the configured listeners and accepting connections until shutdown: connection
//! limits, the implicit-TLS handshake, the session registry and the drain at shutdown. What a
//! connection is served with comes from the [`Handler`] table the server gives [`Frontend::run`];
//! this module knows no protocol's words and nothing of privileges.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::conn::{Connection, Stream};
use super::limits::{Admission, ConnectionLimits};
use super::registry::{Registry, SessionHandle};
use super::shards::Shards;
use super::tls::TlsStore;
use crate::config::{Config, Family, Protocol};
use crate::counters;

/// The rest of a session, handed back by the part before it (a login hands back the
/// logged-in session), so that the earlier part's state is gone while the rest runs.
pub type Continuation = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A session's future, as a [`Handler`] returns it: it may end with the rest of the session.
pub type SessionFuture = Pin<Box<dyn Future<Output = Option<Continuation>> + Send>>;

/// Runs a session to its end: its first part, then the rest the first part handed back.
pub async fn run_to_end(session: SessionFuture) {
    // Not `if let Some(rest) = session.await`: the scrutinee's temporary, the login session's
    // box, would stay allocated for as long as the rest of the session runs.
    let rest = session.await;
    if let Some(rest) = rest {
        rest.await;
    }
}

/// How the connections of one protocol family are served.
pub trait Handler: Send + Sync {
    /// Serves one accepted connection (already through the TLS handshake on an implicit-TLS
    /// port) until it ends.
    fn serve(&self, conn: Connection, accepted: Accepted) -> SessionFuture;
    /// What a client turned away by the connection limits is told, in the protocol's words.
    fn refusal(&self, reason: &str) -> Vec<u8>;
}

/// Where an accepted connection came in, for its handler.
#[derive(Debug, Clone, Copy)]
pub struct Accepted {
    /// The listener's protocol.
    pub protocol: Protocol,
    /// The client's address (127.0.0.1:0 on the LMTP unix socket).
    pub peer: SocketAddr,
    /// Our address.
    pub local: SocketAddr,
}

/// The handler of each protocol family the server serves.
pub type Handlers = HashMap<Family, Arc<dyn Handler>>;

/// How long sessions get to finish (POP3 updates, goodbyes) after shutdown begins.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything the accept loops share.
struct Shared {
    config: Arc<Config>,
    handlers: Handlers,
    tls: Arc<TlsStore>,
    registry: Arc<Registry>,
    limits: Arc<ConnectionLimits>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    /// Where sessions run: the session threads of the one-process server, else here.
    shards: Option<Arc<Shards>>,
}

/// Sockets bound while roost may still be root.
pub struct Bound {
    /// One socket per configured protocol listener.
    pub listeners: Vec<(Protocol, std::net::TcpListener)>,
    /// The LMTP unix socket, when configured.
    pub lmtp_socket: Option<std::os::unix::net::UnixListener>,
    /// The status page's socket, when configured.
    pub status: Option<std::net::TcpListener>,
    /// The autoconfig page's socket, when configured.
    pub autoconfig: Option<std::net::TcpListener>,
    /// The autoconfig page's HTTPS socket (`[autoconfig] listen_tls`), when configured.
    pub autoconfig_tls: Option<std::net::TcpListener>,
    /// Every bound address by name, as the status page lists them.
    pub table: Vec<(&'static str, SocketAddr)>,
}

/// Binds every configured listener (and the status and autoconfig pages), logging the real
/// addresses.
pub fn bind_all(config: &Config) -> anyhow::Result<Bound> {
    let mut bound = Bound {
        listeners: Vec::new(),
        lmtp_socket: None,
        status: None,
        autoconfig: None,
        autoconfig_tls: None,
        table: Vec::new(),
    };
    for listener in &config.listeners {
        let what = || {
            format!(
                "cannot listen for {} on {}",
                listener.protocol.name(),
                listener.addr
            )
        };
        let socket = std::net::TcpListener::bind(listener.addr).with_context(what)?;
        let addr = socket.local_addr()?;
        tracing::info!(protocol = listener.protocol.name(), %addr, "listening");
        bound.table.push((listener.protocol.name(), addr));
        bound.listeners.push((listener.protocol, socket));
    }
    if let Some(path) = &config.smtp.lmtp_socket {
        bound.lmtp_socket = Some(bind_unix(path)?);
        tracing::info!(protocol = "lmtp", socket = %path.display(), "listening");
    }
    let web = [
        ("status", config.status.listen),
        (
            "autoconfig",
            config.autoconfig.as_ref().and_then(|a| a.listen),
        ),
        (
            "autoconfig-tls",
            config.autoconfig.as_ref().and_then(|a| a.listen_tls),
        ),
    ];
    for (name, addr) in web {
        let Some(addr) = addr else { continue };
        let what = || format!("cannot listen for the {name} page on {addr}");
        let socket = std::net::TcpListener::bind(addr).with_context(what)?;
        let addr = socket.local_addr()?;
        tracing::info!(protocol = name, %addr, "listening");
        bound.table.push((name, addr));
        match name {
            "status" => bound.status = Some(socket),
            "autoconfig" => bound.autoconfig = Some(socket),
            _ => bound.autoconfig_tls = Some(socket),
        }
    }
    Ok(bound)
}

/// Binds a unix socket anyone on the machine may connect to (like port 25, it only delivers
/// to local users), replacing a stale socket file left by an earlier run.
fn bind_unix(path: &std::path::Path) -> anyhow::Result<std::os::unix::net::UnixListener> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
        std::fs::remove_file(path).with_context(|| format!("removing stale {}", path.display()))?;
    }
    let what = || format!("cannot listen for lmtp on {}", path.display());
    let socket = std::os::unix::net::UnixListener::bind(path).with_context(what)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666)).with_context(what)?;
    Ok(socket)
}

/// The accept loops' life cycle: created first, so the server can hand the registry and the
/// shutdown signal to what it starts beside them (status page, queue runner, TLS reloads).
pub struct Frontend {
    registry: Arc<Registry>,
    shutdown: CancellationToken,
    shards: Option<Arc<Shards>>,
}

impl Default for Frontend {
    fn default() -> Self {
        Self {
            registry: Arc::new(Registry::default()),
            shutdown: CancellationToken::new(),
            shards: None,
        }
    }
}

impl Frontend {
    /// The live sessions.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Cancelled when shutdown begins (SIGTERM/SIGINT).
    pub fn shutdown(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// Serves each accepted TCP connection on one of `shards`' threads instead of this
    /// runtime (the one-process server).
    pub fn serve_sessions_on(&mut self, shards: Arc<Shards>) {
        self.shards = Some(shards);
    }

    /// Accepts and serves connections on the bound sockets until shutdown, then drains
    /// sessions.
    pub async fn run(
        self,
        config: Arc<Config>,
        bound: Bound,
        tls: Arc<TlsStore>,
        handlers: Handlers,
    ) -> anyhow::Result<()> {
        let shared = Arc::new(Shared {
            limits: ConnectionLimits::new(
                config.limits.max_connections,
                config.limits.max_connections_per_ip,
            ),
            config,
            handlers,
            tls,
            registry: self.registry,
            shutdown: self.shutdown,
            tracker: TaskTracker::new(),
            shards: self.shards,
        });
        super::shutdown::cancel_on_terminate(shared.shutdown.clone())?;
        let mut loops = Vec::new();
        if let Some(socket) = bound.lmtp_socket {
            socket.set_nonblocking(true)?;
            let listener = tokio::net::UnixListener::from_std(socket)?;
            loops.push(tokio::spawn(accept_unix(Arc::clone(&shared), listener)));
        }
        for (protocol, socket) in bound.listeners {
            socket.set_nonblocking(true)?;
            let listener = TcpListener::from_std(socket)?;
            loops.push(tokio::spawn(accept_loop(
                Arc::clone(&shared),
                protocol,
                listener,
            )));
        }
        shared.shutdown.cancelled().await;
        for l in loops {
            let _ = l.await;
        }
        drain(&shared).await;
        Ok(())
    }
}

/// Waits (bounded) for the sessions to finish after shutdown began.
async fn drain(shared: &Shared) {
    shared.tracker.close();
    let open = shared.registry.len();
    if tokio::time::timeout(DRAIN_TIMEOUT, shared.tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("{} sessions did not finish in time", shared.registry.len());
    }
    tracing::info!(sessions_at_shutdown = open, "stopped");
}

async fn accept_loop(shared: Arc<Shared>, protocol: Protocol, listener: TcpListener) {
    loop {
        let accepted = tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Usually EMFILE: back off instead of spinning.
                tracing::error!(protocol = protocol.name(), "accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        match shared.limits.admit(peer.ip()) {
            Ok(admission) => {
                let shared2 = Arc::clone(&shared);
                match &shared.shards {
                    None => {
                        let socket = Socket::Registered(tcp);
                        shared
                            .tracker
                            .spawn(connection(shared2, protocol, socket, peer, admission));
                    }
                    // Registered again by the session thread's own runtime, so its events
                    // wake that thread directly.
                    Some(shards) => match tcp.into_std() {
                        Ok(tcp) => {
                            let socket = Socket::Moved(tcp);
                            shared.tracker.spawn_on(
                                connection(shared2, protocol, socket, peer, admission),
                                shards.next(),
                            );
                        }
                        Err(e) => tracing::warn!(%peer, "cannot hand the connection over: {e}"),
                    },
                }
            }
            Err(reason) => {
                tracing::warn!(protocol = protocol.name(), %peer, "refused: {reason}");
                let line = match shared.handlers.get(&protocol.family()) {
                    Some(handler) if !protocol.implicit_tls() => Some(handler.refusal(reason)),
                    _ => None,
                };
                shared.tracker.spawn(refuse(tcp, line));
            }
        }
    }
}

/// LMTP on a unix socket: the peer shows as 127.0.0.1:0 (the registry speaks IP addresses).
async fn accept_unix(shared: Arc<Shared>, listener: tokio::net::UnixListener) {
    let local = SocketAddr::from(([127, 0, 0, 1], 0));
    loop {
        let accepted = tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let unix = match accepted {
            Ok((unix, _)) => unix,
            Err(e) => {
                tracing::error!(protocol = "lmtp", "accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(admission) = shared.limits.admit(local.ip()) else {
            continue;
        };
        let shared2 = Arc::clone(&shared);
        shared.tracker.spawn(async move {
            let _admission = admission;
            let handle = shared2
                .registry
                .register(Protocol::Lmtp, local, local, &shared2.shutdown);
            let stream = Stream::Unix(unix);
            if let Some(session) =
                start_session(&shared2, Protocol::Lmtp, stream, local, local, handle)
            {
                run_to_end(session).await;
            }
        });
    }
}

/// Tells an over-limit client why it is turned away, in its protocol's words.
async fn refuse(mut tcp: TcpStream, line: Option<Vec<u8>>) {
    if let Some(line) = line {
        let _ = tokio::time::timeout(Duration::from_secs(5), tcp.write_all(&line)).await;
    }
}

/// An accepted connection's socket: registered with the runtime that accepted it, or taken
/// off it (non-blocking) for a session thread to register with its own.
enum Socket {
    Registered(TcpStream),
    Moved(std::net::TcpStream),
}

/// Serves one accepted TCP connection: registers it, does the TLS handshake of an implicit-TLS
/// port, and runs the session.
///
/// An `async` block rather than an `async fn`, which would keep a second copy of its arguments;
/// and the session is made before its long await, so this task's future holds little more
/// than the session's box for as long as the connection lasts.
#[allow(
    clippy::manual_async_fn,
    reason = "an async fn would store its arguments twice"
)]
fn connection(
    shared: Arc<Shared>,
    protocol: Protocol,
    socket: Socket,
    peer: SocketAddr,
    admission: Admission,
) -> impl Future<Output = ()> + Send {
    async move {
        let tcp = match socket {
            Socket::Registered(tcp) => tcp,
            Socket::Moved(tcp) => match TcpStream::from_std(tcp) {
                Ok(tcp) => tcp,
                Err(e) => {
                    tracing::warn!(%peer, "cannot take the connection over: {e}");
                    return;
                }
            },
        };
        let local = tcp.local_addr().unwrap_or(peer);
        let handle = shared
            .registry
            .register(protocol, peer, local, &shared.shutdown);
        let stream = if protocol.implicit_tls() {
            // Boxed: the handshake's state is large and would otherwise stay in every
            // connection's task (plain ones too) for as long as the session lasts.
            match Box::pin(implicit_tls(&shared, tcp, peer)).await {
                Some(tls) => tls,
                None => return,
            }
        } else {
            Stream::Plain(tcp)
        };
        if let Some(session) = start_session(&shared, protocol, stream, peer, local, handle) {
            run_to_end(session).await;
        }
        drop(admission);
    }
}

/// The TLS handshake of an implicit-TLS port, bounded in time; `None` (logged) if it failed.
async fn implicit_tls(shared: &Shared, tcp: TcpStream, peer: SocketAddr) -> Option<Stream> {
    let acceptor = shared.tls.acceptor();
    let failed = || counters::global().tls_failed();
    let limit = shared.config.limits.tls_handshake_timeout;
    match tokio::time::timeout(limit, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => Some(Stream::Tls(Box::new(tls))),
        Ok(Err(e)) => {
            failed();
            tracing::debug!(%peer, "TLS handshake failed: {e}");
            None
        }
        Err(_) => {
            failed();
            tracing::debug!(%peer, "TLS handshake timed out");
            None
        }
    }
}

/// The protocol's session on an accepted (and, for implicit TLS, handshaken) stream, ready to
/// run; `None` (logged) when no handler serves the protocol.
fn start_session(
    shared: &Arc<Shared>,
    protocol: Protocol,
    stream: Stream,
    peer: SocketAddr,
    local: SocketAddr,
    handle: SessionHandle,
) -> Option<SessionFuture> {
    let Some(handler) = shared.handlers.get(&protocol.family()) else {
        tracing::error!(protocol = protocol.name(), "no handler for this listener");
        return None;
    };
    let idle = shared.config.limits.idle_timeout(protocol.family());
    let mut conn = Connection::new(stream, idle, handle.cancel_token(), Some(handle));
    if protocol.requires_login() {
        conn.start_login_clock(shared.config.limits.login_timeout);
    }
    conn.set_tls_handshake_timeout(shared.config.limits.tls_handshake_timeout);
    let accepted = Accepted {
        protocol,
        peer,
        local,
    };
    Some(handler.serve(conn, accepted))
}
