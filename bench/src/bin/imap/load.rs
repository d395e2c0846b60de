//! The mixed command load: CLIENTS threads, each one IMAP connection logged in as the same user
//! on the same INBOX, sending one command after another (no think time) from a weighted mix of
//! what Thunderbird and Outlook send, until a deadline.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use roost_bench::harness::interrupted;
use roost_bench::imap_client::{appenduid, Imap, Reply, Status};
use roost_bench::imap_mail::{self, Rng};

use crate::{PASSWORD, USER};

/// Commands completed by every load client so far: profiles divide by its growth.
pub static COMMANDS: AtomicU64 = AtomicU64::new(0);

/// One kind of command of the mix.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Noop,
    FetchHeaders,
    FetchBody,
    FetchFlags,
    StoreSeen,
    StoreUnseen,
    SearchUnseen,
    SearchSubject,
    Select,
    Append,
    StoreDeleted,
    UidExpunge,
}

/// Every command kind, in the order reports list them.
pub const OPS: [Op; 12] = [
    Op::Noop,
    Op::FetchHeaders,
    Op::FetchBody,
    Op::FetchFlags,
    Op::StoreSeen,
    Op::StoreUnseen,
    Op::SearchUnseen,
    Op::SearchSubject,
    Op::Select,
    Op::Append,
    Op::StoreDeleted,
    Op::UidExpunge,
];

impl Op {
    fn index(self) -> usize {
        OPS.iter().position(|&o| o == self).unwrap_or(0)
    }

    /// What the command looks like, for reports.
    pub fn label(self) -> &'static str {
        match self {
            Op::Noop => "NOOP",
            Op::FetchHeaders => "UID FETCH a:b (… BODY.PEEK[HEADER.FIELDS]) ×50",
            Op::FetchBody => "UID FETCH u (… BODY.PEEK[])",
            Op::FetchFlags => "UID FETCH 1:* (UID FLAGS)",
            Op::StoreSeen => "UID STORE u +FLAGS (\\Seen)",
            Op::StoreUnseen => "UID STORE u -FLAGS (\\Seen)",
            Op::SearchUnseen => "UID SEARCH UNSEEN",
            Op::SearchSubject => "UID SEARCH SUBJECT \"…\"",
            Op::Select => "SELECT INBOX (again)",
            Op::Append => "APPEND (2 kB, LITERAL+)",
            Op::StoreDeleted => "UID STORE u +FLAGS.SILENT (\\Deleted)",
            Op::UidExpunge => "UID EXPUNGE u",
        }
    }
}

/// Which mix the clients draw from.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mix {
    /// Thunderbird's and Outlook's commands, weighted.
    Clients,
    /// Only `UID STORE u ±FLAGS (\Seen)`: the cost of a change, against the mailbox size.
    Store,
}

/// What a client picks next, out of 100. `UidExpunge` stands for the pair STORE \Deleted +
/// UID EXPUNGE of a message the client appended (an APPEND when it has none left).
const CLIENT_MIX: [(Op, u32); 11] = [
    (Op::Noop, 21),
    (Op::FetchHeaders, 12),
    (Op::FetchBody, 20),
    (Op::FetchFlags, 3),
    (Op::StoreSeen, 12),
    (Op::StoreUnseen, 5),
    (Op::SearchUnseen, 6),
    (Op::SearchSubject, 4),
    (Op::Select, 3),
    (Op::Append, 7),
    (Op::UidExpunge, 7),
];

const STORE_MIX: [(Op, u32); 2] = [(Op::StoreSeen, 1), (Op::StoreUnseen, 1)];

fn pick(rng: &mut Rng, mix: Mix) -> Op {
    let table: &[(Op, u32)] = match mix {
        Mix::Clients => &CLIENT_MIX,
        Mix::Store => &STORE_MIX,
    };
    let total: u32 = table.iter().map(|(_, w)| w).sum();
    let mut r = (rng.next_u64() % u64::from(total)) as u32;
    for &(op, w) in table {
        if r < w {
            return op;
        }
        r -= w;
    }
    Op::Noop
}

/// Counts and latencies of one command kind.
#[derive(Default, Clone)]
pub struct OpAcc {
    /// Tagged OKs.
    pub ok: u64,
    /// Tagged NOs and BADs.
    pub err: u64,
    /// Bytes received for them.
    pub bytes: u64,
    /// Every latency, µs (sorted once the load is over).
    pub lat_us: Vec<u32>,
}

