//! One SMTP, submission or LMTP conversation: the state a connection carries and one function
//! per command. Replies are values; the loop in `mod.rs` writes them.

use std::sync::Arc;

use roost_protocol::dot::DataFlaws;
use roost_protocol::line::LineDecoder;
use roost_protocol::sasl::{self, Credentials, Mechanism, SaslError};
use roost_protocol::smtp::address::{Address, HeloName, ReversePath};
use roost_protocol::smtp::params::{MailParams, RcptParams};

use super::bounce::{Action, Notice};
use roost_protocol::smtp::Reply;

use super::deliver::Outcome;
use super::envelope::{Rcpt, Transaction};
use super::policy::{self, Mode, Route};
use super::receive::{self, MissingFields, Received};
use super::resolve::{ResolveError, Target};
use super::scan::scan_received;
use super::Services;
use crate::auth::AuthError;
use crate::filter::spam::ScanEnvelope;
use crate::listen::conn::Connection;
use crate::listen::registry::SessionState;
use crate::session::{sasl_over_lines, LineSasl, SessionContext};

/// What a command leads to.
pub enum Step {
    /// Send these replies (LMTP's DATA gives one per recipient).
    Replies(Vec<Reply>),
    /// Nothing to send (after the STARTTLS handshake, the client speaks first).
    Silent,
    /// The connection ended; say this first if anything.
    Close(Option<Reply>),
}

impl From<Reply> for Step {
    fn from(reply: Reply) -> Self {
        Self::Replies(vec![reply])
    }
}

/// A connection's state.
pub struct Session {
    /// Which listener this is.
    pub mode: Mode,
    /// What the process shares.
    pub services: Arc<Services>,
    /// The pre-login context (config, privileged operations, addresses).
    pub ctx: SessionContext,
    /// Our host name.
    pub host: &'static str,
    /// The client's EHLO/HELO/LHLO name, once greeted.
    pub helo: Option<HeloName>,
    /// Whether the client greeted with EHLO/LHLO (ESMTP).
    pub esmtp: bool,
    /// The authenticated user.
    pub user: Option<String>,
    /// The mail transaction in progress.
    pub txn: Option<Transaction>,
}

fn reply(code: u16, enhanced: &'static str, text: &str) -> Step {
    Reply::new(code, enhanced, text).into()
}

impl Session {
    /// The EHLO (or LHLO) keyword list.
    pub fn ehlo(&mut self, conn: &Connection, name: HeloName, esmtp: bool) -> Step {
        self.helo = Some(name);
        self.esmtp = esmtp;
        self.txn = None;
        if !esmtp {
            return Reply::plain(250, self.host).into();
        }
        let config = &self.ctx.config.smtp;
        let mut lines = vec![
            self.host.to_string(),
            "PIPELINING".into(),
            "8BITMIME".into(),
            format!("SIZE {}", config.max_message_size),
            "ENHANCEDSTATUSCODES".into(),
            "SMTPUTF8".into(),
        ];
        if self.mode != Mode::Lmtp {
            lines.push("DSN".into());
            if !conn.is_tls() {
                lines.push("STARTTLS".into());
            }
            if self.user.is_none() && self.ctx.plaintext_allowed(conn.is_tls()) {
                let mechs: Vec<&str> = sasl::MECHANISMS.iter().map(|m| m.name()).collect();
                lines.push(format!("AUTH {}", mechs.join(" ")));
            }
        }
        Reply::multi(250, lines).into()
    }

    /// HELO (SMTP), LHLO (LMTP), and EHLO, refused on the wrong listener.
    pub fn greet(&mut self, conn: &Connection, keyword: &str, name: HeloName) -> Step {
        match (self.mode, keyword) {
            (Mode::Lmtp, "LHLO") => self.ehlo(conn, name, true),
            (Mode::Lmtp, _) => reply(500, "5.5.1", "This is LMTP: send LHLO"),
            (_, "LHLO") => reply(500, "5.5.1", "LHLO is for LMTP; this is SMTP"),
            (_, "EHLO") => self.ehlo(conn, name, true),
            _ => self.ehlo(conn, name, false),
        }
    }

