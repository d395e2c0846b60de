//! The control channel between the unprivileged login process and the root master.
//!
//! Each request is one SOCK_SEQPACKET message on the control socket: a text line, with a fresh
//! reply socket attached (and, for SPAWN, the socket the new worker will serve). The master
//! answers one line on the reply socket and closes it. User-supplied strings travel base64, so
//! no byte a client sends can break the framing.
//!
//! ```text
//!   login ── AUTH user pass peer ─────────► master: passdbs, delay, throttle
//!         ◄─ OK ticket name | FAIL kind [reason]
//!   login ── SPAWN ticket family peer local tls + [worker socket] ─► master: fork/exec worker
//!         ◄─ OK | ERR reason ──────────────     as the mail owner, stdin = worker socket
//!   login ── RESOLVE address ──────────────► master: virtual map, aliases, user databases
//!         ◄─ OK L:user R:address … | UNKNOWN | LOOP | TEMP reason
//!   login ── DELIVER sender user… + [spool file] ─► master: delivery worker per mail owner
//!         ◄─ OK ok|temp:why|perm:why …
//! ```
//! A ticket is a random one-time token the master issued for one successful login; without it
//! the master spawns nothing, so a compromised login process cannot become another user.

use std::fs::File;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::{Mutex, PoisonError};

use base64::{engine::general_purpose::STANDARD, Engine};
use roost_protocol::sasl::Credentials;
use roost_protocol::smtp::address::ReversePath;
use tokio::io::AsyncReadExt;

use super::fdpass;
use crate::auth::AuthError;
use crate::config::Family;
use crate::smtp::deliver::Outcome;
use crate::smtp::resolve::{ResolveError, Target};

/// Largest control message (a request line).
pub const MAX_MESSAGE: usize = 64 * 1024;

/// Encodes a user-supplied string for a control line.
pub fn b64(text: &str) -> String {
    STANDARD.encode(text.as_bytes())
}

/// Decodes a field written by [`b64`].
pub fn unb64(field: &str) -> Option<String> {
    String::from_utf8(STANDARD.decode(field).ok()?).ok()
}

/// A parsed request, as the master sees it.
#[derive(Debug, PartialEq, Eq)]
pub enum Request {
    /// Verify credentials.
    Auth {
        /// What the client sent.
        creds: Credentials,
        /// The client's address (for throttling and PAM's rhost).
        peer: IpAddr,
    },
    /// Start a worker for a logged-in session.
    Spawn {
        /// The ticket from the AUTH reply.
        ticket: String,
        /// Which session the worker runs.
        family: Family,
        /// Client address, for logs.
        peer: SocketAddr,
        /// Our address, for logs.
        local: SocketAddr,
        /// Whether the client connection is encrypted.
        tls: bool,
    },
    /// Where does mail for this address go (SMTP/LMTP RCPT, sender checks).
    Resolve {
        /// The address, as the client wrote it.
        address: String,
    },
    /// Deliver the attached spool file to these users' INBOXes.
    Deliver {
        /// The envelope sender, for `Return-Path:` (checked again by the master).
        return_path: ReversePath,
        /// Canonical user names (from an earlier RESOLVE).
        users: Vec<String>,
    },
}

impl Request {
    /// The wire line.
    pub fn encode(&self) -> String {
        match self {
            Self::Auth { creds, peer } => format!(
                "AUTH {} {} {peer}",
                b64(&creds.username),
                b64(&creds.password)
            ),
            Self::Spawn {
                ticket,
                family,
                peer,
                local,
                tls,
            } => {
                format!(
                    "SPAWN {ticket} {} {peer} {local} {}",
                    family.name(),
                    u8::from(*tls)
                )
            }
            Self::Resolve { address } => format!("RESOLVE {}", b64(address)),
            Self::Deliver { return_path, users } => {
                let mut line = format!("DELIVER {}", b64(&return_path.to_string()));
                for user in users {
                    line.push(' ');
                    line.push_str(&b64(user));
                }
                line
            }
        }
    }

