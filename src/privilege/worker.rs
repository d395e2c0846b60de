//! Per-session worker processes for a root-started server.
//!
//! The listener process keeps the client connection (and its TLS state) and relays plaintext
//! bytes over a socketpair to `roost worker`, started with the mail owner's uid and gid, which
//! runs the authenticated session and touches the mail. This is Dovecot's login/imap split in
//! miniature: the kernel enforces that one user's session cannot reach another user's files.

use crate::listen::watch::CommandWatch;
use std::io::Write;
use std::net::SocketAddr;
use std::os::fd::{AsFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

use super::control::{MasterClient, Request};

use crate::auth::{MailUser, Source};
use crate::config::Family;
use crate::counters::{self, WorkerEvent};
use crate::listen::conn::{Connection, Stream};
use crate::listen::registry::SessionHandle;
use crate::session::{SessionContext, UserSession};

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
    /// Descriptor on which to announce storage repairs, deliveries and retrievals to the master.
    #[arg(long)]
    events_fd: Option<RawFd>,
}

/// The worker's descriptor for repair announcements.
pub const EVENTS_FD: RawFd = 3;

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
        s.location.to_string(),
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

/// Master side: starts `roost worker` as `owner`, serving the session on `socket`.
pub fn spawn(
    session: &UserSession,
    owner: (u32, u32),
    socket: OwnedFd,
    events: Option<RawFd>,
    privileged_gid: Option<u32>,
) -> std::io::Result<Child> {
    let mut command = Command::new("/proc/self/exe");
    command
        .args(to_args(session))
        .args(
            events
                .map(|_| ["--events-fd".to_string(), EVENTS_FD.to_string()])
                .into_iter()
                .flatten(),
        )
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
        .stdin(Stdio::from(socket))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    if let Ok(filter) = std::env::var("RUST_LOG") {
        command.env("RUST_LOG", filter);
    }
    run_as_owner(&mut command, owner, events, privileged_gid);
    // `command` (and with it our copy of the socket) is dropped on return, so the worker holds
    // the only reference and its exit is seen as EOF by the relay.
    command.spawn()
}