    /// STARTTLS: the handshake, then a fresh start (RFC 3207 4.2).
    pub async fn starttls(&mut self, conn: &mut Connection) -> Step {
        if conn.is_tls() {
            return reply(503, "5.5.1", "TLS already active");
        }
        if self.mode == Mode::Lmtp {
            return reply(502, "5.5.1", "STARTTLS is not offered on LMTP");
        }
        let ready = Reply::new(220, "2.0.0", "Ready to start TLS").encode();
        if conn.write(&ready).await.is_err()
            || conn.start_tls(&self.ctx.tls.acceptor()).await.is_err()
        {
            return Step::Close(None);
        }
        // Nothing learnt before the handshake survives it (RFC 3207 4.2), a login included.
        self.helo = None;
        self.txn = None;
        self.esmtp = false;
        if self.user.take().is_some() {
            if let Some(h) = conn.handle() {
                h.clear_user();
            }
            if self.ctx.protocol.requires_login() {
                conn.start_login_clock(self.ctx.config.limits.login_timeout);
            }
        }
        Step::Silent
    }

    /// AUTH on submission (and on 25, for users who relay through it).
    pub async fn auth(
        &mut self,
        conn: &mut Connection,
        lines: &mut LineDecoder,
        mechanism: &str,
        initial: Option<String>,
    ) -> Step {
        if self.mode == Mode::Lmtp {
            return reply(502, "5.5.1", "AUTH is not offered on LMTP");
        }
        if self.helo.is_none() || !self.esmtp {
            return reply(503, "5.5.1", "Send EHLO first");
        }
        if self.user.is_some() {
            return reply(503, "5.5.1", "Already authenticated");
        }
        if self.txn.is_some() {
            return reply(
                503,
                "5.5.1",
                "AUTH is not allowed during a mail transaction",
            );
        }
        if !self.ctx.plaintext_allowed(conn.is_tls()) {
            return reply(
                538,
                "5.7.11",
                "Encryption required for requested authentication mechanism",
            );
        }
        let Some(mechanism) = Mechanism::from_name(mechanism) else {
            return reply(504, "5.5.4", "Unrecognized authentication type");
        };
        let challenge = |text: &str| Reply::plain(334, text).encode();
        match sasl_over_lines(conn, lines, mechanism, initial, challenge).await {
            LineSasl::Credentials(creds) => self.login(conn, creds, mechanism).await,
            LineSasl::Failed(SaslError::Cancelled) => {
                reply(501, "5.7.0", "Authentication cancelled")
            }
            LineSasl::Failed(SaslError::Base64) => reply(501, "5.5.2", "Invalid base64 data"),
            LineSasl::Failed(_) => reply(501, "5.5.2", "Invalid authentication data"),
            LineSasl::Ended(why) => Step::Close(super::farewell(why)),
        }
    }

    async fn login(
        &mut self,
        conn: &mut Connection,
        creds: Credentials,
        mechanism: Mechanism,
    ) -> Step {
        match self.ctx.login(conn, creds, mechanism.name()).await {
            Ok(user) => {
                self.user = Some(user.name().to_string());
                conn.end_login_clock();
                if let Some(h) = conn.handle() {
                    h.set_state(SessionState::Authenticated);
                }
                reply(235, "2.7.0", "Authentication successful")
            }
            Err(AuthError::Failed) => reply(535, "5.7.8", "Authentication credentials invalid"),
            Err(AuthError::Throttled) => {
                reply(421, "4.7.0", "Too many failed logins; try again later")
            }
            Err(AuthError::Temporary(_)) => reply(454, "4.7.0", "Temporary authentication failure"),
            Err(AuthError::Refused { reason }) => reply(
                535,
                "5.7.8",
                reason
                    .as_deref()
                    .unwrap_or("Authentication credentials invalid"),
            ),
        }
    }

