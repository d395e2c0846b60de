//! `roost deliver -u USER`: a message on standard input into the user's INBOX, for Postfix's
//! `mailbox_command`, exim's pipe transport or procmail, like `dovecot-lda -d USER`.
//!
//! The message goes through the same filters as SMTP and LMTP deliveries (the spam verdict
//! aside: an MTA calling this has scanned already, or chose not to). Run as root, the delivery
//! happens in a worker started as the user's mail owner, exactly as the server's would, and
//! this process queues what the user's Sieve script asks to send (redirects, vacation replies).
//! Exit codes follow sysexits(3), which MTAs understand: 0 delivered, 67 no such user,
//! 75 try again later, 78 configuration error.

use std::fs::File;
use std::process::ExitCode;
use std::sync::Arc;

use roost_protocol::smtp::address::{AddressError, ReversePath};

use crate::auth::Authenticator;
use crate::config::Config;
use crate::privilege::in_process::InProcess;
use crate::privilege::mail_owner;
use crate::session::privileged::{LocalRecipient, Privileged};
use crate::smtp::deliver::Outcome;
use crate::smtp::followups::queue_followups;
use crate::smtp::{runner, Services};
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

/// Runs the delivery; messages go to standard error. `address` is the recipient address the
/// MTA saw (dovecot-lda's `-a`), which Sieve's envelope test and `:detail` see.
pub fn main(config: &Config, user: &str, from: Option<&str>, address: Option<&str>) -> ExitCode {
    let from = match from.map(sender).transpose() {
        Ok(from) => from.unwrap_or(ReversePath::Null),
        Err(e) => {
            eprintln!("roost deliver: -f: {e}");
            return ExitCode::from(USAGE);
        }
    };
    let auth = Arc::new(Authenticator::new(&config.auth));
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
        if let Err(e) = mail_owner(&user, config.mail.user.as_deref()) {
            eprintln!("roost deliver: {e}");
            return ExitCode::from(CONFIG);
        }
    }
    let message = match spool_stdin() {
        Ok(file) => file,
        Err(e) => {
            eprintln!("roost deliver: cannot spool the message: {e}");
            return ExitCode::from(TEMP_FAIL);
        }
    };
    let recipient = LocalRecipient {
        user: user.name.clone(),
        address: address.unwrap_or(&user.name).to_string(),
    };
    let outcome = match deliver_and_follow_up(config, auth, &message, &from, recipient) {
        Ok(outcome) => outcome,
        Err(e) => {
            eprintln!("roost deliver: {e}");
            return ExitCode::from(TEMP_FAIL);
        }
    };
    exit_code(config, &user.name, outcome)
}

/// Delivers as the mail owner (here, or through a worker started as the owner when root),
/// then queues and attempts what the user's filters ask to send (redirects, vacation).
fn deliver_and_follow_up(
    config: &Config,
    auth: Arc<Authenticator>,
    message: &File,
    from: &ReversePath,
    recipient: LocalRecipient,
) -> std::io::Result<Outcome> {
    let config = Arc::new(config.clone());
    let privileged: Arc<dyn Privileged> = Arc::new(InProcess::for_this_process(&config, auth));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let recipients = [recipient];
        let mut done = privileged.deliver(message, from, &recipients).await;
        if !done.followups.is_empty() {
            follow_up(&config, privileged, message, from, done.followups).await;
        }
        Ok(done
            .outcomes
            .pop()
            .unwrap_or(Outcome::Temporary("no outcome".into())))
    })
}

/// Queues the follow-ups and tries them at once, as a server's queue runner would.
async fn follow_up(
    config: &Arc<Config>,
    privileged: Arc<dyn Privileged>,
    message: &File,
    from: &ReversePath,
    followups: Vec<crate::filter::Followup>,
) {
    let services = match Services::new(config, privileged) {
        Ok(services) => services,
        Err(e) => {
            let n = followups.len();
            return tracing::warn!("{n} follow-up(s) of the user's filters not sent: {e}");
        }
    };
    for id in queue_followups(&services, from, message, followups).await {
        if let Err(e) = runner::attempt(&services, &id).await {
            tracing::warn!(id, "follow-up stays queued: {e}");
        }
    }
}

fn exit_code(config: &Config, user: &str, outcome: Outcome) -> ExitCode {
    match outcome {
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
            eprintln!("roost deliver: {user}'s mailbox is full (quota exceeded)");
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
