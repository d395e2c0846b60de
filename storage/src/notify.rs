//! Change notification: tells a waiting session (IMAP IDLE) that a folder changed on disk,
//! whoever changed it — another roost worker, a delivery, Postfix, procmail or Dovecot.
//!
//! Built on inotify watches of `cur/` and `new/` (and the directory itself, for the index and
//! uidlist). Sans-async on purpose: the descriptor is exposed so the session layer can wait on it
//! with its own reactor (tokio's `AsyncFd`) and then call [`Watcher::drain`] and re-sync.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

use crate::Error;

/// Watches one mailbox folder for changes.
#[derive(Debug)]
pub struct Watcher {
    fd: OwnedFd,
}

const EVENTS: u32 = libc::IN_CREATE
    | libc::IN_DELETE
    | libc::IN_MOVED_FROM
    | libc::IN_MOVED_TO
    | libc::IN_CLOSE_WRITE
    | libc::IN_ATTRIB;

impl Watcher {
    /// Watches the folder at `root` (a maildir) or the file at `root` (an mbox).
    pub fn new(root: &Path) -> Result<Self, Error> {
        // SAFETY: inotify_init1 takes flags only and returns a new descriptor or -1.
        let raw = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if raw < 0 {
            return Err(Error::io(root, io::Error::last_os_error()));
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let watcher = Self {
            fd: unsafe { OwnedFd::from_raw_fd(raw) },
        };
        let targets = [root.join("cur"), root.join("new"), root.to_path_buf()];
        let mut watched = 0;
        for target in targets.iter().filter(|t| t.exists()) {
            let path = CString::new(target.as_os_str().as_bytes())
                .map_err(|_| Error::io(target, io::Error::from(io::ErrorKind::InvalidInput)))?;
            // SAFETY: the descriptor is ours and the path is a valid NUL-terminated string.
            let wd =
                unsafe { libc::inotify_add_watch(watcher.fd.as_raw_fd(), path.as_ptr(), EVENTS) };
            if wd < 0 {
                return Err(Error::io(target, io::Error::last_os_error()));
            }
            watched += 1;
        }
        if watched == 0 {
            return Err(Error::io(root, io::Error::from(io::ErrorKind::NotFound)));
        }
        Ok(watcher)
    }

    /// Reads and discards pending events; true if there were any.
    pub fn drain(&self) -> bool {
        let mut buf = [0u8; 4096];
        let mut any = false;
        loop {
            // SAFETY: reading into a buffer we own, with its true length.
            let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                return any;
            }
            any = true;
        }
    }

    /// Blocks up to `timeout` for a change (for callers without a reactor); true if one came.
    pub fn wait(&self, timeout: Duration) -> bool {
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd, count 1.
        let ready = unsafe { libc::poll(&mut pfd, 1, ms) };
        ready > 0 && self.drain()
    }
}

impl AsRawFd for Watcher {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maildir::Maildir;
    use crate::{Flags, Mailbox};
    use std::collections::BTreeSet;

    #[test]
    fn deliveries_and_flag_changes_by_others_wake_the_watcher() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("Maildir");
        let mut md = Maildir::new(&root);
        md.sync().unwrap();
        let watcher = Watcher::new(&root).unwrap();
        assert!(!watcher.wait(Duration::from_millis(50)), "quiet folder");
        let other = root.clone();
        let delivery = std::thread::spawn(move || {
            Maildir::new(other)
                .deliver(&mut &b"Subject: new\r\n\r\n"[..])
                .unwrap();
        });
        assert!(
            watcher.wait(Duration::from_secs(5)),
            "a delivery into new/ is seen"
        );
        delivery.join().unwrap();
        let snap = md.sync().unwrap();
        watcher.drain();
        let mut other = Maildir::new(&root);
        other.sync().unwrap();
        other
            .store(
                &[snap.messages[0].uid],
                crate::FlagChange::Add,
                Flags::SEEN,
                &BTreeSet::new(),
            )
            .unwrap();
        assert!(
            watcher.wait(Duration::from_secs(5)),
            "a flag change (rename in cur/) is seen"
        );
        assert!(Watcher::new(&dir.path().join("nope")).is_err());
    }
}
