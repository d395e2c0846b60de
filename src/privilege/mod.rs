//! Who may touch whose mail. Started as root, roost binds its ports and then never serves a
//! client as root: after login, a user's session runs in a worker process with the mail owner's
//! uid and gid (the system user for PAM, `[mail] user` or the passwd-file uid for virtual users),
//! so the kernel, not our code, keeps users apart. Started as an ordinary user, everything simply
//! runs as that user, in one process.

pub mod control;
pub mod fdpass;
pub mod master;
pub mod updates;
pub mod worker;

use std::ffi::{CStr, CString};
use std::path::PathBuf;

use crate::auth::{MailUser, Source};

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

/// Moves a privileged group that the master left as this process's real gid (see
/// [`worker::run_as_owner`]: exec keeps the real gid but resets the saved one) to the saved
/// set-group-ID, where only the mbox dotlock code reaches for it. Call first thing in a
/// worker, before any other thread exists; does nothing for a process not started that way.
pub fn keep_privileged_group_saved_only() -> std::io::Result<()> {
    let (mut real, mut effective, mut saved) = (0, 0, 0);
    // SAFETY: three pointers to live locals; getresgid only writes through them.
    if unsafe { libc::getresgid(&mut real, &mut effective, &mut saved) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if real == effective || effective == 0 {
        return Ok(());
    }
    // SAFETY: a plain system call on integers. An unprivileged process may set each of its
    // gids to its current real, effective or saved gid, which these are.
    if unsafe { libc::setresgid(effective, effective, real) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Whether this process runs as root (and must therefore hand sessions to workers).
pub fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Why a user's session cannot be given an owner.
#[derive(Debug, thiserror::Error)]
pub enum OwnerError {
    /// A virtual user without uid in the passwd-file and no `[mail] user` configured.
    #[error("no mail owner for {0}: set [mail] user (e.g. \"vmail\") or a uid in the passwd-file")]
    Unconfigured(String),
    /// `[mail] user` names an account that does not exist.
    #[error("[mail] user {0:?} does not exist on this system")]
    UnknownMailUser(String),
    /// Serving as root is never done.
    #[error("refusing to serve {0} as root (uid 0)")]
    Root(String),
}

/// The uid and gid a user's session must run with when roost is started as root.
pub fn mail_owner(user: &MailUser, mail_user: Option<&str>) -> Result<(u32, u32), OwnerError> {
    let owner = match (user.source, user.uid, user.gid) {
        (Source::Pam, Some(uid), Some(gid)) => (uid, gid),
        (Source::PasswdFile, Some(uid), gid) => (uid, gid.unwrap_or(uid)),
        _ => {
            let name = mail_user.ok_or_else(|| OwnerError::Unconfigured(user.name.clone()))?;
            let account = SystemUser::by_name(name)
                .ok_or_else(|| OwnerError::UnknownMailUser(name.to_string()))?;
            (account.uid, user.gid.unwrap_or(account.gid))
        }
    };
    if owner.0 == 0 {
        return Err(OwnerError::Root(user.name.clone()));
    }
    Ok(owner)
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
    fn owners_are_never_root() {
        let virt = |uid| MailUser {
            name: "v".into(),
            source: Source::PasswdFile,
            uid,
            gid: None,
            home: None,
        };
        assert_eq!(mail_owner(&virt(Some(5000)), None).unwrap(), (5000, 5000));
        assert!(matches!(
            mail_owner(&virt(None), None),
            Err(OwnerError::Unconfigured(_))
        ));
        assert!(matches!(
            mail_owner(&virt(None), Some("root")),
            Err(OwnerError::Root(_))
        ));
        assert!(matches!(
            mail_owner(&virt(Some(0)), None),
            Err(OwnerError::Root(_))
        ));
    }
}
