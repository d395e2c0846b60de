//! What an admin reads instead of `netstat -a | egrep -i 'pop|imap'` and the log: the status
//! listener (`[status] listen`, loopback by default) serves, from one [`report::StatusReport`]:
//!
//! ```text
//!   GET  /              HTML page (browsers) or netstat-style text (curl)
//!   GET  /status.json   the same data as JSON (what `roost status` and `roost who` read)
//!   GET  /metrics       Prometheus text format
//!   POST /kick          {"user": "alice"}: ends alice's sessions (`roost kick alice`)
//! ```
//!
//! It reads the session registry of the process that accepts connections (the login process
//! when roost runs as root) and the process-wide [`counters`], whose last hour [`history`]
//! keeps per minute for the page's [`chart`]s. Client autoconfiguration has a
//! listener of its own ([`autoconfig`]); both speak the small HTTP of [`http`].

pub mod access;
pub mod autoconfig;
pub mod chart;
pub mod cli;
pub mod history;
pub mod http;
pub mod metrics;
pub mod page;
pub mod report;
pub mod table;

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use access::Access;
use http::{Request, Response};
pub use report::StatusSource;

/// What `POST /kick` takes.
#[derive(Debug, Serialize, Deserialize)]
pub struct KickRequest {
    /// Whose sessions to end.
    pub user: String,
}

/// What `POST /kick` answers.
#[derive(Debug, Serialize, Deserialize)]
pub struct KickReply {
    /// Whose sessions were ended.
    pub user: String,
    /// How many.
    pub kicked: usize,
}

/// The status listener: its data and its gatekeeper.
pub struct StatusService {
    /// Where the report comes from.
    pub source: StatusSource,
    /// Who may read it.
    pub access: Access,
}

/// Serves the status listener until shutdown; `open` counts its connections.
pub async fn serve(
    listener: TcpListener,
    service: Arc<StatusService>,
    open: Arc<AtomicUsize>,
    shutdown: CancellationToken,
) {
    http::serve(listener, None, open, shutdown, move |request| {
        let service = Arc::clone(&service);
        async move { service.respond(request).await }
    })
    .await;
}

const ROUTES: [&str; 5] = ["/", "/status", "/status.json", "/metrics", "/kick"];

impl StatusService {
    /// Answers one request.
    pub async fn respond(&self, request: Request) -> Response {
        if let Err(refusal) = self.access.check(&request).await {
            return refusal;
        }
        match (request.method.as_str(), request.path.as_str()) {
            ("GET", "/" | "/status") if wants_html(&request) => Response::new(
                200,
                "text/html; charset=utf-8",
                page::render(&self.report()),
            )
            .with_header(
                "Content-Security-Policy",
                "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
            ),
            ("GET", "/" | "/status") => Response::text(200, table::status(&self.report())),
            ("GET", "/status.json") => match serde_json::to_string_pretty(&self.report()) {
                Ok(json) => Response::json(200, json),
                Err(e) => Response::text(500, format!("cannot encode the report: {e}\n")),
            },
            ("GET", "/metrics") => {
                Response::new(200, metrics::CONTENT_TYPE, metrics::render(&self.report()))
            }
            ("POST", "/kick") => self.kick(&request),
            (_, path) if ROUTES.contains(&path) => {
                let allow = if path == "/kick" { "POST" } else { "GET, HEAD" };
                Response::text(405, "Method not allowed\n").with_header("Allow", allow)
            }
            _ => Response::text(
                404,
                "Not found: try / (page), /status.json, /metrics or POST /kick\n",
            ),
        }
    }

    fn report(&self) -> report::StatusReport {
        self.source.report()
    }

    /// Ends a user's sessions. JSON only, so a cross-site form cannot trigger it.
    fn kick(&self, request: &Request) -> Response {
        let is_json = request
            .header("content-type")
            .is_some_and(|t| t.trim().starts_with("application/json"));
        if !is_json {
            return Response::text(415, "Send {\"user\": \"NAME\"} as application/json\n");
        }
        let Ok(KickRequest { user }) = serde_json::from_slice(&request.body) else {
            return Response::text(400, "Send {\"user\": \"NAME\"}\n");
        };
        let kicked = self.source.registry.kick(&user);
        tracing::info!(
            "status: kicked {kicked} session(s) of user=<{user}>, rip={}",
            request.peer.ip()
        );
        match serde_json::to_string(&KickReply { user, kicked }) {
            Ok(json) => Response::json(200, json),
            Err(e) => Response::text(500, format!("{e}\n")),
        }
    }
}

/// Browsers ask for HTML; curl and scripts (`Accept: */*` or none) get the text tables.
fn wants_html(request: &Request) -> bool {
    request
        .header("accept")
        .is_some_and(|accept| accept.contains("text/html"))
}
