//! Per-session worker processes for a root-started server.
//!
//! The listener process keeps the client connection (and its TLS state) and relays plaintext
//! bytes over a socketpair to `roost worker`, started with the mail owner's uid and gid, which
//! runs the authenticated session and touches the mail. This is Dovecot's login/imap split in
//! miniature: the kernel enforces that one user's session cannot reach another user's files.

use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use clap::Args;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use crate::auth::{MailUser, Source};
use crate::config::Family;
use crate::listen::conn::{Connection, Stream};
use crate::listen::registry::SessionHandle;
use crate::session::{self, UserSession};

/// How long a worker gets to say goodbye after the server is told to stop.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The arguments `roost worker` receives: a [`UserSession`], spelled out.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Protocol family: imap or pop3.
    #[arg(long)]
    family: String,
    /// The logged-in user.
    #[arg(long)]
    user: String,
    /// The passdb that authenticated them (passwd-file or pam).
    #[arg(long)]
    source: String,
    /// Home directory, for `~` in the mail location.
    #[arg(long)]
    home: Option<PathBuf>,
    /// The mail location template.
    #[arg(long)]
    location: String,
    /// Client address, for log lines.
    #[arg(long)]
    peer: SocketAddr,
    /// Our address, for log lines.
    #[arg(long)]
    local: SocketAddr,
    /// Whether the client connection is encrypted.
    #[arg(long)]
    tls: bool,
    /// Autologout after this many seconds of silence.
    #[arg(long)]
    idle_timeout_secs: u64,
    /// Largest IMAP literal.
    #[arg(long)]
    max_literal: u32,
}

fn to_args(s: &UserSession) -> Vec<String> {
    let mut args = vec![
        "worker".into(),
        "--family".into(),
        s.family.name().into(),
        "--user".into(),
        s.user.name.clone(),
        "--source".into(),
        s.user.source.name().into(),
        "--location".into(),
        location_spec(&s.location),
        "--peer".into(),
        s.peer.to_string(),
        "--local".into(),
        s.local.to_string(),
        "--idle-timeout-secs".into(),
        s.idle_timeout.as_secs().max(1).to_string(),
        "--max-literal".into(),
        s.max_literal.to_string(),
    ];
    if let Some(home) = &s.user.home {
        args.push("--home".into());
        args.push(home.display().to_string());
    }
    if s.tls {
        args.push("--tls".into());
    }
    args
}

fn location_spec(loc: &roost_storage::MailLocation) -> String {
    let format = match loc.format {
        roost_storage::MailFormat::Maildir => "maildir",
        roost_storage::MailFormat::Mbox => "mbox",
    };
    match &loc.inbox {
        Some(inbox) => format!("{format}:{}:INBOX={inbox}", loc.root),
        None => format!("{format}:{}", loc.root),
    }
}

/// Starts a worker as `owner` and relays the client connection to it until either side ends.
pub async fn run(conn: Connection, session: &UserSession, owner: (u32, u32)) {
    let shutdown = conn.shutdown_token().clone();
    let (stream, leftover, handle) = conn.into_parts();
    let Some(mut client) = stream else { return };
    let (ours, theirs) = match std::os::unix::net::UnixStream::pair() {
        Ok(pair) => pair,
        Err(e) => return tracing::error!("worker socketpair: {e}"),
    };
    let mut command = Command::new("/proc/self/exe");
    command
        .args(to_args(session))
        .uid(owner.0)
        .gid(owner.1)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env(
            "HOME",
            session
                .user
                .home
                .as_deref()
                .unwrap_or(std::path::Path::new("/")),
        )
        .env("USER", &session.user.name)
        .stdin(Stdio::from(OwnedFd::from(theirs)))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    // SAFETY: the closure runs between fork and exec and only calls sigprocmask, which is
    // async-signal-safe. SIGTERM stays blocked (pending, not lost) until the worker has installed
    // its handler, so a shutdown racing a login still ends with the protocol's goodbye.
    unsafe {
        command.pre_exec(|| set_sigterm_blocked(true));
    }
    if let Ok(filter) = std::env::var("RUST_LOG") {
        command.env("RUST_LOG", filter);
    }
    let spawned = command.spawn();
    // The command holds our copy of the worker's socket end: close it, or EOF never comes.
    drop(command);
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            tracing::error!(user = %session.user.name, "cannot start worker: {e}");
            let _ = client.write_all(b"* BYE Internal error\r\n").await;
            return;
        }
    };
    let relay = async {
        ours.set_nonblocking(true)?;
        let mut worker = tokio::net::UnixStream::from_std(ours)?;
        worker.write_all(&leftover).await?;
        relay(client, worker, handle.as_ref()).await;
        std::io::Result::Ok(())
    };
    tokio::pin!(relay);
    tokio::select! {
        _ = &mut relay => {}
        _ = shutdown.cancelled() => {
            if let Some(pid) = child.id() {
                // SAFETY: kill(2) on our own child's pid, which `child` keeps from being reaped.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
            }
            let _ = tokio::time::timeout(SHUTDOWN_GRACE, &mut relay).await;
        }
    }
    if tokio::time::timeout(SHUTDOWN_GRACE, child.wait())
        .await
        .is_err()
    {
        let _ = child.kill().await;
    }
}

