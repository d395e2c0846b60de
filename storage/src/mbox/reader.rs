//! Reading one mbox message as clients see it — bookkeeping headers hidden, `>From ` unquoted —
//! straight from the file, seekable, never holding the message in memory.
//!
//! Reads go to the open file the offsets were found in (the descriptor the last sync scanned),
//! never to whatever the path names now: a rewrite by another session or program renames a new
//! file into place, and the old offsets mean nothing in it. All reads are positional, so any
//! number of views share one descriptor without sharing a file position.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use super::parse::{is_hidden_header, is_quoted_from, RawMessage};
use crate::Error;

/// The visible bytes of a message, as ranges of the file.
#[derive(Debug)]
pub struct MessageView {
    file: Arc<File>,
    /// `(file offset, length, view offset)` in view order.
    segments: Vec<(u64, u64, u64)>,
    len: u64,
    pos: u64,
}

impl MessageView {
    /// Maps the visible bytes of `msg` in `file`, the open mbox (named `path` in errors) whose
    /// scan found `msg`.
    pub fn open(file: Arc<File>, path: &Path, msg: &RawMessage) -> Result<Self, Error> {
        let io_err = |e| Error::io(path, e);
        let mut reader = BufReader::new(ReadAt::new(&file, msg.start, msg.end));
        let mut segments: Vec<(u64, u64, u64)> = Vec::new();
        let (mut offset, mut len) = (msg.start, 0u64);
        let mut in_headers = true;
        let mut line = Vec::new();
        let push = |segments: &mut Vec<(u64, u64, u64)>, at: u64, n: u64, len: &mut u64| {
            match segments.last_mut() {
                Some(last) if last.0 + last.1 == at => last.1 += n,
                _ => segments.push((at, n, *len)),
            }
            *len += n;
        };
        loop {
            line.clear();
            let n = reader.read_until(b'\n', &mut line).map_err(io_err)? as u64;
            if n == 0 {
                break;
            }
            let content = line.strip_suffix(b"\n").unwrap_or(&line);
            let content = content.strip_suffix(b"\r").unwrap_or(content);
            if in_headers && content.is_empty() {
                in_headers = false;
                push(&mut segments, offset, n, &mut len);
            } else if in_headers && is_hidden_header(content) {
                // skipped
            } else if !in_headers && is_quoted_from(content) {
                push(&mut segments, offset + 1, n - 1, &mut len);
            } else {
                push(&mut segments, offset, n, &mut len);
            }
            offset += n;
        }
        drop(reader);
        Ok(Self {
            file,
            segments,
            len,
            pos: 0,
        })
    }

    /// The visible length.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the message is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Read for MessageView {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.len || buf.is_empty() {
            return Ok(0);
        }
        let idx = self
            .segments
            .partition_point(|(_, _, view)| *view <= self.pos)
            - 1;
        let (file_at, seg_len, view_at) = self.segments[idx];
        let within = self.pos - view_at;
        let want = (seg_len - within).min(buf.len() as u64) as usize;
        let n = self.file.read_at(&mut buf[..want], file_at + within)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for MessageView {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = target
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before start"))?;
        Ok(self.pos)
    }
}

/// Reads `start..end` of a file with positional reads (the file's own position untouched).
#[derive(Debug)]
pub struct ReadAt<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
}

impl<'a> ReadAt<'a> {
    /// A reader of `file` from `start` to `end` (exclusive).
    pub fn new(file: &'a File, start: u64, end: u64) -> Self {
        Self {
            file,
            pos: start,
            end,
        }
    }
}

impl Read for ReadAt<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.end.saturating_sub(self.pos);
        let want = left.min(buf.len() as u64) as usize;
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}
