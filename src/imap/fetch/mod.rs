//! FETCH (RFC 3501 6.4.5, RFC 7162 CHANGEDSINCE/MODSEQ/VANISHED).
//!
//! Cheap items come from the selected view. ENVELOPE, BODY, BODYSTRUCTURE and the header block
//! are computed once per message and kept in the folder's field cache, so a client that asks
//! again (every client does) opens no message file. `BODY[]` and `BODY[TEXT]`, with or without
//! `<partial>`, stream from the file in chunks with CRLF line ends; only part-number sections
//! parse the whole message in memory.
//!
//! ```text
//!   fetch ─► wanted (items, CHANGEDSINCE, VANISHED) ─► per chunk of 256: cached fields read ahead
//!                                                      per message: items::message_response
//!                                                        └─ a streamed body: body::stream_body
//! ```

mod body;
mod items;

use roost_protocol::imap::imap_types::command::FetchModifier;
use roost_protocol::imap::imap_types::fetch::{
    Macro, MacroOrMessageDataItemNames, MessageDataItemName,
};
use roost_protocol::imap::response::Code;
use roost_storage::{Error as StorageError, Uid};

use super::blocking::blocking;
use super::command::Fetch;
use super::context::{Cx, Step};
use super::input::Ended;
use super::message::PREFETCH_CHUNK;
use super::reply::Tagged;
use super::selected::Selected;
use super::state::Account;
use items::{finish_after_stream, message_response, prefetch_for, reads_body};

/// Output is written to the client whenever this much has accumulated.
const FLUSH_AT: usize = 64 * 1024;

/// Why one message's response could not be built.
#[derive(Debug)]
enum FetchError {
    /// Storage failed.
    Storage(StorageError),
    /// BINARY met a transfer encoding it can't decode.
    UnknownCte(String),
}

impl From<StorageError> for FetchError {
    fn from(e: StorageError) -> Self {
        Self::Storage(e)
    }
}

/// A body literal to stream from the file: the whole message or its text, and a byte window.
struct Stream {
    uid: Uid,
    /// CRLF bytes to skip before the literal starts.
    skip: u64,
    /// The literal's length.
    len: u64,
}

/// What the client wants of each message.
struct Wanted<'i> {
    /// The items, with the ones FETCH adds (UID for UID FETCH, FLAGS when `\Seen` is set,
    /// MODSEQ under CONDSTORE).
    items: Vec<MessageDataItemName<'i>>,
    /// CHANGEDSINCE: only messages changed after this mod-sequence.
    changed_since: Option<u64>,
    /// This FETCH turned CONDSTORE on: its tagged OK carries `[HIGHESTMODSEQ n]`.
    enabled_condstore: bool,
}

/// Runs FETCH, writing untagged responses (flushed to the client as they grow).
pub async fn fetch(
    account: &mut Account<'_>,
    selected: &mut Selected,
    args: &Fetch,
    cx: &mut Cx<'_>,
) -> Step {
    let wanted = match wanted(account, selected, args, cx) {
        Ok(wanted) => wanted,
        Err(refused) => return Step::Reply(refused),
    };
    let indexes = match selected.resolve(&args.set, args.uid) {
        Ok(i) => i,
        Err(e) => return Step::Reply(cx.bad(&e.to_string())),
    };
    match respond(account.name(), selected, &indexes, &wanted, cx).await {
        Ok(tagged) => Step::Reply(tagged),
        Err(_) => Step::Ended(Ended::Closed),
    }
}

/// Works out the items and modifiers; a VANISHED modifier reports the vanished UIDs first.
fn wanted<'i>(
    account: &mut Account<'_>,
    selected: &Selected,
    args: &'i Fetch,
    cx: &mut Cx<'_>,
) -> Result<Wanted<'i>, Tagged> {
    let mut items: Vec<MessageDataItemName<'_>> = match &args.items {
        MacroOrMessageDataItemNames::Macro(m) => macro_items(m.clone()),
        MacroOrMessageDataItemNames::MessageDataItemNames(items) => items.clone(),
    };
    let mut changed_since = None;
    let mut vanished = false;
    for m in &args.modifiers {
        match m {
            FetchModifier::ChangedSince(v) => changed_since = Some(v.get()),
            FetchModifier::Vanished if !selected.qresync => {
                return Err(cx.bad("VANISHED needs QRESYNC (ENABLE QRESYNC first)."))
            }
            FetchModifier::Vanished => vanished = true,
        }
    }
    if vanished {
        if !args.uid || changed_since.is_none() {
            let why = "VANISHED is only allowed in UID FETCH with CHANGEDSINCE.";
            return Err(cx.bad(why));
        }
        selected.vanished_earlier(Some(&args.set), &mut cx.out);
    }
    let mut enabled_condstore = false;
    if changed_since.is_some() || items.contains(&MessageDataItemName::ModSeq) {
        enabled_condstore = account.enable_condstore();
        add(&mut items, MessageDataItemName::ModSeq);
    }
    // A read that sets \Seen reports the new flags in the same response (RFC 3501 6.4.5),
    // and under CONDSTORE their mod-sequence too (RFC 7162 3.1).
    if !selected.read_only && items.iter().any(reads_body) {
        add(&mut items, MessageDataItemName::Flags);
        if account.enabled.condstore {
            add(&mut items, MessageDataItemName::ModSeq);
        }
    }
    if args.uid && !items.contains(&MessageDataItemName::Uid) {
        items.insert(0, MessageDataItemName::Uid);
    }
    Ok(Wanted {
        items,
        changed_since,
        enabled_condstore,
    })
}

/// Adds an item at the end unless it is there.
fn add<'i>(items: &mut Vec<MessageDataItemName<'i>>, item: MessageDataItemName<'i>) {
    if !items.contains(&item) {
        items.push(item);
    }
}

