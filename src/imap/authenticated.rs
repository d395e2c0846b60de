//! The authenticated and selected states (RFC 3501 6.3, 6.4): one loop that reads a command,
//! runs it against the user's store, brings the client up to date with changes made elsewhere,
//! and answers. Each command family lives in its own module; this one only dispatches.

use roost_protocol::imap::imap_types::command::SelectParameter;
use roost_protocol::imap::imap_types::command::{Command, CommandBody};
use roost_protocol::imap::imap_types::core::Charset;
use roost_protocol::imap::imap_types::extensions::enable::CapabilityEnable;
use roost_protocol::imap::imap_types::extensions::sort::SortCriterion;
use roost_protocol::imap::imap_types::extensions::thread::ThreadingAlgorithm;
use roost_protocol::imap::imap_types::search::SearchKey;
use roost_protocol::imap::response::{push_continuation, Code, Response};
use roost_protocol::imap::{Event, Extras, ImapDecoder};
use roost_storage::Store;

use super::changes;
use super::fetch::{self, FetchArgs};
use super::idle;
use super::input::{bye, farewell, next_event, rejected, Ended};
use super::mailboxes::{self, mailbox_name};
use super::reply::{bad, no, ok, ok_code, storage_failure, Tagged};
use super::selected::{SelectStyle, Selected};
use super::AUTHENTICATED_CAPABILITIES;
use super::{search, sort, thread};
use crate::listen::conn::Connection;
use crate::listen::registry::SessionState;
use crate::session::UserSession;

/// One logged-in IMAP session.
struct Session<'u> {
    user: &'u UserSession,
    store: Store,
    selected: Option<Selected>,
    /// CONDSTORE is on (ENABLE CONDSTORE, SELECT (CONDSTORE), or a MODSEQ item used).
    condstore: bool,
    /// ENABLE QRESYNC was sent.
    qresync: bool,
    /// ENABLE UTF8=ACCEPT or IMAP4rev2: mailbox names are UTF-8 on the wire.
    utf8: bool,
    /// ENABLE IMAP4rev2 (RFC 9051) was sent.
    rev2: bool,
}

/// What the loop does after a command.
enum Flow {
    /// Send the tagged line (after pending updates) and read on.
    Reply(Tagged),
    /// Send it and end the session.
    Logout(Tagged),
    /// Everything was sent already.
    Sent,
}

