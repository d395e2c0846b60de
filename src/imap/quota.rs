//! QUOTA (RFC 9208): GETQUOTAROOT and GETQUOTA report the user's one quota root, `""`, with
//! its STORAGE (in units of 1024 octets) and MESSAGE usage against the limits from the config
//! and the passdb; SETQUOTA is refused (limits are the administrator's). A user without limits
//! has no quota root. The usage comes from storage's `maildirsize` bookkeeping, kept current by
//! every append and expunge, so answering reads one small file, not the mail.

use roost_protocol::imap::response::{MailboxName, Response};
use roost_storage::quota::Quota;

use super::context::{Cx, Step};
use super::mailboxes::stored_name;
use super::state::Account;
use roost_protocol::imap::imap_types::mailbox::Mailbox;

/// The name of the one quota root a user has.
const ROOT: &str = "";

/// GETQUOTAROOT: the roots of `mailbox` (the user's, when limited), then each root's QUOTA.
pub fn get_quota_root(account: &Account<'_>, mailbox: &Mailbox<'_>, cx: &mut Cx<'_>) -> Step {
    let name = match stored_name(account, mailbox, cx) {
        Ok(name) => name,
        Err(refused) => return Step::Reply(refused),
    };
    if let Err(e) = account.store.folders().open(&name) {
        return Step::Reply(cx.failure(account.name(), &e));
    }
    let quota = account.store.quota();
    let roots: &[&str] = if quota.is_some() { &[ROOT] } else { &[] };
    cx.send(Response::QuotaRoot {
        mailbox: MailboxName {
            name: &name,
            utf8: account.enabled.utf8,
        },
        roots,
    });
    if let Some(quota) = quota {
        if let Err(refused) = send_quota(account, quota, cx) {
            return Step::Reply(refused);
        }
    }
    Step::Reply(cx.ok("Getquotaroot completed."))
}

/// GETQUOTA: the usage and limits of a root.
pub fn get_quota(account: &Account<'_>, root: &str, cx: &mut Cx<'_>) -> Step {
    let Some(quota) = account.store.quota().filter(|_| root == ROOT) else {
        return Step::Reply(cx.no(None, "No such quota root."));
    };
    match send_quota(account, quota, cx) {
        Ok(()) => Step::Reply(cx.ok("Getquota completed.")),
        Err(refused) => Step::Reply(refused),
    }
}

/// SETQUOTA: not for users to change.
pub fn set_quota(cx: &mut Cx<'_>) -> Step {
    Step::Reply(cx.no(None, "Quota limits are set by the administrator."))
}

/// `* QUOTA "" (STORAGE used limit MESSAGE used limit)`, the limited resources only.
fn send_quota(
    account: &Account<'_>,
    quota: &Quota,
    cx: &mut Cx<'_>,
) -> Result<(), super::reply::Tagged> {
    let usage = quota.usage().map_err(|e| cx.failure(account.name(), &e))?;
    let limits = quota.limits();
    let mut resources = Vec::new();
    if let Some(bytes) = limits.storage {
        resources.push(("STORAGE", usage.bytes.div_ceil(1024), bytes / 1024));
    }
    if let Some(count) = limits.messages {
        resources.push(("MESSAGE", usage.messages, count));
    }
    cx.send(Response::Quota {
        root: ROOT,
        resources: &resources,
    });
    Ok(())
}
