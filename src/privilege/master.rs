//! The root master and the unprivileged login process (roost started as root).
//!
//! ```text
//!   master (root) ── binds ports, reads TLS key ── fork ──► login process (login_user)
//!     │  passdbs, PAM, tickets                              accept, TLS, pre-login dialogue,
//!     │  ◄──────── AUTH / SPAWN over the control socket ──  relay to workers, status page
//!     └─ hands each session's socket to the `roost worker` of its mail owner (started on
//!        demand as that owner, one per owner or a small pool for a shared one: `pool.rs`)
//! ```
//!
//! The master never reads a byte from a client; the login process never has root. This is
//! Dovecot's master/auth/login/imap split, reduced to two long-lived processes plus workers.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context;
use roost_protocol::sasl::Credentials;
use tokio::io::AsyncWriteExt;
use tokio::signal::unix::{signal, SignalKind};

use super::control::{MasterClient, Reply, Request, MAX_MESSAGE};
use super::delivery::Spawner;
use super::pool::{PoolError, WorkerPool};
use super::{fdpass, mail_owner};
use crate::auth::{AuthError, Authenticator, MailUser};
use crate::config::{Config, Family};
use crate::counters::{WorkerEvent, WorkerTotals};
use crate::listen::tls::TlsPem;
use crate::session::privileged::{LocalRecipient, Privileged, ResolveError};
use crate::session::UserSession;
use crate::smtp::resolve::Resolver;
use crate::system::SystemUser;
use roost_protocol::smtp::address::{Address, ReversePath};

/// How long a login ticket may wait for its SPAWN.
const TICKET_LIFETIME: Duration = Duration::from_secs(60);
/// How long the login process gets to drain its sessions after SIGTERM.
const LOGIN_DRAIN: Duration = Duration::from_secs(15);
/// How long workers get to say goodbye after SIGTERM.
const WORKER_GRACE: Duration = Duration::from_secs(5);

/// Splits into master and login process and runs both until shutdown. Must be called before
/// any thread is started: the login process is forked, not executed.
///
/// The login process drops to `login_user`, starts a runtime and runs `serve_logins` with the
/// master's client (its [`Privileged`]) and the socket on which the master pushes certificate
/// reloads and worker counters. Whatever `serve_logins` captured (bound sockets, certificates)
/// is dropped in the master.
pub fn run<F, Fut>(config: Config, auth: Authenticator, serve_logins: F) -> anyhow::Result<()>
where
    F: FnOnce(Config, Arc<dyn Privileged>, UnixStream) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let login = SystemUser::by_name(&config.login_user)
        .with_context(|| format!("[server] login_user {:?} does not exist", config.login_user))?;
    anyhow::ensure!(login.uid != 0, "[server] login_user must not be root");
    if config.serves_smtp() {
        crate::smtp::prepare_queue_dir(&config.smtp.queue_dir, Some((login.uid, login.gid)))?;
    }
    super::reach::check_start_paths(&config, &login)?;
    let (control_master, control_login) = fdpass::seqpacket_pair()?;
    let (push_master, push_login) = UnixStream::pair()?;
    // SAFETY: no runtime and no other thread exists yet, so the child owns a consistent copy of
    // the whole process and may run arbitrary code.
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => Err(std::io::Error::last_os_error()).context("fork"),
        0 => {
            drop((control_master, push_master, auth));
            let code = match login_process(config, control_login, push_login, &login, serve_logins)
            {
                Ok(()) => 0,
                Err(e) => {
                    tracing::error!("login process: {e:#}");
                    1
                }
            };
            std::process::exit(code)
        }
        child => {
            drop((control_login, push_login, serve_logins));
            tracing::info!(login_pid = child, login_user = %login.name, "running as root: connections are served by the login process, sessions by workers running as the mail owner");
            master_process(config, auth, child, control_master, push_master)
        }
    }
}

