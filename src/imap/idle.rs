//! IDLE (RFC 2177): the client waits, the server pushes EXISTS / EXPUNGE / FETCH as soon as the
//! folder changes on disk (inotify, whoever changed it), and says `* OK Still here` every two
//! minutes so NAT boxes and phone networks keep the connection open.

use std::time::Duration;

use roost_protocol::imap::response::{push_continuation, Response};
use roost_protocol::imap::{Event, Expect};

use super::context::{Cx, Step};
use super::folder_watch::Subscription;
use super::input::{next_event, Ended};
use super::reply::Tagged;
use super::selected::Selected;
use crate::listen::registry::SessionState;

/// How often an idling client hears from us even when nothing changes.
const KEEPALIVE: Duration = Duration::from_secs(120);

enum Wake {
    Client(Result<Event, Ended>),
    Changed,
    Keepalive,
}

/// Runs IDLE until DONE (or the end of the connection).
pub async fn idle(
    user: &str,
    condstore: bool,
    selected: Option<&mut Selected>,
    cx: &mut Cx<'_>,
) -> Step {
    if let Some(h) = cx.conn.handle() {
        h.set_state(SessionState::Idle);
    }
    let mut watcher = selected.as_deref().and_then(|s| watch(s, user));
    cx.decoder.expect(Expect::IdleDone);
    let mut waiting = Vec::new();
    push_continuation(&mut waiting, "idling");
    let result = match cx.conn.write(&waiting).await {
        Ok(()) => wait(user, condstore, selected, watcher.as_mut(), cx).await,
        Err(_) => Err(Ended::Closed),
    };
    cx.decoder.expect(Expect::Command);
    match result {
        Ok(tagged) => Step::Reply(tagged),
        Err(ended) => Step::Ended(ended),
    }
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

/// Pushes updates until the client says DONE.
async fn wait(
    user: &str,
    condstore: bool,
    mut selected: Option<&mut Selected>,
    mut watcher: Option<&mut Subscription>,
    cx: &mut Cx<'_>,
) -> Result<Tagged, Ended> {
    loop {
        let wake = tokio::select! {
            event = next_event(cx.conn, cx.decoder) => Wake::Client(event),
            () = changed(watcher.as_deref_mut()) => Wake::Changed,
            () = tokio::time::sleep(KEEPALIVE) => Wake::Keepalive,
        };
        let mut out = Vec::new();
        match wake {
            Wake::Client(Ok(Event::IdleDone)) => return Ok(cx.ok("Idle completed.")),
            Wake::Client(Ok(_)) => return Ok(cx.bad("Expected DONE to end IDLE.")),
            Wake::Client(Err(ended)) => return Err(ended),
            Wake::Changed => {
                if let Some(s) = selected.as_deref_mut() {
                    // A brief pause lets a burst of file events (a delivery is several) settle.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    if let Some(w) = watcher.as_deref_mut() {
                        w.settle();
                    }
                    if let Err(e) = s.refresh(condstore, &mut out) {
                        tracing::error!("imap({user}): re-sync during IDLE failed: {e}");
                    }
                }
            }
            Wake::Keepalive => Response::Ok {
                code: None,
                text: "Still here",
            }
            .encode(&mut out),
        }
        if !out.is_empty() && cx.conn.write(&out).await.is_err() {
            return Err(Ended::Closed);
        }
    }
}

/// Resolves when the mailbox may have changed.
async fn changed(watcher: Option<&mut Subscription>) {
    match watcher {
        Some(w) => w.changed().await,
        // No inotify (e.g. the per-user instance limit): poll; a re-check of an unchanged
        // maildir is three stats.
        None => tokio::time::sleep(Duration::from_millis(500)).await,
    }
}
