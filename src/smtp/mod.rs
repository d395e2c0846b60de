//! SMTP in roost: submission for users (RFC 6409 on 587 with STARTTLS, RFC 8314 on 465),
//! inbound SMTP for the local domains on 25, and LMTP (RFC 2033) for the MTA next door, all
//! delivering into the same storage POP3 and IMAP serve; plus the queue for the relayhost.
//!
//! ```text
//!   connection ── session.rs (one fn per command) ── policy.rs (relay + sender rules)
//!        │                                       └── resolve.rs (virtual, aliases, users)
//!        └─ DATA ── receive.rs (dot decoder → spool file) ── deliver.rs (INBOX, as the owner)
//!                                                       └── queue.rs ── runner.rs ── relay.rs
//!                                                                          └── bounce.rs (DSN)
//! ```
//! It is never an open relay: anyone may deliver to a local user, nobody unauthenticated may
//! send anywhere else (see `policy.rs`).

pub mod bounce;
pub mod deliver;
pub mod envelope;
pub mod followups;
pub mod policy;
pub mod queue;
pub mod receive;
pub mod relay;
pub mod resolve;
pub mod runner;
pub mod scan;
mod session;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use roost_protocol::line::{Line, LineDecoder};
use roost_protocol::smtp::{self, Command, Reply};
use tokio::sync::Notify;

use self::policy::Mode;
use self::queue::{Queue, QueueError};
use self::session::{Session, Step};
use crate::config::{Config, Protocol};
use crate::listen::conn::{Connection, Ended};
use crate::session::privileged::Privileged;
use crate::session::SessionContext;

/// Invalid commands tolerated before the connection is closed.
const MAX_BAD_COMMANDS: u32 = 10;

/// What every SMTP-family session of this process shares, and the queue runner uses.
pub struct Services {
    /// The queue and DATA spool.
    pub queue: Queue,
    /// Address resolution and local delivery (here, or through the master).
    pub privileged: Arc<dyn Privileged>,
    /// Wakes the queue runner when an entry was committed.
    pub wake: Notify,
    /// The configuration.
    pub config: Arc<Config>,
}

impl Services {
    /// Opens the queue; resolution and delivery go through `privileged`.
    pub fn new(
        config: &Arc<Config>,
        privileged: Arc<dyn Privileged>,
    ) -> Result<Arc<Self>, QueueError> {
        Ok(Arc::new(Self {
            queue: Queue::open(&config.smtp.queue_dir).map_err(explain_denial)?,
            privileged,
            wake: Notify::new(),
            config: Arc::clone(config),
        }))
    }
}

/// Turns a "permission denied" on the queue into an error naming the path, the user running
/// the queue (this process's) and the key that moves it; other errors pass unchanged.
fn explain_denial(error: QueueError) -> QueueError {
    match error {
        QueueError::Io { path, source }
            if source.kind() == std::io::ErrorKind::PermissionDenied =>
        {
            // SAFETY: geteuid and getegid have no preconditions and cannot fail.
            let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
            QueueError::Denied(crate::config::AccessDenied {
                blocked_at: crate::system::blocking_directory(&path, uid, gid),
                path,
                user: crate::system::current_user_name(),
                role: "the SMTP queue",
                key: "[smtp] queue_dir".into(),
            })
        }
        other => other,
    }
}

/// Creates the queue directory (0700) before privileges are dropped, owned by whoever will run
/// the queue (the login user when started as root).
pub fn prepare_queue_dir(dir: &Path, owner: Option<(u32, u32)>) -> Result<(), QueueError> {
    let queue = Queue::open(dir)?;
    if let Some((uid, gid)) = owner {
        for sub in ["", "tmp", "corrupt"] {
            let path = queue.dir().join(sub);
            let io = |source| QueueError::Io {
                path: path.clone(),
                source,
            };
            std::os::unix::fs::chown(&path, Some(uid), Some(gid)).map_err(io)?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
        }
    }
    Ok(())
}

/// The current time as RFC 5322 wants it in `Date:` and `Received:`.
pub fn rfc5322_now() -> String {
    chrono::DateTime::from_timestamp(queue::now() as i64, 0)
        .unwrap_or_default()
        .format("%a, %d %b %Y %H:%M:%S +0000")
        .to_string()
}

/// The 421 an ended connection deserves, if it can still hear one.
fn farewell(why: Ended) -> Option<Reply> {
    match why {
        Ended::IdleTimeout => Some(Reply::new(421, "4.4.2", "Timeout exceeded")),
        Ended::Shutdown => Some(Reply::new(421, "4.3.2", "Server shutting down")),
        Ended::Closed => None,
    }
}

