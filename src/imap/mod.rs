//! The IMAP front-end: greeting and login here, the authenticated session in [`authenticated`].
//!
//! ```text
//!   greeting ─► login::run (CAPABILITY, STARTTLS, LOGIN, AUTHENTICATE, LOGOUT)
//!                  └─ MailUser ─► session::hand_over ─► authenticated::run (here or in a worker)
//! ```

pub mod authenticated;
mod changes;
mod fetch;
mod idle;
mod input;
mod login;
mod mailboxes;
mod reply;
mod search;
mod selected;
mod sort;
mod thread;

use roost_protocol::imap::response::{Code, Response};
use roost_protocol::imap::ImapDecoder;

use crate::listen::conn::Connection;
use crate::session::{self, SessionContext};

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

/// Capabilities after login.
pub const AUTHENTICATED_CAPABILITIES: &str = "IMAP4rev1 IMAP4rev2 SASL-IR LITERAL+ ID ENABLE IDLE NAMESPACE UIDPLUS MOVE UNSELECT CHILDREN SPECIAL-USE CONDSTORE QRESYNC BINARY UTF8=ACCEPT STATUS=SIZE COMPRESS=DEFLATE ESEARCH SEARCHRES ESORT LIST-EXTENDED LIST-STATUS SORT SORT=DISPLAY THREAD=ORDEREDSUBJECT THREAD=REFERENCES";

/// Serves one IMAP connection from greeting to logout.
pub async fn serve(mut conn: Connection, ctx: SessionContext) {
    let mut decoder = ImapDecoder::before_login();
    let caps = pre_login_capabilities(!conn.is_tls(), ctx.plaintext_allowed(conn.is_tls()));
    let mut greeting = Vec::new();
    Response::Ok {
        code: Some(Code::Capability(&caps)),
        text: "roost ready.",
    }
    .encode(&mut greeting);
    if conn.write(&greeting).await.is_err() {
        return;
    }
    if let Some(user) = login::run(&mut conn, &ctx, &mut decoder).await {
        session::hand_over(conn, &ctx, user).await;
    }
}
