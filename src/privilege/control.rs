//! The control channel between the unprivileged login process and the root master.
//!
//! Each request is one SOCK_SEQPACKET message on the control socket: a text line, with a fresh
//! reply socket attached (and, for SPAWN, the socket the new worker will serve). The master
//! answers one line on the reply socket and closes it. User-supplied strings travel base64, so
//! no byte a client sends can break the framing.
//!
//! ```text
//!   login ── AUTH user pass peer ─────────► master: passdbs, delay, throttle
//!         ◄─ TICKET ticket name | DENIED failed|throttled|refused [reason]|temporary reason
//!   login ── SPAWN ticket family peer local tls + [worker socket] ─► master: fork/exec worker
//!         ◄─ STARTED | REFUSED reason ─────     as the mail owner, stdin = worker socket
//!   login ── RESOLVE address ──────────────► master: virtual map, aliases, user databases
//!         ◄─ TARGETS L:user R:address … | UNRESOLVED unknown|loop|temporary reason
//!   login ── DELIVER sender user… + [spool file] ─► master: delivery worker per mail owner
//!         ◄─ OUTCOMES ok|temp:why|perm:why …
//! ```
//! Both sides speak through [`Request`] and [`Reply`], whose `encode`/`decode` are tested to
//! round-trip; nothing else writes or parses a control line.
//! A ticket is a random one-time token the master issued for one successful login; without it
//! the master spawns nothing, so a compromised login process cannot become another user.

use std::fs::File;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex, PoisonError};

use base64::{engine::general_purpose::STANDARD, Engine};
use roost_protocol::sasl::Credentials;
use roost_protocol::smtp::address::{Address, ReversePath};
use tokio::io::AsyncReadExt;

use super::fdpass;
use crate::auth::AuthError;
use crate::config::Family;
use crate::filter::Followup;
use crate::listen::acceptor::Continuation;
use crate::listen::conn::Connection;
use crate::session::privileged::{
    BoxFuture, Deliveries, Grant, LocalRecipient, Login, Outcome, Privileged, ResolveError, Target,
};
use crate::session::SessionContext;

/// Largest control message (a request line).
pub const MAX_MESSAGE: usize = 64 * 1024;

/// Largest reply read from the master (outcomes and follow-ups such as vacation replies).
pub const MAX_REPLY: u64 = 8 * 1024 * 1024;

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
        /// Canonical user names (from an earlier RESOLVE) and the addresses they were sent to.
        users: Vec<LocalRecipient>,
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
                for r in users {
                    line.push_str(&format!(" {}:{}", b64(&r.user), b64(&r.address)));
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
                    "managesieve" => Family::Sieve,
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
                users: users
                    .iter()
                    .map(|token| {
                        let (user, address) = token.split_once(':')?;
                        Some(LocalRecipient {
                            user: unb64(user)?,
                            address: unb64(address)?,
                        })
                    })
                    .collect::<Option<_>>()?,
            }),
            _ => None,
        }
    }
}

/// The master's answer to one [`Request`].
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    /// AUTH succeeded: the one-time ticket for SPAWN and the canonical user name.
    Ticket {
        /// The ticket.
        ticket: String,
        /// The user name as the passdb spells it.
        name: String,
    },
    /// AUTH did not succeed.
    Denied(AuthError),
    /// SPAWN: the worker runs and serves the socket.
    Started,
    /// SPAWN: shutdown has begun; no session starts any more.
    Stopping,
    /// The request could not be carried out (an unknown ticket, shutdown, a malformed request).
    Refused(String),
    /// RESOLVE: every target of the address.
    Targets(Vec<Target>),
    /// RESOLVE found no target.
    Unresolved(ResolveError),
    /// DELIVER: one outcome per user, in the request's order, and the mail to send.
    Outcomes(Deliveries),
}

impl Reply {
    /// The wire line (without its line feed).
    pub fn encode(&self) -> String {
        match self {
            Self::Ticket { ticket, name } => format!("TICKET {ticket} {}", b64(name)),
            Self::Denied(why) => format!("DENIED {}", encode_denial(why)),
            Self::Started => "STARTED".into(),
            Self::Stopping => "STOPPING".into(),
            Self::Refused(reason) => format!("REFUSED {}", b64(reason)),
            Self::Targets(targets) => {
                let mut line = String::from("TARGETS");
                for target in targets {
                    line.push(' ');
                    line.push_str(&match target {
                        Target::Local(name) => format!("L:{}", b64(name)),
                        Target::Remote(addr) => format!("R:{}", b64(&addr.to_string())),
                    });
                }
                line
            }
            Self::Unresolved(why) => match why {
                ResolveError::Unknown => "UNRESOLVED unknown".into(),
                ResolveError::Loop => "UNRESOLVED loop".into(),
                ResolveError::Temporary(e) => format!("UNRESOLVED temporary {}", b64(e)),
            },
            Self::Outcomes(deliveries) => format!("OUTCOMES {}", encode_deliveries(deliveries)),
        }
    }

