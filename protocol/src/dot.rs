//! The dot-terminated multi-line form POP3 (RFC 1939 3) and SMTP DATA (RFC 5321 4.5.2) share:
//! every line ends in CRLF, a line starting with `.` gets one more `.`, and `.` CRLF ends it.
//!
//! [`DotEncoder`] turns a stored message, fed in chunks of any size, into that form without ever
//! holding it whole. Bare LF line ends (common in maildir files and mbox) become CRLF, so the
//! bytes sent match the CRLF size roost reports in LIST and RFC822.SIZE. It can also stop after
//! the header and N body lines, which is POP3 TOP.
//!
//! [`DotDecoder`] is the receiving side (SMTP/LMTP DATA): it removes the stuffing, finds the end,
//! and reports what RFC 5321 forbids (overlong lines, NUL bytes, a CR or LF that is not part of a
//! CRLF) without holding a line whole. Only `CRLF . CRLF` ends the data: a line starts only at
//! the start of the data or after CRLF, so `LF . CRLF`, `CR . CRLF` and `CRLF . LF` are content,
//! never an end (SMTP smuggling, CVE-2023-51764). Bare CR and bare LF are counted so the caller
//! can refuse the message, as Postfix's `smtpd_forbid_bare_newline = yes` does.

use bytes::{Buf, BytesMut};

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

/// The longest DATA line RFC 5321 4.5.3.1.6 allows, without its CRLF (1000 octets with it).
pub const MAX_DATA_LINE: usize = 998;

/// What was wrong with received data, once its end was seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DataFlaws {
    /// A line exceeded [`MAX_DATA_LINE`] octets (RFC 5321 4.5.3.1.6).
    pub line_too_long: bool,
    /// The content had a NUL byte, which RFC 5321 and RFC 5322 text may not carry.
    pub nul: bool,
    /// LF bytes not preceded by CR (RFC 5321 2.3.8 allows LF only in CRLF).
    pub bare_lf: u64,
    /// CR bytes not followed by LF (RFC 5321 2.3.8 allows CR only in CRLF).
    pub bare_cr: u64,
}

impl DataFlaws {
    /// Whether a CR or LF appeared outside a CRLF pair, the raw material of SMTP smuggling.
    pub fn bare_newline(&self) -> bool {
        self.bare_lf > 0 || self.bare_cr > 0
    }
}

/// Streams SMTP DATA from the wire into message content: unstuffed, every LF output as CRLF.
///
/// A bare LF is written out as CRLF but does not start a line: a `.` after it is neither
/// stuffing nor the terminator. A bare CR is copied as it is. Both are counted in
/// [`DataFlaws`]; the content is only fit to keep when [`DataFlaws::bare_newline`] is false.
#[derive(Debug, Clone, Default)]
pub struct DotDecoder {
    /// Inside a line: false only at the start of the data and right after CRLF.
    mid_line: bool,
    /// Wire octets on the current line so far (the stuffing dot included, the line end not).
    line_len: usize,
    flaws: DataFlaws,
    done: bool,
}

impl DotDecoder {
    /// A decoder at the start of the data (just after the 354 reply).
    pub fn new() -> Self {
        Self::default()
    }

    /// What was wrong with the data so far.
    pub fn flaws(&self) -> DataFlaws {
        self.flaws
    }

    /// Whether the terminating `.` line has been consumed.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Takes what it can from `buf` (leaving bytes after the terminator there for the next
    /// command) and appends the content to `out`; returns true once the end was consumed.
    pub fn decode(&mut self, buf: &mut BytesMut, out: &mut Vec<u8>) -> bool {
        while !self.done && !buf.is_empty() {
            if !self.mid_line && !self.line_start(buf) {
                break;
            }
            if self.mid_line && !self.line_rest(buf, out) {
                break;
            }
        }
        self.done
    }

