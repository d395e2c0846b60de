//! The not-authenticated state: everything up to a successful LOGIN or AUTHENTICATE.

use roost_protocol::imap::imap_types::auth::AuthenticateData;
use roost_protocol::imap::imap_types::command::{Command, CommandBody};
use roost_protocol::imap::response::{push_continuation, Code, Response};
use roost_protocol::imap::{Event, Expect, ImapDecoder};
use roost_protocol::sasl::{Credentials, Mechanism, SaslError};

use super::input::{bye, farewell, next_event, rejected, Ended};
use super::reply::{bad, no, ok, ok_code};
use super::{pre_login_capabilities, AUTHENTICATED_CAPABILITIES};
use crate::auth::sasl::{SaslExchange, SaslStep};
use crate::auth::AuthError;
use crate::listen::conn::Connection;
use crate::session::{write, Identity, Next, SessionContext, PLAINTEXT_REFUSED};

/// Runs the not-authenticated state; `Some(user)` once a login succeeded (the tagged OK is sent).
pub async fn run(
    conn: &mut Connection,
    ctx: &SessionContext,
    decoder: &mut ImapDecoder,
) -> Option<Identity> {
    let mut bad_commands = 0;
    loop {
        let event = match next_event(conn, decoder).await {
            Ok(event) => event,
            Err(ended) => {
                farewell(conn, ended).await;
                return None;
            }
        };
        let next = match event {
            Event::Command(cmd) => command(conn, ctx, decoder, *cmd).await,
            Event::LiteralAccepted => write(conn, &continuation("Ready for literal data")).await,
            Event::Rejected { tag, reason } => {
                match rejected(conn, &mut bad_commands, tag.as_deref(), &reason).await {
                    Some(reply) => write(conn, &reply).await,
                    None => return None,
                }
            }
            Event::Overflow { reason } => {
                tracing::info!("imap-login: Disconnected: {reason}");
                let _ = conn.write(&bye(&reason)).await;
                return None;
            }
            Event::AuthenticateData(_) | Event::IdleDone => Next::Continue,
        };
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
    decoder: &mut ImapDecoder,
    cmd: Command<'static>,
) -> Next {
    let tag = cmd.tag.as_ref().to_string();
    if let Some(h) = conn.handle() {
        h.set_command(cmd.body.name());
    }
    match cmd.body {
        CommandBody::Capability => {
            let caps = pre_login_capabilities(!conn.is_tls(), ctx.plaintext_allowed(conn.is_tls()));
            let mut out = Vec::new();
            Response::Capability(&caps).encode(&mut out);
            out.extend(ok(&tag, "Capability completed."));
            write(conn, &out).await
        }
        CommandBody::Noop => write(conn, &ok(&tag, "NOOP completed.")).await,
        CommandBody::Logout => {
            let mut out = bye("Logging out");
            out.extend(ok(&tag, "Logout completed."));
            let _ = conn.write(&out).await;
            Next::Close
        }
        CommandBody::StartTLS => starttls(conn, ctx, &tag).await,
        CommandBody::Login { username, password } => {
            let creds = Credentials {
                username: String::from_utf8_lossy(username.as_ref()).into_owned(),
                password: String::from_utf8_lossy(password.declassify().as_ref()).into_owned(),
            };
            if !ctx.plaintext_allowed(conn.is_tls()) {
                return privacy_required(conn, &tag).await;
            }
            login(conn, ctx, &tag, creds, "PLAIN").await
        }
        CommandBody::Authenticate {
            mechanism,
            initial_response,
        } => {
            let initial = initial_response.map(|r| r.declassify().to_vec());
            authenticate(conn, ctx, decoder, &tag, mechanism.as_ref(), initial).await
        }
        CommandBody::Id { .. } => {
            let mut out = Vec::new();
            Response::Id(&[("name", "roost")]).encode(&mut out);
            out.extend(ok(&tag, "ID completed."));
            write(conn, &out).await
        }
        other => {
            let text = format!("{} is not allowed before login.", other.name());
            write(conn, &bad(&tag, &text)).await
        }
    }
}

async fn starttls(conn: &mut Connection, ctx: &SessionContext, tag: &str) -> Next {
    if conn.is_tls() {
        return write(conn, &bad(tag, "TLS is already active.")).await;
    }
    if conn
        .write(&ok(tag, "Begin TLS negotiation now."))
        .await
        .is_err()
    {
        return Next::Close;
    }
    match conn.start_tls(&ctx.tls.acceptor()).await {
        Ok(()) => Next::Continue,
        Err(e) => {
            tracing::debug!(peer = %ctx.peer, "STARTTLS handshake failed: {e}");
            Next::Close
        }
    }
}

/// Refuses credentials on an unprotected connection (RFC 5530's PRIVACYREQUIRED).
async fn privacy_required(conn: &mut Connection, tag: &str) -> Next {
    let reply = no(tag, Some(Code::PrivacyRequired), PLAINTEXT_REFUSED);
    write(conn, &reply).await
}

/// Verifies credentials and answers.
async fn login(
    conn: &mut Connection,
    ctx: &SessionContext,
    tag: &str,
    creds: Credentials,
    method: &str,
) -> Next {
    match ctx.login(conn, creds, method).await {
        Ok(user) => {
            let code = Code::Capability(AUTHENTICATED_CAPABILITIES);
            match conn.write(&ok_code(tag, code, "Logged in")).await {
                Ok(()) => Next::LoggedIn(user),
                Err(_) => Next::Close,
            }
        }
        Err(e) => write(conn, &refusal(tag, e)).await,
    }
}

/// The tagged NO for a failed login; Dovecot shows a `nologin` reason as an ALERT.
fn refusal(tag: &str, error: AuthError) -> Vec<u8> {
    let (code, text) = match error {
        AuthError::Refused {
            reason: Some(reason),
        } => (Code::Alert, reason),
        AuthError::Failed | AuthError::Refused { reason: None } => (
            Code::AuthenticationFailed,
            format!("{}.", AuthError::Failed),
        ),
        e @ (AuthError::Throttled | AuthError::Temporary(_)) => {
            (Code::Unavailable, format!("{e}."))
        }
    };
    no(tag, Some(code), &text)
}

async fn authenticate(
    conn: &mut Connection,
    ctx: &SessionContext,
    decoder: &mut ImapDecoder,
    tag: &str,
    mechanism: &str,
    initial: Option<Vec<u8>>,
) -> Next {
    let Some(mech) = Mechanism::from_name(mechanism) else {
        let text = format!("Unsupported authentication mechanism {mechanism}.");
        return write(conn, &no(tag, None, &text)).await;
    };
    if !ctx.plaintext_allowed(conn.is_tls()) {
        return privacy_required(conn, tag).await;
    }
    let (mut exchange, mut step) = SaslExchange::start(mech, initial);
    loop {
        match step {
            SaslStep::Done(creds) => return login(conn, ctx, tag, creds, mech.name()).await,
            SaslStep::Failed(SaslError::Cancelled) => {
                return write(conn, &bad(tag, "Authentication aborted by client.")).await
            }
            SaslStep::Failed(e) => {
                let text = format!("Authentication failed: {e}.");
                let code = Some(Code::AuthenticationFailed);
                return write(conn, &no(tag, code, &text)).await;
            }
            SaslStep::Challenge(challenge) => {
                if conn.write(&continuation(challenge)).await.is_err() {
                    return Next::Close;
                }
                decoder.expect(Expect::AuthenticateData);
                let event = next_event(conn, decoder).await;
                decoder.expect(Expect::Command);
                step = match event {
                    Ok(Event::AuthenticateData(AuthenticateData::Continue(data))) => {
                        exchange.answer(data.declassify().to_vec())
                    }
                    Ok(Event::AuthenticateData(AuthenticateData::Cancel)) => {
                        SaslStep::Failed(SaslError::Cancelled)
                    }
                    Ok(_) => SaslStep::Failed(SaslError::Base64),
                    Err(Ended::Closed) => return Next::Close,
                    Err(ended) => {
                        farewell(conn, ended).await;
                        return Next::Close;
                    }
                };
            }
        }
    }
}

/// `+ text`.
fn continuation(text: &str) -> Vec<u8> {
    let mut line = Vec::new();
    push_continuation(&mut line, text);
    line
}
