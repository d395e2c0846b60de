//! CRLF line framing with a hard length limit, shared by POP3 and SMTP.
//!
//! A line longer than the limit is not buffered: its bytes are dropped up to the next LF and the
//! caller is told once, so it can answer with the protocol's "line too long" error and go on.

use bytes::{Buf, BytesMut};

/// Splits a byte stream into lines without ever holding more than `max_len` bytes of one line.
#[derive(Debug)]
pub struct LineDecoder {
    max_len: usize,
    discarding: bool,
}

/// What one step of line decoding produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A complete line, without its CR LF (or bare LF).
    Complete(Vec<u8>),
    /// A line exceeded the limit and was dropped.
    TooLong,
}

impl LineDecoder {
    /// A decoder whose lines (without the line ending) are at most `max_len` bytes.
    pub fn new(max_len: usize) -> Self {
        Self {
            max_len,
            discarding: false,
        }
    }

    /// The limit this decoder enforces, for error texts.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Takes the next line out of `buf`; `Ok(None)` means more bytes are needed.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Option<Line> {
        loop {
            match buf.iter().position(|&b| b == b'\n') {
                Some(lf) => {
                    let mut line = buf.split_to(lf + 1);
                    if self.discarding {
                        self.discarding = false;
                        return Some(Line::TooLong);
                    }
                    line.truncate(lf);
                    if line.last() == Some(&b'\r') {
                        line.truncate(lf - 1);
                    }
                    if line.len() > self.max_len {
                        return Some(Line::TooLong);
                    }
                    return Some(Line::Complete(line.to_vec()));
                }
                None if buf.len() > self.max_len + 1 => {
                    // Keep nothing of an overlong line; remember to drop the rest of it.
                    buf.advance(buf.len());
                    self.discarding = true;
                }
                None => return None,
            }
            if buf.is_empty() {
                return None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_in_chunks(input: &[u8], chunk: usize, max: usize) -> Vec<Line> {
        let mut dec = LineDecoder::new(max);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for piece in input.chunks(chunk) {
            buf.extend_from_slice(piece);
            while let Some(line) = dec.decode(&mut buf) {
                out.push(line);
            }
        }
        out
    }

    #[test]
    fn lines_survive_every_chunking() {
        let input = b"USER alice\r\nPASS se cret\nQUIT\r\n";
        for chunk in 1..=input.len() {
            assert_eq!(
                feed_in_chunks(input, chunk, 64),
                vec![
                    Line::Complete(b"USER alice".to_vec()),
                    Line::Complete(b"PASS se cret".to_vec()),
                    Line::Complete(b"QUIT".to_vec()),
                ],
                "chunk size {chunk}"
            );
        }
    }

    #[test]
    fn overlong_line_is_reported_once_and_the_next_line_survives() {
        let mut input = vec![b'A'; 5000];
        input.extend_from_slice(b"\r\nNOOP\r\n");
        for chunk in [1, 7, 512, 6000] {
            assert_eq!(
                feed_in_chunks(&input, chunk, 100),
                vec![Line::TooLong, Line::Complete(b"NOOP".to_vec())],
                "chunk size {chunk}"
            );
        }
    }
}
