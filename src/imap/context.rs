//! What every command handler gets besides the state it runs in ([`Cx`]), and what it hands
//! back to the session loop ([`Step`]).

use roost_protocol::imap::response::{Code, Response};
use roost_protocol::imap::{Extras, ImapDecoder};
use roost_storage::Error as StorageError;

use super::idle::Idling;
use super::input::Ended;
use super::reply::{self, Tagged};
use super::selected::Selected;
use crate::listen::conn::Connection;
use crate::session::Login;

/// One command's context: the connection and decoder (for the commands that talk while they
/// run: AUTHENTICATE, STARTTLS, IDLE, FETCH, COMPRESS), the command's tag and name, the
/// extended-syntax options lifted out of it, and the untagged responses waiting for the
/// tagged line.
pub struct Cx<'c> {
    /// The client connection.
    pub conn: &'c mut Connection,
    /// The command decoder (AUTHENTICATE and IDLE read through it).
    pub decoder: &'c mut ImapDecoder,
    /// The command's tag.
    pub tag: String,
    /// The command's name, as `imap-types` spells it.
    pub name: &'static str,
    /// ESEARCH and LIST-EXTENDED options of the command.
    pub extras: Extras,
    /// Untagged responses to send before the tagged line.
    pub out: Vec<u8>,
}

impl Cx<'_> {
    /// Queues an untagged response.
    pub fn send(&mut self, response: Response<'_>) {
        response.encode(&mut self.out);
    }

    /// `tag OK text`.
    pub fn ok(&self, text: &str) -> Tagged {
        reply::ok(&self.tag, text)
    }

    /// `tag OK text`, or `tag OK [HIGHESTMODSEQ n] text` when the command just turned
    /// CONDSTORE on with a mailbox selected (RFC 7162 3.1).
    pub fn ok_condstore(&self, enabled_now: bool, selected: &Selected, text: &str) -> Tagged {
        match enabled_now {
            true => self.ok_code(Code::HighestModSeq(selected.highest_modseq_now()), text),
            false => self.ok(text),
        }
    }

    /// `tag OK [code] text`.
    pub fn ok_code(&self, code: Code<'_>, text: &str) -> Tagged {
        reply::ok_code(&self.tag, code, text)
    }

    /// `tag NO [code] text`.
    pub fn no(&self, code: Option<Code<'_>>, text: &str) -> Tagged {
        reply::no(&self.tag, code, text)
    }

    /// `tag BAD text`.
    pub fn bad(&self, text: &str) -> Tagged {
        reply::bad(&self.tag, text)
    }

    /// The tagged NO for a storage failure (logged as `user`'s).
    pub fn failure(&self, user: &str, e: &StorageError) -> Tagged {
        reply::storage_failure(&self.tag, user, e)
    }
}

/// What a command leads to.
pub enum Step {
    /// Send the pending untagged responses and this tagged line; read on.
    Reply(Tagged),
    /// As [`Step::Reply`], in the selected state with this mailbox (SELECT, EXAMINE).
    Enter(Tagged, Box<Selected>),
    /// As [`Step::Reply`], back in the authenticated state (CLOSE, UNSELECT, a failed SELECT,
    /// DELETE of the selected mailbox).
    Leave(Tagged),
    /// Everything was sent already (STARTTLS, COMPRESS); read on.
    Sent,
    /// LOGOUT: `* BYE`, this tagged line, and the connection ends.
    Logout(Tagged),
    /// The login succeeded: send this tagged line and hand the connection over.
    LoggedIn(Tagged, Login),
    /// The connection ended while the command ran.
    Ended(Ended),
    /// IDLE: send the pending responses (the continuation last) and wait for DONE.
    Idle(Idling),
}
