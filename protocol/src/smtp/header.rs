//! Watching a message header stream past (RFC 5322 2.2), to find where it ends and which of the
//! fields an MSA must add (RFC 6409 8: `Message-ID:`, `Date:`) it lacks, without buffering it.
//!
//! Input is content as [`crate::dot::DotDecoder`] produces it: every line ends CRLF and no
//! chunk splits a CRLF.

/// Tracks the header section of a message fed in chunks.
#[derive(Debug, Clone)]
pub struct HeaderWatch {
    in_header: bool,
    at_line_start: bool,
    /// The first bytes of the current line, enough to recognise a field name.
    prefix: Vec<u8>,
    has_message_id: bool,
    has_date: bool,
}

/// How much of a field's line is kept to recognise its name.
const PREFIX: usize = 16;

impl Default for HeaderWatch {
    fn default() -> Self {
        Self::new()
    }
}

impl HeaderWatch {
    /// A watch at the first byte of a message.
    pub fn new() -> Self {
        Self {
            in_header: true,
            at_line_start: true,
            prefix: Vec::with_capacity(PREFIX),
            has_message_id: false,
            has_date: false,
        }
    }

    /// Whether the header is still going on.
    pub fn in_header(&self) -> bool {
        self.in_header
    }

    /// Whether a `Message-ID:` field was seen.
    pub fn has_message_id(&self) -> bool {
        self.has_message_id
    }

    /// Whether a `Date:` field was seen.
    pub fn has_date(&self) -> bool {
        self.has_date
    }

    /// Feeds content; returns the offset in `chunk` of the blank line that ends the header,
    /// if it is in this chunk (the place to insert fields before).
    pub fn feed(&mut self, chunk: &[u8]) -> Option<usize> {
        if !self.in_header {
            return None;
        }
        for (i, &b) in chunk.iter().enumerate() {
            if self.at_line_start && b == b'\r' {
                self.in_header = false;
                return Some(i);
            }
            if b == b'\n' {
                self.end_line();
                continue;
            }
            self.at_line_start = false;
            if self.prefix.len() < PREFIX {
                self.prefix.push(b);
            }
        }
        None
    }

    fn end_line(&mut self) {
        let name = self
            .prefix
            .iter()
            .position(|&b| b == b':')
            .map(|colon| self.prefix[..colon].trim_ascii_end().to_ascii_lowercase());
        match name.as_deref() {
            Some(b"message-id") => self.has_message_id = true,
            Some(b"date") => self.has_date = true,
            _ => {}
        }
        self.prefix.clear();
        self.at_line_start = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_end_and_the_fields_at_any_chunking() {
        let msg = b"From: a\r\nmessage-id : <x@y>\r\nSubject: date: no\r\n\r\nDate: body\r\n";
        for chunk in 1..=msg.len() {
            let mut w = HeaderWatch::new();
            let mut end = None;
            let mut offset = 0;
            for piece in msg.chunks(chunk) {
                if let Some(at) = w.feed(piece) {
                    end = Some(offset + at);
                }
                offset += piece.len();
            }
            assert_eq!(end, Some(48), "chunk {chunk}");
            assert!(w.has_message_id() && !w.has_date() && !w.in_header());
        }
        let mut w = HeaderWatch::new();
        assert_eq!(w.feed(b"DATE: now\r\nno blank line\r\n"), None);
        assert!(w.has_date() && w.in_header());
    }
}
