//! The registry of live sessions: who is connected, over what, doing what. The status page and
//! `roost status` read it; sessions update it as they go.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use tokio_util::sync::CancellationToken;

use crate::config::Protocol;

/// Where a connection stands, in the words an admin reads on the status page.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(
    dead_code,
    reason = "DATA is set by the SMTP session once it receives mail"
)]
pub enum SessionState {
    /// Connected, not (yet) logged in.
    Established,
    /// Logged in.
    Authenticated,
    /// IMAP: a mailbox is selected.
    Selected(String),
    /// IMAP IDLE: waiting for mailbox changes.
    Idle,
    /// SMTP/LMTP: a message is being received.
    Data,
}

impl std::fmt::Display for SessionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Established => f.write_str("ESTABLISHED"),
            Self::Authenticated => f.write_str("AUTHENTICATED"),
            Self::Selected(mailbox) => write!(f, "SELECTED {mailbox}"),
            Self::Idle => f.write_str("IDLE"),
            Self::Data => f.write_str("DATA"),
        }
    }
}

/// All live sessions of this server.
#[derive(Debug, Default)]
pub struct Registry {
    next_id: AtomicU64,
    sessions: Mutex<BTreeMap<u64, Arc<SessionEntry>>>,
}

/// What is known about one connection; shared between its task and the registry.
#[derive(Debug)]
pub struct SessionEntry {
    /// Unique for this server's lifetime.
    pub id: u64,
    /// The listener's protocol.
    pub protocol: Protocol,
    /// The client's address.
    pub peer: SocketAddr,
    /// Our address the client connected to.
    pub local: SocketAddr,
    /// When the connection was accepted.
    pub started: SystemTime,
    user: Mutex<Option<String>>,
    state: Mutex<SessionState>,
    command: Mutex<&'static str>,
    /// Fires on server shutdown or when an admin kicks the session: what its reads race.
    cancel: CancellationToken,
    /// Fires only when an admin kicks the session (a relay ends on this, not on shutdown,
    /// so its worker can still say goodbye when the server stops).
    kicked: CancellationToken,
    tls: AtomicBool,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
}

/// A point-in-time copy of a session, for display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSnapshot {
    /// See [`SessionEntry::id`].
    pub id: u64,
    /// The listener's protocol.
    pub protocol: Protocol,
    /// The client's address.
    pub peer: SocketAddr,
    /// Our address.
    pub local: SocketAddr,
    /// When it started.
    pub started: SystemTime,
    /// The user once logged in.
    pub user: Option<String>,
    /// Where the session stands.
    pub state: SessionState,
    /// The command being executed, or the last one.
    pub command: &'static str,
    /// Whether the connection is encrypted.
    pub tls: bool,
    /// Bytes received from the client.
    pub bytes_in: u64,
    /// Bytes sent to the client.
    pub bytes_out: u64,
}

impl Registry {
    /// Registers a new connection (and counts it); it is removed when the returned handle drops. Its
    /// cancellation token fires with `shutdown` or when the session is kicked.
    pub fn register(
        self: &Arc<Self>,
        protocol: Protocol,
        peer: SocketAddr,
        local: SocketAddr,
        shutdown: &CancellationToken,
    ) -> SessionHandle {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        crate::counters::global().connected(protocol);
        let entry = Arc::new(SessionEntry {
            id,
            protocol,
            peer,
            local,
            started: SystemTime::now(),
            user: Mutex::new(None),
            state: Mutex::new(SessionState::Established),
            command: Mutex::new(""),
            cancel: shutdown.child_token(),
            kicked: CancellationToken::new(),
            tls: AtomicBool::new(protocol.implicit_tls()),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
        });
        self.lock().insert(id, Arc::clone(&entry));
        SessionHandle {
            registry: Arc::clone(self),
            entry,
        }
    }

    /// Copies every live session, oldest first.
    pub fn snapshot(&self) -> Vec<SessionSnapshot> {
        self.lock().values().map(|e| e.snapshot()).collect()
    }

    /// Ends every session of `user` (as an admin's `roost kick` asks); returns how many.
    pub fn kick(&self, user: &str) -> usize {
        let sessions = self.lock();
        let mut kicked = 0;
        for entry in sessions.values() {
            let matches = entry
                .user
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .as_deref()
                == Some(user);
            if matches {
                entry.kicked.cancel();
                entry.cancel.cancel();
                kicked += 1;
            }
        }
        kicked
    }

    /// Number of live sessions.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<SessionEntry>>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl SessionEntry {
    /// Bytes received from and sent to the client so far. Every command the client sends
    /// moves the first and every answer the second, so while both stand still nothing else
    /// shown of the session changes either.
    pub fn bytes(&self) -> (u64, u64) {
        (
            self.bytes_in.load(Ordering::Relaxed),
            self.bytes_out.load(Ordering::Relaxed),
        )
    }

