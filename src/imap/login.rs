//! The not-authenticated state's own commands (RFC 3501 6.2): STARTTLS, LOGIN and
//! AUTHENTICATE. A success ends the login process's session with [`Step::LoggedIn`].

use roost_protocol::imap::imap_types::auth::AuthenticateData;
use roost_protocol::imap::response::{push_continuation, Code};
use roost_protocol::imap::{Event, Expect};
use roost_protocol::sasl::{Credentials, Mechanism, SaslError};

use super::command::PreLogin;
use super::context::{Cx, Step};
use super::input::{next_event, Ended};
use super::reply::Tagged;
use super::AUTHENTICATED_CAPABILITIES;
use crate::auth::sasl::{SaslExchange, SaslStep};
use crate::auth::AuthError;
use crate::session::{upgrade_to_tls, SessionContext, TlsUpgrade, PLAINTEXT_REFUSED};

/// Runs a pre-login command.
pub async fn command(ctx: &SessionContext, command: PreLogin, cx: &mut Cx<'_>) -> Step {
    match command {
        PreLogin::StartTls => starttls(ctx, cx).await,
        PreLogin::Login(creds) => login(ctx, creds, cx).await,
        PreLogin::Authenticate { mechanism, initial } => {
            authenticate(ctx, &mechanism, initial, cx).await
        }
    }
}

/// STARTTLS: OK in plain text, then the handshake; the session goes on encrypted.
async fn starttls(ctx: &SessionContext, cx: &mut Cx<'_>) -> Step {
    let go_ahead = cx.ok("Begin TLS negotiation now.");
    match upgrade_to_tls(cx.conn, ctx, &go_ahead).await {
        TlsUpgrade::AlreadyActive => Step::Reply(cx.bad("TLS is already active.")),
        TlsUpgrade::Upgraded => Step::Sent,
        TlsUpgrade::Closed => Step::Ended(Ended::Closed),
    }
}

/// LOGIN, where plaintext credentials are allowed.
async fn login(ctx: &SessionContext, creds: Credentials, cx: &mut Cx<'_>) -> Step {
    if !ctx.plaintext_allowed(cx.conn.is_tls()) {
        return privacy_required(cx);
    }
    verify(ctx, creds, "PLAIN", cx).await
}

/// Refuses credentials on an unprotected connection (RFC 5530's PRIVACYREQUIRED).
fn privacy_required(cx: &Cx<'_>) -> Step {
    Step::Reply(cx.no(Some(Code::PrivacyRequired), PLAINTEXT_REFUSED))
}

/// Verifies credentials: the OK with the new capabilities, or the refusal.
async fn verify(ctx: &SessionContext, creds: Credentials, method: &str, cx: &mut Cx<'_>) -> Step {
    match ctx.login(cx.conn, creds, method).await {
        Ok(user) => {
            let code = Code::Capability(AUTHENTICATED_CAPABILITIES);
            Step::LoggedIn(cx.ok_code(code, "Logged in"), user)
        }
        Err(e) => Step::Reply(refusal(cx, e)),
    }
}

/// The tagged NO for a failed login; Dovecot shows a `nologin` reason as an ALERT.
fn refusal(cx: &Cx<'_>, error: AuthError) -> Tagged {
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
    cx.no(Some(code), &text)
}

/// AUTHENTICATE: a SASL exchange of `+ challenge` lines and base64 answers.
async fn authenticate(
    ctx: &SessionContext,
    mechanism: &str,
    initial: Option<Vec<u8>>,
    cx: &mut Cx<'_>,
) -> Step {
    let Some(mech) = Mechanism::from_name(mechanism) else {
        let text = format!("Unsupported authentication mechanism {mechanism}.");
        return Step::Reply(cx.no(None, &text));
    };
    if !ctx.plaintext_allowed(cx.conn.is_tls()) {
        return privacy_required(cx);
    }
    let (mut exchange, mut step) = SaslExchange::start(mech, initial);
    loop {
        match step {
            SaslStep::Done(creds) => return verify(ctx, creds, mech.name(), cx).await,
            SaslStep::Failed(SaslError::Cancelled) => {
                return Step::Reply(cx.bad("Authentication aborted by client."))
            }
            SaslStep::Failed(e) => {
                let text = format!("Authentication failed: {e}.");
                return Step::Reply(cx.no(Some(Code::AuthenticationFailed), &text));
            }
            SaslStep::Challenge(challenge) => match answer(challenge, cx).await {
                Ok(data) => step = data.map_or_else(SaslStep::Failed, |d| exchange.answer(d)),
                Err(ended) => return Step::Ended(ended),
            },
        }
    }
}

/// Sends a challenge and reads the client's answer: its data, or why there is none.
async fn answer(challenge: &str, cx: &mut Cx<'_>) -> Result<Result<Vec<u8>, SaslError>, Ended> {
    let mut line = Vec::new();
    push_continuation(&mut line, challenge);
    if cx.conn.write(&line).await.is_err() {
        return Err(Ended::Closed);
    }
    cx.decoder.expect(Expect::AuthenticateData);
    let event = next_event(cx.conn, cx.decoder).await;
    cx.decoder.expect(Expect::Command);
    match event? {
        Event::AuthenticateData(AuthenticateData::Continue(data)) => {
            Ok(Ok(data.declassify().to_vec()))
        }
        Event::AuthenticateData(AuthenticateData::Cancel) => Ok(Err(SaslError::Cancelled)),
        _ => Ok(Err(SaslError::Base64)),
    }
}
