//! IDLE (RFC 2177): the client waits, the server pushes EXISTS / EXPUNGE / FETCH as soon as the
//! folder changes on disk (inotify, whoever changed it), and says `* OK Still here` every two
//! minutes so NAT boxes and phone networks keep the connection open.
//!
//! The IDLE command only starts the wait ([`start`]): the session loop then waits in place of
//! reading the next command ([`wake`]), so an idling connection holds no command's state
//! besides its [`Idling`] (the tag and the folder subscription). Most connections of a mail
//! server sit here; this keeps each of them to what waiting needs.

use std::time::Duration;

use roost_protocol::imap::response::{push_continuation, Response};
use roost_protocol::imap::{Event, Expect, ImapDecoder};

use super::context::{Cx, Step};
use super::folder_watch::Subscription;
use super::input::{next_event, Ended};
use super::reply::{self, Tagged};
use super::selected::Selected;
use crate::listen::conn::Connection;
use crate::listen::registry::SessionState;

/// How often an idling client hears from us even when nothing changes.
const KEEPALIVE: Duration = Duration::from_secs(120);

/// A brief pause after a change notification, so a burst of file events (a delivery is
/// several) is reported once.
const SETTLE: Duration = Duration::from_millis(20);

/// A session in IDLE: what it needs until DONE.
pub struct Idling {
    /// The IDLE command's tag, for the tagged line after DONE.
    tag: String,
    /// Change notification for the selected mailbox (`None`: nothing selected, or no inotify).
    watcher: Option<Subscription>,
}

/// What ended one wait of an idling session.
pub enum Wake {
    /// The client sent something (DONE, we hope), or the connection ended.
    Client(Result<Event, Ended>),
    /// The client sent something, not read yet: read it ([`next_event`]).
    Readable,
    /// The selected mailbox may have changed.
    Changed,
    /// Two quiet minutes: time for `* OK Still here`.
    Keepalive,
}

/// Starts IDLE: the continuation goes out with the pending responses, and the session waits.
pub fn start(user: &str, selected: Option<&Selected>, cx: &mut Cx<'_>) -> Step {
    if let Some(h) = cx.conn.handle() {
        h.set_state(SessionState::Idle);
    }
    let watcher = selected.and_then(|s| watch(s, user));
    cx.decoder.expect(Expect::IdleDone);
    push_continuation(&mut cx.out, "idling");
    Step::Idle(Idling {
        tag: cx.tag.clone(),
        watcher,
    })
}

/// Waits for the next thing an idling session must act on; `selected`: whether a mailbox is
/// selected (without one, nothing can change).
///
/// On a plain socket it waits for readability only, with one timer: an idling connection
/// then holds no read buffer and no reading state (boxed where a TLS connection must read).
pub async fn wake(
    idling: &mut Idling,
    selected: bool,
    conn: &mut Connection,
    decoder: &mut ImapDecoder,
) -> Wake {
    if let Some(event) = decoder.next_event() {
        return Wake::Client(Ok(event));
    }
    let silence = conn.silence_allowed();
    let (wait, quiet) = if silence <= KEEPALIVE {
        (silence, Wake::Client(Err(Ended::IdleTimeout)))
    } else {
        (KEEPALIVE, Wake::Keepalive)
    };
    if conn.can_wait_readable() {
        return tokio::select! {
            r = conn.client_readable() => match r {
                Ok(()) => Wake::Readable,
                Err(ended) => Wake::Client(Err(ended)),
            },
            () = changed(idling.watcher.as_mut(), selected) => Wake::Changed,
            () = tokio::time::sleep(wait) => quiet,
        };
    }
    Box::pin(read_or_wake(idling, selected, conn, decoder)).await
}

/// [`wake`] where only reading tells whether the client sent something (TLS, COMPRESS).
async fn read_or_wake(
    idling: &mut Idling,
    selected: bool,
    conn: &mut Connection,
    decoder: &mut ImapDecoder,
) -> Wake {
    tokio::select! {
        event = next_event(conn, decoder) => Wake::Client(event),
        () = changed(idling.watcher.as_mut(), selected) => Wake::Changed,
        () = tokio::time::sleep(KEEPALIVE) => Wake::Keepalive,
    }
}

impl Idling {
    /// After a change notification: lets the burst of file events settle.
    pub async fn settle(&mut self) {
        tokio::time::sleep(SETTLE).await;
        if let Some(w) = self.watcher.as_mut() {
            w.settle();
        }
    }

    /// The client's answer ended IDLE: the tagged line for it (`DONE` is the only right one).
    pub fn finish(self, decoder: &mut ImapDecoder, event: &Event) -> Tagged {
        decoder.expect(Expect::Command);
        match event {
            Event::IdleDone => reply::ok(&self.tag, "Idle completed."),
            _ => reply::bad(&self.tag, "Expected DONE to end IDLE."),
        }
    }
}

/// `* OK Still here`.
pub fn keepalive() -> Vec<u8> {
    let mut out = Vec::new();
    Response::Ok {
        code: None,
        text: "Still here",
    }
    .encode(&mut out);
    out
}

/// Change notification for the selected mailbox; `None` (and a log line) where there is none.
fn watch(selected: &Selected, user: &str) -> Option<Subscription> {
    let path = selected.view.shared().watch_path();
    match Subscription::new(path) {
        Ok(subscription) => Some(subscription),
        Err(e) => {
            tracing::warn!(
                "imap({user}): IDLE without change notification: {}: {e}",
                path.display()
            );
            None
        }
    }
}

/// Resolves when the selected mailbox may have changed; never without one.
async fn changed(watcher: Option<&mut Subscription>, selected: bool) {
    match (selected, watcher) {
        (false, _) => std::future::pending().await,
        (true, Some(w)) => w.changed().await,
        // No inotify (e.g. the per-user instance limit): poll; a re-check of an unchanged
        // maildir is three stats.
        (true, None) => tokio::time::sleep(Duration::from_millis(500)).await,
    }
}
