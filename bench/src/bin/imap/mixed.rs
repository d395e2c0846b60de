//! `--mode load`: per server, one INBOX, a first sync as a mail client's first visit does it,
//! then the mixed load at each client count (a fresh server for each), with its memory, CPU
//! and per-command latencies, and optionally a profile taken under a second, shorter load.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use roost_bench::harness::{interrupted, own_cpu_secs};
use roost_bench::imap_client::{Imap, Status};
use roost_bench::imap_mail;
use roost_bench::imap_proc::{breakdown_line, snapshot, tree, tree_cpu_secs, Sampler};
use roost_bench::profile::{self, Tool};
use roost_bench::servers::{Kind, Proto, Running, Spec};

use crate::load::{percentile, run_load, Load, Mix, COMMANDS, HEADER_FIELDS, OPS};
use crate::{Opts, PASSWORD, USER};

/// What one load against one server measured.
pub struct Report {
    /// Which server.
    pub kind: Kind,
    /// How many clients.
    pub clients: usize,
    /// What they did.
    pub load: Load,
    /// CPU seconds of the server tree during the load.
    pub server_cpu: f64,
    /// CPU seconds of this process (the clients) during the load.
    pub client_cpu: f64,
    /// The highest sum of VmHWM seen.
    pub peak_hwm_kb: u64,
    /// RSS sum of the tree under load: mean and max, kB.
    pub load_rss: (f64, u64),
    /// PSS sum of the tree under load: mean and max, kB.
    pub load_pss: (f64, u64),
    /// The most processes the tree had under load.
    pub load_procs: usize,
    /// Where the memory sat half-way through (see `breakdown_line`).
    pub breakdown: String,
    /// Messages in INBOX after the load (it should keep its size).
    pub exists_after: Option<u64>,
    /// Warnings and errors the server logged: count and first few.
    pub log: (usize, Vec<String>),
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

fn mb(kb: f64) -> f64 {
    kb / 1024.0
}

/// The results file's name for this load.
pub fn workload(o: &Opts, clients: usize, messages: usize) -> String {
    match o.mix {
        Mix::Clients => format!("imap-mixed-{clients}"),
        Mix::Store => format!("imap-store-{messages}"),
    }
}

/// First sync: SELECT of the new INBOX and, for the clients' mix, every message's header
/// fields; returns the UIDs and writes the times.
fn first_sync(run: &Running, o: &Opts, workload: &str, first: bool) -> Arc<Vec<u32>> {
    let mut c = Imap::connect(run.addr(Proto::Imap), "w.", 256 * 1024).expect("connect");
    c.login(USER, PASSWORD).expect("login");
    let t = Instant::now();
    let r = c.command("SELECT INBOX", None, false).expect("SELECT");
    let select_ms = t.elapsed().as_secs_f64() * 1e3;
    assert!(r.status == Status::Ok, "SELECT: {}", r.tagged);
    let key = run.kind.key();
    if first {
        o.results.num(workload, key, "first_select_ms", select_ms);
        println!("  first SELECT of the new INBOX {select_ms:.1} ms");
    }
    if first && o.mix == Mix::Clients {
        let t = Instant::now();
        let command = format!(
            "UID FETCH 1:* (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS ({HEADER_FIELDS})])"
        );
        let r = c.command(&command, None, false).expect("FETCH");
        assert!(r.status == Status::Ok, "FETCH: {}", r.tagged);
        let ms = t.elapsed().as_secs_f64() * 1e3;
        o.results.num(workload, key, "first_headers_ms", ms);
        println!("  header fields of every message {ms:.1} ms");
    }
    let r = c.command("UID SEARCH ALL", None, true).expect("SEARCH");
    let _ = c.command("LOGOUT", None, false);
    assert!(!r.search.is_empty(), "no messages");
    Arc::new(r.search)
}

/// Runs one load against `run` and measures it.
fn measure(run: &mut Running, uids: &Arc<Vec<u32>>, o: &Opts, clients: usize) -> Report {
    let root = run.pid();
    let sampler = Sampler::start(root);
    let cpu0 = tree_cpu_secs(root);
    let own0 = own_cpu_secs();
    // Where the memory sits, half-way through the load.
    let half = Duration::from_secs(o.seconds) / 2;
    let breakdown = std::thread::spawn(move || {
        std::thread::sleep(half.max(Duration::from_secs(1)));
        breakdown_line(root)
    });
    let load = run_load(
        run.addr(Proto::Imap),
        uids,
        (clients, o.seconds, uids.len()),
        o.mix,
    );
    let server_cpu = tree_cpu_secs(root) - cpu0;
    let client_cpu = own_cpu_secs() - own0;
    let window = sampler.window(load.start, load.end);
    let peak_hwm_kb = sampler.peak_hwm_kb().max(snapshot(root, false).hwm_kb);
    drop(sampler);
    let mut load = load;
    if let Some(status) = run.exited() {
        load.fatal.insert(0, format!("the server exited: {status}"));
    }
    let exists_after = Imap::connect(run.addr(Proto::Imap), "e.", 64 * 1024)
        .ok()
        .and_then(|mut c| {
            c.login(USER, PASSWORD).ok()?;
            let r = c.command("SELECT INBOX", None, false).ok()?;
            let _ = c.command("LOGOUT", None, false);
            r.exists
        });
    Report {
        kind: run.kind,
        clients,
        server_cpu,
        client_cpu,
        peak_hwm_kb,
        load_rss: mean_max(window.iter().map(|s| s.rss_kb)),
        load_pss: mean_max(window.iter().filter_map(|s| s.pss_kb)),
        load_procs: window.iter().map(|s| s.procs).max().unwrap_or(0),
        breakdown: breakdown.join().unwrap_or_default(),
        exists_after,
        load,
        log: run.problems(),
    }
}

/// A second load of `2 × seconds + 1` s: perf for one window, strace for the next (never both
/// at once: strace slows the server down). Writes the hottest symbols and the system calls per
/// command.
fn profile(run: &Running, uids: &Arc<Vec<u32>>, o: &Opts, clients: usize, work: &Path) {
    let seconds = o.profile_seconds;
    let (root, addr, n) = (run.pid(), run.addr(Proto::Imap), uids.len());
    let uids2 = Arc::clone(uids);
    let mix = o.mix;
    let loader =
        std::thread::spawn(move || run_load(addr, &uids2, (clients, 2 * seconds + 4, n), mix));
    std::thread::sleep(Duration::from_secs(1));
    let workload = workload(o, clients, n);
    let key = run.kind.key();
    for tool in [Tool::Perf, Tool::Strace] {
        if !tool.works() || interrupted() {
            continue;
        }
        let out = work.join(format!("{key}.{tool:?}.out"));
        // Counted from attaching to detaching: the tools count what happens in between.
        let before = COMMANDS.load(Ordering::Relaxed);
        let Ok(attached) = profile::attach(tool, &tree(root), &out) else {
            continue;
        };
        std::thread::sleep(Duration::from_secs(seconds));
        let top = attached.finish();
        let commands = (COMMANDS.load(Ordering::Relaxed) - before).max(1) as f64;
        for (i, (value, what)) in top.iter().enumerate() {
            match tool {
                Tool::Perf => o.results.put(
                    &workload,
                    key,
                    &format!("perf.{i:02}"),
                    format!("{value:.1}% {what}"),
                ),
                Tool::Strace => o.results.num(
                    &workload,
                    key,
                    &format!("syscalls_per_cmd.{what}"),
                    value / commands,
                ),
            }
        }
        if tool == Tool::Strace {
            let total: f64 = top.iter().map(|(v, _)| v).sum();
            o.results
                .num(&workload, key, "syscalls_per_cmd_total", total / commands);
        }
        println!("  profile ({tool:?}, {seconds} s, {commands:.0} commands):");
        for (value, what) in top.iter().take(8) {
            match tool {
                Tool::Perf => println!("    {value:5.1}%  {what}"),
                Tool::Strace => println!("    {:8.2}/command  {what}", value / commands),
            }
        }
    }
    let _ = loader.join();
}

fn write_results(r: &Report, o: &Opts, messages: usize) {
    let (w, key, res) = (workload(o, r.clients, messages), r.kind.key(), &o.results);
    let l = &r.load;
    let all = l.all_latencies();
    res.num(&w, key, "cmds_per_s", l.rate());
    res.num(&w, key, "p50_ms", percentile(&all, 0.5));
    res.num(&w, key, "p99_ms", percentile(&all, 0.99));
    res.num(&w, key, "errors", l.errors() as f64);
    res.num(&w, key, "failed_clients", l.fatal.len() as f64);
    res.num(
        &w,
        key,
        "cpu_us_per_cmd",
        r.server_cpu * 1e6 / l.ok().max(1) as f64,
    );
    res.num(&w, key, "client_cpu_s", r.client_cpu);
    res.num(&w, key, "pss_mb", mb(r.load_pss.0));
    res.num(&w, key, "rss_mb", mb(r.load_rss.0));
    res.num(&w, key, "hwm_mb", mb(r.peak_hwm_kb as f64));
    res.num(&w, key, "procs", r.load_procs as f64);
    res.put(&w, key, "pss_breakdown", &r.breakdown);
    res.num(&w, key, "log_problems", r.log.0 as f64);
    for (i, line) in r.log.1.iter().take(3).enumerate() {
        res.put(&w, key, &format!("log.{i}"), line);
    }
    if r.load.ops.iter().all(|a| a.ok == 0) {
        res.put(&w, key, "error", "no command completed");
    }
    for e in l.errors.iter().chain(&l.fatal).take(3) {
        res.put(&w, key, "error", e);
    }
    for (op, acc) in OPS.iter().zip(&l.ops) {
        if acc.ok + acc.err > 0 {
            res.num(
                &w,
                key,
                &format!("p50_ms:{}", op.label()),
                percentile(&acc.lat_us, 0.5),
            );
            res.num(&w, key, &format!("n:{}", op.label()), acc.ok as f64);
        }
    }
}

/// The whole `--mode load` run.
pub fn run(o: &Opts, kinds: &[Kind], work: &Path) -> Vec<Report> {
    let messages = o.messages.unwrap_or(2000);
    let mut reports = vec![];
    for &kind in kinds {
        let dir = work.join(kind.key());
        std::fs::create_dir_all(&dir).expect("server dir");
        let mut spec = Spec::new(&dir, vec![(USER.into(), PASSWORD.into())], &[Proto::Imap]);
        spec.connections = o.clients.iter().copied().max().unwrap_or(20);
        spec.tuned = !o.dovecot_untuned;
        let bytes = if o.tiny {
            imap_mail::make_tiny_maildir(&spec.maildir(USER), messages)
        } else {
            imap_mail::make_maildir(&spec.maildir(USER), messages)
        };
        println!(
            "\n== {}: INBOX of {messages} messages, {:.1} MB",
            kind.label(),
            bytes as f64 / 1e6
        );
        for (i, &clients) in o.clients.iter().enumerate() {
            if interrupted() {
                break;
            }
            let w = workload(o, clients, messages);
            let phase = format!("load-{clients}");
            let Some(mut run) = crate::start_or_record(o, kind, &spec, &phase, &w) else {
                continue;
            };
            let uids = first_sync(&run, o, &w, i == 0);
            let report = measure(&mut run, &uids, o, clients);
            crate::report::print_report(&report);
            write_results(&report, o, messages);
            if i == 0 && o.profile_seconds > 0 {
                profile(&run, &uids, o, clients, &dir);
            }
            reports.push(report);
        }
    }
    reports
}