/// Runs the authenticated session until LOGOUT, disconnect, timeout or shutdown.
pub async fn run(conn: &mut Connection, user: &UserSession) {
    let name = &user.user.name;
    let store = match user.open_store() {
        Ok(store) => store,
        Err(e) => {
            tracing::error!("imap({name}): cannot open mail store: {e}");
            let mut line = Vec::new();
            Response::Bye {
                code: Some(Code::ServerBug),
                text: "Cannot open your mailbox; the error is logged.",
            }
            .encode(&mut line);
            let _ = conn.write(&line).await;
            return;
        }
    };
    if let Err(e) = mailboxes::ensure_special_folders(&store) {
        tracing::warn!("imap({name}): cannot create the special-use folders: {e}");
    }
    let mut session = Session {
        user,
        store,
        selected: None,
        condstore: false,
        qresync: false,
        utf8: false,
        rev2: false,
    };
    let mut decoder = ImapDecoder::new(user.max_literal, super::MAX_COMMAND_LINE);
    let mut bad_commands = 0;
    loop {
        let event = match next_event(conn, &mut decoder).await {
            Ok(event) => event,
            Err(ended) => {
                tracing::info!("imap({name}): Disconnected: {}", ended_text(&ended));
                farewell(conn, ended).await;
                return;
            }
        };
        let mut out = Vec::new();
        let flow = match event {
            Event::Command(cmd) => {
                if let Some(h) = conn.handle() {
                    h.set_command(cmd.body.name());
                }
                let extras = decoder.take_extras();
                match session
                    .command(conn, &mut decoder, *cmd, &extras, &mut out)
                    .await
                {
                    Ok(flow) => flow,
                    Err(ended) => {
                        tracing::info!("imap({name}): Disconnected: {}", ended_text(&ended));
                        farewell(conn, ended).await;
                        return;
                    }
                }
            }
            Event::LiteralAccepted => {
                let mut line = Vec::new();
                push_continuation(&mut line, "Ready for literal data");
                if conn.write(&line).await.is_err() {
                    return;
                }
                continue;
            }
            Event::Rejected { tag, reason } => {
                match rejected(conn, &mut bad_commands, tag.as_deref(), &reason).await {
                    Some(reply) => Flow::Reply(reply),
                    None => return,
                }
            }
            Event::Overflow { reason } => {
                // Only the pre-login decoder ends a connection this way; say why all the same.
                let _ = conn.write(&bye(&reason)).await;
                return;
            }
            Event::AuthenticateData(_) | Event::IdleDone => continue,
        };
        decoder.set_saved(
            session
                .selected
                .as_ref()
                .map(Selected::saved_sets)
                .unwrap_or_default(),
        );
        if let Some(h) = conn.handle() {
            h.set_state(match &session.selected {
                Some(s) => SessionState::Selected(s.name.clone()),
                None => SessionState::Authenticated,
            });
        }
        match flow {
            Flow::Reply(tagged) => {
                out.extend(tagged);
                if conn.write(&out).await.is_err() {
                    return;
                }
            }
            Flow::Sent => {}
            Flow::Logout(tagged) => {
                out.extend(bye("Logging out"));
                out.extend(tagged);
                let _ = conn.write(&out).await;
                tracing::info!("imap({name}): Disconnected: Logged out");
                return;
            }
        }
    }
}

fn ended_text(ended: &Ended) -> &'static str {
    match ended {
        Ended::Closed => "Connection closed",
        Ended::IdleTimeout => "Disconnected for inactivity",
        Ended::Shutdown => "Server shutting down",
    }
}

