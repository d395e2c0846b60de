//! Feeding client bytes to the IMAP decoder one line at a time.
//!
//! Bytes go from the connection buffer into the decoder only up to the next LF, so when a command
//! is complete the decoder holds nothing of the next one. That keeps pipelined commands after
//! LOGIN in the connection buffer, where the hand-over to a worker process can find them.

use roost_protocol::imap::response::Response;
use roost_protocol::imap::{Event, ImapDecoder};

use super::reply::bad;

use crate::listen::conn::Connection;
pub use crate::listen::conn::Ended;

impl Ended {
    /// How the log says it.
    pub fn text(&self) -> &'static str {
        match self {
            Ended::Closed => "Connection closed",
            Ended::IdleTimeout => "Disconnected for inactivity",
            Ended::Shutdown => "Server shutting down",
        }
    }
}

/// Waits for the next decoder event.
pub async fn next_event(conn: &mut Connection, decoder: &mut ImapDecoder) -> Result<Event, Ended> {
    loop {
        if let Some(event) = decoder.next_event() {
            return Ok(event);
        }
        let buffer = conn.buffer();
        if !buffer.is_empty() {
            let take = match buffer.iter().position(|&b| b == b'\n') {
                Some(lf) => lf + 1,
                None => buffer.len(),
            };
            let line = buffer.split_to(take);
            decoder.enqueue(&line);
            continue;
        }
        conn.read_more().await?;
    }
}

/// Says goodbye in IMAP's words when a session ends for a reason other than LOGOUT.
pub async fn farewell(conn: &mut Connection, ended: Ended) {
    let text = match ended {
        Ended::Closed => return,
        Ended::IdleTimeout => "Disconnected for inactivity.",
        Ended::Shutdown => "Server shutting down.",
    };
    let _ = conn.write(&bye(text)).await;
}

/// Counts a malformed command; the BAD reply to send, or `None` once the client has sent too
/// many and has been told goodbye (as Dovecot does, so garbage cannot keep a session alive).
pub async fn rejected(
    conn: &mut Connection,
    bad_commands: &mut u32,
    tag: Option<&str>,
    reason: &str,
) -> Option<Vec<u8>> {
    *bad_commands += 1;
    if *bad_commands >= super::MAX_BAD_COMMANDS {
        let _ = conn.write(&bye("Too many invalid IMAP commands.")).await;
        return None;
    }
    Some(match tag {
        Some(tag) => bad(tag, reason),
        None => {
            let mut line = Vec::new();
            Response::Bad { text: reason }.encode(&mut line);
            line
        }
    })
}

/// `* BYE text`.
pub fn bye(text: &str) -> Vec<u8> {
    let mut line = Vec::new();
    Response::Bye { code: None, text }.encode(&mut line);
    line
}
