//! The IMAP front-end: one session state machine ([`session`]) from greeting to logout.
//!
//! ```text
//!   serve ─► greeting ─► Session in NotAuthenticated (the login process)
//!              └─ LOGIN / AUTHENTICATE ─► Login::start
//!                   └─► authenticated::run ─► Session in Authenticated (here or in a worker)
//!
//!   each command: Request (command.rs) ─► the gate (session.rs) ─► a family handler:
//!     login.rs (not authenticated) · authenticated.rs (authenticated) · in_mailbox.rs (selected)
//! ```

pub mod authenticated;
mod blocking;
mod catenate;
mod changes;
mod command;
mod context;
mod fetch;
mod folder_watch;
mod idle;
mod in_mailbox;
mod input;
mod list;
mod live;
mod login;
mod mailboxes;
mod message;
mod quota;
mod reply;
mod search;
mod search_key;
mod select;
mod selected;
mod session;
mod sort;
mod state;
mod thread;

use roost_protocol::imap::response::{Code, Response};

use crate::listen::acceptor::Continuation;
use crate::listen::conn::Connection;
use crate::session::SessionContext;
use session::{Exit, Session};

/// Bytes of a command line (without literals) a client may send.
const MAX_COMMAND_LINE: u32 = 64 * 1024;
/// Invalid commands tolerated before the connection is closed, as Dovecot does.
const MAX_BAD_COMMANDS: u32 = 10;

/// Capabilities before login: STARTTLS only where it can be used, AUTH= only where plaintext
/// credentials are allowed (otherwise LOGINDISABLED, RFC 3501 6.2.3).
fn pre_login_capabilities(offer_starttls: bool, plaintext_ok: bool) -> String {
    let mut caps = String::from("IMAP4rev1 IMAP4rev2 SASL-IR LITERAL+ ID");
    if offer_starttls {
        caps.push_str(" STARTTLS");
    }
    if plaintext_ok {
        caps.push_str(" AUTH=PLAIN AUTH=LOGIN");
    } else {
        caps.push_str(" LOGINDISABLED");
    }
    caps
}

/// The special-use folders every user gets (also what `roost import-dovecot` need not carry).
pub use mailboxes::SPECIAL_USE;

/// Capabilities after login.
pub const AUTHENTICATED_CAPABILITIES: &str = "IMAP4rev1 IMAP4rev2 SASL-IR LITERAL+ ID ENABLE IDLE NAMESPACE UIDPLUS MULTIAPPEND CATENATE QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE MOVE UNSELECT CHILDREN SPECIAL-USE CONDSTORE QRESYNC BINARY UTF8=ACCEPT STATUS=SIZE COMPRESS=DEFLATE ESEARCH SEARCHRES ESORT PARTIAL CONTEXT=SEARCH CONTEXT=SORT LIST-EXTENDED LIST-STATUS SORT SORT=DISPLAY THREAD=ORDEREDSUBJECT THREAD=REFERENCES";

/// `* OK [CAPABILITY …] roost ready.` (a temporary, so nothing of it stays in the connection's
/// future for the session's life).
fn greeting(conn: &Connection, ctx: &SessionContext) -> Vec<u8> {
    let caps = pre_login_capabilities(!conn.is_tls(), ctx.plaintext_allowed(conn.is_tls()));
    let mut greeting = Vec::new();
    Response::Ok {
        code: Some(Code::Capability(&caps)),
        text: "roost ready.",
    }
    .encode(&mut greeting);
    greeting
}

/// Serves one IMAP connection from greeting to logout.
/// A login hands back the logged-in session, so nothing of this part stays for its life.
pub async fn serve(mut conn: Connection, ctx: SessionContext) -> Option<Continuation> {
    if conn.write(&greeting(&conn, &ctx)).await.is_err() {
        return None;
    }
    match Session::not_authenticated(&ctx).run(&mut conn).await {
        Exit::LoggedIn(user) => Some(user.start(conn, &ctx)),
        Exit::Closed => None,
    }
}