    /// Parses a wire line; `None` for anything malformed.
    pub fn decode(line: &str) -> Option<Self> {
        let fields: Vec<&str> = line.trim_end().split(' ').collect();
        match fields.as_slice() {
            ["AUTH", user, pass, peer] => Some(Self::Auth {
                creds: Credentials {
                    username: unb64(user)?,
                    password: unb64(pass)?,
                },
                peer: peer.parse().ok()?,
            }),
            ["SPAWN", ticket, family, peer, local, tls] => Some(Self::Spawn {
                ticket: (*ticket).to_string(),
                family: match *family {
                    "imap" => Family::Imap,
                    "pop3" => Family::Pop3,
                    _ => return None,
                },
                peer: peer.parse().ok()?,
                local: local.parse().ok()?,
                tls: *tls == "1",
            }),
            ["RESOLVE", address] => Some(Self::Resolve {
                address: unb64(address)?,
            }),
            ["DELIVER", return_path, users @ ..] if !users.is_empty() => Some(Self::Deliver {
                return_path: unb64(return_path)?.parse().ok()?,
                users: users.iter().map(|u| unb64(u)).collect::<Option<_>>()?,
            }),
            _ => None,
        }
    }
}

/// The login process's handle on the master.
pub struct MasterClient {
    control: Mutex<UnixStream>,
}

impl MasterClient {
    /// Wraps the login end of the control socket.
    pub fn new(control: UnixStream) -> Self {
        Self {
            control: Mutex::new(control),
        }
    }

    /// Sends one request and waits for the one-line answer.
    async fn request(&self, request: &Request, extra: Option<&OwnedFd>) -> io::Result<String> {
        let (ours, theirs) = UnixStream::pair()?;
        let mut fds = vec![theirs.as_raw_fd()];
        fds.extend(extra.map(|fd| fd.as_raw_fd()));
        {
            let control = self.control.lock().unwrap_or_else(PoisonError::into_inner);
            fdpass::send(&control, request.encode().as_bytes(), &fds)?;
        }
        drop(theirs);
        ours.set_nonblocking(true)?;
        let mut reply = tokio::net::UnixStream::from_std(ours)?;
        let mut text = String::new();
        (&mut reply)
            .take(MAX_MESSAGE as u64)
            .read_to_string(&mut text)
            .await?;
        Ok(text.trim_end().to_string())
    }

    /// Asks the master to verify credentials; `Ok((ticket, canonical name))` on success.
    pub async fn authenticate(
        &self,
        creds: Credentials,
        peer: IpAddr,
    ) -> Result<(String, String), AuthError> {
        let reply = self
            .request(&Request::Auth { creds, peer }, None)
            .await
            .map_err(|e| AuthError::Temporary(format!("master unreachable: {e}")))?;
        let fields: Vec<&str> = reply.split(' ').collect();
        match fields.as_slice() {
            ["OK", ticket, name] => Ok(((*ticket).to_string(), unb64(name).unwrap_or_default())),
            ["FAIL", "failed"] => Err(AuthError::Failed),
            ["FAIL", "throttled"] => Err(AuthError::Throttled),
            ["FAIL", "refused"] => Err(AuthError::Refused { reason: None }),
            ["FAIL", "refused", reason] => Err(AuthError::Refused {
                reason: unb64(reason),
            }),
            _ => Err(AuthError::Temporary(format!("master answered {reply:?}"))),
        }
    }

