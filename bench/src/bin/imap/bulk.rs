//! The one-client workloads: `--mode download` (a whole INBOX in one `UID FETCH 1:*
//! BODY.PEEK[]`, plain and over IMAPS) and `--mode select` (SELECT of a folder of 100,000
//! messages: the first, which indexes it, and later ones in fresh server processes, until the
//! index is current; time and the serving process's memory).

use std::path::Path;
use std::time::Instant;

use roost_bench::harness::interrupted;
use roost_bench::imap_client::{Imap, Status};
use roost_bench::imap_mail;
use roost_bench::imap_proc::{
    file_pages, proc_mem, snapshot, tree, tree_cpu_secs, FilePages, ProcMem, Sampler,
};
use roost_bench::servers::{self, Kind, Proto, Running, Spec};
use roost_bench::tls;

use crate::{Opts, PASSWORD, USER};

fn login(run: &Running, tls: bool) -> Imap {
    let (proto, config) = match tls {
        true => (Proto::Imaps, Some(tls::client_config())),
        false => (Proto::Imap, None),
    };
    let mut c =
        Imap::connect_with(run.addr(proto), "d.", 256 * 1024, config.as_ref()).expect("connect");
    c.login(USER, PASSWORD).expect("login");
    c
}

fn select(c: &mut Imap) -> (f64, Option<u64>) {
    let t = Instant::now();
    let r = c.command("SELECT INBOX", None, false).expect("SELECT");
    assert!(r.status == Status::Ok, "SELECT: {}", r.tagged);
    (t.elapsed().as_secs_f64() * 1e3, r.exists)
}

/// One full download over a new connection: (seconds, bytes received, server CPU seconds).
fn download_once(run: &Running, tls: bool) -> (f64, u64, f64) {
    let mut c = login(run, tls);
    select(&mut c);
    let cpu0 = tree_cpu_secs(run.pid());
    let t = Instant::now();
    let r = c
        .command("UID FETCH 1:* BODY.PEEK[]", None, false)
        .expect("FETCH");
    let secs = t.elapsed().as_secs_f64();
    assert!(r.status == Status::Ok, "FETCH: {}", r.tagged);
    let cpu = tree_cpu_secs(run.pid()) - cpu0;
    let _ = c.command("LOGOUT", None, false);
    (secs, r.bytes, cpu)
}

fn server_dir(work: &Path, kind: Kind) -> std::path::PathBuf {
    let dir = work.join(kind.key());
    std::fs::create_dir_all(&dir).expect("server dir");
    dir
}

/// The whole `--mode download` run.
pub fn download(o: &Opts, kinds: &[Kind], work: &Path) {
    let messages = o.messages.unwrap_or(5000);
    let w = "imap-download";
    for &kind in kinds {
        let dir = server_dir(work, kind);
        let spec = Spec::new(
            &dir,
            vec![(USER.into(), PASSWORD.into())],
            &[Proto::Imap, Proto::Imaps],
        );
        let bytes = imap_mail::make_maildir(&spec.maildir(USER), messages);
        println!(
            "\n== {}: UID FETCH 1:* BODY.PEEK[] of {messages} messages, {:.1} MB",
            kind.label(),
            bytes as f64 / 1e6
        );
        let Some(run) = crate::start_or_record(o, kind, &spec, "download", w) else {
            continue;
        };
        let sampler = Sampler::start(run.pid());
        let mut c = login(&run, false);
        let (first_ms, _) = select(&mut c);
        let _ = c.command("LOGOUT", None, false);
        o.results.num(w, kind.key(), "first_select_ms", first_ms);
        o.results.num(w, kind.key(), "messages", messages as f64);
        for tls in [false, true] {
            if interrupted() {
                break;
            }
            let name = if tls { "tls" } else { "plain" };
            let (secs, got, cpu) = download_once(&run, tls);
            println!(
                "  {name}: {secs:.2} s, {:.0} messages/s, {:.1} MB/s, server CPU {cpu:.2} s",
                messages as f64 / secs,
                got as f64 / 1e6 / secs
            );
            o.results.num(w, kind.key(), &format!("{name}_s"), secs);
            o.results.num(
                w,
                kind.key(),
                &format!("{name}_mb_s"),
                got as f64 / 1e6 / secs,
            );
            o.results.num(w, kind.key(), &format!("{name}_cpu_s"), cpu);
        }
        let hwm = sampler.peak_hwm_kb().max(snapshot(run.pid(), false).hwm_kb);
        drop(sampler);
        println!("  peak sum of VmHWM {:.1} MB", hwm as f64 / 1024.0);
        o.results.num(w, kind.key(), "hwm_mb", hwm as f64 / 1024.0);
        run.record_problems(&o.results, w);
    }
}

