//! The netstat-style status page: listeners and live sessions, as plain text over HTTP on the
//! `[status] listen` address (loopback by default). Deliberately tiny: one GET, one table, no
//! HTTP library, so an admin can `curl http://127.0.0.1:8025/` on any box.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::listen::registry::Registry;

/// What the page shows besides the sessions.
pub struct StatusSource {
    /// The bound listeners, `(protocol, address)`.
    pub listeners: Vec<(&'static str, SocketAddr)>,
    /// The live sessions.
    pub registry: Arc<Registry>,
    /// Storage repairs made by session workers, as the master reports them (roost as root).
    pub worker_repairs: Arc<AtomicU64>,
}

/// Serves the page until shutdown.
pub async fn serve(listener: TcpListener, source: Arc<StatusSource>, shutdown: CancellationToken) {
    loop {
        let (stream, _) = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(_) => continue,
            },
        };
        let source = Arc::clone(&source);
        tokio::spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(10), respond(stream, &source)).await;
        });
    }
}

async fn respond(mut stream: TcpStream, source: &StatusSource) -> std::io::Result<()> {
    let mut request = [0u8; 2048];
    let n = stream.read(&mut request).await?;
    let first_line = request[..n]
        .split(|&b| b == b'\n')
        .next()
        .unwrap_or_default();
    let (status, body) =
        if first_line.starts_with(b"GET / ") || first_line.starts_with(b"GET /status ") {
            ("200 OK", render(source))
        } else {
            ("404 Not Found", "Not found: try GET /\n".to_string())
        };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

/// The page text: a listener table and a session table, like `ss -tn` for mail.
pub fn render(source: &StatusSource) -> String {
    let mut out = String::from("Listeners\nProto        Local Address\n");
    for (protocol, addr) in &source.listeners {
        let _ = writeln!(out, "{protocol:<12} {addr}");
    }
    let repairs = roost_storage::repair::count() + source.worker_repairs.load(Ordering::Relaxed);
    let _ = writeln!(out, "\nStorage repairs since start: {repairs}");
    let sessions = source.registry.snapshot();
    let _ = writeln!(out, "\nSessions ({})", sessions.len());
    let _ = writeln!(
        out,
        "{:<12} {:<22} {:<22} {:<16} {:<4} {:>7} {:>10} {:>10} Command",
        "Proto", "Local Address", "Peer Address", "User", "TLS", "Age(s)", "Bytes-In", "Bytes-Out"
    );
    let now = SystemTime::now();
    for s in sessions {
        let age = now.duration_since(s.started).unwrap_or_default().as_secs();
        let _ = writeln!(
            out,
            "{:<12} {:<22} {:<22} {:<16} {:<4} {:>7} {:>10} {:>10} {}",
            s.protocol.name(),
            s.local,
            s.peer,
            s.user.as_deref().unwrap_or("-"),
            if s.tls { "yes" } else { "no" },
            age,
            s.bytes_in,
            s.bytes_out,
            s.command
        );
    }
    out
}
