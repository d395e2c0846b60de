//! `--mode idle`: what an idle connection costs. A fresh server; N connections of N/4 users
//! (each a small INBOX) each log in, SELECT INBOX and enter IDLE, one after another on a few
//! threads; the growth of the server tree's PSS over the fresh server, divided by N, right after
//! the last one entered IDLE and again once Dovecot has had time to hibernate them. Plain, and
//! with `--tls` also over IMAPS.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::ClientConfig;

use roost_bench::harness::interrupted;
use roost_bench::imap_client::{Imap, Status};
use roost_bench::imap_mail;
use roost_bench::imap_proc::{breakdown_line, snapshot, Snap};
use roost_bench::servers::{Kind, Proto, Running, Spec, HIBERNATE_SECS};
use roost_bench::tls;

use crate::{Opts, PASSWORD};

/// Threads opening connections: enough to keep a process-per-login server busy.
const OPENERS: usize = 8;
/// Messages in each idle user's INBOX.
const IDLE_MESSAGES: usize = 10;

struct Idle {
    wanted: usize,
    opened: usize,
    failures: Vec<String>,
    open_secs: f64,
    base: Snap,
    at_once: Snap,
    settled: Snap,
    breakdown: String,
}

fn user(i: usize) -> String {
    format!("u{i:05}")
}

/// One connection: log in, SELECT INBOX, IDLE.
fn open_one(
    addr: SocketAddr,
    i: usize,
    users: usize,
    tls: Option<&Arc<ClientConfig>>,
) -> std::io::Result<Imap> {
    let mut c = Imap::connect_with(addr, &format!("i{i}."), 4096, tls)?;
    c.login(&user(i % users), PASSWORD)?;
    let r = c.command("SELECT INBOX", None, false)?;
    if r.status != Status::Ok {
        return Err(std::io::Error::other(format!("SELECT: {}", r.tagged)));
    }
    c.start_idle()?;
    Ok(c)
}

fn open_all(
    addr: SocketAddr,
    wanted: usize,
    users: usize,
    tls: Option<Arc<ClientConfig>>,
) -> (Vec<Imap>, Vec<String>) {
    let deadline = Instant::now() + Duration::from_secs(300);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..OPENERS)
            .map(|t| {
                let tls = tls.clone();
                s.spawn(move || {
                    let (mut mine, mut bad) = (vec![], vec![]);
                    for i in (t..wanted).step_by(OPENERS) {
                        if Instant::now() > deadline || interrupted() {
                            bad.push("time limit".to_string());
                            break;
                        }
                        match open_one(addr, i, users, tls.as_ref()) {
                            Ok(c) => mine.push(c),
                            Err(e) => bad.push(format!("connection {i}: {e}")),
                        }
                    }
                    (mine, bad)
                })
            })
            .collect();
        let (mut all, mut failures) = (vec![], vec![]);
        for h in handles {
            let (c, b) = h.join().unwrap_or_default();
            all.extend(c);
            failures.extend(b);
        }
        (all, failures)
    })
}

fn idle_test(run: &mut Running, wanted: usize, users: usize, tls: bool) -> Idle {
    let root = run.pid();
    std::thread::sleep(Duration::from_secs(2));
    let base = snapshot(root, true);
    let start = Instant::now();
    let (proto, config) = match tls {
        true => (Proto::Imaps, Some(tls::client_config())),
        false => (Proto::Imap, None),
    };
    let (conns, mut failures) = open_all(run.addr(proto), wanted, users, config);
    let open_secs = start.elapsed().as_secs_f64();
    let at_once = snapshot(root, true);
    std::thread::sleep(Duration::from_secs(HIBERNATE_SECS + 3));
    let settled = snapshot(root, true);
    let breakdown = breakdown_line(root);
    let opened = conns.len();
    if let Some(status) = run.exited() {
        failures.insert(0, format!("the server exited: {status}"));
    }
    failures.truncate(5);
    drop(conns);
    Idle {
        wanted,
        opened,
        failures,
        open_secs,
        base,
        at_once,
        settled,
        breakdown,
    }
}

