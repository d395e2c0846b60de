//! Binding the configured listeners and accepting connections until shutdown.

use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::conn::{Connection, Stream};
use super::limits::{Admission, ConnectionLimits};
use super::registry::Registry;
use super::tls::{TlsPem, TlsStore};
use crate::auth::Authenticator;
use crate::config::{Config, Family, Protocol};
use crate::counters;
use crate::session::{Gate, SessionContext};
use crate::status::access::Access;
use crate::status::autoconfig::Autoconfig;
use crate::status::StatusSource;

/// How long a client gets to finish the TLS handshake of an implicit-TLS port.
/// How long sessions get to finish (POP3 updates, goodbyes) after shutdown begins.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything the accept loops share.
struct Shared {
    config: Arc<Config>,
    gate: Gate,
    tls: Arc<TlsStore>,
    registry: Arc<Registry>,
    limits: Arc<ConnectionLimits>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    /// Queue, resolution and delivery for SMTP/LMTP sessions, when any are served.
    smtp: Option<Arc<crate::smtp::Services>>,
}

/// Sockets bound while roost may still be root.
pub struct Bound {
    listeners: Vec<(Protocol, std::net::TcpListener)>,
    /// The LMTP unix socket, when configured.
    lmtp_socket: Option<std::os::unix::net::UnixListener>,
    status: Option<std::net::TcpListener>,
    autoconfig: Option<std::net::TcpListener>,
    table: Vec<(&'static str, SocketAddr)>,
}

/// Where certificate updates come from once serving.
pub enum TlsUpdates {
    /// Re-read the files on SIGHUP (roost runs unprivileged, one process).
    Files,
    /// The root master pushes them over this socket (this is the login process).
    Master(std::os::unix::net::UnixStream),
}

/// Binds every configured listener (and the status and autoconfig pages), logging the real
/// addresses.
pub fn bind_all(config: &Config) -> anyhow::Result<Bound> {
    let mut bound = Bound {
        listeners: Vec::new(),
        lmtp_socket: None,
        status: None,
        autoconfig: None,
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
        ("autoconfig", config.autoconfig.as_ref().map(|a| a.listen)),
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
            _ => bound.autoconfig = Some(socket),
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

/// Runs the server until SIGTERM/SIGINT. As root, it splits into the master and an
/// unprivileged login process; otherwise everything runs here.
pub fn serve(config: Config) -> anyhow::Result<()> {
    let auth = Authenticator::new(&config.auth);
    auth.check()?;
    let pem = TlsPem::load_or_generate(&config.tls)?;
    let bound = bind_all(&config)?;
    if crate::system::running_as_root() {
        return crate::privilege::master::run(config, auth, pem, bound);
    }
    if auth.uses_pam() {
        tracing::warn!("PAM is configured but roost is not running as root: pam_unix can then only check the password of the user running roost");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let gate = Gate::Local(Arc::new(auth));
    runtime.block_on(frontend(
        Arc::new(config),
        gate,
        pem,
        bound,
        TlsUpdates::Files,
    ))
}

/// Accepts and serves connections on the bound sockets until shutdown, then drains sessions.
pub async fn frontend(
    config: Arc<Config>,
    gate: Gate,
    pem: TlsPem,
    mut bound: Bound,
    updates: TlsUpdates,
) -> anyhow::Result<()> {
    let tls = Arc::new(TlsStore::new(&pem)?);
    let workers = matches!(updates, TlsUpdates::Master(_));
    let smtp = if config.serves_smtp() {
        Some(crate::smtp::Services::new(&config, &gate)?)
    } else {
        None
    };
    let shared = Arc::new(Shared {
        smtp,
        limits: ConnectionLimits::new(
            config.limits.max_connections,
            config.limits.max_connections_per_ip,
        ),
        config: Arc::clone(&config),
        gate,
        tls: Arc::clone(&tls),
        registry: Arc::new(Registry::default()),
        shutdown: CancellationToken::new(),
        tracker: TaskTracker::new(),
    });
    serve_web(&shared, &mut bound, workers)?;
    super::shutdown::cancel_on_terminate(shared.shutdown.clone())?;
    match updates {
        TlsUpdates::Files => {
            super::shutdown::reload_on_hangup(tls, config.tls.clone(), shared.shutdown.clone())?
        }
        TlsUpdates::Master(socket) => {
            tokio::spawn(crate::privilege::updates::receive_updates(socket, tls));
        }
    }
    if let Some(services) = &shared.smtp {
        tokio::spawn(crate::smtp::runner::run(
            Arc::clone(services),
            shared.shutdown.clone(),
        ));
    }
    let mut loops = Vec::new();
    if let Some(socket) = bound.lmtp_socket.take() {
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

/// Starts the status and autoconfig listeners, if configured.
fn serve_web(shared: &Arc<Shared>, bound: &mut Bound, workers: bool) -> anyhow::Result<()> {
    let status_open = Arc::new(AtomicUsize::new(0));
    let autoconfig_open = Arc::new(AtomicUsize::new(0));
    if let Some(socket) = bound.status.take() {
        socket.set_nonblocking(true)?;
        let service = crate::status::StatusService {
            source: StatusSource {
                listeners: bound.table.clone(),
                registry: Arc::clone(&shared.registry),
                config: Arc::clone(&shared.config),
                started: SystemTime::now(),
                workers,
                http_connections: vec![
                    ("status", Arc::clone(&status_open)),
                    ("autoconfig", Arc::clone(&autoconfig_open)),
                ],
            },
            access: Access::new(&shared.config, shared.gate.clone()),
        };
        tokio::spawn(crate::status::serve(
            TcpListener::from_std(socket)?,
            Arc::new(service),
            status_open,
            shared.shutdown.clone(),
        ));
    }
    if let (Some(socket), Some(config)) = (bound.autoconfig.take(), &shared.config.autoconfig) {
        socket.set_nonblocking(true)?;
        let autoconfig = Autoconfig {
            config: config.clone(),
            listeners: bound
                .listeners
                .iter()
                .filter_map(|(p, l)| Some((*p, l.local_addr().ok()?)))
                .collect(),
        };
        tokio::spawn(crate::status::autoconfig::serve(
            TcpListener::from_std(socket)?,
            Arc::new(autoconfig),
            autoconfig_open,
            shared.shutdown.clone(),
        ));
    }
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
            run_session(
                &shared2,
                Protocol::Lmtp,
                Stream::Unix(unix),
                local,
                local,
                handle,
            )
            .await;
        });
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
        Family::Smtp | Family::Inbound | Family::Lmtp => format!("421 4.7.0 {reason}\r\n"),
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
    let handle = shared
        .registry
        .register(protocol, peer, local, &shared.shutdown);
    let stream = if protocol.implicit_tls() {
        let acceptor = shared.tls.acceptor();
        let failed = || counters::global().tls_failed();
        let limit = shared.config.limits.tls_handshake_timeout;
        match tokio::time::timeout(limit, acceptor.accept(tcp)).await {
            Ok(Ok(tls)) => Stream::Tls(Box::new(tls)),
            Ok(Err(e)) => {
                failed();
                return tracing::debug!(%peer, "TLS handshake failed: {e}");
            }
            Err(_) => {
                failed();
                return tracing::debug!(%peer, "TLS handshake timed out");
            }
        }
    } else {
        Stream::Plain(tcp)
    };
    run_session(&shared, protocol, stream, peer, local, handle).await;
}

/// Runs the protocol's session on an accepted (and, for implicit TLS, handshaken) stream.
async fn run_session(
    shared: &Arc<Shared>,
    protocol: Protocol,
    stream: Stream,
    peer: SocketAddr,
    local: SocketAddr,
    handle: super::registry::SessionHandle,
) {
    let family = protocol.family();
    let idle = shared.config.limits.idle_timeout(family);
    let mut conn = Connection::new(stream, idle, handle.cancel_token(), Some(handle));
    if protocol.requires_login() {
        conn.start_login_clock(shared.config.limits.login_timeout);
    }
    conn.set_tls_handshake_timeout(shared.config.limits.tls_handshake_timeout);
    let ctx = SessionContext {
        config: Arc::clone(&shared.config),
        gate: shared.gate.clone(),
        tls: Arc::clone(&shared.tls),
        protocol,
        peer,
        local,
    };
    match family {
        Family::Imap => crate::imap::serve(conn, ctx).await,
        Family::Pop3 => crate::pop3::serve(conn, ctx).await,
        Family::Smtp | Family::Inbound | Family::Lmtp => match &shared.smtp {
            Some(services) => crate::smtp::serve(conn, ctx, Arc::clone(services)).await,
            None => tracing::error!("an SMTP listener without SMTP services"),
        },
    }
}
