//! A plain client connection handed to its worker (roost started as root): the login process
//! passes the client's socket itself, so no byte of the session passes through it any more,
//! and keeps only the session's lifeline, one end of a SEQPACKET pair whose other end the
//! worker holds for as long as the session lasts.
//!
//! ```text
//!   client ═══ TCP ═══ worker (runs the session, counts bytes, knows its command and state)
//!                        │ lifeline: a report when the session changed, at most once a second
//!   login process ◄──────┘ EOF when the session (or the worker) ends
//! ```
//!
//! The login process keeps a copy of the client socket's descriptor, never read nor polled:
//! an admin's kick shuts the connection down through it (the client sees the connection
//! close, the worker reads EOF and ends the session as if the client had hung up), and when
//! the lifeline ends it drops the copy and the session's status entry.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio_util::sync::CancellationToken;

use super::control::{b64, unb64};
use crate::config::{Family, Protocol};
use crate::listen::registry::{
    Registry, SessionEntry, SessionHandle, SessionSnapshot, SessionState,
};
use crate::listen::watch::known_keyword;

/// How often a worker looks for sessions whose status changed.
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// Longest report read; a longer one is dropped whole. Mailbox names are cut to fit.
const MAX_REPORT: usize = 1024;

/// Longest mailbox name reported (before base64).
const MAX_REPORTED_MAILBOX: usize = 600;

/// Worker side: the sessions whose status goes to the login process, each with its lifeline.
#[derive(Default)]
pub struct Reports {
    registry: Arc<Registry>,
    sessions: Mutex<HashMap<u64, Reported>>,
}

struct Reported {
    lifeline: UnixStream,
    entry: Arc<SessionEntry>,
    /// The byte counts last reported (see [`SessionEntry::bytes`]).
    sent: (u64, u64),
}

/// Ends a session's reports when dropped (after the session, also if it panicked): closing
/// the lifeline tells the login process that the session is over.
pub struct ReportGuard {
    reports: Arc<Reports>,
    id: u64,
}

impl Drop for ReportGuard {
    fn drop(&mut self) {
        self.reports.lock().remove(&self.id);
    }
}

impl Reports {
    /// A status entry for `user`'s session (of `family`) that the login process will hear of.
    pub fn register(
        self: &Arc<Self>,
        (family, peer, local): (Family, SocketAddr, SocketAddr),
        user: &str,
        lifeline: UnixStream,
        shutdown: &CancellationToken,
    ) -> std::io::Result<(SessionHandle, ReportGuard)> {
        lifeline.set_nonblocking(true)?;
        let protocol = match family {
            Family::Pop3 => Protocol::Pop3,
            Family::Sieve => Protocol::Sieve,
            _ => Protocol::Imap,
        };
        let handle = self.registry.register(protocol, peer, local, shutdown);
        handle.set_user(user);
        let entry = handle.entry();
        let id = entry.id;
        let sent = entry.bytes();
        self.lock().insert(
            id,
            Reported {
                lifeline,
                entry,
                sent,
            },
        );
        let guard = ReportGuard {
            reports: Arc::clone(self),
            id,
        };
        Ok((handle, guard))
    }

