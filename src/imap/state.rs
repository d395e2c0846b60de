//! RFC 3501's session states (section 3) as one enum whose variants own their data.
//!
//! ```text
//!   NotAuthenticated ──LOGIN/AUTHENTICATE──► hand-over ──► Authenticated ──SELECT──► Selected
//!    (login process)                        (worker or here)   ▲  ◄──CLOSE/UNSELECT──┘
//!   any state ──LOGOUT──► Logout
//! ```
//!
//! The login process runs a session from `NotAuthenticated` until a login succeeds; whoever
//! serves the mail (this process or a worker running as the mail owner) starts a new one in
//! `Authenticated`, so the hand-over is the transition between the two.

use roost_protocol::imap::extended::Saved;
use roost_storage::Store;

use super::selected::Selected;
use crate::listen::registry::SessionState;
use crate::session::{SessionContext, UserSession};

/// Where a session is, with what only that state has.
pub enum State<'a> {
    /// Before login: what LOGIN, AUTHENTICATE and STARTTLS need.
    NotAuthenticated(&'a SessionContext),
    /// Logged in, no mailbox selected.
    Authenticated(Account<'a>),
    /// Logged in, with this client's view of the selected mailbox.
    Selected(Account<'a>, Box<Selected>),
    /// LOGOUT was answered; the connection ends.
    Logout,
}

/// A logged-in user: their store, and what the client turned on.
pub struct Account<'a> {
    /// Who logged in, and the session's settings.
    pub user: &'a UserSession,
    /// Their mail.
    pub store: Store,
    /// Extensions the client enabled.
    pub enabled: Enabled,
}

/// What the client turned on (ENABLE, RFC 5161, or using an extension).
#[derive(Debug, Clone, Copy, Default)]
pub struct Enabled {
    /// CONDSTORE (ENABLE CONDSTORE, SELECT (CONDSTORE), or a MODSEQ item used).
    pub condstore: bool,
    /// ENABLE QRESYNC was sent.
    pub qresync: bool,
    /// ENABLE UTF8=ACCEPT or IMAP4rev2: mailbox names are UTF-8 on the wire.
    pub utf8: bool,
    /// ENABLE IMAP4rev2 (RFC 9051) was sent.
    pub rev2: bool,
}

impl Account<'_> {
    /// The user's name, for log lines.
    pub fn name(&self) -> &str {
        &self.user.user.name
    }

    /// Turns CONDSTORE on because a command used it (a MODSEQ item or search key,
    /// CHANGEDSINCE, UNCHANGEDSINCE: RFC 7162 3.1); `true` when it was off, so that command's
    /// tagged OK carries `[HIGHESTMODSEQ n]`.
    pub fn enable_condstore(&mut self) -> bool {
        !std::mem::replace(&mut self.enabled.condstore, true)
    }
}

impl<'a> State<'a> {
    /// Enters the selected state with `selected` (SELECT, EXAMINE), leaving any earlier one.
    pub fn select(&mut self, selected: Box<Selected>) {
        *self = match std::mem::replace(self, State::Logout) {
            State::Authenticated(account) | State::Selected(account, _) => {
                State::Selected(account, selected)
            }
            other => other,
        };
    }

    /// Leaves the selected state, if in it (CLOSE, UNSELECT, a failed SELECT, DELETE of the
    /// selected mailbox).
    pub fn deselect(&mut self) {
        *self = match std::mem::replace(self, State::Logout) {
            State::Selected(account, _) => State::Authenticated(account),
            other => other,
        };
    }

    /// The logged-in user, if any.
    pub fn account(&self) -> Option<&Account<'a>> {
        match self {
            State::Authenticated(account) | State::Selected(account, _) => Some(account),
            State::NotAuthenticated(_) | State::Logout => None,
        }
    }

    /// What the session registry shows for a logged-in session.
    pub fn registry(&self) -> Option<SessionState> {
        match self {
            State::Authenticated(_) => Some(SessionState::Authenticated),
            State::Selected(_, selected) => Some(SessionState::Selected(selected.name.clone())),
            State::NotAuthenticated(_) | State::Logout => None,
        }
    }

    /// What `$` stands for in a logged-in session's next commands (RFC 5182).
    pub fn saved(&self) -> Option<Saved> {
        match self {
            State::Authenticated(_) => Some(Saved::default()),
            State::Selected(_, selected) => Some(selected.saved_sets()),
            State::NotAuthenticated(_) | State::Logout => None,
        }
    }
}
