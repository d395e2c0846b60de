//! The POP3 TRANSACTION state. The foundation's slice: STAT, NOOP, RSET, CAPA and QUIT on the
//! user's INBOX; LIST, RETR, DELE, TOP, UIDL and the UPDATE state arrive with the POP3 front-end.

use roost_protocol::line::{Line, LineDecoder};
use roost_protocol::pop3::{self, Command, ResponseCode};

use super::{farewell, MAX_BAD_COMMANDS};
use crate::listen::conn::Connection;
use crate::session::UserSession;

/// Runs TRANSACTION until QUIT, disconnect, timeout or shutdown.
pub async fn run(conn: &mut Connection, session: &UserSession) {
    let name = &session.user.name;
    let mut store = match session.open_store() {
        Ok(store) => store,
        Err(e) => {
            tracing::error!("pop3({name}): cannot open mail store: {e}");
            let _ = conn
                .write(&pop3::err(
                    Some(ResponseCode::SysTemp),
                    "Cannot open your mailbox.",
                ))
                .await;
            return;
        }
    };
    let mut lines = LineDecoder::new(pop3::MAX_LINE);
    let mut bad = 0;
    loop {
        let line = match conn.read_line(&mut lines).await {
            Ok(Line::Complete(line)) => line,
            Ok(Line::TooLong) => {
                bad += 1;
                let text = format!("Line too long (limit {} bytes).", pop3::MAX_LINE);
                if conn.write(&pop3::err(None, &text)).await.is_err() {
                    return;
                }
                continue;
            }
            Err(why) => {
                tracing::info!("pop3({name}): Disconnected: {why:?}");
                return farewell(conn, why).await;
            }
        };
        let reply = match Command::parse(&line) {
            Ok(Command::Quit) => {
                let _ = conn.write(&pop3::ok("Logging out.")).await;
                tracing::info!("pop3({name}): Disconnected: Logged out");
                return;
            }
            Ok(Command::Stat) => match store.inbox_stats() {
                Ok(s) => pop3::ok(&format!("{} {}", s.messages, s.bytes)),
                Err(e) => {
                    tracing::error!("pop3({name}): storage error: {e}");
                    pop3::err(
                        Some(ResponseCode::SysTemp),
                        "Internal error; the details are logged.",
                    )
                }
            },
            Ok(Command::Noop) => pop3::ok(""),
            Ok(Command::Rset) => pop3::ok(""),
            Ok(Command::Capa) => pop3::multiline(
                "Capability list follows",
                ["RESP-CODES", "PIPELINING", "IMPLEMENTATION roost"],
            ),
            Ok(other) => pop3::err(
                None,
                &format!(
                    "{} is not implemented in this version of roost yet.",
                    other.keyword()
                ),
            ),
            Err(e) => {
                bad += 1;
                pop3::err(None, &e.to_string())
            }
        };
        if bad >= MAX_BAD_COMMANDS || conn.write(&reply).await.is_err() {
            return;
        }
    }
}
