//! `roost deliver -u USER`: a message on standard input into the user's INBOX, for Postfix's
//! `mailbox_command`, exim's pipe transport or procmail, like `dovecot-lda -d USER`.
//!
//! Run as root, it first becomes the user's mail owner, exactly as a session worker would.
//! Exit codes follow sysexits(3), which MTAs understand: 0 delivered, 67 no such user,
//! 75 try again later, 78 configuration error.

use std::process::ExitCode;

use roost_protocol::smtp::address::{AddressError, ReversePath};

use crate::auth::Authenticator;
use crate::config::Config;
use crate::filter::run::site_scripts;
use crate::privilege::mail_owner;
use crate::smtp::deliver::{deliver_one, Outcome};
use crate::system::running_as_root;

/// EX_USAGE.
const USAGE: u8 = 64;
/// EX_NOUSER.
const NO_USER: u8 = 67;
/// EX_TEMPFAIL.
const TEMP_FAIL: u8 = 75;
/// EX_NOPERM: what `dovecot-lda -e` and maildrop exit with for a full mailbox (the MTA bounces).
const NO_PERMISSION: u8 = 77;
/// EX_CONFIG.
const CONFIG: u8 = 78;

/// Runs the delivery; messages go to standard error.
pub fn main(config: &Config, user: &str, from: Option<&str>) -> ExitCode {
    let from = match from.map(sender).transpose() {
        Ok(from) => from,
        Err(e) => {
            eprintln!("roost deliver: -f: {e}");
            return ExitCode::from(USAGE);
        }
    };
    let auth = Authenticator::new(&config.auth);
    let user = match auth.lookup_user(user) {
        Ok(Some(u)) => u,
        Ok(None) => {
            eprintln!("roost deliver: no such user: {user}");
            return ExitCode::from(NO_USER);
        }
        Err(e) => {
            eprintln!("roost deliver: user lookup failed: {e}");
            return ExitCode::from(TEMP_FAIL);
        }
    };
    if running_as_root() {
        let owner = match mail_owner(&user, config.mail.user.as_deref()) {
            Ok(o) => o,
            Err(e) => {
                eprintln!("roost deliver: {e}");
                return ExitCode::from(CONFIG);
            }
        };
        if let Err(e) = become_owner(owner, config.mail.privileged_gid) {
            eprintln!("roost deliver: cannot become the mail owner: {e}");
            return ExitCode::from(TEMP_FAIL);
        }
    }
    let message = match spool_stdin() {
        Ok(file) => file,
        Err(e) => {
            eprintln!("roost deliver: cannot spool the message: {e}");
            return ExitCode::from(TEMP_FAIL);
        }
    };
    let recipient = user.name.clone();
    let site = site_scripts(config);
    let done = deliver_one(
        &config.mail.location,
        &user,
        &recipient,
        from.as_ref(),
        &message,
        &site,
    );
    for followup in &done.followups {
        // The mail owner cannot write the queue; see the README ("roost deliver").
        tracing::warn!(
            ?followup,
            "roost deliver: follow-up not sent (no queue access here)"
        );
    }
    match done.outcome {
        Outcome::Delivered => ExitCode::SUCCESS,
        Outcome::Rejected(why) => {
            eprintln!("roost deliver: rejected by the recipient's mail filter: {why}");
            ExitCode::from(NO_PERMISSION)
        }
        Outcome::Permanent(e) => {
            eprintln!("roost deliver: {e}");
            ExitCode::from(NO_USER)
        }
        Outcome::Temporary(e) => {
            eprintln!("roost deliver: {e}");
            ExitCode::from(TEMP_FAIL)
        }
        Outcome::MailboxFull => {
            eprintln!(
                "roost deliver: {user}'s mailbox is full (quota exceeded)",
                user = user.name
            );
            ExitCode::from(match config.mail.quota_full_tempfail {
                true => TEMP_FAIL,
                false => NO_PERMISSION,
            })
        }
    }
}

/// Standard input copied into an unlinked file in the temporary directory, so the filters
/// can look at any part of the message and each copy can be read from the start.
fn spool_stdin() -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = std::env::temp_dir().join(format!(
        "roost-deliver-{}-{:016x}",
        std::process::id(),
        rand::random::<u64>()
    ));
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    std::fs::remove_file(&path)?;
    std::io::copy(&mut std::io::stdin().lock(), &mut file)?;
    Ok(file)
}

/// `-f`'s sender, with or without angle brackets (`<>` or empty: the null sender).
fn sender(text: &str) -> Result<ReversePath, AddressError> {
    let inner = text
        .strip_prefix('<')
        .and_then(|t| t.strip_suffix('>'))
        .unwrap_or(text);
    inner.parse()
}

/// Drops root for the mail owner's uid and gid, for good. The privileged group (if any) is
/// kept only as the saved set-group-ID, from which the mbox dotlock code takes it for one
/// thread and one directory operation at a time; it is never an effective or supplementary
/// group.
fn become_owner((uid, gid): (u32, u32), privileged_gid: Option<u32>) -> std::io::Result<()> {
    let groups = [gid];
    let aside = privileged_gid.unwrap_or(gid);
    // SAFETY: plain system calls on scalar arguments and a local array that outlives them; no
    // other thread exists yet.
    let ok = unsafe {
        libc::setgroups(1, groups.as_ptr()) == 0
            && libc::setresgid(gid, gid, aside) == 0
            && libc::setuid(uid) == 0
    };
    if ok {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
