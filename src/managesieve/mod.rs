//! The ManageSieve front-end (RFC 5804): users upload, list, activate and delete the Sieve
//! scripts delivery runs for them. Before login in [`login`] (CAPABILITY, STARTTLS,
//! AUTHENTICATE), then, as the mail owner, in [`session`] on the user's
//! [`ScriptStore`](roost_storage::sieve_scripts::ScriptStore), with the script commands in
//! `scripts`.
//!
//! ```text
//!   greeting (capabilities, OK) ── login::run ── Login::start ── session::run ── scripts
//!                                  (login process)          (worker / this process)
//! ```

mod login;
mod scripts;
pub mod session;

use roost_protocol::managesieve::{self as ms, Decoder, ParseError, Token};

use crate::listen::acceptor::Continuation;
use crate::listen::conn::{Connection, Ended};
use crate::session::SessionContext;

/// Invalid commands tolerated before the connection is closed.
const MAX_BAD_COMMANDS: u32 = 10;

/// Serves one ManageSieve connection from the greeting to LOGOUT.
/// A login hands back the logged-in session, so nothing of this part stays for its life.
pub async fn serve(mut conn: Connection, ctx: SessionContext) -> Option<Continuation> {
    let plaintext_ok = ctx.plaintext_allowed(conn.is_tls());
    let mut greeting = capabilities(conn.is_tls(), Some(plaintext_ok));
    greeting.extend_from_slice(&ms::ok("roost ManageSieve ready."));
    if conn.write(&greeting).await.is_err() {
        return None;
    }
    let user = login::run(&mut conn, &ctx).await?;
    Some(user.start(conn, &ctx))
}

/// The capability lines of RFC 5804 1.7 (without the closing `OK`). `sasl` is `None` after
/// login, else whether plaintext mechanisms may be used on this connection now.
fn capabilities(tls: bool, sasl: Option<bool>) -> Vec<u8> {
    let mut out = ms::capability("IMPLEMENTATION", Some("roost"));
    match sasl {
        Some(true) => out.extend(ms::capability("SASL", Some("PLAIN LOGIN"))),
        Some(false) => out.extend(ms::capability("SASL", Some(""))),
        None => {}
    }
    let extensions = roost_protocol::sieve::EXTENSIONS.join(" ");
    out.extend(ms::capability("SIEVE", Some(&extensions)));
    if !tls && sasl.is_some() {
        out.extend(ms::capability("STARTTLS", None));
    }
    out.extend(ms::capability("VERSION", Some("1.0")));
    out
}

/// The next command line from the client: `Ok(Err)` for a refused one, `Err` when the
/// connection ended.
async fn next_line(
    conn: &mut Connection,
    decoder: &mut Decoder,
) -> Result<Result<Vec<Token>, ParseError>, Ended> {
    loop {
        match decoder.decode(conn.buffer()) {
            Ok(Some(tokens)) => return Ok(Ok(tokens)),
            Ok(None) => conn.read_more().await?,
            Err(e) => return Ok(Err(e)),
        }
    }
}

/// Says goodbye in ManageSieve's words when a session ends without LOGOUT.
async fn farewell(conn: &mut Connection, why: Ended) {
    let line = match why {
        Ended::IdleTimeout => ms::bye("Disconnected for inactivity."),
        Ended::Shutdown => ms::bye("Server shutting down."),
        Ended::Closed => return,
    };
    let _ = conn.write(&line).await;
}

/// Why an ended session ended, for its log line.
fn ended_text(why: Ended) -> &'static str {
    match why {
        Ended::IdleTimeout => "Disconnected for inactivity",
        Ended::Shutdown => "Server shutting down",
        Ended::Closed => "Connection closed",
    }
}
