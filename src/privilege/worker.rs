//! Session workers for a root-started server: one long-lived `roost worker` per mail owner,
//! started by the master with the owner's uid and gid (see [`super::pool`]), serving every
//! session the master hands it as a task.
//!
//! A plain client connection is handed to the worker itself ([`super::lifeline`]); for TLS the
//! login process keeps the client connection (and its TLS state) and relays plaintext bytes
//! over a socketpair to the worker. Either way the worker runs the authenticated session and
//! touches the mail. This is Dovecot's login/imap split: the kernel enforces that one owner's
//! sessions cannot reach another owner's files, and nothing one session sends can end
//! another's (no recursion on input-controlled depth, bounded buffers, every session its own
//! task).

use std::io::Write;
use std::net::SocketAddr;
use std::os::fd::{AsFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::control::{b64, unb64};
use super::fdpass;
use super::lifeline::{ReportGuard, Reports};
use super::pool::SESSION_ENDED;

use crate::auth::{MailUser, Source};
use crate::config::Family;
use crate::counters::{self, WorkerEvent};
use crate::listen::conn::{Connection, Stream};
use crate::session::UserSession;
use roost_storage::quota::QuotaLimits;

/// The arguments of `roost worker`.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Descriptor on which to announce storage repairs, deliveries and retrievals to the master.
    #[arg(long)]
    events_fd: Option<RawFd>,
}

/// A session handed to a worker: a [`UserSession`], spelled out as command-line style
/// arguments (each base64 in the message, so no byte of a user name can break the framing).
#[derive(Debug, Parser)]
#[command(no_binary_name = true)]
struct SessionArgs {
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
    /// The user's storage limit in bytes, if any.
    #[arg(long)]
    quota_storage: Option<u64>,
    /// The user's message-count limit, if any.
    #[arg(long)]
    quota_messages: Option<u64>,
    /// ManageSieve: scripts the user may keep.
    #[arg(long, default_value_t = 20)]
    sieve_max_scripts: usize,
    /// ManageSieve: bytes per script.
    #[arg(long, default_value_t = 65536)]
    sieve_max_script_size: u64,
}

/// The worker's descriptor for repair announcements.
pub const EVENTS_FD: RawFd = 3;

fn to_args(s: &UserSession) -> Vec<String> {
    let mut args = vec![
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
        "--sieve-max-scripts".into(),
        s.sieve.max_scripts.to_string(),
        "--sieve-max-script-size".into(),
        s.sieve.max_size.to_string(),
    ];
    if let Some(home) = &s.user.home {
        args.push("--home".into());
        args.push(home.display().to_string());
    }
    if s.tls {
        args.push("--tls".into());
    }
    if let Some(bytes) = s.user.quota.storage {
        args.extend(["--quota-storage".into(), bytes.to_string()]);
    }
    if let Some(count) = s.user.quota.messages {
        args.extend(["--quota-messages".into(), count.to_string()]);
    }
    args
}

/// The message that hands `session` to a worker (the session socket travels beside it).
pub fn encode_session(session: &UserSession) -> Vec<u8> {
    let fields: Vec<String> = to_args(session).iter().map(|a| b64(a)).collect();
    fields.join(" ").into_bytes()
}

/// Parses a message written by [`encode_session`].
fn decode_session(message: &[u8]) -> anyhow::Result<UserSession> {
    let text = std::str::from_utf8(message)?;
    let args = text
        .split(' ')
        .map(|f| unb64(f).ok_or_else(|| anyhow::anyhow!("malformed session message")))
        .collect::<anyhow::Result<Vec<String>>>()?;
    let args = SessionArgs::try_parse_from(args)?;
    let family = match args.family.as_str() {
        "imap" => Family::Imap,
        "pop3" => Family::Pop3,
        "managesieve" => Family::Sieve,
        other => anyhow::bail!("unknown family {other:?}"),
    };
    let source = if args.source == "pam" {
        Source::Pam
    } else {
        Source::PasswdFile
    };
    Ok(UserSession {
        user: MailUser {
            name: args.user,
            source,
            uid: None,
            gid: None,
            home: args.home,
            quota: QuotaLimits {
                storage: args.quota_storage,
                messages: args.quota_messages,
            },
        },
        family,
        location: roost_storage::MailLocation::parse(&args.location)?,
        peer: args.peer,
        local: args.local,
        tls: args.tls,
        idle_timeout: Duration::from_secs(args.idle_timeout_secs),
        max_literal: args.max_literal,
        sieve: roost_storage::sieve_scripts::ScriptLimits {
            max_scripts: args.sieve_max_scripts,
            max_size: args.sieve_max_script_size,
        },
    })
}

