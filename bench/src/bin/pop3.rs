//! `cargo build --release --workspace && target/release/pop3 [--messages 5000]
//!  [--only workers,single,dovecot] [--results FILE]`
//!
//! POP3 download benchmark (numbers to report, not a test): builds a maildir of MESSAGES
//! (default 5,000) messages of realistic, mixed sizes (LF line ends, as an MTA writes them)
//! for each server (roost started as root: master, login, workers; roost started as `nobody`:
//! one process; a private Dovecot when run as root with `dovecot-pop3d` installed) and
//! downloads everything: once with one raw-socket client pipelining every RETR (first login,
//! so the maildrop is opened for the first time), once more the same way (warm), then with
//! Python's poplib, one RETR at a time. Prints the login times, messages/s and MB/s, and the
//! peak RSS of the server's process tree (VmHWM, sampled every 50 ms).

use roost_bench::harness::{catch_sigint, is_root, raise_nofile, roost_bin};
use roost_bench::imap_proc::{name_of, tree};
use roost_bench::results::{take_results_flag, Results};
use roost_bench::servers::{self, Kind, Proto, Spec};
use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const USER: &str = "bench";
const PASSWORD: &str = "bench-pw-1";
const WORKLOAD: &str = "pop3-download";

/// A small xorshift generator: the same mailbox on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo) as u64) as usize
    }
}

const WORDS: &[&str] = &[
    "the",
    "quarterly",
    "report",
    "meeting",
    "please",
    "find",
    "attached",
    "regards",
    "project",
    "deadline",
    "budget",
    "review",
    "thanks",
    "schedule",
    "update",
    "customer",
    "invoice",
    "server",
    "release",
    "notes",
    "team",
    "Grüße",
    "naïve",
    "café",
    "déjà",
    "vu",
    "über",
];

fn text_lines(rng: &mut Rng, bytes: usize, out: &mut Vec<u8>) {
    let end = out.len() + bytes;
    while out.len() < end {
        if rng.next().is_multiple_of(40) {
            out.push(b'.'); // a line POP3 must dot-stuff
        }
        let target = rng.range(20, 76);
        let start = out.len();
        while out.len() - start < target {
            out.extend_from_slice(WORDS[rng.range(0, WORDS.len())].as_bytes());
            out.push(b' ');
        }
        out.push(b'\n');
    }
}

fn base64_lines(rng: &mut Rng, bytes: usize, out: &mut Vec<u8>) {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut line = 0;
    for _ in 0..bytes / 4 * 4 {
        out.push(A[(rng.next() % 64) as usize]);
        line += 1;
        if line == 76 {
            out.push(b'\n');
            line = 0;
        }
    }
    out.push(b'\n');
}

/// One message: 60 % plain text (1–8 kB), 30 % text + HTML (15–70 kB), 10 % with an
/// attachment (50–250 kB); about 35 kB on average.
fn message(rng: &mut Rng, i: usize) -> Vec<u8> {
    let mut m = Vec::new();
    for hop in 0..3 {
        m.extend_from_slice(
            format!(
                "Received: from mx{hop}.example.net (mx{hop}.example.net [192.0.2.{hop}])\n\
                 \tby mail.example.com (Postfix) with ESMTPS id 4Q{i:06}X{hop}\n\
                 \tfor <bench@example.com>; Tue, 14 Nov 2023 10:{:02}:00 +0100 (CET)\n",
                i % 60
            )
            .as_bytes(),
        );
    }
    m.extend_from_slice(b"DKIM-Signature: v=1; a=rsa-sha256; d=example.net; s=s1;\n\tb=");
    base64_lines(rng, 300, &mut m);
    m.extend_from_slice(
        format!(
            "From: Sender {i} <sender{i}@example.net>\nTo: bench@example.com\n\
             Subject: message {i} about the quarterly report\n\
             Date: Tue, 14 Nov 2023 10:00:00 +0100\nMessage-ID: <{i}.bench@example.net>\n\
             MIME-Version: 1.0\n"
        )
        .as_bytes(),
    );
    let kind = rng.range(0, 10);
    if kind < 6 {
        m.extend_from_slice(b"Content-Type: text/plain; charset=utf-8\n\n");
        let n = rng.range(1_000, 8_000);
        text_lines(rng, n, &mut m);
    } else {
        m.extend_from_slice(b"Content-Type: multipart/mixed; boundary=\"b\"\n\n--b\n");
        m.extend_from_slice(b"Content-Type: text/plain; charset=utf-8\n\n");
        let n = rng.range(2_000, 10_000);
        text_lines(rng, n, &mut m);
        if kind < 9 {
            m.extend_from_slice(b"--b\nContent-Type: text/html; charset=utf-8\n\n<html><body>\n");
            let n = rng.range(13_000, 60_000);
            text_lines(rng, n, &mut m);
            m.extend_from_slice(b"</body></html>\n");
        } else {
            m.extend_from_slice(
                b"--b\nContent-Type: application/pdf; name=\"report.pdf\"\n\
                  Content-Transfer-Encoding: base64\n\n",
            );
            let n = rng.range(50_000, 250_000);
            base64_lines(rng, n, &mut m);
        }
        m.extend_from_slice(b"--b--\n");
    }
    m
}