/// Drops to `uid`/`gid` for good, with no supplementary groups.
fn drop_privileges(uid: u32, gid: u32) -> std::io::Result<()> {
    // SAFETY: plain system calls on scalar arguments and a one-element array that outlives them.
    // The parent-death signal is set after setuid, which would clear it: the login process
    // must not outlive the master holding the listening sockets.
    let ok = unsafe {
        libc::setgroups(1, &gid) == 0
            && libc::setgid(gid) == 0
            && libc::setuid(uid) == 0
            && libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == 0
    };
    if !ok {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: as above; this must fail now that root is gone.
    if unsafe { libc::setuid(0) } == 0 {
        return Err(std::io::Error::other(
            "root privileges could not be dropped",
        ));
    }
    Ok(())
}

fn login_process<F, Fut>(
    config: Config,
    control: UnixStream,
    push: UnixStream,
    login: &SystemUser,
    serve_logins: F,
) -> anyhow::Result<()>
where
    F: FnOnce(Config, Arc<dyn Privileged>, UnixStream) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    drop_privileges(login.uid, login.gid).context("dropping privileges")?;
    // SAFETY: getppid has no preconditions. If the master died before the death signal was
    // armed, this process was reparented and must not serve on alone.
    if unsafe { libc::getppid() } == 1 {
        anyhow::bail!("the master exited during start-up");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let master: Arc<dyn Privileged> = Arc::new(MasterClient::new(control));
    runtime.block_on(serve_logins(config, master, push))
}

/// The master's state.
struct Master {
    config: Config,
    auth: Arc<Authenticator>,
    tickets: Mutex<HashMap<String, (MailUser, Instant)>>,
    /// The session workers, one per mail owner.
    pool: WorkerPool,
    /// Write end of the pipe on which workers announce repairs, deliveries and retrievals
    /// (their fd 3).
    events: OwnedFd,
    /// Answers RESOLVE with the master's own view of maps and user databases.
    resolver: Arc<Resolver>,
}

fn master_process(
    config: Config,
    auth: Authenticator,
    login_pid: i32,
    control: UnixStream,
    push: UnixStream,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        crate::resident::drop_startup_code_later();
        let (events_read, events_write) = cloexec_pipe()?;
        let privileged_gid = config.mail.privileged_gid;
        let auth = Arc::new(auth);
        let master = Arc::new(Master {
            resolver: Arc::new(Resolver::new(&config.smtp, Arc::clone(&auth))),
            config,
            auth,
            tickets: Mutex::new(HashMap::new()),
            pool: WorkerPool::new(events_write.as_raw_fd(), privileged_gid),
            events: events_write,
        });
        let mut requests = receive_requests(control);
        let mut events = count_events(events_read);
        let (mut term, mut int, mut hup) = (
            signal(SignalKind::terminate())?,
            signal(SignalKind::interrupt())?,
            signal(SignalKind::hangup())?,
        );
        let mut push = tokio::net::UnixStream::from_std({
            push.set_nonblocking(true)?;
            push
        })?;
        let mut login_exit = tokio::task::spawn_blocking(move || wait_pid(login_pid));
        loop {
            tokio::select! {
                Some((message, fds)) = requests.recv() => {
                    let master = Arc::clone(&master);
                    tokio::spawn(async move { master.handle(message, fds).await });
                }
                _ = term.recv() => break,
                _ = int.recv() => break,
                _ = hup.recv() => master.push_tls(&mut push).await,
                Some(totals) = events.recv() => {
                    let _ = push.write_all(&super::updates::encode_totals(&totals)).await;
                }
                status = &mut login_exit => {
                    master.pool.stop();
                    anyhow::bail!("the login process exited unexpectedly ({status:?})");
                }
            }
        }
        tracing::info!("shutting down");
        // SAFETY: kill(2) on our own child's pid, which is not reaped until wait_pid returns.
        unsafe { libc::kill(login_pid, libc::SIGTERM) };
        master.pool.stop();
        if tokio::time::timeout(LOGIN_DRAIN, &mut login_exit)
            .await
            .is_err()
        {
            // SAFETY: as above.
            unsafe { libc::kill(login_pid, libc::SIGKILL) };
            let _ = login_exit.await;
        }
        master.pool.wait(WORKER_GRACE).await;
        Ok(())
    })
}

/// Blocking: reaps the login process and returns its wait status.
fn wait_pid(pid: i32) -> i32 {
    let mut status = 0;
    loop {
        // SAFETY: waitpid on our own child with a valid out-pointer.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        if rc == pid
            || (rc < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR))
        {
            return status;
        }
    }
}

type Message = (Vec<u8>, Vec<OwnedFd>);

/// A pipe whose ends are closed on exec (the worker's copy is made with dup2 before exec).
fn cloexec_pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two new descriptors into the array we pass.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both descriptors are new and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Tallies what workers announce (one byte per repair, delivery or retrieval) and yields
/// running totals.
fn count_events(events: OwnedFd) -> tokio::sync::mpsc::UnboundedReceiver<WorkerTotals> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        let mut pipe = std::fs::File::from(events);
        let mut buf = [0u8; 256];
        let mut totals = WorkerTotals::default();
        while let Ok(n) = std::io::Read::read(&mut pipe, &mut buf) {
            if n == 0 {
                break;
            }
            for event in buf[..n].iter().filter_map(|b| WorkerEvent::from_byte(*b)) {
                totals.add(event);
            }
            if tx.send(totals).is_err() {
                break;
            }
        }
    });
    rx
}

