//! `roost status`, `roost who` and `roost kick USER`: the running server's status listener,
//! asked over HTTP (found with `-c CONFIG` or `--url`), printed as netstat-style tables. They
//! work the same whether roost runs as one process or as master, login process and workers,
//! because the listener lives in the process that owns the connections.

use std::io::{BufRead, IsTerminal, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use base64::{engine::general_purpose::STANDARD, Engine};

use super::report::StatusReport;
use super::{table, KickReply, KickRequest};
use crate::config::{Config, ConfigErrors};

/// Where the embedded default serves its status page.
const DEFAULT_URL: &str = "http://127.0.0.1:8025";
/// Largest answer read (a report of tens of thousands of sessions fits).
const MAX_ANSWER: u64 = 64 * 1024 * 1024;
/// Time allowed to connect, and then for each read.
const TIMEOUT: Duration = Duration::from_secs(10);
/// The environment variable holding the status page password, for scripts.
pub const PASSWORD_ENV: &str = "ROOST_PASSWORD";

/// Which server to ask, and as whom.
#[derive(Debug, Clone, clap::Args)]
pub struct Target {
    /// The server's config file: its `[status] listen` is where to ask.
    #[arg(short, long)]
    pub config: Option<PathBuf>,
    /// The status listener's URL instead (default: http://127.0.0.1:8025).
    #[arg(long, conflicts_with = "config")]
    pub url: Option<String>,
    /// Sign in as this user; the password comes from ROOST_PASSWORD or standard input.
    #[arg(short, long)]
    pub user: Option<String>,
}

/// Why a command could not get its answer.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The config file is invalid.
    #[error("invalid configuration:\n{0}")]
    Config(#[from] ConfigErrors),
    /// The config enables no status listener.
    #[error("{0} has no [status] listen: this server offers no status page")]
    NoStatusListener(PathBuf),
    /// `--url` is not something we can ask.
    #[error("{0:?} is not an http:// URL like http://127.0.0.1:8025")]
    BadUrl(String),
    /// Nothing answered.
    #[error("cannot reach the status page at {url}")]
    Unreachable {
        /// Where we asked.
        url: String,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The page needs a password and none was given.
    #[error("the status page at {0} asks for a password: use --user NAME (the password comes from {PASSWORD_ENV} or standard input)")]
    NeedsPassword(String),
    /// The password was refused.
    #[error("the status page at {0} refused that user name or password")]
    Refused(String),
    /// Any other HTTP error.
    #[error("the status page at {url} answered {status}: {body}")]
    Http {
        /// Where we asked.
        url: String,
        /// The status code.
        status: u16,
        /// What it said.
        body: String,
    },
    /// The answer is not what a roost sends.
    #[error("the status page at {url} sent something that is not a roost status report")]
    Json {
        /// Where we asked.
        url: String,
        /// The parse error.
        source: serde_json::Error,
    },
    /// The password could not be read from standard input.
    #[error("cannot read the password: {0}")]
    Password(std::io::Error),
}

/// `roost status`: listeners, connections and counters.
pub fn status(target: &Target) -> Result<String, CliError> {
    Ok(table::status(&fetch_report(target)?))
}

/// `roost who`: logged-in users.
pub fn who(target: &Target) -> Result<String, CliError> {
    Ok(table::who(&fetch_report(target)?))
}

/// `roost kick USER`: ends the user's sessions; says how many.
pub fn kick(target: &Target, user: &str) -> Result<String, CliError> {
    let client = Client::new(target)?;
    let body = serde_json::to_string(&KickRequest { user: user.into() })
        .map_err(|source| client.json_error(source))?;
    let answer = client.call("POST", "/kick", Some(&body))?;
    let reply: KickReply =
        serde_json::from_str(&answer).map_err(|source| client.json_error(source))?;
    Ok(match reply.kicked {
        0 => format!("{}: no sessions\n", reply.user),
        1 => format!("{}: 1 session kicked\n", reply.user),
        n => format!("{}: {n} sessions kicked\n", reply.user),
    })
}

fn fetch_report(target: &Target) -> Result<StatusReport, CliError> {
    let client = Client::new(target)?;
    let answer = client.call("GET", "/status.json", None)?;
    serde_json::from_str(&answer).map_err(|source| client.json_error(source))
}

/// One server's status listener.
struct Client {
    url: String,
    authority: String,
    authorization: Option<String>,
}

impl Client {
    fn new(target: &Target) -> Result<Self, CliError> {
        let url = match (&target.url, &target.config) {
            (Some(url), _) => url.trim_end_matches('/').to_string(),
            (None, Some(path)) => {
                let config = Config::load(path)?;
                let addr = config
                    .status
                    .listen
                    .ok_or_else(|| CliError::NoStatusListener(path.clone()))?;
                format!("http://{}", reachable(addr))
            }
            (None, None) => DEFAULT_URL.to_string(),
        };
        let authority = url
            .strip_prefix("http://")
            .filter(|a| !a.is_empty() && !a.contains('/'))
            .ok_or_else(|| CliError::BadUrl(url.clone()))?
            .to_string();
        let authorization = match &target.user {
            Some(user) => {
                let password = password(user)?;
                Some(format!(
                    "Basic {}",
                    STANDARD.encode(format!("{user}:{password}"))
                ))
            }
            None => None,
        };
        Ok(Self {
            url,
            authority,
            authorization,
        })
    }

    fn json_error(&self, source: serde_json::Error) -> CliError {
        CliError::Json {
            url: self.url.clone(),
            source,
        }
    }

    /// Sends one request; the body of a 200 answer.
    fn call(&self, method: &str, path: &str, body: Option<&str>) -> Result<String, CliError> {
        let unreachable = |source| CliError::Unreachable {
            url: self.url.clone(),
            source,
        };
        let mut stream = self.connect().map_err(unreachable)?;
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\nConnection: close\r\n",
            self.authority
        );
        if let Some(auth) = &self.authorization {
            request.push_str(&format!("Authorization: {auth}\r\n"));
        }
        if let Some(body) = body {
            request.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        request.push_str("\r\n");
        request.push_str(body.unwrap_or_default());
        stream.write_all(request.as_bytes()).map_err(unreachable)?;
        let mut answer = Vec::new();
        stream
            .take(MAX_ANSWER)
            .read_to_end(&mut answer)
            .map_err(unreachable)?;
        let answer = String::from_utf8_lossy(&answer);
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
            .unwrap_or(0);
        match status {
            200 => Ok(body.to_string()),
            401 if self.authorization.is_none() => Err(CliError::NeedsPassword(self.url.clone())),
            401 => Err(CliError::Refused(self.url.clone())),
            _ => Err(CliError::Http {
                url: self.url.clone(),
                status,
                body: body.trim().to_string(),
            }),
        }
    }

    fn connect(&self) -> std::io::Result<TcpStream> {
        let mut last = std::io::Error::other("the host name resolves to no address");
        for addr in self.authority.to_socket_addrs()? {
            match TcpStream::connect_timeout(&addr, TIMEOUT) {
                Ok(stream) => {
                    stream.set_read_timeout(Some(TIMEOUT))?;
                    stream.set_write_timeout(Some(TIMEOUT))?;
                    return Ok(stream);
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

/// A listen address as a client reaches it: a wildcard becomes loopback.
pub(crate) fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port())
        }
        _ => addr,
    }
}

/// The status page password: `ROOST_PASSWORD`, or a line from standard input.
fn password(user: &str) -> Result<String, CliError> {
    if let Ok(password) = std::env::var(PASSWORD_ENV) {
        return Ok(password);
    }
    if std::io::stdin().is_terminal() {
        eprint!("Password for {user}: ");
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(CliError::Password)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_listen_addresses_are_asked_on_loopback() {
        assert_eq!(
            reachable("0.0.0.0:8025".parse().unwrap()),
            "127.0.0.1:8025".parse().unwrap()
        );
        assert_eq!(
            reachable("[::]:8025".parse().unwrap()),
            "[::1]:8025".parse().unwrap()
        );
        assert_eq!(
            reachable("192.0.2.1:8025".parse().unwrap()),
            "192.0.2.1:8025".parse().unwrap()
        );
    }

    #[test]
    fn only_plain_http_urls_are_accepted() {
        for bad in ["https://x", "ftp://x", "http://", "http://host/path"] {
            let target = Target {
                config: None,
                url: Some(bad.into()),
                user: None,
            };
            assert!(
                matches!(Client::new(&target), Err(CliError::BadUrl(_))),
                "{bad}"
            );
        }
    }
}
