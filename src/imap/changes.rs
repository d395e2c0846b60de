//! The commands that change mail: STORE (with UNCHANGEDSINCE, RFC 7162), COPY and MOVE
//! (RFC 6851) with COPYUID, EXPUNGE and UID EXPUNGE (RFC 4315), APPEND with APPENDUID.

use std::sync::Arc;

use roost_protocol::imap::imap_types::command::StoreModifier;
use roost_protocol::imap::imap_types::datetime::DateTime;
use roost_protocol::imap::imap_types::extensions::binary::LiteralOrLiteral8;
use roost_protocol::imap::imap_types::flag::{Flag, StoreResponse, StoreType};
use roost_protocol::imap::imap_types::sequence::SequenceSet;
use roost_protocol::imap::message::{to_crlf, Structure};
use roost_protocol::imap::response::{Code, FetchItem, Response};
use roost_storage::{FlagChange, Flags, Incoming, MessageInfo, SharedMailbox, Store, Uid};

use super::catenate;
use super::command::{Append, Copy, Store as StoreArgs};
use super::context::{Cx, Step};
use super::mailboxes::stored_name;
use super::reply::{parse_flags, Tagged};
use super::selected::Selected;
use super::state::Account;

/// STORE / UID STORE.
pub fn store(
    account: &mut Account<'_>,
    selected: &mut Selected,
    args: &StoreArgs,
    cx: &mut Cx<'_>,
) -> Step {
    Step::Reply(store_flags(account, selected, args, cx).unwrap_or_else(|refused| refused))
}

fn store_flags(
    account: &mut Account<'_>,
    selected: &mut Selected,
    args: &StoreArgs,
    cx: &mut Cx<'_>,
) -> Result<Tagged, Tagged> {
    read_only(selected, cx)?;
    let indexes = selected
        .resolve(&args.set, args.uid)
        .map_err(|e| cx.bad(&e.to_string()))?;
    let unchanged_since = args
        .modifiers
        .iter()
        .map(|StoreModifier::UnchangedSince(v)| *v)
        .next();
    let enabled_condstore = unchanged_since.is_some() && account.enable_condstore();
    let (targets, modified) = conditional_targets(selected, &indexes, unchanged_since, args.uid);
    let (system, keywords) = parse_flags(&args.flags);
    let change = match args.kind {
        StoreType::Replace => FlagChange::Set,
        StoreType::Add => FlagChange::Add,
        StoreType::Remove => FlagChange::Remove,
    };
    let changed = selected
        .view
        .store(&targets, change, system, &keywords)
        .map_err(|e| cx.failure(account.name(), &e))?;
    let silent = matches!(args.response, StoreResponse::Silent);
    report_stored(
        selected,
        &changed,
        args.uid,
        silent,
        account.enabled.condstore,
        cx,
    );
    if !modified.is_empty() {
        let code = Code::Modified(modified);
        return Ok(cx.ok_code(code, "Conditional store failed."));
    }
    Ok(cx.ok_condstore(enabled_condstore, selected, "Store completed."))
}

/// The UIDs to change, and the numbers (as the client names them) that UNCHANGEDSINCE keeps
/// from changing because they changed since.
fn conditional_targets(
    selected: &Selected,
    indexes: &[usize],
    unchanged_since: Option<u64>,
    uid: bool,
) -> (Vec<Uid>, Vec<u32>) {
    let mut targets = Vec::new();
    let mut modified = Vec::new();
    for &i in indexes {
        let m = selected.uid(i);
        match unchanged_since {
            Some(limit) if selected.view.modseq(i) > limit => {
                modified.push(if uid { m } else { i as u32 + 1 })
            }
            _ => targets.push(m),
        }
    }
    (targets, modified)
}

