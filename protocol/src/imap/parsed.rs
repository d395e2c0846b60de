//! A MIME message parsed by `mail-parser`, made safe to hold and drop whatever its nesting.
//!
//! `mail-parser` parses nested `message/rfc822` parts without recursion, but its `Message`
//! owns each attached message inside a part, so the compiler's drop glue recurses once per
//! level: a 3 MB message nested 30,000 deep overflows a 2 MB thread stack and aborts the whole
//! process. [`ParsedMessage`] takes those levels apart one at a time on drop. Every full parse
//! of a message roost serves goes through [`ParsedMessage::parse`].

use std::ops::Deref;

use mail_parser::{Message, MessageParser, PartType};

/// Attached messages nested deeper than this are shown as opaque leaves (Dovecot's limit).
pub const MAX_MIME_DEPTH: usize = 100;

/// A parsed message whose drop never recurses.
pub struct ParsedMessage<'m> {
    message: Message<'m>,
}

impl<'m> ParsedMessage<'m> {
    /// Parses a whole message (headers and every part); `None` when `mail-parser` finds no
    /// message at all in the bytes, or gives up on them with a panic: with debug assertions
    /// it asserts on some broken nestings (found by fuzzing), and one message must not end the
    /// session that reads it.
    pub fn parse(raw: &'m [u8]) -> Option<Self> {
        std::panic::catch_unwind(|| MessageParser::default().parse(raw))
            .ok()
            .flatten()
            .map(Self::from)
    }
}

impl<'m> From<Message<'m>> for ParsedMessage<'m> {
    fn from(message: Message<'m>) -> Self {
        Self { message }
    }
}

impl<'m> Deref for ParsedMessage<'m> {
    type Target = Message<'m>;

    fn deref(&self) -> &Message<'m> {
        &self.message
    }
}

impl Drop for ParsedMessage<'_> {
    fn drop(&mut self) {
        // Move every attached message out of its part onto a heap stack, so that each
        // `Message` dropped here holds no nested one any more.
        let mut pending: Vec<Message<'_>> = Vec::new();
        detach_attached(&mut self.message, &mut pending);
        while let Some(mut message) = pending.pop() {
            detach_attached(&mut message, &mut pending);
        }
    }
}

fn detach_attached<'m>(message: &mut Message<'m>, pending: &mut Vec<Message<'m>>) {
    for part in &mut message.parts {
        if matches!(part.body, PartType::Message(_)) {
            if let PartType::Message(inner) = std::mem::take(&mut part.body) {
                pending.push(inner);
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `depth` multiparts, each holding an attached message that holds the next one.
    pub(crate) fn nested(depth: usize) -> Vec<u8> {
        let mut m = Vec::new();
        for i in 0..depth {
            m.extend_from_slice(
                format!(
                    "Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n\
                     Content-Type: message/rfc822\r\n\r\n"
                )
                .as_bytes(),
            );
        }
        m.extend_from_slice(b"\r\nleaf\r\n");
        for i in (0..depth).rev() {
            m.extend_from_slice(format!("--b{i}--\r\n").as_bytes());
        }
        m
    }

    #[test]
    fn deep_nesting_drops_on_a_small_stack() {
        // 50,000 levels overflowed a 2 MB stack (a tokio worker's) in mail-parser's drop glue.
        let raw = nested(50_000);
        let dropped = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || {
                let parsed = ParsedMessage::parse(&raw);
                assert!(parsed.is_some());
                drop(parsed);
            })
            .expect("thread starts")
            .join();
        assert!(dropped.is_ok());
    }
}
