//! A client connection as sessions see it: a byte stream (plain TCP, TLS, the socket a worker
//! process was handed, or an in-memory pipe in tests), a read buffer, the idle timeout and the
//! shutdown signal raced against every read, byte counting for the registry, and the STARTTLS
//! swap.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;

use bytes::BytesMut;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use roost_protocol::line::{Line, LineDecoder};

use super::registry::SessionHandle;

/// How long a TLS handshake after STARTTLS/STLS may take unless the config says otherwise.
const DEFAULT_TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// The transport under a session.
pub enum Stream {
    /// Unencrypted TCP.
    Plain(TcpStream),
    /// TLS over TCP (implicit, or after STARTTLS/STLS).
    Tls(Box<TlsStream<TcpStream>>),
    /// The socket between the listener process and a per-user worker.
    Unix(UnixStream),
    /// One end of an in-memory pipe (`tokio::io::duplex`): sessions run without a socket, so
    /// golden transcripts replay against the real session code in-process.
    #[cfg_attr(
        not(test),
        allow(dead_code, reason = "only the transcript runner builds one so far")
    )]
    Memory(DuplexStream),
}

macro_rules! each_stream {
    ($self:ident, $s:ident => $e:expr) => {
        match $self.get_mut() {
            Stream::Plain($s) => $e,
            Stream::Tls($s) => $e,
            Stream::Unix($s) => $e,
            Stream::Memory($s) => $e,
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

/// Why no more client bytes will come: the one answer every protocol's session gets when a
/// read ends without data, and turns into its own goodbye.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The client closed the connection (or it broke).
    Closed,
    /// The client was silent for the whole idle timeout.
    IdleTimeout,
    /// The server is shutting down.
    Shutdown,
}

/// Output chunk of the deflate decoder.
const READ_CHUNK: usize = 16 * 1024;

/// How much to read at once: small while a client is quiet, so an idle connection holds
/// half a kilobyte rather than a burst-sized buffer, doubling while reads come back full.
#[derive(Debug, Clone, Copy)]
pub struct ReadSize(usize);

impl ReadSize {
    /// The size an idle connection reads with.
    pub const MIN: usize = 512;
    /// The most a busy connection reads at once.
    pub const MAX: usize = 16 * 1024;

    /// Bytes to ask for next.
    pub fn get(self) -> usize {
        self.0
    }

    /// Adjusts after a read that brought `n` bytes: double when it filled the request, back to
    /// the minimum when it brought little.
    pub fn after(&mut self, n: usize) {
        self.0 = if n >= self.0 {
            (self.0 * 2).min(Self::MAX)
        } else if n < self.0 / 4 {
            Self::MIN
        } else {
            self.0
        };
    }
}

impl Default for ReadSize {
    fn default() -> Self {
        Self(Self::MIN)
    }
}

/// Reads what the client sends next into `buffer`. An empty buffer is given back and the
/// stream waited on without one ([`WaitReadable`]), so an idle connection (most of a mail
/// server's) holds no read buffer; one is taken when bytes are there.
async fn read_into(stream: &mut Stream, buffer: &mut BytesMut, size: usize) -> io::Result<usize> {
    if buffer.is_empty() {
        *buffer = BytesMut::new();
        stream.wait_readable().await?;
    }
    buffer.reserve(size);
    stream.read_buf(buffer).await
}

/// A byte source that can be waited on without a read buffer: the sessions' connections and
/// the login process's relay both wait this way, so a quiet connection holds no buffer.
pub trait WaitReadable {
    /// Waits until a read would find bytes (or the end), where the transport can tell without
    /// reading; returns at once where it cannot (TLS keeps decrypted bytes of its own, so the
    /// read itself must wait, with its buffer).
    fn wait_readable(&self) -> impl std::future::Future<Output = io::Result<()>> + Send;
}

impl WaitReadable for Stream {
    async fn wait_readable(&self) -> io::Result<()> {
        match self {
            Stream::Plain(tcp) => tcp.readable().await,
            Stream::Unix(unix) => unix.readable().await,
            Stream::Tls(_) | Stream::Memory(_) => Ok(()),
        }
    }
}

impl WaitReadable for tokio::net::tcp::OwnedReadHalf {
    async fn wait_readable(&self) -> io::Result<()> {
        self.readable().await
    }
}

impl WaitReadable for tokio::net::unix::OwnedReadHalf {
    async fn wait_readable(&self) -> io::Result<()> {
        self.readable().await
    }
}

impl WaitReadable for tokio::io::ReadHalf<Stream> {
    async fn wait_readable(&self) -> io::Result<()> {
        Ok(())
    }
}

/// IMAP COMPRESS=DEFLATE (RFC 4978): raw deflate both ways once the client asked for it.
struct Deflate {
    compress: Compress,
    decompress: Decompress,
    /// Compressed bytes read but not yet inflated.
    raw: BytesMut,
}

/// A session's connection.
pub struct Connection {
    stream: Option<Stream>,
    buffer: BytesMut,
    read_size: ReadSize,
    deflate: Option<Box<Deflate>>,
    idle_timeout: Duration,
    /// Until login: the time by which the client must have logged in.
    login_deadline: Option<Instant>,
    /// How long a STARTTLS/STLS handshake may take.
    tls_handshake_timeout: Duration,
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
            buffer: BytesMut::new(),
            read_size: ReadSize::default(),
            deflate: None,
            idle_timeout,
            login_deadline: None,
            tls_handshake_timeout: DEFAULT_TLS_HANDSHAKE_TIMEOUT,
            shutdown,
            handle,
        }
    }

    /// Starts the pre-login clock: reads end as an idle timeout once `limit` has passed,
    /// however busy the client keeps the connection.
    pub fn start_login_clock(&mut self, limit: Duration) {
        self.login_deadline = Some(Instant::now() + limit);
    }

    /// Sets how long a STARTTLS/STLS handshake may take (the `[limits]` setting).
    pub fn set_tls_handshake_timeout(&mut self, limit: Duration) {
        self.tls_handshake_timeout = limit;
    }

    /// The client logged in: from now on only the idle timeout applies.
    pub fn end_login_clock(&mut self) {
        self.login_deadline = None;
    }

    /// How long the client may stay silent now: the idle timeout, or less before login (what
    /// the next read, or an IDLE wait, may take).
    pub fn silence_allowed(&self) -> Duration {
        match self.login_deadline {
            Some(deadline) => self
                .idle_timeout
                .min(deadline.saturating_duration_since(Instant::now())),
            None => self.idle_timeout,
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

    /// Turns on COMPRESS=DEFLATE: from now on every byte either way is raw deflate. Bytes the
    /// client already sent after the command are taken as compressed.
    pub fn start_deflate(&mut self) -> io::Result<()> {
        let mut deflate = Box::new(Deflate {
            compress: Compress::new(Compression::fast(), false),
            decompress: Decompress::new(false),
            raw: self.buffer.split(),
        });
        inflate(&mut deflate, &mut self.buffer)?;
        self.deflate = Some(deflate);
        Ok(())
    }

    /// Whether [`Connection::client_readable`] can wait on this connection: a plain or local
    /// socket with nothing read and not yet used (TLS and COMPRESS keep bytes of their own, so
    /// there only reading tells). If so, the empty read buffer is given back: the wait holds
    /// none (what a split-off line left of it would otherwise stay for as long as the wait).
    pub fn can_wait_readable(&mut self) -> bool {
        let can = self.deflate.is_none()
            && self.buffer.is_empty()
            && matches!(self.stream, Some(Stream::Plain(_) | Stream::Unix(_)));
        if can {
            self.buffer = BytesMut::new();
        }
        can
    }

    /// Waits until the client has sent something, without reading it and holding no buffer
    /// (see [`Connection::can_wait_readable`]), or until the server shuts down.
    pub async fn client_readable(&self) -> Result<(), Ended> {
        let stream = self.stream.as_ref().ok_or(Ended::Closed)?;
        tokio::select! {
            biased;
            _ = self.shutdown.cancelled() => Err(Ended::Shutdown),
            r = stream.wait_readable() => r.map_err(|_| Ended::Closed),
        }
    }

    /// Whether COMPRESS=DEFLATE is active.
    pub fn is_deflating(&self) -> bool {
        self.deflate.is_some()
    }

    /// Waits for more client bytes (`Ok`: they are in the buffer), the idle timeout, or
    /// shutdown, whichever comes first. A broken connection or a broken deflate stream counts
    /// as closed.
    pub async fn read_more(&mut self) -> Result<(), Ended> {
        loop {
            let before = self.buffer.len();
            self.read_raw().await?;
            let Some(deflate) = self.deflate.as_mut() else {
                return Ok(());
            };
            inflate(deflate, &mut self.buffer).map_err(|_| Ended::Closed)?;
            // A deflate block can end without producing bytes yet: read on.
            if self.buffer.len() != before {
                return Ok(());
            }
        }
    }

    async fn read_raw(&mut self) -> Result<(), Ended> {
        let idle = self.silence_allowed();
        let token = self.shutdown.clone();
        let Self {
            stream,
            buffer,
            deflate,
            read_size,
            ..
        } = self;
        let buffer = match deflate.as_mut() {
            Some(d) => &mut d.raw,
            None => buffer,
        };
        let stream = stream.as_mut().ok_or(Ended::Closed)?;
        let size = read_size.get();
        let n = tokio::select! {
            biased;
            _ = token.cancelled() => return Err(Ended::Shutdown),
            r = tokio::time::timeout(idle, read_into(stream, buffer, size)) => match r {
                Err(_) => return Err(Ended::IdleTimeout),
                Ok(r) => r.map_err(|_| Ended::Closed)?,
            },
        };
        if n == 0 {
            return Err(Ended::Closed);
        }
        self.read_size.after(n);
        if let Some(h) = &self.handle {
            h.add_in(n);
        }
        Ok(())
    }

    /// Waits for the next line (POP3, SMTP); `Err` says why none will come.
    pub async fn read_line(&mut self, decoder: &mut LineDecoder) -> Result<Line, Ended> {
        loop {
            if let Some(line) = decoder.decode(&mut self.buffer) {
                return Ok(line);
            }
            self.read_more().await?;
        }
    }

    /// Sends bytes and flushes them (through the compressor when COMPRESS is active).
    pub async fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        let compressed;
        let wire = match self.deflate.as_mut() {
            Some(d) => {
                compressed = deflate(&mut d.compress, bytes)?;
                &compressed[..]
            }
            None => bytes,
        };
        let stream = self.stream()?;
        stream.write_all(wire).await?;
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
    /// The handshake has a time limit (and ends early at shutdown): a client that sends STARTTLS
    /// and then nothing must not hold its connection slot.
    pub async fn start_tls(&mut self, acceptor: &TlsAcceptor) -> io::Result<()> {
        self.buffer.clear();
        let limit = self.tls_handshake_timeout;
        match self.stream.take() {
            Some(Stream::Plain(tcp)) => {
                let handshake = tokio::select! {
                    _ = self.shutdown.cancelled() => Err(io::Error::other("shutting down")),
                    r = tokio::time::timeout(limit, acceptor.accept(tcp)) => r.unwrap_or_else(|_| {
                        Err(io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))
                    }),
                };
                let tls = handshake.inspect_err(|_| {
                    crate::counters::global().tls_failed();
                })?;
                self.stream = Some(Stream::Tls(Box::new(tls)));
                if let Some(h) = &self.handle {
                    h.set_tls();
                }
                Ok(())
            }
            Some(Stream::Memory(pipe)) => {
                self.stream = Some(Stream::Memory(pipe));
                Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "no TLS over an in-memory stream",
                ))
            }
            other => {
                self.stream = other;
                Err(io::Error::other("TLS is already active"))
            }
        }
    }

    /// Gives up the stream and any unread bytes, to hand the session to a worker (only ever
    /// before COMPRESS, which is an authenticated-state command).
    pub fn into_parts(self) -> (Option<Stream>, BytesMut, Option<SessionHandle>) {
        (self.stream, self.buffer, self.handle)
    }
}

