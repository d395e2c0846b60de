//! The master's session workers: a small pool of long-lived `roost worker`s per mail owner (at
//! most one per core; a user's sessions meet in one unless that user alone keeps it busy), each
//! serving many sessions as tasks.
//!
//! ```text
//!   master ── hand_over(owner, session, socket) ──► worker for (uid, gid, slot)?
//!                │   none: socketpair + `roost worker` as the owner, stdin = its end
//!                └── one SEQPACKET message: the session's arguments + the session socket
//!   worker ── "E" when a session ends ──► master: sessions − 1; at 0 and after LINGER the
//!                                          master closes the control socket: the worker exits
//! ```
//! Only the master sends sessions and only the master ends a worker (by closing its socket), so a
//! session is never handed to a worker that is on its way out. A worker that dies is forgotten
//! (its sessions end with it); the next login of its owner starts a new one.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use super::fdpass;
use super::worker;
use crate::session::UserSession;

/// How long a worker without sessions lives on, so a client that reconnects at once (or the
/// next user of a shared owner) does not pay for a new process.
const LINGER: Duration = Duration::from_secs(5);

/// How many more sessions than the owner's least busy worker a user's home worker takes
/// before the user's next session goes to that one instead.
const SPILL_AFTER: usize = 4;

/// What a worker sends the master when one of its sessions has ended.
pub const SESSION_ENDED: &[u8] = b"E";

/// Which worker serves a session: the owner's uid and gid, and a slot within the owner's pool.
type WorkerKey = (u32, u32, usize);

/// Why a session could not be handed to a worker.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// Shutdown has begun; no session starts any more.
    #[error("shutting down")]
    ShuttingDown,
    /// The worker could not be started or reached.
    #[error("cannot start worker: {0}")]
    Io(#[from] std::io::Error),
}

/// The live workers, by owner.
pub struct WorkerPool {
    state: Arc<Mutex<PoolState>>,
    /// The pipe on which workers announce repairs, deliveries and retrievals (their fd 3).
    events: RawFd,
    /// `[mail] privileged_group`'s gid, kept aside in every worker.
    privileged_gid: Option<u32>,
    /// Workers per mail owner at most.
    slots: usize,
}

#[derive(Default)]
struct PoolState {
    stopping: bool,
    workers: HashMap<WorkerKey, Running>,
    /// Every live worker's pid, including those no longer in `workers` but still draining.
    pids: Vec<u32>,
    /// Tells workers apart that came and went under the same key.
    generation: u64,
}

struct Running {
    control: Arc<UnixStream>,
    sessions: usize,
    generation: u64,
}

