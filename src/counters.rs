//! Counters since start that the status page, `/status.json` and `/metrics` show: connections
//! and logins per protocol, messages delivered and retrieved, TLS handshakes that failed,
//! storage repairs. The page's last-hour charts are sampled from these totals, so counting an
//! event stays one relaxed atomic add.
//!
//! One process-wide set, so any session can count without being handed anything:
//! `counters::global().login(protocol, ok)`. A worker process (roost started as root) forwards
//! what it counts to the master as one byte per event on its events pipe; the master pushes
//! running totals to the login process, which owns the page ([`Counters::set_worker_totals`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::config::Protocol;

/// Something a worker process counted that the login process's page must show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerEvent {
    /// A storage file was repaired.
    Repair,
    /// A message was delivered into a mailbox.
    Delivered,
    /// A message was retrieved by a client (POP3 RETR, IMAP FETCH of the body).
    Retrieved,
}

impl WorkerEvent {
    /// Its byte on the events pipe (`R` is also what the storage repair hook writes).
    pub fn byte(self) -> u8 {
        match self {
            Self::Repair => b'R',
            Self::Delivered => b'D',
            Self::Retrieved => b'F',
        }
    }

    /// The event a pipe byte stands for.
    pub fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            b'R' => Some(Self::Repair),
            b'D' => Some(Self::Delivered),
            b'F' => Some(Self::Retrieved),
            _ => None,
        }
    }
}

/// What all workers counted so far, as the master tallies it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerTotals {
    /// Storage repairs.
    pub repairs: u64,
    /// Messages delivered.
    pub delivered: u64,
    /// Messages retrieved.
    pub retrieved: u64,
}

impl WorkerTotals {
    /// Adds one event.
    pub fn add(&mut self, event: WorkerEvent) {
        match event {
            WorkerEvent::Repair => self.repairs += 1,
            WorkerEvent::Delivered => self.delivered += 1,
            WorkerEvent::Retrieved => self.retrieved += 1,
        }
    }
}

const PROTOCOLS: usize = Protocol::ALL.len();

/// The process-wide counters.
#[derive(Debug)]
pub struct Counters {
    connections: [AtomicU64; PROTOCOLS],
    logins_ok: [AtomicU64; PROTOCOLS],
    logins_failed: [AtomicU64; PROTOCOLS],
    delivered: AtomicU64,
    retrieved: AtomicU64,
    tls_failed: AtomicU64,
    worker_repairs: AtomicU64,
    worker_delivered: AtomicU64,
    worker_retrieved: AtomicU64,
}

static COUNTERS: Counters = Counters::new();

impl Counters {
    /// All zero.
    const fn new() -> Self {
        Self {
            connections: [const { AtomicU64::new(0) }; PROTOCOLS],
            logins_ok: [const { AtomicU64::new(0) }; PROTOCOLS],
            logins_failed: [const { AtomicU64::new(0) }; PROTOCOLS],
            delivered: AtomicU64::new(0),
            retrieved: AtomicU64::new(0),
            tls_failed: AtomicU64::new(0),
            worker_repairs: AtomicU64::new(0),
            worker_delivered: AtomicU64::new(0),
            worker_retrieved: AtomicU64::new(0),
        }
    }
}

type Forward = Box<dyn Fn(WorkerEvent) + Send + Sync>;
static FORWARD: OnceLock<Forward> = OnceLock::new();

/// This process's counters.
pub fn global() -> &'static Counters {
    &COUNTERS
}

/// In a worker: sends every delivery and retrieval on to the master as well. Only the first
/// call has effect.
pub fn forward_to(hook: impl Fn(WorkerEvent) + Send + Sync + 'static) {
    let _ = FORWARD.set(Box::new(hook));
}

fn index(protocol: Protocol) -> usize {
    Protocol::ALL
        .iter()
        .position(|p| *p == protocol)
        .unwrap_or(0)
}