fn per_conn(now: &Snap, base: &Snap, n: usize) -> Option<f64> {
    let (a, b) = (now.pss_kb?, base.pss_kb?);
    Some((a as f64 - b as f64) / n.max(1) as f64)
}

fn report(i: &Idle, run: &Running, o: &Opts, workload: &str, users: usize) {
    let key = run.kind.key();
    let res = &o.results;
    let at_once = per_conn(&i.at_once, &i.base, i.opened);
    let settled = per_conn(&i.settled, &i.base, i.opened);
    let rss = (i.settled.rss_kb as f64 - i.base.rss_kb as f64) / i.opened.max(1) as f64;
    println!(
        "  {}/{} connections of {users} users in IDLE after {:.1} s ({:.0}/s); PSS per \
         connection: {} kB at once, {} kB after {} s; RSS {rss:.1} kB; {} processes",
        i.opened,
        i.wanted,
        i.open_secs,
        i.opened as f64 / i.open_secs.max(1e-9),
        at_once.map_or("-".into(), |v| format!("{v:.1}")),
        settled.map_or("-".into(), |v| format!("{v:.1}")),
        HIBERNATE_SECS + 3,
        i.settled.procs
    );
    println!("  where: {}", i.breakdown);
    for f in &i.failures {
        println!("  failed: {f}");
    }
    res.num(workload, key, "wanted", i.wanted as f64);
    res.num(workload, key, "opened", i.opened as f64);
    res.num(workload, key, "users", users as f64);
    res.num(
        workload,
        key,
        "open_per_s",
        i.opened as f64 / i.open_secs.max(1e-9),
    );
    if let Some(v) = at_once {
        res.num(workload, key, "pss_kb_per_conn_at_once", v);
    }
    if let Some(v) = settled {
        res.num(workload, key, "pss_kb_per_conn", v);
    }
    res.num(workload, key, "rss_kb_per_conn", rss);
    res.num(workload, key, "procs", i.settled.procs as f64);
    res.num(
        workload,
        key,
        "base_pss_mb",
        i.base.pss_kb.unwrap_or(0) as f64 / 1024.0,
    );
    res.put(workload, key, "pss_breakdown", &i.breakdown);
    for f in i.failures.iter().take(3) {
        res.put(workload, key, "error", f);
    }
    run.record_problems(res, workload);
}

/// The whole `--mode idle` run.
pub fn run(o: &Opts, kinds: &[Kind], work: &Path) {
    let wanted = o.idle.max(1);
    let users = o.users.unwrap_or((wanted / 4).max(1));
    for &kind in kinds {
        let dir = work.join(kind.key());
        std::fs::create_dir_all(&dir).expect("server dir");
        let accounts = (0..users)
            .map(|u| (user(u), PASSWORD.to_string()))
            .collect();
        let protos: &[Proto] = if o.tls {
            &[Proto::Imap, Proto::Imaps]
        } else {
            &[Proto::Imap]
        };
        let mut spec = Spec::new(&dir, accounts, protos);
        spec.connections = wanted;
        spec.tuned = !o.dovecot_untuned;
        for u in 0..users {
            imap_mail::make_tiny_maildir(&spec.maildir(&user(u)), IDLE_MESSAGES);
        }
        let variants: &[bool] = if o.tls { &[false, true] } else { &[false] };
        for &tls in variants {
            if interrupted() {
                break;
            }
            let name = if tls { "tls" } else { "plain" };
            println!("\n== {}: {wanted} idle connections, {name}", kind.label());
            let w = format!("imap-idle-{name}");
            let phase = format!("idle-{name}");
            let Some(mut run) = crate::start_or_record(o, kind, &spec, &phase, &w) else {
                continue;
            };
            let idle = idle_test(&mut run, wanted, users, tls);
            report(&idle, &run, o, &w, users);
        }
    }
}
