//! Who may read the status page and kick sessions.
//!
//! With neither `admin_password` nor `admin_users` the page is open, which config validation
//! allows only on a loopback address; even then a request must name the server by IP address
//! or `localhost` in its `Host` header, so a web page in the admin's browser cannot reach it
//! through a DNS name it controls (DNS rebinding). Otherwise every request needs HTTP basic
//! auth: the user `admin` with `admin_password`, or a listed `admin_users` member with their
//! mail password, checked by the same passdbs (through the master when roost runs as root).
//! Failures are delayed and throttled per client network and user name like mail logins.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::{engine::general_purpose::STANDARD, Engine};
use roost_protocol::sasl::Credentials;
use sha2::{Digest, Sha256};

use super::http::{Request, Response};
use crate::auth::throttle::{Limits, Throttle};
use crate::config::{Config, StatusConfig, ADMIN_USER};
use crate::session::privileged::Privileged;

/// How long a verified `Authorization` header is trusted without hashing the password again
/// (the page refreshes every few seconds; an Argon2 check each time would be wasteful).
const REMEMBER: Duration = Duration::from_secs(60);

/// The status listener's gatekeeper.
pub struct Access {
    config: StatusConfig,
    /// Verifies `admin_users` against the passdbs (here, or through the master).
    passdbs: Arc<dyn Privileged>,
    throttle: Throttle,
    failure_delay: Duration,
    recent: Mutex<HashMap<[u8; 32], Instant>>,
}

impl Access {
    /// Builds the gatekeeper from `[status]`; `passdbs` verifies passdb users.
    pub fn new(config: &Config, passdbs: Arc<dyn Privileged>) -> Self {
        Self {
            config: config.status.clone(),
            passdbs,
            throttle: Throttle::new(Limits {
                per_ip: config.auth.max_failures_per_ip,
                per_user: config.auth.max_failures_per_user,
            }),
            failure_delay: config.auth.failure_delay,
            recent: Mutex::new(HashMap::new()),
        }
    }

    /// `Ok` when the request may be served; otherwise the refusal to send.
    pub async fn check(&self, request: &Request) -> Result<(), Response> {
        if !self.config.requires_auth() {
            return match request.header("host") {
                Some(host) if !names_this_host(host) => Err(Response::text(
                    421,
                    "This page answers to its IP address or localhost only.\n",
                )),
                _ => Ok(()),
            };
        }
        let Some(header) = request.header("authorization") else {
            return Err(unauthorized());
        };
        let key: [u8; 32] = Sha256::digest(header.as_bytes()).into();
        if self.remembered(&key) {
            return Ok(());
        }
        let ip = request.peer.ip();
        let creds = parse_basic(header);
        let name = creds
            .as_ref()
            .map(|c| c.username.clone())
            .unwrap_or_default();
        let ok = match self.throttle.begin(ip, &name) {
            Ok(attempt) => {
                let ok = match creds {
                    Some(creds) => self.verify(creds, ip).await,
                    None => false,
                };
                if ok {
                    attempt.succeeded();
                } else {
                    attempt.failed();
                }
                ok
            }
            Err(_) => false,
        };
        if ok {
            tracing::info!("status: admin login: user=<{name}>, rip={ip}");
            self.remember(key);
            return Ok(());
        }
        tracing::warn!(
            "status: Aborted admin login (Authentication failed): user=<{name}>, rip={ip}"
        );
        tokio::time::sleep(self.failure_delay).await;
        Err(unauthorized())
    }

    async fn verify(&self, creds: Credentials, ip: IpAddr) -> bool {
        if creds.username == ADMIN_USER {
            if let Some(hash) = self.config.admin_password.clone() {
                let checked = tokio::task::spawn_blocking(move || {
                    crate::password::verify(&hash, &creds.password)
                })
                .await;
                return matches!(checked, Ok(Ok(true)));
            }
        }
        if !self.config.admin_users.contains(&creds.username) {
            return false;
        }
        self.passdbs.authenticate(creds, ip).await.is_ok()
    }

    fn remembered(&self, key: &[u8; 32]) -> bool {
        let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        recent.retain(|_, at| at.elapsed() < REMEMBER);
        recent.contains_key(key)
    }

    fn remember(&self, key: [u8; 32]) {
        let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        if recent.len() < 1000 {
            recent.insert(key, Instant::now());
        }
    }
}

fn unauthorized() -> Response {
    Response::text(401, "This page needs the admin's user name and password.\n").with_header(
        "WWW-Authenticate",
        "Basic realm=\"roost status\", charset=\"UTF-8\"",
    )
}

/// `Basic base64(user:password)` → credentials.
fn parse_basic(header: &str) -> Option<Credentials> {
    let (scheme, data) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(data.trim()).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some(Credentials {
        username: user.to_string(),
        password: password.to_string(),
    })
}

/// Whether a `Host` header names this server without a DNS name: an IP literal or localhost,
/// with or without a port.
fn names_this_host(host: &str) -> bool {
    let host = host.trim();
    if host.parse::<IpAddr>().is_ok() {
        return true;
    }
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(h, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                host
            }
        }),
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<IpAddr>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials() {
        let header = format!("Basic {}", STANDARD.encode("admin:pa:ss"));
        let creds = parse_basic(&header).unwrap();
        assert_eq!(
            (creds.username.as_str(), creds.password.as_str()),
            ("admin", "pa:ss")
        );
        assert!(parse_basic("Bearer abc").is_none());
        assert!(parse_basic("Basic !!!").is_none());
        assert!(parse_basic(&format!("Basic {}", STANDARD.encode("nocolon"))).is_none());
    }

    #[test]
    fn only_ip_literals_and_localhost_pass_the_host_check() {
        for ok in [
            "127.0.0.1:8025",
            "127.0.0.1",
            "localhost:8025",
            "[::1]:8025",
            "::1",
        ] {
            assert!(names_this_host(ok), "{ok}");
        }
        for bad in ["evil.example:8025", "evil.example", "127.0.0.1.nip.io"] {
            assert!(!names_this_host(bad), "{bad}");
        }
    }
}
