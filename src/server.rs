//! The one place that wires roost together: bind the sockets, build the services, then either
//! split into the root master and an unprivileged login process, or serve everything in this
//! process; and give the network layer its table of protocol handlers.
//!
//! ```text
//!   serve ── bind_all ── running as root? ── privilege::master::run ── login process ─┐
//!                                     └── no: InProcess ─────────────────────────────┤
//!   serve_connections(privileged) ◄───────────────────────────────────────────────────┘
//!        ├── status page, autoconfig, queue runner, certificate reloads
//!        └── listen::Frontend::run(handlers: imap, pop3, smtp, managesieve) ── Connection ── session
//! ```
//! Protocol modules never learn which of the two process models they run in: they receive a
//! [`SessionContext`] whose `privileged` is either this process ([`InProcess`]) or the master's
//! client.

use std::net::TcpListener as StdTcpListener;
use std::os::unix::net::UnixStream;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::net::TcpListener;

use crate::auth::Authenticator;
use crate::config::{Config, Family};
use crate::listen::acceptor::{
    bind_all, Accepted, Bound, Frontend, Handler, Handlers, SessionFuture,
};
use crate::listen::conn::Connection;
use crate::listen::shards::Shards;
use crate::listen::tls::{TlsPem, TlsStore};
use crate::privilege::in_process::InProcess;
use crate::session::privileged::Privileged;
use crate::session::SessionContext;
use crate::status::access::Access;
use crate::status::autoconfig::Autoconfig;
use crate::status::StatusSource;

/// Threads the one-process server's main runtime (accept loops, status page, LMTP on its unix
/// socket, the queue runner) may add for blocking work. Each thread's stack stays with the
/// process; unbounded, a burst of slow disk work once left hundreds of them.
const MAX_BLOCKING_THREADS: usize = 16;