    /// MAIL FROM: the sender rule on submission, SIZE against the limit.
    pub async fn mail(&mut self, from: ReversePath, params: Vec<String>) -> Step {
        if self.txn.is_some() {
            return reply(503, "5.5.1", "Nested MAIL command");
        }
        if self.mode == Mode::Submission && self.user.is_none() {
            return reply(530, "5.7.0", "Authentication required");
        }
        let params = match MailParams::parse(&params) {
            Ok(p) => p,
            Err(e) => return e.reply().into(),
        };
        let max = self.ctx.config.smtp.max_message_size;
        if params.size.is_some_and(|s| s > max) {
            return reply(
                552,
                "5.3.4",
                &format!("Message size exceeds fixed limit of {max} bytes"),
            );
        }
        if let Some(sender) = from.mailbox() {
            if !sender.is_ascii() && !params.smtputf8 {
                return needs_smtputf8();
            }
            if let Some(user) = &self.user {
                if let Err(r) = self.check_sender(user, sender).await {
                    return r.into();
                }
            }
        }
        self.txn = Some(Transaction::new(from, params));
        reply(250, "2.1.0", "Ok")
    }

    async fn check_sender(&self, user: &str, from: &Address) -> Result<(), Reply> {
        let config = &self.ctx.config.smtp;
        if policy::sender_allowed(config, user, from, None) {
            return Ok(());
        }
        let resolved = if config.is_local(from.domain()) {
            self.services.privileged.resolve(from).await.ok()
        } else {
            None
        };
        if policy::sender_allowed(config, user, from, resolved.as_deref()) {
            return Ok(());
        }
        tracing::warn!(user, sender = %from, peer = %self.ctx.peer, "sender address refused");
        Err(Reply::new(
            553,
            "5.7.1",
            &format!("<{from}>: Sender address rejected: not owned by user {user}"),
        ))
    }

    /// RCPT TO: the relay rule, then resolution to users (550 5.1.1 for nobody here).
    pub async fn rcpt(&mut self, rcpt: Address, params: Vec<String>) -> Step {
        let config = &self.ctx.config.smtp;
        let Some(txn) = &self.txn else {
            return reply(503, "5.5.1", "Need MAIL command first");
        };
        let params = match RcptParams::parse(&params) {
            Ok(p) => p,
            Err(e) => return e.reply().into(),
        };
        if txn.rcpts.len() >= config.max_recipients {
            return reply(452, "4.5.3", "Too many recipients");
        }
        if !rcpt.is_ascii() && !txn.params.smtputf8 {
            return needs_smtputf8();
        }
        let authenticated = self.user.is_some();
        let targets = match policy::route(
            self.mode,
            config,
            &rcpt,
            authenticated,
            self.ctx.peer.ip(),
        ) {
            Err(refused) => {
                tracing::info!(peer = %self.ctx.peer, rcpt = %rcpt, "recipient refused: {}", refused.lines.join(" "));
                return refused.into();
            }
            Ok(Route::Relay) => vec![Target::Remote(rcpt.clone())],
            Ok(Route::Local) => match self.services.privileged.resolve(&rcpt).await {
                Ok(targets) => targets,
                Err(ResolveError::Unknown) => {
                    return reply(
                        550,
                        "5.1.1",
                        &format!("<{rcpt}>: Recipient address rejected: User unknown"),
                    )
                }
                Err(ResolveError::Loop) => {
                    return reply(550, "5.4.6", &format!("<{rcpt}>: Alias expansion loop"))
                }
                Err(ResolveError::Temporary(e)) => {
                    tracing::error!(rcpt = %rcpt, "recipient lookup failed: {e}");
                    return reply(451, "4.3.0", "Temporary lookup failure; try again later");
                }
            },
        };
        if let Err(r) = policy::targets_routable(config, &rcpt, &targets) {
            return r.into();
        }
        if let Some(txn) = &mut self.txn {
            txn.rcpts.push(Rcpt {
                address: rcpt,
                targets,
                params,
            });
        }
        reply(250, "2.1.5", "Ok")
    }