#[derive(Default)]
struct ClientResult {
    ops: Vec<OpAcc>,
    errors: Vec<String>,
    fatal: Option<String>,
}

/// What a whole load did.
pub struct Load {
    /// Per command kind, in the order of [`OPS`].
    pub ops: Vec<OpAcc>,
    /// The first few NO/BAD exchanges.
    pub errors: Vec<String>,
    /// Why clients (or the server) gave up.
    pub fatal: Vec<String>,
    /// Clients that ran to the end.
    pub clients_ok: usize,
    /// When every client had logged in and the load began.
    pub start: Instant,
    /// When the last client finished.
    pub end: Instant,
}

impl Load {
    /// How long the load ran.
    pub fn secs(&self) -> f64 {
        (self.end - self.start).as_secs_f64()
    }
    /// Commands that ended OK.
    pub fn ok(&self) -> u64 {
        self.ops.iter().map(|o| o.ok).sum()
    }
    /// Commands that ended NO or BAD.
    pub fn errors(&self) -> u64 {
        self.ops.iter().map(|o| o.err).sum()
    }
    /// OK commands per second.
    pub fn rate(&self) -> f64 {
        self.ok() as f64 / self.secs()
    }
    /// Every command's latency, sorted.
    pub fn all_latencies(&self) -> Vec<u32> {
        let mut all: Vec<u32> = self
            .ops
            .iter()
            .flat_map(|o| o.lat_us.iter().copied())
            .collect();
        all.sort_unstable();
        all
    }
}

/// The `p` quantile of sorted microseconds, in milliseconds.
pub fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

/// The header fields Thunderbird asks for when it lists a folder.
pub const HEADER_FIELDS: &str = "From To Cc Bcc Subject Date Message-ID Priority X-Priority \
                                 References Newsgroups In-Reply-To Content-Type Reply-To";

/// The commands for `op` (two for the STORE \Deleted + UID EXPUNGE pair).
fn steps(
    op: Op,
    rng: &mut Rng,
    uids: &[u32],
    messages: usize,
    mine: &mut VecDeque<u32>,
    (id, appended): (usize, &mut u64),
) -> Vec<(Op, String, Option<Vec<u8>>)> {
    let u = uids[rng.range(0, uids.len())];
    let one = |command: String| vec![(op, command, None)];
    match op {
        Op::Noop => one("NOOP".into()),
        Op::FetchHeaders => {
            let k = rng.range(0, uids.len().saturating_sub(49).max(1));
            let last = uids[(k + 49).min(uids.len() - 1)];
            one(format!(
                "UID FETCH {}:{last} (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS ({HEADER_FIELDS})])",
                uids[k]
            ))
        }
        Op::FetchBody => one(format!("UID FETCH {u} (UID RFC822.SIZE FLAGS BODY.PEEK[])")),
        Op::FetchFlags => one("UID FETCH 1:* (UID FLAGS)".into()),
        Op::StoreSeen => one(format!("UID STORE {u} +FLAGS (\\Seen)")),
        Op::StoreUnseen => one(format!("UID STORE {u} -FLAGS (\\Seen)")),
        Op::SearchUnseen => one("UID SEARCH UNSEEN".into()),
        Op::SearchSubject => {
            let i = rng.range(0, messages);
            one(format!("UID SEARCH SUBJECT \"message {i} about\""))
        }
        Op::Select => one("SELECT INBOX".into()),
        Op::Append => {
            *appended += 1;
            let m = imap_mail::small_message(id, *appended);
            vec![(op, "APPEND INBOX (\\Seen)".into(), Some(m))]
        }
        Op::UidExpunge | Op::StoreDeleted => match mine.pop_front() {
            Some(m) => vec![
                (
                    Op::StoreDeleted,
                    format!("UID STORE {m} +FLAGS.SILENT (\\Deleted)"),
                    None,
                ),
                (Op::UidExpunge, format!("UID EXPUNGE {m}"), None),
            ],
            None => vec![(Op::Noop, "NOOP".into(), None)],
        },
    }
}

