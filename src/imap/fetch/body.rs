//! Body sections: which bytes `BODY[section]`, `RFC822*` and `BINARY[part]` name, built in
//! memory or streamed from the message file in chunks.

use std::io::Read;
use std::num::NonZeroU32;

use roost_protocol::imap::imap_types::core::AString;
use roost_protocol::imap::imap_types::fetch::{Part, Section};
use roost_protocol::imap::message::{header_fields, SectionText, Structure, UnknownCte};
use roost_protocol::imap::response::Literal;
use roost_storage::mailbox::MessageReader;
use roost_storage::wire::CrlfReader;
use roost_storage::{Error as StorageError, Mailbox, Uid};

use super::{FetchError, Stream, FLUSH_AT};
use crate::imap::message::{header_of, whole_message_of};
use crate::listen::conn::Connection;

/// A body section's bytes: built in memory, or to be streamed from the file.
pub(super) enum Body {
    /// The bytes, in memory.
    Bytes(Vec<u8>),
    /// The literal to stream after its header.
    Streamed(Stream),
}

impl Body {
    /// The literal as the response item carries it.
    pub(super) fn literal(&self) -> Literal<'_> {
        match self {
            Self::Bytes(bytes) => Literal::Bytes(bytes),
            Self::Streamed(stream) => Literal::Streamed(stream.len),
        }
    }

    /// The stream the caller must send, if any.
    pub(super) fn into_stream(self) -> Option<Stream> {
        match self {
            Self::Bytes(_) => None,
            Self::Streamed(stream) => Some(stream),
        }
    }
}

/// A partial fetch's `<origin.count>` as a byte window.
pub(super) fn window(partial: Option<(u32, NonZeroU32)>) -> Option<(u64, u64)> {
    partial.map(|(o, n)| (u64::from(o), u64::from(n.get())))
}

/// The bytes a window names (all of them without one).
pub(super) fn cut(bytes: Vec<u8>, window: Option<(u64, u64)>) -> Vec<u8> {
    match window {
        Some((origin, count)) => {
            let from = (origin as usize).min(bytes.len());
            let to = from.saturating_add(count as usize).min(bytes.len());
            bytes[from..to].to_vec()
        }
        None => bytes,
    }
}

/// One body section: streamed from the file (the whole message or its text) when allowed and
/// possible, else built in memory.
pub(super) fn body_item(
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
    let mut bytes = cut(section_bytes(mailbox, uid, section)?, window);
    replace_nul(&mut bytes);
    Ok(Body::Bytes(bytes))
}

/// What a NUL in a message becomes in a `BODY[]`/`RFC822` literal, which may not carry one
/// (RFC 3501 `CHAR8`, RFC 9051 4.3.1: only BINARY's literal8 may): 0x80, as Dovecot sends
/// it. One byte for one, so sizes and partial offsets stay those of the stored message;
/// `BINARY[]` still gives the exact bytes.
const NUL_STANDS_IN: u8 = 0x80;

/// Replaces every NUL in a literal's bytes with [`NUL_STANDS_IN`].
pub(super) fn replace_nul(bytes: &mut [u8]) {
    let mut rest = bytes;
    while let Some(at) = memchr::memchr(0, rest) {
        rest[at] = NUL_STANDS_IN;
        rest = &mut rest[at + 1..];
    }
}

/// `BINARY[path]`: the part decoded (empty for a part that doesn't exist).
pub(super) fn binary(
    mailbox: &mut dyn Mailbox,
    uid: Uid,
    path: &[u32],
) -> Result<Vec<u8>, FetchError> {
    let whole = whole_message_of(mailbox, uid)?;
    let structure = Structure::parse(&whole);
    match structure.decoded_section(path) {
        Some(Ok(bytes)) => Ok(bytes),
        Some(Err(UnknownCte(cte))) => Err(FetchError::UnknownCte(cte)),
        None => Ok(Vec::new()),
    }
}

/// HEADER.FIELDS names, and whether they are the ones to leave out (`.NOT`).
type FieldFilter<'a> = (Vec<&'a [u8]>, bool);