    /// Sends, once a second, what changed in each session since its last report. A lifeline
    /// whose buffer is full (a login process that does not keep up) is tried again next time.
    pub async fn send_changes_forever(self: Arc<Self>) {
        let mut tick = tokio::time::interval(REPORT_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tick.tick().await;
            for reported in self.lock().values_mut() {
                let bytes = reported.entry.bytes();
                if bytes == reported.sent {
                    continue;
                }
                let snapshot = reported.entry.snapshot();
                if (&reported.lifeline)
                    .write(encode(&snapshot).as_bytes())
                    .is_ok()
                {
                    reported.sent = (snapshot.bytes_in, snapshot.bytes_out);
                }
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Reported>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// `<bytes in> <bytes out> <command or -> <state>`, the state `A`, `I`, `D` or `S:<base64>`.
fn encode(snapshot: &SessionSnapshot) -> String {
    let command = if snapshot.command.is_empty() {
        "-"
    } else {
        snapshot.command
    };
    let state = match &snapshot.state {
        SessionState::Selected(mailbox) => {
            let mut end = mailbox.len().min(MAX_REPORTED_MAILBOX);
            while !mailbox.is_char_boundary(end) {
                end -= 1;
            }
            format!("S:{}", b64(&mailbox[..end]))
        }
        SessionState::Idle => "I".into(),
        SessionState::Data => "D".into(),
        SessionState::Established | SessionState::Authenticated => "A".into(),
    };
    format!(
        "{} {} {command} {state}",
        snapshot.bytes_in, snapshot.bytes_out
    )
}

/// What a report says; `None` for a malformed one.
#[derive(Debug, PartialEq, Eq)]
struct Report {
    bytes_in: u64,
    bytes_out: u64,
    command: Option<&'static str>,
    state: SessionState,
}

fn decode(message: &[u8]) -> Option<Report> {
    let text = std::str::from_utf8(message).ok()?;
    let fields: Vec<&str> = text.split(' ').collect();
    let [bytes_in, bytes_out, command, state] = fields.as_slice() else {
        return None;
    };
    let state = match *state {
        "A" => SessionState::Authenticated,
        "I" => SessionState::Idle,
        "D" => SessionState::Data,
        other => SessionState::Selected(unb64(other.strip_prefix("S:")?)?),
    };
    Some(Report {
        bytes_in: bytes_in.parse().ok()?,
        bytes_out: bytes_out.parse().ok()?,
        command: known_keyword(command),
        state,
    })
}

/// Login side: shows the worker's reports in the session's status entry until the lifeline
/// ends, or shuts the client connection down when an admin kicks the session.
///
/// An `async` block rather than an `async fn`, which would keep a second copy of its
/// arguments for as long as the connection lasts.
#[allow(
    clippy::manual_async_fn,
    reason = "an async fn would store its arguments twice"
)]
pub fn follow(
    lifeline: UnixStream,
    client: std::net::TcpStream,
    handle: Option<SessionHandle>,
) -> impl std::future::Future<Output = ()> + Send {
    async move {
        let registered = lifeline.set_nonblocking(true).and_then(|()| {
            // SAFETY: the AsyncFd owns the stream, whose descriptor stays open and the same
            // until the AsyncFd is dropped.
            Ok(unsafe { AsyncFd::register_with_interest(lifeline, Interest::READABLE) }?)
        });
        let lifeline = match registered {
            Ok(lifeline) => lifeline,
            Err(e) => {
                tracing::error!("session lifeline: {e}");
                return;
            }
        };
        let mut counted = (0, 0);
        loop {
            let kicked = async {
                match &handle {
                    Some(h) => h.kicked().cancelled_owned().await,
                    None => std::future::pending().await,
                }
            };
            let mut ready = tokio::select! {
                ready = lifeline.readable() => match ready {
                    Ok(ready) => ready,
                    Err(_) => return,
                },
                () = kicked => {
                    let _ = client.shutdown(Shutdown::Both);
                    return;
                }
            };
            let read = ready
                .try_io(|socket| apply_reports(socket.get_ref(), handle.as_ref(), &mut counted));
            if let Ok(_ended) = read {
                return;
            }
        }
    }
}

/// Reads every report waiting on the lifeline into `handle` (`counted`: the byte counts
/// already added from earlier reports) until it would block, which is an error for
/// `try_io`'s sake; `Ok` when the lifeline has ended.
fn apply_reports(
    lifeline: &UnixStream,
    handle: Option<&SessionHandle>,
    counted: &mut (u64, u64),
) -> std::io::Result<()> {
    let mut buf = [0u8; MAX_REPORT];
    loop {
        let n = match (&mut &*lifeline).read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Err(e),
            Err(_) => return Ok(()),
        };
        let (Some(report), Some(handle)) = (decode(&buf[..n]), handle) else {
            continue;
        };
        handle.add_in(report.bytes_in.saturating_sub(counted.0) as usize);
        handle.add_out(report.bytes_out.saturating_sub(counted.1) as usize);
        *counted = (
            counted.0.max(report.bytes_in),
            counted.1.max(report.bytes_out),
        );
        if let Some(command) = report.command {
            handle.set_command(command);
        }
        handle.set_state(report.state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(state: SessionState, command: &'static str) -> SessionSnapshot {
        SessionSnapshot {
            id: 1,
            protocol: Protocol::Imap,
            peer: "127.0.0.1:5000".parse().unwrap(),
            local: "127.0.0.1:143".parse().unwrap(),
            started: std::time::SystemTime::now(),
            user: Some("alice".into()),
            state,
            command,
            tls: false,
            bytes_in: 12,
            bytes_out: 3400,
        }
    }

    #[test]
    fn reports_carry_counts_command_and_state_and_hostile_names_cannot_break_them() {
        let name = "Lists/ro ost \u{e9}".to_string();
        let report =
            decode(encode(&snapshot(SessionState::Selected(name.clone()), "FETCH")).as_bytes())
                .unwrap();
        assert_eq!(
            report,
            Report {
                bytes_in: 12,
                bytes_out: 3400,
                command: Some("FETCH"),
                state: SessionState::Selected(name),
            }
        );
        let idle = decode(encode(&snapshot(SessionState::Idle, "")).as_bytes()).unwrap();
        assert_eq!((idle.command, idle.state), (None, SessionState::Idle));
        let long = "\u{e9}".repeat(MAX_REPORT);
        let cut = encode(&snapshot(SessionState::Selected(long), "SELECT"));
        assert!(cut.len() < MAX_REPORT, "{}", cut.len());
        assert!(decode(cut.as_bytes()).is_some());
        for bad in ["", "1 2 NOOP", "x 2 NOOP A", "1 2 NOOP S:***", "1 2 NOOP Q"] {
            assert_eq!(decode(bad.as_bytes()), None, "{bad:?}");
        }
    }
}
