//! One IMAP session: the loop that reads a command, lets the state's gate decide who runs it,
//! brings the client up to date with changes made elsewhere, and answers.
//!
//! ```text
//!   bytes ─► ImapDecoder ─► Request ─► gate(State, Request) ─► family handler ─► Step
//!                                                                   │
//!   bytes ◄─ untagged responses + updates + tagged line ◄───────────┘ (state transition)
//! ```

use std::borrow::Cow;

use roost_protocol::imap::imap_types::command::Command;
use roost_protocol::imap::response::{push_continuation, Response};
use roost_protocol::imap::{Event, ImapDecoder};

use super::authenticated::command as authenticated;
use super::blocking::blocking;
use super::command::{AnyState, PreLogin, Request};
use super::context::{Cx, Step};
use super::idle::{self, Idling, Wake};
use super::in_mailbox::command as in_mailbox;
use super::input::{bye, farewell, next_event, rejected, Ended};
use super::login::command as login;
use super::state::{Account, State};
use super::{pre_login_capabilities, AUTHENTICATED_CAPABILITIES, MAX_COMMAND_LINE};
use crate::listen::conn::Connection;
use crate::session::{Login, SessionContext};

/// How a session's loop ended.
pub enum Exit {
    /// A login succeeded (its OK is sent): the connection goes to the authenticated session.
    LoggedIn(Login),
    /// The connection is over.
    Closed,
}

/// A session: its state, its decoder, its count of malformed commands, and the IDLE it is
/// in, if any.
pub struct Session<'a> {
    state: State<'a>,
    decoder: ImapDecoder,
    bad_commands: u32,
    idling: Option<Idling>,
}

impl<'a> Session<'a> {
    /// A session before login, with the login process's limits on what a client may send.
    pub fn not_authenticated(ctx: &'a SessionContext) -> Self {
        Self {
            state: State::NotAuthenticated(ctx),
            decoder: ImapDecoder::before_login(),
            bad_commands: 0,
            idling: None,
        }
    }

    /// A logged-in session.
    pub fn authenticated(account: Account<'a>) -> Self {
        let decoder = ImapDecoder::new(account.user.max_literal, MAX_COMMAND_LINE);
        Self {
            state: State::Authenticated(account),
            decoder,
            bad_commands: 0,
            idling: None,
        }
    }

    /// Serves the connection until LOGOUT, a login (before login), disconnect, timeout or
    /// shutdown.
    pub async fn run(&mut self, conn: &mut Connection) -> Exit {
        loop {
            // Whatever is boxed here is allocated only while it runs: the session's own
            // future keeps to what an idling connection needs.
            let event = match self.idling.as_mut() {
                None => Box::pin(next_event(conn, &mut self.decoder)).await,
                Some(idling) => {
                    let selected = matches!(self.state, State::Selected(..));
                    match idle::wake(idling, selected, conn, &mut self.decoder).await {
                        Wake::Client(event) => event,
                        Wake::Readable => Box::pin(next_event(conn, &mut self.decoder)).await,
                        Wake::Changed => match self.idle_changed(conn).await {
                            Ok(()) => continue,
                            Err(exit) => return exit,
                        },
                        Wake::Keepalive => match conn.write(&idle::keepalive()).await {
                            Ok(()) => continue,
                            Err(_) => return Exit::Closed,
                        },
                    }
                }
            };
            let event = match event {
                Ok(event) => event,
                Err(ended) => return Box::pin(self.end(conn, ended)).await,
            };
            if let Some(idling) = self.idling.take() {
                let tagged = idling.finish(&mut self.decoder, &event);
                let step = Step::Reply(tagged);
                match Box::pin(self.finish(conn, Vec::new(), step, false)).await {
                    Some(exit) => return exit,
                    None => continue,
                }
            }
            let exit = match event {
                // Boxed: an idle session holds only what waiting for the next command needs,
                // not room for the largest command's state (a kilobyte or more a connection).
                Event::Command(cmd) => Box::pin(self.command(conn, *cmd)).await,
                Event::LiteralAccepted => literal_accepted(conn).await,
                Event::Rejected { tag, reason } => {
                    match rejected(conn, &mut self.bad_commands, tag.as_deref(), &reason).await {
                        Some(reply) => {
                            let step = Step::Reply(reply);
                            Box::pin(self.finish(conn, Vec::new(), step, false)).await
                        }
                        None => Some(Exit::Closed),
                    }
                }
                Event::Overflow { reason } => Some(self.overflow(conn, &reason).await),
                Event::AuthenticateData(_) | Event::IdleDone => None,
            };
            if let Some(exit) = exit {
                return exit;
            }
        }
    }