impl WorkerPool {
    /// An empty pool; workers report events on `events` and keep `privileged_gid` aside.
    pub fn new(events: RawFd, privileged_gid: Option<u32>) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            state: Arc::new(Mutex::new(PoolState::default())),
            events,
            privileged_gid,
            slots: cores.clamp(1, 8),
        }
    }

    /// Hands the session on `sockets` (its connection, and a handed-over client socket's
    /// lifeline) to a worker running as `owner`, starting one if none runs.
    pub fn hand_over(
        &self,
        owner: (u32, u32),
        session: &UserSession,
        sockets: &[OwnedFd],
    ) -> Result<(), PoolError> {
        let message = worker::encode_session(session);
        let fds: Vec<RawFd> = sockets.iter().map(AsRawFd::as_raw_fd).collect();
        let mut state = self.lock();
        if state.stopping {
            return Err(PoolError::ShuttingDown);
        }
        let key = (owner.0, owner.1, self.slot(&state, owner, session));
        // A worker that died since its last session cannot take this one: start another.
        for _attempt in 0..2 {
            let running = match state.workers.get_mut(&key) {
                Some(running) => running,
                None => {
                    let running = self.start(&mut state, key)?;
                    state.workers.entry(key).or_insert(running)
                }
            };
            match fdpass::send(&running.control, &message, &fds) {
                Ok(()) => {
                    running.sessions += 1;
                    return Ok(());
                }
                Err(e) => {
                    tracing::warn!(uid = owner.0, "worker unreachable, starting another: {e}");
                    state.workers.remove(&key);
                }
            }
        }
        Err(PoolError::Io(std::io::Error::other("worker unreachable")))
    }

    /// A user's sessions meet in their home worker (by name: they share its view of their
    /// mailboxes and its change notifications), and the users of one owner spread over the
    /// owner's workers. A user with many sessions at once (one busy account, a client opening
    /// a connection per folder) spills over to the owner's least busy worker once the home
    /// worker has [`SPILL_AFTER`] more sessions than it, so CPU spreads over the cores there
    /// too.
    fn slot(&self, state: &PoolState, owner: (u32, u32), session: &UserSession) -> usize {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        session.user.name.hash(&mut hasher);
        let home = (hasher.finish() % self.slots as u64) as usize;
        let load = |slot: usize| {
            state
                .workers
                .get(&(owner.0, owner.1, slot))
                .map_or(0, |running| running.sessions)
        };
        let least = (0..self.slots)
            .min_by_key(|slot| load(*slot))
            .unwrap_or(home);
        if load(home) >= load(least) + SPILL_AFTER {
            least
        } else {
            home
        }
    }

    /// Starts the worker for `key` and the tasks that follow its session ends and its exit.
    fn start(&self, state: &mut PoolState, key: WorkerKey) -> std::io::Result<Running> {
        let (ours, theirs) = fdpass::seqpacket_pair()?;
        let mut child = worker::spawn(
            (key.0, key.1),
            OwnedFd::from(theirs),
            Some(self.events),
            self.privileged_gid,
        )?;
        state.generation += 1;
        let generation = state.generation;
        let pid = child.id();
        state.pids.extend(pid);
        let reader = ours.try_clone()?;
        reader.set_nonblocking(true)?;
        // SAFETY: the UnixStream owns its descriptor, which stays open and the same until the
        // AsyncFd (which owns the stream) is dropped.
        let reader = unsafe { AsyncFd::register_with_interest(reader, Interest::READABLE) }?;
        tokio::spawn(follow_sessions(
            Arc::clone(&self.state),
            key,
            generation,
            reader,
        ));
        let state_ref = Arc::clone(&self.state);
        tokio::spawn(async move {
            let _ = child.wait().await;
            let mut state = state_ref.lock().unwrap_or_else(PoisonError::into_inner);
            state.pids.retain(|p| Some(*p) != pid);
            forget(&mut state, key, generation);
        });
        tracing::debug!(uid = key.0, slot = key.2, ?pid, "worker started");
        Ok(Running {
            control: Arc::new(ours),
            sessions: 0,
            generation,
        })
    }

    /// Refuses new sessions and sends SIGTERM to every live worker.
    pub fn stop(&self) {
        let mut state = self.lock();
        state.stopping = true;
        for pid in &state.pids {
            // SAFETY: kill(2) on a child of ours that has not been reaped (its waiter removes
            // it from this list first).
            unsafe { libc::kill(*pid as libc::pid_t, libc::SIGTERM) };
        }
    }

    /// Waits (bounded) until every worker has exited.
    pub async fn wait(&self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while tokio::time::Instant::now() < deadline {
            if self.lock().pids.is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Removes the worker of `key` from the pool if it is still the one of `generation`.
fn forget(state: &mut PoolState, key: WorkerKey, generation: u64) {
    if state
        .workers
        .get(&key)
        .is_some_and(|r| r.generation == generation)
    {
        state.workers.remove(&key);
    }
}

/// Counts the worker's session ends; once it has had none left for [`LINGER`], removes it from
/// the pool and returns, which closes the last copies of the master's end of its control socket:
/// the worker sees EOF, finishes and exits. A worker that closes its end first is forgotten.
async fn follow_sessions(
    state: Arc<Mutex<PoolState>>,
    key: WorkerKey,
    generation: u64,
    reader: AsyncFd<UnixStream>,
) {
    let mut buf = [0u8; 16];
    let mut idle = false;
    loop {
        let read = if idle {
            tokio::select! {
                read = fdpass::read_message(&reader, &mut buf) => read,
                () = tokio::time::sleep(LINGER) => {
                    let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
                    idle = sessions_of(&mut state, key, generation).is_some_and(|n| *n == 0);
                    if idle {
                        state.workers.remove(&key);
                        return;
                    }
                    continue;
                }
            }
        } else {
            fdpass::read_message(&reader, &mut buf).await
        };
        if !matches!(read, Ok(n) if n > 0 && buf[..n] == *SESSION_ENDED) {
            break;
        }
        let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
        idle = match sessions_of(&mut state, key, generation) {
            Some(n) => {
                *n = n.saturating_sub(1);
                *n == 0
            }
            None => false,
        };
    }
    let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
    forget(&mut state, key, generation);
}

/// The session count of the worker of `key`, if it is still the one of `generation`.
fn sessions_of(state: &mut PoolState, key: WorkerKey, generation: u64) -> Option<&mut usize> {
    state
        .workers
        .get_mut(&key)
        .filter(|r| r.generation == generation)
        .map(|r| &mut r.sessions)
}
