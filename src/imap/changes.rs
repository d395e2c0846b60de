//! The commands that change mail: STORE (with UNCHANGEDSINCE, RFC 7162), COPY and MOVE
//! (RFC 6851) with COPYUID, EXPUNGE and UID EXPUNGE (RFC 4315), APPEND with APPENDUID.

use std::time::SystemTime;

use roost_protocol::imap::imap_types::command::StoreModifier;
use roost_protocol::imap::imap_types::datetime::DateTime;
use roost_protocol::imap::imap_types::extensions::binary::LiteralOrLiteral8;
use roost_protocol::imap::imap_types::flag::{Flag, StoreResponse, StoreType};
use roost_protocol::imap::imap_types::sequence::SequenceSet;
use roost_protocol::imap::response::{Code, FetchItem, Response};
use roost_storage::{FlagChange, Flags, Store, Uid};

use super::reply::{bad, message_flags, no, ok, ok_code, parse_flags, storage_failure, Tagged};
use super::selected::Selected;

/// STORE / UID STORE.
#[allow(clippy::too_many_arguments)]
pub fn store(
    selected: &mut Selected,
    condstore: &mut bool,
    set: &SequenceSet,
    kind: &StoreType,
    response: &StoreResponse,
    flags: &[Flag<'_>],
    uid: bool,
    modifiers: &[StoreModifier],
    tag: &str,
    user: &str,
    out: &mut Vec<u8>,
) -> Tagged {
    if let Some(refused) = read_only(selected, tag) {
        return refused;
    }
    let indexes = match selected.resolve(set, uid) {
        Ok(i) => i,
        Err(e) => return bad(tag, &e.to_string()),
    };
    let unchanged_since = modifiers
        .iter()
        .map(|StoreModifier::UnchangedSince(v)| *v)
        .next();
    if unchanged_since.is_some() {
        *condstore = true;
    }
    let mut targets = Vec::new();
    let mut modified = Vec::new();
    for i in indexes {
        let m = &selected.messages[i];
        match unchanged_since {
            Some(limit) if m.modseq > limit => {
                modified.push(if uid { m.uid } else { i as u32 + 1 })
            }
            _ => targets.push(m.uid),
        }
    }
    let (system, keywords) = parse_flags(flags);
    let change = match kind {
        StoreType::Replace => FlagChange::Set,
        StoreType::Add => FlagChange::Add,
        StoreType::Remove => FlagChange::Remove,
    };
    let changed = match selected.mailbox.store(&targets, change, system, &keywords) {
        Ok(changed) => changed,
        Err(e) => return storage_failure(tag, user, &e),
    };
    selected.update_known(&changed);
    let silent = matches!(response, StoreResponse::Silent);
    for info in &changed {
        let Ok(i) = selected.messages.binary_search_by_key(&info.uid, |m| m.uid) else {
            continue;
        };
        if silent && !*condstore {
            continue;
        }
        let flags = message_flags(info);
        let mut items = Vec::new();
        if uid {
            items.push(FetchItem::Uid(info.uid));
        }
        if !silent {
            items.push(FetchItem::Flags(&flags));
        }
        if *condstore {
            items.push(FetchItem::ModSeq(info.modseq));
        }
        Response::Fetch {
            seq: i as u32 + 1,
            items: &items,
        }
        .encode(out);
    }
    if !modified.is_empty() {
        let code = Code::Modified(modified);
        return ok_code(tag, code, "Conditional store failed.");
    }
    ok(tag, "Store completed.")
}

/// COPY / MOVE and their UID forms.
#[allow(clippy::too_many_arguments)]
pub fn copy_or_move(
    store: &Store,
    selected: &mut Selected,
    set: &SequenceSet,
    destination: &str,
    uid: bool,
    moving: bool,
    tag: &str,
    user: &str,
    out: &mut Vec<u8>,
) -> Tagged {
    let what = if moving { "Move" } else { "Copy" };
    if let Some(refused) = read_only(selected, tag).filter(|_| moving) {
        return refused;
    }
    let indexes = match selected.resolve(set, uid) {
        Ok(i) => i,
        Err(e) => return bad(tag, &e.to_string()),
    };
    let uids: Vec<Uid> = indexes.iter().map(|&i| selected.messages[i].uid).collect();
    if uids.is_empty() {
        return ok(tag, &format!("No messages to {}.", what.to_lowercase()));
    }
    let (mut dest, validity) = match open_target(store, destination, tag, user) {
        Ok(opened) => opened,
        Err(tagged) => return tagged,
    };
    let pairs = if moving {
        selected.mailbox.move_to(&uids, dest.as_mut())
    } else {
        selected.mailbox.copy_to(&uids, dest.as_mut())
    };
    let pairs = match pairs {
        Ok(p) => p,
        Err(e) => return storage_failure(tag, user, &e),
    };
    let source: Vec<Uid> = pairs.iter().map(|(from, _)| *from).collect();
    let code = Code::CopyUid {
        uidvalidity: validity,
        source: source.clone(),
        destination: pairs.iter().map(|(_, to)| *to).collect(),
    };
    if moving {
        Response::Ok {
            code: Some(code),
            text: "Moved.",
        }
        .encode(out);
        selected.remove_expunged(&source, out);
        return ok(tag, "Move completed.");
    }
    ok_code(tag, code, "Copy completed.")
}

/// EXPUNGE (all `\Deleted`) or UID EXPUNGE (those of them in `only`).
pub fn expunge(
    selected: &mut Selected,
    only: Option<&SequenceSet>,
    tag: &str,
    user: &str,
    out: &mut Vec<u8>,
) -> Tagged {
    if let Some(refused) = read_only(selected, tag) {
        return refused;
    }
    let allowed = match only {
        Some(set) => match selected.resolve(set, true) {
            Ok(i) => Some(i),
            Err(e) => return bad(tag, &e.to_string()),
        },
        None => None,
    };
    let doomed: Vec<Uid> = selected
        .messages
        .iter()
        .enumerate()
        .filter(|(i, m)| {
            m.flags.contains(Flags::DELETED) && allowed.as_ref().is_none_or(|a| a.contains(i))
        })
        .map(|(_, m)| m.uid)
        .collect();
    match expunge_uids(selected, &doomed, out) {
        Ok(()) => ok(tag, "Expunge completed."),
        Err(e) => storage_failure(tag, user, &e),
    }
}

/// Removes messages and tells the client.
pub fn expunge_uids(
    selected: &mut Selected,
    uids: &[Uid],
    out: &mut Vec<u8>,
) -> Result<(), roost_storage::Error> {
    if uids.is_empty() {
        return Ok(());
    }
    let removed = selected.mailbox.expunge(uids)?;
    selected.remove_expunged(&removed, out);
    Ok(())
}

/// APPEND: stores the message durably, then answers with APPENDUID.
pub fn append(
    store: &Store,
    mailbox: &str,
    flags: &[Flag<'_>],
    date: Option<&DateTime>,
    message: &LiteralOrLiteral8<'_>,
    tag: &str,
    user: &str,
) -> Tagged {
    let mut bytes: &[u8] = match message {
        LiteralOrLiteral8::Literal(l) => l.data(),
        LiteralOrLiteral8::Literal8(l) => l.data.as_ref(),
    };
    let (mut target, validity) = match open_target(store, mailbox, tag, user) {
        Ok(opened) => opened,
        Err(tagged) => return tagged,
    };
    let (system, keywords) = parse_flags(flags);
    let when: Option<SystemTime> = date.map(|d| SystemTime::from(d.as_ref().to_utc()));
    match target.append(&mut bytes, system, &keywords, when) {
        Ok(uid) => ok_code(
            tag,
            Code::AppendUid {
                uidvalidity: validity,
                uid,
            },
            "Append completed.",
        ),
        Err(e) => storage_failure(tag, user, &e),
    }
}

/// Opens the mailbox mail goes into (COPY, MOVE, APPEND) and reads its UIDVALIDITY for the
/// UIDPLUS code; a missing one is `NO [TRYCREATE]` (RFC 3501 6.3.11).
fn open_target(
    store: &Store,
    name: &str,
    tag: &str,
    user: &str,
) -> Result<(Box<dyn roost_storage::Mailbox>, u32), Tagged> {
    let mut target = match store.folders().open(name) {
        Ok(m) => m,
        Err(roost_storage::Error::NoSuchMailbox(_)) => {
            return Err(no(tag, Some(Code::TryCreate), "Mailbox doesn't exist."))
        }
        Err(e) => return Err(storage_failure(tag, user, &e)),
    };
    match target.sync() {
        Ok(s) => Ok((target, s.uidvalidity)),
        Err(e) => Err(storage_failure(tag, user, &e)),
    }
}

/// The NO for a change to a mailbox opened with EXAMINE.
fn read_only(selected: &Selected, tag: &str) -> Option<Tagged> {
    selected.read_only.then(|| {
        no(
            tag,
            Some(Code::ReadOnly),
            "The mailbox is read-only (EXAMINE).",
        )
    })
}