    /// At a line start (after CRLF): the terminator `.` CRLF, or a stuffing dot to drop.
    /// Returns false when more bytes are needed to decide.
    fn line_start(&mut self, buf: &mut BytesMut) -> bool {
        if buf[0] != b'.' {
            self.mid_line = true;
            return true;
        }
        match (buf.get(1), buf.get(2)) {
            (None, _) | (Some(b'\r'), None) => false,
            (Some(b'\r'), Some(b'\n')) => {
                buf.advance(3);
                self.done = true;
                true
            }
            _ => {
                buf.advance(1);
                self.line_len = 1;
                self.mid_line = true;
                true
            }
        }
    }

    /// Inside a line: copies up to its end; a trailing CR is held back until its next byte is
    /// known. Only CRLF ends the line; a bare LF is counted and the line goes on.
    /// Returns false when more bytes are needed.
    fn line_rest(&mut self, buf: &mut BytesMut, out: &mut Vec<u8>) -> bool {
        match buf.iter().position(|&b| b == b'\n') {
            Some(lf) => {
                let crlf = lf > 0 && buf[lf - 1] == b'\r';
                let content = if crlf { &buf[..lf - 1] } else { &buf[..lf] };
                self.note(content);
                out.extend_from_slice(content);
                out.extend_from_slice(b"\r\n");
                if !crlf {
                    self.flaws.bare_lf += 1;
                }
                buf.advance(lf + 1);
                self.mid_line = !crlf;
                self.line_len = 0;
                true
            }
            None => {
                let take = if buf.last() == Some(&b'\r') {
                    buf.len() - 1
                } else {
                    buf.len()
                };
                if take == 0 {
                    return false;
                }
                let content = buf.split_to(take);
                self.note(&content);
                out.extend_from_slice(&content);
                false
            }
        }
    }

