//! The login process's side of a session served by a worker (roost started as root): it asks
//! the master for the user's worker, hands it one end of a socketpair, and copies plaintext
//! between the client connection (where TLS ends) and the worker until the worker is done.
//!
//! Most relayed connections are idle most of the time, so a quiet direction waits for bytes
//! with no buffer ([`WaitReadable`]).

use std::future::Future;
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::pin::Pin;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::control::{MasterClient, Request, SpawnError};
use crate::config::Family;
use crate::listen::acceptor::Continuation;
use crate::listen::conn::{Connection, ReadSize, Stream, WaitReadable};
use crate::listen::registry::SessionHandle;
use crate::listen::watch::CommandWatch;
use crate::session::SessionContext;

/// What the relay needs to know of the connection it serves.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    /// The protocol family of the session.
    family: Family,
    /// The client's address.
    peer: SocketAddr,
    /// Our address.
    local: SocketAddr,
}

impl Route {
    /// The route of a connection with this context.
    pub fn of(ctx: &SessionContext) -> Self {
        Self {
            family: ctx.protocol.family(),
            peer: ctx.peer,
            local: ctx.local,
        }
    }
}

/// Login side: has the master start this user's worker and hands it the session: a plain TCP
/// client's own socket ([`super::lifeline`]), or else one end of a socketpair, relayed (TLS
/// ends here, and so does a client's pipelined input read before the hand-over).
///
/// The connection is taken apart here rather than in the returned future, whose every capture
/// lasts as long as the session: a handed-over session keeps only what `follow` needs.
pub fn relay_via_master(
    conn: Connection,
    route: Route,
    master: MasterClient,
    ticket: String,
) -> Continuation {
    let (stream, leftover, handle) = conn.into_parts();
    let Some(client) = stream else {
        return Box::pin(async {});
    };
    let request = Request::Spawn {
        ticket,
        family: route.family,
        peer: route.peer,
        local: route.local,
        tls: matches!(client, Stream::Tls(_)),
    };
    match client {
        Stream::Plain(tcp) if leftover.is_empty() => {
            let sent = tcp.as_fd().try_clone_to_owned();
            let spawned = Box::pin(hand_over(master, request, sent));
            Box::pin(handed_over(tcp, handle, route, spawned))
        }
        client => {
            let relayed = Relayed {
                client,
                leftover,
                handle,
                route,
            };
            Box::pin(relay_to_worker(relayed, master, request))
        }
    }
}

/// Has the master hand the client's own socket (`sent`, a copy of its descriptor) to the
/// session's worker, with the session's lifeline; returns the login process's end of it.
async fn hand_over(
    master: MasterClient,
    request: Request,
    sent: std::io::Result<OwnedFd>,
) -> Result<std::os::unix::net::UnixStream, SpawnError> {
    let sent = sent?;
    let (ours, theirs) = super::fdpass::seqpacket_pair()?;
    master
        .spawn_worker(&request, &[sent.as_fd(), theirs.as_fd()])
        .await?;
    Ok(ours)
}

/// Waits for the hand-over (`spawned`), then follows the session until it ends.
///
/// An `async` block rather than an `async fn`, which would keep a second copy of its
/// arguments for as long as the connection lasts.
#[allow(
    clippy::manual_async_fn,
    reason = "an async fn would store its arguments twice"
)]
fn handed_over(
    tcp: tokio::net::TcpStream,
    handle: Option<SessionHandle>,
    route: Route,
    spawned: Pin<Box<impl Future<Output = Result<std::os::unix::net::UnixStream, SpawnError>>>>,
) -> impl Future<Output = ()> {
    async move {
        // Not `match spawned.await`: the box would stay allocated through the match.
        let spawned = spawned.await;
        match spawned {
            Ok(lifeline) => match tcp.into_std() {
                Ok(kept) => super::lifeline::follow(lifeline, kept, handle).await,
                Err(e) => tracing::error!(peer = %route.peer, "handing over: {e}"),
            },
            Err(e) => Box::pin(refuse(Stream::Plain(tcp), route, e)).await,
        }
    }
}

/// A connection whose session the login process relays.
struct Relayed {
    client: Stream,
    /// What the client sent past its login, for the worker.
    leftover: BytesMut,
    handle: Option<SessionHandle>,
    route: Route,
}

