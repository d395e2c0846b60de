//! The message as the tests see it: its header fields by name (raw and decoded, RFC 2047
//! words undone, folding removed), its size and its body; MIME parsing only when `body`
//! asks for it.

use std::cell::OnceCell;

use mail_parser::parsers::MessageStream;
use mail_parser::{HeaderValue, Message, MessageParser};

/// A read-only view of one message.
pub(crate) struct Mail<'a> {
    raw: &'a [u8],
    /// (lower-cased name, raw value after the colon up to and including its last line end).
    headers: Vec<(String, &'a [u8])>,
    body_start: usize,
    parsed: OnceCell<Option<Message<'a>>>,
}

fn line_end(raw: &[u8], from: usize) -> usize {
    raw.get(from..)
        .and_then(|r| memchr::memchr(b'\n', r))
        .map_or(raw.len(), |i| from + i + 1)
}

impl<'a> Mail<'a> {
    /// Splits the header off the message.
    pub(crate) fn new(raw: &'a [u8]) -> Mail<'a> {
        let mut headers = Vec::new();
        let mut pos = 0;
        while pos < raw.len() {
            let end = line_end(raw, pos);
            let line = raw.get(pos..end).unwrap_or_default();
            if line == b"\r\n" || line == b"\n" {
                pos = end;
                break;
            }
            let mut value_end = end;
            while value_end < raw.len() && matches!(raw.get(value_end), Some(b' ' | b'\t')) {
                value_end = line_end(raw, value_end);
            }
            if let Some(colon) = memchr::memchr(b':', line) {
                let name = String::from_utf8_lossy(line.get(..colon).unwrap_or_default());
                let value = raw.get(pos + colon + 1..value_end).unwrap_or_default();
                headers.push((name.trim().to_ascii_lowercase(), value));
            }
            pos = value_end;
        }
        Mail {
            raw,
            headers,
            body_start: pos.min(raw.len()),
            parsed: OnceCell::new(),
        }
    }

    /// The message size in octets.
    pub(crate) fn size(&self) -> u64 {
        self.raw.len() as u64
    }

    /// The raw values of every field called `name`, in order.
    pub(crate) fn raw_values(&self, name: &str) -> Vec<&'a [u8]> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| *v)
            .collect()
    }

    /// Whether a field called `name` exists.
    pub(crate) fn has(&self, name: &str) -> bool {
        self.headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    /// The decoded values of every field called `name`, in order.
    pub(crate) fn values(&self, name: &str) -> Vec<String> {
        self.raw_values(name).into_iter().map(decode).collect()
    }

    /// The body as stored (after the blank line), lossily as text.
    pub(crate) fn raw_body(&self) -> String {
        String::from_utf8_lossy(self.raw.get(self.body_start..).unwrap_or_default()).into_owned()
    }

    /// The MIME structure, parsed on first use.
    pub(crate) fn parsed(&self) -> Option<&Message<'a>> {
        self.parsed
            .get_or_init(|| MessageParser::default().parse(self.raw))
            .as_ref()
    }
}

/// A raw header value as text: unfolded, encoded words decoded, trimmed.
pub(crate) fn decode(raw: &[u8]) -> String {
    let mut value = raw.to_vec();
    if !value.ends_with(b"\n") {
        value.extend_from_slice(b"\r\n");
    }
    match MessageStream::new(&value).parse_unstructured() {
        HeaderValue::Text(t) => t.trim().to_string(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_fields_are_found_and_decoded() {
        let m = Mail::new(
            b"Subject: =?utf-8?q?caf=C3=A9?= time\r\nX-A: one\r\n two\r\nx-a: three\r\n\r\nbody\r\n",
        );
        assert_eq!(m.values("subject"), ["caf\u{e9} time"]);
        assert_eq!(m.values("X-A"), ["one two", "three"]);
        assert!(m.has("x-A"));
        assert!(!m.has("body"));
        assert_eq!(m.raw_body(), "body\r\n");
    }
}
