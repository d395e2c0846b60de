//! POP3 AUTHORIZATION state: CAPA, STLS, USER/PASS, AUTH (RFC 5034), QUIT.

use roost_protocol::line::{Line, LineDecoder};
use roost_protocol::pop3::{self, Command, ResponseCode};
use roost_protocol::sasl::{self, Credentials, Mechanism, SaslError};

use super::{farewell, MAX_BAD_COMMANDS};
use crate::auth::AuthError;
use crate::listen::conn::Connection;
use crate::session::{
    sasl_over_lines, upgrade_to_tls, write, LineSasl, Login, Next, SessionContext, TlsUpgrade,
    PLAINTEXT_REFUSED,
};

/// Runs AUTHORIZATION; `Some(user)` after a successful login (the `+OK` is sent).
pub async fn run(
    conn: &mut Connection,
    ctx: &SessionContext,
    lines: &mut LineDecoder,
) -> Option<Login> {
    let mut user: Option<String> = None;
    let mut bad = 0;
    loop {
        let line = match conn.read_line(lines).await {
            Ok(Line::Complete(line)) => line,
            Ok(Line::TooLong) => {
                bad += 1;
                let text = format!("Line too long (limit {} bytes).", lines.max_len());
                reply(conn, &pop3::err(None, &text)).await?;
                continue;
            }
            Err(why) => {
                farewell(conn, why).await;
                return None;
            }
        };
        let next = match Command::parse(&line) {
            Ok(cmd) => {
                if let Some(h) = conn.handle() {
                    h.set_command(cmd.keyword());
                }
                command(conn, ctx, lines, &mut user, cmd).await
            }
            Err(e) => {
                bad += 1;
                write(conn, &pop3::err(None, &e.to_string())).await
            }
        };
        if bad >= MAX_BAD_COMMANDS {
            let _ = conn
                .write(&pop3::err(None, "Too many invalid commands."))
                .await;
            return None;
        }
        match next {
            Next::Continue => {}
            Next::LoggedIn(u) => return Some(u),
            Next::Close => return None,
        }
    }
}

async fn reply(conn: &mut Connection, bytes: &[u8]) -> Option<()> {
    conn.write(bytes).await.ok()
}

async fn command(
    conn: &mut Connection,
    ctx: &SessionContext,
    lines: &mut LineDecoder,
    user: &mut Option<String>,
    cmd: Command,
) -> Next {
    let plaintext_ok = ctx.plaintext_allowed(conn.is_tls());
    match cmd {
        Command::Capa => write(conn, &capabilities(!conn.is_tls(), plaintext_ok)).await,
        Command::Quit => {
            let _ = conn.write(&pop3::ok("Logging out.")).await;
            Next::Close
        }
        Command::Stls => {
            // RFC 2595 4: nothing learned before the handshake survives it.
            *user = None;
            starttls(conn, ctx).await
        }
        Command::User(_)
        | Command::Pass(_)
        | Command::Auth {
            mechanism: Some(_), ..
        } if !plaintext_ok => {
            write(
                conn,
                &pop3::err(Some(ResponseCode::Auth), PLAINTEXT_REFUSED),
            )
            .await
        }
        Command::User(name) => {
            *user = Some(name);
            write(conn, &pop3::ok("Send your password.")).await
        }
        Command::Pass(password) => match user.take() {
            Some(username) => login(conn, ctx, Credentials { username, password }, "PLAIN").await,
            None => {
                write(
                    conn,
                    &pop3::err(None, "No user name given: send USER first."),
                )
                .await
            }
        },
        Command::Auth {
            mechanism: None, ..
        } => {
            write(
                conn,
                &pop3::multiline(
                    "Mechanisms follow.",
                    sasl::MECHANISMS.iter().map(|m| m.name()),
                ),
            )
            .await
        }
        Command::Auth {
            mechanism: Some(mech),
            initial_response,
        } => authenticate(conn, ctx, lines, &mech, initial_response).await,
        Command::Apop(..) => {
            write(
                conn,
                &pop3::err(None, "APOP is not enabled on this server."),
            )
            .await
        }
        other => {
            let text = format!("{} is not allowed before login.", other.keyword());
            write(conn, &pop3::err(None, &text)).await
        }
    }
}

/// RFC 2449 CAPA for the AUTHORIZATION state.
fn capabilities(offer_stls: bool, plaintext_ok: bool) -> Vec<u8> {
    let mut caps = vec!["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"];
    if plaintext_ok {
        caps.push("USER");
        caps.push("SASL PLAIN LOGIN");
    }
    if offer_stls {
        caps.push("STLS");
    }
    caps.push("EXPIRE NEVER");
    caps.push("IMPLEMENTATION roost");
    pop3::multiline("Capability list follows", caps)
}

async fn starttls(conn: &mut Connection, ctx: &SessionContext) -> Next {
    match upgrade_to_tls(conn, ctx, &pop3::ok("Begin TLS negotiation now.")).await {
        TlsUpgrade::AlreadyActive => write(conn, &pop3::err(None, "TLS is already active.")).await,
        TlsUpgrade::Upgraded => Next::Continue,
        TlsUpgrade::Closed => Next::Close,
    }
}

async fn login(
    conn: &mut Connection,
    ctx: &SessionContext,
    creds: Credentials,
    method: &str,
) -> Next {
    match ctx.login(conn, creds, method).await {
        // The `+OK` comes from the TRANSACTION state, once the maildrop is locked.
        Ok(user) => Next::LoggedIn(user),
        Err(AuthError::Failed | AuthError::Refused { reason: None }) => {
            write(
                conn,
                &pop3::err(Some(ResponseCode::Auth), "Authentication failed."),
            )
            .await
        }
        Err(AuthError::Refused {
            reason: Some(reason),
        }) => write(conn, &pop3::err(Some(ResponseCode::Auth), &reason)).await,
        Err(e @ AuthError::Throttled) => {
            write(
                conn,
                &pop3::err(Some(ResponseCode::LoginDelay), &e.to_string()),
            )
            .await
        }
        Err(e @ AuthError::Temporary(_)) => {
            write(
                conn,
                &pop3::err(Some(ResponseCode::SysTemp), &e.to_string()),
            )
            .await
        }
    }
}

async fn authenticate(
    conn: &mut Connection,
    ctx: &SessionContext,
    lines: &mut LineDecoder,
    mech: &str,
    initial: Option<String>,
) -> Next {
    let Some(mechanism) = Mechanism::from_name(mech) else {
        let text = format!("Unsupported authentication mechanism {mech}.");
        return write(conn, &pop3::err(None, &text)).await;
    };
    match sasl_over_lines(conn, lines, mechanism, initial, pop3::continuation).await {
        LineSasl::Credentials(creds) => login(conn, ctx, creds, mechanism.name()).await,
        LineSasl::Failed(SaslError::Cancelled) => {
            write(conn, &pop3::err(None, "Authentication cancelled.")).await
        }
        LineSasl::Failed(e) => {
            let text = format!("Authentication failed: {e}.");
            write(conn, &pop3::err(Some(ResponseCode::Auth), &text)).await
        }
        LineSasl::Ended(why) => {
            farewell(conn, why).await;
            Next::Close
        }
    }
}