fn macro_items(m: Macro) -> Vec<MessageDataItemName<'static>> {
    let mut items = vec![
        MessageDataItemName::Flags,
        MessageDataItemName::InternalDate,
        MessageDataItemName::Rfc822Size,
    ];
    match m {
        Macro::Fast => {}
        Macro::All => items.push(MessageDataItemName::Envelope),
        Macro::Full => {
            items.push(MessageDataItemName::Envelope);
            items.push(MessageDataItemName::Body);
        }
        _ => {}
    }
    items
}

/// Writes each message's response, a chunk of messages at a time with their cached fields
/// read ahead; the tagged line, or `Err` when the connection broke.
async fn respond(
    user: &str,
    selected: &mut Selected,
    indexes: &[usize],
    wanted: &Wanted<'_>,
    cx: &mut Cx<'_>,
) -> std::io::Result<Tagged> {
    let mut prefetch = prefetch_for(&wanted.items);
    let mut vanished = false;
    let mut ended = Ok(None);
    for chunk in indexes.chunks(PREFETCH_CHUNK) {
        let uids: Vec<Uid> = chunk
            .iter()
            .filter(|&&i| {
                let since = wanted.changed_since;
                since.is_none_or(|since| selected.view.modseq(i) > since)
            })
            .map(|&i| selected.uid(i))
            .collect();
        blocking(|| prefetch.chunk(&mut *selected.mailbox(), &uids));
        ended = respond_chunk(user, selected, chunk, wanted, cx, &mut vanished).await;
        if !matches!(ended, Ok(None)) {
            break;
        }
    }
    prefetch.done(&mut *selected.mailbox());
    if let Some(tagged) = ended? {
        return Ok(tagged);
    }
    if vanished {
        let why = "Some of the requested messages no longer exist.";
        return Ok(cx.no(Some(Code::ExpungeIssued), why));
    }
    Ok(cx.ok_condstore(wanted.enabled_condstore, selected, "Fetch completed."))
}

/// Writes the responses of one chunk of messages; `Some` is a tagged line that ends the
/// command early (a storage failure), `Err` a broken connection.
async fn respond_chunk(
    user: &str,
    selected: &mut Selected,
    chunk: &[usize],
    wanted: &Wanted<'_>,
    cx: &mut Cx<'_>,
    vanished: &mut bool,
) -> std::io::Result<Option<Tagged>> {
    let mut rest = chunk;
    while !rest.is_empty() {
        // One storage call renders messages until one needs its body streamed, fails, or
        // the output is due to be sent: not one hand-over of the runtime thread per message.
        let out = &mut cx.out;
        let (done, pause) = blocking(|| render_until_pause(selected, rest, wanted, out, vanished));
        rest = &rest[done..];
        match pause {
            Pause::Streamed(i, stream) => {
                send_streamed(selected, i, &wanted.items, stream, cx).await?;
            }
            Pause::Failed(FetchError::Storage(e)) => return Ok(Some(cx.failure(user, &e))),
            Pause::Failed(FetchError::UnknownCte(cte)) => {
                let why = format!("Can't decode Content-Transfer-Encoding {cte}.");
                return Ok(Some(cx.no(Some(Code::UnknownCte), &why)));
            }
            Pause::Flush => {}
        }
        if cx.out.len() >= FLUSH_AT {
            cx.conn.write(&cx.out).await?;
            cx.out.clear();
        }
    }
    Ok(None)
}

/// Why [`render_until_pause`] stopped.
enum Pause {
    /// The output is due to be sent, or every message is done.
    Flush,
    /// The response of message `i` continues with a streamed body literal.
    Streamed(usize, Stream),
    /// Storage failed or a transfer encoding cannot be decoded: the command ends here.
    Failed(FetchError),
}

/// Appends the responses of `indexes` to `out` until a pause; returns how many messages it
/// dealt with. A message gone meanwhile is skipped (`vanished` set); a message whose response
/// fails half-way takes back what it wrote, and only that: the responses before it still go
/// out.
fn render_until_pause(
    selected: &mut Selected,
    indexes: &[usize],
    wanted: &Wanted<'_>,
    out: &mut Vec<u8>,
    vanished: &mut bool,
) -> (usize, Pause) {
    for (n, &i) in indexes.iter().enumerate() {
        if let Some(since) = wanted.changed_since {
            if selected.view.modseq(i) <= since {
                continue;
            }
        }
        let start = out.len();
        match message_response(selected, i, &wanted.items, out) {
            Ok(Some(stream)) => return (n + 1, Pause::Streamed(i, stream)),
            Ok(None) => {}
            Err(FetchError::Storage(StorageError::NoSuchMessage(_))) => {
                out.truncate(start);
                *vanished = true;
            }
            Err(e) => {
                out.truncate(start);
                return (n + 1, Pause::Failed(e));
            }
        }
        if out.len() >= FLUSH_AT {
            return (n + 1, Pause::Flush);
        }
    }
    (indexes.len(), Pause::Flush)
}

/// Sends what is pending, the streamed literal, and the rest of the message's response.
async fn send_streamed(
    selected: &mut Selected,
    i: usize,
    items: &[MessageDataItemName<'_>],
    stream: Stream,
    cx: &mut Cx<'_>,
) -> std::io::Result<()> {
    let reader = selected.mailbox().open_message(stream.uid);
    cx.conn.write(&cx.out).await?;
    cx.out.clear();
    let reader = reader.map_err(|e| std::io::Error::other(e.to_string()))?;
    body::stream_body(cx.conn, reader, stream).await?;
    crate::counters::global().retrieved();
    // The literal ends; the rest of the response follows.
    finish_after_stream(selected, i, items, &mut cx.out);
    Ok(())
}
