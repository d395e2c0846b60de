//! Receiving DATA: streamed from the connection through the dot decoder into a spool file,
//! with the trace header first and, for submission, `Message-ID:`/`Date:` added where the
//! header lacks them. Never more than one read buffer of the message is in memory; bytes past
//! the size limit are read and dropped, so the session stays in step with the client.

use std::io::{BufWriter, Write};

use roost_protocol::dot::{DataFlaws, DotDecoder};
use roost_protocol::smtp::header::HeaderWatch;

use super::queue::Spool;
use crate::listen::conn::{Connection, Ended};

/// How receiving ended.
pub enum Received {
    /// The terminating dot arrived.
    Complete {
        /// Octets of content (trace header included); more than the limit if it was exceeded.
        size: u64,
        /// What RFC 5321 forbids that the data contained.
        flaws: DataFlaws,
        /// Whether the spool file could not be written.
        write_error: Option<std::io::Error>,
    },
    /// The connection ended first (EOF, timeout, shutdown): nothing may be stored.
    Closed(Ended),
}

/// The fields an MSA adds when the header lacks them (RFC 6409 8.2, 8.3).
pub struct MissingFields {
    /// The `Message-ID:` value to use, `<id@host>`.
    pub message_id: String,
    /// The `Date:` value to use.
    pub date: String,
}

impl MissingFields {
    fn lines(&self, watch: &HeaderWatch) -> Vec<u8> {
        let mut out = Vec::new();
        if !watch.has_message_id() {
            out.extend_from_slice(format!("Message-ID: {}\r\n", self.message_id).as_bytes());
        }
        if !watch.has_date() {
            out.extend_from_slice(format!("Date: {}\r\n", self.date).as_bytes());
        }
        out
    }
}

/// Reads DATA into `spool` after the 354 reply.
pub async fn receive(
    conn: &mut Connection,
    spool: &Spool,
    trace: &[u8],
    complete: Option<MissingFields>,
    max_size: u64,
) -> Received {
    let mut writer = BufWriter::with_capacity(64 * 1024, spool.file());
    let mut write_error = writer.write_all(trace).err();
    let mut size = trace.len() as u64;
    let mut decoder = DotDecoder::new();
    let mut watch = HeaderWatch::new();
    let mut out = Vec::with_capacity(64 * 1024);
    let mut put = |bytes: &[u8], size: &mut u64, error: &mut Option<std::io::Error>| {
        *size += bytes.len() as u64;
        if *size <= max_size && error.is_none() {
            *error = writer.write_all(bytes).err();
        }
    };
    loop {
        out.clear();
        let done = decoder.decode(conn.buffer(), &mut out);
        let mut chunk = &out[..];
        if let Some(fields) = &complete {
            if let Some(at) = watch.feed(chunk) {
                put(&chunk[..at], &mut size, &mut write_error);
                put(&fields.lines(&watch), &mut size, &mut write_error);
                chunk = &chunk[at..];
            }
        }
        put(chunk, &mut size, &mut write_error);
        if done {
            break;
        }
        if let Err(why) = conn.read_more().await {
            return Received::Closed(why);
        }
    }
    if let Some(fields) = &complete {
        if watch.in_header() {
            put(&fields.lines(&watch), &mut size, &mut write_error);
        }
    }
    if write_error.is_none() {
        write_error = writer.flush().err();
    }
    Received::Complete {
        size,
        flaws: decoder.flaws(),
        write_error,
    }
}