/// Makes `command` start as the mail owner: the events pipe (if any) as its fd 3, the owner's
/// gid as its only group, the privileged group (if any) kept aside as its real gid, the
/// owner's uid, with SIGTERM blocked until the child installs its own handler.
///
/// The privileged group is never effective nor supplementary: exec resets the saved
/// set-group-ID to the effective gid but keeps the real one, so it rides over exec as the real
/// gid and the worker's first act ([`super::keep_privileged_group_saved_only`]) moves it to
/// the saved set-group-ID, from which only the mbox dotlock code takes it, one thread and one
/// directory operation at a time (Dovecot's mail_privileged_group).
pub fn run_as_owner(
    command: &mut Command,
    owner: (u32, u32),
    events: Option<RawFd>,
    privileged_gid: Option<u32>,
) {
    // SAFETY: the closure runs between fork and exec and only makes async-signal-safe calls
    // (dup2, setgroups, setresgid, setuid, sigprocmask) on plain values it owns. SIGTERM stays
    // blocked (pending, not lost) until the worker has installed its handler, so a shutdown
    // racing a login still ends with the protocol's goodbye.
    // The repair-events pipe becomes the worker's fd 3 (dup2 is async-signal-safe too, and the
    // copy it makes is not close-on-exec, unlike every other descriptor of ours). Then the
    // identity: the owner's primary group as the only supplementary group, gids, uid — in that
    // order, while still root.
    unsafe {
        command.pre_exec(move || {
            if let Some(fd) = events {
                if libc::dup2(fd, EVENTS_FD) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            let (uid, gid) = owner;
            let groups = [gid];
            let aside = privileged_gid.unwrap_or(gid);
            if libc::setgroups(1, groups.as_ptr()) != 0
                || libc::setresgid(aside, gid, aside) != 0
                || libc::setuid(uid) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            set_sigterm_blocked(true)
        });
    }
}

/// Login side: has the master start this user's worker, then relays the client to it.
pub async fn relay_via_master(
    conn: Connection,
    ctx: &SessionContext,
    master: &MasterClient,
    ticket: String,
) {
    let family = ctx.protocol.family();
    let (stream, leftover, handle) = conn.into_parts();
    let Some(mut client) = stream else { return };
    let started = async {
        let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
        let request = Request::Spawn {
            ticket,
            family,
            peer: ctx.peer,
            local: ctx.local,
            tls: matches!(client, Stream::Tls(_)),
        };
        master
            .spawn_worker(&request, &OwnedFd::from(theirs))
            .await?;
        ours.set_nonblocking(true)?;
        let mut worker = tokio::net::UnixStream::from_std(ours)?;
        worker.write_all(&leftover).await?;
        std::io::Result::Ok(worker)
    };
    match started.await {
        Ok(worker) => relay(client, worker, handle.as_ref(), family).await,
        Err(e) => {
            let stopping = e.to_string().contains("shutting down");
            if !stopping {
                tracing::error!(peer = %ctx.peer, "cannot start the session worker: {e}");
            }
            let bye: &[u8] = match (family, stopping) {
                (Family::Imap, true) => b"* BYE Server shutting down.\r\n",
                (Family::Imap, false) => {
                    b"* BYE [UNAVAILABLE] Internal error; the details are logged.\r\n"
                }
                (_, true) => b"-ERR [SYS/TEMP] Server shutting down.\r\n",
                (_, false) => b"-ERR [SYS/TEMP] Internal error; the details are logged.\r\n",
            };
            let _ = client.write_all(bye).await;
        }
    }
}

/// Tells the master about every storage repair, delivery and retrieval this worker makes,
/// one byte each (see [`WorkerEvent`]), for the status page's counters.
pub fn announce_events_on(fd: RawFd) {
    // SAFETY: the master opened this descriptor for us (dup2 before exec) and nothing else in
    // this process uses it; it is owned from here on by the hooks.
    let pipe = Arc::new(unsafe { std::fs::File::from_raw_fd(fd) });
    let send = move |event: WorkerEvent| {
        let _ = (&*pipe).write_all(&[event.byte()]);
    };
    let repairs = send.clone();
    roost_storage::repair::on_repair(move || repairs(WorkerEvent::Repair));
    counters::forward_to(send);
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
/// still finishes what it was doing (a POP3 update, a delivery) before the relay ends. Byte
/// counts reach the session registry as they flow.
async fn relay(
    client: Stream,
    worker: tokio::net::UnixStream,
    handle: Option<&SessionHandle>,
    family: Family,
) {
    let (client_read, client_write) = tokio::io::split(client);
    let (worker_read, worker_write) = worker.into_split();
    let mut watch = CommandWatch::new(family);
    let upstream = pump(client_read, worker_write, |bytes| {
        if let Some(h) = handle {
            h.add_in(bytes.len());
            watch.feed(bytes, h);
        }
    });
    let downstream = pump(worker_read, client_write, |bytes| {
        if let Some(h) = handle {
            h.add_out(bytes.len());
        }
    });
    // An admin's kick drops both directions: the client is disconnected and the worker reads
    // EOF, so it ends as if the client had hung up (POP3 then deletes nothing).
    let kicked = async {
        match handle {
            Some(h) => h.kicked().cancelled_owned().await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(upstream, downstream);
    tokio::select! {
        _ = &mut downstream => {}
        _ = kicked => {}
        _ = &mut upstream => downstream.await,
    }
}

/// Copies until EOF or error, then shuts the writing side down; `seen` looks at what passed.
async fn pump<R, W>(mut from: R, mut to: W, mut seen: impl FnMut(&[u8]))
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
        seen(&buf[..n]);
    }
    let _ = to.shutdown().await;
}

/// `roost worker`: runs one authenticated session on the socket passed as standard input.
pub fn main(args: WorkerArgs) -> anyhow::Result<()> {
    super::keep_privileged_group_saved_only()?;
    let events_fd = args.events_fd;
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
        if let Some(fd) = events_fd {
            announce_events_on(fd);
        }
        set_sigterm_blocked(false)?;
        let stream = Stream::Unix(tokio::net::UnixStream::from_std(socket)?);
        let conn = Connection::new(stream, session.idle_timeout, shutdown, None);
        super::in_process::run_authenticated(conn, session).await;
        anyhow::Ok(())
    })
}
