//! The dot-terminated multi-line form POP3 (RFC 1939 3) and SMTP DATA (RFC 5321 4.5.2) share:
//! every line ends in CRLF, a line starting with `.` gets one more `.`, and `.` CRLF ends it.
//!
//! [`DotEncoder`] turns a stored message, fed in chunks of any size, into that form without ever
//! holding it whole. Bare LF line ends (common in maildir files and mbox) become CRLF, so the
//! bytes sent match the CRLF size roost reports in LIST and RFC822.SIZE. It can also stop after
//! the header and N body lines, which is POP3 TOP.

/// Streams a message into dot-stuffed, CRLF-terminated lines.
#[derive(Debug, Clone)]
pub struct DotEncoder {
    at_line_start: bool,
    prev_cr: bool,
    /// Characters on the current line other than CR.
    line_len: usize,
    in_header: bool,
    /// Body lines still to send (`None`: all of them).
    body_lines_left: Option<u64>,
    done: bool,
}

impl DotEncoder {
    /// An encoder for the whole message (POP3 RETR).
    pub fn whole() -> Self {
        Self::new(None)
    }

    /// An encoder for the header, the blank line and the first `lines` body lines (POP3 TOP).
    pub fn top(lines: u64) -> Self {
        Self::new(Some(lines))
    }

    fn new(body_lines_left: Option<u64>) -> Self {
        Self {
            at_line_start: true,
            prev_cr: false,
            line_len: 0,
            in_header: true,
            body_lines_left,
            done: false,
        }
    }

    /// Whether everything wanted has been encoded (TOP reached its line count); further input
    /// is ignored, so the caller may stop reading.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Encodes `input`, appending the wire form to `out`.
    pub fn encode(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let mut rest = input;
        while !rest.is_empty() && !self.done {
            let (line, ended) = match rest.iter().position(|&b| b == b'\n') {
                Some(i) => (&rest[..i], true),
                None => (rest, false),
            };
            rest = &rest[line.len() + usize::from(ended)..];
            if !line.is_empty() {
                if self.at_line_start && line[0] == b'.' {
                    out.push(b'.');
                }
                out.extend_from_slice(line);
                self.at_line_start = false;
                self.line_len += line.iter().filter(|&&b| b != b'\r').count();
                self.prev_cr = line.last() == Some(&b'\r');
            }
            if ended {
                if !self.prev_cr {
                    out.push(b'\r');
                }
                out.push(b'\n');
                self.end_line();
            }
        }
    }

    fn end_line(&mut self) {
        let blank = self.line_len == 0;
        self.at_line_start = true;
        self.prev_cr = false;
        self.line_len = 0;
        if self.in_header {
            if blank {
                self.in_header = false;
                self.done = self.body_lines_left == Some(0);
            }
        } else if let Some(left) = self.body_lines_left.as_mut() {
            *left = left.saturating_sub(1);
            self.done = *left == 0;
        }
    }

    /// Ends the message: completes an unterminated last line and adds the `.` CRLF terminator.
    pub fn finish(self, out: &mut Vec<u8>) {
        if !self.at_line_start {
            if !self.prev_cr {
                out.push(b'\r');
            }
            out.push(b'\n');
        }
        out.extend_from_slice(b".\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode_in_chunks(enc: DotEncoder, input: &[u8], chunk: usize) -> Vec<u8> {
        let mut enc = enc;
        let mut out = Vec::new();
        for piece in input.chunks(chunk.max(1)) {
            enc.encode(piece, &mut out);
        }
        enc.finish(&mut out);
        out
    }

    #[test]
    fn bare_lf_becomes_crlf_and_dots_are_stuffed() {
        let msg = b"Subject: x\n\n.hidden\nplain\r\n..two\n.";
        let want = b"Subject: x\r\n\r\n..hidden\r\nplain\r\n...two\r\n..\r\n.\r\n";
        for chunk in 1..msg.len() + 1 {
            assert_eq!(
                encode_in_chunks(DotEncoder::whole(), msg, chunk),
                want,
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn crlf_input_is_unchanged_apart_from_the_terminator() {
        let msg = b"A: b\r\n\r\nbody\r\n";
        assert_eq!(
            encode_in_chunks(DotEncoder::whole(), msg, 3),
            b"A: b\r\n\r\nbody\r\n.\r\n"
        );
    }

    #[test]
    fn top_sends_header_blank_line_and_n_body_lines() {
        let msg = b"A: b\nC: d\n\none\ntwo\nthree\n";
        for chunk in 1..msg.len() + 1 {
            assert_eq!(
                encode_in_chunks(DotEncoder::top(0), msg, chunk),
                b"A: b\r\nC: d\r\n\r\n.\r\n"
            );
            assert_eq!(
                encode_in_chunks(DotEncoder::top(2), msg, chunk),
                b"A: b\r\nC: d\r\n\r\none\r\ntwo\r\n.\r\n"
            );
            assert_eq!(
                encode_in_chunks(DotEncoder::top(99), msg, chunk),
                b"A: b\r\nC: d\r\n\r\none\r\ntwo\r\nthree\r\n.\r\n"
            );
        }
    }

    #[test]
    fn crlf_blank_line_ends_the_header_for_top() {
        let msg = b"A: b\r\n\r\none\r\ntwo\r\n";
        assert_eq!(
            encode_in_chunks(DotEncoder::top(1), msg, 1),
            b"A: b\r\n\r\none\r\n.\r\n"
        );
    }
}
