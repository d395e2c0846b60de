//! A deliberately small HTTP/1.1 server for roost's web listeners (the status page and
//! client autoconfiguration, the latter also over TLS): one request per connection, bounded in
//! size and time, GET, HEAD and POST with a `Content-Length` body. Small enough to audit in one
//! sitting and cheaper to build than an HTTP library; nothing here needs keep-alive, chunking
//! or HTTP/2.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::listen::tls::TlsStore;

/// Largest request line plus headers.
pub const MAX_HEAD: usize = 8 * 1024;
/// Largest request body (an autodiscover request or a kick is a few hundred bytes).
pub const MAX_BODY: usize = 64 * 1024;
/// Connections served at once per listener; more wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 64;
/// Time a client gets to send its request and read the answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a request could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The request line and headers exceed [`MAX_HEAD`].
    #[error("request head larger than {MAX_HEAD} bytes")]
    HeadTooLarge,
    /// The body exceeds [`MAX_BODY`].
    #[error("request body larger than {MAX_BODY} bytes")]
    BodyTooLarge,
    /// Not HTTP/1.x as we accept it.
    #[error("malformed request: {0}")]
    Malformed(&'static str),
    /// The client went away mid-request.
    #[error("connection closed before the request was complete")]
    Incomplete,
    /// The socket failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl HttpError {
    /// The answer the client gets, if it is still there to read one.
    fn response(&self) -> Option<Response> {
        match self {
            Self::HeadTooLarge => Some(Response::text(431, "Request header too large\n")),
            Self::BodyTooLarge => Some(Response::text(413, "Request body too large\n")),
            Self::Malformed(why) => Some(Response::text(400, format!("Bad request: {why}\n"))),
            Self::Incomplete | Self::Io(_) => None,
        }
    }
}

/// One parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `POST`, ... (`HEAD` is served as `GET` without a body).
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The raw query string after `?`, if any.
    pub query: String,
    /// Header names (lower-cased) and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body (`Content-Length` bytes).
    pub body: Vec<u8>,
    /// The client's address.
    pub peer: SocketAddr,
}

impl Request {
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// A query parameter, percent-decoded (`+` is a space).
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key)? == name).then(|| percent_decode(value))?
        })
    }
}

/// Decodes `%XX` escapes and `+`; `None` for invalid escapes or non-UTF-8 results.
pub fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// An answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// Further headers.
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// A response with a body of the given type.
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            content_type,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// A plain-text response.
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Self::new(status, "text/plain; charset=utf-8", body.into())
    }

    /// A JSON response.
    pub fn json(status: u16, body: impl Into<String>) -> Self {
        Self::new(status, "application/json", body.into())
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// The bytes on the wire; `head_only` for a HEAD request.
    pub fn encode(&self, head_only: bool) -> Vec<u8> {
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len()
        );
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        if !head_only {
            bytes.extend_from_slice(&self.body);
        }
        bytes
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        411 => "Length Required",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        421 => "Misdirected Request",
        431 => "Request Header Fields Too Large",
        _ => "Error",
    }
}

