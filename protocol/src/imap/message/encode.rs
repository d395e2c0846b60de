//! Binary parts re-encoded as base64, for a message APPENDed as a `literal8` (RFC 3516 4.4):
//! stored that way, every BODY[] and RFC822 literal of it is 7-bit clean as RFC 3501 wants,
//! while BINARY[] still decodes the exact bytes. Dovecot converts such messages the same way.

use std::ops::Range;

use super::{raw_header_entry, Kind, Node, Structure};

/// Base64 lines are this long (RFC 2045 6.8 allows at most 76 characters).
const LINE: usize = 76;

impl Structure<'_> {
    /// The message with each `Content-Transfer-Encoding: binary` part re-encoded as base64
    /// (its header field rewritten, its body encoded in 76-character lines); `None` when the
    /// message has no such part and can be stored as it is.
    pub fn binary_parts_as_base64(&self) -> Option<Vec<u8>> {
        let raw = self.raw();
        let root = self.root()?;
        let mut edits: Vec<(Range<usize>, Vec<u8>)> = Vec::new();
        // Walked with a stack: the tree is at most MAX_MIME_DEPTH deep, but no recursion here.
        let mut pending: Vec<&Node<'_, '_>> = vec![&root];
        while let Some(node) = pending.pop() {
            match &node.kind {
                Kind::Multipart(children) => pending.extend(children.iter()),
                Kind::Message(inner) => pending.push(inner),
                Kind::Leaf | Kind::TooDeep => {
                    let Some(field) = raw_header_entry(node.part, "Content-Transfer-Encoding")
                    else {
                        continue;
                    };
                    let value = raw.get(field.clone()).unwrap_or_default();
                    if !value.trim_ascii().eq_ignore_ascii_case(b"binary") {
                        continue;
                    }
                    let body = raw.get(node.body.clone()).unwrap_or_default();
                    edits.push((field, b" base64\r\n".to_vec()));
                    edits.push((node.body.clone(), base64_lines(body)));
                }
            }
        }
        if edits.is_empty() {
            return None;
        }
        edits.sort_by_key(|(range, _)| range.start);
        let mut out = Vec::with_capacity(raw.len() + raw.len() / 3);
        let mut at = 0;
        for (range, replacement) in edits {
            if range.start < at || range.end > raw.len() {
                // Overlapping or out-of-range offsets: a parse to distrust; store as it came.
                return None;
            }
            out.extend_from_slice(&raw[at..range.start]);
            out.extend_from_slice(&replacement);
            at = range.end;
        }
        out.extend_from_slice(&raw[at..]);
        Some(out)
    }
}

/// Base64 in CRLF-separated lines of [`LINE`] characters, without a final line end (the
/// part's body ends where the boundary's CRLF begins).
fn base64_lines(bytes: &[u8]) -> Vec<u8> {
    use base64::Engine;
    let text = base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut out = Vec::with_capacity(text.len() + text.len() / LINE * 2);
    for (i, line) in text.as_bytes().chunks(LINE).enumerate() {
        if i > 0 {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(line);
    }
    out
}
