//! The POP3 TRANSACTION and UPDATE states (RFC 1939 5 and 6): the maildrop is locked and the
//! `+OK` to the login is sent here, then STAT, LIST, UIDL, RETR, TOP, DELE, RSET, NOOP, CAPA
//! until QUIT applies the deletions. A session that ends any other way deletes nothing.

use std::io::Read;

use roost_protocol::dot::DotEncoder;
use roost_protocol::line::{Line, LineDecoder};
use roost_protocol::pop3::{self, Command, ResponseCode};
use roost_storage::mailbox::MessageReader;

use super::maildrop::{Maildrop, OpenError};
use super::{farewell, MAX_BAD_COMMANDS};
use crate::listen::conn::{Connection, Ended};
use crate::session::UserSession;

/// Bytes read from storage and sent per write while streaming a message.
const CHUNK: usize = 64 * 1024;

const INTERNAL_ERROR: &str = "Internal error; the details are logged.";

/// Runs TRANSACTION until QUIT (then UPDATE), disconnect, timeout or shutdown.
pub async fn run(conn: &mut Connection, session: &UserSession) {
    let name = &session.user.name;
    let mut maildrop = match Maildrop::open(session) {
        Ok(maildrop) => maildrop,
        Err(OpenError::InUse) => {
            tracing::info!("pop3({name}): Couldn't open INBOX: {}", OpenError::InUse);
            let text = "Mailbox is locked by another POP3 session.";
            let _ = conn
                .write(&pop3::err(Some(ResponseCode::InUse), text))
                .await;
            return;
        }
        Err(e) => {
            tracing::error!("pop3({name}): Couldn't open INBOX: {e}");
            let text = "Cannot open your mailbox; the details are logged.";
            let _ = conn
                .write(&pop3::err(Some(ResponseCode::SysTemp), text))
                .await;
            return;
        }
    };
    let (count, bytes) = maildrop.stat();
    let greeting = format!("Logged in; {count} messages ({bytes} octets).");
    if conn.write(&pop3::ok(&greeting)).await.is_err() {
        return;
    }
    let mut lines = LineDecoder::new(pop3::MAX_LINE);
    let mut bad = 0;
    let ended = loop {
        let line = match conn.read_line(&mut lines).await {
            Ok(Line::Complete(line)) => line,
            Ok(Line::TooLong) => {
                bad += 1;
                let text = format!("Line too long (limit {} bytes).", pop3::MAX_LINE);
                if conn.write(&pop3::err(None, &text)).await.is_err() {
                    break "Connection closed";
                }
                continue;
            }
            Err(why) => {
                let text = match why {
                    Ended::IdleTimeout => "Disconnected for inactivity",
                    Ended::Shutdown => "Server shutting down",
                    Ended::Closed => "Connection closed",
                };
                farewell(conn, why).await;
                break text;
            }
        };
        let parsed = Command::parse(&line);
        if let (Ok(cmd), Some(h)) = (&parsed, conn.handle()) {
            h.set_command(cmd.keyword());
        }
        let step = match parsed {
            Ok(Command::Quit) => break quit(conn, &mut maildrop, name).await,
            Ok(cmd) => command(conn, &mut maildrop, name, cmd).await,
            Err(e) => {
                bad += 1;
                conn.write(&pop3::err(None, &e.to_string())).await
            }
        };
        if step.is_err() {
            break "Connection closed";
        }
        if bad >= MAX_BAD_COMMANDS {
            let _ = conn
                .write(&pop3::err(None, "Too many invalid commands."))
                .await;
            break "Too many invalid commands";
        }
    };
    tracing::info!(
        "pop3({name}): Disconnected: {ended} {}",
        maildrop.logout_summary()
    );
}

/// QUIT: the UPDATE state. Returns the log line's reason.
async fn quit(conn: &mut Connection, maildrop: &mut Maildrop, name: &str) -> &'static str {
    let reply = match maildrop.update() {
        Ok(_) => pop3::ok("Logging out."),
        Err(e) => {
            tracing::error!("pop3({name}): UPDATE failed: {e}");
            pop3::err(
                Some(ResponseCode::SysTemp),
                "Some deleted messages were not removed; the details are logged.",
            )
        }
    };
    maildrop.release();
    let _ = conn.write(&reply).await;
    "Logged out"
}

