//! Change notification: tells a waiting session (IMAP IDLE) that a folder changed on disk,
//! whoever changed it — another roost worker, a delivery, Postfix, procmail or Dovecot.
//!
//! Built on inotify watches of `cur/` and `new/` (and the directory itself, for the index and
//! uidlist). Sans-async on purpose: the descriptor is exposed so the session layer can wait on it
//! with its own reactor (tokio's `AsyncFd`) and then call [`Watches::read`] and re-sync.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::Error;

const EVENTS: u32 = libc::IN_CREATE
    | libc::IN_DELETE
    | libc::IN_MOVED_FROM
    | libc::IN_MOVED_TO
    | libc::IN_CLOSE_WRITE
    | libc::IN_ATTRIB;

/// One inotify instance for many folders: a process's IDLE sessions share it, so a thousand
/// idling clients cost one instance (the kernel allows 128 per user by default) and one watch
/// per watched directory, not a thousand instances.
#[derive(Debug)]
pub struct Watches {
    fd: OwnedFd,
}

/// The watch descriptor inotify reports for queue overflow: every folder may have changed.
pub const OVERFLOW: i32 = -1;

impl Watches {
    /// A new, empty instance (non-blocking, close-on-exec).
    pub fn new() -> io::Result<Self> {
        // SAFETY: inotify_init1 takes flags only and returns a new descriptor or -1.
        let raw = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        Ok(Self {
            fd: unsafe { OwnedFd::from_raw_fd(raw) },
        })
    }

    /// Watches the folder at `root` (a maildir: it, `cur/` and `new/`; an mbox: the file) and
    /// returns the watch descriptors. inotify gives one descriptor per inode, so watching a
    /// folder twice returns the same descriptors.
    pub fn add(&self, root: &Path) -> Result<Vec<i32>, Error> {
        let targets = [root.join("cur"), root.join("new"), root.to_path_buf()];
        let mut wds = Vec::new();
        for target in targets.iter().filter(|t| t.exists()) {
            let path = CString::new(target.as_os_str().as_bytes())
                .map_err(|_| Error::io(target, io::Error::from(io::ErrorKind::InvalidInput)))?;
            // SAFETY: the descriptor is ours and the path is a valid NUL-terminated string.
            let wd = unsafe { libc::inotify_add_watch(self.fd.as_raw_fd(), path.as_ptr(), EVENTS) };
            if wd < 0 {
                let e = io::Error::last_os_error();
                self.remove(&wds);
                return Err(Error::io(target, e));
            }
            wds.push(wd);
        }
        if wds.is_empty() {
            return Err(Error::io(root, io::Error::from(io::ErrorKind::NotFound)));
        }
        Ok(wds)
    }

    /// Stops watching (descriptors the kernel already dropped, e.g. of a deleted folder, are
    /// ignored).
    pub fn remove(&self, wds: &[i32]) {
        for wd in wds {
            // SAFETY: a plain system call on our descriptor and an integer.
            unsafe { libc::inotify_rm_watch(self.fd.as_raw_fd(), *wd) };
        }
    }

    /// Reads every pending event; returns the watch descriptors they name (each once), with
    /// [`OVERFLOW`] if the kernel's queue overflowed. Empty when nothing is pending.
    pub fn read(&self) -> Vec<i32> {
        let mut buf = [0u8; 4096];
        let mut wds = Vec::new();
        loop {
            // SAFETY: reading into a buffer we own, with its true length.
            let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            let Ok(n) = usize::try_from(n) else {
                break;
            };
            if n == 0 {
                break;
            }
            for wd in event_wds(&buf[..n]) {
                if !wds.contains(&wd) {
                    wds.push(wd);
                }
            }
        }
        wds
    }
}

