//! The operating system's view of users and groups: accounts and groups by name (NSS
//! included) and whether this process is root. A leaf module: configuration, authentication and
//! the process model all ask it, and it asks nobody.

use std::ffi::{CStr, CString};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A system account, as `getpwnam(3)` reports it (NSS included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemUser {
    /// Login name.
    pub name: String,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Home directory.
    pub home: PathBuf,
}

impl SystemUser {
    /// Looks an account up by name; `None` if there is no such user (or the name has a NUL).
    pub fn by_name(name: &str) -> Option<Self> {
        let cname = CString::new(name).ok()?;
        let mut buf = vec![0u8; 16 * 1024];
        // SAFETY: an all-zero passwd is a valid out-parameter for getpwnam_r.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer refers to live, correctly sized storage owned by this frame;
        // getpwnam_r writes strings only into `buf`, whose length we pass.
        let rc = unsafe {
            libc::getpwnam_r(
                cname.as_ptr(),
                &mut pwd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut result,
            )
        };
        if rc != 0 || result.is_null() {
            return None;
        }
        // SAFETY: on success pw_name and pw_dir point to NUL-terminated strings inside `buf`.
        let (name, home) = unsafe { (CStr::from_ptr(pwd.pw_name), CStr::from_ptr(pwd.pw_dir)) };
        Some(Self {
            name: name.to_string_lossy().into_owned(),
            uid: pwd.pw_uid,
            gid: pwd.pw_gid,
            home: PathBuf::from(home.to_string_lossy().into_owned()),
        })
    }
}

/// The gid of a group by name (`getgrnam(3)`, NSS included).
pub fn group_id(name: &str) -> Option<u32> {
    let cname = CString::new(name).ok()?;
    let mut buf = vec![0u8; 16 * 1024];
    // SAFETY: an all-zero group is a valid out-parameter for getgrnam_r.
    let mut grp: libc::group = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::group = std::ptr::null_mut();
    // SAFETY: every pointer refers to live storage of this frame; strings go into `buf`.
    let rc = unsafe {
        libc::getgrnam_r(
            cname.as_ptr(),
            &mut grp,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut result,
        )
    };
    (rc == 0 && !result.is_null()).then_some(grp.gr_gid)
}

/// The name of the account this process runs as (its effective uid), or the uid as text when
/// the account has no name: error messages say who lacked a permission.
pub fn current_user_name() -> String {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    let mut buf = vec![0u8; 16 * 1024];
    // SAFETY: an all-zero passwd is a valid out-parameter for getpwuid_r.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer refers to live storage of this frame; strings go into `buf`.
    let rc = unsafe {
        libc::getpwuid_r(
            uid,
            &mut pwd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() {
        return format!("uid {uid}");
    }
    // SAFETY: on success pw_name points to a NUL-terminated string inside `buf`.
    unsafe { CStr::from_ptr(pwd.pw_name) }
        .to_string_lossy()
        .into_owned()
}

/// The first directory on the way to `path` (the path itself included) that the account
/// `uid`/`gid` may not pass through, with its mode: the master checks, before it hands a path
/// to a process running as that account, that the process will reach it. Judged by the mode
/// bits of the owner, the primary group and others: roost's unprivileged processes keep their
/// primary group as their only group, so supplementary groups do not count (ACLs are not
/// consulted); a component that does not exist yet ends the walk, since whoever creates it
/// decides its mode.
pub fn blocking_directory(path: &Path, uid: u32, gid: u32) -> Option<(PathBuf, u32)> {
    if uid == 0 {
        return None;
    }
    let mut dir = PathBuf::new();
    for component in path.components() {
        dir.push(component);
        let Ok(meta) = std::fs::metadata(&dir) else {
            return None;
        };
        if !meta.is_dir() {
            return None;
        }
        let mode = meta.permissions().mode() & 0o7777;
        let search = if meta.uid() == uid {
            0o100
        } else if meta.gid() == gid {
            0o010
        } else {
            0o001
        };
        if mode & search == 0 {
            return Some((dir, mode));
        }
    }
    None
}

/// The effective uid and gid of this process (whose permissions a path walk is checked for).
pub fn effective_ids() -> (u32, u32) {
    // SAFETY: geteuid and getegid have no preconditions and cannot fail.
    unsafe { (libc::geteuid(), libc::getegid()) }
}

/// Whether this process runs as root (and must therefore hand sessions to workers).
pub fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_exists_and_nonsense_does_not() {
        let root = SystemUser::by_name("root").unwrap();
        assert_eq!(root.uid, 0);
        assert!(SystemUser::by_name("no-such-user-roost").is_none());
        assert!(SystemUser::by_name("nul\0byte").is_none());
    }

    #[test]
    fn a_private_parent_blocks_everyone_but_its_owner() {
        use std::os::unix::fs::PermissionsExt;
        let top = tempfile::tempdir().unwrap();
        let private = top.path().join("private");
        let inner = private.join("inner");
        std::fs::create_dir_all(&inner).unwrap();
        std::fs::set_permissions(top.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
        let meta = std::fs::metadata(&private).unwrap();
        let stranger = meta.uid().wrapping_add(12345).max(1);
        assert_eq!(
            blocking_directory(&inner.join("not-yet"), stranger, stranger),
            Some((private.clone(), 0o700))
        );
        assert_eq!(
            blocking_directory(&inner, 0, 0),
            None,
            "root passes everywhere"
        );
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o711)).unwrap();
        assert_eq!(blocking_directory(&inner, stranger, stranger), None);
    }
}
