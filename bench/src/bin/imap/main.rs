//! `cargo build --release --workspace && target/release/imap [--mode MODE] [options]`
//!
//! IMAP benchmarks (numbers to report, not tests), each run against every server there is:
//! the release `roost` (`target/release/roost`, or `$ROOST_BIN`) started as root (master, login
//! process, workers per mail owner; mail owned by `nobody`), the same binary started as
//! `nobody` (everything in one process), and, when run as root with Dovecot installed, a
//! private, tuned Dovecot 2.3 on an identical copy of the data. `bench/run` runs them all and
//! writes BENCHMARKS.md from their `--results` file.
//!
//! Modes:
//! - `load` (default): one INBOX of `--messages` (2,000) realistic messages; a first sync
//!   (SELECT, every message's header fields), then for each of `--clients` (20; a list such
//!   as `20,200`) a fresh server and that many clients sending commands back to back for
//!   `--seconds` (20) from a weighted mix of Thunderbird's and Outlook's commands (`--mix
//!   store`: only `UID STORE ±\Seen`; `--tiny`: tiny messages, for large folders). Commands/s,
//!   per-command latencies, server CPU per command, PSS/RSS of the server tree under load.
//!   `--profile-seconds S` adds a profile under a second load: perf (hottest symbols) for S
//!   seconds, then strace (system calls per command) for S seconds.
//! - `download`: `UID FETCH 1:* BODY.PEEK[]` of an INBOX of `--messages` (5,000) realistic
//!   messages, plain and over IMAPS.
//! - `select`: SELECT of a folder of `--messages` (100,000) tiny messages: first, second and
//!   with a current index, each in a fresh server; time and the serving process's peak RSS.
//! - `idle`: `--idle` (1,000) connections of `--users` (a quarter as many) users log in,
//!   SELECT and IDLE; PSS per connection (plain; `--tls` also over IMAPS).
//! - `stress`: a second, independent load: `bench/imap_stress.py` (Python's imaplib, one
//!   process per client, imaptest-like sessions) with `--clients` (20) for `--seconds` (20).
//!
//! Common: `--only workers,single,dovecot`, `--dovecot-untuned` (Dovecot with raised limits
//! only), `--keep` (keep the temp dir with configs and logs), `--results FILE`.
//! Everything is bounded: run time, connection counts, every wait; loopback only.

mod bulk;
mod idle;
mod load;
mod mixed;
mod report;
mod stress;

use std::path::Path;

use roost_bench::harness::{catch_sigint, is_root, load_average, raise_nofile, roost_bin};
use roost_bench::results::{take_results_flag, Results};
use roost_bench::servers::{self, dovecot_tuning, Kind, Proto};

use load::Mix;

/// The user of the single-user workloads.
const USER: &str = "bench";
/// Every benchmark user's password.
const PASSWORD: &str = "bench-pw-1";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Load,
    Download,
    Select,
    Idle,
    Stress,
}

/// The command line.
pub struct Opts {
    mode: Mode,
    clients: Vec<usize>,
    seconds: u64,
    messages: Option<usize>,
    idle: usize,
    users: Option<usize>,
    tls: bool,
    tiny: bool,
    mix: Mix,
    profile_seconds: u64,
    only: Vec<String>,
    dovecot_untuned: bool,
    keep: bool,
    results: Results,
}

fn usage() -> ! {
    eprintln!(
        "usage: imap [--mode load|download|select|idle|stress] [--clients N[,N…] (1..=500; 20)] \
         [--seconds 1..=300 (20)] [--messages 100..=200000] [--tiny] [--mix clients|store] \
         [--profile-seconds 0..=60] [--idle 1..=20000 (1000)] [--users N] [--tls] \
         [--only workers,single,dovecot] [--dovecot-untuned] [--keep] [--results FILE]"
    );
    std::process::exit(2)
}

fn num(value: Option<String>, lo: usize, hi: usize) -> usize {
    match value.and_then(|v| v.parse().ok()) {
        Some(v) if (lo..=hi).contains(&v) => v,
        _ => usage(),
    }
}