/// Runs the server until SIGTERM/SIGINT. As root, it splits into the master and an
/// unprivileged login process; otherwise everything runs here.
pub fn serve(config: Config) -> anyhow::Result<()> {
    let auth = Authenticator::new(&config.auth);
    auth.check()?;
    let pem = TlsPem::load_or_generate(&config.tls)?;
    let bound = bind_all(&config)?;
    if crate::system::running_as_root() {
        return crate::privilege::master::run(config, auth, move |config, master, push| {
            serve_connections(
                Arc::new(config),
                master,
                pem,
                bound,
                Role::LoginProcess(push),
            )
        });
    }
    if auth.uses_pam() {
        tracing::warn!("PAM is configured but roost is not running as root: pam_unix can then only check the password of the user running roost");
    }
    // One malloc arena for this runtime's threads and one for each session thread.
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    crate::limit_malloc_arenas(cores + 1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .build()?;
    let shards = Arc::new(Shards::start(cores)?);
    let privileged: Arc<dyn Privileged> = Arc::new(InProcess::new(&config, Arc::new(auth)));
    let served = runtime.block_on(serve_connections(
        Arc::new(config),
        privileged,
        pem,
        bound,
        Role::OneProcess(shards.clone()),
    ));
    shards.stop();
    served
}

/// What this process is: where its sessions run and where certificate updates come from.
enum Role {
    /// The whole server, unprivileged: sessions run on these session threads, and the
    /// certificate files are re-read on SIGHUP.
    OneProcess(Arc<Shards>),
    /// The login process under the root master, which pushes certificate updates (and worker
    /// counters) over this socket; sessions run in workers once logged in.
    LoginProcess(UnixStream),
}

/// Serves every bound socket with `privileged` until shutdown: the accept loops, and beside
/// them the status and autoconfig pages, the queue runner and certificate reloads.
async fn serve_connections(
    config: Arc<Config>,
    privileged: Arc<dyn Privileged>,
    pem: TlsPem,
    mut bound: Bound,
    role: Role,
) -> anyhow::Result<()> {
    let tls = Arc::new(TlsStore::new(&pem)?);
    let mut frontend = Frontend::default();
    let workers = matches!(role, Role::LoginProcess(_));
    serve_web(&config, &privileged, &frontend, &mut bound, &tls, workers)?;
    match role {
        Role::OneProcess(shards) => {
            frontend.serve_sessions_on(shards);
            crate::listen::shutdown::reload_on_hangup(
                Arc::clone(&tls),
                config.tls.clone(),
                frontend.shutdown().clone(),
            )?;
        }
        Role::LoginProcess(socket) => {
            tokio::spawn(crate::privilege::updates::receive_updates(
                socket,
                Arc::clone(&tls),
            ));
        }
    }
    let (handlers, smtp) = handlers(&config, privileged, tls.clone())?;
    if let Some(services) = smtp {
        tokio::spawn(crate::smtp::runner::run(
            services,
            frontend.shutdown().clone(),
        ));
    }
    crate::resident::drop_startup_code_later();
    frontend.run(config, bound, tls, handlers).await
}

/// The handler of every protocol family, and the SMTP services (for the queue runner) when
/// SMTP is served.
pub fn handlers(
    config: &Arc<Config>,
    privileged: Arc<dyn Privileged>,
    tls: Arc<TlsStore>,
) -> anyhow::Result<(Handlers, Option<Arc<crate::smtp::Services>>)> {
    let sessions = Sessions {
        config: Arc::clone(config),
        privileged: Arc::clone(&privileged),
        tls,
    };
    let mut handlers: Handlers = Handlers::new();
    handlers.insert(Family::Imap, Arc::new(ImapHandler(sessions.clone())));
    handlers.insert(Family::Pop3, Arc::new(Pop3Handler(sessions.clone())));
    handlers.insert(Family::Sieve, Arc::new(SieveHandler(sessions.clone())));
    if !config.serves_smtp() {
        return Ok((handlers, None));
    }
    let services = crate::smtp::Services::new(config, privileged)?;
    let smtp: Arc<dyn Handler> = Arc::new(SmtpHandler {
        sessions,
        services: Arc::clone(&services),
    });
    for family in [Family::Smtp, Family::Inbound, Family::Lmtp] {
        handlers.insert(family, Arc::clone(&smtp));
    }
    Ok((handlers, Some(services)))
}

/// Starts the status and autoconfig listeners, if configured; HTTPS autoconfig shares the mail
/// listeners' certificate store `tls`, and with it their reloads.
fn serve_web(
    config: &Arc<Config>,
    privileged: &Arc<dyn Privileged>,
    frontend: &Frontend,
    bound: &mut Bound,
    tls: &Arc<TlsStore>,
    workers: bool,
) -> anyhow::Result<()> {
    let status_open = Arc::new(AtomicUsize::new(0));
    let autoconfig_open = Arc::new(AtomicUsize::new(0));
    let autoconfig_tls_open = Arc::new(AtomicUsize::new(0));
    if let Some(socket) = bound.status.take() {
        let history = Arc::new(crate::status::history::History::new());
        tokio::spawn(Arc::clone(&history).run(frontend.shutdown().clone()));
        let service = crate::status::StatusService {
            source: StatusSource {
                listeners: bound.table.clone(),
                registry: Arc::clone(frontend.registry()),
                config: Arc::clone(config),
                started: SystemTime::now(),
                workers,
                http_connections: vec![
                    ("status", Arc::clone(&status_open)),
                    ("autoconfig", Arc::clone(&autoconfig_open)),
                    ("autoconfig-tls", Arc::clone(&autoconfig_tls_open)),
                ],
                history,
            },
            access: Access::new(config, Arc::clone(privileged)),
        };
        tokio::spawn(crate::status::serve(
            tokio_listener(socket)?,
            Arc::new(service),
            status_open,
            frontend.shutdown().clone(),
        ));
    }
    let Some(autoconfig) = &config.autoconfig else {
        return Ok(());
    };
    let autoconfig = Arc::new(Autoconfig {
        config: autoconfig.clone(),
        listeners: bound
            .listeners
            .iter()
            .filter_map(|(p, l)| Some((*p, l.local_addr().ok()?)))
            .collect(),
    });
    let sockets = [
        (bound.autoconfig.take(), None, autoconfig_open),
        (
            bound.autoconfig_tls.take(),
            Some(Arc::clone(tls)),
            autoconfig_tls_open,
        ),
    ];
    for (socket, tls, open) in sockets {
        let Some(socket) = socket else { continue };
        tokio::spawn(crate::status::autoconfig::serve(
            tokio_listener(socket)?,
            tls,
            Arc::clone(&autoconfig),
            open,
            frontend.shutdown().clone(),
        ));
    }
    Ok(())
}

fn tokio_listener(socket: StdTcpListener) -> std::io::Result<TcpListener> {
    socket.set_nonblocking(true)?;
    TcpListener::from_std(socket)
}

/// What every protocol handler needs to give a connection its [`SessionContext`].
#[derive(Clone)]
struct Sessions {
    config: Arc<Config>,
    privileged: Arc<dyn Privileged>,
    tls: Arc<TlsStore>,
}

impl Sessions {
    fn context(&self, accepted: Accepted) -> SessionContext {
        SessionContext {
            config: Arc::clone(&self.config),
            privileged: Arc::clone(&self.privileged),
            tls: Arc::clone(&self.tls),
            protocol: accepted.protocol,
            peer: accepted.peer,
            local: accepted.local,
        }
    }
}

/// IMAP and IMAPS.
struct ImapHandler(Sessions);

impl Handler for ImapHandler {
    fn serve(&self, conn: Connection, accepted: Accepted) -> SessionFuture {
        Box::pin(crate::imap::serve(conn, self.0.context(accepted)))
    }
    fn refusal(&self, reason: &str) -> Vec<u8> {
        format!("* BYE [UNAVAILABLE] {reason}\r\n").into_bytes()
    }
}

/// POP3 and POP3S.
struct Pop3Handler(Sessions);

impl Handler for Pop3Handler {
    fn serve(&self, conn: Connection, accepted: Accepted) -> SessionFuture {
        Box::pin(crate::pop3::serve(conn, self.0.context(accepted)))
    }
    fn refusal(&self, reason: &str) -> Vec<u8> {
        format!("-ERR [SYS/TEMP] {reason}\r\n").into_bytes()
    }
}

/// ManageSieve.
struct SieveHandler(Sessions);

impl Handler for SieveHandler {
    fn serve(&self, conn: Connection, accepted: Accepted) -> SessionFuture {
        Box::pin(crate::managesieve::serve(conn, self.0.context(accepted)))
    }
    fn refusal(&self, reason: &str) -> Vec<u8> {
        roost_protocol::managesieve::response(
            roost_protocol::managesieve::Status::Bye,
            Some(&roost_protocol::managesieve::Code::TryLater),
            reason,
        )
    }
}

/// Submission, inbound SMTP and LMTP, which share the queue and delivery.
struct SmtpHandler {
    sessions: Sessions,
    services: Arc<crate::smtp::Services>,
}

impl Handler for SmtpHandler {
    fn serve(&self, conn: Connection, accepted: Accepted) -> SessionFuture {
        let ctx = self.sessions.context(accepted);
        let services = Arc::clone(&self.services);
        Box::pin(async move {
            crate::smtp::serve(conn, ctx, services).await;
            None
        })
    }
    fn refusal(&self, reason: &str) -> Vec<u8> {
        format!("421 4.7.0 {reason}\r\n").into_bytes()
    }
}
