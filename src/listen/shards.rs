//! The session threads of the one-process server: one single-threaded runtime per core, each
//! serving the connections handed to it from accept to close, as a worker process does when
//! roost starts as root.
//!
//! On the multi-threaded runtime every piece of storage work (a stat, a file lock, a read)
//! had to hand the thread's other sessions to another thread first (`block_in_place`), and
//! under load that hand-over cost more than the work. On a single-threaded runtime it simply
//! runs; the other cores serve the other threads' sessions meanwhile. Connections are dealt
//! out in turn, so the cores share the load.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

/// Blocking-pool threads per session thread (password checks, name lookups).
const MAX_BLOCKING_THREADS: usize = 4;

/// How long a session thread's leftover tasks get to end at shutdown.
const STOP_TIMEOUT: Duration = Duration::from_secs(1);

/// The session threads.
pub struct Shards {
    handles: Vec<Handle>,
    next: AtomicUsize,
    stop: CancellationToken,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Shards {
    /// Starts `count` session threads (at least one).
    pub fn start(count: usize) -> std::io::Result<Self> {
        let stop = CancellationToken::new();
        let mut handles = Vec::new();
        let mut threads = Vec::new();
        for i in 0..count.max(1) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .max_blocking_threads(MAX_BLOCKING_THREADS)
                .build()?;
            handles.push(runtime.handle().clone());
            let stop = stop.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("sessions-{i}"))
                    .spawn(move || {
                        runtime.block_on(stop.cancelled());
                        runtime.shutdown_timeout(STOP_TIMEOUT);
                    })?,
            );
        }
        Ok(Self {
            handles,
            next: AtomicUsize::new(0),
            stop,
            threads: Mutex::new(threads),
        })
    }

    /// The runtime of the thread the next connection goes to.
    pub fn next(&self) -> &Handle {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.handles.len();
        &self.handles[i]
    }

    /// Ends the session threads (after the sessions drained) and waits for them.
    pub fn stop(&self) {
        self.stop.cancel();
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        for thread in threads {
            let _ = thread.join();
        }
    }
}
