//! A client connection as sessions see it: a byte stream (plain TCP, TLS, or the socket a worker
//! process was handed), a read buffer, the idle timeout and the shutdown signal raced against
//! every read, byte counting for the registry, and the STARTTLS swap.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use roost_protocol::line::{Line, LineDecoder};

use super::registry::SessionHandle;

/// The transport under a session.
pub enum Stream {
    /// Unencrypted TCP.
    Plain(TcpStream),
    /// TLS over TCP (implicit, or after STARTTLS/STLS).
    Tls(Box<TlsStream<TcpStream>>),
    /// The socket between the listener process and a per-user worker.
    Unix(UnixStream),
}

macro_rules! each_stream {
    ($self:ident, $s:ident => $e:expr) => {
        match $self.get_mut() {
            Stream::Plain($s) => $e,
            Stream::Tls($s) => $e,
            Stream::Unix($s) => $e,
        }
    };
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        each_stream!(self, s => Pin::new(s).poll_read(cx, buf))
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        each_stream!(self, s => Pin::new(s).poll_write(cx, buf))
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each_stream!(self, s => Pin::new(s).poll_flush(cx))
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each_stream!(self, s => Pin::new(s).poll_shutdown(cx))
    }
}

/// How waiting for client bytes ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Readable {
    /// New bytes are in the buffer.
    Data,
    /// The client closed the connection.
    Eof,
    /// The client was silent for the whole idle timeout.
    IdleTimeout,
    /// The server is shutting down.
    Shutdown,
}

/// Free buffer space ensured before each read.
const READ_CHUNK: usize = 16 * 1024;

/// A session's connection.
pub struct Connection {
    stream: Option<Stream>,
    buffer: BytesMut,
    idle_timeout: Duration,
    shutdown: CancellationToken,
    handle: Option<SessionHandle>,
}

impl Connection {
    /// Wraps a stream; `handle` (absent in a worker) receives byte counts.
    pub fn new(
        stream: Stream,
        idle_timeout: Duration,
        shutdown: CancellationToken,
        handle: Option<SessionHandle>,
    ) -> Self {
        Self {
            stream: Some(stream),
            buffer: BytesMut::with_capacity(1024),
            idle_timeout,
            shutdown,
            handle,
        }
    }

    /// Unprocessed bytes from the client.
    pub fn buffer(&mut self) -> &mut BytesMut {
        &mut self.buffer
    }

    /// The registry handle, if this process has one.
    pub fn handle(&self) -> Option<&SessionHandle> {
        self.handle.as_ref()
    }

    /// Whether the transport is encrypted.
    pub fn is_tls(&self) -> bool {
        matches!(self.stream, Some(Stream::Tls(_)))
    }

    fn stream(&mut self) -> io::Result<&mut Stream> {
        self.stream.as_mut().ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotConnected, "TLS handshake failed earlier")
        })
    }

    /// Waits for more client bytes, the idle timeout, or shutdown, whichever comes first.
    pub async fn read_more(&mut self) -> io::Result<Readable> {
        let idle = self.idle_timeout;
        let token = self.shutdown.clone();
        self.buffer.reserve(READ_CHUNK);
        let Self { stream, buffer, .. } = self;
        let stream = stream
            .as_mut()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "no stream"))?;
        let n = tokio::select! {
            biased;
            _ = token.cancelled() => return Ok(Readable::Shutdown),
            r = tokio::time::timeout(idle, stream.read_buf(buffer)) => match r {
                Err(_) => return Ok(Readable::IdleTimeout),
                Ok(r) => r?,
            },
        };
        if n == 0 {
            return Ok(Readable::Eof);
        }
        if let Some(h) = &self.handle {
            h.add_in(n);
        }
        Ok(Readable::Data)
    }

    /// Waits for the next line (POP3, SMTP); `Err` says why none will come.
    pub async fn read_line(&mut self, decoder: &mut LineDecoder) -> Result<Line, Readable> {
        loop {
            if let Some(line) = decoder.decode(&mut self.buffer) {
                return Ok(line);
            }
            match self.read_more().await {
                Ok(Readable::Data) => {}
                Ok(other) => return Err(other),
                Err(_) => return Err(Readable::Eof),
            }
        }
    }

    /// Sends bytes and flushes them.
    pub async fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        let stream = self.stream()?;
        stream.write_all(bytes).await?;
        stream.flush().await?;
        if let Some(h) = &self.handle {
            h.add_out(bytes.len());
        }
        Ok(())
    }

    /// Performs the server side of a TLS handshake on the current TCP stream.
    ///
    /// Anything the client pipelined after STARTTLS is discarded, as RFC 3207 and RFC 2595 ask,
    /// so plaintext injected before the handshake can never be taken for an encrypted command.
    pub async fn start_tls(&mut self, acceptor: &TlsAcceptor) -> io::Result<()> {
        self.buffer.clear();
        match self.stream.take() {
            Some(Stream::Plain(tcp)) => {
                let tls = acceptor.accept(tcp).await.inspect_err(|_| {
                    crate::status::counters::global().tls_failed();
                })?;
                self.stream = Some(Stream::Tls(Box::new(tls)));
                if let Some(h) = &self.handle {
                    h.set_tls();
                }
                Ok(())
            }
            other => {
                self.stream = other;
                Err(io::Error::other("TLS is already active"))
            }
        }
    }

    /// Gives up the stream and any unread bytes, to hand the session to a worker.
    pub fn into_parts(self) -> (Option<Stream>, BytesMut, Option<SessionHandle>) {
        (self.stream, self.buffer, self.handle)
    }
}