impl Counters {
    /// Counts a connection accepted on a listener of `protocol` (the status page's per-minute
    /// chart is made from this total).
    pub fn connected(&self, protocol: Protocol) {
        self.connections[index(protocol)].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one login attempt's verdict.
    pub fn login(&self, protocol: Protocol, ok: bool) {
        if ok {
            self.login_ok(protocol);
        } else {
            self.login_failed(protocol);
        }
    }

    /// Counts a successful login.
    pub fn login_ok(&self, protocol: Protocol) {
        self.logins_ok[index(protocol)].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a refused login (wrong password, throttled, auth service error).
    pub fn login_failed(&self, protocol: Protocol) {
        self.logins_failed[index(protocol)].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a message delivered into a mailbox (SMTP/LMTP).
    #[allow(dead_code, reason = "called by SMTP/LMTP delivery once it exists")]
    pub fn delivered(&self) {
        self.delivered.fetch_add(1, Ordering::Relaxed);
        forward(WorkerEvent::Delivered);
    }

    /// Counts a message retrieved by a client (POP3 RETR, IMAP FETCH of a body).
    pub fn retrieved(&self) {
        self.retrieved.fetch_add(1, Ordering::Relaxed);
        forward(WorkerEvent::Retrieved);
    }

    /// Counts a TLS handshake that failed or timed out (implicit TLS or STARTTLS).
    pub fn tls_failed(&self) {
        self.tls_failed.fetch_add(1, Ordering::Relaxed);
    }

    /// Records what the workers counted (the master sends running totals).
    pub fn set_worker_totals(&self, totals: WorkerTotals) {
        self.worker_repairs.store(totals.repairs, Ordering::Relaxed);
        self.worker_delivered
            .store(totals.delivered, Ordering::Relaxed);
        self.worker_retrieved
            .store(totals.retrieved, Ordering::Relaxed);
    }

    /// A copy of every counter, this process's and its workers' added up.
    pub fn snapshot(&self) -> CounterSnapshot {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        CounterSnapshot {
            connections: Protocol::ALL
                .iter()
                .enumerate()
                .map(|(i, p)| ConnectionCount {
                    proto: p.name().to_string(),
                    total: load(&self.connections[i]),
                })
                .collect(),
            logins: Protocol::ALL
                .iter()
                .enumerate()
                .map(|(i, p)| LoginCount {
                    proto: p.name().to_string(),
                    ok: load(&self.logins_ok[i]),
                    failed: load(&self.logins_failed[i]),
                })
                .collect(),
            messages_delivered: load(&self.delivered) + load(&self.worker_delivered),
            messages_retrieved: load(&self.retrieved) + load(&self.worker_retrieved),
            index_repairs: roost_storage::repair::count() + load(&self.worker_repairs),
            tls_handshakes_failed: load(&self.tls_failed),
        }
    }
}

fn forward(event: WorkerEvent) {
    if let Some(hook) = FORWARD.get() {
        hook(event);
    }
}

/// Connections accepted on one protocol's listeners.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionCount {
    /// The listener protocol (`imap`, `pop3s`, ...).
    pub proto: String,
    /// Connections accepted since start.
    pub total: u64,
}

/// Logins of one protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginCount {
    /// The listener protocol (`imap`, `pop3s`, ...).
    pub proto: String,
    /// Successful logins.
    pub ok: u64,
    /// Refused logins.
    pub failed: u64,
}

/// The counters at one moment, as the page and the JSON show them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CounterSnapshot {
    /// Connections accepted per protocol, every protocol listed, in [`Protocol::ALL`] order
    /// (absent in the JSON of older servers).
    #[serde(default)]
    pub connections: Vec<ConnectionCount>,
    /// Logins per protocol, every protocol listed, in [`Protocol::ALL`] order.
    pub logins: Vec<LoginCount>,
    /// Messages delivered into mailboxes.
    pub messages_delivered: u64,
    /// Messages retrieved by clients.
    pub messages_retrieved: u64,
    /// Storage files repaired (index, uidlist, ...).
    pub index_repairs: u64,
    /// TLS handshakes that failed or timed out.
    pub tls_handshakes_failed: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_events_round_trip_through_their_pipe_bytes() {
        let mut totals = WorkerTotals::default();
        for byte in b"RRFDx" {
            if let Some(event) = WorkerEvent::from_byte(*byte) {
                assert_eq!(event.byte(), *byte);
                totals.add(event);
            }
        }
        assert_eq!(
            totals,
            WorkerTotals {
                repairs: 2,
                delivered: 1,
                retrieved: 1
            }
        );
    }

    #[test]
    fn logins_are_counted_per_protocol() {
        let counters = Counters::new();
        counters.login(Protocol::Pop3s, true);
        counters.login(Protocol::Pop3s, false);
        counters.login(Protocol::Imap, false);
        counters.connected(Protocol::Imap);
        counters.connected(Protocol::Imap);
        counters.set_worker_totals(WorkerTotals {
            repairs: 0,
            delivered: 3,
            retrieved: 4,
        });
        let snap = counters.snapshot();
        let pop3s = snap.logins.iter().find(|l| l.proto == "pop3s").unwrap();
        assert_eq!((pop3s.ok, pop3s.failed), (1, 1));
        let imap = snap.logins.iter().find(|l| l.proto == "imap").unwrap();
        assert_eq!((imap.ok, imap.failed), (0, 1));
        assert_eq!((snap.messages_delivered, snap.messages_retrieved), (3, 4));
        let imap = snap.connections.iter().find(|c| c.proto == "imap").unwrap();
        assert_eq!(imap.total, 2);
    }
}
