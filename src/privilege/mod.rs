//! Who may touch whose mail. Started as root, roost binds its ports and then never serves a
//! client as root: after login, a user's session runs in a worker process with the mail owner's
//! uid and gid (the system user for PAM, `[mail] user` or the passwd-file uid for virtual users),
//! so the kernel, not our code, keeps users apart. Started as an ordinary user, everything simply
//! runs as that user, in one process.

pub mod control;
pub mod delivery;
pub mod fdpass;
pub mod in_process;
pub mod lifeline;
pub mod master;
pub mod pool;
pub mod reach;
pub mod relay;
pub mod updates;
pub mod worker;

use crate::auth::{MailUser, Source};
use crate::system::SystemUser;

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
    fn owners_are_never_root() {
        let virt = |uid| MailUser {
            name: "v".into(),
            source: Source::PasswdFile,
            uid,
            gid: None,
            home: None,
            quota: Default::default(),
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
