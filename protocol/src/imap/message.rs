//! What IMAP FETCH says about a message's structure: ENVELOPE, BODY/BODYSTRUCTURE and the byte
//! ranges of body sections (`1.2.MIME`, `HEADER.FIELDS (...)`, `TEXT`...), RFC 3501 6.4.5 and 7.4.2.
//!
//! MIME parsing is `mail-parser`'s; this module maps its part tree onto IMAP's part numbering
//! and writes IMAP's parenthesised forms. Input is the message with CRLF line ends, as clients
//! receive it, so every size and offset here is the one the client counts.

use std::borrow::Cow;
use std::ops::Range;

use mail_parser::{
    Addr, Address, HeaderName, HeaderValue, Message, MessagePart, MimeHeaders, PartType,
};

use super::parsed::{ParsedMessage, MAX_MIME_DEPTH};
use super::strings::{push_nstring, push_string};

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
    let mut out = Vec::new();
    let mut keep = false;
    for line in header.split_inclusive(|&b| b == b'\n') {
        if line == b"\r\n" || line == b"\n" {
            break;
        }
        if !line.starts_with(b" ") && !line.starts_with(b"\t") {
            let name = line.split(|&b| b == b':').next().unwrap_or_default();
            let name = name.trim_ascii();
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

/// Base64 with line breaks, padding and stray characters skipped, as mail needs.
fn decode_base64(body: &[u8]) -> Vec<u8> {
    use base64::Engine;
    let mut clean: Vec<u8> = body
        .iter()
        .copied()
        .filter(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
        .collect();
    // A dangling single character carries no whole byte: drop it rather than fail.
    if clean.len() % 4 == 1 {
        clean.pop();
    }
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(&clean)
        .unwrap_or_default()
}

/// Quoted-printable (RFC 2045 6.7): `=XX` escapes and `=` soft line breaks undone.
fn decode_quoted_printable(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut i = 0;
    while i < body.len() {
        if body[i] == b'=' {
            if body[i + 1..].starts_with(b"\r\n") {
                i += 3;
                continue;
            }
            if body[i + 1..].starts_with(b"\n") {
                i += 2;
                continue;
            }
            if let (Some(h), Some(l)) = (
                body.get(i + 1).and_then(|&b| hex(b)),
                body.get(i + 2).and_then(|&b| hex(b)),
            ) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(body[i]);
        i += 1;
    }
    out
}

/// The node of `message.parts[id]`, with children; `depth` counts the containers above it.
/// The recursion stops at [`MAX_MIME_DEPTH`], whatever the message's own nesting.
fn node<'a, 'm>(message: &'a Message<'m>, id: usize, depth: usize) -> Option<Node<'a, 'm>> {
    let part = message.parts.get(id)?;
    let header = part.offset_header as usize..part.offset_body as usize;
    let body = part.offset_body as usize..(part.offset_end as usize).max(part.offset_body as usize);
    let kind = match &part.body {
        PartType::Multipart(_) | PartType::Message(_) if depth >= MAX_MIME_DEPTH => Kind::TooDeep,
        PartType::Multipart(ids) => Kind::Multipart(
            ids.iter()
                .filter(|&&c| c as usize > id)
                .filter_map(|&c| node(message, c as usize, depth + 1))
                .collect(),
        ),
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

/// Follows IMAP part numbers from the top node.
fn resolve<'n, 'a, 'm>(root: &'n Node<'a, 'm>, path: &[u32]) -> Option<&'n Node<'a, 'm>> {
    let mut current = root;
    for (depth, &number) in path.iter().enumerate() {
        let container = match &current.kind {
            Kind::Message(inner) => inner.as_ref(),
            _ if depth == 0 => current,
            _ => match &current.kind {
                Kind::Multipart(_) => current,
                _ => return None,
            },
        };
        current = match &container.kind {
            Kind::Multipart(children) => children.get(number.checked_sub(1)? as usize)?,
            _ if number == 1 => container,
            _ => return None,
        };
    }
    Some(current)
}

/// The raw value of the first header called `name`, unfolded and trimmed.
fn raw_header<'r>(raw: &'r [u8], part: &MessagePart<'_>, name: &str) -> Option<Cow<'r, [u8]>> {
    let header = part
        .headers
        .iter()
        .find(|h| h.name.as_str().eq_ignore_ascii_case(name))?;
    let value = raw.get(header.offset_start as usize..header.offset_end as usize)?;
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

fn envelope(out: &mut Vec<u8>, raw: &[u8], part: &MessagePart<'_>) {
    out.push(b'(');
    for name in ["Date", "Subject"] {
        push_nstring(out, raw_header(raw, part, name).as_deref());
        out.push(b' ');
    }
    let from = addresses(part, &HeaderName::From);
    for (i, header) in [
        HeaderName::From,
        HeaderName::Sender,
        HeaderName::ReplyTo,
        HeaderName::To,
        HeaderName::Cc,
        HeaderName::Bcc,
    ]
    .iter()
    .enumerate()
    {
        let list = addresses(part, header);
        // RFC 3501: Sender and Reply-To default to From.
        let list = if list.is_none() && (i == 1 || i == 2) {
            from
        } else {
            list
        };
        push_address_list(out, list);
        out.push(b' ');
    }
    push_nstring(out, raw_header(raw, part, "In-Reply-To").as_deref());
    out.push(b' ');
    push_nstring(out, raw_header(raw, part, "Message-ID").as_deref());
    out.push(b')');
}

fn addresses<'a, 'm>(part: &'a MessagePart<'m>, name: &HeaderName<'_>) -> Option<&'a Address<'m>> {
    part.headers
        .iter()
        .find(|h| &h.name == name)
        .and_then(|h| match &h.value {
            HeaderValue::Address(a) => Some(a),
            _ => None,
        })
}

fn push_address_list(out: &mut Vec<u8>, list: Option<&Address<'_>>) {
    let mut items = Vec::new();
    match list {
        Some(Address::List(addrs)) => {
            for a in addrs {
                push_address(&mut items, a);
            }
        }
        Some(Address::Group(groups)) => {
            for g in groups {
                let named = g.name.is_some();
                if named {
                    items.extend_from_slice(b"(NIL NIL ");
                    push_nstring(&mut items, g.name.as_deref().map(str::as_bytes));
                    items.extend_from_slice(b" NIL)");
                }
                for a in &g.addresses {
                    push_address(&mut items, a);
                }
                if named {
                    items.extend_from_slice(b"(NIL NIL NIL NIL)");
                }
            }
        }
        None => {}
    }
    if items.is_empty() {
        out.extend_from_slice(b"NIL");
    } else {
        out.push(b'(');
        out.extend_from_slice(&items);
        out.push(b')');
    }
}

/// `(name adl mailbox host)`; a non-ASCII display name goes out as an RFC 2047 word, as the
/// header had it before the parser decoded it.
fn push_address(out: &mut Vec<u8>, addr: &Addr<'_>) {
    let Some(address) = addr.address.as_deref() else {
        return;
    };
    out.push(b'(');
    match addr.name.as_deref().filter(|n| !n.is_empty()) {
        Some(name) if name.is_ascii() => push_string(out, name.as_bytes()),
        Some(name) => push_string(out, encoded_word(name).as_bytes()),
        None => out.extend_from_slice(b"NIL"),
    }
    out.extend_from_slice(b" NIL ");
    let (mailbox, host) = match address.rsplit_once('@') {
        Some((m, h)) => (m, Some(h)),
        None => (address, None),
    };
    push_string(out, mailbox.as_bytes());
    out.push(b' ');
    push_nstring(out, host.map(str::as_bytes));
    out.push(b')');
}

fn encoded_word(text: &str) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
    format!("=?utf-8?b?{b64}?=")
}

fn body_structure(out: &mut Vec<u8>, raw: &[u8], node: &Node<'_, '_>, extended: bool) {
    let part = node.part;
    out.push(b'(');
    if let Kind::Multipart(children) = &node.kind {
        for child in children {
            body_structure(out, raw, child, extended);
        }
        if children.is_empty() {
            // RFC 3501 requires at least one part; show an empty text part as Dovecot does.
            out.extend_from_slice(b"(\"text\" \"plain\" NIL NIL NIL \"7bit\" 0 0)");
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
        return;
    }
    let (ctype, subtype) = match part.content_type() {
        _ if matches!(node.kind, Kind::TooDeep) => ("text", "plain"),
        Some(ct) => (
            ct.c_type.as_ref(),
            ct.c_subtype.as_deref().unwrap_or(match ct.c_type.as_ref() {
                "text" => "plain",
                _ => "octet-stream",
            }),
        ),
        None => ("text", "plain"),
    };
    push_string(out, ctype.as_bytes());
    out.push(b' ');
    push_string(out, subtype.as_bytes());
    out.push(b' ');
    match part.content_type().and_then(|ct| ct.attributes()) {
        _ if matches!(node.kind, Kind::TooDeep) => out.extend_from_slice(b"NIL"),
        Some(attrs) if !attrs.is_empty() => push_params(out, Some(attrs)),
        _ if ctype.eq_ignore_ascii_case("text") => {
            out.extend_from_slice(b"(\"charset\" \"us-ascii\")")
        }
        _ => out.extend_from_slice(b"NIL"),
    }
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
    } else if ctype.eq_ignore_ascii_case("text") {
        out.extend_from_slice(format!(" {}", line_count(body)).as_bytes());
    }
    if extended {
        out.extend_from_slice(b" NIL"); // body-fld-md5: Content-MD5 is obsolete
        push_extension(out, part);
    }
    out.push(b')');
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

#[cfg(test)]
mod tests {
    use super::*;

    const NESTED: &[u8] = b"From: Ann Example <ann@example.com>\r\nTo: bob@example.org, \"Carl\" <carl@example.net>\r\nSubject: hello\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <1@example.com>\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\npreamble\r\n--XX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhello\r\nworld\r\n--XX\r\nContent-Type: message/rfc822\r\nContent-Disposition: attachment; filename=inner.eml\r\n\r\nSubject: inner\r\nContent-Type: multipart/alternative; boundary=YY\r\n\r\n--YY\r\n\r\ninner text\r\n--YY\r\nContent-Type: text/html\r\n\r\n<b>x</b>\r\n--YY--\r\n\r\n--XX--\r\nepilogue\r\n";

    fn text(bytes: &[u8]) -> String {
        String::from_utf8_lossy(bytes).into_owned()
    }

    fn section(s: &Structure<'_>, path: &[u32], kind: SectionText) -> String {
        s.section(path, kind)
            .map(|r| text(&NESTED[r]))
            .unwrap_or_else(|| "<none>".into())
    }

    #[test]
    fn envelope_has_every_field_in_order() {
        let s = Structure::parse(NESTED);
        assert_eq!(
            text(&s.envelope()),
            "(\"Mon, 23 Nov 2026 10:00:00 +0000\" \"hello\" ((\"Ann Example\" NIL \"ann\" \"example.com\")) ((\"Ann Example\" NIL \"ann\" \"example.com\")) ((\"Ann Example\" NIL \"ann\" \"example.com\")) ((NIL NIL \"bob\" \"example.org\")(\"Carl\" NIL \"carl\" \"example.net\")) NIL NIL NIL \"<1@example.com>\")"
        );
    }

    #[test]
    fn bodystructure_nests_multipart_and_message_rfc822() {
        let s = Structure::parse(NESTED);
        let bs = text(&s.body_structure(true));
        assert!(
            bs.starts_with("((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 12 2 NIL NIL NIL NIL)(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" "),
            "{bs}"
        );
        assert!(
            bs.contains("(\"attachment\" (\"filename\" \"inner.eml\"))"),
            "{bs}"
        );
        assert!(bs.contains("\"alternative\""), "{bs}");
        assert!(
            bs.ends_with(" \"mixed\" (\"boundary\" \"XX\") NIL NIL NIL)"),
            "{bs}"
        );
        let body = text(&s.body_structure(false));
        assert!(
            !body.contains("attachment"),
            "BODY has no extension data: {body}"
        );
    }

    #[test]
    fn sections_follow_imap_part_numbers() {
        let s = Structure::parse(NESTED);
        assert_eq!(section(&s, &[1], SectionText::Content), "hello\r\nworld");
        assert_eq!(
            section(&s, &[1], SectionText::Mime),
            "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        );
        assert!(section(&s, &[2], SectionText::Content).starts_with("Subject: inner\r\n"));
        assert_eq!(
            section(&s, &[2], SectionText::Header),
            "Subject: inner\r\nContent-Type: multipart/alternative; boundary=YY\r\n\r\n"
        );
        assert_eq!(section(&s, &[2, 1], SectionText::Content), "inner text");
        assert_eq!(section(&s, &[2, 2], SectionText::Content), "<b>x</b>");
        assert_eq!(section(&s, &[3], SectionText::Content), "<none>");
        assert_eq!(section(&s, &[1, 1], SectionText::Content), "<none>");
        assert!(section(&s, &[], SectionText::Header).ends_with("boundary=XX\r\n\r\n"));
        assert!(section(&s, &[], SectionText::Text).starts_with("preamble"));
    }

    #[test]
    fn a_single_part_message_is_part_one() {
        let msg = b"Subject: x\r\n\r\nbody\r\n";
        let s = Structure::parse(msg);
        assert_eq!(s.section(&[1], SectionText::Content), Some(14..20));
        assert_eq!(
            text(&s.body_structure(false)),
            "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 6 1)"
        );
    }

    #[test]
    fn header_fields_filter_keeps_continuations() {
        let header = b"Subject: a\r\n b\r\nFrom: x\r\nTo: y\r\n\r\n";
        assert_eq!(
            header_fields(header, &[b"subject", b"to"], false),
            b"Subject: a\r\n b\r\nTo: y\r\n\r\n"
        );
        assert_eq!(
            header_fields(header, &[b"subject"], true),
            b"From: x\r\nTo: y\r\n\r\n"
        );
        assert_eq!(header_len(header), header.len());
        assert_eq!(&to_crlf(b"a\nb\r\n")[..], b"a\r\nb\r\n");
    }

    #[test]
    fn binary_sections_undo_the_transfer_encoding() {
        let msg = b"Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Transfer-Encoding: base64\r\n\r\naGVs\r\nbG8A\r\n--B\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\ncaf=C3=A9 soft=\r\nbreak\r\n--B\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin\r\n--B--\r\n";
        let s = Structure::parse(msg);
        assert_eq!(s.decoded_section(&[1]), Some(Ok(b"hello\0".to_vec())));
        assert_eq!(
            s.decoded_section(&[2]),
            Some(Ok("caf\u{e9} softbreak".as_bytes().to_vec()))
        );
        assert!(matches!(s.decoded_section(&[3]), Some(Err(UnknownCte(_)))));
        assert_eq!(s.decoded_section(&[4]), None);
    }

    #[test]
    fn garbage_never_panics() {
        for input in [
            &b""[..],
            b"\r\n",
            b"no header",
            b"Content-Type: multipart/mixed\r\n\r\n--",
        ] {
            let s = Structure::parse(input);
            let _ = s.envelope();
            let _ = s.body_structure(true);
            let _ = s.section(&[1, 2, 3], SectionText::Header);
        }
    }

    /// `depth` multiparts nested directly in one another.
    fn nested_multiparts(depth: usize) -> Vec<u8> {
        let mut m = Vec::new();
        for i in 0..depth {
            m.extend_from_slice(
                format!("Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n")
                    .as_bytes(),
            );
        }
        m.extend_from_slice(b"\r\nleaf\r\n");
        for i in (0..depth).rev() {
            m.extend_from_slice(format!("--b{i}--\r\n").as_bytes());
        }
        m
    }

    /// Runs `f` on a thread with a quarter of a tokio worker's stack.
    fn on_small_stack(f: impl FnOnce() + Send + 'static) {
        let joined = std::thread::Builder::new()
            .stack_size(512 * 1024)
            .spawn(f)
            .expect("thread starts")
            .join();
        assert!(joined.is_ok(), "a deep message took the thread down");
    }

    fn max_paren_depth(bytes: &[u8]) -> usize {
        let (mut depth, mut max) = (0usize, 0usize);
        for &b in bytes {
            match b {
                b'(' => {
                    depth += 1;
                    max = max.max(depth);
                }
                b')' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        max
    }

    #[test]
    fn deep_mime_nesting_is_cut_at_the_limit() {
        for raw in [
            nested_multiparts(50_000),
            crate::imap::parsed::tests::nested(50_000),
        ] {
            on_small_stack(move || {
                let s = Structure::parse(&raw);
                let bs = s.body_structure(true);
                assert!(bs.starts_with(b"("), "{}", text(&bs[..40]));
                // Each container level is one or two parentheses deep, never more than the cap.
                let depth = max_paren_depth(&bs);
                assert!(
                    (MAX_MIME_DEPTH..=3 * MAX_MIME_DEPTH + 10).contains(&depth),
                    "{depth}"
                );
                let deep: Vec<u32> = vec![1; 5_000];
                let _ = s.section(&deep, SectionText::Content);
                let _ = s.decoded_section(&deep);
                let _ = s.envelope();
            });
        }
    }
}
