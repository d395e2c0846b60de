//! `cargo build --release -p roost -p roost-bench &&
//!  cargo run --release -p roost-bench --bin imap -- [--clients 20] [--seconds 20]
//!  [--messages 2000] [--idle 1000] [--only workers,single,dovecot] [--dovecot-untuned] [--keep]`
//!
//! IMAP under concurrent load (numbers to report, not a test). Builds one maildir INBOX of
//! MESSAGES realistic messages (a separate copy per server) and, one server after another:
//!
//! 1. starts it: the release `roost` (`target/release/roost`, or `$ROOST_BIN`) as root
//!    (master, login process, one worker process per session, mail owned by `nobody`), the same
//!    binary as an ordinary user (`nobody`: everything in one process), and, when run as root
//!    with `dovecot-imapd` installed, a private, tuned Dovecot instance on the same data;
//! 2. first sync: one client selects the new INBOX and fetches every message's header fields,
//!    as a mail client's first visit does;
//! 3. load: CLIENTS concurrent clients (threads, raw IMAP over loopback) log in as the same
//!    user, select INBOX and then, for SECONDS, send one command after another (no think time)
//!    from a weighted mix of what Thunderbird and Outlook send: header fields of 50 messages,
//!    one whole message, UID FLAGS of all, STORE ±\Seen, SEARCH UNSEEN, SEARCH SUBJECT, NOOP,
//!    SELECT, APPEND of a small message and UID EXPUNGE of one the client appended (so the
//!    mailbox keeps its size). Every tagged OK counts; NO and BAD are errors, printed with
//!    their command;
//! 4. idle: the server is started afresh, IDLE connections log in (then select INBOX, then
//!    enter IDLE), and the growth of the server's memory is divided by their number.
//!
//! Memory is that of the server's whole process tree: the sum of VmHWM (peak RSS) of its
//! processes, VmRSS and PSS (shared pages divided among the processes sharing them) sampled
//! while the load runs. Everything is bounded: run time, connection counts, every wait.

#[path = "../imap_client.rs"]
mod imap_client;
#[path = "../imap_mail.rs"]
mod imap_mail;
#[path = "../imap_proc.rs"]
mod imap_proc;

#[path = "../harness.rs"]
mod harness;

use harness::{chown, free_port, is_root, roost_bin, wait_listening};
use std::collections::VecDeque;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use imap_client::{appenduid, Imap, Status};
use imap_mail::Rng;
use imap_proc::{snapshot, tree_cpu_secs, Sampler, Server, Snap};

const USER: &str = "bench";
const PASSWORD: &str = "bench-pw-1";
const DOVECOT: &str = "/usr/sbin/dovecot";
/// Dovecot moves a connection that has been in IDLE this long into its imap-hibernate process.
const HIBERNATE_SECS: u64 = 5;

/// The header fields Thunderbird asks for when it lists a folder.
const HEADER_FIELDS: &str = "From To Cc Bcc Subject Date Message-ID Priority X-Priority \
                             References Newsgroups In-Reply-To Content-Type Reply-To";

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::Relaxed);
}

fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
}

struct Opts {
    clients: usize,
    seconds: u64,
    messages: usize,
    idle: usize,
    only: Vec<String>,
    dovecot_untuned: bool,
    keep: bool,
}

fn usage() -> ! {
    eprintln!(
        "usage: imap [--clients 1..=200 (20)] [--seconds 1..=300 (20)] \
         [--messages 100..=20000 (2000)] [--idle 0..=5000 (1000)] \
         [--only workers,single,dovecot] [--dovecot-untuned] [--keep]"
    );
    std::process::exit(2)
}

fn parse_opts() -> Opts {
    let mut o = Opts {
        clients: 20,
        seconds: 20,
        messages: 2000,
        idle: 1000,
        only: vec!["workers".into(), "single".into(), "dovecot".into()],
        dovecot_untuned: false,
        keep: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut num = |lo: usize, hi: usize| -> usize {
            match args.next().and_then(|v| v.parse().ok()) {
                Some(v) if (lo..=hi).contains(&v) => v,
                _ => usage(),
            }
        };
        match a.as_str() {
            "--clients" => o.clients = num(1, 200),
            "--seconds" => o.seconds = num(1, 300) as u64,
            "--messages" => o.messages = num(100, 20_000),
            "--idle" => o.idle = num(0, 5_000),
            "--only" => {
                o.only = args
                    .next()
                    .unwrap_or_else(|| usage())
                    .split(',')
                    .map(str::to_string)
                    .collect()
            }
            "--dovecot-untuned" => o.dovecot_untuned = true,
            "--keep" => o.keep = true,
            _ => usage(),
        }
    }
    o
}

