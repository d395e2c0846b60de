//! ManageSieve before login: CAPABILITY, STARTTLS (then the capabilities again, RFC 5804
//! 2.2), AUTHENTICATE (PLAIN, LOGIN), NOOP, LOGOUT.

use roost_protocol::managesieve::{self as ms, Code, Command, Decoder};
use roost_protocol::sasl::{Credentials, Mechanism, SaslError};

use super::{capabilities, farewell, next_line, MAX_BAD_COMMANDS};
use crate::auth::sasl::{SaslExchange, SaslStep};
use crate::auth::AuthError;
use crate::listen::conn::{Connection, Ended};
use crate::session::{
    upgrade_to_tls, write, Login, Next, SessionContext, TlsUpgrade, PLAINTEXT_REFUSED,
};

/// The largest string before login (a SASL response); Dovecot allows 4 KiB in imap-login.
const PRE_LOGIN_MAX_LITERAL: u64 = 4096;

/// Runs the pre-login dialogue; `Some(user)` after a successful AUTHENTICATE (its OK sent).
pub async fn run(conn: &mut Connection, ctx: &SessionContext) -> Option<Login> {
    let mut decoder = Decoder::new(PRE_LOGIN_MAX_LITERAL);
    let mut bad = 0;
    loop {
        let line = match next_line(conn, &mut decoder).await {
            Ok(line) => line,
            Err(why) => {
                farewell(conn, why).await;
                return None;
            }
        };
        let next = match line.and_then(Command::from_tokens) {
            Ok(cmd) => {
                if let Some(h) = conn.handle() {
                    h.set_command(cmd.keyword());
                }
                command(conn, ctx, &mut decoder, cmd).await
            }
            Err(e) => {
                bad += 1;
                write(conn, &ms::no(None, &e.to_string())).await
            }
        };
        if bad >= MAX_BAD_COMMANDS {
            let _ = conn.write(&ms::bye("Too many invalid commands.")).await;
            return None;
        }
        match next {
            Next::Continue => {}
            Next::LoggedIn(user) => return Some(user),
            Next::Close => return None,
        }
    }
}

async fn command(
    conn: &mut Connection,
    ctx: &SessionContext,
    decoder: &mut Decoder,
    cmd: Command,
) -> Next {
    match cmd {
        Command::Capability => {
            let mut out = capabilities(conn.is_tls(), Some(ctx.plaintext_allowed(conn.is_tls())));
            out.extend(ms::ok("Capability completed."));
            write(conn, &out).await
        }
        Command::StartTls => starttls(conn, ctx).await,
        Command::Logout => {
            let _ = conn.write(&ms::ok("Logout completed.")).await;
            Next::Close
        }
        Command::Noop(tag) => write(conn, &noop(tag)).await,
        Command::Authenticate { mechanism, initial } => {
            authenticate(conn, ctx, decoder, &mechanism, initial).await
        }
        other => {
            let text = format!("{} is not allowed before login.", other.keyword());
            write(conn, &ms::no(None, &text)).await
        }
    }
}

/// NOOP's reply, echoing the client's tag (RFC 5804 2.13).
pub fn noop(tag: Option<Vec<u8>>) -> Vec<u8> {
    let code = tag.map(Code::Tag);
    ms::response(ms::Status::Ok, code.as_ref(), "Done")
}

/// STARTTLS: OK, the handshake, then the capabilities again over TLS (RFC 5804 2.2).
async fn starttls(conn: &mut Connection, ctx: &SessionContext) -> Next {
    match upgrade_to_tls(conn, ctx, &ms::ok("Begin TLS negotiation now.")).await {
        TlsUpgrade::AlreadyActive => {
            return write(conn, &ms::no(None, "TLS is already active.")).await
        }
        TlsUpgrade::Upgraded => {}
        TlsUpgrade::Closed => return Next::Close,
    }
    let mut out = capabilities(true, Some(ctx.plaintext_allowed(true)));
    out.extend(ms::ok("TLS negotiation successful."));
    write(conn, &out).await
}

/// AUTHENTICATE: challenges as strings on their own lines, answers likewise (`"*"` cancels).
async fn authenticate(
    conn: &mut Connection,
    ctx: &SessionContext,
    decoder: &mut Decoder,
    mechanism: &str,
    initial: Option<Vec<u8>>,
) -> Next {
    let Some(mech) = Mechanism::from_name(mechanism) else {
        let text = format!("Unsupported authentication mechanism {mechanism}.");
        return write(conn, &ms::no(None, &text)).await;
    };
    if !ctx.plaintext_allowed(conn.is_tls()) {
        return write(conn, &ms::no(Some(&Code::EncryptNeeded), PLAINTEXT_REFUSED)).await;
    }
    let initial = match initial.map(|i| decode_answer(&i)).transpose() {
        Ok(initial) => initial,
        Err(e) => return sasl_failed(conn, e).await,
    };
    let (mut exchange, mut step) = SaslExchange::start(mech, initial);
    loop {
        match step {
            SaslStep::Done(creds) => return verify(conn, ctx, creds, mech.name()).await,
            SaslStep::Failed(e) => return sasl_failed(conn, e).await,
            SaslStep::Challenge(challenge) => {
                if conn
                    .write(&ms::string_line(challenge.as_bytes()))
                    .await
                    .is_err()
                {
                    return Next::Close;
                }
                step = match answer(conn, decoder).await {
                    Ok(Ok(data)) => exchange.answer(data),
                    Ok(Err(e)) => SaslStep::Failed(e),
                    Err(why) => {
                        farewell(conn, why).await;
                        return Next::Close;
                    }
                };
            }
        }
    }
}

/// Reads the client's answer to a challenge: a string line holding base64.
async fn answer(
    conn: &mut Connection,
    decoder: &mut Decoder,
) -> Result<Result<Vec<u8>, SaslError>, Ended> {
    let line = next_line(conn, decoder).await?;
    Ok(match line.and_then(ms::sasl_answer) {
        Ok(bytes) => decode_answer(&bytes),
        Err(_) => Err(SaslError::Base64),
    })
}

fn decode_answer(bytes: &[u8]) -> Result<Vec<u8>, SaslError> {
    roost_protocol::sasl::decode_base64_line(bytes)
}

async fn sasl_failed(conn: &mut Connection, e: SaslError) -> Next {
    let reply = match e {
        SaslError::Cancelled => ms::no(None, "Authentication cancelled."),
        e => ms::no(None, &format!("Authentication failed: {e}.")),
    };
    write(conn, &reply).await
}

/// Verifies credentials: OK and the hand-over, or the refusal.
async fn verify(
    conn: &mut Connection,
    ctx: &SessionContext,
    creds: Credentials,
    method: &str,
) -> Next {
    match ctx.login(conn, creds, method).await {
        Ok(user) => match conn.write(&ms::ok("Logged in.")).await {
            Ok(()) => Next::LoggedIn(user),
            Err(_) => Next::Close,
        },
        Err(e) => write(conn, &refusal(e)).await,
    }
}

fn refusal(error: AuthError) -> Vec<u8> {
    match error {
        AuthError::Refused {
            reason: Some(reason),
        } => ms::no(None, &reason),
        AuthError::Failed | AuthError::Refused { reason: None } => {
            ms::no(None, &format!("{}.", AuthError::Failed))
        }
        e @ (AuthError::Throttled | AuthError::Temporary(_)) => {
            ms::no(Some(&Code::TryLater), &format!("{e}."))
        }
    }
}