    /// Runs one command and answers it; `Some` when the session is over.
    async fn command(&mut self, conn: &mut Connection, cmd: Command<'static>) -> Option<Exit> {
        let name = cmd.body.name();
        if let Some(h) = conn.handle() {
            h.set_command(name);
        }
        let extras = self.decoder.take_extras();
        let mut cx = Cx {
            conn,
            decoder: &mut self.decoder,
            tag: cmd.tag.as_ref().to_string(),
            name,
            extras,
            out: Vec::new(),
        };
        let request = Request::from(cmd.body);
        let reports_changes = request.reports_changes();
        let step = gate(&mut self.state, request, &mut cx).await;
        let out = std::mem::take(&mut cx.out);
        self.finish(conn, out, step, reports_changes).await
    }

    /// Moves to the state the command led to and sends the answer, after the updates the
    /// client is due (when `reports_changes`); `Some` when the session is over.
    async fn finish(
        &mut self,
        conn: &mut Connection,
        mut out: Vec<u8>,
        step: Step,
        reports_changes: bool,
    ) -> Option<Exit> {
        let tagged = match step {
            Step::Reply(tagged) => tagged,
            Step::Enter(tagged, selected) => {
                self.state.select(selected);
                tagged
            }
            Step::Leave(tagged) => {
                self.state.deselect();
                tagged
            }
            Step::Sent => {
                self.publish(conn);
                return None;
            }
            Step::Logout(tagged) => return Some(self.logout(conn, out, tagged).await),
            Step::LoggedIn(tagged, identity) => {
                out.extend(tagged);
                return Some(match conn.write(&out).await {
                    Ok(()) => Exit::LoggedIn(identity),
                    Err(_) => Exit::Closed,
                });
            }
            Step::Ended(ended) => return Some(self.end(conn, ended).await),
            Step::Idle(idling) => {
                self.idling = Some(idling);
                return conn.write(&out).await.err().map(|_| Exit::Closed);
            }
        };
        if reports_changes {
            report_changes(&mut self.state, &mut out);
        }
        self.publish(conn);
        out.extend(tagged);
        conn.write(&out).await.err().map(|_| Exit::Closed)
    }

    /// In IDLE, the selected mailbox may have changed: push what did.
    async fn idle_changed(&mut self, conn: &mut Connection) -> Result<(), Exit> {
        if let Some(idling) = self.idling.as_mut() {
            idling.settle().await;
        }
        let mut out = Vec::new();
        report_changes(&mut self.state, &mut out);
        if out.is_empty() {
            return Ok(());
        }
        conn.write(&out).await.map_err(|_| Exit::Closed)
    }

    /// LOGOUT: `* BYE` and the tagged OK, and the session is over.
    async fn logout(&mut self, conn: &mut Connection, mut out: Vec<u8>, tagged: Vec<u8>) -> Exit {
        self.publish(conn);
        out.extend(bye("Logging out"));
        out.extend(tagged);
        let _ = conn.write(&out).await;
        self.log_end("Logged out");
        self.state = State::Logout;
        Exit::Closed
    }

    /// Tells the decoder what `$` means now and the registry where the session is.
    fn publish(&mut self, conn: &Connection) {
        if let Some(saved) = self.state.saved() {
            self.decoder.set_saved(saved);
        }
        if let (Some(h), Some(state)) = (conn.handle(), self.state.registry()) {
            h.set_state(state);
        }
    }

    /// The connection ended for a reason other than LOGOUT: say goodbye.
    async fn end(&mut self, conn: &mut Connection, ended: Ended) -> Exit {
        self.log_end(ended.text());
        farewell(conn, ended).await;
        Exit::Closed
    }

    /// A literal over the limit arrived before login: the connection ends unread.
    async fn overflow(&mut self, conn: &mut Connection, reason: &str) -> Exit {
        if self.state.account().is_none() {
            tracing::info!("imap-login: Disconnected: {reason}");
        }
        let _ = conn.write(&bye(reason)).await;
        Exit::Closed
    }

    /// A logged-in session logs how it ended.
    fn log_end(&self, why: &str) {
        if let Some(account) = self.state.account() {
            tracing::info!("imap({}): Disconnected: {why}", account.name());
        }
    }
}