impl AsRawFd for Watches {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// The watch descriptor of each `struct inotify_event` in `bytes` (wd, mask, cookie, len,
/// then `len` bytes of name); a truncated record ends the walk. Queue overflow reads as
/// [`OVERFLOW`]; the notice that a watch was removed is skipped.
fn event_wds(bytes: &[u8]) -> Vec<i32> {
    const HEADER: usize = 16;
    let field = |at: usize| -> Option<[u8; 4]> { bytes.get(at..at + 4)?.try_into().ok() };
    let mut out = Vec::new();
    let mut at = 0;
    while let (Some(wd), Some(mask), Some(len)) = (field(at), field(at + 4), field(at + 12)) {
        let (wd, mask) = (i32::from_ne_bytes(wd), u32::from_ne_bytes(mask));
        // IN_IGNORED only says a watch was removed: no change to report.
        if mask & libc::IN_Q_OVERFLOW != 0 {
            out.push(OVERFLOW);
        } else if mask & libc::IN_IGNORED == 0 {
            out.push(wd);
        }
        at += HEADER + u32::from_ne_bytes(len) as usize;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maildir::Maildir;
    use crate::{Flags, Mailbox};
    use std::collections::BTreeSet;
    use std::time::Duration;

    /// Waits up to `timeout` for an event; true if one came (and was read).
    fn wait(watches: &Watches, timeout: Duration) -> bool {
        let mut pfd = libc::pollfd {
            fd: watches.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd, count 1.
        let ready = unsafe { libc::poll(&mut pfd, 1, ms) };
        ready > 0 && !watches.read().is_empty()
    }

    #[test]
    fn deliveries_and_flag_changes_by_others_wake_the_watcher() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("Maildir");
        let mut md = Maildir::new(&root);
        md.sync().unwrap();
        let watcher = Watches::new().unwrap();
        watcher.add(&root).unwrap();
        assert!(!wait(&watcher, Duration::from_millis(50)), "quiet folder");
        let other = root.clone();
        let delivery = std::thread::spawn(move || {
            Maildir::new(other)
                .deliver(&mut &b"Subject: new\r\n\r\n"[..])
                .unwrap();
        });
        assert!(
            wait(&watcher, Duration::from_secs(5)),
            "a delivery into new/ is seen"
        );
        delivery.join().unwrap();
        let snap = md.sync().unwrap();
        watcher.read();
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
            wait(&watcher, Duration::from_secs(5)),
            "a flag change (rename in cur/) is seen"
        );
        assert!(watcher.add(&dir.path().join("nope")).is_err());
    }

    #[test]
    fn one_instance_watches_many_folders_and_names_the_one_that_changed() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        Maildir::new(&a).sync().unwrap();
        Maildir::new(&b).sync().unwrap();
        let watches = Watches::new().unwrap();
        let wa = watches.add(&a).unwrap();
        let wb = watches.add(&b).unwrap();
        assert_eq!(watches.add(&a).unwrap(), wa, "one descriptor per inode");
        assert!(watches.read().is_empty(), "quiet");
        Maildir::new(&b)
            .deliver(&mut &b"Subject: new\r\n\r\n"[..])
            .unwrap();
        let fired = watches.read();
        assert!(
            !fired.is_empty() && fired.iter().all(|wd| wb.contains(wd)),
            "{fired:?}"
        );
        watches.remove(&wb);
        Maildir::new(&b)
            .deliver(&mut &b"Subject: new\r\n\r\n"[..])
            .unwrap();
        let fired = watches.read();
        assert!(fired.iter().all(|wd| !wb.contains(wd)), "{fired:?}");
    }

    #[test]
    fn event_records_are_walked_without_trusting_their_lengths() {
        let mut bytes = Vec::new();
        for (wd, mask, len) in [(3i32, libc::IN_CREATE, 8u32), (-1, libc::IN_Q_OVERFLOW, 0)] {
            bytes.extend(wd.to_ne_bytes());
            bytes.extend(mask.to_ne_bytes());
            bytes.extend(0u32.to_ne_bytes());
            bytes.extend(len.to_ne_bytes());
            bytes.extend(vec![0u8; len as usize]);
        }
        assert_eq!(event_wds(&bytes), [3, OVERFLOW]);
        assert_eq!(event_wds(&bytes[..10]), Vec::<i32>::new());
        let mut huge = bytes[..16].to_vec();
        huge[12..16].copy_from_slice(&u32::MAX.to_ne_bytes());
        assert_eq!(event_wds(&huge), [3]);
    }
}