/// Writes the mailbox into `maildir/new`; returns (messages, bytes on disk).
fn make_maildir(maildir: &Path, count: usize) -> (usize, u64) {
    for sub in ["new", "cur", "tmp"] {
        fs::create_dir_all(maildir.join(sub)).expect("maildir");
    }
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut bytes = 0;
    for i in 0..count {
        let m = message(&mut rng, i);
        bytes += m.len() as u64;
        let name = format!("1700000000.M{i:05}P1.bench,S={}", m.len());
        fs::write(maildir.join("new").join(name), &m).expect("write message");
    }
    (count, bytes)
}

/// Samples VmHWM of every process under `root` until stopped: the peak of the tree's sum, and
/// each process's own peak (by pid, with its name).
struct RssSampler {
    stop: Arc<AtomicBool>,
    peaks: Arc<Mutex<Peaks>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Default)]
struct Peaks {
    tree_kb: u64,
    each: HashMap<u32, (String, u64)>,
}

fn hwm_kb(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

impl RssSampler {
    fn start(root: u32) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let peaks = Arc::new(Mutex::new(Peaks::default()));
        let (stop2, peaks2) = (Arc::clone(&stop), Arc::clone(&peaks));
        let thread = std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                let mut sum = 0;
                let mut p = peaks2.lock().unwrap();
                for pid in tree(root) {
                    let Some(kb) = hwm_kb(pid) else { continue };
                    sum += kb;
                    let entry = p.each.entry(pid).or_insert_with(|| (name_of(pid), 0));
                    entry.1 = entry.1.max(kb);
                }
                p.tree_kb = p.tree_kb.max(sum);
                drop(p);
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        RssSampler {
            stop,
            peaks,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> Peaks {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        std::mem::take(&mut *self.peaks.lock().unwrap())
    }
}

/// A raw POP3 client.
struct Pop3 {
    reader: BufReader<TcpStream>,
    line: Vec<u8>,
}

impl Pop3 {
    fn connect(addr: SocketAddr) -> Pop3 {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(600)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        let mut c = Pop3 {
            reader: BufReader::with_capacity(256 * 1024, stream),
            line: Vec::new(),
        };
        c.status("greeting");
        c
    }

    fn read_line(&mut self) -> &[u8] {
        self.line.clear();
        let n = self.reader.read_until(b'\n', &mut self.line).expect("read");
        assert!(n > 0, "server closed the connection");
        &self.line
    }

    fn status(&mut self, what: &str) -> String {
        let line = String::from_utf8_lossy(self.read_line()).into_owned();
        assert!(line.starts_with("+OK"), "{what}: {line}");
        line
    }

    fn cmd(&mut self, line: &str) -> String {
        self.reader
            .get_mut()
            .write_all(format!("{line}\r\n").as_bytes())
            .unwrap();
        self.status(line)
    }

    /// Reads a multi-line body; returns its size un-dot-stuffed (terminator excluded).
    fn body(&mut self) -> u64 {
        let mut size = 0;
        loop {
            let line = self.read_line();
            if line == b".\r\n" {
                return size;
            }
            size += line.len() as u64 - u64::from(line.starts_with(b".."));
        }
    }

    fn login(&mut self) -> Duration {
        self.cmd(&format!("USER {USER}"));
        let start = Instant::now();
        self.cmd(&format!("PASS {PASSWORD}"));
        start.elapsed()
    }

    /// LIST: each message's size.
    fn list(&mut self) -> Vec<u64> {
        self.cmd("LIST");
        let mut sizes = vec![];
        loop {
            let line = String::from_utf8_lossy(self.read_line()).into_owned();
            if line == ".\r\n" {
                return sizes;
            }
            sizes.push(line.split_whitespace().nth(1).unwrap().parse().unwrap());
        }
    }

    /// Sends every RETR at once from another thread (PIPELINING) and reads the answers;
    /// checks each size against LIST. Returns the bytes received.
    fn retr_all_pipelined(&mut self, sizes: &[u64]) -> u64 {
        let mut writer = self.reader.get_ref().try_clone().unwrap();
        let n = sizes.len();
        let sender = std::thread::spawn(move || {
            let mut commands = Vec::with_capacity(n * 12);
            for i in 1..=n {
                commands.extend_from_slice(format!("RETR {i}\r\n").as_bytes());
            }
            writer.write_all(&commands).unwrap();
        });
        let mut total = 0;
        for (i, &size) in sizes.iter().enumerate() {
            self.status("RETR");
            let got = self.body();
            assert_eq!(got, size, "message {} is not its LIST size", i + 1);
            total += got;
        }
        sender.join().unwrap();
        total
    }
}

/// One server under test, already listening on `addr`; `pid` is the root of its tree.
struct Target<'a> {
    kind: Kind,
    addr: SocketAddr,
    pid: u32,
    results: &'a Results,
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

fn row(what: &str, value: String) {
    println!("  {what:<56} {value}");
}

/// Downloads the maildrop with every RETR pipelined; prints and records the rate.
fn timed_retr(t: &Target, c: &mut Pop3, sizes: &[u64], label: &str, metric: &str) {
    let start = Instant::now();
    let bytes = c.retr_all_pipelined(sizes);
    let took = start.elapsed().as_secs_f64();
    row(
        label,
        format!(
            "{:8.1} ms  {:7.0} msg/s  {:6.1} MB/s",
            took * 1e3,
            sizes.len() as f64 / took,
            mb(bytes) / took
        ),
    );
    let key = t.kind.key();
    t.results.num(WORKLOAD, key, &format!("{metric}_s"), took);
    t.results.num(
        WORKLOAD,
        key,
        &format!("{metric}_msg_s"),
        sizes.len() as f64 / took,
    );
    t.results
        .num(WORKLOAD, key, &format!("{metric}_mb_s"), mb(bytes) / took);
}

fn first_session(t: &Target) {
    let mut c = Pop3::connect(t.addr);
    let first = c.login();
    row(
        "first login (USER/PASS → +OK: open the new maildrop)",
        format!("{:8.1} ms", first.as_secs_f64() * 1e3),
    );
    let start = Instant::now();
    let sizes = c.list();
    let list = start.elapsed();
    row("LIST", format!("{:8.1} ms", list.as_secs_f64() * 1e3));
    let ms = (first + list).as_secs_f64() * 1e3;
    row(
        "first login + LIST (every size known)",
        format!("{ms:8.1} ms"),
    );
    t.results
        .num(WORKLOAD, t.kind.key(), "first_login_list_ms", ms);
    timed_retr(
        t,
        &mut c,
        &sizes,
        "RETR 1..n pipelined, one raw client (first session)",
        "retr_first",
    );
    let start = Instant::now();
    c.cmd("QUIT");
    let ms = start.elapsed().as_secs_f64() * 1e3;
    row(
        "QUIT (UPDATE: every retrieved message marked seen)",
        format!("{ms:8.1} ms"),
    );
    t.results.num(WORKLOAD, t.kind.key(), "quit_ms", ms);
}

fn measure(t: &Target) {
    println!("\n{}:", t.kind.label());
    let sampler = RssSampler::start(t.pid);
    first_session(t);
    let mut c = Pop3::connect(t.addr);
    let second = c.login();
    row(
        "second login (maildrop already indexed)",
        format!("{:8.1} ms", second.as_secs_f64() * 1e3),
    );
    let key = t.kind.key();
    t.results
        .num(WORKLOAD, key, "second_login_ms", second.as_secs_f64() * 1e3);
    let sizes = c.list();
    timed_retr(
        t,
        &mut c,
        &sizes,
        "RETR 1..n pipelined, one raw client (again)",
        "retr_again",
    );
    c.cmd("QUIT");
    match poplib(t.addr) {
        Ok((n, bytes, login, took)) => {
            row(
                "Python poplib: login, then RETR one at a time",
                format!(
                    "{:8.1} ms  {:7.0} msg/s  {:6.1} MB/s  (login {:.1} ms)",
                    took * 1e3,
                    n as f64 / took,
                    mb(bytes) / took,
                    login * 1e3
                ),
            );
            t.results
                .num(WORKLOAD, key, "poplib_msg_s", n as f64 / took);
        }
        Err(e) => row("Python poplib", format!("skipped: {e}")),
    }
    let peaks = sampler.finish();
    row(
        "peak RSS, whole server process tree (sum of VmHWM)",
        format!("{:8.1} MB", peaks.tree_kb as f64 / 1024.0),
    );
    t.results
        .num(WORKLOAD, key, "hwm_mb", peaks.tree_kb as f64 / 1024.0);
    let mut each: Vec<(u32, (String, u64))> = peaks.each.into_iter().collect();
    each.sort_by_key(|(pid, (_, kb))| (std::cmp::Reverse(*kb), *pid));
    if let Some((_, (name, kb))) = each.first() {
        t.results
            .num(WORKLOAD, key, "biggest_process_hwm_mb", *kb as f64 / 1024.0);
        t.results.put(WORKLOAD, key, "biggest_process", name);
    }
    let each: Vec<String> = each
        .iter()
        .map(|(pid, (comm, kb))| format!("{comm}[{pid}] {:.1}", *kb as f64 / 1024.0))
        .collect();
    row("peak RSS of each process, MB", each.join(", "));
}

const POPLIB: &str = r#"
import poplib, sys, time
host, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
t0 = time.perf_counter()
p = poplib.POP3(host, port, timeout=600)
p.user(user)
p.pass_(password)
t1 = time.perf_counter()
n, _ = p.stat()
total = 0
for i in range(1, n + 1):
    total += p.retr(i)[2]
t2 = time.perf_counter()
p.quit()
print(n, total, t1 - t0, t2 - t1)
"#;

/// (messages, bytes, login seconds, download seconds)
fn poplib(addr: SocketAddr) -> Result<(u64, u64, f64, f64), String> {
    let out = Command::new("python3")
        .args([
            "-c",
            POPLIB,
            &addr.ip().to_string(),
            &addr.port().to_string(),
            USER,
            PASSWORD,
        ])
        .output()
        .map_err(|e| format!("python3: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let f: Vec<&str> = text.split_whitespace().collect();
    let parse = |i: usize| {
        f.get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .ok_or("bad output")
    };
    Ok((parse(0)? as u64, parse(1)? as u64, parse(2)?, parse(3)?))
}

fn usage() -> ! {
    eprintln!(
        "usage: pop3 [MESSAGES | --messages N (5000)] [--only workers,single,dovecot] \
         [--results FILE]"
    );
    std::process::exit(2)
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let results = take_results_flag(&mut args);
    let (mut count, mut only) = (5_000usize, vec![]);
    let mut args = args.into_iter();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--messages" => {
                count = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| usage())
            }
            "--only" => {
                let list = args.next().unwrap_or_else(|| usage());
                only = list.split(',').map(str::to_string).collect();
            }
            n => count = n.parse().unwrap_or_else(|_| usage()),
        }
    }
    let count = count.clamp(1, 100_000);
    catch_sigint();
    raise_nofile(4096);
    assert!(
        roost_bin().exists(),
        "{} not found: run `cargo build --release --workspace` first (or set ROOST_BIN)",
        roost_bin().display()
    );
    let work = tempfile::tempdir().expect("temp dir");
    if is_root() {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(work.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let (kinds, skipped) = servers::available(&only, &[Proto::Pop3]);
    for s in &skipped {
        println!("{s}");
    }
    let mut described = false;
    for kind in kinds {
        let dir = work.path().join(kind.key());
        fs::create_dir_all(&dir).expect("server dir");
        let spec = Spec::new(&dir, vec![(USER.into(), PASSWORD.into())], &[Proto::Pop3]);
        let (n, bytes) = make_maildir(&spec.maildir(USER), count);
        if !described {
            described = true;
            println!(
                "POP3 download: {n} messages, {:.1} MB on disk (average {:.1} kB, LF line ends), \
                 loopback, page cache warm",
                mb(bytes),
                bytes as f64 / n as f64 / 1e3
            );
        }
        let run = match servers::start(kind, &spec, "pop3") {
            Ok(run) => run,
            Err(e) => {
                println!("\n{}: {e}", kind.label());
                results.put(WORKLOAD, kind.key(), "error", e);
                continue;
            }
        };
        measure(&Target {
            kind,
            addr: run.addr(Proto::Pop3),
            pid: run.pid(),
            results: &results,
        });
        run.record_problems(&results, WORKLOAD);
    }
}
