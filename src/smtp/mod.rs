//! The SMTP submission front-end (RFC 6409 on 587 with STARTTLS, RFC 8314 on 465).
//!
//! The foundation's slice: greeting, EHLO/HELO, STARTTLS, AUTH PLAIN/LOGIN through the shared
//! authentication layer, NOOP, RSET, HELP, VRFY, QUIT. Accepting mail (MAIL/RCPT/DATA, local
//! delivery, the queue) arrives with the SMTP issue; until then MAIL is refused with a clear reply.

use roost_protocol::line::{Line, LineDecoder};
use roost_protocol::sasl::{self, Credentials, Mechanism, SaslError};
use roost_protocol::smtp::{self, Command, Reply};

use crate::auth::AuthError;
use crate::listen::conn::{Connection, Readable};
use crate::session::{sasl_over_lines, LineSasl, SessionContext};

/// Invalid commands tolerated before the connection is closed.
const MAX_BAD_COMMANDS: u32 = 10;

struct State {
    greeted: bool,
    user: Option<String>,
    bad: u32,
}

/// Serves one submission connection.
pub async fn serve(mut conn: Connection, ctx: SessionContext) {
    let host = roost_storage::host::name();
    if conn
        .write(&Reply::plain(220, &format!("{host} ESMTP roost")).encode())
        .await
        .is_err()
    {
        return;
    }
    let mut lines = LineDecoder::new(smtp::MAX_COMMAND_LINE);
    let mut state = State {
        greeted: false,
        user: None,
        bad: 0,
    };
    loop {
        let reply = match conn.read_line(&mut lines).await {
            Ok(Line::Complete(line)) => match Command::parse(&line) {
                Ok(Command::Quit) => {
                    let _ = conn.write(&Reply::new(221, "2.0.0", "Bye").encode()).await;
                    return;
                }
                Ok(cmd) => {
                    if let Some(h) = conn.handle() {
                        h.set_command(cmd.keyword());
                    }
                    match command(&mut conn, &ctx, &mut lines, &mut state, host, cmd).await {
                        Outcome::Reply(reply) => reply,
                        Outcome::Silent => continue,
                        Outcome::Close => return,
                    }
                }
                Err(e) => {
                    state.bad += 1;
                    e.reply()
                }
            },
            Ok(Line::TooLong) => {
                state.bad += 1;
                Reply::new(500, "5.5.2", "Line too long")
            }
            Err(why) => return farewell(&mut conn, why).await,
        };
        if state.bad >= MAX_BAD_COMMANDS {
            let _ = conn
                .write(&Reply::new(421, "4.7.0", "Too many invalid commands").encode())
                .await;
            return;
        }
        if conn.write(&reply.encode()).await.is_err() {
            return;
        }
    }
}

async fn farewell(conn: &mut Connection, why: Readable) {
    let reply = match why {
        Readable::IdleTimeout => Reply::new(421, "4.4.2", "Timeout exceeded"),
        Readable::Shutdown => Reply::new(421, "4.3.2", "Server shutting down"),
        Readable::Eof | Readable::Data => return,
    };
    let _ = conn.write(&reply.encode()).await;
}

/// What a command leads to.
enum Outcome {
    /// Send this reply.
    Reply(Reply),
    /// Nothing to send (after the STARTTLS handshake, the client speaks first).
    Silent,
    /// Close the connection.
    Close,
}