/// Has the master hand one end of a socketpair to the session's worker, then relays.
async fn relay_to_worker(relayed: Relayed, master: MasterClient, request: Request) {
    let Relayed {
        client,
        leftover,
        handle,
        route,
    } = relayed;
    let started = async {
        let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
        master.spawn_worker(&request, &[theirs.as_fd()]).await?;
        ours.set_nonblocking(true)?;
        let mut worker = tokio::net::UnixStream::from_std(ours)?;
        worker.write_all(&leftover).await?;
        Ok::<_, SpawnError>(worker)
    };
    match started.await {
        Ok(worker) => relay(client, worker, handle.as_ref(), route.family).await,
        Err(e) => refuse(client, route, e).await,
    }
}

/// Tells the client that its session cannot start: the protocol's goodbye, an error logged
/// unless the server is stopping.
async fn refuse(mut client: Stream, route: Route, e: SpawnError) {
    let stopping = matches!(e, SpawnError::Stopping);
    if !stopping {
        tracing::error!(peer = %route.peer, "cannot start the session worker: {e}");
    }
    let bye: &[u8] = match (route.family, stopping) {
        (Family::Imap, true) => b"* BYE Server shutting down.\r\n",
        (Family::Imap, false) => b"* BYE [UNAVAILABLE] Internal error; the details are logged.\r\n",
        (Family::Sieve, true) => b"BYE \"Server shutting down.\"\r\n",
        (Family::Sieve, false) => b"BYE (TRYLATER) \"Internal error; the details are logged.\"\r\n",
        (_, true) => b"-ERR [SYS/TEMP] Server shutting down.\r\n",
        (_, false) => b"-ERR [SYS/TEMP] Internal error; the details are logged.\r\n",
    };
    let _ = client.write_all(bye).await;
}

/// Copies bytes both ways until the worker side ends (it has said its last word, BYE or +OK,
/// and exited). A client that hangs up first only closes the worker's input, so the worker
/// still finishes what it was doing (a POP3 update, a delivery) before the relay ends. Byte
/// counts reach the session registry as they flow.
async fn relay(
    client: Stream,
    worker: tokio::net::UnixStream,
    handle: Option<&SessionHandle>,
    family: Family,
) {
    let worker = worker.into_split();
    match client {
        Stream::Plain(tcp) => relay_halves(tcp.into_split(), worker, handle, family).await,
        other => relay_halves(tokio::io::split(other), worker, handle, family).await,
    }
}

/// [`relay`] over the halves of both connections.
async fn relay_halves<CR, CW, WR, WW>(
    (client_read, client_write): (CR, CW),
    (worker_read, worker_write): (WR, WW),
    handle: Option<&SessionHandle>,
    family: Family,
) where
    CR: AsyncRead + WaitReadable + Unpin,
    CW: AsyncWrite + Unpin,
    WR: AsyncRead + WaitReadable + Unpin,
    WW: AsyncWrite + Unpin,
{
    let mut watch = CommandWatch::new(family);
    let upstream = pump(client_read, worker_write, |bytes| {
        if let Some(h) = handle {
            h.add_in(bytes.len());
            watch.feed(bytes, h);
        }
    });
    let downstream = pump(worker_read, client_write, |bytes| {
        if let Some(h) = handle {
            h.add_out(bytes.len());
        }
    });
    // An admin's kick drops both directions: the client is disconnected and the worker reads
    // EOF, so it ends as if the client had hung up (POP3 then deletes nothing).
    let kicked = async {
        match handle {
            Some(h) => h.kicked().cancelled_owned().await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(upstream, downstream);
    tokio::select! {
        _ = &mut downstream => {}
        _ = kicked => {}
        _ = &mut upstream => downstream.await,
    }
}

/// Copies until EOF or error, then shuts the writing side down; `seen` looks at what passed.
/// The buffer follows the traffic ([`ReadSize`]): up to 16 kB during a download, and none
/// while the direction is quiet ([`WaitReadable`]).
async fn pump<R, W>(mut from: R, mut to: W, mut seen: impl FnMut(&[u8]))
where
    R: AsyncRead + WaitReadable + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut size = ReadSize::default();
    let mut buf = Vec::new();
    loop {
        if size.get() == ReadSize::MIN {
            buf = Vec::new();
            if from.wait_readable().await.is_err() {
                break;
            }
        }
        if buf.len() != size.get() {
            buf = vec![0u8; size.get()];
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
        seen(&buf[..n]);
        size.after(n);
    }
    let _ = to.shutdown().await;
}