/// Reads one request: head up to [`MAX_HEAD`], then `Content-Length` body bytes.
pub async fn read_request<S>(stream: &mut S, peer: SocketAddr) -> Result<Request, HttpError>
where
    S: tokio::io::AsyncRead + Unpin,
{
    let mut buf = Vec::with_capacity(1024);
    let head_end = loop {
        if let Some(end) = find_head_end(&buf) {
            break end;
        }
        if buf.len() >= MAX_HEAD {
            return Err(HttpError::HeadTooLarge);
        }
        let mut chunk = [0u8; 2048];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(HttpError::Incomplete);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    if head_end > MAX_HEAD {
        return Err(HttpError::HeadTooLarge);
    }
    let head = std::str::from_utf8(&buf[..head_end])
        .map_err(|_| HttpError::Malformed("request head is not UTF-8"))?;
    let mut request = parse_head(head, peer)?;
    let length = match request.header("content-length") {
        Some(v) => v
            .trim()
            .parse::<usize>()
            .map_err(|_| HttpError::Malformed("bad Content-Length"))?,
        None => 0,
    };
    if request.header("transfer-encoding").is_some() {
        return Err(HttpError::Malformed("send a Content-Length, not chunks"));
    }
    if length > MAX_BODY {
        return Err(HttpError::BodyTooLarge);
    }
    let mut body = buf.split_off(head_end);
    while body.len() < length {
        let mut chunk = vec![0u8; length - body.len()];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(HttpError::Incomplete);
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    request.body = body;
    Ok(request)
}

/// The offset just past the blank line ending the head (CRLF or bare LF).
fn find_head_end(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4);
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|p| p + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn parse_head(head: &str, peer: SocketAddr) -> Result<Request, HttpError> {
    let mut lines = head.lines();
    let first = lines.next().unwrap_or_default();
    let mut parts = first.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HttpError::Malformed(
            "request line is not METHOD PATH VERSION",
        ));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(HttpError::Malformed("only HTTP/1.x is spoken here"));
    }
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(HttpError::Malformed("bad method"));
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if !path.starts_with('/') {
        return Err(HttpError::Malformed("the path must start with /"));
    }
    let mut headers = Vec::new();
    for line in lines.map(|l| l.trim_end_matches('\r')) {
        if line.is_empty() {
            continue;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or(HttpError::Malformed("header line without a colon"))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    Ok(Request {
        method: method.to_string(),
        path: path.to_string(),
        query: query.to_string(),
        headers,
        body: Vec::new(),
        peer,
    })
}

/// Serves requests on `listener` with `handler` until shutdown; `open` counts the connections
/// being served (the status page shows it). With `tls`, every connection first completes a
/// handshake with the store's current certificate (so a SIGHUP reload reaches it too), within
/// the same time limit as the request.
pub async fn serve<H, F>(
    listener: TcpListener,
    tls: Option<Arc<TlsStore>>,
    open: Arc<AtomicUsize>,
    shutdown: CancellationToken,
    handler: H,
) where
    H: Fn(Request) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response> + Send,
{
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let handler = handler.clone();
        let open = Arc::clone(&open);
        let acceptor = tls.as_ref().map(|store| store.acceptor());
        tokio::spawn(async move {
            open.fetch_add(1, Ordering::Relaxed);
            let served = async {
                match acceptor {
                    None => exchange(stream, peer, handler).await,
                    Some(acceptor) => match acceptor.accept(stream).await {
                        Ok(tls) => exchange(tls, peer, handler).await,
                        Err(e) => tracing::debug!(%peer, "HTTPS handshake failed: {e}"),
                    },
                }
            };
            let _ = tokio::time::timeout(REQUEST_TIMEOUT, served).await;
            open.fetch_sub(1, Ordering::Relaxed);
            drop(permit);
        });
    }
}

async fn exchange<S, H, F>(mut stream: S, peer: SocketAddr, handler: H)
where
    S: AsyncRead + AsyncWrite + Unpin,
    H: Fn(Request) -> F,
    F: Future<Output = Response>,
{
    let (response, head_only) = match read_request(&mut stream, peer).await {
        Ok(mut request) => {
            let head_only = request.method == "HEAD";
            if head_only {
                request.method = "GET".into();
            }
            (handler(request).await, head_only)
        }
        Err(e) => match e.response() {
            Some(response) => (response, false),
            None => return,
        },
    };
    if stream.write_all(&response.encode(head_only)).await.is_ok() {
        let _ = stream.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> SocketAddr {
        "127.0.0.1:5000".parse().unwrap()
    }

    async fn parse(bytes: &[u8]) -> Result<Request, HttpError> {
        read_request(&mut &bytes[..], peer()).await
    }

    #[tokio::test]
    async fn requests_parse_with_their_bodies() {
        let r = parse(b"GET /mail/config-v1.1.xml?emailaddress=alice%40example.com HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        assert_eq!(
            (r.method.as_str(), r.path.as_str()),
            ("GET", "/mail/config-v1.1.xml")
        );
        assert_eq!(
            r.query_param("emailaddress").as_deref(),
            Some("alice@example.com")
        );
        assert_eq!(r.header("HOST"), Some("x"));
        let r = parse(b"POST /kick HTTP/1.0\nContent-Length: 5\n\nhello, and more")
            .await
            .unwrap();
        assert_eq!(r.body, b"hello");
    }

    #[tokio::test]
    async fn hostile_requests_are_refused_with_a_reason() {
        let huge = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(MAX_HEAD));
        assert!(matches!(
            parse(huge.as_bytes()).await,
            Err(HttpError::HeadTooLarge)
        ));
        let big = format!(
            "POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY + 1
        );
        assert!(matches!(
            parse(big.as_bytes()).await,
            Err(HttpError::BodyTooLarge)
        ));
        for bad in [
            &b"GET /\r\n\r\n"[..],
            b"GET / SPDY/3\r\n\r\n",
            b"get / HTTP/1.1\r\n\r\n",
            b"GET x HTTP/1.1\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"GET / HTTP/1.1\r\nno colon\r\n\r\n",
        ] {
            let e = parse(bad).await.unwrap_err();
            assert_eq!(e.response().map(|r| r.status), Some(400), "{bad:?}");
        }
        assert!(matches!(
            parse(b"GET / HTTP/1.1\r\n").await,
            Err(HttpError::Incomplete)
        ));
        assert!(matches!(
            parse(b"POST / HTTP/1.1\r\nContent-Length: 9\r\n\r\nshort").await,
            Err(HttpError::Incomplete)
        ));
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%40b+c").as_deref(), Some("a@b c"));
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%ff"), None);
    }

    #[test]
    fn responses_say_their_length_and_close() {
        let r = Response::text(404, "no\n").with_header("X-A", "b");
        let wire = String::from_utf8(r.encode(false)).unwrap();
        assert!(wire.starts_with("HTTP/1.1 404 Not Found\r\n"), "{wire}");
        assert!(wire.contains("Content-Length: 3\r\n") && wire.contains("X-A: b\r\n"));
        assert!(wire.ends_with("\r\n\r\nno\n"));
        assert!(String::from_utf8(r.encode(true))
            .unwrap()
            .ends_with("\r\n\r\n"));
    }
}
