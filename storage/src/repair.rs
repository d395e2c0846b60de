//! Self-repair bookkeeping: every repair is logged once at WARN with the mailbox, what was
//! wrong and what was done, and counted for the status page.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

static REPAIRS: AtomicU64 = AtomicU64::new(0);

type Hook = Box<dyn Fn() + Send + Sync>;
static HOOK: OnceLock<Hook> = OnceLock::new();

/// Installs a function called after every repair: a worker process uses it to tell the master,
/// whose status page counts repairs over all sessions. Only the first call has effect.
pub fn on_repair(hook: impl Fn() + Send + Sync + 'static) {
    let _ = HOOK.set(Box::new(hook));
}

/// Logs and counts one repair.
pub fn report(mailbox: &Path, what_was_wrong: &str, what_was_done: &str) {
    REPAIRS.fetch_add(1, Ordering::Relaxed);
    tracing::warn!(mailbox = %mailbox.display(), "{what_was_wrong}: {what_was_done}");
    if let Some(hook) = HOOK.get() {
        hook();
    }
}

/// Repairs made by this process so far.
pub fn count() -> u64 {
    REPAIRS.load(Ordering::Relaxed)
}
