//! mbox locking that interoperates with the MTAs and MUAs that write mbox files: a dotlock
//! (`FILE.lock`, created exclusively; stale after 5 minutes) and an fcntl write lock on the file,
//! both with a timeout. Postfix, exim, procmail and Dovecot use the same pair on Debian.
//!
//! A spool directory such as Debian's /var/mail (root:mail 2775) lets only the mail group
//! create files. Like Dovecot's mail_privileged_group, a root-started roost leaves that group
//! to its workers as their *saved* set-group-ID only, never as an effective or supplementary
//! group: `with_privileged_group` makes it the effective gid of the calling thread for one
//! directory operation on the INBOX spool (a dotlock, the INBOX itself, a rewrite's temporary
//! file and rename) after the plain attempt failed with EACCES, and switches straight back.
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
    _file: File,
    _dotlock: Option<Dotlock>,
}

/// A dotlock we created, removed on drop.
#[derive(Debug)]
struct Dotlock {
    path: PathBuf,
    /// Whether the privileged group may be used (the INBOX spool only).
    spool: bool,
}

impl MboxLock {
    /// Takes the dotlock (if the directory allows it) and an fcntl write lock on `path`,
    /// creating the mbox (0600) if it does not exist. `spool` marks the INBOX the admin
    /// configured (`/var/mail/%u`): only there may the privileged group be used, and only
    /// there must the file be the session's own when the directory is shared.
    pub fn acquire(path: &Path, spool: bool) -> Result<Self, Error> {
        let dotlock = dotlock(path, spool)?.map(|path| Dotlock { path, spool });
        let file = open_mbox(path, spool)?;
        if spool {
            check_owner(&file, path)?;
        }
        fcntl_lock(&file, path)?;
        Ok(MboxLock {
            _file: file,
            _dotlock: dotlock,
        })
    }
}

impl Drop for Dotlock {
    fn drop(&mut self) {
        // (The fcntl lock goes with the descriptor.)
        let _ = with_privileged_group(self.spool, || fs::remove_file(&self.path));
    }
}

/// Opens the mbox for reading and writing, never through a symlink, creating it (0600) if
/// it does not exist.
fn open_mbox(path: &Path, spool: bool) -> Result<File, Error> {
    let open = |create: bool| {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(create)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
    };
    match open(false) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            match with_privileged_group(spool, || open(true)) {
                // Another process created it meanwhile.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => open(false),
                other => other,
            }
        }
        other => other,
    }
    .map_err(|e| Error::io(path, e))
}

/// Refuses a spool file that is not the session's own when its directory is shared (not
/// owned by us, like /var/mail): another user's mbox must never be written as ours.
fn check_owner(file: &File, path: &Path) -> Result<(), Error> {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if euid == 0 {
        return Ok(());
    }
    let owner = file.metadata().map_err(|e| Error::io(path, e))?.uid();
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let dir_owner = fs::metadata(dir).map_err(|e| Error::io(dir, e))?.uid();
    if owner != euid && dir_owner != euid {
        return Err(Error::NotOwner(path.to_path_buf()));
    }
    Ok(())
}

fn dotlock(path: &Path, spool: bool) -> Result<Option<PathBuf>, Error> {
    let mut lock = path.as_os_str().to_owned();
    lock.push(".lock");
    let lock = PathBuf::from(lock);
    // The lock is born with our PID in it: written to a private file first, then linked into
    // place (the classic NFS-safe dotlock), so a kill never leaves an anonymous lock behind.
    // Named for this process and this attempt: two session threads of one process lock too.
    static ATTEMPTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let attempt = ATTEMPTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut private = lock.as_os_str().to_owned();
    private.push(format!(".{}.{attempt}", std::process::id()));
    let private = PathBuf::from(private);
    let created = with_privileged_group(spool, || {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&private)
    });
    let written = created.and_then(|mut f| writeln!(f, "{}", std::process::id()));
    match written {
        Ok(()) => {}
        // No right to create files beside the mbox (a /var/mail without the mail group):
        // the fcntl lock alone must do, as Dovecot does without mail_privileged_group.
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => return Ok(None),
        Err(e) => return Err(Error::io(&private, e)),
    }
    let taken = take_dotlock(path, &lock, &private, spool);
    let _ = with_privileged_group(spool, || fs::remove_file(&private));
    taken.map(Some)
}