    /// DATA: receive, check, deliver locally, queue the rest, then answer (SMTP: once; LMTP:
    /// once per recipient).
    pub async fn data(&mut self, conn: &mut Connection) -> Step {
        let Some(txn) = self.txn.take() else {
            return reply(503, "5.5.1", "Need MAIL command first");
        };
        if txn.rcpts.is_empty() {
            self.txn = Some(txn);
            return reply(554, "5.5.1", "No valid recipients");
        }
        let spool = match self.services.queue.spool() {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("cannot spool DATA: {e}");
                return reply(451, "4.3.0", "Local error in processing; try again later");
            }
        };
        if conn
            .write(&Reply::plain(354, "End data with <CR><LF>.<CR><LF>").encode())
            .await
            .is_err()
        {
            return Step::Close(None);
        }
        self.set_state(conn, SessionState::Data);
        let trace = self.trace_header(conn, &spool.id, &txn);
        let complete = (self.mode == Mode::Submission).then(|| MissingFields {
            message_id: format!("<{}@{}>", spool.id, self.host),
            date: super::rfc5322_now(),
        });
        let max = self.ctx.config.smtp.max_message_size;
        let received = receive::receive(conn, &spool, trace.as_bytes(), complete, max).await;
        let state = if self.user.is_some() {
            SessionState::Authenticated
        } else {
            SessionState::Established
        };
        self.set_state(conn, state);
        let (size, flaws, write_error) = match received {
            Received::Closed(why) => return Step::Close(super::farewell(why)),
            Received::Complete {
                size,
                flaws,
                write_error,
            } => (size, flaws, write_error),
        };
        let refusal = data_refusal(size, max, flaws, write_error);
        if let Some(r) = refusal {
            tracing::info!(peer = %self.ctx.peer, "message refused: {}", r.lines.join(" "));
            return self.per_recipient(&txn, r);
        }
        let envelope = ScanEnvelope {
            from: txn.from.to_string(),
            rcpts: txn.rcpts.iter().map(|r| r.address.to_string()).collect(),
            ip: Some(self.ctx.peer.ip().to_canonical().to_string()),
            helo: self.helo.as_ref().map(|h| h.as_str().to_string()),
            id: spool.id.clone(),
        };
        let services = &self.services;
        let mut spool = match scan_received(services, &spool, size, self.mode, &envelope).await {
            Ok(Some(scanned)) => scanned,
            Ok(None) => spool,
            Err(r) => return self.per_recipient(&txn, r),
        };
        self.accept(&txn, &mut spool).await
    }

    /// The message is whole on disk: local deliveries now (fsynced by storage), the rest
    /// committed to the queue (fsynced) before any 250.
    async fn accept(&self, txn: &Transaction, spool: &mut super::queue::Spool) -> Step {
        let recipients = txn.local_recipients();
        let users: Vec<String> = recipients.iter().map(|r| r.user.clone()).collect();
        let outcomes = if users.is_empty() {
            Vec::new()
        } else {
            let done = self
                .services
                .privileged
                .deliver(spool.file(), &txn.from, &recipients)
                .await;
            let services = &self.services;
            super::followups::queue_followups(services, &txn.from, spool.file(), done.followups)
                .await;
            done.outcomes
        };
        let lmtp = self.mode == Mode::Lmtp;
        if let Some(reason) = rejected_by_all(txn, &outcomes).filter(|_| !lmtp) {
            // Every recipient's filter refused it while the sender is still here: say so now
            // (RFC 5429 2.1) instead of accepting and bouncing.
            tracing::info!(id = %spool.id, from = %txn.from, "message rejected by the recipients' filters");
            return reply(550, "5.7.1", &reason);
        }
        let mut leftovers = txn.leftovers(&users, &outcomes);
        if lmtp {
            // The MTA retries what LMTP reports as failed; only remote alias targets queue.
            leftovers.retain(|r| r.local_user.is_none());
        }
        let id = spool.id.clone();
        let queued = if leftovers.is_empty() {
            Ok(())
        } else {
            let envelope = txn.envelope(&id, leftovers);
            let result = self.services.queue.commit(spool, &envelope);
            if result.is_ok() {
                self.services.wake.notify_one();
            }
            result
        };
        if let Err(e) = &queued {
            tracing::error!(id, "cannot queue: {e}");
        }
        if !lmtp {
            self.report_local_success(txn, &id, spool.file(), &users, &outcomes)
                .await;
        }
        tracing::info!(id, from = %txn.from, rcpts = txn.rcpts.len(), peer = %self.ctx.peer, "message accepted");
        if !lmtp {
            return match queued {
                Ok(()) => reply(250, "2.0.0", &format!("Ok: queued as {id}")),
                Err(_) => reply(451, "4.3.0", "Local error in processing; try again later"),
            };
        }
        let replies = txn
            .rcpts
            .iter()
            .map(|r| {
                let full_is_temporary = self.services.config.mail.quota_full_tempfail;
                lmtp_reply(r, &users, &outcomes, queued.is_ok(), &id, full_is_temporary)
            })
            .collect();
        Step::Replies(replies)
    }

    /// A success DSN for the recipients that asked for one (NOTIFY=SUCCESS) and were delivered
    /// here; the failures and relays the queue reports itself.
    async fn report_local_success(
        &self,
        txn: &Transaction,
        id: &str,
        message: &std::fs::File,
        users: &[String],
        outcomes: &[super::deliver::Outcome],
    ) {
        let delivered = txn.delivered_and_notified(users, outcomes);
        let notices: Vec<Notice> = delivered
            .iter()
            .map(|r| Notice::new(r, Action::Delivered, ""))
            .collect();
        let envelope = txn.envelope(id, Vec::new());
        let queued = super::bounce::queue_report(&self.services, &envelope, &notices, message);
        if let Err(e) = queued.await {
            tracing::error!(id, "cannot queue the delivery report: {e}");
        }
    }

    /// One reply for SMTP, the same reply per recipient for LMTP.
    fn per_recipient(&self, txn: &Transaction, r: Reply) -> Step {
        let n = if self.mode == Mode::Lmtp {
            txn.rcpts.len()
        } else {
            1
        };
        Step::Replies(vec![r; n])
    }

    fn set_state(&self, conn: &Connection, state: SessionState) {
        if let Some(h) = conn.handle() {
            h.set_state(state);
        }
    }

    /// `Received:` (RFC 5321 4.4, with RFC 3848's protocol names).
    fn trace_header(&self, conn: &Connection, id: &str, txn: &Transaction) -> String {
        let base = match (self.mode, self.esmtp) {
            (Mode::Lmtp, _) => "LMTP",
            (_, true) => "ESMTP",
            (_, false) => "SMTP",
        };
        let tls = if conn.is_tls() { "S" } else { "" };
        let auth = if self.user.is_some() { "A" } else { "" };
        let with = if base == "SMTP" && (conn.is_tls() || self.user.is_some()) {
            format!("ESMTP{tls}{auth}")
        } else {
            format!("{base}{tls}{auth}")
        };
        let helo = self.helo.as_ref().map_or("unknown", HeloName::as_str);
        let ip = self.ctx.peer.ip();
        let ip = ip.to_canonical();
        let bracket = if ip.is_ipv6() {
            format!("IPv6:{ip}")
        } else {
            ip.to_string()
        };
        let host = self.host;
        let date = super::rfc5322_now();
        let rcpt_clause = match txn.rcpts.as_slice() {
            [one] => format!("\r\n\tfor <{}>", one.address),
            _ => String::new(),
        };
        format!("Received: from {helo} ([{bracket}])\r\n\tby {host} (roost) with {with} id {id}{rcpt_clause};\r\n\t{date}\r\n")
    }
}