// ---------------------------------------------------------------------------------------------
// The command mix

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
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

const OPS: [Op; 12] = [
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
        OPS.iter().position(|&o| o == self).unwrap()
    }

    fn label(self) -> &'static str {
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

/// What a client picks next, out of 100. `UidExpunge` stands for the pair STORE \Deleted +
/// UID EXPUNGE of a message the client appended (an APPEND when it has none left).
const MIX: [(Op, u32); 11] = [
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

fn pick(rng: &mut Rng) -> Op {
    let total: u32 = MIX.iter().map(|(_, w)| w).sum();
    let mut r = (rng.next() % u64::from(total)) as u32;
    for (op, w) in MIX {
        if r < w {
            return op;
        }
        r -= w;
    }
    Op::Noop
}

#[derive(Default, Clone)]
struct OpAcc {
    ok: u64,
    err: u64,
    bytes: u64,
    lat_us: Vec<u32>,
}

#[derive(Default)]
struct ClientResult {
    ops: Vec<OpAcc>,
    errors: Vec<String>,
    fatal: Option<String>,
    commands_before_fatal: u64,
}

struct Load {
    ops: Vec<OpAcc>,
    errors: Vec<String>,
    fatal: Vec<String>,
    clients_ok: usize,
    start: Instant,
    end: Instant,
}

impl Load {
    fn secs(&self) -> f64 {
        (self.end - self.start).as_secs_f64()
    }
    fn ok(&self) -> u64 {
        self.ops.iter().map(|o| o.ok).sum()
    }
    fn errors(&self) -> u64 {
        self.ops.iter().map(|o| o.err).sum()
    }
    fn rate(&self) -> f64 {
        self.ok() as f64 / self.secs()
    }
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

/// One client of the load: log in, SELECT, wait for the others, then commands until the
/// deadline.
fn client(
    id: usize,
    addr: SocketAddr,
    uids: &[u32],
    messages: usize,
    barrier: &Barrier,
    seconds: u64,
) -> ClientResult {
    let mut result = ClientResult {
        ops: vec![OpAcc::default(); OPS.len()],
        ..Default::default()
    };
    let setup = Imap::connect(addr, &format!("c{id}."), 256 * 1024).and_then(|mut c| {
        c.login(USER, PASSWORD)?;
        let r = c.command("SELECT INBOX", None, false)?;
        if r.status != Status::Ok {
            return Err(std::io::Error::other(format!("SELECT: {}", r.tagged)));
        }
        Ok(c)
    });
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
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut done = 0u64;
    while Instant::now() < deadline && !interrupted() {
        let mut op = pick(&mut rng);
        if op == Op::UidExpunge && mine.is_empty() {
            op = Op::Append;
        }
        let u = uids[rng.range(0, uids.len())];
        let mut steps: Vec<(Op, String, Option<Vec<u8>>)> = Vec::with_capacity(2);
        match op {
            Op::Noop => steps.push((op, "NOOP".into(), None)),
            Op::FetchHeaders => {
                let k = rng.range(0, uids.len().saturating_sub(49).max(1));
                let last = uids[(k + 49).min(uids.len() - 1)];
                steps.push((
                    op,
                    format!(
                        "UID FETCH {}:{last} (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS ({HEADER_FIELDS})])",
                        uids[k]
                    ),
                    None,
                ));
            }
            Op::FetchBody => steps.push((
                op,
                format!("UID FETCH {u} (UID RFC822.SIZE FLAGS BODY.PEEK[])"),
                None,
            )),
            Op::FetchFlags => steps.push((op, "UID FETCH 1:* (UID FLAGS)".into(), None)),
            Op::StoreSeen => steps.push((op, format!("UID STORE {u} +FLAGS (\\Seen)"), None)),
            Op::StoreUnseen => steps.push((op, format!("UID STORE {u} -FLAGS (\\Seen)"), None)),
            Op::SearchUnseen => steps.push((op, "UID SEARCH UNSEEN".into(), None)),
            Op::SearchSubject => {
                let i = rng.range(0, messages);
                steps.push((
                    op,
                    format!("UID SEARCH SUBJECT \"message {i} about\""),
                    None,
                ));
            }
            Op::Select => steps.push((op, "SELECT INBOX".into(), None)),
            Op::Append => {
                appended += 1;
                steps.push((
                    op,
                    "APPEND INBOX (\\Seen)".into(),
                    Some(imap_mail::small_message(id, appended)),
                ));
            }
            Op::UidExpunge | Op::StoreDeleted => {
                let m = mine.pop_front().expect("checked above");
                steps.push((
                    Op::StoreDeleted,
                    format!("UID STORE {m} +FLAGS.SILENT (\\Deleted)"),
                    None,
                ));
                steps.push((Op::UidExpunge, format!("UID EXPUNGE {m}"), None));
            }
        }
        for (op, command, literal) in steps {
            let start = Instant::now();
            match c.command(&command, literal.as_deref(), false) {
                Ok(r) => {
                    let acc = &mut result.ops[op.index()];
                    acc.lat_us
                        .push(start.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                    acc.bytes += r.bytes;
                    if r.status == Status::Ok {
                        acc.ok += 1;
                        done += 1;
                        if op == Op::Append {
                            match appenduid(&r.tagged) {
                                Some(uid) => mine.push_back(uid),
                                None if result.errors.len() < 5 => {
                                    result.errors.push(format!("no APPENDUID: {}", r.tagged))
                                }
                                None => {}
                            }
                        }
                    } else {
                        acc.err += 1;
                        if result.errors.len() < 5 {
                            result.errors.push(format!("C: {command}\nS: {}", r.tagged));
                        }
                    }
                }
                Err(e) => {
                    result.fatal = Some(format!(
                        "client {id}: {e} (after {done} commands; last: {command})"
                    ));
                    result.commands_before_fatal = done;
                    return result;
                }
            }
        }
    }
    let _ = c.command("LOGOUT", None, false);
    result
}

fn run_load(addr: SocketAddr, uids: &Arc<Vec<u32>>, o: &Opts) -> Load {
    let barrier = Arc::new(Barrier::new(o.clients + 1));
    let handles: Vec<_> = (0..o.clients)
        .map(|id| {
            let (uids, barrier) = (Arc::clone(uids), Arc::clone(&barrier));
            let (messages, seconds) = (o.messages, o.seconds);
            std::thread::spawn(move || client(id, addr, &uids, messages, &barrier, seconds))
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

// ---------------------------------------------------------------------------------------------
// Idle connections

struct Idle {
    wanted: usize,
    opened: usize,
    failures: Vec<String>,
    login_secs: f64,
    base: Snap,
    logged: Snap,
    selected: Snap,
    idling: Snap,
}

/// Runs `f` on every connection, four threads at a time, bounded by `limit`; returns the
/// first few failures (a failed connection is dropped).
fn each_conn(
    conns: &mut Vec<Imap>,
    limit: Duration,
    f: impl Fn(&mut Imap) -> std::io::Result<()> + Sync,
) -> Vec<String> {
    let deadline = Instant::now() + limit;
    let chunk = conns.len().div_ceil(4).max(1);
    let failed: Vec<(usize, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = conns
            .chunks_mut(chunk)
            .enumerate()
            .map(|(n, part)| {
                let f = &f;
                s.spawn(move || {
                    let mut bad = vec![];
                    for (i, c) in part.iter_mut().enumerate() {
                        if Instant::now() > deadline || interrupted() {
                            bad.push((n * chunk + i, "time limit".to_string()));
                            continue;
                        }
                        if let Err(e) = f(c) {
                            bad.push((n * chunk + i, e.to_string()));
                        }
                    }
                    bad
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let mut drop_ix: Vec<usize> = failed.iter().map(|(i, _)| *i).collect();
    drop_ix.sort_unstable();
    for i in drop_ix.into_iter().rev() {
        conns.swap_remove(i);
    }
    failed.into_iter().map(|(_, e)| e).take(3).collect()
}

fn idle_test(addr: SocketAddr, root: u32, wanted: usize) -> Idle {
    std::thread::sleep(Duration::from_secs(2));
    let base = snapshot(root, true);
    let start = Instant::now();
    let deadline = start + Duration::from_secs(180);
    let per = wanted.div_ceil(4);
    let (mut conns, mut failures): (Vec<Imap>, Vec<String>) = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|t| {
                s.spawn(move || {
                    let mut mine = vec![];
                    let mut bad = vec![];
                    for i in 0..per.min(wanted.saturating_sub(t * per)) {
                        if Instant::now() > deadline || interrupted() {
                            bad.push("time limit".to_string());
                            break;
                        }
                        match Imap::connect(addr, &format!("i{t}x{i}."), 4096).and_then(|mut c| {
                            c.login(USER, PASSWORD)?;
                            Ok(c)
                        }) {
                            Ok(c) => mine.push(c),
                            Err(e) => bad.push(e.to_string()),
                        }
                    }
                    (mine, bad)
                })
            })
            .collect();
        let mut all = (vec![], vec![]);
        for h in handles {
            let (c, b) = h.join().unwrap_or_default();
            all.0.extend(c);
            all.1.extend(b);
        }
        all
    });
    let login_secs = start.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(2));
    let logged = snapshot(root, true);
    failures.extend(each_conn(&mut conns, Duration::from_secs(180), |c| {
        let r = c.command("SELECT INBOX", None, false)?;
        if r.status != Status::Ok {
            return Err(std::io::Error::other(format!("SELECT: {}", r.tagged)));
        }
        Ok(())
    }));
    std::thread::sleep(Duration::from_secs(2));
    let selected = snapshot(root, true);
    failures.extend(each_conn(
        &mut conns,
        Duration::from_secs(180),
        Imap::start_idle,
    ));
    std::thread::sleep(Duration::from_secs(HIBERNATE_SECS + 3));
    let idling = snapshot(root, true);
    failures.truncate(5);
    Idle {
        wanted,
        opened: conns.len(),
        failures,
        login_secs,
        base,
        logged,
        selected,
        idling,
    }
}

// ---------------------------------------------------------------------------------------------
// Servers

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    RoostWorkers,
    RoostSingle,
    Dovecot,
}

impl Kind {
    fn key(self) -> &'static str {
        match self {
            Kind::RoostWorkers => "workers",
            Kind::RoostSingle => "single",
            Kind::Dovecot => "dovecot",
        }
    }
}

fn id_of(flag: &str, name: &str) -> u32 {
    let out = Command::new("id").args([flag, name]).output().expect("id");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("no user {name}"))
}

/// Starts the server of `kind` on `dir`; returns it, its address and its log file.
fn start(kind: Kind, dir: &Path, o: &Opts, phase: &str) -> (Server, SocketAddr, PathBuf) {
    let log = dir.join(format!("{phase}.log"));
    let (server, addr) = match kind {
        Kind::Dovecot => start_dovecot(dir, o, &log),
        _ => start_roost(kind, dir, o, &log),
    };
    (server, addr, log)
}

fn start_roost(kind: Kind, dir: &Path, o: &Opts, log: &Path) -> (Server, SocketAddr) {
    let port = free_port();
    let owner = if kind == Kind::RoostWorkers {
        "user = \"nobody\"\n"
    } else {
        ""
    };
    let limit = o.idle + o.clients + 100;
    fs::write(
        dir.join("users"),
        format!("{USER}:{{PLAIN}}{PASSWORD}::::::\n"),
    )
    .unwrap();
    fs::write(
        dir.join("roost.toml"),
        format!(
            "protocols = [\"imap\"]\n[listen]\nimap = \"127.0.0.1:{port}\"\n\
             [mail]\nlocation = \"maildir:{}/mail/%u\"\n{owner}\
             [auth]\npassdb = [\"passwd-file:users\"]\n\
             [limits]\nmax_connections = {limit}\nmax_connections_per_ip = {limit}\n",
            dir.display()
        ),
    )
    .unwrap();
    let log = fs::File::create(log).unwrap();
    let mut cmd = Command::new(roost_bin());
    cmd.args(["serve", "-c", "roost.toml"])
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::from(log));
    if kind == Kind::RoostSingle && is_root() {
        // Single-process mode is roost started as an ordinary user: nobody, owning it all.
        chown(dir, "nobody:nogroup");
        use std::os::unix::process::CommandExt;
        cmd.uid(id_of("-u", "nobody")).gid(id_of("-g", "nobody"));
    } else if is_root() {
        chown(&dir.join("mail"), "nobody:nogroup");
    }
    let mut server = Server {
        child: cmd.spawn().expect("start roost"),
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    wait_listening(addr, &mut server.child, "roost");
    (server, addr)
}

/// The Dovecot settings beyond paths, port, users and `ssl = no`: raised limits (needed for
/// the connection counts), and unless `untuned`, the tuning.
fn dovecot_tuning(o: &Opts, untuned: bool) -> String {
    let procs = o.idle + o.clients + 100;
    let mut conf = format!(
        "# limits: this many connections of one user from one IP\n\
         default_process_limit = {procs}\ndefault_client_limit = {}\n\
         mail_max_userip_connections = {procs}\n\
         service imap {{\n  process_limit = {procs}\n}}\n",
        procs * 4
    );
    if !untuned {
        conf.push_str(&format!(
            "# tuning\n\
             maildir_very_dirty_syncs = yes\n\
             service imap-login {{\n  service_count = 0\n  process_min_avail = 2\n  \
             client_limit = {procs}\n}}\n\
             service imap {{\n  \
             unix_listener imap-master {{\n    user = $default_internal_user\n  }}\n  \
             extra_groups = $default_internal_group\n}}\n\
             imap_hibernate_timeout = {HIBERNATE_SECS}s\n\
             service imap-hibernate {{\n  unix_listener imap-hibernate {{\n    mode = 0660\n    \
             group = $default_internal_group\n  }}\n}}\n"
        ));
    }
    conf
}

fn start_dovecot(dir: &Path, o: &Opts, log: &Path) -> (Server, SocketAddr) {
    let port = free_port();
    fs::write(
        dir.join("users"),
        format!("{USER}:{{PLAIN}}{PASSWORD}::::::\n"),
    )
    .unwrap();
    chown(&dir.join("mail"), "nobody:nogroup");
    let d = dir.display();
    fs::write(
        dir.join("dovecot.conf"),
        format!(
            "base_dir = {d}/run\nstate_dir = {d}/state\nlog_path = {}\n\
             protocols = imap\nlisten = 127.0.0.1\nssl = no\ndisable_plaintext_auth = no\n\
             mail_location = maildir:{d}/mail/%u\n\
             passdb {{\n  driver = passwd-file\n  args = {d}/users\n}}\n\
             userdb {{\n  driver = static\n  args = uid=nobody gid=nogroup home={d}/mail/%u\n}}\n\
             service imap-login {{\n  inet_listener imap {{\n    port = {port}\n  }}\n\
             \x20 inet_listener imaps {{\n    port = 0\n  }}\n}}\n{}",
            log.display(),
            dovecot_tuning(o, o.dovecot_untuned)
        ),
    )
    .unwrap();
    let mut server = Server {
        child: Command::new(DOVECOT)
            .args(["-F", "-c"])
            .arg(dir.join("dovecot.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dovecot"),
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    wait_listening(addr, &mut server.child, "dovecot");
    (server, addr)
}

fn dovecot_version() -> Option<String> {
    let out = Command::new(DOVECOT).arg("--version").output().ok()?;
    let v = String::from_utf8_lossy(&out.stdout);
    Some(v.split_whitespace().next()?.to_string())
}

/// Warnings and errors the server logged (count, first few).
fn log_problems(path: &Path, kind: Kind) -> (usize, Vec<String>) {
    let text = fs::read_to_string(path).unwrap_or_default();
    let bad: Vec<&str> = text
        .lines()
        .filter(|l| match kind {
            Kind::Dovecot => ["Warning:", "Error:", "Fatal:", "Panic:"]
                .iter()
                .any(|w| l.contains(w)),
            _ => l.contains(" WARN ") || l.contains(" ERROR ") || l.contains("panicked"),
        })
        .collect();
    // Distinct messages, without their time stamps.
    let mut first: Vec<String> = vec![];
    for l in &bad {
        let skip = if kind == Kind::Dovecot { 3 } else { 1 };
        let text = l.splitn(skip + 1, ' ').last().unwrap_or(l).trim_start();
        // Dovecot's <pid><session> and roost's per-connection details vary line to line.
        let mut l = String::new();
        let mut depth = 0;
        for ch in text.chars() {
            match ch {
                '<' if kind == Kind::Dovecot => depth += 1,
                '>' if depth > 0 => depth -= 1,
                _ if depth == 0 => l.push(ch),
                _ => {}
            }
        }
        let l: String = l.chars().take(300).collect();
        if first.len() < 8 && !first.contains(&l) {
            first.push(l);
        }
    }
    (bad.len(), first)
}

// ---------------------------------------------------------------------------------------------
// Measuring one server

struct Report {
    name: String,
    first_select_ms: f64,
    first_headers_ms: f64,
    messages: usize,
    exists_after: Option<u64>,
    load: Load,
    server_cpu: f64,
    client_cpu: f64,
    peak_hwm_kb: u64,
    load_rss: (f64, u64),
    load_pss: (f64, u64),
    load_procs: usize,
    idle: Option<Idle>,
    log: (usize, Vec<String>),
    idle_log: (usize, Vec<String>),
}

fn own_cpu_secs() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn mean_max(v: impl Iterator<Item = u64>) -> (f64, u64) {
    let (mut n, mut sum, mut max) = (0u64, 0u64, 0u64);
    for x in v {
        n += 1;
        sum += x;
        max = max.max(x);
    }
    (if n == 0 { 0.0 } else { sum as f64 / n as f64 }, max)
}

fn measure(
    name: String,
    server: &Server,
    addr: SocketAddr,
    log: &Path,
    kind: Kind,
    o: &Opts,
) -> Report {
    let root = server.pid();
    println!("\n== {name}: server pid {root}");
    let sampler = Sampler::start(root);

    // First sync: what a mail client's first visit costs.
    let mut c = Imap::connect(addr, "w.", 256 * 1024).expect("connect");
    c.login(USER, PASSWORD).expect("login");
    let t = Instant::now();
    let r = c.command("SELECT INBOX", None, false).expect("SELECT");
    let first_select_ms = t.elapsed().as_secs_f64() * 1e3;
    assert!(r.status == Status::Ok, "SELECT: {}", r.tagged);
    let t = Instant::now();
    let r = c
        .command(
            &format!(
                "UID FETCH 1:* (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS ({HEADER_FIELDS})])"
            ),
            None,
            false,
        )
        .expect("FETCH");
    let first_headers_ms = t.elapsed().as_secs_f64() * 1e3;
    assert!(r.status == Status::Ok, "FETCH: {}", r.tagged);
    let r = c.command("UID SEARCH ALL", None, true).expect("SEARCH");
    let uids = Arc::new(r.search);
    assert!(!uids.is_empty(), "no messages");
    let _ = c.command("LOGOUT", None, false);
    println!(
        "  first SELECT {first_select_ms:.1} ms, header fields of all {} messages {first_headers_ms:.1} ms",
        uids.len()
    );

    let cpu0 = tree_cpu_secs(root);
    let own0 = own_cpu_secs();
    let load = run_load(addr, &uids, o);
    let server_cpu = tree_cpu_secs(root) - cpu0;
    let client_cpu = own_cpu_secs() - own0;
    let window = sampler.window(load.start, load.end);
    let load_rss = mean_max(window.iter().map(|s| s.rss_kb));
    let load_pss = mean_max(window.iter().filter_map(|s| s.pss_kb));
    let load_procs = window.iter().map(|s| s.procs).max().unwrap_or(0);
    let peak_hwm_kb = sampler.peak_hwm_kb().max(snapshot(root, false).hwm_kb);

    let exists_after = Imap::connect(addr, "e.", 64 * 1024).ok().and_then(|mut c| {
        c.login(USER, PASSWORD).ok()?;
        let r = c.command("SELECT INBOX", None, false).ok()?;
        let _ = c.command("LOGOUT", None, false);
        r.exists
    });
    println!(
        "  load: {} clients × {} s: {:.0} commands/s, {} errors",
        o.clients,
        o.seconds,
        load.rate(),
        load.errors()
    );
    drop(sampler);
    Report {
        name,
        first_select_ms,
        first_headers_ms,
        messages: uids.len(),
        exists_after,
        load,
        server_cpu,
        client_cpu,
        peak_hwm_kb,
        load_rss,
        load_pss,
        load_procs,
        idle: None,
        log: log_problems(log, kind),
        idle_log: (0, vec![]),
    }
}

fn mb(kb: f64) -> f64 {
    kb / 1024.0
}

fn print_report(r: &Report) {
    println!("\n{}:", r.name);
    println!(
        "  first SELECT of the new mailbox {:.1} ms; header fields of all {} messages {:.1} ms",
        r.first_select_ms, r.messages, r.first_headers_ms
    );
    let l = &r.load;
    println!(
        "  load: {}/{} clients ran {:.1} s: {} commands OK, {:.0}/s; {} NO/BAD",
        l.clients_ok,
        l.clients_ok + l.fatal.len(),
        l.secs(),
        l.ok(),
        l.rate(),
        l.errors()
    );
    let mut all: Vec<u32> = l
        .ops
        .iter()
        .flat_map(|o| o.lat_us.iter().copied())
        .collect();
    all.sort_unstable();
    println!(
        "  latency of all commands: p50 {:.2} ms, p99 {:.2} ms",
        percentile(&all, 0.5),
        percentile(&all, 0.99)
    );
    println!(
        "  {:<48} {:>8} {:>8} {:>6} {:>9} {:>9} {:>10}",
        "command", "OK", "per s", "NO/BAD", "p50 ms", "p99 ms", "bytes/resp"
    );
    for (op, acc) in OPS.iter().zip(&l.ops) {
        let n = acc.lat_us.len().max(1) as u64;
        println!(
            "  {:<48} {:>8} {:>8.0} {:>6} {:>9.2} {:>9.2} {:>10}",
            op.label(),
            acc.ok,
            acc.ok as f64 / l.secs(),
            acc.err,
            percentile(&acc.lat_us, 0.5),
            percentile(&acc.lat_us, 0.99),
            acc.bytes / n
        );
    }
    for e in &l.errors {
        println!("  error: {}", e.replace('\n', "\n         "));
    }
    for f in &l.fatal {
        println!("  client failed: {f}");
    }
    println!(
        "  CPU during the load: server tree {:.1} s ({:.0} µs/command), benchmark process {:.1} s",
        r.server_cpu,
        r.server_cpu * 1e6 / l.ok().max(1) as f64,
        r.client_cpu
    );
    println!(
        "  memory: peak sum of VmHWM {:.1} MB; under load ({} processes): RSS sum mean {:.1} / max {:.1} MB, \
         PSS sum mean {:.1} / max {:.1} MB",
        mb(r.peak_hwm_kb as f64),
        r.load_procs,
        mb(r.load_rss.0),
        mb(r.load_rss.1 as f64),
        mb(r.load_pss.0),
        mb(r.load_pss.1 as f64)
    );
    match r.exists_after {
        Some(n) => println!("  messages in INBOX after the load: {n}"),
        None => println!("  messages in INBOX after the load: could not SELECT"),
    }
    if let Some(i) = &r.idle {
        println!(
            "  idle: {}/{} connections logged in ({:.1} s, {:.0} logins/s)",
            i.opened,
            i.wanted,
            i.login_secs,
            i.opened as f64 / i.login_secs.max(1e-9)
        );
        let per = |s: &Snap, f: fn(&Snap) -> Option<u64>| match (f(s), f(&i.base)) {
            (Some(a), Some(b)) if i.opened > 0 => {
                format!("{:.1}", (a as f64 - b as f64) / i.opened as f64)
            }
            _ => "-".into(),
        };
        println!(
            "  {:<30} {:>6} {:>12} {:>12} {:>14} {:>14}",
            "state", "procs", "RSS sum MB", "PSS sum MB", "RSS kB/conn", "PSS kB/conn"
        );
        for (label, s) in [
            ("before", &i.base),
            ("logged in", &i.logged),
            ("INBOX selected", &i.selected),
            ("in IDLE", &i.idling),
        ] {
            println!(
                "  {:<30} {:>6} {:>12.1} {:>12} {:>14} {:>14}",
                label,
                s.procs,
                mb(s.rss_kb as f64),
                s.pss_kb
                    .map(|p| format!("{:.1}", mb(p as f64)))
                    .unwrap_or("-".into()),
                per(s, |s| Some(s.rss_kb)),
                per(s, |s| s.pss_kb)
            );
        }
        for f in &i.failures {
            println!("  idle connection failed: {f}");
        }
    }
    println!("  server log during the load: {} warnings/errors", r.log.0);
    for l in &r.log.1 {
        println!("    {l}");
    }
    if r.idle.is_some() {
        println!(
            "  server log during the idle test: {} warnings/errors",
            r.idle_log.0
        );
        for l in &r.idle_log.1 {
            println!("    {l}");
        }
    }
}

fn print_summary(reports: &[Report]) {
    let dovecot = reports.iter().find(|r| r.name.starts_with("Dovecot"));
    println!("\nsummary:\n");
    let mut header = String::from("|");
    let mut rule = String::from("|---");
    for r in reports {
        header.push_str(&format!(" | {}", r.name));
        rule.push_str("|---");
    }
    println!("{header} |\n{rule}|");
    let row = |label: &str, cell: &dyn Fn(&Report) -> String| {
        let mut line = format!("| {label}");
        for r in reports {
            line.push_str(&format!(" | {}", cell(r)));
        }
        println!("{line} |");
    };
    let all_latencies = |r: &Report| {
        let mut all: Vec<u32> = r
            .load
            .ops
            .iter()
            .flat_map(|o| o.lat_us.iter().copied())
            .collect();
        all.sort_unstable();
        all
    };
    row("commands/s", &|r| format!("{:.0}", r.load.rate()));
    if let Some(d) = dovecot {
        row("× Dovecot", &|r| {
            format!("{:.2}×", r.load.rate() / d.load.rate())
        });
    }
    row("latency p50 / p99, ms", &|r| {
        let all = all_latencies(r);
        format!(
            "{:.2} / {:.0}",
            percentile(&all, 0.5),
            percentile(&all, 0.99)
        )
    });
    row("NO/BAD; clients failed", &|r| {
        format!("{}; {}", r.load.errors(), r.load.fatal.len())
    });
    row("server CPU per command, µs", &|r| {
        format!("{:.0}", r.server_cpu * 1e6 / r.load.ok().max(1) as f64)
    });
    row("processes under load", &|r| r.load_procs.to_string());
    row("PSS sum under load (mean), MB", &|r| {
        format!("{:.1}", mb(r.load_pss.0))
    });
    row("RSS sum under load (mean), MB", &|r| {
        format!("{:.1}", mb(r.load_rss.0))
    });
    row("peak sum of VmHWM, MB", &|r| {
        format!("{:.1}", mb(r.peak_hwm_kb as f64))
    });
    let per_conn = |r: &Report, pick: fn(&Idle) -> &Snap| {
        r.idle
            .as_ref()
            .and_then(|i| {
                let (a, b) = (pick(i).pss_kb?, i.base.pss_kb?);
                Some(format!(
                    "{:.1}",
                    (a as f64 - b as f64) / i.opened.max(1) as f64
                ))
            })
            .unwrap_or_else(|| "-".into())
    };
    row("idle, logged in: PSS kB/connection", &|r| {
        per_conn(r, |i| &i.logged)
    });
    row("idle, INBOX selected: PSS kB/connection", &|r| {
        per_conn(r, |i| &i.selected)
    });
    row("idle, in IDLE: PSS kB/connection", &|r| {
        per_conn(r, |i| &i.idling)
    });
}

fn main() {
    let o = parse_opts();
    // SAFETY: installing a handler that only stores to an atomic.
    unsafe { libc::signal(libc::SIGINT, on_sigint as *const () as libc::sighandler_t) };
    let bin = roost_bin();
    assert!(
        bin.exists(),
        "{} not found: run `cargo build --release -p roost` first (or set ROOST_BIN)",
        bin.display()
    );
    let root = is_root();
    let dovecot = match dovecot_version() {
        _ if !root => Err("needs root (a private Dovecot runs its sessions as nobody)"),
        None => Err("not installed (apt-get install dovecot-imapd)"),
        Some(_) if !Path::new("/usr/lib/dovecot/imap").exists() => {
            Err("dovecot-imapd not installed (apt-get install dovecot-imapd)")
        }
        Some(v) => Ok(v),
    };
    let version = Command::new(&bin)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "roost".into());
    let load_avg = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let work = tempfile::tempdir().expect("temp dir");
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(work.path(), fs::Permissions::from_mode(0o755)).unwrap();
    }
    let mut kinds = vec![];
    if root {
        kinds.push(Kind::RoostWorkers);
    }
    kinds.push(Kind::RoostSingle);
    if dovecot.is_ok() {
        kinds.push(Kind::Dovecot);
    }
    kinds.retain(|k| o.only.iter().any(|w| w == k.key()));
    let mut bytes = 0;
    for k in &kinds {
        let dir = work.path().join(k.key());
        bytes = imap_mail::make_maildir(&dir.join("mail").join(USER), o.messages);
    }
    println!(
        "IMAP under concurrent load: INBOX of {} messages, {:.1} MB (average {:.1} kB), \
         {} clients for {} s, {} idle connections; {} CPUs, load average before: {}",
        o.messages,
        bytes as f64 / 1e6,
        bytes as f64 / o.messages as f64 / 1e3,
        o.clients,
        o.seconds,
        o.idle,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_avg
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    if let Err(why) = &dovecot {
        println!("Dovecot: skipped: {why}");
    }
    let mut reports = vec![];
    for kind in kinds {
        if interrupted() {
            break;
        }
        let dir = work.path().join(kind.key());
        let name = match kind {
            Kind::RoostWorkers => {
                format!("{version} (as root: master, login, one worker per session)")
            }
            Kind::RoostSingle if root => format!("{version} (single process, run as nobody)"),
            Kind::RoostSingle => format!("{version} (single process)"),
            Kind::Dovecot if o.dovecot_untuned => {
                format!("Dovecot {} (limits raised only)", dovecot.as_ref().unwrap())
            }
            Kind::Dovecot => format!("Dovecot {} (tuned)", dovecot.as_ref().unwrap()),
        };
        let (server, addr, log) = start(kind, &dir, &o, "load");
        let mut report = measure(name, &server, addr, &log, kind, &o);
        drop(server);
        if o.idle > 0 && !interrupted() {
            // A fresh server, so that memory freed after the load does not hide the growth.
            let (server, addr, log) = start(kind, &dir, &o, "idle");
            report.idle = Some(idle_test(addr, server.pid(), o.idle));
            drop(server);
            report.idle_log = log_problems(&log, kind);
        }
        reports.push(report);
    }
    for r in &reports {
        print_report(r);
    }
    print_summary(&reports);
    if o.keep {
        println!("\nkept: {}", work.keep().display());
    }
    if reports.iter().any(|r| r.name.starts_with("Dovecot")) {
        println!(
            "\nDovecot settings beyond paths, port, passwd-file users, static userdb (nobody) and ssl = no:\n{}",
            dovecot_tuning(&o, o.dovecot_untuned)
        );
    }
}
