//! What IMAP FETCH says about a message's structure: ENVELOPE, BODY/BODYSTRUCTURE and the byte
//! ranges of body sections (`1.2.MIME`, `HEADER.FIELDS (...)`, `TEXT`...), RFC 3501 6.4.5 and 7.4.2.
//!
//! MIME parsing is `mail-parser`'s; this module maps its part tree onto IMAP's part numbering
//! and writes IMAP's parenthesised forms. Input is the message with CRLF line ends, as clients
//! receive it, so every size and offset here is the one the client counts.

use std::borrow::Cow;
use std::ops::Range;

use mail_parser::{Encoding, Message, MessagePart, MimeHeaders, PartType};

mod body_structure;
mod decode;
mod encode;
mod envelope;

use super::parsed::{ParsedMessage, MAX_MIME_DEPTH};
use body_structure::body_structure;
use decode::{decode_base64, decode_quoted_printable};
use envelope::envelope;

/// The message with every bare LF turned into CRLF (borrowed when it already is).
pub fn to_crlf(raw: &[u8]) -> Cow<'_, [u8]> {
    let mut prev = 0u8;
    let bare = raw.iter().any(|&b| {
        let bare = b == b'\n' && prev != b'\r';
        prev = b;
        bare
    });
    if !bare {
        return Cow::Borrowed(raw);
    }
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 30);
    let mut prev = 0u8;
    for &b in raw {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    Cow::Owned(out)
}

/// The length of the header block, blank line included (the whole input when it has no body).
pub fn header_len(message: &[u8]) -> usize {
    if message.starts_with(b"\r\n") {
        return 2;
    }
    message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(message.len(), |at| at + 4)
}