    /// Parses a wire line; `None` for anything malformed.
    pub fn decode(line: &str) -> Option<Self> {
        let fields: Vec<&str> = line.trim_end().split(' ').collect();
        match fields.as_slice() {
            ["TICKET", ticket, name] => Some(Self::Ticket {
                ticket: (*ticket).to_string(),
                name: unb64(name)?,
            }),
            ["DENIED", why @ ..] => decode_denial(why).map(Self::Denied),
            ["STARTED"] => Some(Self::Started),
            ["STOPPING"] => Some(Self::Stopping),
            ["REFUSED", reason] => unb64(reason).map(Self::Refused),
            ["TARGETS", targets @ ..] => targets
                .iter()
                .map(|t| match t.split_once(':')? {
                    ("L", name) => unb64(name).map(Target::Local),
                    ("R", addr) => unb64(addr)?.parse().ok().map(Target::Remote),
                    _ => None,
                })
                .collect::<Option<_>>()
                .map(Self::Targets),
            ["UNRESOLVED", "unknown"] => Some(Self::Unresolved(ResolveError::Unknown)),
            ["UNRESOLVED", "loop"] => Some(Self::Unresolved(ResolveError::Loop)),
            ["UNRESOLVED", "temporary", e] => {
                unb64(e).map(|e| Self::Unresolved(ResolveError::Temporary(e)))
            }
            ["OUTCOMES", tokens @ ..] => decode_deliveries(tokens).map(Self::Outcomes),
            _ => None,
        }
    }
}

fn encode_denial(why: &AuthError) -> String {
    match why {
        AuthError::Failed => "failed".into(),
        AuthError::Throttled => "throttled".into(),
        AuthError::Refused { reason: None } => "refused".into(),
        AuthError::Refused {
            reason: Some(reason),
        } => format!("refused {}", b64(reason)),
        AuthError::Temporary(reason) => format!("temporary {}", b64(reason)),
    }
}

fn decode_denial(fields: &[&str]) -> Option<AuthError> {
    match fields {
        ["failed"] => Some(AuthError::Failed),
        ["throttled"] => Some(AuthError::Throttled),
        ["refused"] => Some(AuthError::Refused { reason: None }),
        ["refused", reason] => Some(AuthError::Refused {
            reason: Some(unb64(reason)?),
        }),
        ["temporary", reason] => Some(AuthError::Temporary(unb64(reason)?)),
        _ => None,
    }
}

/// One delivery outcome as a token: `ok`, `temp:BASE64`, `perm:BASE64` (also what a
/// `roost deliver-worker` prints, one line per user).
pub fn encode_outcome(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Delivered => "ok".into(),
        Outcome::Temporary(why) => format!("temp:{}", b64(why)),
        Outcome::Permanent(why) => format!("perm:{}", b64(why)),
        Outcome::MailboxFull => "full".into(),
        Outcome::Rejected(why) => format!("rej:{}", b64(why)),
    }
}

/// Outcome tokens, then one token per follow-up (one too big to pass is dropped and logged).
pub fn encode_deliveries(deliveries: &Deliveries) -> String {
    let outcomes = deliveries.outcomes.iter().map(encode_outcome);
    let followups = deliveries
        .followups
        .iter()
        .map(Followup::encode)
        .filter(|token| {
            let fits = token.len() <= crate::filter::followup::MAX_ENCODED;
            if !fits {
                tracing::warn!(
                    bytes = token.len(),
                    "a follow-up of a delivery is too big; not sent"
                );
            }
            fits
        });
    outcomes.chain(followups).collect::<Vec<_>>().join(" ")
}

/// Parses what [`encode_deliveries`] wrote (tokens split on whitespace); `None` if any token
/// is malformed.
pub fn decode_deliveries(tokens: &[&str]) -> Option<Deliveries> {
    let mut out = Deliveries::default();
    for token in tokens.iter().filter(|t| !t.is_empty()) {
        match token.starts_with("fu:") {
            // A follow-up that cannot be read costs that one mail, never the outcomes: a
            // delivery reported as failed would be stored again at the retry.
            true => match Followup::decode(token) {
                Some(followup) => out.followups.push(followup),
                None => tracing::warn!("a follow-up of a delivery is unreadable; not sent"),
            },
            false => out.outcomes.push(decode_outcome(token)?),
        }
    }
    Some(out)
}