fn take_dotlock(path: &Path, lock: &Path, private: &Path, spool: bool) -> Result<PathBuf, Error> {
    let started = Instant::now();
    loop {
        match with_privileged_group(spool, || fs::hard_link(private, lock)) {
            Ok(()) => return Ok(lock.to_path_buf()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let age = fs::metadata(lock)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| SystemTime::now().duration_since(t).ok());
                if age.is_some_and(|a| a > STALE_AFTER) || owner_is_dead(lock) {
                    tracing::warn!(lock = %lock.display(), "removing a stale mbox dotlock");
                    let _ = with_privileged_group(spool, || fs::remove_file(lock));
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
        // An open-file-description lock: it conflicts with other programs' fcntl locks as a
        // classic one does, and also with this process's other descriptors of the file (a
        // classic lock is the whole process's, so two session threads would both hold it).
        // SAFETY: flock is plain data (l_pid zero, as OFD locks require); F_OFD_SETLK with a
        // valid descriptor and a pointer to it.
        let rc = unsafe {
            let mut fl: libc::flock = std::mem::zeroed();
            fl.l_type = libc::F_WRLCK as _;
            fl.l_whence = libc::SEEK_SET as _;
            libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &fl)
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

/// Runs `op`; if it fails with EACCES, `allowed` is set and this process keeps a privileged
/// group (`[mail] privileged_group`) as its saved set-group-ID, runs it once more with that
/// group as the effective gid of the calling thread, then switches back.
pub(crate) fn with_privileged_group<T>(
    allowed: bool,
    mut op: impl FnMut() -> io::Result<T>,
) -> io::Result<T> {
    match op() {
        Err(e) if allowed && e.raw_os_error() == Some(libc::EACCES) => {
            let Some((own, privileged)) = privileged_gid() else {
                return Err(e);
            };
            let _back = ThreadGid::switch(own, privileged)?;
            op()
        }
        other => other,
    }
}

/// `(effective gid, privileged gid)` if the saved (or, just after exec, the real) gid differs
/// from the effective one. Never the root group.
fn privileged_gid() -> Option<(libc::gid_t, libc::gid_t)> {
    let (mut real, mut effective, mut saved) = (0, 0, 0);
    // SAFETY: three pointers to live locals; getresgid only writes through them.
    if unsafe { libc::getresgid(&mut real, &mut effective, &mut saved) } != 0 {
        return None;
    }
    [saved, real]
        .into_iter()
        .find(|g| *g != effective && *g != 0)
        .map(|g| (effective, g))
}

#[cfg(any(target_arch = "x86", target_arch = "arm"))]
const SYS_SETRESGID: libc::c_long = libc::SYS_setresgid32;
#[cfg(not(any(target_arch = "x86", target_arch = "arm")))]
const SYS_SETRESGID: libc::c_long = libc::SYS_setresgid;

/// The effective gid of the calling thread, switched for as long as this lives.
struct ThreadGid(libc::gid_t);

impl ThreadGid {
    /// Makes `to` the calling thread's effective gid; dropping the guard restores `own`.
    fn switch(own: libc::gid_t, to: libc::gid_t) -> io::Result<Self> {
        set_thread_egid(to)?;
        Ok(Self(own))
    }
}

impl Drop for ThreadGid {
    fn drop(&mut self) {
        if let Err(e) = set_thread_egid(self.0) {
            // Going on with the mail group would give every later request its rights.
            tracing::error!("cannot drop the privileged group again: {e}; aborting");
            std::process::abort();
        }
    }
}

/// Sets the effective gid of the calling thread only.
///
/// Why the raw system call: Linux keeps credentials per thread, and glibc's setegid and
/// setresgid deliberately broadcast the change to every thread of the process (POSIX says
/// credentials are per process). A worker serves many sessions on other threads, none of which
/// may run with the mail group, even for the moment this thread needs it. The kernel's own
/// setresgid changes the calling thread alone; an unprivileged process may set its effective
/// gid to its real or saved gid, which is where the privileged group is kept.
fn set_thread_egid(gid: libc::gid_t) -> io::Result<()> {
    // (gid_t)-1: leave the real and saved gids as they are.
    let keep = libc::gid_t::MAX;
    // SAFETY: setresgid takes three integers and touches no memory of ours; the raw call only
    // changes this thread's credentials (see above), which is the intent.
    let rc = unsafe { libc::syscall(SYS_SETRESGID, keep, gid, keep) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