/// Inflates what `deflate.raw` holds into `out`.
fn inflate(deflate: &mut Deflate, out: &mut BytesMut) -> io::Result<()> {
    while !deflate.raw.is_empty() {
        let mut chunk = Vec::with_capacity(READ_CHUNK);
        let before_in = deflate.decompress.total_in();
        let status = deflate
            .decompress
            .decompress_vec(&deflate.raw, &mut chunk, FlushDecompress::None)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let used = (deflate.decompress.total_in() - before_in) as usize;
        let _ = deflate.raw.split_to(used);
        out.extend_from_slice(&chunk);
        if status == Status::StreamEnd {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "deflate stream ended",
            ));
        }
        if used == 0 && chunk.is_empty() {
            break;
        }
    }
    Ok(())
}

/// Deflates `bytes` and sync-flushes, so the client can decode everything sent so far.
fn deflate(compress: &mut Compress, bytes: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(bytes.len() / 2 + 64);
    let mut input = bytes;
    loop {
        if out.capacity() - out.len() < 64 {
            out.reserve(out.capacity().max(1024));
        }
        let before_in = compress.total_in();
        compress
            .compress_vec(input, &mut out, FlushCompress::Sync)
            .map_err(io::Error::other)?;
        let used = (compress.total_in() - before_in) as usize;
        input = &input[used..];
        // Done when all input is taken and the flush left spare room (nothing more pending).
        if input.is_empty() && out.len() < out.capacity() {
            return Ok(out);
        }
    }
}
