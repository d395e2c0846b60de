//! The status report: one snapshot of listeners, connections and counters that the HTML page,
//! `/status.json`, `/metrics` and the `roost status`/`who` tables all render, so they never
//! disagree. It is also what the CLI reads back from `/status.json`.
//!
//! It holds no password and no message content: users appear only once logged in, and a
//! session's command is its keyword alone.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use roost_storage::MailFormat;
use serde::{Deserialize, Serialize};

use super::history::{History, HistoryReport};
use crate::config::{Config, Protocol};
use crate::counters::{self, CounterSnapshot};
use crate::listen::registry::Registry;

/// The running server as the status listener sees it.
pub struct StatusSource {
    /// Every bound listener, `(protocol or "status"/"autoconfig", address)`.
    pub listeners: Vec<(&'static str, SocketAddr)>,
    /// The live sessions.
    pub registry: Arc<Registry>,
    /// The running configuration.
    pub config: Arc<Config>,
    /// When serving began.
    pub started: SystemTime,
    /// Whether sessions run in worker processes (roost started as root).
    pub workers: bool,
    /// Open connections to the HTTP listeners, by name.
    pub http_connections: Vec<(&'static str, Arc<AtomicUsize>)>,
    /// The counters' last hour, per minute.
    pub history: Arc<History>,
}

/// Everything the page shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    /// Version, uptime, configuration.
    pub server: ServerInfo,
    /// Listening sockets, like `netstat -l`.
    pub listeners: Vec<ListenerRow>,
    /// Client connections, like `netstat` without `-l`.
    pub connections: Vec<ConnectionRow>,
    /// Counters since start.
    pub counters: CounterSnapshot,
    /// The last hour per minute: connections, logins, deliveries (absent in the JSON of older
    /// servers).
    #[serde(default)]
    pub history: HistoryReport,
}

/// Facts about the server process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerInfo {
    /// roost's version.
    pub version: String,
    /// This machine's host name.
    pub hostname: String,
    /// When serving began, seconds since the Unix epoch.
    pub started: u64,
    /// Seconds since then.
    pub uptime_secs: u64,
    /// The config file, or `(embedded default)`.
    pub config: String,
    /// `maildir` or `mbox`.
    pub storage: String,
    /// The configured mail location template.
    pub mail_location: String,
    /// `single process`, or `login process + workers` when started as root.
    pub process_model: String,
}

/// One listening socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListenerRow {
    /// `imap`, `pop3s`, `submission`, ... or `status`/`autoconfig`/`autoconfig-tls` (HTTP).
    pub proto: String,
    /// The bound address.
    pub local: SocketAddr,
    /// Always `LISTEN`, as netstat says.
    pub state: String,
    /// `none`, `STARTTLS` or `implicit`.
    pub tls: String,
    /// Connections open on it now.
    pub connections: usize,
}

/// One client connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionRow {
    /// The registry's session id.
    pub id: u64,
    /// The listener's protocol.
    pub proto: String,
    /// Our address.
    pub local: SocketAddr,
    /// The client's address.
    pub foreign: SocketAddr,
    /// `ESTABLISHED`, `AUTHENTICATED`, `SELECTED INBOX`, `IDLE`, `DATA`.
    pub state: String,
    /// The logged-in user; absent before login.
    pub user: Option<String>,
    /// Connected since, seconds since the Unix epoch.
    pub since: u64,
    /// Whether the connection is encrypted now.
    pub tls: bool,
    /// Bytes received from the client.
    pub bytes_in: u64,
    /// Bytes sent to the client.
    pub bytes_out: u64,
    /// The keyword of the last command (empty before the first).
    pub last_command: String,
}

/// How a listener's clients get encryption.
pub fn tls_mode(listener: &str) -> &'static str {
    match Protocol::from_name(listener) {
        Some(p) if p.implicit_tls() => "implicit",
        Some(_) => "STARTTLS",
        None if listener == "autoconfig-tls" => "implicit",
        None => "none",
    }
}

fn epoch_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

impl StatusSource {
    /// Takes the snapshot.
    pub fn report(&self) -> StatusReport {
        let sessions = self.registry.snapshot();
        let now = SystemTime::now();
        let listeners = self
            .listeners
            .iter()
            .map(|&(name, local)| {
                let connections = match Protocol::from_name(name) {
                    Some(p) => sessions.iter().filter(|s| s.protocol == p).count(),
                    None => self
                        .http_connections
                        .iter()
                        .find(|(n, _)| *n == name)
                        .map_or(0, |(_, c)| c.load(Ordering::Relaxed)),
                };
                ListenerRow {
                    proto: name.to_string(),
                    local,
                    state: "LISTEN".into(),
                    tls: tls_mode(name).into(),
                    connections,
                }
            })
            .collect();
        let connections = sessions
            .into_iter()
            .map(|s| ConnectionRow {
                id: s.id,
                proto: s.protocol.name().to_string(),
                local: s.local,
                foreign: s.peer,
                state: s.state.to_string(),
                user: s.user,
                since: epoch_secs(s.started),
                tls: s.tls,
                bytes_in: s.bytes_in,
                bytes_out: s.bytes_out,
                last_command: s.command.to_string(),
            })
            .collect();
        let location = &self.config.mail.location;
        let mut served: Vec<Protocol> = self
            .listeners
            .iter()
            .filter_map(|(name, _)| Protocol::from_name(name))
            .collect();
        if self.config.smtp.lmtp_socket.is_some() {
            served.push(Protocol::Lmtp);
        }
        StatusReport {
            server: ServerInfo {
                version: env!("CARGO_PKG_VERSION").into(),
                hostname: roost_storage::host::name().into(),
                started: epoch_secs(self.started),
                uptime_secs: now
                    .duration_since(self.started)
                    .unwrap_or_default()
                    .as_secs(),
                config: self
                    .config
                    .path
                    .as_ref()
                    .map_or("(embedded default)".into(), |p| p.display().to_string()),
                storage: match location.format {
                    MailFormat::Maildir => "maildir".into(),
                    MailFormat::Mbox => "mbox".into(),
                },
                mail_location: location.to_string(),
                process_model: if self.workers {
                    "login process + workers".into()
                } else {
                    "single process".into()
                },
            },
            listeners,
            connections,
            counters: counters::global().snapshot(),
            history: self.history.report(&served),
        }
    }
}

/// `2024-05-01 13:45:07` (UTC) for seconds since the epoch.
pub fn utc(secs: u64) -> String {
    i64::try_from(secs)
        .ok()
        .and_then(|secs| chrono::DateTime::from_timestamp(secs, 0))
        .unwrap_or_default()
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// `3d 04:05:06` or `04:05:06` for a number of seconds.
pub fn duration(secs: u64) -> String {
    let hms = format!(
        "{:02}:{:02}:{:02}",
        secs / 3600 % 24,
        secs / 60 % 60,
        secs % 60
    );
    match secs / 86_400 {
        0 => hms,
        days => format!("{days}d {hms}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_like_an_admin_expects() {
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(utc(1_714_571_107), "2024-05-01 13:45:07");
        assert_eq!(duration(59), "00:00:59");
        assert_eq!(duration(3 * 86_400 + 4 * 3600 + 5 * 60 + 6), "3d 04:05:06");
    }

    #[test]
    fn tls_modes() {
        assert_eq!(tls_mode("imaps"), "implicit");
        assert_eq!(tls_mode("submission"), "STARTTLS");
        assert_eq!(tls_mode("status"), "none");
        assert_eq!(tls_mode("autoconfig-tls"), "implicit");
    }
}