    /// Checks content bytes; every CR in them is bare (a CR before LF never gets here).
    fn note(&mut self, content: &[u8]) {
        self.line_len += content.len();
        if self.line_len > MAX_DATA_LINE {
            self.flaws.line_too_long = true;
        }
        if content.contains(&0) {
            self.flaws.nul = true;
        }
        self.flaws.bare_cr += content.iter().filter(|&&b| b == b'\r').count() as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in `chunk`-byte pieces; after the end, the rest stays unread in the buffer.
    fn decode_in_chunks(input: &[u8], chunk: usize) -> (Vec<u8>, DataFlaws, Vec<u8>) {
        let mut dec = DotDecoder::new();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for piece in input.chunks(chunk.max(1)) {
            buf.extend_from_slice(piece);
            if !dec.is_done() {
                dec.decode(&mut buf, &mut out);
            }
        }
        assert!(dec.is_done());
        (out, dec.flaws(), buf.to_vec())
    }

    /// (wire, content, left for the next command, bare LFs, bare CRs)
    type Case = (&'static [u8], &'static [u8], &'static [u8], u64, u64);

    const CASES: &[Case] = &[
        (
            b"Subject: x\r\n\r\n..dot\r\nbody\r\n.\r\nQUIT\r\n",
            b"Subject: x\r\n\r\n.dot\r\nbody\r\n",
            b"QUIT\r\n",
            0,
            0,
        ),
        (b".\r\nQUIT\r\n", b"", b"QUIT\r\n", 0, 0),
        (b"..\r\n.\r\n", b".\r\n", b"", 0, 0),
        // LF . CRLF: what ended DATA before (CVE-2023-51764); now content, flagged.
        (
            b"a\r\nhello\n.\r\nMAIL FROM:<x@y>\r\n.\r\nQUIT\r\n",
            b"a\r\nhello\r\n.\r\nMAIL FROM:<x@y>\r\n",
            b"QUIT\r\n",
            1,
            0,
        ),
        // CR . CRLF
        (
            b"hello\r.\r\nMAIL FROM:<x@y>\r\n.\r\n",
            b"hello\r.\r\nMAIL FROM:<x@y>\r\n",
            b"",
            0,
            1,
        ),
        // CRLF . LF
        (
            b"hello\r\n.\nMAIL\r\n.\r\n",
            b"hello\r\n\r\nMAIL\r\n",
            b"",
            1,
            0,
        ),
        // LF . LF
        (
            b"hello\n.\nMAIL\r\n.\r\n",
            b"hello\r\n.\r\nMAIL\r\n",
            b"",
            2,
            0,
        ),
        // CR . CR
        (b"hello\r.\rMAIL\r\n.\r\n", b"hello\r.\rMAIL\r\n", b"", 0, 2),
        (b"\n.\r\n.\r\n", b"\r\n.\r\n", b"", 1, 0),
        (b"a\r\n.\rb\r\n.\r\n", b"a\r\n\rb\r\n", b"", 0, 1),
        (b"a\r\r\n\r\r\n.\r\n", b"a\r\r\n\r\r\n", b"", 0, 2),
        (
            b"lf\nbare\rcr\r\n\r\n.\r\nRSET\r\n",
            b"lf\r\nbare\rcr\r\n\r\n",
            b"RSET\r\n",
            1,
            1,
        ),
    ];

    #[test]
    fn only_crlf_dot_crlf_ends_the_data_at_every_chunking() {
        for (i, &(wire, content, rest, lf, cr)) in CASES.iter().enumerate() {
            for chunk in 1..=wire.len() {
                let (out, flaws, left) = decode_in_chunks(wire, chunk);
                let at = format!("case {i}, chunk {chunk}");
                assert_eq!(out, content, "{at}: {:?}", String::from_utf8_lossy(&out));
                assert_eq!(left, rest, "{at}");
                assert_eq!((flaws.bare_lf, flaws.bare_cr), (lf, cr), "{at}");
                assert_eq!(flaws.bare_newline(), lf + cr > 0, "{at}");
                assert!(!flaws.nul && !flaws.line_too_long, "{at}");
            }
        }
    }

    #[test]
    fn smuggled_ends_are_not_ends_whatever_follows() {
        for end in [&b"\n.\r\n"[..], b"\r.\r\n", b"\r\n.\n", b"\n.\n", b"\r.\r"] {
            let mut wire = b"x".to_vec();
            wire.extend_from_slice(end);
            let mut dec = DotDecoder::new();
            let mut buf = BytesMut::from(&wire[..]);
            assert!(!dec.decode(&mut buf, &mut Vec::new()), "{end:?}");
            assert!(dec.flaws().bare_newline(), "{end:?}");
        }
    }

    #[test]
    fn long_lines_and_nul_are_flagged_at_any_chunking() {
        let mut wire = vec![b'x'; MAX_DATA_LINE];
        wire.extend_from_slice(b"\r\n.");
        wire.extend(vec![b'y'; MAX_DATA_LINE - 1]);
        wire.extend_from_slice(b"\r\n.\r\n");
        for chunk in [1, 7, 998, 999, 5000] {
            let (out, flaws, _) = decode_in_chunks(&wire, chunk);
            assert!(
                !flaws.line_too_long,
                "exactly 998 incl. the stuffing dot is fine"
            );
            assert_eq!(out.len(), 2 * MAX_DATA_LINE - 1 + 4);
        }
        let mut wire = vec![b'x'; MAX_DATA_LINE + 1];
        wire.extend_from_slice(b"\r\nnul\0\r\n.\r\n");
        for chunk in [1, 3, 1000] {
            let (_, flaws, _) = decode_in_chunks(&wire, chunk);
            assert!(flaws.line_too_long && flaws.nul, "chunk {chunk}");
        }
    }

    #[test]
    fn decoding_what_the_encoder_made_gives_the_message_back() {
        let msg = b"A: b\r\n\r\n.x\r\n..y\r\n.\r\nend\r\n";
        let mut wire = Vec::new();
        let mut enc = DotEncoder::whole();
        enc.encode(msg, &mut wire);
        enc.finish(&mut wire);
        for chunk in 1..=wire.len() {
            assert_eq!(decode_in_chunks(&wire, chunk).0, msg);
        }
    }

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