/// `* n FETCH (...)` for every changed message: the flags unless `.SILENT`, the UID for UID
/// STORE, the mod-sequence under CONDSTORE.
fn report_stored(
    selected: &mut Selected,
    changed: &[MessageInfo],
    uid: bool,
    silent: bool,
    condstore: bool,
    cx: &mut Cx<'_>,
) {
    selected.announce_keywords(changed.iter().flat_map(|m| &m.keywords), &mut cx.out);
    for info in changed {
        let Some(i) = selected.view.index_of(info.uid) else {
            continue;
        };
        if silent && !condstore {
            continue;
        }
        let flags = selected.flags_of(info);
        let mut items = Vec::new();
        if uid {
            items.push(FetchItem::Uid(info.uid));
        }
        if !silent {
            items.push(FetchItem::Flags(&flags));
        }
        if condstore {
            items.push(FetchItem::ModSeq(info.modseq));
        }
        cx.send(Response::Fetch {
            seq: i as u32 + 1,
            items: &items,
        });
    }
}

/// COPY / MOVE and their UID forms.
pub fn copy_or_move(
    account: &Account<'_>,
    selected: &mut Selected,
    args: &Copy,
    cx: &mut Cx<'_>,
) -> Step {
    let done = stored_name(account, &args.mailbox, cx)
        .and_then(|destination| copy_to(account, selected, args, &destination, cx));
    Step::Reply(done.unwrap_or_else(|refused| refused))
}

fn copy_to(
    account: &Account<'_>,
    selected: &mut Selected,
    args: &Copy,
    destination: &str,
    cx: &mut Cx<'_>,
) -> Result<Tagged, Tagged> {
    if args.moving {
        read_only(selected, cx)?;
    }
    let indexes = selected
        .resolve(&args.set, args.uid)
        .map_err(|e| cx.bad(&e.to_string()))?;
    let uids: Vec<Uid> = indexes.iter().map(|&i| selected.uid(i)).collect();
    let verb = if args.moving { "move" } else { "copy" };
    if uids.is_empty() {
        return Ok(cx.ok(&format!("No messages to {verb}.")));
    }
    let (dest, uidvalidity) = open_target(account, destination, cx)?;
    let pairs = match args.moving {
        true => selected.view.move_to(&uids, &dest),
        false => selected.view.copy_to(&uids, &dest),
    }
    .map_err(|e| cx.failure(account.name(), &e))?;
    let source: Vec<Uid> = pairs.iter().map(|(from, _)| *from).collect();
    let code = Code::CopyUid {
        uidvalidity,
        source: source.clone(),
        destination: pairs.iter().map(|(_, to)| *to).collect(),
    };
    if !args.moving {
        return Ok(cx.ok_code(code, "Copy completed."));
    }
    cx.send(Response::Ok {
        code: Some(code),
        text: "Moved.",
    });
    selected.remove_expunged(&source, &mut cx.out);
    Ok(cx.ok("Move completed."))
}

/// EXPUNGE (all `\Deleted`) or UID EXPUNGE (those of them in `only`).
pub fn expunge(
    account: &Account<'_>,
    selected: &mut Selected,
    only: Option<&SequenceSet>,
    cx: &mut Cx<'_>,
) -> Step {
    if let Err(refused) = read_only(selected, cx) {
        return Step::Reply(refused);
    }
    let allowed = match only.map(|set| selected.resolve(set, true)).transpose() {
        Ok(allowed) => allowed,
        Err(e) => return Step::Reply(cx.bad(&e.to_string())),
    };
    let doomed: Vec<Uid> = (0..selected.len())
        .filter(|i| {
            selected.view.flags(*i).contains(Flags::DELETED)
                && allowed.as_ref().is_none_or(|a| a.contains(i))
        })
        .map(|i| selected.uid(i))
        .collect();
    Step::Reply(match expunge_uids(selected, &doomed, &mut cx.out) {
        Ok(()) => cx.ok("Expunge completed."),
        Err(e) => cx.failure(account.name(), &e),
    })
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
    let removed = selected.view.expunge(uids)?;
    selected.remove_expunged(&removed, out);
    Ok(())
}