/// Reads control messages on a thread (the socket is blocking) and queues them.
fn receive_requests(control: UnixStream) -> tokio::sync::mpsc::UnboundedReceiver<Message> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; MAX_MESSAGE];
        while let Ok((n, fds)) = fdpass::recv(&control, &mut buf) {
            if n == 0 || tx.send((buf[..n].to_vec(), fds)).is_err() {
                break;
            }
        }
    });
    rx
}

impl Master {
    async fn handle(&self, message: Vec<u8>, mut fds: Vec<OwnedFd>) {
        if fds.is_empty() {
            return tracing::error!("control message without a reply socket");
        }
        let reply_to = UnixStream::from(fds.remove(0));
        let reply = match std::str::from_utf8(&message).ok().and_then(Request::decode) {
            Some(Request::Auth { creds, peer }) => self.authenticate(creds, peer).await,
            Some(Request::Spawn {
                ticket,
                family,
                peer,
                local,
                tls,
            }) => match fds.len() {
                1 | 2 => self.spawn(&ticket, family, (peer, local, tls), &fds),
                _ => Reply::Refused("no worker socket".into()),
            },
            Some(Request::Resolve { address }) => self.resolve(&address).await,
            Some(Request::Deliver { return_path, users }) => match fds.pop() {
                Some(spool) => self.deliver(spool, &return_path, &users).await,
                None => Reply::Refused("no message".into()),
            },
            None => Reply::Refused("malformed request".into()),
        };
        let sent = async {
            reply_to.set_nonblocking(true)?;
            let mut stream = tokio::net::UnixStream::from_std(reply_to)?;
            stream
                .write_all(format!("{}\n", reply.encode()).as_bytes())
                .await
        };
        if let Err(e) = sent.await {
            tracing::warn!("control reply not delivered: {e}");
        }
    }

    async fn resolve(&self, address: &str) -> Reply {
        let Ok(parsed) = Address::parse(address) else {
            return Reply::Unresolved(ResolveError::Unknown);
        };
        let resolver = Arc::clone(&self.resolver);
        match tokio::task::spawn_blocking(move || resolver.resolve(&parsed)).await {
            Ok(Ok(targets)) => Reply::Targets(targets),
            Ok(Err(why)) => Reply::Unresolved(why),
            Err(e) => Reply::Unresolved(ResolveError::Temporary(e.to_string())),
        }
    }

    /// Delivers a spool file the login process handed over, as each user's mail owner.
    async fn deliver(
        &self,
        spool: OwnedFd,
        return_path: &ReversePath,
        users: &[LocalRecipient],
    ) -> Reply {
        let spawner = Spawner {
            location: self.config.mail.location.clone(),
            mail_user: self.config.mail.user.clone(),
            privileged_gid: self.config.mail.privileged_gid,
            resolver: Arc::clone(&self.resolver),
            events: Some(self.events.as_raw_fd()),
            site: crate::filter::run::site_scripts(&self.config),
        };
        let outcomes = spawner
            .deliver(&std::fs::File::from(spool), return_path, users)
            .await;
        Reply::Outcomes(outcomes)
    }

    async fn authenticate(&self, creds: Credentials, peer: IpAddr) -> Reply {
        match self.auth.authenticate(creds, peer).await {
            Ok(user) => {
                let ticket = format!("{:032x}", rand::random::<u128>());
                let name = user.name.clone();
                let mut tickets = self.tickets.lock().unwrap_or_else(PoisonError::into_inner);
                tickets.retain(|_, (_, issued)| issued.elapsed() < TICKET_LIFETIME);
                tickets.insert(ticket.clone(), (user, Instant::now()));
                Reply::Ticket { ticket, name }
            }
            Err(why) => {
                if let AuthError::Temporary(reason) = &why {
                    tracing::error!("auth: {reason}");
                }
                Reply::Denied(why)
            }
        }
    }