/// Parses a token written by [`encode_outcome`]; `None` if malformed.
pub fn decode_outcome(token: &str) -> Option<Outcome> {
    match token.split_once(':') {
        None if token == "ok" => Some(Outcome::Delivered),
        None if token == "full" => Some(Outcome::MailboxFull),
        Some(("perm", why)) => unb64(why).map(Outcome::Permanent),
        Some(("temp", why)) => unb64(why).map(Outcome::Temporary),
        Some(("rej", why)) => unb64(why).map(Outcome::Rejected),
        _ => None,
    }
}

/// The login process's handle on the master; cheap to clone (one shared control socket).
#[derive(Clone)]
pub struct MasterClient {
    control: Arc<Mutex<UnixStream>>,
}

impl MasterClient {
    /// Wraps the login end of the control socket.
    pub fn new(control: UnixStream) -> Self {
        Self {
            control: Arc::new(Mutex::new(control)),
        }
    }

    /// Sends one request and waits for the one-line answer.
    async fn request(&self, request: &Request, extra: &[BorrowedFd<'_>]) -> io::Result<Reply> {
        let (ours, theirs) = UnixStream::pair()?;
        let mut fds = vec![theirs.as_raw_fd()];
        fds.extend(extra.iter().map(|fd| fd.as_raw_fd()));
        {
            let control = self.control.lock().unwrap_or_else(PoisonError::into_inner);
            fdpass::send(&control, request.encode().as_bytes(), &fds)?;
        }
        drop(theirs);
        ours.set_nonblocking(true)?;
        let mut reply = tokio::net::UnixStream::from_std(ours)?;
        let mut text = String::new();
        (&mut reply)
            .take(MAX_REPLY)
            .read_to_string(&mut text)
            .await?;
        Reply::decode(&text)
            .ok_or_else(|| io::Error::other(format!("master answered {:?}", text.trim_end())))
    }

    /// Asks the master to hand `sockets` to the session's worker: one end of a socketpair the
    /// login process relays, or the client's own socket and the session's lifeline.
    pub async fn spawn_worker(
        &self,
        request: &Request,
        sockets: &[BorrowedFd<'_>],
    ) -> Result<(), SpawnError> {
        match self.request(request, sockets).await? {
            Reply::Started => Ok(()),
            Reply::Stopping => Err(SpawnError::Stopping),
            Reply::Refused(reason) => {
                Err(io::Error::other(format!("master refused: {reason}")).into())
            }
            other => Err(unexpected(&other).into()),
        }
    }
}

/// Why a logged-in session got no worker.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// Shutdown has begun: the client hears the protocol's goodbye, not an error.
    #[error("shutting down")]
    Stopping,
    /// The master refused or could not be reached.
    #[error(transparent)]
    Failed(#[from] io::Error),
}

fn unexpected(reply: &Reply) -> io::Error {
    io::Error::other(format!("master answered {:?}", reply.encode()))
}

impl Privileged for MasterClient {
    fn authenticate(
        &self,
        creds: Credentials,
        peer: IpAddr,
    ) -> BoxFuture<'_, Result<Login, AuthError>> {
        Box::pin(async move {
            let reply = self.request(&Request::Auth { creds, peer }, &[]).await;
            match reply.map_err(|e| AuthError::Temporary(format!("master unreachable: {e}")))? {
                Reply::Ticket { ticket, name } => {
                    let grant = TicketGrant {
                        master: self.clone(),
                        ticket,
                    };
                    Ok(Login::new(name, grant))
                }
                Reply::Denied(why) => Err(why),
                other => Err(AuthError::Temporary(unexpected(&other).to_string())),
            }
        })
    }

    fn resolve<'a>(
        &'a self,
        address: &'a Address,
    ) -> BoxFuture<'a, Result<Vec<Target>, ResolveError>> {
        Box::pin(async move {
            let request = Request::Resolve {
                address: address.to_string(),
            };
            let reply = self.request(&request, &[]).await;
            match reply.map_err(|e| ResolveError::Temporary(format!("master unreachable: {e}")))? {
                Reply::Targets(targets) => Ok(targets),
                Reply::Unresolved(why) => Err(why),
                other => Err(ResolveError::Temporary(unexpected(&other).to_string())),
            }
        })
    }

    fn deliver<'a>(
        &'a self,
        message: &'a File,
        return_path: &'a ReversePath,
        users: &'a [LocalRecipient],
    ) -> BoxFuture<'a, Deliveries> {
        Box::pin(async move {
            let request = Request::Deliver {
                return_path: return_path.clone(),
                users: users.to_vec(),
            };
            let failed = |why: String| Deliveries::all(Outcome::Temporary(why), users.len());
            let mut outcomes = match self.request(&request, &[message.as_fd()]).await {
                Ok(Reply::Outcomes(outcomes)) => outcomes,
                Ok(other) => return failed(unexpected(&other).to_string()),
                Err(e) => return failed(format!("master unreachable: {e}")),
            };
            outcomes.outcomes.resize(
                users.len(),
                Outcome::Temporary("the master answered too few outcomes".into()),
            );
            outcomes
        })
    }
}