/// The bytes of a section that is built in memory: the top-level header ones from the cached
/// header block, the others from the parsed message.
fn section_bytes(
    mailbox: &mut dyn Mailbox,
    uid: Uid,
    section: Option<&Section<'_>>,
) -> Result<Vec<u8>, StorageError> {
    match section {
        Some(Section::Header(None)) => header_of(mailbox, uid),
        Some(Section::HeaderFields(None, fields)) => {
            let names = field_names(fields.as_ref());
            Ok(header_fields(&header_of(mailbox, uid)?, &names, false))
        }
        Some(Section::HeaderFieldsNot(None, fields)) => {
            let names = field_names(fields.as_ref());
            Ok(header_fields(&header_of(mailbox, uid)?, &names, true))
        }
        _ => part_bytes(mailbox, uid, section),
    }
}

/// A section below the top level (or the whole message), cut from the parsed message.
fn part_bytes(
    mailbox: &mut dyn Mailbox,
    uid: Uid,
    section: Option<&Section<'_>>,
) -> Result<Vec<u8>, StorageError> {
    let whole = whole_message_of(mailbox, uid)?;
    let structure = Structure::parse(&whole);
    let (path, text, filter) = section_path(section);
    let bytes = structure
        .section(&path, text)
        .and_then(|r| whole.get(r))
        .unwrap_or_default();
    Ok(match filter {
        Some((names, not)) => header_fields(bytes, &names, not),
        None => bytes.to_vec(),
    })
}

/// A section as a part path, the piece of the part it names, and a header field filter.
fn section_path<'s>(
    section: Option<&'s Section<'_>>,
) -> (Vec<u32>, SectionText, Option<FieldFilter<'s>>) {
    let names = field_names;
    match section {
        None => (Vec::new(), SectionText::Content, None),
        Some(Section::Part(p)) => (part_numbers(Some(p)), SectionText::Content, None),
        Some(Section::Header(p)) => (part_numbers(p.as_ref()), SectionText::Header, None),
        Some(Section::HeaderFields(p, fields)) => (
            part_numbers(p.as_ref()),
            SectionText::Header,
            Some((names(fields.as_ref()), false)),
        ),
        Some(Section::HeaderFieldsNot(p, fields)) => (
            part_numbers(p.as_ref()),
            SectionText::Header,
            Some((names(fields.as_ref()), true)),
        ),
        Some(Section::Text(p)) => (part_numbers(p.as_ref()), SectionText::Text, None),
        Some(Section::Mime(p)) => (part_numbers(Some(p)), SectionText::Mime, None),
    }
}

fn field_names<'s>(fields: &'s [AString<'_>]) -> Vec<&'s [u8]> {
    fields.iter().map(|n| n.as_ref()).collect()
}

fn part_numbers(part: Option<&Part>) -> Vec<u32> {
    part.map(|p| p.0.as_ref().iter().map(|n| n.get()).collect())
        .unwrap_or_default()
}

/// Streams a body literal from the file in chunks.
pub(super) async fn stream_body(
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
        let mut chunk = &mut buf[..n];
        if skip > 0 {
            let drop = (skip as usize).min(chunk.len());
            chunk = &mut chunk[drop..];
            skip -= drop as u64;
        }
        let take = (left as usize).min(chunk.len());
        if take > 0 {
            replace_nul(&mut chunk[..take]);
            conn.write(&chunk[..take]).await?;
            left -= take as u64;
        }
    }
    if left > 0 {
        pad(conn, stream.uid, left).await?;
    }
    Ok(())
}

/// The file shrank under us: the literal length was promised, so pad it (never seen with
/// maildir, whose files don't change; logged so it can't go unnoticed).
async fn pad(conn: &mut Connection, uid: Uid, mut left: u64) -> std::io::Result<()> {
    tracing::warn!("message UID {uid} ended {left} bytes early; padded");
    let pad = vec![b' '; left.min(FLUSH_AT as u64) as usize];
    while left > 0 {
        let n = (left as usize).min(pad.len());
        conn.write(&pad[..n]).await?;
        left -= n as u64;
    }
    Ok(())
}