/// RFC 6531 3.5: a non-ASCII address needs MAIL FROM's SMTPUTF8 parameter.
fn needs_smtputf8() -> Step {
    reply(
        553,
        "5.6.7",
        "Non-ASCII address requires the SMTPUTF8 parameter on MAIL FROM",
    )
}

/// The reply that refuses received data, if anything in it is wrong. A CR or LF outside CRLF
/// refuses the whole message (what Postfix's `smtpd_forbid_bare_newline = yes` does): such
/// bytes are how SMTP smuggling (CVE-2023-51764) hides a second message in the first.
fn data_refusal(
    size: u64,
    max: u64,
    flaws: DataFlaws,
    write_error: Option<std::io::Error>,
) -> Option<Reply> {
    if size > max {
        let text = format!("Message size exceeds fixed limit of {max} bytes");
        return Some(Reply::new(552, "5.3.4", &text));
    }
    let (code, enhanced, text) = if flaws.line_too_long {
        (
            500,
            "5.5.2",
            "Line too long (RFC 5321 allows 1000 octets per line)",
        )
    } else if flaws.nul {
        (554, "5.6.0", "Message contains NUL characters")
    } else if flaws.bare_lf > 0 {
        (
            554,
            "5.6.0",
            "Message contains bare <LF>; lines must end with <CR><LF>",
        )
    } else if flaws.bare_cr > 0 {
        (
            554,
            "5.6.0",
            "Message contains bare <CR>; lines must end with <CR><LF>",
        )
    } else if let Some(e) = write_error {
        tracing::error!("spool write failed: {e}");
        (451, "4.3.0", "Local error in processing; try again later")
    } else {
        return None;
    };
    Some(Reply::new(code, enhanced, text))
}

