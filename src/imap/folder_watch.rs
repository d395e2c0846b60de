//! Change notification for IDLE, shared by the whole process: one inotify instance
//! ([`Watches`]), one set of watches per folder however many sessions idle in it, and a task
//! that turns inotify events into a wake-up for each subscribed session.
//!
//! ```text
//!   inotify (one per process) ── reader task ── wd → folder ── watch::Sender<u64> (a counter)
//!                                                                └─► each IDLE session's Receiver
//! ```
//! A session subscribes when it enters IDLE and unsubscribes when it leaves; the last one out
//! removes the folder's watches. This is what lets thousands of connections IDLE under one uid,
//! where one inotify instance each would hit the kernel's default of 128 per user.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use roost_storage::notify::{Watches, OVERFLOW};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The process's watches and who listens to which folder.
struct Feed {
    watches: AsyncFd<Watches>,
    folders: Mutex<Folders>,
}

#[derive(Default)]
struct Folders {
    by_path: HashMap<PathBuf, Folder>,
    by_wd: HashMap<i32, PathBuf>,
}

struct Folder {
    wds: Vec<i32>,
    changes: watch::Sender<u64>,
    subscribers: usize,
}

/// The feed of this process, and the task that reads it (re-made if the runtime that ran the
/// task has gone, as between the unit tests' runtimes).
static FEED: Mutex<Option<(Arc<Feed>, JoinHandle<()>)>> = Mutex::new(None);

/// A session's interest in one folder's changes; dropping it unsubscribes.
pub struct Subscription {
    feed: Arc<Feed>,
    path: PathBuf,
    changes: watch::Receiver<u64>,
}

impl Subscription {
    /// Watches `path` (a maildir folder or an mbox file) for this session.
    pub fn new(path: &Path) -> std::io::Result<Self> {
        let feed = feed()?;
        let changes = {
            let mut folders = feed.folders.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(folder) = folders.by_path.get_mut(path) {
                folder.subscribers += 1;
                folder.changes.subscribe()
            } else {
                let wds = feed
                    .watches
                    .get_ref()
                    .add(path)
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
                let (changes, receiver) = watch::channel(0);
                for wd in &wds {
                    folders.by_wd.insert(*wd, path.to_path_buf());
                }
                let folder = Folder {
                    wds,
                    changes,
                    subscribers: 1,
                };
                folders.by_path.insert(path.to_path_buf(), folder);
                receiver
            }
        };
        Ok(Self {
            feed,
            path: path.to_path_buf(),
            changes,
        })
    }

    /// Marks every change so far as seen (after a pause that let a burst of events settle).
    pub fn settle(&mut self) {
        self.changes.borrow_and_update();
    }

    /// Resolves at the folder's next change (or at once if one came since the last call).
    pub async fn changed(&mut self) {
        if self.changes.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut folders = self
            .feed
            .folders
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(folder) = folders.by_path.get_mut(&self.path) else {
            return;
        };
        folder.subscribers -= 1;
        if folder.subscribers == 0 {
            if let Some(folder) = folders.by_path.remove(&self.path) {
                for wd in &folder.wds {
                    folders.by_wd.remove(wd);
                }
                self.feed.watches.get_ref().remove(&folder.wds);
            }
        }
    }
}

/// The process's feed, started on first use in the current runtime.
fn feed() -> std::io::Result<Arc<Feed>> {
    let mut slot = FEED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((feed, reader)) = slot.as_ref() {
        if !reader.is_finished() {
            return Ok(Arc::clone(feed));
        }
    }
    let watches = Watches::new()?;
    // SAFETY: `Watches` owns its inotify descriptor for its whole life and always reports that
    // same descriptor, which is what registering requires.
    let watches = unsafe { AsyncFd::register_with_interest(watches, Interest::READABLE) }?;
    let feed = Arc::new(Feed {
        watches,
        folders: Mutex::new(Folders::default()),
    });
    let reader = tokio::spawn(read_events(Arc::clone(&feed)));
    *slot = Some((Arc::clone(&feed), reader));
    Ok(feed)
}

/// Wakes the subscribers of every folder an event names (all of them after a queue overflow).
async fn read_events(feed: Arc<Feed>) {
    loop {
        let Ok(mut ready) = feed.watches.readable().await else {
            return;
        };
        let wds = ready.get_inner().read();
        ready.clear_ready();
        let folders = feed.folders.lock().unwrap_or_else(PoisonError::into_inner);
        let bump = |folder: &Folder| folder.changes.send_modify(|n| *n = n.wrapping_add(1));
        if wds.contains(&OVERFLOW) {
            folders.by_path.values().for_each(bump);
            continue;
        }
        for wd in wds {
            if let Some(folder) = folders.by_wd.get(&wd).and_then(|p| folders.by_path.get(p)) {
                bump(folder);
            }
        }
    }
}