impl Session<'_> {
    fn name(&self) -> &str {
        &self.user.user.name
    }

    /// Runs one command; untagged data goes to `out` (or straight to the client for FETCH).
    async fn command(
        &mut self,
        conn: &mut Connection,
        decoder: &mut ImapDecoder,
        cmd: Command<'_>,
        extras: &Extras,
        out: &mut Vec<u8>,
    ) -> Result<Flow, Ended> {
        let tag = cmd.tag.as_ref().to_string();
        let tag = tag.as_str();
        let utf8 = self.utf8;
        // IMAP4rev2 answers every SEARCH with ESEARCH (RFC 9051 7.3.4).
        let returns = extras
            .search_return
            .clone()
            .or_else(|| self.rev2.then(Vec::new));
        // Non-UID FETCH, STORE and SEARCH must not report expunges (RFC 3501 7.4.1); the
        // client hears of changes at its next command instead.
        let mut report_changes = true;
        let tagged = match cmd.body {
            CommandBody::Capability => {
                Response::Capability(AUTHENTICATED_CAPABILITIES).encode(out);
                ok(tag, "Capability completed.")
            }
            CommandBody::Noop => ok(tag, "NOOP completed."),
            CommandBody::Check => ok(tag, "Check completed."),
            CommandBody::Logout => return Ok(Flow::Logout(ok(tag, "Logout completed."))),
            CommandBody::Id { .. } => {
                Response::Id(&[("name", "roost")]).encode(out);
                ok(tag, "ID completed.")
            }
            CommandBody::Enable { capabilities } => {
                let mut enabled = Vec::new();
                for cap in capabilities.as_ref() {
                    if matches!(cap, CapabilityEnable::CondStore) {
                        self.condstore = true;
                        enabled.push("CONDSTORE");
                    } else if matches!(cap, CapabilityEnable::Utf8(_)) {
                        self.utf8 = true;
                        enabled.push("UTF8=ACCEPT");
                    } else if cap.to_string().eq_ignore_ascii_case("IMAP4rev2") {
                        self.rev2 = true;
                        self.utf8 = true;
                        enabled.push("IMAP4rev2");
                    } else if cap.to_string().eq_ignore_ascii_case("QRESYNC") {
                        // QRESYNC implies CONDSTORE (RFC 7162 3.2.3).
                        self.condstore = true;
                        self.qresync = true;
                        if let Some(s) = self.selected.as_mut() {
                            s.qresync = true;
                        }
                        enabled.push("QRESYNC");
                    }
                }
                Response::Enabled(&enabled).encode(out);
                ok(tag, "Enabled.")
            }
            CommandBody::Namespace => mailboxes::namespace(tag, out),
            CommandBody::Compress { .. } => {
                if conn.is_deflating() {
                    no(
                        tag,
                        Some(Code::CompressionActive),
                        "DEFLATE is already active.",
                    )
                } else {
                    // The OK goes out uncompressed; everything after it is deflated.
                    out.extend(ok(tag, "DEFLATE active."));
                    if conn.write(out).await.is_err() {
                        return Err(Ended::Closed);
                    }
                    out.clear();
                    if let Err(e) = conn.start_deflate() {
                        tracing::warn!("imap({}): COMPRESS failed: {e}", self.name());
                        return Err(Ended::Closed);
                    }
                    return Ok(Flow::Sent);
                }
            }
            CommandBody::Login { .. } | CommandBody::Authenticate { .. } => {
                bad(tag, "Already logged in.")
            }
            CommandBody::StartTLS => bad(tag, "STARTTLS is only allowed before login."),
            CommandBody::Select {
                mailbox,
                parameters,
            } => blocking(|| self.select(&mailbox, &parameters, false, tag, out)),
            CommandBody::Examine {
                mailbox,
                parameters,
            } => blocking(|| self.select(&mailbox, &parameters, true, tag, out)),
            CommandBody::Create { mailbox } => match mailbox_name(&mailbox, utf8) {
                Ok(name) if name == "INBOX" => {
                    no(tag, Some(Code::AlreadyExists), "INBOX always exists.")
                }
                Ok(name) => match self.store.folders().create(&name) {
                    Ok(()) => ok(tag, "Create completed."),
                    Err(e) => storage_failure(tag, self.name(), &e),
                },
                Err(why) => no(tag, Some(Code::Cannot), why),
            },
            CommandBody::Delete { mailbox } => match mailbox_name(&mailbox, utf8) {
                Ok(name) if name == "INBOX" => mailboxes::cannot_delete_inbox(tag),
                Ok(name) => {
                    if self.selected.as_ref().is_some_and(|s| s.name == name) {
                        self.selected = None;
                        Response::Ok {
                            code: Some(Code::Closed),
                            text: "The deleted mailbox was selected.",
                        }
                        .encode(out);
                    }
                    match self.store.folders().delete(&name) {
                        Ok(()) => ok(tag, "Delete completed."),
                        Err(e) => storage_failure(tag, self.name(), &e),
                    }
                }
                Err(why) => no(tag, Some(Code::Cannot), why),
            },
            CommandBody::Rename { from, to } => {
                match (mailbox_name(&from, utf8), mailbox_name(&to, utf8)) {
                    (Ok(from), Ok(to)) => {
                        let user = self.user.user.name.clone();
                        match mailboxes::rename(&mut self.store, &from, &to) {
                            Ok(()) => ok(tag, "Rename completed."),
                            Err(e) => storage_failure(tag, &user, &e),
                        }
                    }
                    (Err(why), _) | (_, Err(why)) => no(tag, Some(Code::Cannot), why),
                }
            }
            CommandBody::Subscribe { ref mailbox } | CommandBody::Unsubscribe { ref mailbox } => {
                let subscribe = matches!(cmd.body, CommandBody::Subscribe { .. });
                match mailbox_name(mailbox, utf8) {
                    Ok(name) => match self.store.set_subscribed(&name, subscribe) {
                        Ok(()) => ok(
                            tag,
                            if subscribe {
                                "Subscribe completed."
                            } else {
                                "Unsubscribe completed."
                            },
                        ),
                        Err(e) => storage_failure(tag, self.name(), &e),
                    },
                    Err(why) => no(tag, Some(Code::Cannot), why),
                }
            }
            CommandBody::List {
                reference,
                mailbox_wildcard,
            } => blocking(|| {
                mailboxes::list(
                    &self.store,
                    &reference,
                    &mailbox_wildcard,
                    false,
                    extras,
                    self.utf8,
                    tag,
                    self.name(),
                    out,
                )
            }),
            CommandBody::Lsub {
                reference,
                mailbox_wildcard,
            } => blocking(|| {
                mailboxes::list(
                    &self.store,
                    &reference,
                    &mailbox_wildcard,
                    true,
                    &Extras::default(),
                    self.utf8,
                    tag,
                    self.name(),
                    out,
                )
            }),
            CommandBody::Status {
                mailbox,
                item_names,
            } => match mailbox_name(&mailbox, utf8) {
                Ok(name) => {
                    match blocking(|| {
                        mailboxes::status(&self.store, &name, &item_names, self.utf8, out)
                    }) {
                        Ok(()) => ok(tag, "Status completed."),
                        Err(e) => storage_failure(tag, self.name(), &e),
                    }
                }
                Err(why) => no(tag, Some(Code::Cannot), why),
            },
            CommandBody::Append {
                mailbox,
                flags,
                date,
                message,
            } => match mailbox_name(&mailbox, utf8) {
                Ok(name) => blocking(|| {
                    changes::append(
                        &self.store,
                        &name,
                        &flags,
                        date.as_ref(),
                        &message,
                        tag,
                        self.name(),
                    )
                }),
                Err(why) => no(tag, Some(Code::Cannot), why),
            },
            CommandBody::Idle => {
                let user = self.user.user.name.clone();
                if let Some(h) = conn.handle() {
                    h.set_state(SessionState::Idle);
                }
                let tagged = idle::idle(
                    conn,
                    decoder,
                    self.selected.as_mut(),
                    self.condstore,
                    tag,
                    &user,
                )
                .await?;
                return Ok(Flow::Reply(tagged));
            }
            CommandBody::Unselect | CommandBody::Close => {
                let closing = matches!(cmd.body, CommandBody::Close);
                match self.selected.take() {
                    None => bad(tag, "No mailbox selected."),
                    Some(mut s) => {
                        if closing && !s.read_only {
                            let doomed: Vec<u32> = s
                                .messages
                                .iter()
                                .filter(|m| m.flags.contains(roost_storage::Flags::DELETED))
                                .map(|m| m.uid)
                                .collect();
                            // CLOSE expunges silently (RFC 3501 6.4.2).
                            if let Err(e) = changes::expunge_uids(&mut s, &doomed, &mut Vec::new())
                            {
                                return Ok(Flow::Reply(storage_failure(tag, self.name(), &e)));
                            }
                        }
                        report_changes = false;
                        ok(
                            tag,
                            if closing {
                                "Close completed."
                            } else {
                                "Unselect completed."
                            },
                        )
                    }
                }
            }
            body => match self.selected.as_mut() {
                None => {
                    let name = body.name();
                    match body {
                        CommandBody::Fetch { .. }
                        | CommandBody::Store { .. }
                        | CommandBody::Search { .. }
                        | CommandBody::Sort { .. }
                        | CommandBody::Thread { .. }
                        | CommandBody::Copy { .. }
                        | CommandBody::Move { .. }
                        | CommandBody::Expunge
                        | CommandBody::ExpungeUid { .. } => bad(tag, "No mailbox selected."),
                        _ => bad(tag, &format!("{name} is not supported by this server.")),
                    }
                }
                Some(selected) => {
                    let user = &self.user.user.name;
                    match body {
                        CommandBody::Fetch {
                            sequence_set,
                            macro_or_item_names,
                            uid,
                            modifiers,
                        } => {
                            report_changes = uid;
                            let args = FetchArgs {
                                set: &sequence_set,
                                items: &macro_or_item_names,
                                uid,
                                modifiers: &modifiers,
                            };
                            fetch::fetch(conn, selected, &mut self.condstore, user, tag, args, out)
                                .await
                                .map_err(|_| Ended::Closed)?
                        }
                        CommandBody::Store {
                            sequence_set,
                            kind,
                            response,
                            flags,
                            uid,
                            modifiers,
                        } => {
                            report_changes = uid;
                            blocking(|| {
                                changes::store(
                                    selected,
                                    &mut self.condstore,
                                    &sequence_set,
                                    &kind,
                                    &response,
                                    &flags,
                                    uid,
                                    &modifiers,
                                    tag,
                                    user,
                                    out,
                                )
                            })
                        }
                        CommandBody::Search {
                            charset,
                            criteria,
                            uid,
                        } => {
                            report_changes = uid;
                            blocking(|| {
                                search::search(
                                    selected,
                                    charset.as_ref(),
                                    criteria.as_ref(),
                                    uid,
                                    returns.as_deref(),
                                    tag,
                                    user,
                                    out,
                                )
                            })
                        }
                        CommandBody::Sort {
                            sort_criteria,
                            charset,
                            search_criteria,
                            uid,
                        } => {
                            report_changes = uid;
                            blocking(|| {
                                sort_command(
                                    selected,
                                    sort_criteria.as_ref(),
                                    &charset,
                                    search_criteria.as_ref(),
                                    uid,
                                    extras.search_return.as_deref(),
                                    tag,
                                    user,
                                    out,
                                )
                            })
                        }
                        CommandBody::Thread {
                            algorithm,
                            charset,
                            search_criteria,
                            uid,
                        } => {
                            report_changes = uid;
                            blocking(|| {
                                thread_command(
                                    selected,
                                    &algorithm,
                                    &charset,
                                    search_criteria.as_ref(),
                                    uid,
                                    tag,
                                    user,
                                    out,
                                )
                            })
                        }
                        CommandBody::Copy {
                            ref sequence_set,
                            ref mailbox,
                            uid,
                        }
                        | CommandBody::Move {
                            ref sequence_set,
                            ref mailbox,
                            uid,
                        } => {
                            let moving = matches!(body, CommandBody::Move { .. });
                            match mailbox_name(mailbox, utf8) {
                                Ok(dest) => blocking(|| {
                                    changes::copy_or_move(
                                        &self.store,
                                        selected,
                                        sequence_set,
                                        &dest,
                                        uid,
                                        moving,
                                        tag,
                                        user,
                                        out,
                                    )
                                }),
                                Err(why) => no(tag, Some(Code::Cannot), why),
                            }
                        }
                        CommandBody::Expunge => {
                            blocking(|| changes::expunge(selected, None, tag, user, out))
                        }
                        CommandBody::ExpungeUid { sequence_set } => blocking(|| {
                            changes::expunge(selected, Some(&sequence_set), tag, user, out)
                        }),
                        other => bad(
                            tag,
                            &format!("{} is not supported by this server.", other.name()),
                        ),
                    }
                }
            },
        };
        if report_changes {
            if let Some(selected) = self.selected.as_mut() {
                let condstore = self.condstore;
                if let Err(e) = blocking(|| selected.refresh(condstore, out)) {
                    tracing::error!("imap({}): re-sync failed: {e}", self.user.user.name);
                }
            }
        }
        Ok(Flow::Reply(tagged))
    }

    /// SELECT and EXAMINE.
    fn select(
        &mut self,
        mailbox: &roost_protocol::imap::imap_types::mailbox::Mailbox<'_>,
        parameters: &[SelectParameter],
        read_only: bool,
        tag: &str,
        out: &mut Vec<u8>,
    ) -> Tagged {
        if self.selected.take().is_some() && (self.qresync || self.rev2) {
            Response::Ok {
                code: Some(Code::Closed),
                text: "Previous mailbox closed.",
            }
            .encode(out);
        }
        let mut resync = None;
        for p in parameters {
            match p {
                SelectParameter::CondStore => self.condstore = true,
                SelectParameter::QResync {
                    uid_validity,
                    mod_sequence_value,
                    known_uids,
                    ..
                } => {
                    if !self.qresync {
                        return bad(tag, "QRESYNC must be enabled first (ENABLE QRESYNC).");
                    }
                    resync = Some((uid_validity.get(), mod_sequence_value.get(), known_uids));
                }
            }
        }
        let name = match mailbox_name(mailbox, self.utf8) {
            Ok(name) => name,
            Err(why) => return no(tag, Some(Code::Cannot), why),
        };
        let mut untagged = Vec::new();
        let style = SelectStyle {
            rev2: self.rev2,
            utf8: self.utf8,
        };
        match Selected::open(&self.store, &name, read_only, style, &mut untagged) {
            Ok(mut selected) => {
                out.extend(untagged);
                selected.qresync = self.qresync;
                if let Some((validity, modseq, known)) = resync {
                    if validity == selected.uidvalidity {
                        selected.resync(modseq, known.as_ref(), out);
                    }
                }
                let code = selected.access_code();
                self.selected = Some(selected);
                let verb = if read_only { "Examine" } else { "Select" };
                ok_code(tag, code, &format!("{verb} completed."))
            }
            Err(e) => storage_failure(tag, self.name(), &e),
        }
    }
}

