//! Mailbox management (RFC 3501 6.3): CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, STATUS
//! and NAMESPACE, how a command's mailbox name becomes a stored one, and the special-use
//! folders (RFC 6154) every new user gets. LIST and LSUB live in [`super::list`].
//!
//! Names travel as the client sent them (modified UTF-7), and are stored that way, as Dovecot
//! does; `/` is the hierarchy separator on every format.

use roost_protocol::imap::imap_types::mailbox::Mailbox;
use roost_protocol::imap::imap_types::status::StatusDataItemName;
use roost_protocol::imap::mutf7;
use roost_protocol::imap::response::{Code, MailboxName, Response, StatusItem};
use roost_storage::{Error as StorageError, Flags, Store, Uid};

use super::context::{Cx, Step};
use super::reply::Tagged;
use super::selected::Selected;
use super::state::Account;

/// The hierarchy separator clients see.
pub const SEPARATOR: char = '/';

pub use roost_storage::names::SPECIAL_USE;

/// The stored (modified UTF-7) name a command names, `INBOX` spelled canonically and a trailing
/// separator dropped. `utf8`: the client sends UTF-8 names (UTF8=ACCEPT, IMAP4rev2). `Err`
/// holds the NO text for a name that is neither.
pub fn mailbox_name(mailbox: &Mailbox<'_>, utf8: bool) -> Result<String, &'static str> {
    match mailbox {
        Mailbox::Inbox => Ok("INBOX".to_string()),
        Mailbox::Other(other) => {
            let name =
                std::str::from_utf8(other.as_ref()).map_err(|_| "Mailbox name is not UTF-8.")?;
            let name = name.trim_end_matches(SEPARATOR);
            if name.eq_ignore_ascii_case("INBOX") {
                return Ok("INBOX".to_string());
            }
            if utf8 {
                return Ok(mutf7::encode(name));
            }
            if mutf7::decode(name).is_err() {
                return Err("Mailbox name is not valid modified UTF-7.");
            }
            Ok(name.to_string())
        }
    }
}

/// Creates (and subscribes) the special-use folders a user lacks, on the first login. At a
/// user's very first login (no subscriptions yet), the special-use folders that already exist
/// (moved over from another server, made by another program) are subscribed too, as Dovecot's
/// `auto = subscribe` does: clients that list only subscribed folders would miss `Sent`.
pub fn ensure_special_folders(store: &Store) -> Result<(), StorageError> {
    let existing = store.folders().list()?;
    let first_login = store.subscriptions()?.is_empty();
    if first_login {
        store.set_subscribed("INBOX", true)?;
    }
    for (name, _) in SPECIAL_USE {
        match existing.iter().find(|n| n.eq_ignore_ascii_case(name)) {
            Some(found) if first_login => store.set_subscribed(found, true)?,
            Some(_) => {}
            None => {
                match store.folders().create(name) {
                    // Another session of the same user, logging in at the same moment, won.
                    Ok(()) | Err(StorageError::AlreadyExists(_)) => {}
                    Err(e) => return Err(e),
                }
                store.set_subscribed(name, true)?;
            }
        }
    }
    Ok(())
}

/// The RFC 6154 attribute of a top-level folder name.
pub fn special_use(name: &str) -> Option<&'static str> {
    SPECIAL_USE
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, attr)| *attr)
}

/// `* STATUS name (items)` of a mailbox (STATUS, and LIST-STATUS).
pub fn status_response(
    store: &Store,
    name: &str,
    items: &[StatusDataItemName],
    utf8: bool,
    out: &mut Vec<u8>,
) -> Result<(), StorageError> {
    let mut mailbox = store.folders().open(name)?;
    // Counted as the messages go by: a large folder's list is never collected.
    let (mut uids, mut unseen, mut deleted) = (Vec::new(), 0u32, 0u32);
    let header = mailbox.sync_each(&mut |m| {
        uids.push(m.uid);
        unseen += u32::from(!m.flags.contains(Flags::SEEN));
        deleted += u32::from(m.flags.contains(Flags::DELETED));
    })?;
    let mut parts = Vec::new();
    for item in items {
        let value = match item {
            StatusDataItemName::Messages => StatusItem::Messages(uids.len() as u32),
            StatusDataItemName::Recent => {
                // The messages no session has had as \Recent yet (RFC 3501 6.3.10).
                let first = mailbox
                    .recent_mark()
                    .map_or(Uid::MAX, |mark| mark.first_unclaimed(header.uidvalidity));
                let old = uids.partition_point(|uid| *uid < first);
                StatusItem::Recent((uids.len() - old) as u32)
            }
            StatusDataItemName::UidNext => StatusItem::UidNext(header.uidnext),
            StatusDataItemName::UidValidity => StatusItem::UidValidity(header.uidvalidity),
            StatusDataItemName::Unseen => StatusItem::Unseen(unseen),
            StatusDataItemName::Deleted => StatusItem::Deleted(deleted),
            StatusDataItemName::HighestModSeq => {
                StatusItem::HighestModSeq(header.highestmodseq.max(1))
            }
            StatusDataItemName::Size => {
                let mut total = 0;
                for uid in &uids {
                    total += mailbox.crlf_size(*uid)?;
                }
                StatusItem::Size(total)
            }
            StatusDataItemName::DeletedStorage => continue,
        };
        parts.push(value);
    }
    Response::Status {
        mailbox: MailboxName { name, utf8 },
        items: &parts,
    }
    .encode(out);
    Ok(())
}