fn parse_opts() -> Opts {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut o = Opts {
        mode: Mode::Load,
        clients: vec![20],
        seconds: 20,
        messages: None,
        idle: 1000,
        users: None,
        tls: false,
        tiny: false,
        mix: Mix::Clients,
        profile_seconds: 0,
        only: vec![],
        dovecot_untuned: false,
        keep: false,
        results: take_results_flag(&mut args),
    };
    let mut args = args.into_iter();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--mode" => {
                o.mode = match args.next().as_deref() {
                    Some("load") => Mode::Load,
                    Some("download") => Mode::Download,
                    Some("select") => Mode::Select,
                    Some("idle") => Mode::Idle,
                    Some("stress") => Mode::Stress,
                    _ => usage(),
                }
            }
            "--clients" => {
                let list = args.next().unwrap_or_else(|| usage());
                o.clients = list
                    .split(',')
                    .map(|c| num(Some(c.into()), 1, 500))
                    .collect();
            }
            "--seconds" => o.seconds = num(args.next(), 1, 300) as u64,
            "--messages" => o.messages = Some(num(args.next(), 100, 200_000)),
            "--idle" => o.idle = num(args.next(), 1, 20_000),
            "--users" => o.users = Some(num(args.next(), 1, 20_000)),
            "--profile-seconds" => o.profile_seconds = num(args.next(), 0, 60) as u64,
            "--mix" => {
                o.mix = match args.next().as_deref() {
                    Some("clients") => Mix::Clients,
                    Some("store") => Mix::Store,
                    _ => usage(),
                }
            }
            "--tls" => o.tls = true,
            "--tiny" => o.tiny = true,
            "--only" => {
                let list = args.next().unwrap_or_else(|| usage());
                o.only = list.split(',').map(str::to_string).collect();
            }
            "--dovecot-untuned" => o.dovecot_untuned = true,
            "--keep" => o.keep = true,
            _ => usage(),
        }
    }
    o
}

/// Starts `kind` on `spec`, or prints why it did not come up and records that for `workload`
/// (the run goes on with the next server).
fn start_or_record(
    o: &Opts,
    kind: Kind,
    spec: &servers::Spec,
    phase: &str,
    workload: &str,
) -> Option<servers::Running> {
    match servers::start(kind, spec, phase) {
        Ok(run) => Some(run),
        Err(e) => {
            println!("  {e}");
            o.results.put(workload, kind.key(), "error", e);
            None
        }
    }
}

fn protos(o: &Opts) -> Vec<Proto> {
    match o.mode {
        Mode::Download => vec![Proto::Imap, Proto::Imaps],
        Mode::Idle if o.tls => vec![Proto::Imap, Proto::Imaps],
        _ => vec![Proto::Imap],
    }
}

fn main() {
    let o = parse_opts();
    catch_sigint();
    let nofile = raise_nofile(65_536);
    let bin = roost_bin();
    assert!(
        bin.exists(),
        "{} not found: run `cargo build --release --workspace` first (or set ROOST_BIN)",
        bin.display()
    );
    let (kinds, skipped) = servers::available(&o.only, &protos(&o));
    println!(
        "IMAP benchmark: {} CPUs, load average before: {}, open-file limit {nofile}{}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average(),
        if is_root() {
            ""
        } else {
            " (not root: roost's one-process model only)"
        }
    );
    for s in &skipped {
        println!("{s}");
    }
    let work = tempfile::tempdir().expect("temp dir");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(work.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod the temp dir");
    }
    run(&o, &kinds, work.path());
    if kinds.contains(&Kind::Dovecot) {
        let connections = match o.mode {
            Mode::Idle => o.idle,
            _ => o.clients.iter().copied().max().unwrap_or(20),
        };
        println!(
            "\nDovecot settings beyond paths, ports, passwd-file users, static userdb (nobody) \
             and TLS files:\n{}",
            dovecot_tuning(connections, !o.dovecot_untuned)
        );
    }
    if o.keep {
        println!("\nkept: {}", work.keep().display());
    }
}

fn run(o: &Opts, kinds: &[Kind], work: &Path) {
    match o.mode {
        Mode::Load => {
            let reports = mixed::run(o, kinds, work);
            report::print_summary(&reports);
        }
        Mode::Download => bulk::download(o, kinds, work),
        Mode::Select => bulk::select_large(o, kinds, work),
        Mode::Idle => idle::run(o, kinds, work),
        Mode::Stress => stress::run(o, kinds, work),
    }
}