/// The one gate: which commands each state admits (RFC 3501 6.1–6.4), and who runs them.
async fn gate(state: &mut State<'_>, request: Request, cx: &mut Cx<'_>) -> Step {
    match (state, request) {
        (state, Request::Any(c)) => any_state(state, c, cx),
        (State::NotAuthenticated(ctx), Request::NotAuthenticated(c)) => login(ctx, c, cx).await,
        (State::NotAuthenticated(_), _) => refuse(cx, Refusal::BeforeLogin),
        (State::Logout, _) => Step::Ended(Ended::Closed),
        (_, Request::NotAuthenticated(c)) => refuse(cx, Refusal::LoggedIn(c)),
        (_, Request::Unsupported) => refuse(cx, Refusal::Unsupported),
        (State::Authenticated(a), Request::Authenticated(c)) => authenticated(a, None, c, cx).await,
        (State::Selected(a, s), Request::Authenticated(c)) => {
            authenticated(a, Some(s), c, cx).await
        }
        (State::Authenticated(_), Request::Selected(_)) => refuse(cx, Refusal::NoMailbox),
        (State::Selected(a, s), Request::Selected(c)) => in_mailbox(a, s, c, cx).await,
    }
}

/// Why the gate turns a command away.
enum Refusal {
    /// Before login only the login commands and the any-state ones are allowed.
    BeforeLogin,
    /// STARTTLS, LOGIN or AUTHENTICATE once logged in.
    LoggedIn(PreLogin),
    /// A command roost does not implement.
    Unsupported,
    /// A selected-state command with no mailbox selected.
    NoMailbox,
}

/// The tagged BAD for a refusal: the one place its words are chosen.
fn refuse(cx: &Cx<'_>, why: Refusal) -> Step {
    let text: Cow<'static, str> = match why {
        Refusal::BeforeLogin => format!("{} is not allowed before login.", cx.name).into(),
        Refusal::LoggedIn(PreLogin::StartTls) => "STARTTLS is only allowed before login.".into(),
        Refusal::LoggedIn(PreLogin::Login(_) | PreLogin::Authenticate { .. }) => {
            "Already logged in.".into()
        }
        Refusal::Unsupported => format!("{} is not supported by this server.", cx.name).into(),
        Refusal::NoMailbox => "No mailbox selected.".into(),
    };
    Step::Reply(cx.bad(&text))
}

/// CAPABILITY, NOOP, LOGOUT and ID, the same in every state but for the capabilities.
fn any_state(state: &State<'_>, command: AnyState, cx: &mut Cx<'_>) -> Step {
    match command {
        AnyState::Capability => {
            let capabilities = capabilities(state, cx.conn);
            cx.send(Response::Capability(&capabilities));
            Step::Reply(cx.ok("Capability completed."))
        }
        AnyState::Noop => Step::Reply(cx.ok("NOOP completed.")),
        AnyState::Logout => Step::Logout(cx.ok("Logout completed.")),
        AnyState::Id => {
            cx.send(Response::Id(&[("name", "roost")]));
            Step::Reply(cx.ok("ID completed."))
        }
    }
}

/// What the client may use now: before login, STARTTLS and AUTH= only where they apply.
fn capabilities(state: &State<'_>, conn: &Connection) -> Cow<'static, str> {
    match state {
        State::NotAuthenticated(ctx) => {
            let tls = conn.is_tls();
            Cow::Owned(pre_login_capabilities(!tls, ctx.plaintext_allowed(tls)))
        }
        State::Authenticated(_) | State::Selected(..) | State::Logout => {
            Cow::Borrowed(AUTHENTICATED_CAPABILITIES)
        }
    }
}

/// Writes the EXISTS / EXPUNGE / FETCH responses for what changed in the selected mailbox.
fn report_changes(state: &mut State<'_>, out: &mut Vec<u8>) {
    if let State::Selected(account, selected) = state {
        let condstore = account.enabled.condstore;
        if let Err(e) = blocking(|| selected.refresh(condstore, out)) {
            tracing::error!("imap({}): re-sync failed: {e}", account.name());
        }
    }
}

/// `+ Ready for literal data`: the client may send the literal it announced.
async fn literal_accepted(conn: &mut Connection) -> Option<Exit> {
    let mut line = Vec::new();
    push_continuation(&mut line, "Ready for literal data");
    conn.write(&line).await.err().map(|_| Exit::Closed)
}
