//! FETCH (RFC 3501 6.4.5, RFC 7162 CHANGEDSINCE/MODSEQ).
//!
//! Cheap items come from the selected view. ENVELOPE, BODY, BODYSTRUCTURE and the header block
//! are computed once per message and kept in the folder's field cache, so a client that asks
//! again (every client does) opens no message file. `BODY[]` and `BODY[TEXT]`, with or without
//! `<partial>`, stream from the file in chunks with CRLF line ends; only part-number sections
//! parse the whole message in memory.

use std::io::Read;

use roost_protocol::imap::imap_types::command::FetchModifier;
use roost_protocol::imap::imap_types::fetch::{
    Macro, MacroOrMessageDataItemNames, MessageDataItemName, Part, Section,
};
use roost_protocol::imap::imap_types::sequence::SequenceSet;
use roost_protocol::imap::message::{
    header_fields, header_len, SectionText, Structure, UnknownCte,
};
use roost_protocol::imap::response::{push_fetch_end, push_fetch_start, Code, FetchItem, Literal};
use roost_storage::mailbox::MessageReader;
use roost_storage::wire::CrlfReader;
use roost_storage::{Error as StorageError, FlagChange, Flags, Mailbox, Uid};

use super::reply::{bad, message_flags, no, ok, storage_failure, Tagged};
use super::selected::Selected;
use crate::listen::conn::Connection;

/// Output is written to the client whenever this much has accumulated.
const FLUSH_AT: usize = 64 * 1024;
/// Field cache names.
const ENVELOPE: &str = "ENVELOPE";
const BODYSTRUCTURE: &str = "BODYSTRUCTURE";
const BODY: &str = "BODY";
const HEADER: &str = "HEADER";

/// The FETCH arguments.
pub struct FetchArgs<'a> {
    /// Which messages.
    pub set: &'a SequenceSet,
    /// What about them.
    pub items: &'a MacroOrMessageDataItemNames<'a>,
    /// UID FETCH.
    pub uid: bool,
    /// CHANGEDSINCE and friends.
    pub modifiers: &'a [FetchModifier],
}

/// Runs FETCH, writing untagged responses (flushing `out` to `conn` as it grows); returns the
/// tagged line.
pub async fn fetch(
    conn: &mut Connection,
    selected: &mut Selected,
    condstore: &mut bool,
    user: &str,
    tag: &str,
    args: FetchArgs<'_>,
    out: &mut Vec<u8>,
) -> std::io::Result<Tagged> {
    let mut items: Vec<MessageDataItemName<'_>> = match args.items {
        MacroOrMessageDataItemNames::Macro(m) => macro_items(m.clone()),
        MacroOrMessageDataItemNames::MessageDataItemNames(items) => items.clone(),
    };
    let mut changed_since = None;
    let mut vanished_wanted = false;
    for m in args.modifiers {
        match m {
            FetchModifier::ChangedSince(v) => changed_since = Some(v.get()),
            FetchModifier::Vanished if !selected.qresync => {
                return Ok(bad(tag, "VANISHED needs QRESYNC (ENABLE QRESYNC first)."))
            }
            FetchModifier::Vanished => vanished_wanted = true,
        }
    }
    if vanished_wanted {
        if !args.uid || changed_since.is_none() {
            return Ok(bad(
                tag,
                "VANISHED is only allowed in UID FETCH with CHANGEDSINCE.",
            ));
        }
        selected.vanished_earlier(Some(args.set), out);
    }
    if changed_since.is_some() || items.contains(&MessageDataItemName::ModSeq) {
        *condstore = true;
        if !items.contains(&MessageDataItemName::ModSeq) {
            items.push(MessageDataItemName::ModSeq);
        }
    }
    // A read that sets \Seen reports the new flags in the same response (RFC 3501 6.4.5).
    if !selected.read_only
        && items.iter().any(reads_body)
        && !items.contains(&MessageDataItemName::Flags)
    {
        items.push(MessageDataItemName::Flags);
    }
    if args.uid && !items.contains(&MessageDataItemName::Uid) {
        items.insert(0, MessageDataItemName::Uid);
    }
    let indexes = match selected.resolve(args.set, args.uid) {
        Ok(i) => i,
        Err(e) => return Ok(bad(tag, &e.to_string())),
    };
    let mut vanished = false;
    for i in indexes {
        if let Some(since) = changed_since {
            if selected.messages[i].modseq <= since {
                continue;
            }
        }
        match super::authenticated::blocking(|| message_response(selected, i, &items, out)) {
            Ok(stream) => {
                if let Some(stream) = stream {
                    let reader = selected.mailbox.open_message(stream.uid);
                    conn.write(out).await?;
                    out.clear();
                    let reader = reader.map_err(|e| std::io::Error::other(e.to_string()))?;
                    stream_body(conn, reader, stream).await?;
                    crate::status::counters::global().retrieved();
                    // The literal ends; the rest of the response follows.
                    finish_after_stream(selected, i, &items, out);
                }
            }
            Err(FetchError::Storage(StorageError::NoSuchMessage(_))) => vanished = true,
            Err(FetchError::Storage(e)) => return Ok(storage_failure(tag, user, &e)),
            Err(FetchError::UnknownCte(cte)) => {
                out.clear();
                return Ok(no(
                    tag,
                    Some(Code::UnknownCte),
                    &format!("Can't decode Content-Transfer-Encoding {cte}."),
                ));
            }
        }
        if out.len() >= FLUSH_AT {
            conn.write(out).await?;
            out.clear();
        }
    }
    if vanished {
        return Ok(no(
            tag,
            Some(Code::ExpungeIssued),
            "Some of the requested messages no longer exist.",
        ));
    }
    Ok(ok(tag, "Fetch completed."))
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

