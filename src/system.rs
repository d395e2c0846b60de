//! The operating system's view of users and groups: accounts and groups by name (NSS
//! included) and whether this process is root. A leaf module: configuration, authentication and
//! the process model all ask it, and it asks nobody.

use std::ffi::{CStr, CString};
use std::path::PathBuf;

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
}