/// Master side: starts `roost worker` as `owner`; it takes sessions from `control`.
pub fn spawn(
    owner: (u32, u32),
    control: OwnedFd,
    events: Option<RawFd>,
    privileged_gid: Option<u32>,
) -> std::io::Result<Child> {
    let mut command = Command::new("/proc/self/exe");
    command
        .arg("worker")
        .args(
            events
                .map(|_| ["--events-fd".to_string(), EVENTS_FD.to_string()])
                .into_iter()
                .flatten(),
        )
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", "/")
        .stdin(Stdio::from(control))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    if let Ok(filter) = std::env::var("RUST_LOG") {
        command.env("RUST_LOG", filter);
    }
    run_as_owner(&mut command, owner, events, privileged_gid);
    // `command` (and with it our copy of the worker's end) is dropped on return, so a worker
    // whose master dies sees EOF on its control socket.
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

/// `roost worker`: serves every session the master hands over on the control socket passed as
/// standard input, each as a task, until the master closes that socket (then finishes the
/// sessions it has) or SIGTERM (then every session says goodbye).
pub fn main(args: WorkerArgs) -> anyhow::Result<()> {
    super::keep_privileged_group_saved_only()?;
    let control =
        std::os::unix::net::UnixStream::from(std::io::stdin().as_fd().try_clone_to_owned()?);
    control.set_nonblocking(true)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        crate::listen::shutdown::cancel_on_terminate(shutdown.clone())?;
        if let Some(fd) = args.events_fd {
            announce_events_on(fd);
        }
        crate::resident::drop_startup_code_later();
        let reports = Arc::new(Reports::default());
        tokio::spawn(Arc::clone(&reports).send_changes_forever());
        set_sigterm_blocked(false)?;
        let control = Arc::new(control);
        // SAFETY: the Arc'd UnixStream owns its descriptor, which stays open and the same for
        // as long as the AsyncFd (holding one of the Arcs) lives.
        let incoming =
            unsafe { AsyncFd::register_with_interest(Arc::clone(&control), Interest::READABLE) }?;
        let tracker = TaskTracker::new();
        let mut buf = vec![0u8; super::control::MAX_MESSAGE];
        loop {
            tokio::select! {
                received = receive(&incoming, &mut buf) => match received {
                    Ok((n, fds)) if n > 0 => serve(&tracker, &control, &buf[..n], fds, (&shutdown, &reports)),
                    _ => break,
                },
                () = shutdown.cancelled() => {
                    // Every session the master handed over before its SIGTERM is queued on the
                    // socket by now: start those too, so each says goodbye.
                    while let Ok((n, fds)) = fdpass::recv(&control, &mut buf) {
                        if n == 0 {
                            break;
                        }
                        serve(&tracker, &control, &buf[..n], fds, (&shutdown, &reports));
                    }
                    break;
                }
            }
        }
        tracker.close();
        tracker.wait().await;
        anyhow::Ok(())
    })
}

/// Waits for the master's next hand-over (`0` bytes: the master closed the socket).
async fn receive(
    control: &AsyncFd<Arc<std::os::unix::net::UnixStream>>,
    buf: &mut [u8],
) -> std::io::Result<(usize, Vec<OwnedFd>)> {
    loop {
        let mut ready = control.readable().await?;
        match ready.try_io(|socket| fdpass::recv(socket.get_ref(), buf)) {
            Ok(received) => return received,
            Err(_would_block) => continue,
        }
    }
}