/// Writes `* n FETCH (...` for message `i`. When an item must be streamed, writes up to and
/// including its literal header and returns the stream; the items after it are written by
/// [`finish_after_stream`]. Otherwise writes the whole response.
fn message_response(
    selected: &mut Selected,
    i: usize,
    items: &[MessageDataItemName<'_>],
    out: &mut Vec<u8>,
) -> Result<Option<Stream>, FetchError> {
    mark_seen_if_read(selected, i, items)?;
    push_fetch_start(out, i as u32 + 1);
    let stream = write_items(selected, i, items, out, 0)?;
    if stream.is_none() {
        push_fetch_end(out);
    }
    Ok(stream)
}

fn finish_after_stream(
    selected: &mut Selected,
    i: usize,
    items: &[MessageDataItemName<'_>],
    out: &mut Vec<u8>,
) {
    let streamed_at = items.iter().position(streams).unwrap_or(items.len());
    // Only one item per response streams (the first); later body items are built in memory.
    if let Err(e) = write_items(selected, i, items, out, streamed_at + 1) {
        tracing::warn!("FETCH of message {} failed after its body: {e:?}", i + 1);
    }
    push_fetch_end(out);
}

/// Whether an item is streamed from the file rather than built in memory.
fn streams(item: &MessageDataItemName<'_>) -> bool {
    matches!(
        item,
        MessageDataItemName::BodyExt {
            section: None | Some(Section::Text(None)),
            ..
        } | MessageDataItemName::Rfc822
            | MessageDataItemName::Rfc822Text
    )
}

/// Whether an item reads the message in the sense that sets `\Seen`.
fn reads_body(item: &MessageDataItemName<'_>) -> bool {
    matches!(
        item,
        MessageDataItemName::BodyExt { peek: false, .. }
            | MessageDataItemName::Binary { peek: false, .. }
            | MessageDataItemName::Rfc822
            | MessageDataItemName::Rfc822Text
    )
}

/// `BODY[...]` (not PEEK), RFC822 and RFC822.TEXT set `\Seen` in a read-write mailbox.
fn mark_seen_if_read(
    selected: &mut Selected,
    i: usize,
    items: &[MessageDataItemName<'_>],
) -> Result<(), StorageError> {
    let m = &selected.messages[i];
    let reads = items.iter().any(reads_body);
    if !reads || selected.read_only || m.flags.contains(Flags::SEEN) {
        return Ok(());
    }
    let changed =
        selected
            .mailbox
            .store(&[m.uid], FlagChange::Add, Flags::SEEN, &Default::default())?;
    selected.update_known(&changed);
    Ok(())
}

/// Writes items from `start` on, separated by spaces; stops at the first streamed item (when
/// `start` is 0) and returns its stream.
fn write_items(
    selected: &mut Selected,
    i: usize,
    items: &[MessageDataItemName<'_>],
    out: &mut Vec<u8>,
    start: usize,
) -> Result<Option<Stream>, FetchError> {
    let mut first = start == 0;
    for item in items.iter().skip(start) {
        if !first {
            out.push(b' ');
        }
        first = false;
        let info = selected.messages[i].clone();
        let mailbox = selected.mailbox.as_mut();
        match item {
            MessageDataItemName::Uid => FetchItem::Uid(info.uid).encode(out),
            MessageDataItemName::Flags => FetchItem::Flags(&message_flags(&info)).encode(out),
            MessageDataItemName::InternalDate => {
                FetchItem::InternalDate(info.internal_date).encode(out)
            }
            MessageDataItemName::Rfc822Size => {
                FetchItem::Rfc822Size(mailbox.crlf_size(info.uid)?).encode(out)
            }
            MessageDataItemName::ModSeq => FetchItem::ModSeq(info.modseq).encode(out),
            MessageDataItemName::Envelope => {
                FetchItem::Envelope(&envelope(mailbox, info.uid)?).encode(out)
            }
            MessageDataItemName::Body => {
                FetchItem::Body(&structure(mailbox, info.uid, false)?).encode(out)
            }
            MessageDataItemName::BodyStructure => {
                FetchItem::BodyStructure(&structure(mailbox, info.uid, true)?).encode(out)
            }
            MessageDataItemName::BodyExt {
                section, partial, ..
            } => {
                let window = partial.map(|(o, n)| (u64::from(o), u64::from(n.get())));
                let body = body_item(mailbox, info.uid, section.as_ref(), window, start == 0)?;
                FetchItem::BodySection {
                    section: section.as_ref(),
                    origin: partial.map(|(o, _)| o),
                    data: body.literal(),
                }
                .encode(out);
                if let Body::Streamed(stream) = body {
                    return Ok(Some(stream));
                }
            }
            MessageDataItemName::Rfc822 => {
                let body = body_item(mailbox, info.uid, None, None, start == 0)?;
                FetchItem::Rfc822(body.literal()).encode(out);
                if let Body::Streamed(stream) = body {
                    return Ok(Some(stream));
                }
            }
            MessageDataItemName::Rfc822Header => {
                FetchItem::Rfc822Header(&header_of(mailbox, info.uid)?).encode(out)
            }
            MessageDataItemName::Rfc822Text => {
                let text = Section::Text(None);
                let body = body_item(mailbox, info.uid, Some(&text), None, start == 0)?;
                FetchItem::Rfc822Text(body.literal()).encode(out);
                if let Body::Streamed(stream) = body {
                    return Ok(Some(stream));
                }
            }
            MessageDataItemName::Binary {
                section, partial, ..
            } => {
                let path: Vec<u32> = section.iter().map(|n| n.get()).collect();
                let bytes = binary(mailbox, info.uid, &path)?;
                let bytes = match partial {
                    Some((origin, count)) => {
                        let from = (*origin as usize).min(bytes.len());
                        let to = from.saturating_add(count.get() as usize).min(bytes.len());
                        bytes[from..to].to_vec()
                    }
                    None => bytes,
                };
                FetchItem::Binary {
                    section: &path,
                    origin: partial.map(|(o, _)| o),
                    data: &bytes,
                }
                .encode(out);
            }
            MessageDataItemName::BinarySize { section } => {
                let path: Vec<u32> = section.iter().map(|n| n.get()).collect();
                let size = binary(mailbox, info.uid, &path)?.len() as u64;
                FetchItem::BinarySize {
                    section: &path,
                    size,
                }
                .encode(out);
            }
        }
    }
    Ok(None)
}

/// `BINARY[path]`: the part decoded (empty for a part that doesn't exist).
fn binary(mailbox: &mut dyn Mailbox, uid: Uid, path: &[u32]) -> Result<Vec<u8>, FetchError> {
    let whole = whole_message_of(mailbox, uid)?;
    let structure = Structure::parse(&whole);
    match structure.decoded_section(path) {
        Some(Ok(bytes)) => Ok(bytes),
        Some(Err(UnknownCte(cte))) => Err(FetchError::UnknownCte(cte)),
        None => Ok(Vec::new()),
    }
}

fn part_numbers(part: &Option<Part>) -> Vec<u32> {
    part.as_ref()
        .map(|p| p.0.as_ref().iter().map(|n| n.get()).collect())
        .unwrap_or_default()
}

/// A body section's bytes: built in memory, or to be streamed from the file.
enum Body {
    /// The bytes, in memory.
    Bytes(Vec<u8>),
    /// The literal to stream after its header.
    Streamed(Stream),
}

impl Body {
    fn literal(&self) -> Literal<'_> {
        match self {
            Self::Bytes(bytes) => Literal::Bytes(bytes),
            Self::Streamed(stream) => Literal::Streamed(stream.len),
        }
    }
}

/// One body section: streamed from the file (the whole message or its text) when allowed and
/// possible, else built in memory.
fn body_item(
    mailbox: &mut dyn Mailbox,
    uid: Uid,
    section: Option<&Section<'_>>,
    window: Option<(u64, u64)>,
    may_stream: bool,
) -> Result<Body, StorageError> {
    let whole_or_text = match section {
        None => Some(false),
        Some(Section::Text(None)) => Some(true),
        _ => None,
    };
    if let (Some(text_only), true) = (whole_or_text, may_stream) {
        let total = mailbox.crlf_size(uid)?;
        let start = if text_only {
            header_of(mailbox, uid)?.len() as u64
        } else {
            0
        };
        let available = total.saturating_sub(start);
        let (skip, len) = match window {
            Some((origin, count)) => {
                let origin = origin.min(available);
                (start + origin, count.min(available - origin))
            }
            None => (start, available),
        };
        return Ok(Body::Streamed(Stream { uid, skip, len }));
    }
    let bytes = section_bytes(mailbox, uid, section)?;
    let bytes = match window {
        Some((origin, count)) => {
            let from = (origin as usize).min(bytes.len());
            let to = from.saturating_add(count as usize).min(bytes.len());
            bytes[from..to].to_vec()
        }
        None => bytes,
    };
    Ok(Body::Bytes(bytes))
}

/// HEADER.FIELDS names, and whether they are the ones to leave out (`.NOT`).
type FieldFilter<'a> = (Vec<&'a [u8]>, bool);

/// The bytes of a section that is built in memory.
fn section_bytes(
    mailbox: &mut dyn Mailbox,
    uid: Uid,
    section: Option<&Section<'_>>,
) -> Result<Vec<u8>, StorageError> {
    let top_header = |mailbox: &mut dyn Mailbox| header_of(mailbox, uid);
    match section {
        Some(Section::Header(None)) => top_header(mailbox),
        Some(Section::HeaderFields(None, names)) => {
            let names: Vec<&[u8]> = names.as_ref().iter().map(|n| n.as_ref()).collect();
            Ok(header_fields(&top_header(mailbox)?, &names, false))
        }
        Some(Section::HeaderFieldsNot(None, names)) => {
            let names: Vec<&[u8]> = names.as_ref().iter().map(|n| n.as_ref()).collect();
            Ok(header_fields(&top_header(mailbox)?, &names, true))
        }
        _ => {
            let whole = whole_message_of(mailbox, uid)?;
            let structure = Structure::parse(&whole);
            let (path, text, filter): (Vec<u32>, SectionText, Option<FieldFilter<'_>>) =
                match section {
                    None => (Vec::new(), SectionText::Content, None),
                    Some(Section::Part(p)) => {
                        (part_numbers(&Some(p.clone())), SectionText::Content, None)
                    }
                    Some(Section::Header(p)) => (part_numbers(p), SectionText::Header, None),
                    Some(Section::HeaderFields(p, names)) => (
                        part_numbers(p),
                        SectionText::Header,
                        Some((names.as_ref().iter().map(|n| n.as_ref()).collect(), false)),
                    ),
                    Some(Section::HeaderFieldsNot(p, names)) => (
                        part_numbers(p),
                        SectionText::Header,
                        Some((names.as_ref().iter().map(|n| n.as_ref()).collect(), true)),
                    ),
                    Some(Section::Text(p)) => (part_numbers(p), SectionText::Text, None),
                    Some(Section::Mime(p)) => {
                        (part_numbers(&Some(p.clone())), SectionText::Mime, None)
                    }
                };
            let bytes = structure
                .section(&path, text)
                .and_then(|r| whole.get(r))
                .unwrap_or_default();
            Ok(match filter {
                Some((names, not)) => header_fields(bytes, &names, not),
                None => bytes.to_vec(),
            })
        }
    }
}

/// The message's header block with CRLF line ends, blank line included (cached).
pub(super) fn header_of(mailbox: &mut dyn Mailbox, uid: Uid) -> Result<Vec<u8>, StorageError> {
    if let Some(cached) = mailbox.cached(uid, HEADER) {
        return Ok(cached);
    }
    let mut reader = CrlfReader::new(mailbox.open_message(uid)?);
    let mut header = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = reader
            .read(&mut buf)
            .map_err(|e| StorageError::io(format!("message UID {uid}"), e))?;
        if n == 0 {
            break;
        }
        header.extend_from_slice(&buf[..n]);
        let len = header_len(&header);
        if len < header.len() || header.ends_with(b"\r\n\r\n") {
            header.truncate(len);
            break;
        }
    }
    mailbox.cache(uid, HEADER, &header)?;
    Ok(header)
}

/// The whole message with CRLF line ends, in memory (for part-number sections and BODY).
pub(super) fn whole_message_of(
    mailbox: &mut dyn Mailbox,
    uid: Uid,
) -> Result<Vec<u8>, StorageError> {
    let mut reader = CrlfReader::new(mailbox.open_message(uid)?);
    let mut whole = Vec::new();
    reader
        .read_to_end(&mut whole)
        .map_err(|e| StorageError::io(format!("message UID {uid}"), e))?;
    Ok(whole)
}

fn envelope(mailbox: &mut dyn Mailbox, uid: Uid) -> Result<Vec<u8>, StorageError> {
    if let Some(cached) = mailbox.cached(uid, ENVELOPE) {
        return Ok(cached);
    }
    let header = header_of(mailbox, uid)?;
    let value = Structure::parse(&header).envelope();
    mailbox.cache(uid, ENVELOPE, &value)?;
    Ok(value)
}

fn structure(mailbox: &mut dyn Mailbox, uid: Uid, extended: bool) -> Result<Vec<u8>, StorageError> {
    let field = if extended { BODYSTRUCTURE } else { BODY };
    if let Some(cached) = mailbox.cached(uid, field) {
        return Ok(cached);
    }
    let whole = whole_message_of(mailbox, uid)?;
    let parsed = Structure::parse(&whole);
    let full = parsed.body_structure(true);
    let basic = parsed.body_structure(false);
    mailbox.cache(uid, BODYSTRUCTURE, &full)?;
    mailbox.cache(uid, BODY, &basic)?;
    Ok(if extended { full } else { basic })
}

/// Streams a body literal from the file in chunks.
async fn stream_body(
    conn: &mut Connection,
    reader: Box<dyn MessageReader>,
    stream: Stream,
) -> std::io::Result<()> {
    let mut reader = CrlfReader::new(reader);
    let mut buf = vec![0u8; FLUSH_AT];
    let mut skip = stream.skip;
    let mut left = stream.len;
    while left > 0 {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        let mut chunk = &buf[..n];
        if skip > 0 {
            let drop = (skip as usize).min(chunk.len());
            chunk = &chunk[drop..];
            skip -= drop as u64;
        }
        let take = (left as usize).min(chunk.len());
        if take > 0 {
            conn.write(&chunk[..take]).await?;
            left -= take as u64;
        }
    }
    // The file shrank under us: the literal length was promised, so pad it (never seen with
    // maildir, whose files don't change; logged so it can't go unnoticed).
    if left > 0 {
        tracing::warn!(
            "message UID {} ended {left} bytes early; padded",
            stream.uid
        );
        let pad = vec![b' '; left.min(FLUSH_AT as u64) as usize];
        while left > 0 {
            let n = (left as usize).min(pad.len());
            conn.write(&pad[..n]).await?;
            left -= n as u64;
        }
    }
    Ok(())
}