    fn spawn(
        &self,
        ticket: &str,
        family: Family,
        (peer, local, tls): (SocketAddr, SocketAddr, bool),
        sockets: &[OwnedFd],
    ) -> Reply {
        let entry = self
            .tickets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(ticket);
        let Some((user, _)) = entry.filter(|(_, issued)| issued.elapsed() < TICKET_LIFETIME) else {
            tracing::warn!("SPAWN with an unknown or expired ticket refused");
            return Reply::Refused("unknown or expired ticket".into());
        };
        let owner = match mail_owner(&user, self.config.mail.user.as_deref()) {
            Ok(owner) => owner,
            Err(e) => {
                tracing::error!(user = %user.name, "{e}");
                return Reply::Refused(e.to_string());
            }
        };
        let session = UserSession::new(user, family, &self.config, peer, local, tls);
        match self.pool.hand_over(owner, &session, sockets) {
            Ok(()) => Reply::Started,
            Err(PoolError::ShuttingDown) => Reply::Stopping,
            Err(e) => {
                tracing::error!(user = %session.user.name, "{e}");
                Reply::Refused("cannot start worker".into())
            }
        }
    }

    /// SIGHUP: re-reads the certificate files (as root) and pushes them to the login process.
    async fn push_tls(&self, push: &mut tokio::net::UnixStream) {
        let pem = match TlsPem::load(&self.config.tls) {
            Ok(pem) => pem,
            Err(e) => {
                return tracing::error!(
                    "SIGHUP: TLS reload failed, keeping the old certificate: {e}"
                )
            }
        };
        match push.write_all(&super::updates::encode_tls(&pem)).await {
            Ok(()) => tracing::info!("SIGHUP: TLS certificate reloaded"),
            Err(e) => {
                tracing::error!("SIGHUP: cannot hand the certificate to the login process: {e}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn master() -> (tempfile::TempDir, Master) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("users"), "alice:{PLAIN}pw\n").unwrap();
        let path = dir.path().join("roost.toml");
        let text = "protocols = [\"imap\"]\n[mail]\nlocation = \"maildir:/srv/mail/%u\"\n[auth]\npassdb = [\"passwd-file:users\"]\n";
        std::fs::write(&path, text).unwrap();
        let config = Config::load(&path).unwrap();
        let auth = Arc::new(Authenticator::new(&config.auth));
        let events = cloexec_pipe().unwrap().1;
        let master = Master {
            resolver: Arc::new(Resolver::new(&config.smtp, Arc::clone(&auth))),
            auth,
            config,
            tickets: Mutex::new(HashMap::new()),
            pool: WorkerPool::new(events.as_raw_fd(), None),
            events,
        };
        (dir, master)
    }

    fn socket() -> OwnedFd {
        OwnedFd::from(UnixStream::pair().unwrap().0)
    }

    const ADDRS: (SocketAddr, SocketAddr, bool) = (
        SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 5000),
        SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 143),
        false,
    );

    #[test]
    fn spawn_needs_a_fresh_ticket_from_a_real_login() {
        let (_dir, master) = master();
        assert_eq!(
            master.spawn("forged", Family::Imap, ADDRS, &[socket()]),
            Reply::Refused("unknown or expired ticket".into())
        );
        let user = MailUser {
            name: "alice".into(),
            source: crate::auth::Source::PasswdFile,
            uid: None,
            gid: None,
            home: None,
            quota: Default::default(),
        };
        let stale = Instant::now()
            .checked_sub(TICKET_LIFETIME + Duration::from_secs(1))
            .unwrap();
        master
            .tickets
            .lock()
            .unwrap()
            .insert("old".into(), (user, stale));
        assert_eq!(
            master.spawn("old", Family::Imap, ADDRS, &[socket()]),
            Reply::Refused("unknown or expired ticket".into())
        );
        assert!(
            master.tickets.lock().unwrap().is_empty(),
            "a ticket is used at most once"
        );
    }

    #[tokio::test]
    async fn wrong_passwords_get_no_ticket() {
        let (_dir, master) = master();
        let creds = |password: &str| Credentials {
            username: "alice".into(),
            password: password.into(),
        };
        let peer: IpAddr = "127.0.0.1".parse().unwrap();
        let ok = master.authenticate(creds("pw"), peer).await;
        assert!(
            matches!(&ok, Reply::Ticket { name, .. } if name == "alice"),
            "{ok:?}"
        );
        assert_eq!(master.tickets.lock().unwrap().len(), 1);
        let mut config = master.config.auth.clone();
        config.failure_delay = Duration::ZERO;
        let master = Master {
            auth: Arc::new(Authenticator::new(&config)),
            ..master
        };
        assert_eq!(
            master.authenticate(creds("wrong"), peer).await,
            Reply::Denied(AuthError::Failed)
        );
        assert_eq!(master.tickets.lock().unwrap().len(), 1);
    }
}