/// A login the master verified: the session runs in a worker the master starts for the ticket.
struct TicketGrant {
    master: MasterClient,
    ticket: String,
}

impl Grant for TicketGrant {
    fn start(self: Box<Self>, conn: Connection, ctx: &SessionContext) -> Continuation {
        let route = super::relay::Route::of(ctx);
        super::relay::relay_via_master(conn, route, self.master, self.ticket)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recipient(user: &str, address: &str) -> LocalRecipient {
        LocalRecipient {
            user: user.into(),
            address: address.into(),
        }
    }

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
        let sieve = Request::Spawn {
            ticket: "01".into(),
            family: Family::Sieve,
            peer: "127.0.0.1:5000".parse().unwrap(),
            local: "127.0.0.1:4190".parse().unwrap(),
            tls: false,
        };
        assert_eq!(Request::decode(&sieve.encode()), Some(sieve));
        let deliver = Request::Deliver {
            return_path: "\"a b\"@c".parse().unwrap(),
            users: vec![recipient("x y", "a@b"), recipient("z\n", "c+d@e")],
        };
        assert_eq!(Request::decode(&deliver.encode()), Some(deliver));
        let null = Request::Deliver {
            return_path: ReversePath::Null,
            users: vec![recipient("x", "x@y")],
        };
        assert_eq!(Request::decode(&null.encode()), Some(null));
        // A return path with a line break is refused by the master, whoever sent it.
        let forged = format!("DELIVER {} {}:{}", b64("a\r\nX: y@c"), b64("x"), b64("x@y"));
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

    #[test]
    fn a_follow_up_too_big_or_unreadable_costs_only_itself() {
        let huge = Followup::Message {
            from: String::new(),
            to: "a@b".into(),
            message: vec![b'x'; crate::filter::followup::MAX_ENCODED],
        };
        let small = Followup::Redirect {
            to: "b@c".into(),
            delivered_to: "a@b".into(),
        };
        let sent = Deliveries {
            outcomes: vec![Outcome::Delivered],
            followups: vec![huge, small.clone()],
        };
        let line = Reply::Outcomes(sent).encode();
        let expected = Deliveries {
            outcomes: vec![Outcome::Delivered],
            followups: vec![small],
        };
        assert_eq!(
            Reply::decode(&line),
            Some(Reply::Outcomes(expected.clone()))
        );
        let garbled = format!("{line} fu:!!!");
        assert_eq!(Reply::decode(&garbled), Some(Reply::Outcomes(expected)));
    }

    #[test]
    fn replies_round_trip_and_garbage_is_refused() {
        let replies = [
            Reply::Ticket {
                ticket: "00ff".into(),
                name: "a b\nDENIED failed".into(),
            },
            Reply::Denied(AuthError::Failed),
            Reply::Denied(AuthError::Throttled),
            Reply::Denied(AuthError::Refused { reason: None }),
            Reply::Denied(AuthError::Refused {
                reason: Some("moved to the new server".into()),
            }),
            Reply::Denied(AuthError::Temporary("ldap down".into())),
            Reply::Started,
            Reply::Stopping,
            Reply::Refused("unknown or expired ticket".into()),
            Reply::Targets(vec![
                Target::Local("alice".into()),
                Target::Remote("out@remote.example".parse().unwrap()),
            ]),
            Reply::Targets(vec![]),
            Reply::Unresolved(ResolveError::Unknown),
            Reply::Unresolved(ResolveError::Loop),
            Reply::Unresolved(ResolveError::Temporary("map: EIO".into())),
            Reply::Outcomes(Deliveries {
                outcomes: vec![
                    Outcome::Delivered,
                    Outcome::Temporary("disk full: a b".into()),
                    Outcome::Permanent("no such user".into()),
                    Outcome::Rejected("not wanted".into()),
                ],
                followups: vec![Followup::Redirect {
                    to: "b@c".into(),
                    delivered_to: "a@b".into(),
                }],
            }),
        ];
        for reply in replies {
            let line = reply.encode();
            assert!(!line.contains('\n'), "{line}");
            assert_eq!(Reply::decode(&line), Some(reply), "{line}");
        }
        for bad in [
            "",
            "OK",
            "TICKET x",
            "DENIED",
            "DENIED maybe",
            "REFUSED !!!",
            "TARGETS X:abc",
            "UNRESOLVED temporary",
            "OUTCOMES ok maybe",
        ] {
            assert_eq!(Reply::decode(bad), None, "{bad}");
        }
    }
}
