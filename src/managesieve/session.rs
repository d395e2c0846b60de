//! ManageSieve after login, as the mail owner: the script commands of RFC 5804 2.6–2.12 on
//! the user's script store, until LOGOUT, a disconnect, the idle timeout or shutdown.

use roost_protocol::managesieve::{self as ms, Command, Decoder, ParseError};
use roost_storage::sieve_scripts::ScriptStore;

use super::login::noop;
use super::scripts::Scripts;
use super::{capabilities, ended_text, farewell, next_line, MAX_BAD_COMMANDS};
use crate::listen::conn::Connection;
use crate::session::UserSession;

/// What one command leaves the session to do.
enum Flow {
    /// Send this and read the next command.
    Reply(Vec<u8>),
    /// Send this and end the session.
    Last(Vec<u8>),
}

/// Runs the authenticated state (its OK was sent at login).
pub async fn run(conn: &mut Connection, session: &UserSession) {
    let name = &session.user.name;
    let store = match session.script_store() {
        Ok(store) => store,
        Err(e) => {
            tracing::error!("managesieve({name}): cannot find the script store: {e}");
            let _ = conn
                .write(&ms::bye(
                    "Cannot open your scripts; the details are logged.",
                ))
                .await;
            return;
        }
    };
    let ended = serve(conn, session, store).await;
    tracing::info!("managesieve({name}): Disconnected: {ended}");
}

/// The command loop; returns why it ended, for the log line.
async fn serve(conn: &mut Connection, session: &UserSession, store: ScriptStore) -> &'static str {
    let scripts = Scripts::new(store, session.sieve, &session.user.name);
    // A script over the limit is refused by the decoder, unstored (QUOTA/MAXSIZE).
    let mut decoder = Decoder::new(session.sieve.max_size);
    let mut bad = 0;
    loop {
        let line = match next_line(conn, &mut decoder).await {
            Ok(line) => line,
            Err(why) => {
                farewell(conn, why).await;
                return ended_text(why);
            }
        };
        let flow = match line.and_then(Command::from_tokens) {
            Ok(cmd) => {
                if let Some(h) = conn.handle() {
                    h.set_command(cmd.keyword());
                }
                command(&scripts, session.tls, cmd)
            }
            Err(e) => {
                // A script over the size limit is the user's quota, not a client gone wrong.
                if !matches!(e, ParseError::LiteralTooLarge { .. }) {
                    bad += 1;
                }
                Flow::Reply(refused(e, session.sieve.max_size))
            }
        };
        if bad >= MAX_BAD_COMMANDS {
            let _ = conn.write(&ms::bye("Too many invalid commands.")).await;
            return "Too many invalid commands";
        }
        match flow {
            Flow::Reply(bytes) if conn.write(&bytes).await.is_ok() => {}
            Flow::Reply(_) => return "Connection closed",
            Flow::Last(bytes) => {
                let _ = conn.write(&bytes).await;
                return "Logged out";
            }
        }
    }
}

/// The NO for a command the decoder refused; a script over the size limit is QUOTA/MAXSIZE,
/// said as HAVESPACE says it.
fn refused(e: ParseError, max_size: u64) -> Vec<u8> {
    match &e {
        ParseError::LiteralTooLarge {
            command: Some(command),
            ..
        } if command == "PUTSCRIPT" || command == "CHECKSCRIPT" => {
            let text = format!("Script is too large (the limit is {max_size} bytes).");
            ms::no(Some(&ms::Code::QuotaMaxSize), &text)
        }
        _ => ms::no(None, &e.to_string()),
    }
}

/// One command of the authenticated state; each arm one step.
fn command(scripts: &Scripts, tls: bool, cmd: Command) -> Flow {
    Flow::Reply(match cmd {
        Command::Logout => return Flow::Last(ms::ok("Logout completed.")),
        Command::Capability => {
            let mut out = capabilities(tls, None);
            out.extend(ms::ok("Capability completed."));
            out
        }
        Command::Noop(tag) => noop(tag),
        Command::HaveSpace { name, size } => scripts.have_space(&name, size),
        Command::PutScript { name, script } => scripts.put(&name, &script),
        Command::CheckScript(script) => scripts.check(&script),
        Command::ListScripts => scripts.list(),
        Command::SetActive(name) => scripts.set_active(&name),
        Command::GetScript(name) => scripts.get(&name),
        Command::DeleteScript(name) => scripts.delete(&name),
        Command::RenameScript(old, new) => scripts.rename(&old, &new),
        Command::Unauthenticate => ms::no(None, "UNAUTHENTICATE is not supported."),
        Command::StartTls | Command::Authenticate { .. } => ms::no(None, "Already logged in."),
    })
}