/// The first Sieve rejection when every recipient is a local user whose filter rejected the
/// message; `None` otherwise.
fn rejected_by_all(txn: &Transaction, outcomes: &[Outcome]) -> Option<String> {
    let all_local = txn
        .rcpts
        .iter()
        .all(|r| r.targets.iter().all(|t| matches!(t, Target::Local(_))));
    let mut reasons = outcomes.iter().map(|o| match o {
        Outcome::Rejected(reason) => Some(reason.clone()),
        _ => None,
    });
    let first = reasons.next()??;
    (all_local && reasons.all(|r| r.is_some())).then_some(first)
}

/// LMTP's verdict for one recipient (RFC 2033 4.2).
fn lmtp_reply(
    rcpt: &Rcpt,
    users: &[String],
    outcomes: &[Outcome],
    queued: bool,
    id: &str,
    full_is_temporary: bool,
) -> Reply {
    for t in &rcpt.targets {
        match t {
            Target::Local(name) => {
                let outcome = users
                    .iter()
                    .position(|u| u == name)
                    .and_then(|i| outcomes.get(i));
                match outcome {
                    Some(Outcome::Delivered) => {}
                    Some(Outcome::Permanent(why)) => {
                        return Reply::new(550, "5.1.1", &format!("<{}>: {why}", rcpt.address))
                    }
                    Some(Outcome::Rejected(why)) => {
                        return Reply::new(550, "5.7.1", &format!("<{}>: {why}", rcpt.address))
                    }
                    Some(Outcome::MailboxFull) => {
                        let (code, status) = match full_is_temporary {
                            true => (452, "4.2.2"),
                            false => (552, "5.2.2"),
                        };
                        let text = format!("<{}>: Mailbox is full (quota exceeded)", rcpt.address);
                        return Reply::new(code, status, &text);
                    }
                    _ => {
                        return Reply::new(
                            451,
                            "4.2.0",
                            &format!(
                                "<{}>: Temporary delivery failure; try again later",
                                rcpt.address
                            ),
                        )
                    }
                }
            }
            Target::Remote(_) if !queued => {
                return Reply::new(
                    451,
                    "4.3.0",
                    &format!("<{}>: Local error in processing", rcpt.address),
                )
            }
            Target::Remote(_) => {}
        }
    }
    Reply::new(250, "2.0.0", &format!("<{}> Ok: {id}", rcpt.address))
}