/// SORT (RFC 5256): the matching messages in the requested order.
#[allow(clippy::too_many_arguments)]
fn sort_command(
    selected: &mut Selected,
    criteria: &[SortCriterion],
    charset: &Charset<'_>,
    keys: &[SearchKey<'_>],
    uid: bool,
    returns: Option<&[String]>,
    tag: &str,
    user: &str,
    out: &mut Vec<u8>,
) -> Tagged {
    let hits = match search::find(selected, Some(charset), keys, tag, user) {
        Ok(hits) => hits,
        Err(tagged) => return tagged,
    };
    match sort::sort(selected, &hits, criteria) {
        Ok(order) => {
            let numbers: Vec<u32> = order
                .iter()
                .map(|&i| {
                    if uid {
                        selected.messages[i].uid
                    } else {
                        i as u32 + 1
                    }
                })
                .collect();
            if let Some(options) = returns {
                search::esearch(tag, uid, &numbers, options, None, true, out);
                return ok(tag, "Sort completed.");
            }
            Response::Sort(&numbers).encode(out);
            ok(tag, "Sort completed.")
        }
        Err(e) => storage_failure(tag, user, &e),
    }
}

/// THREAD (RFC 5256): ORDEREDSUBJECT or REFERENCES.
#[allow(clippy::too_many_arguments)]
fn thread_command(
    selected: &mut Selected,
    algorithm: &ThreadingAlgorithm<'_>,
    charset: &Charset<'_>,
    keys: &[SearchKey<'_>],
    uid: bool,
    tag: &str,
    user: &str,
    out: &mut Vec<u8>,
) -> Tagged {
    let hits = match search::find(selected, Some(charset), keys, tag, user) {
        Ok(hits) => hits,
        Err(tagged) => return tagged,
    };
    let uids: Vec<u32> = selected.messages.iter().map(|m| m.uid).collect();
    let number = |i: usize| if uid { uids[i] } else { i as u32 + 1 };
    match thread::thread(selected, &hits, algorithm, number) {
        Ok(Some(threads)) => {
            Response::Thread(&threads).encode(out);
            ok(tag, "Thread completed.")
        }
        Ok(None) => bad(tag, "Unknown threading algorithm."),
        Err(e) => storage_failure(tag, user, &e),
    }
}

/// Runs storage work (file locks, fsync, directory listings) without stalling the other
/// sessions on this runtime thread: on the multi-threaded runtime of single-process mode the
/// thread hands its other tasks away meanwhile; a worker runs one session and just calls it.
pub(super) fn blocking<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}
