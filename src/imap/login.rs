//! The not-authenticated state: everything up to a successful LOGIN or AUTHENTICATE.

use roost_protocol::imap::imap_types::auth::AuthenticateData;
use roost_protocol::imap::imap_types::command::{Command, CommandBody};
use roost_protocol::imap::{self as wire, Event, Expect, ImapDecoder, Status};
use roost_protocol::sasl::{Credentials, Mechanism, SaslError};

use super::input::{farewell, next_event, rejected, Ended};
use super::{pre_login_capabilities, AUTHENTICATED_CAPABILITIES};
use crate::auth::sasl::{SaslExchange, SaslStep};
use crate::auth::AuthError;
use crate::listen::conn::Connection;
use crate::session::{write, Login, Next, SessionContext, PLAINTEXT_REFUSED};

/// Runs the not-authenticated state; `Some(user)` once a login succeeded (the tagged OK is sent).
pub async fn run(
    conn: &mut Connection,
    ctx: &SessionContext,
    decoder: &mut ImapDecoder,
) -> Option<Login> {
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
            Event::LiteralAccepted => {
                write(conn, &wire::continuation("Ready for literal data")).await
            }
            Event::Rejected { tag, reason } => {
                match rejected(conn, &mut bad_commands, tag.as_deref(), &reason).await {
                    Some(reply) => write(conn, &reply).await,
                    None => return None,
                }
            }
            Event::Overflow { reason } => {
                tracing::info!("imap-login: Disconnected: {reason}");
                let _ = conn.write(&wire::untagged(&format!("BYE {reason}"))).await;
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
            let mut out = wire::untagged(&format!("CAPABILITY {caps}"));
            out.extend(wire::tagged(
                &tag,
                Status::Ok,
                None,
                "Capability completed.",
            ));
            write(conn, &out).await
        }
        CommandBody::Noop => {
            write(
                conn,
                &wire::tagged(&tag, Status::Ok, None, "NOOP completed."),
            )
            .await
        }
        CommandBody::Logout => {
            let mut out = wire::untagged("BYE Logging out");
            out.extend(wire::tagged(&tag, Status::Ok, None, "Logout completed."));
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
            let mut out = wire::untagged("ID (\"name\" \"roost\")");
            out.extend(wire::tagged(&tag, Status::Ok, None, "ID completed."));
            write(conn, &out).await
        }
        other => {
            let text = format!("{} is not allowed before login.", other.name());
            write(conn, &wire::tagged(&tag, Status::Bad, None, &text)).await
        }
    }
}

async fn starttls(conn: &mut Connection, ctx: &SessionContext, tag: &str) -> Next {
    if conn.is_tls() {
        return write(
            conn,
            &wire::tagged(tag, Status::Bad, None, "TLS is already active."),
        )
        .await;
    }
    if conn
        .write(&wire::tagged(
            tag,
            Status::Ok,
            None,
            "Begin TLS negotiation now.",
        ))
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
    let reply = wire::tagged(tag, Status::No, Some("PRIVACYREQUIRED"), PLAINTEXT_REFUSED);
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
            let code = format!("CAPABILITY {AUTHENTICATED_CAPABILITIES}");
            match conn
                .write(&wire::tagged(tag, Status::Ok, Some(&code), "Logged in"))
                .await
            {
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
        } => ("ALERT", reason),
        AuthError::Failed | AuthError::Refused { reason: None } => {
            ("AUTHENTICATIONFAILED", format!("{}.", AuthError::Failed))
        }
        e @ (AuthError::Throttled | AuthError::Temporary(_)) => ("UNAVAILABLE", format!("{e}.")),
    };
    wire::tagged(tag, Status::No, Some(code), &text)
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
        return write(conn, &wire::tagged(tag, Status::No, None, &text)).await;
    };
    if !ctx.plaintext_allowed(conn.is_tls()) {
        return privacy_required(conn, tag).await;
    }
    let (mut exchange, mut step) = SaslExchange::start(mech, initial);
    loop {
        match step {
            SaslStep::Done(creds) => return login(conn, ctx, tag, creds, mech.name()).await,
            SaslStep::Failed(SaslError::Cancelled) => {
                return write(
                    conn,
                    &wire::tagged(tag, Status::Bad, None, "Authentication aborted by client."),
                )
                .await
            }
            SaslStep::Failed(e) => {
                let text = format!("Authentication failed: {e}.");
                return write(
                    conn,
                    &wire::tagged(tag, Status::No, Some("AUTHENTICATIONFAILED"), &text),
                )
                .await;
            }
            SaslStep::Challenge(challenge) => {
                if conn.write(&wire::continuation(challenge)).await.is_err() {
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
