//! The login process's side of a session served by a worker (roost started as root): it asks
//! the master for the user's worker, hands it one end of a socketpair, and copies plaintext
//! between the client connection (where TLS ends) and the worker until the worker is done.
//!
//! Most relayed connections are idle most of the time, so a quiet direction waits for bytes
//! with no buffer ([`WaitReadable`]).

use std::net::SocketAddr;
use std::os::fd::OwnedFd;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::control::{MasterClient, Request, SpawnError};
use crate::config::Family;
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

/// Login side: has the master start this user's worker, then relays the client to it.
///
/// An `async` block rather than an `async fn`, which would keep a second copy of its
/// arguments for as long as the connection lasts.
#[allow(
    clippy::manual_async_fn,
    reason = "an async fn would store its arguments twice"
)]
pub fn relay_via_master(
    conn: Connection,
    route: Route,
    master: MasterClient,
    ticket: String,
) -> impl std::future::Future<Output = ()> + Send {
    async move {
        let Route {
            family,
            peer,
            local,
        } = route;
        let (stream, leftover, handle) = conn.into_parts();
        let Some(mut client) = stream else { return };
        let started = async {
            let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
            let request = Request::Spawn {
                ticket,
                family,
                peer,
                local,
                tls: matches!(client, Stream::Tls(_)),
            };
            master
                .spawn_worker(&request, &OwnedFd::from(theirs))
                .await?;
            ours.set_nonblocking(true)?;
            let mut worker = tokio::net::UnixStream::from_std(ours)?;
            worker.write_all(&leftover).await?;
            Ok::<_, SpawnError>(worker)
        };
        match started.await {
            Ok(worker) => relay(client, worker, handle.as_ref(), family).await,
            Err(e) => {
                let stopping = matches!(e, SpawnError::Stopping);
                if !stopping {
                    tracing::error!(%peer, "cannot start the session worker: {e}");
                }
                let bye: &[u8] = match (family, stopping) {
                    (Family::Imap, true) => b"* BYE Server shutting down.\r\n",
                    (Family::Imap, false) => {
                        b"* BYE [UNAVAILABLE] Internal error; the details are logged.\r\n"
                    }
                    (Family::Sieve, true) => b"BYE \"Server shutting down.\"\r\n",
                    (Family::Sieve, false) => {
                        b"BYE (TRYLATER) \"Internal error; the details are logged.\"\r\n"
                    }
                    (_, true) => b"-ERR [SYS/TEMP] Server shutting down.\r\n",
                    (_, false) => b"-ERR [SYS/TEMP] Internal error; the details are logged.\r\n",
                };
                let _ = client.write_all(bye).await;
            }
        }
    }
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