/// Runs one TRANSACTION command; `Err` when the connection is gone.
async fn command(
    conn: &mut Connection,
    maildrop: &mut Maildrop,
    name: &str,
    cmd: Command,
) -> std::io::Result<()> {
    let reply = match cmd {
        Command::Stat => {
            let (count, bytes) = maildrop.stat();
            pop3::ok(&format!("{count} {bytes}"))
        }
        Command::List(None) => {
            let (count, bytes) = maildrop.stat();
            let lines: Vec<String> = maildrop
                .live()
                .map(|(n, e)| format!("{n} {}", e.size))
                .collect();
            pop3::multiline(
                &format!("{count} messages ({bytes} octets)"),
                lines.iter().map(String::as_str),
            )
        }
        Command::List(Some(n)) => match maildrop.get(n) {
            Ok(e) => pop3::ok(&format!("{n} {}", e.size)),
            Err(e) => pop3::err(None, &e.to_string()),
        },
        Command::Uidl(None) => {
            let lines: Vec<String> = maildrop
                .live()
                .map(|(n, e)| format!("{n} {}", maildrop.unique_id(e)))
                .collect();
            pop3::multiline(
                "Unique-ID listing follows",
                lines.iter().map(String::as_str),
            )
        }
        Command::Uidl(Some(n)) => match maildrop.get(n) {
            Ok(e) => pop3::ok(&format!("{n} {}", maildrop.unique_id(e))),
            Err(e) => pop3::err(None, &e.to_string()),
        },
        Command::Retr(n) => return retrieve(conn, maildrop, name, n, None).await,
        Command::Top(n, lines) => {
            return retrieve(conn, maildrop, name, n, Some(u64::from(lines))).await
        }
        Command::Dele(n) => match maildrop.delete(n) {
            Ok(()) => pop3::ok("Marked to be deleted."),
            Err(e) => pop3::err(None, &e.to_string()),
        },
        Command::Rset => {
            maildrop.reset();
            let (count, bytes) = maildrop.stat();
            pop3::ok(&format!("{count} messages ({bytes} octets)."))
        }
        Command::Noop => pop3::ok(""),
        Command::Capa => capabilities(),
        Command::Stls => pop3::err(None, "STLS is only allowed before login."),
        Command::User(_) | Command::Pass(_) | Command::Apop(..) | Command::Auth { .. } => {
            pop3::err(None, "Already logged in.")
        }
        Command::Quit => pop3::ok("Logging out."),
    };
    conn.write(&reply).await
}

/// RFC 2449 CAPA for the TRANSACTION state.
pub fn capabilities() -> Vec<u8> {
    pop3::multiline(
        "Capability list follows",
        [
            "TOP",
            "UIDL",
            "RESP-CODES",
            "AUTH-RESP-CODE",
            "PIPELINING",
            "EXPIRE NEVER",
            "IMPLEMENTATION roost",
        ],
    )
}

/// RETR (`top` is `None`) or TOP: streams the message from storage in chunks, CRLF line ends
/// and dot-stuffing applied on the way, so memory does not grow with the message.
async fn retrieve(
    conn: &mut Connection,
    maildrop: &mut Maildrop,
    name: &str,
    n: u32,
    top: Option<u64>,
) -> std::io::Result<()> {
    let size = match maildrop.get(n) {
        Ok(e) => e.size,
        Err(e) => return conn.write(&pop3::err(None, &e.to_string())).await,
    };
    let reader = match maildrop.open_message(n, top.is_none()) {
        Ok(Ok(reader)) => reader,
        Ok(Err(e)) => {
            tracing::error!("pop3({name}): cannot open message {n}: {e}");
            let code = Some(ResponseCode::SysTemp);
            return conn.write(&pop3::err(code, INTERNAL_ERROR)).await;
        }
        Err(e) => return conn.write(&pop3::err(None, &e.to_string())).await,
    };
    let (first, encoder) = match top {
        None => (format!("{size} octets"), DotEncoder::whole()),
        Some(lines) => (String::new(), DotEncoder::top(lines)),
    };
    let sent = stream_message(conn, reader, pop3::ok(&first), encoder, name, n).await?;
    let counter = match top {
        None => &mut maildrop.counters.retr,
        Some(_) => &mut maildrop.counters.top,
    };
    counter.0 += 1;
    counter.1 += sent;
    if top.is_none() {
        crate::counters::global().retrieved();
    }
    Ok(())
}

/// Sends `status`, then the message through `encoder`; returns the message bytes sent.
///
/// Once the `+OK` is out, a read error cannot become an `-ERR`: the multi-line response is
/// ended early with its terminator and the error logged, like Dovecot does.
async fn stream_message(
    conn: &mut Connection,
    mut reader: Box<dyn MessageReader>,
    status: Vec<u8>,
    mut encoder: DotEncoder,
    name: &str,
    n: u32,
) -> std::io::Result<u64> {
    let mut out = status;
    let header_len = out.len();
    let mut buf = vec![0u8; CHUNK];
    let mut sent = 0u64;
    loop {
        if encoder.is_done() {
            break;
        }
        let read = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(read) => read,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::error!("pop3({name}): reading message {n} failed midway: {e}");
                break;
            }
        };
        encoder.encode(&buf[..read], &mut out);
        if out.len() >= CHUNK {
            conn.write(&out).await?;
            sent += out.len() as u64;
            out.clear();
        }
    }
    encoder.finish(&mut out);
    conn.write(&out).await?;
    sent += out.len() as u64;
    Ok(sent.saturating_sub(header_len as u64 + 3))
}
