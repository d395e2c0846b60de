//! Message sizes as clients see them: every line ending CRLF (RFC 5322), whatever the file holds.
//! Maildir files written by procmail or postfix, and every mbox, use bare LF; IMAP RFC822.SIZE and
//! POP3 LIST must still report the bytes the client will receive.

use std::io::{self, Read};

/// Counts the CRLF size of bytes fed chunk by chunk; a CR ending one chunk pairs with an LF
/// starting the next.
#[derive(Debug, Clone, Default)]
pub struct CrlfSize {
    total: u64,
    prev_cr: bool,
}

impl CrlfSize {
    /// Counts one more chunk.
    pub fn feed(&mut self, chunk: &[u8]) {
        let mut prev_cr = self.prev_cr;
        let mut bare_lf = 0u64;
        for &b in chunk {
            if b == b'\n' && !prev_cr {
                bare_lf += 1;
            }
            prev_cr = b == b'\r';
        }
        self.prev_cr = prev_cr;
        self.total += chunk.len() as u64 + bare_lf;
    }

    /// The size so far.
    pub fn total(&self) -> u64 {
        self.total
    }
}

/// The CRLF size of everything `reader` yields, read in 64 KiB chunks.
pub fn crlf_size(reader: &mut dyn Read) -> io::Result<u64> {
    let mut size = CrlfSize::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return Ok(size.total()),
            Ok(n) => size.feed(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// A reader that counts the CRLF size of what passes through it (appends learn it for free).
pub struct CountingReader<'a> {
    inner: &'a mut dyn Read,
    size: CrlfSize,
}

impl<'a> CountingReader<'a> {
    /// Wraps `inner`.
    pub fn new(inner: &'a mut dyn Read) -> Self {
        Self {
            inner,
            size: CrlfSize::default(),
        }
    }

    /// The CRLF size of what was read so far.
    pub fn crlf_size(&self) -> u64 {
        self.size.total()
    }
}

impl Read for CountingReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.size.feed(&buf[..n]);
        Ok(n)
    }
}

/// Reads a message with every bare LF turned into CRLF: the bytes IMAP `BODY[]` sends, streamed.
pub struct CrlfReader<R> {
    inner: R,
    raw: Vec<u8>,
    at: usize,
    len: usize,
    prev_cr: bool,
    /// A CR owed before the LF at `raw[at]`.
    pending_lf: bool,
}

impl<R: Read> CrlfReader<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            raw: vec![0; 64 * 1024],
            at: 0,
            len: 0,
            prev_cr: false,
            pending_lf: false,
        }
    }
}

impl<R: Read> Read for CrlfReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.at == self.len {
            self.len = self.inner.read(&mut self.raw)?;
            self.at = 0;
            if self.len == 0 {
                return Ok(0);
            }
        }
        let mut n = 0;
        while n < buf.len() && self.at < self.len {
            let b = self.raw[self.at];
            if b == b'\n' && !self.prev_cr && !self.pending_lf {
                buf[n] = b'\r';
                n += 1;
                self.pending_lf = true;
                continue;
            }
            buf[n] = b;
            n += 1;
            self.at += 1;
            self.prev_cr = b == b'\r';
            self.pending_lf = false;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_lf_counts_two_and_crlf_counts_as_is_across_chunks() {
        let msg = b"Subject: x\n\nline\r\nbare\rcr\n\n";
        for chunk in 1..=msg.len() {
            let mut size = CrlfSize::default();
            msg.chunks(chunk).for_each(|c| size.feed(c));
            assert_eq!(size.total(), msg.len() as u64 + 4, "chunk {chunk}");
        }
        assert_eq!(crlf_size(&mut &msg[..]).ok(), Some(msg.len() as u64 + 4));
    }

    #[test]
    fn crlf_reader_converts_whatever_the_read_sizes() {
        let msg = b"a\nb\r\nc\rd\n\n";
        for size in 1..8 {
            let mut reader = CrlfReader::new(&msg[..]);
            let mut out = Vec::new();
            let mut buf = vec![0u8; size];
            loop {
                let n = reader.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                out.extend_from_slice(&buf[..n]);
            }
            assert_eq!(out, b"a\r\nb\r\nc\rd\r\n\r\n", "read size {size}");
        }
    }
}
