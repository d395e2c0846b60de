//! One message's FETCH response: its items as [`FetchItem`] values, in the order asked.

use roost_protocol::imap::imap_types::fetch::{MessageDataItemName, Section};
use roost_protocol::imap::response::{push_fetch_end, push_fetch_start, FetchItem};
use roost_storage::{Error as StorageError, FlagChange, Flags, Mailbox, Uid};
use std::num::NonZeroU32;

use super::body::{binary, body_item, cut, replace_nul, window};
use super::{FetchError, Stream};
use crate::imap::message::{envelope, header_of, structure, Cached, Prefetch};
use crate::imap::selected::Selected;

/// Writes `* n FETCH (...` for message `i`. When an item must be streamed, writes up to and
/// including its literal header and returns the stream; the items after it are written by
/// [`finish_after_stream`]. Otherwise writes the whole response.
pub(super) fn message_response(
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

/// Writes the items after a streamed one, and the end of the response.
pub(super) fn finish_after_stream(
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

/// The cached fields these items read, to read ahead for each chunk of messages.
pub(super) fn prefetch_for(items: &[MessageDataItemName<'_>]) -> Prefetch {
    let mut prefetch = Prefetch::default();
    for field in items.iter().flat_map(cached_fields) {
        prefetch.add(*field);
    }
    prefetch
}

/// The cached fields one item reads (a streamed body needs the size, and its text where
/// the header ends).
fn cached_fields(item: &MessageDataItemName<'_>) -> &'static [Cached] {
    use MessageDataItemName as Item;
    match item {
        Item::Envelope => &[Cached::Envelope],
        Item::Body => &[Cached::Body],
        Item::BodyStructure => &[Cached::BodyStructure],
        Item::Rfc822Header => &[Cached::Header],
        Item::Rfc822Size | Item::Rfc822 | Item::BodyExt { section: None, .. } => &[Cached::Size],
        Item::Rfc822Text
        | Item::BodyExt {
            section: Some(Section::Text(None)),
            ..
        } => &[Cached::Size, Cached::Header],
        Item::BodyExt {
            section:
                Some(
                    Section::Header(None)
                    | Section::HeaderFields(None, _)
                    | Section::HeaderFieldsNot(None, _),
                ),
            ..
        } => &[Cached::Header],
        _ => &[],
    }
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
pub(super) fn reads_body(item: &MessageDataItemName<'_>) -> bool {
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
    let reads = items.iter().any(reads_body);
    if !reads || selected.read_only || selected.view.flags(i).contains(Flags::SEEN) {
        return Ok(());
    }
    let uid = selected.uid(i);
    selected
        .view
        .store(&[uid], FlagChange::Add, Flags::SEEN, &Default::default())?;
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
    for (n, item) in items.iter().enumerate().skip(start) {
        if n > 0 {
            out.push(b' ');
        }
        if let Some(stream) = write_item(selected, i, item, out, start == 0)? {
            return Ok(Some(stream));
        }
    }
    Ok(None)
}

/// Writes one item; a body that `may_stream` and can be streamed is left to the caller.
fn write_item(
    selected: &mut Selected,
    i: usize,
    item: &MessageDataItemName<'_>,
    out: &mut Vec<u8>,
    may_stream: bool,
) -> Result<Option<Stream>, FetchError> {
    let info = selected.info(i);
    let mut guard = selected.mailbox();
    let (mailbox, uid) = (&mut *guard, info.uid);
    match item {
        MessageDataItemName::Uid => FetchItem::Uid(uid).encode(out),
        MessageDataItemName::Flags => FetchItem::Flags(&selected.flags_of(&info)).encode(out),
        MessageDataItemName::InternalDate => {
            FetchItem::InternalDate(info.internal_date).encode(out)
        }
        MessageDataItemName::Rfc822Size => {
            FetchItem::Rfc822Size(mailbox.crlf_size(uid)?).encode(out)
        }
        MessageDataItemName::ModSeq => FetchItem::ModSeq(info.modseq).encode(out),
        MessageDataItemName::Envelope => FetchItem::Envelope(&envelope(mailbox, uid)?).encode(out),
        MessageDataItemName::Body => FetchItem::Body(&structure(mailbox, uid, false)?).encode(out),
        MessageDataItemName::BodyStructure => {
            FetchItem::BodyStructure(&structure(mailbox, uid, true)?).encode(out)
        }
        MessageDataItemName::Rfc822Header => {
            let mut header = header_of(mailbox, uid)?;
            replace_nul(&mut header);
            FetchItem::Rfc822Header(&header).encode(out)
        }
        MessageDataItemName::BodyExt {
            section, partial, ..
        } => {
            return Ok(body_section(
                mailbox,
                uid,
                section.as_ref(),
                *partial,
                out,
                may_stream,
            )?)
        }
        MessageDataItemName::Rfc822 => return Ok(rfc822(mailbox, uid, false, out, may_stream)?),
        MessageDataItemName::Rfc822Text => return Ok(rfc822(mailbox, uid, true, out, may_stream)?),
        MessageDataItemName::Binary {
            section, partial, ..
        } => binary_item(mailbox, uid, section, *partial, out)?,
        MessageDataItemName::BinarySize { section } => {
            let path = part_path(section);
            let size = binary(mailbox, uid, &path)?.len() as u64;
            FetchItem::BinarySize {
                section: &path,
                size,
            }
            .encode(out);
        }
    }
    Ok(None)
}

/// `BODY[section]<origin>`: its literal, or its stream.
fn body_section(
    mailbox: &mut dyn Mailbox,
    uid: Uid,
    section: Option<&Section<'_>>,
    partial: Option<(u32, NonZeroU32)>,
    out: &mut Vec<u8>,
    may_stream: bool,
) -> Result<Option<Stream>, StorageError> {
    let body = body_item(mailbox, uid, section, window(partial), may_stream)?;
    FetchItem::BodySection {
        section,
        origin: partial.map(|(o, _)| o),
        data: body.literal(),
    }
    .encode(out);
    Ok(body.into_stream())
}

/// `RFC822` (the whole message) or `RFC822.TEXT`: its literal, or its stream.
fn rfc822(
    mailbox: &mut dyn Mailbox,
    uid: Uid,
    text_only: bool,
    out: &mut Vec<u8>,
    may_stream: bool,
) -> Result<Option<Stream>, StorageError> {
    let text = Section::Text(None);
    let section = text_only.then_some(&text);
    let body = body_item(mailbox, uid, section, None, may_stream)?;
    match text_only {
        true => FetchItem::Rfc822Text(body.literal()).encode(out),
        false => FetchItem::Rfc822(body.literal()).encode(out),
    }
    Ok(body.into_stream())
}

/// `BINARY[part]<origin>`: the part decoded (RFC 3516).
fn binary_item(
    mailbox: &mut dyn Mailbox,
    uid: Uid,
    section: &[NonZeroU32],
    partial: Option<(u32, NonZeroU32)>,
    out: &mut Vec<u8>,
) -> Result<(), FetchError> {
    let path = part_path(section);
    let bytes = binary(mailbox, uid, &path)?;
    let bytes = cut(bytes, window(partial));
    FetchItem::Binary {
        section: &path,
        origin: partial.map(|(o, _)| o),
        data: &bytes,
    }
    .encode(out);
    Ok(())
}

fn part_path(section: &[NonZeroU32]) -> Vec<u32> {
    section.iter().map(|n| n.get()).collect()
}