/// Handles one command.
async fn command(
    conn: &mut Connection,
    ctx: &SessionContext,
    lines: &mut LineDecoder,
    state: &mut State,
    host: &str,
    cmd: Command,
) -> Outcome {
    Outcome::Reply(match cmd {
        Command::Ehlo(_) => {
            state.greeted = true;
            ehlo(conn, ctx, host)
        }
        Command::Helo(_) => {
            state.greeted = true;
            Reply::plain(250, host)
        }
        Command::Lhlo(_) => Reply::new(500, "5.5.1", "LHLO is for LMTP; this is SMTP"),
        Command::StartTls if conn.is_tls() => Reply::new(503, "5.5.1", "TLS already active"),
        Command::StartTls => {
            let ready = Reply::new(220, "2.0.0", "Ready to start TLS").encode();
            if conn.write(&ready).await.is_err()
                || conn.start_tls(&ctx.tls.acceptor()).await.is_err()
            {
                return Outcome::Close;
            }
            state.greeted = false;
            return Outcome::Silent;
        }
        Command::Auth { .. } if !state.greeted => Reply::new(503, "5.5.1", "Send EHLO first"),
        Command::Auth { .. } if state.user.is_some() => {
            Reply::new(503, "5.5.1", "Already authenticated")
        }
        Command::Auth { .. } if !ctx.plaintext_allowed(conn.is_tls()) => Reply::new(
            538,
            "5.7.11",
            "Encryption required for requested authentication mechanism",
        ),
        Command::Auth {
            mechanism,
            initial_response,
        } => {
            return match authenticate(conn, ctx, lines, state, &mechanism, initial_response).await {
                Some(reply) => Outcome::Reply(reply),
                None => Outcome::Close,
            };
        }
        Command::MailFrom { .. } if state.user.is_none() => {
            Reply::new(530, "5.7.0", "Authentication required")
        }
        Command::MailFrom { .. } | Command::RcptTo { .. } | Command::Data => Reply::new(
            554,
            "5.3.3",
            "Sending mail is not available in this version of roost yet",
        ),
        Command::Rset => Reply::new(250, "2.0.0", "Ok"),
        Command::Noop => Reply::new(250, "2.0.0", "Ok"),
        Command::Help => Reply::new(214, "2.0.0", "See RFC 5321 and RFC 6409"),
        Command::Vrfy(_) => Reply::new(252, "2.5.0", "Cannot VRFY user, but will accept message"),
        Command::Quit => Reply::new(221, "2.0.0", "Bye"),
    })
}

fn ehlo(conn: &Connection, ctx: &SessionContext, host: &str) -> Reply {
    let mut lines = vec![
        host.to_string(),
        "PIPELINING".into(),
        "8BITMIME".into(),
        "ENHANCEDSTATUSCODES".into(),
    ];
    if !conn.is_tls() {
        lines.push("STARTTLS".into());
    }
    if ctx.plaintext_allowed(conn.is_tls()) {
        let mechs: Vec<&str> = sasl::MECHANISMS.iter().map(|m| m.name()).collect();
        lines.push(format!("AUTH {}", mechs.join(" ")));
    }
    Reply::multi(250, lines)
}

async fn authenticate(
    conn: &mut Connection,
    ctx: &SessionContext,
    lines: &mut LineDecoder,
    state: &mut State,
    mech: &str,
    initial: Option<String>,
) -> Option<Reply> {
    let Some(mechanism) = Mechanism::from_name(mech) else {
        return Some(Reply::new(504, "5.5.4", "Unrecognized authentication type"));
    };
    let challenge = |text: &str| Reply::plain(334, text).encode();
    Some(
        match sasl_over_lines(conn, lines, mechanism, initial, challenge).await {
            LineSasl::Credentials(creds) => login(conn, ctx, state, creds, mechanism).await,
            LineSasl::Failed(SaslError::Cancelled) => {
                Reply::new(501, "5.7.0", "Authentication cancelled")
            }
            LineSasl::Failed(SaslError::Base64) => Reply::new(501, "5.5.2", "Invalid base64 data"),
            LineSasl::Failed(_) => Reply::new(501, "5.5.2", "Invalid authentication data"),
            LineSasl::Ended(why) => {
                farewell(conn, why).await;
                return None;
            }
        },
    )
}

async fn login(
    conn: &Connection,
    ctx: &SessionContext,
    state: &mut State,
    creds: Credentials,
    mechanism: Mechanism,
) -> Reply {
    match ctx.login(conn, creds, mechanism.name()).await {
        Ok(user) => {
            state.user = Some(user.name().to_string());
            Reply::new(235, "2.7.0", "Authentication successful")
        }
        Err(AuthError::Failed) => Reply::new(535, "5.7.8", "Authentication credentials invalid"),
        Err(AuthError::Throttled) => {
            Reply::new(421, "4.7.0", "Too many failed logins; try again later")
        }
        Err(AuthError::Temporary(_)) => {
            Reply::new(454, "4.7.0", "Temporary authentication failure")
        }
    }
}
