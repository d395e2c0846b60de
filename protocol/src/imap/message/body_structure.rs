//! BODY and BODYSTRUCTURE (RFC 3501 7.4.2): a message's part tree in IMAP's parenthesised form.

use mail_parser::{HeaderValue, MessagePart, MimeHeaders};

use super::envelope::envelope;
use super::{raw_header, Kind, Node};
use crate::imap::strings::{push_nstring, push_string};

/// Appends the BODYSTRUCTURE (`extended`) or BODY of a node and everything under it.
pub(super) fn body_structure(out: &mut Vec<u8>, raw: &[u8], node: &Node<'_, '_>, extended: bool) {
    match &node.kind {
        Kind::Multipart(children) => multipart_structure(out, raw, node, children, extended),
        _ => single_part_structure(out, raw, node, extended),
    }
}

/// `(part part ... "subtype" [params disposition language location])`.
fn multipart_structure(
    out: &mut Vec<u8>,
    raw: &[u8],
    node: &Node<'_, '_>,
    children: &[Node<'_, '_>],
    extended: bool,
) {
    let part = node.part;
    out.push(b'(');
    for child in children {
        body_structure(out, raw, child, extended);
    }
    if children.is_empty() {
        // RFC 3501 requires at least one part; show an empty text part as Dovecot does.
        out.extend_from_slice(EMPTY_TEXT);
        out.push(b')');
    }
    out.push(b' ');
    let subtype = part
        .content_type()
        .and_then(|ct| ct.c_subtype.as_deref())
        .unwrap_or("mixed");
    push_string(out, subtype.as_bytes());
    if extended {
        out.push(b' ');
        push_params(out, part.content_type().and_then(|ct| ct.attributes()));
        push_extension(out, part);
    }
    out.push(b')');
}

/// `("type" "subtype" params id description encoding size [envelope body] [lines] [ext])`.
fn single_part_structure(out: &mut Vec<u8>, raw: &[u8], node: &Node<'_, '_>, extended: bool) {
    let part = node.part;
    out.push(b'(');
    let class = push_type(out, node);
    out.push(b' ');
    push_nstring(out, raw_header(raw, part, "Content-ID").as_deref());
    out.push(b' ');
    push_nstring(out, raw_header(raw, part, "Content-Description").as_deref());
    out.push(b' ');
    let encoding = raw_header(raw, part, "Content-Transfer-Encoding")
        .map(|e| e.to_ascii_lowercase())
        .unwrap_or_else(|| b"7bit".to_vec());
    push_string(out, &encoding);
    let body = raw.get(node.body.clone()).unwrap_or_default();
    out.extend_from_slice(format!(" {}", body.len()).as_bytes());
    if let Kind::Message(inner) = &node.kind {
        out.push(b' ');
        envelope(out, raw, inner.part);
        out.push(b' ');
        body_structure(out, raw, inner, extended);
        out.extend_from_slice(format!(" {}", line_count(body)).as_bytes());
    } else if class == Class::Message {
        // A message part with no message to show (encoded, or empty) still needs the
        // envelope and body its type's grammar requires: empty ones, as Dovecot writes them.
        out.extend_from_slice(b" (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) ");
        out.extend_from_slice(EMPTY_TEXT);
        if extended {
            out.extend_from_slice(b" NIL NIL NIL NIL");
        }
        out.extend_from_slice(format!(") {}", line_count(body)).as_bytes());
    } else if class == Class::Text {
        out.extend_from_slice(format!(" {}", line_count(body)).as_bytes());
    }
    if extended {
        out.extend_from_slice(b" NIL"); // body-fld-md5: Content-MD5 is obsolete
        push_extension(out, part);
    }
    out.push(b')');
}

/// An empty text part, without its closing parenthesis (extension data may follow).
const EMPTY_TEXT: &[u8] = b"(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0";

/// What a single part's type makes its structure carry after the size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// `text/*`: the line count.
    Text,
    /// `message/rfc822` (and `message/global`): envelope, body structure and line count.
    Message,
    /// Anything else: nothing.
    Other,
}

/// `"type" "subtype" params` of a single part, and its [`Class`].
fn push_type(out: &mut Vec<u8>, node: &Node<'_, '_>) -> Class {
    let part = node.part;
    let too_deep = matches!(node.kind, Kind::TooDeep);
    let (ctype, subtype) = match part.content_type() {
        _ if too_deep => ("text", "plain"),
        Some(ct) => (
            ct.c_type.as_ref(),
            ct.c_subtype.as_deref().unwrap_or(match ct.c_type.as_ref() {
                "text" => "plain",
                _ => "octet-stream",
            }),
        ),
        // A part of a multipart/digest has message/rfc822 as its default type.
        None if matches!(node.kind, Kind::Message(_)) => ("message", "rfc822"),
        None => ("text", "plain"),
    };
    push_string(out, ctype.as_bytes());
    out.push(b' ');
    push_string(out, subtype.as_bytes());
    out.push(b' ');
    let class = if ctype.eq_ignore_ascii_case("text") {
        Class::Text
    } else if ctype.eq_ignore_ascii_case("message")
        && (subtype.eq_ignore_ascii_case("rfc822") || subtype.eq_ignore_ascii_case("global"))
    {
        Class::Message
    } else {
        Class::Other
    };
    match part.content_type().and_then(|ct| ct.attributes()) {
        _ if too_deep => out.extend_from_slice(b"NIL"),
        Some(attrs) if !attrs.is_empty() => push_params(out, Some(attrs)),
        _ if class == Class::Text => out.extend_from_slice(b"(\"charset\" \"us-ascii\")"),
        _ => out.extend_from_slice(b"NIL"),
    }
    class
}

/// ` disposition language location`, the extension data both part kinds end with.
fn push_extension(out: &mut Vec<u8>, part: &MessagePart<'_>) {
    out.push(b' ');
    match part.content_disposition() {
        Some(d) => {
            out.push(b'(');
            push_string(out, d.c_type.as_bytes());
            out.push(b' ');
            push_params(out, d.attributes());
            out.push(b')');
        }
        None => out.extend_from_slice(b"NIL"),
    }
    out.push(b' ');
    match part.content_language() {
        HeaderValue::Text(lang) => push_string(out, lang.as_bytes()),
        HeaderValue::TextList(langs) if !langs.is_empty() => {
            out.push(b'(');
            for (i, lang) in langs.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                push_string(out, lang.as_bytes());
            }
            out.push(b')');
        }
        _ => out.extend_from_slice(b"NIL"),
    }
    out.push(b' ');
    push_nstring(out, part.content_location().map(str::as_bytes));
}

fn push_params(out: &mut Vec<u8>, attrs: Option<&[mail_parser::Attribute<'_>]>) {
    match attrs {
        Some(attrs) if !attrs.is_empty() => {
            out.push(b'(');
            for (i, a) in attrs.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                push_string(out, a.name.as_bytes());
                out.push(b' ');
                push_string(out, a.value.as_bytes());
            }
            out.push(b')');
        }
        _ => out.extend_from_slice(b"NIL"),
    }
}

/// Text lines in a body: LFs, plus one for a last line without its line end.
fn line_count(body: &[u8]) -> usize {
    let lfs = body.iter().filter(|&&b| b == b'\n').count();
    lfs + usize::from(!body.is_empty() && !body.ends_with(b"\n"))
}