/// APPEND: stores the message durably, then answers with APPENDUID. With MULTIAPPEND
/// (RFC 3502) the command carries more messages: all are stored or none.
pub fn append(account: &Account<'_>, args: &Append, cx: &mut Cx<'_>) -> Step {
    let more = std::mem::take(&mut cx.extras.more_messages);
    let catenate = std::mem::take(&mut cx.extras.catenate);
    let done = stored_name(account, &args.mailbox, cx).and_then(|name| {
        let (target, uidvalidity) = open_target(account, &name, cx)?;
        let mut converted: Vec<Option<Vec<u8>>> = std::iter::once(&args.message)
            .chain(more.iter().map(|m| &m.message))
            .map(binary_as_base64)
            .collect();
        // CATENATE messages are put together first: one bad URL refuses the whole command.
        for (slot, parts) in converted.iter_mut().zip(&catenate) {
            if let Some(parts) = parts {
                let limit = account.user.max_literal as usize;
                *slot = Some(
                    catenate::assemble(account, parts, limit).map_err(|refusal| match refusal {
                        catenate::Refusal::BadUrl(url) => cx.no(
                            Some(Code::BadUrl(&url)),
                            "The URL names no message or part this user can read.",
                        ),
                        catenate::Refusal::TooBig => {
                            cx.no(Some(Code::TooBig), "The message would be too big.")
                        }
                    })?,
                );
            }
        }
        let first = incoming(
            &args.flags,
            args.date.as_ref(),
            &args.message,
            &converted[0],
        );
        let stored = if more.is_empty() {
            let mut data = first.data;
            target
                .append(&mut data, first.flags, &first.keywords, first.when)
                .map(|uid| vec![uid])
        } else {
            let mut all = vec![first];
            all.extend(
                more.iter()
                    .zip(&converted[1..])
                    .map(|(m, c)| incoming(&m.flags, m.date.as_ref(), &m.message, c)),
            );
            target.append_all(&all)
        };
        match stored {
            Ok(uids) => Ok(cx.ok_code(Code::AppendUid { uidvalidity, uids }, "Append completed.")),
            Err(e) => Err(cx.failure(account.name(), &e)),
        }
    });
    Step::Reply(done.unwrap_or_else(|refused| refused))
}

/// A message sent as a literal8 (RFC 3516) with `Content-Transfer-Encoding: binary` parts,
/// those parts re-encoded as base64 so every later FETCH can send it in a plain literal (as
/// Dovecot stores it); `None` when it is stored as sent.
fn binary_as_base64(message: &LiteralOrLiteral8<'_>) -> Option<Vec<u8>> {
    let LiteralOrLiteral8::Literal8(literal) = message else {
        return None;
    };
    let crlf = to_crlf(literal.data.as_ref());
    let converted = Structure::parse(&crlf).binary_parts_as_base64();
    converted
}

/// One message of an APPEND as storage takes it (`converted`: its re-encoded form, if any).
fn incoming<'m>(
    flags: &[Flag<'_>],
    date: Option<&DateTime>,
    message: &'m LiteralOrLiteral8<'_>,
    converted: &'m Option<Vec<u8>>,
) -> Incoming<'m> {
    let (flags, keywords) = parse_flags(flags);
    Incoming {
        data: match (converted, message) {
            (Some(converted), _) => converted,
            (None, LiteralOrLiteral8::Literal(l)) => l.data(),
            (None, LiteralOrLiteral8::Literal8(l)) => l.data.as_ref(),
        },
        flags,
        keywords,
        when: date.map(|d| d.as_ref().to_utc().into()),
    }
}

/// Opens the mailbox mail goes into (COPY, MOVE, APPEND; the shared view when a session has
/// it open) and reads its UIDVALIDITY for the UIDPLUS code; a missing one is `NO [TRYCREATE]`
/// (RFC 3501 6.3.11).
fn open_target(
    account: &Account<'_>,
    name: &str,
    cx: &Cx<'_>,
) -> Result<(Arc<SharedMailbox>, u32), Tagged> {
    let store: &Store = &account.store;
    match SharedMailbox::open(store, name) {
        Ok(target) => {
            let uidvalidity = target.uidvalidity();
            Ok((target, uidvalidity))
        }
        Err(roost_storage::Error::NoSuchMailbox(_)) => {
            Err(cx.no(Some(Code::TryCreate), "Mailbox doesn't exist."))
        }
        Err(e) => Err(cx.failure(account.name(), &e)),
    }
}

/// The NO for a change to a mailbox opened with EXAMINE.
fn read_only(selected: &Selected, cx: &Cx<'_>) -> Result<(), Tagged> {
    match selected.read_only {
        true => Err(cx.no(Some(Code::ReadOnly), "The mailbox is read-only (EXAMINE).")),
        false => Ok(()),
    }
}