/// Blocks or unblocks SIGTERM for the calling thread.
fn set_sigterm_blocked(blocked: bool) -> std::io::Result<()> {
    // SAFETY: sigset_t is plain data initialised by sigemptyset before use; the pointers are to
    // locals that outlive the calls.
    let rc = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        let how = if blocked {
            libc::SIG_BLOCK
        } else {
            libc::SIG_UNBLOCK
        };
        libc::pthread_sigmask(how, &set, std::ptr::null_mut())
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::from_raw_os_error(rc))
    }
}

/// Copies bytes both ways until the worker side ends (it has said its last word, BYE or +OK,
/// and exited). A client that hangs up first only closes the worker's input, so the worker
/// still finishes what it was doing (a POP3 update, a delivery) before the relay ends.
async fn relay(client: Stream, worker: tokio::net::UnixStream, handle: Option<&SessionHandle>) {
    let (mut client_read, mut client_write) = tokio::io::split(client);
    let (mut worker_read, mut worker_write) = worker.into_split();
    let upstream = async {
        let n = tokio::io::copy(&mut client_read, &mut worker_write)
            .await
            .unwrap_or(0);
        let _ = worker_write.shutdown().await;
        n
    };
    let downstream = async {
        let n = tokio::io::copy(&mut worker_read, &mut client_write)
            .await
            .unwrap_or(0);
        let _ = client_write.shutdown().await;
        n
    };
    tokio::pin!(upstream, downstream);
    let (bytes_in, bytes_out) = tokio::select! {
        out = &mut downstream => (0, out),
        inn = &mut upstream => (inn, downstream.await),
    };
    if let Some(h) = handle {
        h.add_in(bytes_in as usize);
        h.add_out(bytes_out as usize);
    }
}

/// `roost worker`: runs one authenticated session on the socket passed as standard input.
pub fn main(args: WorkerArgs) -> anyhow::Result<()> {
    let family = match args.family.as_str() {
        "imap" => Family::Imap,
        "pop3" => Family::Pop3,
        other => anyhow::bail!("worker: unknown family {other:?}"),
    };
    let source = if args.source == "pam" {
        Source::Pam
    } else {
        Source::PasswdFile
    };
    let session = UserSession {
        user: MailUser {
            name: args.user,
            source,
            uid: None,
            gid: None,
            home: args.home,
        },
        family,
        location: roost_storage::MailLocation::parse(&args.location)?,
        peer: args.peer,
        local: args.local,
        tls: args.tls,
        idle_timeout: Duration::from_secs(args.idle_timeout_secs),
        max_literal: args.max_literal,
    };
    let socket =
        std::os::unix::net::UnixStream::from(std::io::stdin().as_fd().try_clone_to_owned()?);
    socket.set_nonblocking(true)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        crate::listen::shutdown::cancel_on_terminate(shutdown.clone())?;
        set_sigterm_blocked(false)?;
        let stream = Stream::Unix(tokio::net::UnixStream::from_std(socket)?);
        let conn = Connection::new(stream, session.idle_timeout, shutdown, None);
        session::run_authenticated(conn, session).await;
        anyhow::Ok(())
    })
}
