//! mbox locking that interoperates with the MTAs and MUAs that write mbox files: a dotlock
//! (`FILE.lock`, created exclusively; stale after 5 minutes) and an fcntl write lock on the file,
//! both with a timeout. Postfix, exim, procmail and Dovecot use the same pair on Debian.
#![allow(unsafe_code)]

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::Error;

/// A dotlock older than this is considered left behind by a crashed process.
const STALE_AFTER: Duration = Duration::from_secs(300);
/// Give up waiting for a lock after this long.
const TIMEOUT: Duration = Duration::from_secs(10);
const RETRY: Duration = Duration::from_millis(50);

/// Both locks on one mbox, released on drop.
#[derive(Debug)]
pub struct MboxLock {
    dotlock: Option<PathBuf>,
    _file: File,
}

impl MboxLock {
    /// Takes the dotlock (if the directory allows it) and an fcntl write lock on `path`,
    /// creating the mbox (0600) if it does not exist.
    pub fn acquire(path: &Path) -> Result<Self, Error> {
        let dotlock = dotlock(path)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        let lock = MboxLock {
            dotlock,
            _file: file,
        };
        fcntl_lock(&lock._file, path)?;
        Ok(lock)
    }
}

impl Drop for MboxLock {
    fn drop(&mut self) {
        // The fcntl lock goes with the descriptor; the dotlock must be removed.
        if let Some(path) = &self.dotlock {
            let _ = fs::remove_file(path);
        }
    }
}

fn dotlock(path: &Path) -> Result<Option<PathBuf>, Error> {
    let mut lock = path.as_os_str().to_owned();
    lock.push(".lock");
    let lock = PathBuf::from(lock);
    // The lock is born with our PID in it: written to a private file first, then linked into
    // place (the classic NFS-safe dotlock), so a kill never leaves an anonymous lock behind.
    let mut private = lock.as_os_str().to_owned();
    private.push(format!(".{}", std::process::id()));
    let private = PathBuf::from(private);
    let written = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&private)
        .and_then(|mut f| writeln!(f, "{}", std::process::id()));
    match written {
        Ok(()) => {}
        // No right to create files beside the mbox (a /var/mail without the mail group):
        // the fcntl lock alone must do, as Dovecot does without mail_privileged_group.
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => return Ok(None),
        Err(e) => return Err(Error::io(&private, e)),
    }
    let taken = take_dotlock(path, &lock, &private);
    let _ = fs::remove_file(&private);
    taken.map(Some)
}

fn take_dotlock(path: &Path, lock: &Path, private: &Path) -> Result<PathBuf, Error> {
    let started = Instant::now();
    loop {
        match fs::hard_link(private, lock) {
            Ok(()) => return Ok(lock.to_path_buf()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let age = fs::metadata(lock)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| SystemTime::now().duration_since(t).ok());
                if age.is_some_and(|a| a > STALE_AFTER) || owner_is_dead(lock) {
                    tracing::warn!(lock = %lock.display(), "removing a stale mbox dotlock");
                    let _ = fs::remove_file(lock);
                    continue;
                }
                if started.elapsed() > TIMEOUT {
                    return Err(Error::Busy(path.to_path_buf()));
                }
                std::thread::sleep(RETRY);
            }
            Err(e) => return Err(Error::io(lock, e)),
        }
    }
}

/// Whether the dotlock names a PID (as roost and Dovecot write) of a process that is gone.
fn owner_is_dead(lock: &Path) -> bool {
    let Ok(text) = fs::read_to_string(lock) else {
        return false;
    };
    let Some(pid) = text
        .split_whitespace()
        .next()
        .and_then(|p| p.parse::<libc::pid_t>().ok())
    else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill with signal 0 only checks whether the process exists.
    let rc = unsafe { libc::kill(pid, 0) };
    rc != 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}

fn fcntl_lock(file: &File, path: &Path) -> Result<(), Error> {
    let started = Instant::now();
    loop {
        // SAFETY: flock is plain data; F_SETLK with a valid descriptor and a pointer to it.
        let rc = unsafe {
            let mut fl: libc::flock = std::mem::zeroed();
            fl.l_type = libc::F_WRLCK as _;
            fl.l_whence = libc::SEEK_SET as _;
            libc::fcntl(file.as_raw_fd(), libc::F_SETLK, &fl)
        };
        if rc == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        let busy = matches!(err.raw_os_error(), Some(libc::EACCES) | Some(libc::EAGAIN));
        if !busy {
            return Err(Error::io(path, err));
        }
        if started.elapsed() > TIMEOUT {
            return Err(Error::Busy(path.to_path_buf()));
        }
        std::thread::sleep(RETRY);
    }
}
