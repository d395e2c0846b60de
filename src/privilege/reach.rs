//! Before the master forks the login process and starts workers, it checks that the accounts
//! they run as can reach the paths they are given: a directory of mode 0700 on the way (such as
//! `/root`, or one `mktemp -d` made) would otherwise surface later as a bare "permission denied"
//! in a process that no longer knows which setting put the path there.

use std::path::{Path, PathBuf};

use crate::config::{AccessDenied, Config};
use crate::system::{blocking_directory, SystemUser};

/// Checks the queue directory for the login process and the mail root for `[mail] user`.
pub fn check_start_paths(config: &Config, login: &SystemUser) -> Result<(), AccessDenied> {
    if config.serves_smtp() {
        let queue = &config.smtp.queue_dir;
        if let Some(blocked) = blocking_directory(queue, login.uid, login.gid) {
            return Err(AccessDenied {
                path: queue.clone(),
                user: login.name.clone(),
                role: "the login process, which runs the SMTP queue",
                blocked_at: Some(blocked),
                key: "[smtp] queue_dir".into(),
            });
        }
    }
    let Some(owner) = config.mail.user.as_deref().and_then(SystemUser::by_name) else {
        return Ok(());
    };
    let Some(root) = fixed_prefix(&config.mail.location.root) else {
        return Ok(());
    };
    match blocking_directory(&root, owner.uid, owner.gid) {
        Some(blocked) => Err(AccessDenied {
            path: root,
            user: owner.name,
            role: "the mail workers",
            blocked_at: Some(blocked),
            key: "[mail] location".into(),
        }),
        None => Ok(()),
    }
}

/// The directory every user's mail root lies under: the location's root template up to the
/// last `/` before its first variable (`/srv/mail/%u` gives `/srv/mail`); `None` for a root in
/// each user's home (`~/Maildir`, `%h/mail`), whose owners differ.
fn fixed_prefix(template: &str) -> Option<PathBuf> {
    if !template.starts_with('/') {
        return None;
    }
    let end = template.find(['%', '~']).unwrap_or(template.len());
    let fixed = &template[..end];
    let dir = if end == template.len() {
        fixed
    } else {
        &fixed[..fixed.rfind('/')?]
    };
    Some(Path::new(if dir.is_empty() { "/" } else { dir }).to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fixed_prefix_stops_before_the_first_variable() {
        assert_eq!(fixed_prefix("/srv/mail/%u"), Some("/srv/mail".into()));
        assert_eq!(fixed_prefix("/srv/mail/%d/%n"), Some("/srv/mail".into()));
        assert_eq!(fixed_prefix("/var/mail"), Some("/var/mail".into()));
        assert_eq!(fixed_prefix("/%u"), Some("/".into()));
        assert_eq!(fixed_prefix("~/Maildir"), None);
        assert_eq!(fixed_prefix("%h/mail"), None);
    }
}
