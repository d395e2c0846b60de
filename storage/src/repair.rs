//! Self-repair bookkeeping: every repair is logged once at WARN with the mailbox, what was
//! wrong and what was done, and counted for the status page.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

static REPAIRS: AtomicU64 = AtomicU64::new(0);

/// Logs and counts one repair.
pub fn report(mailbox: &Path, what_was_wrong: &str, what_was_done: &str) {
    REPAIRS.fetch_add(1, Ordering::Relaxed);
    tracing::warn!(mailbox = %mailbox.display(), "{what_was_wrong}: {what_was_done}");
}

/// Repairs made by this process so far.
pub fn count() -> u64 {
    REPAIRS.load(Ordering::Relaxed)
}