/// Serves one SMTP, submission or LMTP connection.
pub async fn serve(mut conn: Connection, ctx: SessionContext, services: Arc<Services>) {
    let Some(mut session) = greet(&mut conn, ctx, services).await else {
        return;
    };
    let mut lines = LineDecoder::new(smtp::MAX_COMMAND_LINE);
    let mut bad = 0;
    loop {
        let replies = match next_step(&mut session, &mut conn, &mut lines, &mut bad).await {
            Step::Replies(replies) => replies,
            Step::Silent => continue,
            Step::Close(last) => {
                if let Some(r) = last {
                    let _ = conn.write(&r.encode()).await;
                }
                return;
            }
        };
        if bad >= MAX_BAD_COMMANDS {
            let _ = conn
                .write(&Reply::new(421, "4.7.0", "Too many invalid commands").encode())
                .await;
            return;
        }
        let bytes: Vec<u8> = replies.iter().flat_map(Reply::encode).collect();
        if conn.write(&bytes).await.is_err() {
            return;
        }
    }
}

/// Sends the 220 greeting of the listener's mode; the session, if the client can hear it.
async fn greet(
    conn: &mut Connection,
    ctx: SessionContext,
    services: Arc<Services>,
) -> Option<Session> {
    let host = roost_storage::host::name();
    let mode = match ctx.protocol {
        Protocol::Smtp => Mode::Inbound,
        Protocol::Lmtp => Mode::Lmtp,
        _ => Mode::Submission,
    };
    let greeting = match mode {
        Mode::Lmtp => format!("{host} LMTP roost"),
        _ => format!("{host} ESMTP roost"),
    };
    conn.write(&Reply::plain(220, &greeting).encode())
        .await
        .ok()?;
    Some(Session {
        mode,
        services,
        ctx,
        host,
        helo: None,
        esmtp: false,
        user: None,
        txn: None,
    })
}

/// Reads and carries out the next command; `bad` counts invalid ones.
async fn next_step(
    session: &mut Session,
    conn: &mut Connection,
    lines: &mut LineDecoder,
    bad: &mut u32,
) -> Step {
    match conn.read_line(lines).await {
        Ok(Line::Complete(line)) => match Command::parse(&line) {
            Ok(cmd) => {
                if let Some(h) = conn.handle() {
                    h.set_command(cmd.keyword());
                }
                command(session, conn, lines, cmd).await
            }
            Err(e) => {
                *bad += 1;
                e.reply().into()
            }
        },
        Ok(Line::TooLong) => {
            *bad += 1;
            Reply::new(500, "5.5.2", "Line too long").into()
        }
        Err(why) => Step::Close(farewell(why)),
    }
}

/// One command, one short line each.
async fn command(
    s: &mut Session,
    conn: &mut Connection,
    lines: &mut LineDecoder,
    cmd: Command,
) -> Step {
    match cmd {
        Command::Ehlo(name) => s.greet(conn, "EHLO", name),
        Command::Helo(name) => s.greet(conn, "HELO", name),
        Command::Lhlo(name) => s.greet(conn, "LHLO", name),
        Command::StartTls => s.starttls(conn).await,
        Command::Auth {
            mechanism,
            initial_response,
        } => s.auth(conn, lines, &mechanism, initial_response).await,
        Command::MailFrom { from, params } => s.mail(from, params).await,
        Command::RcptTo { to, params } => s.rcpt(to, params).await,
        Command::Data => s.data(conn).await,
        Command::Rset => {
            s.txn = None;
            Reply::new(250, "2.0.0", "Ok").into()
        }
        Command::Noop => Reply::new(250, "2.0.0", "Ok").into(),
        Command::Help => Reply::new(214, "2.0.0", "See RFC 5321, RFC 6409 and RFC 2033").into(),
        Command::Vrfy(_) => {
            Reply::new(252, "2.5.0", "Cannot VRFY user, but will accept message").into()
        }
        Command::Quit => Step::Close(Some(Reply::new(221, "2.0.0", "Bye"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_denied_queue_names_its_user_and_key() {
        let io = QueueError::Io {
            path: "/var/spool/roost/tmp".into(),
            source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        };
        let text = explain_denial(io).to_string();
        let user = crate::system::current_user_name();
        assert!(
            text.starts_with("/var/spool/roost/tmp: permission denied for user "),
            "{text}"
        );
        assert!(
            text.contains(&format!("user {user} (the SMTP queue)")),
            "{text}"
        );
        assert!(text.contains("set [smtp] queue_dir to a place"), "{text}");
        let other = QueueError::Io {
            path: "/x".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        assert!(matches!(explain_denial(other), QueueError::Io { .. }));
    }
}