/// Starts the session of one hand-over as a task that tells the master when it has ended.
fn serve(
    tracker: &TaskTracker,
    control: &Arc<std::os::unix::net::UnixStream>,
    message: &[u8],
    fds: Vec<OwnedFd>,
    (shutdown, reports): (&CancellationToken, &Arc<Reports>),
) {
    let notice = EndNotice(Arc::clone(control));
    match start_session(message, fds, shutdown, reports) {
        Ok((session, reported)) => {
            // Boxed: moved into the task's block and awaited there, an unboxed session future
            // would be stored twice in the task for the whole session (kilobytes each).
            let session = Box::pin(session);
            tracker.spawn(async move {
                let _notice = notice;
                let _reported = reported;
                session.await;
            });
        }
        Err(e) => tracing::error!("worker: session refused: {e:#}"),
    }
}

/// Tells the master that a session has ended when dropped: after the session returns, and
/// also if it panicked (tokio contains a panicking task; the other sessions go on).
struct EndNotice(Arc<std::os::unix::net::UnixStream>);

impl Drop for EndNotice {
    fn drop(&mut self) {
        let _ = fdpass::send(&self.0, SESSION_ENDED, &[]);
    }
}

/// The authenticated session described by `message`, on the socket in `fds`: one end of a
/// socketpair the login process relays, or the client's own TCP socket followed by the
/// session's lifeline (then the session is reported to the login process until it ends).
fn start_session(
    message: &[u8],
    fds: Vec<OwnedFd>,
    shutdown: &CancellationToken,
    reports: &Arc<Reports>,
) -> anyhow::Result<(impl std::future::Future<Output = ()>, Option<ReportGuard>)> {
    let session = decode_session(message)?;
    let mut fds = fds.into_iter();
    let socket = fds
        .next()
        .ok_or_else(|| anyhow::anyhow!("a session without a socket"))?;
    let (stream, handle, reported) = match fds.next() {
        None => {
            let socket = std::os::unix::net::UnixStream::from(socket);
            socket.set_nonblocking(true)?;
            let stream = Stream::Unix(tokio::net::UnixStream::from_std(socket)?);
            (stream, None, None)
        }
        Some(lifeline) => {
            let client = std::net::TcpStream::from(socket);
            client.set_nonblocking(true)?;
            let route = (session.family, session.peer, session.local);
            let lifeline = std::os::unix::net::UnixStream::from(lifeline);
            let (handle, reported) =
                reports.register(route, &session.user.name, lifeline, shutdown)?;
            let stream = Stream::Plain(tokio::net::TcpStream::from_std(client)?);
            (stream, Some(handle), Some(reported))
        }
    };
    let conn = Connection::new(stream, session.idle_timeout, shutdown.clone(), handle);
    Ok((
        super::in_process::run_authenticated(conn, session),
        reported,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_managesieve_session_reaches_the_worker_with_its_limits() {
        let session = UserSession {
            user: MailUser {
                name: "alice smith".into(),
                source: Source::PasswdFile,
                uid: None,
                gid: None,
                home: None,
                quota: QuotaLimits::default(),
            },
            family: Family::Sieve,
            location: roost_storage::MailLocation::parse("maildir:/srv/mail/%u").unwrap(),
            peer: "127.0.0.1:5000".parse().unwrap(),
            local: "127.0.0.1:4190".parse().unwrap(),
            tls: true,
            idle_timeout: Duration::from_secs(60),
            max_literal: 1024,
            sieve: roost_storage::sieve_scripts::ScriptLimits {
                max_scripts: 3,
                max_size: 4096,
            },
        };
        let back = decode_session(&encode_session(&session)).unwrap();
        assert_eq!(back.family, Family::Sieve);
        assert_eq!(back.sieve, session.sieve);
        assert_eq!(back.user.name, "alice smith");
        assert!(back.tls);
    }
}