/// The stored name a command's mailbox argument names, or the NO for a name that is invalid.
pub fn stored_name(
    account: &Account<'_>,
    mailbox: &Mailbox<'_>,
    cx: &Cx<'_>,
) -> Result<String, Tagged> {
    mailbox_name(mailbox, account.enabled.utf8).map_err(|why| cx.no(Some(Code::Cannot), why))
}

/// The tagged answer to a storage operation: OK with `done`, or the failure.
fn completed(
    account: &Account<'_>,
    result: Result<(), StorageError>,
    done: &str,
    cx: &Cx<'_>,
) -> Step {
    Step::Reply(match result {
        Ok(()) => cx.ok(done),
        Err(e) => cx.failure(account.name(), &e),
    })
}

/// CREATE.
pub fn create(account: &Account<'_>, mailbox: &Mailbox<'_>, cx: &mut Cx<'_>) -> Step {
    match stored_name(account, mailbox, cx) {
        Ok(name) if name == "INBOX" => {
            Step::Reply(cx.no(Some(Code::AlreadyExists), "INBOX always exists."))
        }
        Ok(name) => {
            let created = account.store.folders().create(&name);
            completed(account, created, "Create completed.", cx)
        }
        Err(refused) => Step::Reply(refused),
    }
}

/// DELETE; deleting the selected mailbox leaves the selected state.
pub fn delete(
    account: &Account<'_>,
    selected: Option<&mut Selected>,
    mailbox: &Mailbox<'_>,
    cx: &mut Cx<'_>,
) -> Step {
    let name = match stored_name(account, mailbox, cx) {
        Ok(name) if name == "INBOX" => {
            return Step::Reply(cx.no(Some(Code::Cannot), "INBOX can't be deleted."))
        }
        Ok(name) => name,
        Err(refused) => return Step::Reply(refused),
    };
    let closing = selected.is_some_and(|s| s.name == name);
    if closing {
        cx.send(Response::Ok {
            code: Some(Code::Closed),
            text: "The deleted mailbox was selected.",
        });
    }
    let deleted = account.store.folders().delete(&name);
    match completed(account, deleted, "Delete completed.", cx) {
        Step::Reply(tagged) if closing => Step::Leave(tagged),
        step => step,
    }
}

/// RENAME.
pub fn rename(
    account: &mut Account<'_>,
    from: &Mailbox<'_>,
    to: &Mailbox<'_>,
    cx: &mut Cx<'_>,
) -> Step {
    let names = stored_name(account, from, cx).and_then(|f| Ok((f, stored_name(account, to, cx)?)));
    match names {
        Ok((from, to)) => {
            let renamed = rename_folder(&mut account.store, &from, &to);
            completed(account, renamed, "Rename completed.", cx)
        }
        Err(refused) => Step::Reply(refused),
    }
}

/// SUBSCRIBE and UNSUBSCRIBE.
pub fn subscribe(
    account: &Account<'_>,
    mailbox: &Mailbox<'_>,
    subscribe: bool,
    cx: &mut Cx<'_>,
) -> Step {
    let done = match subscribe {
        true => "Subscribe completed.",
        false => "Unsubscribe completed.",
    };
    match stored_name(account, mailbox, cx) {
        Ok(name) => {
            let changed = account.store.set_subscribed(&name, subscribe);
            completed(account, changed, done, cx)
        }
        Err(refused) => Step::Reply(refused),
    }
}

/// STATUS.
pub fn status(
    account: &Account<'_>,
    mailbox: &Mailbox<'_>,
    items: &[StatusDataItemName],
    cx: &mut Cx<'_>,
) -> Step {
    match stored_name(account, mailbox, cx) {
        Ok(name) => {
            let utf8 = account.enabled.utf8;
            let found = status_response(&account.store, &name, items, utf8, &mut cx.out);
            completed(account, found, "Status completed.", cx)
        }
        Err(refused) => Step::Reply(refused),
    }
}

/// NAMESPACE (RFC 2342): one personal namespace, no prefix.
pub fn namespace(cx: &mut Cx<'_>) -> Step {
    cx.send(Response::Namespace {
        separator: SEPARATOR,
    });
    Step::Reply(cx.ok("Namespace completed."))
}

/// Renames a folder, with RFC 3501's INBOX rule: renaming INBOX moves its messages into a new
/// folder and leaves INBOX empty.
fn rename_folder(store: &mut Store, from: &str, to: &str) -> Result<(), StorageError> {
    if to == "INBOX" {
        return Err(StorageError::AlreadyExists(to.to_string()));
    }
    if from != "INBOX" {
        return store.folders().rename(from, to);
    }
    store.folders().create(to)?;
    let mut dest = store.folders().open(to)?;
    let inbox = store.inbox();
    let uids: Vec<u32> = inbox.sync()?.messages.iter().map(|m| m.uid).collect();
    if !uids.is_empty() {
        inbox.move_to(&uids, dest.as_mut())?;
    }
    Ok(())
}
