//! The authenticated state. This is the foundation's slice of it: CAPABILITY, NOOP, LOGOUT, ID,
//! STATUS and APPEND on INBOX, enough to prove that a session runs as the mail owner and stores
//! mail durably. Mailbox selection, FETCH, SEARCH and the rest arrive with the IMAP front-end.

use roost_protocol::imap::imap_types::command::{Command, CommandBody};
use roost_protocol::imap::imap_types::extensions::binary::LiteralOrLiteral8;
use roost_protocol::imap::imap_types::mailbox::Mailbox;
use roost_protocol::imap::{self as wire, Event, ImapDecoder, Status};
use roost_storage::Store;

use super::input::{farewell, next_event, rejected};
use super::AUTHENTICATED_CAPABILITIES;
use crate::listen::conn::Connection;
use crate::session::UserSession;

/// Runs the authenticated session until LOGOUT, disconnect, timeout or shutdown.
pub async fn run(conn: &mut Connection, session: &UserSession) {
    let mut store = match session.open_store() {
        Ok(store) => store,
        Err(e) => {
            tracing::error!("imap({}): cannot open mail store: {e}", session.user.name);
            let _ = conn
                .write(b"* BYE [SERVERBUG] Cannot open your mailbox; the error is logged.\r\n")
                .await;
            return;
        }
    };
    let mut decoder = ImapDecoder::new(session.max_literal, super::MAX_COMMAND_LINE);
    let mut bad_commands = 0;
    loop {
        let event = match next_event(conn, &mut decoder).await {
            Ok(event) => event,
            Err(ended) => {
                tracing::info!("imap({}): Disconnected: {ended:?}", session.user.name);
                farewell(conn, ended).await;
                return;
            }
        };
        let reply = match event {
            Event::Command(cmd) => {
                if let Some(h) = conn.handle() {
                    h.set_command(cmd.body.name());
                }
                match command(&mut store, session, *cmd) {
                    Reply::Continue(bytes) => bytes,
                    Reply::Logout(bytes) => {
                        let _ = conn.write(&bytes).await;
                        tracing::info!("imap({}): Disconnected: Logged out", session.user.name);
                        return;
                    }
                }
            }
            Event::LiteralAccepted => wire::continuation("Ready for literal data"),
            Event::Rejected { tag, reason } => {
                match rejected(conn, &mut bad_commands, tag.as_deref(), &reason).await {
                    Some(reply) => reply,
                    None => return,
                }
            }
            Event::AuthenticateData(_) | Event::IdleDone => continue,
        };
        if conn.write(&reply).await.is_err() {
            return;
        }
    }
}

enum Reply {
    Continue(Vec<u8>),
    Logout(Vec<u8>),
}

fn command(store: &mut Store, session: &UserSession, cmd: Command<'_>) -> Reply {
    let tag = cmd.tag.as_ref();
    let done = |text: &str| wire::tagged(tag, Status::Ok, None, text);
    Reply::Continue(match cmd.body {
        CommandBody::Capability => {
            let mut out = wire::untagged(&format!("CAPABILITY {AUTHENTICATED_CAPABILITIES}"));
            out.extend(done("Capability completed."));
            out
        }
        CommandBody::Noop => done("NOOP completed."),
        CommandBody::Logout => {
            let mut out = wire::untagged("BYE Logging out");
            out.extend(done("Logout completed."));
            return Reply::Logout(out);
        }
        CommandBody::Id { .. } => {
            let mut out = wire::untagged("ID (\"name\" \"roost\")");
            out.extend(done("ID completed."));
            out
        }
        CommandBody::Login { .. } | CommandBody::Authenticate { .. } => {
            wire::tagged(tag, Status::Bad, None, "Already logged in.")
        }
        CommandBody::Status {
            mailbox: Mailbox::Inbox,
            ..
        } => match store.inbox_stats() {
            Ok(stats) => {
                let mut out =
                    wire::untagged(&format!("STATUS INBOX (MESSAGES {})", stats.messages));
                out.extend(done("Status completed."));
                out
            }
            Err(e) => storage_failure(tag, session, &e),
        },
        CommandBody::Append {
            mailbox: Mailbox::Inbox,
            message,
            ..
        } => {
            let mut bytes = match &message {
                LiteralOrLiteral8::Literal(l) => l.data(),
                LiteralOrLiteral8::Literal8(l) => l.data.as_ref(),
            };
            match store.append_to_inbox(&mut bytes) {
                Ok(_) => done("Append completed."),
                Err(e) => storage_failure(tag, session, &e),
            }
        }
        CommandBody::Status { .. } | CommandBody::Append { .. } => wire::tagged(
            tag,
            Status::No,
            Some("NONEXISTENT"),
            "Only INBOX exists in this version.",
        ),
        other => {
            let text = format!(
                "{} is not implemented in this version of roost yet.",
                other.name()
            );
            wire::tagged(tag, Status::No, Some("CANNOT"), &text)
        }
    })
}

fn storage_failure(tag: &str, session: &UserSession, e: &roost_storage::Error) -> Vec<u8> {
    tracing::error!("imap({}): storage error: {e}", session.user.name);
    wire::tagged(
        tag,
        Status::No,
        Some("SERVERBUG"),
        "Internal error; the details are logged.",
    )
}