    /// A copy of what is known now.
    pub fn snapshot(&self) -> SessionSnapshot {
        SessionSnapshot {
            id: self.id,
            protocol: self.protocol,
            peer: self.peer,
            local: self.local,
            started: self.started,
            user: self
                .user
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
            state: self
                .state
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
            command: *self.command.lock().unwrap_or_else(PoisonError::into_inner),
            tls: self.tls.load(Ordering::Relaxed),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
        }
    }
}

/// A connection's handle on its registry entry.
#[derive(Debug)]
pub struct SessionHandle {
    registry: Arc<Registry>,
    entry: Arc<SessionEntry>,
}

impl SessionHandle {
    /// Records the logged-in user; the session is AUTHENTICATED from now on.
    pub fn set_user(&self, user: &str) {
        *self
            .entry
            .user
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(user.to_string());
        self.set_state(SessionState::Authenticated);
    }

    /// Forgets the logged-in user (SMTP AUTH before STARTTLS does not survive the handshake).
    pub fn clear_user(&self) {
        *self
            .entry
            .user
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
        self.set_state(SessionState::Established);
    }

    /// Records where the session stands (SELECTED, IDLE, DATA, back to AUTHENTICATED).
    pub fn set_state(&self, state: SessionState) {
        *self
            .entry
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = state;
    }

    /// What the session's reads race: fires on shutdown or when it is kicked.
    pub fn cancel_token(&self) -> CancellationToken {
        self.entry.cancel.clone()
    }

    /// Fires only when an admin kicks the session.
    pub fn kicked(&self) -> CancellationToken {
        self.entry.kicked.clone()
    }

    /// Records the command being executed.
    pub fn set_command(&self, command: &'static str) {
        *self
            .entry
            .command
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = command;
    }

    /// Records that the connection is now encrypted.
    pub fn set_tls(&self) {
        self.entry.tls.store(true, Ordering::Relaxed);
    }

    /// Counts bytes received.
    pub fn add_in(&self, n: usize) {
        self.entry.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Counts bytes sent.
    pub fn add_out(&self, n: usize) {
        self.entry.bytes_out.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// The entry itself, for a worker that reports the session to the login process.
    pub fn entry(&self) -> Arc<SessionEntry> {
        Arc::clone(&self.entry)
    }
}

impl Drop for SessionHandle {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.entry.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_come_and_go() {
        let reg = Arc::new(Registry::default());
        let peer = "127.0.0.1:5000".parse().unwrap();
        let local = "127.0.0.1:143".parse().unwrap();
        let shutdown = CancellationToken::new();
        let a = reg.register(Protocol::Imap, peer, local, &shutdown);
        let b = reg.register(Protocol::Pop3s, peer, local, &shutdown);
        assert_eq!(reg.snapshot()[0].state, SessionState::Established);
        a.set_user("alice");
        a.set_command("LOGIN");
        a.add_in(10);
        let snap = reg.snapshot();
        assert_eq!(snap.len(), 2);
        assert_eq!(snap[0].user.as_deref(), Some("alice"));
        assert_eq!(snap[0].state.to_string(), "AUTHENTICATED");
        assert_eq!(
            (snap[0].command, snap[0].bytes_in, snap[0].tls),
            ("LOGIN", 10, false)
        );
        assert!(snap[1].tls);
        drop(a);
        assert_eq!(reg.len(), 1);
        drop(b);
        assert_eq!(reg.len(), 0);
    }

    #[test]
    fn kick_ends_only_that_users_sessions_and_shutdown_is_not_a_kick() {
        let reg = Arc::new(Registry::default());
        let addr = "127.0.0.1:143".parse().unwrap();
        let shutdown = CancellationToken::new();
        let alice = reg.register(Protocol::Imap, addr, addr, &shutdown);
        let bob = reg.register(Protocol::Pop3, addr, addr, &shutdown);
        let anonymous = reg.register(Protocol::Imap, addr, addr, &shutdown);
        alice.set_user("alice");
        bob.set_user("bob");
        assert_eq!(reg.kick("alice"), 1);
        assert!(alice.cancel_token().is_cancelled() && alice.kicked().is_cancelled());
        assert!(!bob.cancel_token().is_cancelled() && !anonymous.cancel_token().is_cancelled());
        assert_eq!(reg.kick("nobody-here"), 0);
        shutdown.cancel();
        assert!(bob.cancel_token().is_cancelled() && !bob.kicked().is_cancelled());
    }
}