/// The header lines whose field name is (`not`: is not) one of `names`, continuation lines
/// kept, followed by the blank line: `HEADER.FIELDS` and `HEADER.FIELDS.NOT`.
pub fn header_fields(header: &[u8], names: &[&[u8]], not: bool) -> Vec<u8> {
    // Clients ask for ~15 fields of 50 messages at a time (Thunderbird, Outlook): the line and
    // name ends are found with memchr, not byte by byte.
    let mut out = Vec::with_capacity(if not { header.len() } else { 512 });
    let mut keep = false;
    let mut rest = header;
    while let Some(&first) = rest.first() {
        let end = memchr::memchr(b'\n', rest).map_or(rest.len(), |at| at + 1);
        let (line, tail) = rest.split_at(end);
        rest = tail;
        if line == b"\r\n" || line == b"\n" {
            break;
        }
        if first != b' ' && first != b'\t' {
            let colon = memchr::memchr(b':', line).unwrap_or(line.len());
            let name = line[..colon].trim_ascii();
            let listed = names.iter().any(|n| n.eq_ignore_ascii_case(name));
            keep = listed != not;
        }
        if keep {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Which part of a section (after the part numbers) a FETCH asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SectionText {
    /// `BODY[]` or `BODY[1.2]`: the whole message, or the part's content.
    Content,
    /// `HEADER`, also the base of `HEADER.FIELDS` (filter with [`header_fields`]).
    Header,
    /// `TEXT`: the body after the header.
    Text,
    /// `MIME`: a part's own MIME header.
    Mime,
}

/// A parsed message, ready to answer FETCH items about its structure.
pub struct Structure<'m> {
    message: ParsedMessage<'m>,
}

/// One IMAP body part: its header and body ranges, and what kind of part it is.
struct Node<'a, 'm> {
    part: &'a MessagePart<'m>,
    header: Range<usize>,
    body: Range<usize>,
    kind: Kind<'a, 'm>,
}

enum Kind<'a, 'm> {
    Leaf,
    /// A multipart or attached message nested deeper than [`MAX_MIME_DEPTH`]: one opaque
    /// text part, as Dovecot shows it, so no walk over the tree goes deeper than the limit.
    TooDeep,
    Multipart(Vec<Node<'a, 'm>>),
    /// message/rfc822: the encapsulated message's top node.
    Message(Box<Node<'a, 'm>>),
}

impl<'m> Structure<'m> {
    /// Parses a message (CRLF line ends). Never fails: anything unparsable is one text part.
    pub fn parse(crlf_message: &'m [u8]) -> Self {
        let message = ParsedMessage::parse(crlf_message).unwrap_or_else(|| {
            ParsedMessage::from(Message {
                html_body: Vec::new(),
                text_body: Vec::new(),
                attachments: Vec::new(),
                parts: vec![MessagePart {
                    headers: Vec::new(),
                    is_encoding_problem: true,
                    body: PartType::Binary(Cow::Borrowed(&[])),
                    encoding: Default::default(),
                    offset_header: 0,
                    offset_body: 0,
                    offset_end: crlf_message.len() as u32,
                }],
                raw_message: Cow::Borrowed(crlf_message),
            })
        });
        Self { message }
    }

    fn raw(&self) -> &[u8] {
        &self.message.raw_message
    }

    fn root(&self) -> Option<Node<'_, 'm>> {
        node(&self.message, 0, 0)
    }

    /// `ENVELOPE` of the message.
    pub fn envelope(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if let Some(root) = self.root() {
            envelope(&mut out, self.raw(), root.part);
        }
        out
    }

    /// `BODYSTRUCTURE` (`extended`) or `BODY` of the message.
    pub fn body_structure(&self, extended: bool) -> Vec<u8> {
        let mut out = Vec::new();
        match self.root() {
            Some(root) => body_structure(&mut out, self.raw(), &root, extended),
            None => out.extend_from_slice(b"(\"text\" \"plain\" NIL NIL NIL \"7bit\" 0 0)"),
        }
        out
    }

    /// The byte range of a section: `path` are the part numbers (empty for the whole message).
    /// `None` when the message has no such part; clients then get an empty string.
    pub fn section(&self, path: &[u32], text: SectionText) -> Option<Range<usize>> {
        let root = self.root()?;
        if path.is_empty() {
            return Some(match text {
                SectionText::Content => 0..self.raw().len(),
                SectionText::Header | SectionText::Mime => root.header.clone(),
                SectionText::Text => root.body.clone(),
            });
        }
        let node = resolve(&root, path)?;
        match (text, &node.kind) {
            (SectionText::Content, _) => Some(node.body.clone()),
            (SectionText::Mime, _) => Some(node.header.clone()),
            (SectionText::Header, Kind::Message(inner)) => Some(inner.header.clone()),
            (SectionText::Text, Kind::Message(inner)) => Some(inner.body.clone()),
            _ => None,
        }
    }
}

/// A part whose Content-Transfer-Encoding IMAP BINARY cannot undo (RFC 3516 UNKNOWN-CTE).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown Content-Transfer-Encoding {0:?}")]
pub struct UnknownCte(pub String);

impl Structure<'_> {
    /// `BINARY[path]` (RFC 3516): the part's content with its transfer encoding undone; `None`
    /// when there is no such part. The whole message (empty path) is returned as it is.
    pub fn decoded_section(&self, path: &[u32]) -> Option<Result<Vec<u8>, UnknownCte>> {
        let raw = self.raw();
        if path.is_empty() {
            return Some(Ok(raw.to_vec()));
        }
        let root = self.root()?;
        let node = resolve(&root, path)?;
        let body = raw.get(node.body.clone())?;
        if !matches!(node.kind, Kind::Leaf) {
            return Some(Ok(body.to_vec()));
        }
        let encoding = raw_header(raw, node.part, "Content-Transfer-Encoding")
            .map(|e| String::from_utf8_lossy(&e).trim().to_ascii_lowercase())
            .unwrap_or_else(|| "7bit".into());
        Some(match encoding.as_str() {
            "7bit" | "8bit" | "binary" => Ok(body.to_vec()),
            "base64" => Ok(decode_base64(body)),
            "quoted-printable" => Ok(decode_quoted_printable(body)),
            _ => Err(UnknownCte(encoding)),
        })
    }
}

/// The node of `message.parts[id]`, with children; `depth` counts the containers above it.
/// The recursion stops at [`MAX_MIME_DEPTH`], whatever the message's own nesting.
fn node<'a, 'm>(message: &'a Message<'m>, id: usize, depth: usize) -> Option<Node<'a, 'm>> {
    let part = message.parts.get(id)?;
    let header = part.offset_header as usize..part.offset_body as usize;
    let body = part.offset_body as usize..(part.offset_end as usize).max(part.offset_body as usize);
    let kind = match &part.body {
        PartType::Multipart(_) | PartType::Message(_) if depth >= MAX_MIME_DEPTH => Kind::TooDeep,
        PartType::Multipart(ids) => {
            let boundary = part
                .content_type()
                .and_then(|ct| ct.attribute("boundary"))
                .map(str::as_bytes);
            let mut children: Vec<Node<'a, 'm>> = ids
                .iter()
                .filter(|&&c| c as usize > id)
                .filter_map(|&c| node(message, c as usize, depth + 1))
                .collect();
            if let Some(boundary) = boundary {
                for child in &mut children {
                    end_at_delimiter(&message.raw_message, child, boundary);
                }
            }
            Kind::Multipart(children)
        }
        // A base64 or quoted-printable encoded attached message (RFC 2046 forbids it, senders
        // do it) was parsed from its decoded bytes, whose offsets are not the message's: it
        // is shown as an empty message, as Dovecot shows it, and its sections are empty.
        PartType::Message(_) if part.encoding != Encoding::None => Kind::Leaf,
        PartType::Message(inner) => match node(inner, 0, depth + 1) {
            Some(top) => Kind::Message(Box::new(top)),
            None => Kind::Leaf,
        },
        _ => Kind::Leaf,
    };
    Some(Node {
        part,
        header,
        body,
        kind,
    })
}

/// Ends an attached message at its multipart's next delimiter at the latest. `mail-parser`
/// lets an empty message/rfc822 part, or one whose body is itself message/rfc822, run on
/// over the delimiter (and, with debug assertions, panics on the latter); RFC 2046 5.1.1 ends
/// every part where `CRLF--boundary` begins. Only attached messages that do not already end
/// at a delimiter are scanned, once each.
fn end_at_delimiter(raw: &[u8], child: &mut Node<'_, '_>, boundary: &[u8]) {
    let attached = matches!(child.kind, Kind::Message(_)) || child.part.is_encoding_problem;
    if !attached || boundary.is_empty() {
        return;
    }
    let mut delimiter = b"\r\n--".to_vec();
    delimiter.extend_from_slice(boundary);
    if raw[child.body.end.min(raw.len())..].starts_with(&delimiter) {
        // Ends where it should (nearly always): no scan.
        return;
    }
    // The delimiter's CRLF may be the one that ends the part's header (an empty body).
    let from = child.body.start.saturating_sub(2);
    let Some(scope) = raw.get(from..child.body.end) else {
        return;
    };
    let finder = memchr::memmem::Finder::new(&delimiter);
    let found = finder.find_iter(scope).find(|&at| {
        // `--AB` is not a delimiter of boundary `A`.
        let after = scope.get(at + delimiter.len()).copied();
        after.is_none_or(|b| matches!(b, b'\r' | b'\n' | b'-' | b' ' | b'\t'))
    });
    let Some(at) = found else {
        return;
    };
    let end = (from + at).max(child.body.start);
    child.body.end = end;
    if let Kind::Message(inner) = &mut child.kind {
        inner.header.end = inner.header.end.min(end);
        inner.body.start = inner.body.start.min(end);
        inner.body.end = inner.body.end.min(end);
    }
}

/// Follows IMAP part numbers from the top node (RFC 3501 6.4.5): a message's parts are its
/// multipart body's children, or its one body as part 1; the parts of a message/rfc822 part
/// are those of the message it encapsulates. A part number therefore steps into an attached
/// message only below the top (`2.1`), never at the top: `BODY[1]` of a message whose body is
/// message/rfc822 is that whole attached message, as in Dovecot.
fn resolve<'n, 'a, 'm>(root: &'n Node<'a, 'm>, path: &[u32]) -> Option<&'n Node<'a, 'm>> {
    let mut current = root;
    for (depth, &number) in path.iter().enumerate() {
        // The message (or multipart) whose parts the number counts.
        let container = match &current.kind {
            _ if depth == 0 => current,
            Kind::Message(inner) => inner.as_ref(),
            Kind::Multipart(_) => current,
            _ => return None,
        };
        current = match &container.kind {
            Kind::Multipart(children) => children.get(number.checked_sub(1)? as usize)?,
            // A message that is not multipart has its body as its only part.
            _ if number == 1 => container,
            _ => return None,
        };
    }
    Some(current)
}

/// Where the value of the first header called `name` lies, its line end included.
fn raw_header_entry(part: &MessagePart<'_>, name: &str) -> Option<Range<usize>> {
    let header = part
        .headers
        .iter()
        .find(|h| h.name.as_str().eq_ignore_ascii_case(name))?;
    Some(header.offset_start as usize..header.offset_end as usize)
}

/// The raw value of the first header called `name`, unfolded and trimmed.
fn raw_header<'r>(raw: &'r [u8], part: &MessagePart<'_>, name: &str) -> Option<Cow<'r, [u8]>> {
    let value = raw.get(raw_header_entry(part, name)?)?;
    let value = value.trim_ascii();
    if value.contains(&b'\n') {
        let unfolded: Vec<u8> = value
            .iter()
            .copied()
            .filter(|&b| b != b'\r' && b != b'\n')
            .collect();
        Some(Cow::Owned(unfolded))
    } else {
        Some(Cow::Borrowed(value))
    }
}

#[cfg(test)]
mod tests;
