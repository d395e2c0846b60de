//! IDLE (RFC 2177): the client waits, the server pushes EXISTS / EXPUNGE / FETCH as soon as the
//! folder changes on disk (inotify, whoever changed it), and says `* OK Still here` every two
//! minutes so NAT boxes and phone networks keep the connection open.

use std::time::Duration;

use roost_protocol::imap::response::{push_continuation, Response};
use roost_protocol::imap::{Event, Expect, ImapDecoder};
use roost_storage::notify::Watcher;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use super::input::{next_event, Ended};
use super::reply::{bad, ok, Tagged};
use super::selected::Selected;
use crate::listen::conn::Connection;

/// How often an idling client hears from us even when nothing changes.
const KEEPALIVE: Duration = Duration::from_secs(120);

enum Wake {
    Client(Result<Event, Ended>),
    Changed,
    Keepalive,
}

/// Runs IDLE until DONE; `Err` when the connection ended meanwhile.
pub async fn idle(
    conn: &mut Connection,
    decoder: &mut ImapDecoder,
    mut selected: Option<&mut Selected>,
    condstore: bool,
    tag: &str,
    user: &str,
) -> Result<Tagged, Ended> {
    let watcher = match selected.as_deref() {
        Some(s) => match Watcher::new(s.mailbox.watch_path()).and_then(|w| {
            // SAFETY: the watcher owns its inotify descriptor for its whole life and always
            // reports that same descriptor, which is what registering requires.
            unsafe { AsyncFd::register_with_interest(w, Interest::READABLE) }
                .map_err(|e| roost_storage::Error::io(s.mailbox.watch_path(), e.into()))
        }) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!("imap({user}): IDLE without change notification: {e}");
                None
            }
        },
        None => None,
    };
    decoder.expect(Expect::IdleDone);
    let mut waiting = Vec::new();
    push_continuation(&mut waiting, "idling");
    if conn.write(&waiting).await.is_err() {
        return Err(Ended::Closed);
    }
    let result = loop {
        let changed = async {
            match &watcher {
                Some(w) => match w.readable().await {
                    Ok(mut guard) => {
                        guard.get_inner().drain();
                        guard.clear_ready();
                    }
                    Err(_) => std::future::pending::<()>().await,
                },
                // No inotify (e.g. the per-user instance limit): poll; a re-check of an
                // unchanged maildir is three stats.
                None => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        };
        let wake = tokio::select! {
            event = next_event(conn, decoder) => Wake::Client(event),
            () = changed => Wake::Changed,
            () = tokio::time::sleep(KEEPALIVE) => Wake::Keepalive,
        };
        let mut out = Vec::new();
        match wake {
            Wake::Client(Ok(Event::IdleDone)) => break Ok(ok(tag, "Idle completed.")),
            Wake::Client(Ok(_)) => break Ok(bad(tag, "Expected DONE to end IDLE.")),
            Wake::Client(Err(ended)) => break Err(ended),
            Wake::Changed => {
                if let Some(s) = selected.as_deref_mut() {
                    // A brief pause lets a burst of file events (a delivery is several) settle.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    if let Some(w) = &watcher {
                        w.get_ref().drain();
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
        if !out.is_empty() && conn.write(&out).await.is_err() {
            break Err(Ended::Closed);
        }
    };
    decoder.expect(Expect::Command);
    result
}
