//! Binding the configured listeners and accepting connections until shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::conn::{Connection, Stream};
use super::limits::{Admission, ConnectionLimits};
use super::registry::Registry;
use super::tls::TlsStore;
use crate::auth::Authenticator;
use crate::config::{Config, Family, Listener, Protocol};
use crate::session::SessionContext;
use crate::status::StatusSource;

/// How long a client gets to finish the TLS handshake of an implicit-TLS port.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long sessions get to finish (POP3 updates, goodbyes) after shutdown begins.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything the accept loops share.
struct Shared {
    config: Arc<Config>,
    auth: Arc<Authenticator>,
    tls: Arc<TlsStore>,
    registry: Arc<Registry>,
    limits: Arc<ConnectionLimits>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

/// Binds one listener with SO_REUSEADDR, so a restart does not wait for TIME_WAIT.
fn bind(listener: &Listener) -> anyhow::Result<TcpListener> {
    let what = || {
        format!(
            "cannot listen for {} on {}",
            listener.protocol.name(),
            listener.addr
        )
    };
    let socket = match listener.addr {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
    .with_context(what)?;
    socket.set_reuseaddr(true).with_context(what)?;
    socket.bind(listener.addr).with_context(what)?;
    socket.listen(1024).with_context(what)
}

/// Runs the server until SIGTERM/SIGINT, then drains sessions and returns.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let config = Arc::new(config);
    let auth = Arc::new(Authenticator::new(&config.auth));
    auth.check()?;
    let tls = Arc::new(TlsStore::load_or_generate(&config.tls)?);
    let mut bound = Vec::new();
    let mut table = Vec::new();
    for listener in &config.listeners {
        let socket = bind(listener)?;
        let addr = socket.local_addr()?;
        tracing::info!(protocol = listener.protocol.name(), %addr, "listening");
        table.push((listener.protocol.name(), addr));
        bound.push((listener.protocol, socket));
    }
    let status = match config.status_listen {
        Some(addr) => {
            let what = || format!("cannot listen for the status page on {addr}");
            let socket = TcpListener::bind(addr).await.with_context(what)?;
            let addr = socket.local_addr()?;
            tracing::info!(protocol = "status", %addr, "listening");
            table.push(("status", addr));
            Some(socket)
        }
        None => None,
    };
    if crate::privilege::running_as_root() {
        tracing::info!("running as root: authenticated sessions run in workers as the mail owner");
    } else if auth.uses_pam() {
        tracing::warn!("PAM is configured but roost is not running as root: pam_unix can then only check the password of the user running roost");
    }
    let shared = Arc::new(Shared {
        limits: ConnectionLimits::new(
            config.limits.max_connections,
            config.limits.max_connections_per_ip,
        ),
        config: Arc::clone(&config),
        auth,
        tls: Arc::clone(&tls),
        registry: Arc::new(Registry::default()),
        shutdown: CancellationToken::new(),
        tracker: TaskTracker::new(),
    });
    if let Some(socket) = status {
        let source = Arc::new(StatusSource {
            listeners: table,
            registry: Arc::clone(&shared.registry),
        });
        tokio::spawn(crate::status::serve(
            socket,
            source,
            shared.shutdown.clone(),
        ));
    }
    super::shutdown::cancel_on_terminate(shared.shutdown.clone())?;
    super::shutdown::reload_on_hangup(tls, shared.shutdown.clone())?;
    let mut loops = Vec::new();
    for (protocol, socket) in bound {
        loops.push(tokio::spawn(accept_loop(
            Arc::clone(&shared),
            protocol,
            socket,
        )));
    }
    shared.shutdown.cancelled().await;
    for l in loops {
        let _ = l.await;
    }
    shared.tracker.close();
    let open = shared.registry.len();
    if tokio::time::timeout(DRAIN_TIMEOUT, shared.tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("{} sessions did not finish in time", shared.registry.len());
    }
    tracing::info!(sessions_at_shutdown = open, "stopped");
    Ok(())
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
                shared
                    .tracker
                    .spawn(connection(shared2, protocol, tcp, peer, admission));
            }
            Err(reason) => {
                tracing::warn!(protocol = protocol.name(), %peer, "refused: {reason}");
                shared.tracker.spawn(refuse(tcp, protocol, reason));
            }
        }
    }
}

/// Tells an over-limit client why it is turned away, in its protocol's words.
async fn refuse(mut tcp: TcpStream, protocol: Protocol, reason: &str) {
    if protocol.implicit_tls() {
        return;
    }
    let line = match protocol.family() {
        Family::Imap => format!("* BYE [UNAVAILABLE] {reason}\r\n"),
        Family::Pop3 => format!("-ERR [SYS/TEMP] {reason}\r\n"),
        Family::Smtp => format!("421 4.7.0 {reason}\r\n"),
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.write_all(line.as_bytes())).await;
}

async fn connection(
    shared: Arc<Shared>,
    protocol: Protocol,
    tcp: TcpStream,
    peer: SocketAddr,
    _admission: Admission,
) {
    let local = tcp.local_addr().unwrap_or(peer);
    let handle = shared.registry.register(protocol, peer, local);
    let stream = if protocol.implicit_tls() {
        let acceptor = shared.tls.acceptor();
        match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
            Ok(Ok(tls)) => Stream::Tls(Box::new(tls)),
            Ok(Err(e)) => return tracing::debug!(%peer, "TLS handshake failed: {e}"),
            Err(_) => return tracing::debug!(%peer, "TLS handshake timed out"),
        }
    } else {
        Stream::Plain(tcp)
    };
    let family = protocol.family();
    let idle = shared.config.limits.idle_timeout(family);
    let conn = Connection::new(stream, idle, shared.shutdown.child_token(), Some(handle));
    let ctx = SessionContext {
        config: Arc::clone(&shared.config),
        auth: Arc::clone(&shared.auth),
        tls: Arc::clone(&shared.tls),
        protocol,
        peer,
        local,
    };
    match family {
        Family::Imap => crate::imap::serve(conn, ctx).await,
        Family::Pop3 => crate::pop3::serve(conn, ctx).await,
        Family::Smtp => crate::smtp::serve(conn, ctx).await,
    }
}