    /// Asks the master where mail for an address goes.
    pub async fn resolve(&self, address: &str) -> Result<Vec<Target>, ResolveError> {
        let request = Request::Resolve {
            address: address.to_string(),
        };
        let reply = self
            .request(&request, None)
            .await
            .map_err(|e| ResolveError::Temporary(format!("master unreachable: {e}")))?;
        let mut fields = reply.split(' ');
        match fields.next() {
            Some("OK") => fields
                .map(|f| match f.split_once(':') {
                    Some(("L", name)) => unb64(name).map(Target::Local),
                    Some(("R", addr)) => {
                        unb64(addr).and_then(|a| a.parse().ok()).map(Target::Remote)
                    }
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| ResolveError::Temporary(format!("master answered {reply:?}"))),
            Some("UNKNOWN") => Err(ResolveError::Unknown),
            Some("LOOP") => Err(ResolveError::Loop),
            _ => Err(ResolveError::Temporary(format!(
                "master answered {reply:?}"
            ))),
        }
    }

    /// Has the master deliver the spool file to users; one outcome per user, in order.
    pub async fn deliver(
        &self,
        message: &File,
        return_path: &ReversePath,
        users: &[String],
    ) -> Vec<Outcome> {
        let request = Request::Deliver {
            return_path: return_path.clone(),
            users: users.to_vec(),
        };
        let fd = match message.as_fd().try_clone_to_owned() {
            Ok(fd) => fd,
            Err(e) => return vec![Outcome::Temporary(e.to_string()); users.len()],
        };
        let reply = match self.request(&request, Some(&fd)).await {
            Ok(reply) => reply,
            Err(e) => {
                return vec![Outcome::Temporary(format!("master unreachable: {e}")); users.len()]
            }
        };
        let mut outcomes: Vec<Outcome> = match reply.strip_prefix("OK ") {
            Some(rest) => rest.split(' ').map(Outcome::decode).collect(),
            None => Vec::new(),
        };
        outcomes.resize(
            users.len(),
            Outcome::Temporary(format!("master answered {reply:?}")),
        );
        outcomes
    }

    /// Asks the master to start the worker that will serve `worker_end`.
    pub async fn spawn_worker(&self, request: &Request, worker_end: &OwnedFd) -> io::Result<()> {
        let reply = self.request(request, Some(worker_end)).await?;
        match reply.strip_prefix("OK") {
            Some(_) => Ok(()),
            None => Err(io::Error::other(format!("master refused: {reply}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_hostile_bytes_cannot_break_framing() {
        let auth = Request::Auth {
            creds: Credentials {
                username: "a b\nSPAWN x".into(),
                password: "p w\0\r\n".into(),
            },
            peer: "192.0.2.7".parse().unwrap(),
        };
        let line = auth.encode();
        assert!(
            !line.contains('\n') && line.matches(' ').count() == 3,
            "{line}"
        );
        assert_eq!(Request::decode(&line), Some(auth));
        let spawn = Request::Spawn {
            ticket: "00ff".into(),
            family: Family::Pop3,
            peer: "[::1]:5000".parse().unwrap(),
            local: "127.0.0.1:110".parse().unwrap(),
            tls: true,
        };
        assert_eq!(Request::decode(&spawn.encode()), Some(spawn));
        let deliver = Request::Deliver {
            return_path: "\"a b\"@c".parse().unwrap(),
            users: vec!["x y".into(), "z\n".into()],
        };
        assert_eq!(Request::decode(&deliver.encode()), Some(deliver));
        let null = Request::Deliver {
            return_path: ReversePath::Null,
            users: vec!["x".into()],
        };
        assert_eq!(Request::decode(&null.encode()), Some(null));
        // A return path with a line break is refused by the master, whoever sent it.
        let forged = format!("DELIVER {} {}", b64("a\r\nX: y@c"), b64("x"));
        assert_eq!(Request::decode(&forged), None);
        let resolve = Request::Resolve {
            address: "DELIVER x".into(),
        };
        assert_eq!(Request::decode(&resolve.encode()), Some(resolve));
        for bad in [
            "",
            "AUTH",
            "AUTH !!! x 1.2.3.4",
            "SPAWN t smtp 1.2.3.4:1 1.2.3.4:2 0",
            "RM -rf /",
        ] {
            assert_eq!(Request::decode(bad), None, "{bad}");
        }
    }
}