/// Counts one answered command; remembers the UID of what it appended.
fn count(
    result: &mut ClientResult,
    mine: &mut VecDeque<u32>,
    op: Op,
    command: &str,
    r: &Reply,
    start: Instant,
) {
    let acc = &mut result.ops[op.index()];
    acc.lat_us
        .push(start.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
    acc.bytes += r.bytes;
    if r.status != Status::Ok {
        acc.err += 1;
        if result.errors.len() < 5 {
            result.errors.push(format!("C: {command}\nS: {}", r.tagged));
        }
        return;
    }
    acc.ok += 1;
    COMMANDS.fetch_add(1, Ordering::Relaxed);
    if op == Op::Append {
        match appenduid(&r.tagged) {
            Some(uid) => mine.push_back(uid),
            None if result.errors.len() < 5 => {
                result.errors.push(format!("no APPENDUID: {}", r.tagged))
            }
            None => {}
        }
    }
}

/// Logs in and selects INBOX.
fn setup(id: usize, addr: SocketAddr) -> std::io::Result<Imap> {
    let mut c = Imap::connect(addr, &format!("c{id}."), 256 * 1024)?;
    c.login(USER, PASSWORD)?;
    let r = c.command("SELECT INBOX", None, false)?;
    if r.status != Status::Ok {
        return Err(std::io::Error::other(format!("SELECT: {}", r.tagged)));
    }
    Ok(c)
}

/// What one client's run needs to know.
#[derive(Clone)]
struct Plan {
    addr: SocketAddr,
    uids: Arc<Vec<u32>>,
    messages: usize,
    seconds: u64,
    mix: Mix,
}

/// One client of the load: log in, SELECT, wait for the others, then commands until the
/// deadline.
fn client(id: usize, plan: Plan, barrier: &Barrier) -> ClientResult {
    let mut result = ClientResult {
        ops: vec![OpAcc::default(); OPS.len()],
        ..Default::default()
    };
    let setup = setup(id, plan.addr);
    barrier.wait();
    let mut c = match setup {
        Ok(c) => c,
        Err(e) => {
            result.fatal = Some(format!("client {id} setup: {e}"));
            return result;
        }
    };
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ ((id as u64 + 1) * 0x1000_0001));
    let mut mine: VecDeque<u32> = VecDeque::new();
    let mut appended = 0u64;
    let deadline = Instant::now() + Duration::from_secs(plan.seconds);
    while Instant::now() < deadline && !interrupted() {
        let mut op = pick(&mut rng, plan.mix);
        if op == Op::UidExpunge && mine.is_empty() {
            op = Op::Append;
        }
        let todo = steps(
            op,
            &mut rng,
            &plan.uids,
            plan.messages,
            &mut mine,
            (id, &mut appended),
        );
        for (op, command, literal) in todo {
            let start = Instant::now();
            match c.command(&command, literal.as_deref(), false) {
                Ok(r) => count(&mut result, &mut mine, op, &command, &r, start),
                Err(e) => {
                    let done: u64 = result.ops.iter().map(|a| a.ok).sum();
                    result.fatal = Some(format!(
                        "client {id}: {e} (after {done} commands; last: {command})"
                    ));
                    return result;
                }
            }
        }
    }
    let _ = c.command("LOGOUT", None, false);
    result
}

/// Runs `clients` clients for `seconds` against `addr`; returns when the last has finished.
pub fn run_load(
    addr: SocketAddr,
    uids: &Arc<Vec<u32>>,
    (clients, seconds, messages): (usize, u64, usize),
    mix: Mix,
) -> Load {
    let barrier = Arc::new(Barrier::new(clients + 1));
    let plan = Plan {
        addr,
        uids: Arc::clone(uids),
        messages,
        seconds,
        mix,
    };
    let handles: Vec<_> = (0..clients)
        .map(|id| {
            let (plan, barrier) = (plan.clone(), Arc::clone(&barrier));
            std::thread::spawn(move || client(id, plan, &barrier))
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    let mut load = Load {
        ops: vec![OpAcc::default(); OPS.len()],
        errors: vec![],
        fatal: vec![],
        clients_ok: 0,
        start,
        end: start,
    };
    for h in handles {
        let r = h.join().unwrap_or_else(|_| ClientResult {
            fatal: Some("client thread panicked".into()),
            ..Default::default()
        });
        for (acc, mut part) in load.ops.iter_mut().zip(r.ops) {
            acc.ok += part.ok;
            acc.err += part.err;
            acc.bytes += part.bytes;
            acc.lat_us.append(&mut part.lat_us);
        }
        load.errors.extend(r.errors);
        match r.fatal {
            Some(f) => load.fatal.push(f),
            None => load.clients_ok += 1,
        }
    }
    load.end = Instant::now();
    for acc in &mut load.ops {
        acc.lat_us.sort_unstable();
    }
    load
}