/// The process serving the session: Dovecot's `imap`, roost's worker, or roost's only process
/// (the root of its tree).
fn serving_process(kind: Kind, root: u32) -> ProcMem {
    let procs: Vec<ProcMem> = tree(root).into_iter().filter_map(proc_mem).collect();
    let wanted = match kind {
        Kind::Dovecot => "dovecot/imap",
        Kind::Workers => "roost worker",
        Kind::Single => "",
    };
    procs
        .iter()
        .filter(|m| m.name == wanted)
        .max_by_key(|m| m.hwm_kb)
        .or_else(|| procs.iter().find(|m| m.pid == root))
        .cloned()
        .unwrap_or_default()
}

/// What one SELECT in a fresh server measured.
struct Selected {
    ms: f64,
    exists: u64,
    /// The serving process's memory.
    mem: ProcMem,
    /// Its file-backed pages by mapping.
    files: FilePages,
    /// PSS of the server's whole process tree, kB.
    tree_pss_kb: u64,
}

/// Opens the folder in a fresh server.
fn select_in_fresh_server(kind: Kind, spec: &Spec, phase: &str) -> Result<Selected, String> {
    let run = servers::start(kind, spec, phase)?;
    let mut c = login(&run, false);
    let (ms, exists) = select(&mut c);
    let mem = serving_process(kind, run.pid());
    let files = file_pages(mem.pid);
    let tree_pss_kb = snapshot(run.pid(), true).pss_kb.unwrap_or(0);
    let _ = c.command("LOGOUT", None, false);
    Ok(Selected {
        ms,
        exists: exists.unwrap_or(0),
        mem,
        files,
        tree_pss_kb,
    })
}

/// Writes one SELECT's numbers (`first_ms`, `first_rss_mb`, …).
fn record_phase(o: &Opts, (w, key, phase): (&str, &str, &str), s: &Selected) {
    let mb = |kb: u64| kb as f64 / 1024.0;
    let r = &o.results;
    r.num(w, key, &format!("{phase}_ms"), s.ms);
    r.num(w, key, &format!("{phase}_exists"), s.exists as f64);
    r.num(w, key, &format!("{phase}_rss_mb"), mb(s.mem.hwm_kb));
    r.num(w, key, &format!("{phase}_anon_mb"), mb(s.mem.rss_anon_kb));
    r.num(w, key, &format!("{phase}_file_mb"), mb(s.mem.rss_file_kb));
    r.num(
        w,
        key,
        &format!("{phase}_program_mb"),
        mb(s.files.program_kb),
    );
    r.num(
        w,
        key,
        &format!("{phase}_libraries_mb"),
        mb(s.files.libraries_kb),
    );
    r.num(
        w,
        key,
        &format!("{phase}_data_files_mb"),
        mb(s.files.data_kb),
    );
    r.put(w, key, &format!("{phase}_process"), &s.mem.name);
    r.num(w, key, &format!("{phase}_tree_pss_mb"), mb(s.tree_pss_kb));
}

/// The whole `--mode select` run.
pub fn select_large(o: &Opts, kinds: &[Kind], work: &Path) {
    let messages = o.messages.unwrap_or(100_000);
    let w = format!("imap-select-{messages}");
    for &kind in kinds {
        let dir = server_dir(work, kind);
        let spec = Spec::new(&dir, vec![(USER.into(), PASSWORD.into())], &[Proto::Imap]);
        let t = Instant::now();
        imap_mail::make_tiny_maildir(&spec.maildir(USER), messages);
        println!(
            "\n== {}: SELECT of {messages} messages (made in {:.1} s)",
            kind.label(),
            t.elapsed().as_secs_f64()
        );
        // First: numbers every message; second: the index is made current (roost lists
        // cur/ once more); third: opens with a current index.
        for (n, phase) in ["first", "second", "current"].iter().enumerate() {
            if interrupted() {
                break;
            }
            let selected = match select_in_fresh_server(kind, &spec, &format!("select-{n}")) {
                Ok(found) => found,
                Err(e) => {
                    println!("  {e}");
                    o.results.put(&w, kind.key(), "error", e);
                    break;
                }
            };
            let mb = |kb: u64| kb as f64 / 1024.0;
            let (mem, files) = (&selected.mem, &selected.files);
            println!(
                "  {phase:<8} SELECT {:8.1} ms, {} EXISTS; {} peak RSS {:.1} MB \
                 (now {:.1} anon + {:.1} file: {:.1} program, {:.1} libraries, {:.1} data \
                 files); tree PSS {:.1} MB",
                selected.ms,
                selected.exists,
                mem.name,
                mb(mem.hwm_kb),
                mb(mem.rss_anon_kb),
                mb(mem.rss_file_kb),
                mb(files.program_kb),
                mb(files.libraries_kb),
                mb(files.data_kb),
                mb(selected.tree_pss_kb)
            );
            record_phase(o, (&w, kind.key(), phase), &selected);
        }
    }
}
