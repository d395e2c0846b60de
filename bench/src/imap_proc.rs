//! The benchmarks' view of a server's process tree: which processes, their memory (VmRSS,
//! VmHWM, and PSS, which splits shared pages between the processes sharing them), their CPU
//! time, a background sampler, a per-process breakdown for profiles, and stopping the whole
//! tree.

use std::fs;
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Every process under `pid` (itself included), through every thread's children: a
/// multi-threaded parent (roost's tokio master) forks from any of its threads, and
/// /proc/P/task/P/children lists only the main thread's.
pub fn tree(pid: u32) -> Vec<u32> {
    let mut all = vec![];
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        if all.contains(&p) {
            continue;
        }
        all.push(p);
        for task in fs::read_dir(format!("/proc/{p}/task"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let children = fs::read_to_string(task.path().join("children")).unwrap_or_default();
            todo.extend(
                children
                    .split_whitespace()
                    .filter_map(|c| c.parse::<u32>().ok()),
            );
        }
    }
    all
}

fn kb_field(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// (VmRSS, VmHWM) of one process, kB.
pub fn rss_hwm_kb(pid: u32) -> Option<(u64, u64)> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some((kb_field(&status, "VmRSS:")?, kb_field(&status, "VmHWM:")?))
}

/// Proportional set size of one process, kB (shared pages divided among their sharers).
pub fn pss_kb(pid: u32) -> Option<u64> {
    let rollup = fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    kb_field(&rollup, "Pss:")
}

/// CPU time of one process and its reaped children (utime + stime + cutime + cstime), seconds.
pub fn cpu_secs(pid: u32) -> f64 {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the command name: state is field 3, utime..cstime are fields 14..17.
    let ticks: u64 = (11..=14)
        .filter_map(|i| f.get(i).and_then(|v| v.parse::<u64>().ok()))
        .sum();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    ticks as f64 / hz
}

/// CPU seconds of the whole tree.
pub fn tree_cpu_secs(root: u32) -> f64 {
    tree(root).into_iter().map(cpu_secs).sum()
}

/// The tree's memory at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct Snap {
    /// Processes in the tree.
    pub procs: usize,
    /// Sum of VmRSS.
    pub rss_kb: u64,
    /// Sum of VmHWM (each process's peak RSS).
    pub hwm_kb: u64,
    /// `None` when smaps_rollup was not read (or not readable).
    pub pss_kb: Option<u64>,
}

/// The tree's memory now; PSS only when asked (reading smaps_rollup costs more).
pub fn snapshot(root: u32, with_pss: bool) -> Snap {
    let mut s = Snap::default();
    let mut pss = 0;
    let mut pss_ok = with_pss;
    for pid in tree(root) {
        let Some((rss, hwm)) = rss_hwm_kb(pid) else {
            continue;
        };
        s.procs += 1;
        s.rss_kb += rss;
        s.hwm_kb += hwm;
        if pss_ok {
            match pss_kb(pid) {
                Some(p) => pss += p,
                None => pss_ok = false,
            }
        }
    }
    s.pss_kb = pss_ok.then_some(pss);
    s
}

/// Samples the tree in the background: every 100 ms (every second once it has more than 100
/// processes), PSS every tenth sample.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<(Instant, Snap)>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sampler {
    /// Starts sampling the tree under `root` until dropped.
    pub fn start(root: u32) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let (stop2, samples2) = (Arc::clone(&stop), Arc::clone(&samples));
        let thread = std::thread::spawn(move || {
            let mut n = 0u64;
            // Bounded: at most an hour of samples.
            while !stop2.load(Ordering::Relaxed) && n < 36_000 {
                let snap = snapshot(root, n.is_multiple_of(10));
                samples2.lock().unwrap().push((Instant::now(), snap));
                n += 1;
                let pause = if snap.procs > 100 { 1000 } else { 100 };
                std::thread::sleep(Duration::from_millis(pause));
            }
        });
        Sampler {
            stop,
            samples,
            thread: Some(thread),
        }
    }

    /// The highest tree sum of VmHWM seen so far.
    pub fn peak_hwm_kb(&self) -> u64 {
        let samples = self.samples.lock().unwrap();
        samples.iter().map(|(_, s)| s.hwm_kb).max().unwrap_or(0)
    }

    /// Samples taken between `from` and `to`.
    pub fn window(&self, from: Instant, to: Instant) -> Vec<Snap> {
        let samples = self.samples.lock().unwrap();
        samples
            .iter()
            .filter(|(t, _)| *t >= from && *t <= to)
            .map(|(_, s)| *s)
            .collect()
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A server we started; stopping (also on panic) ends its whole tree.
pub struct Server {
    /// The root of the tree.
    pub child: Child,
}

impl Server {
    /// The root process's id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

fn alive(pid: u32) -> bool {
    // A zombie has no memory left and is being reaped by its parent.
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| !r.trim_start().starts_with('Z'))
                .unwrap_or(false)
        })
        .unwrap_or(false)
}

impl Drop for Server {
    fn drop(&mut self) {
        let root = self.child.id();
        let pids = tree(root);
        // SAFETY: kill with a pid we started (or one of its descendants) and a valid signal.
        unsafe { libc::kill(root as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Whatever of the tree outlived its root (each pid was ours moments ago).
        let deadline = Instant::now() + Duration::from_secs(10);
        while pids.iter().any(|&p| p != root && alive(p)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        for &p in pids.iter().filter(|&&p| p != root && alive(p)) {
            // SAFETY: as above.
            unsafe { libc::kill(p as i32, libc::SIGKILL) };
        }
    }
}

/// One process's memory, split the way that explains it: anonymous memory (heap, stacks: what
/// the process allocated) against file-backed pages (the binary, libraries, mapped files such
/// as an index).
#[derive(Debug, Clone, Default)]
pub struct ProcMem {
    /// The process.
    pub pid: u32,
    /// Its program and first argument (`roost worker`, `dovecot/imap`).
    pub name: String,
    /// VmRSS split: RssAnon and RssFile (+ RssShmem), kB.
    pub rss_anon_kb: u64,
    /// File-backed resident pages, kB.
    pub rss_file_kb: u64,
    /// VmHWM: the process's peak RSS, kB.
    pub hwm_kb: u64,
    /// PSS of anonymous pages, kB.
    pub pss_anon_kb: u64,
    /// PSS of file-backed pages, kB.
    pub pss_file_kb: u64,
}

/// A short name for a process: its program's base name and first argument.
pub fn name_of(pid: u32) -> String {
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let mut args = cmdline
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned());
    let prog = args.next().unwrap_or_default();
    let base = prog.rsplit('/').next().unwrap_or(&prog).to_string();
    match (base.as_str(), args.next()) {
        // roost starts its workers as /proc/self/exe.
        ("exe" | "roost", Some(arg)) if !arg.starts_with('-') => format!("roost {arg}"),
        ("exe", _) => "roost".into(),
        _ if prog.starts_with("dovecot/") => prog.split_whitespace().next().unwrap_or("").into(),
        _ => base,
    }
}

/// The memory of one process, if it still exists.
pub fn proc_mem(pid: u32) -> Option<ProcMem> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rollup = fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    let get = |text: &str, key: &str| kb_field(text, key).unwrap_or(0);
    Some(ProcMem {
        pid,
        name: name_of(pid),
        rss_anon_kb: get(&status, "RssAnon:"),
        rss_file_kb: get(&status, "RssFile:") + get(&status, "RssShmem:"),
        hwm_kb: get(&status, "VmHWM:"),
        pss_anon_kb: get(&rollup, "Pss_Anon:"),
        pss_file_kb: get(&rollup, "Pss_File:") + get(&rollup, "Pss_Shmem:"),
    })
}

/// A process's resident file-backed pages by what they belong to: what a SELECT's
/// file-backed memory is made of.
#[derive(Debug, Clone, Copy, Default)]
pub struct FilePages {
    /// The program's own file (code, read-only data), kB.
    pub program_kb: u64,
    /// Shared libraries, kB.
    pub libraries_kb: u64,
    /// Any other mapped file (a mailbox index, a cache), kB.
    pub data_kb: u64,
}

/// The resident file-backed pages of one process, by mapping (from `/proc/<pid>/smaps`).
pub fn file_pages(pid: u32) -> FilePages {
    let smaps = fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
    let exe = fs::read_link(format!("/proc/{pid}/exe"))
        .map(|p| {
            p.to_string_lossy()
                .trim_end_matches(" (deleted)")
                .to_string()
        })
        .unwrap_or_default();
    let mut pages = FilePages::default();
    let mut path = String::new();
    for line in smaps.lines() {
        let mut fields = line.split_ascii_whitespace();
        let first = fields.next().unwrap_or("");
        if first.contains('-') && !first.ends_with(':') {
            // A mapping's header: range perms offset dev inode [path].
            path = fields.nth(4).unwrap_or("").to_string();
        } else if first == "Rss:" && path.starts_with('/') {
            let kb: u64 = fields.next().and_then(|v| v.parse().ok()).unwrap_or(0);
            let into = if path == exe {
                &mut pages.program_kb
            } else if path.contains(".so") {
                &mut pages.libraries_kb
            } else {
                &mut pages.data_kb
            };
            *into += kb;
        }
    }
    pages
}

/// Every process of the tree under `root`, summed by name (`dovecot/imap ×20`), biggest PSS
/// first: where a tree's memory sits.
pub fn breakdown(root: u32) -> Vec<(String, usize, ProcMem)> {
    let mut by_name: Vec<(String, usize, ProcMem)> = vec![];
    for m in tree(root).into_iter().filter_map(proc_mem) {
        match by_name.iter_mut().find(|(n, _, _)| *n == m.name) {
            Some((_, count, sum)) => {
                *count += 1;
                sum.rss_anon_kb += m.rss_anon_kb;
                sum.rss_file_kb += m.rss_file_kb;
                sum.hwm_kb = sum.hwm_kb.max(m.hwm_kb);
                sum.pss_anon_kb += m.pss_anon_kb;
                sum.pss_file_kb += m.pss_file_kb;
            }
            None => by_name.push((m.name.clone(), 1, m)),
        }
    }
    by_name.sort_by_key(|(_, _, m)| std::cmp::Reverse(m.pss_anon_kb + m.pss_file_kb));
    by_name
}

/// The breakdown as one line: `name ×count: PSS anon+file kB; …`.
pub fn breakdown_line(root: u32) -> String {
    breakdown(root)
        .iter()
        .map(|(name, count, m)| {
            let times = if *count > 1 {
                format!(" ×{count}")
            } else {
                String::new()
            };
            format!(
                "{name}{times}: PSS {:.1} MB ({:.1} anon + {:.1} file), peak RSS {:.1} MB",
                (m.pss_anon_kb + m.pss_file_kb) as f64 / 1024.0,
                m.pss_anon_kb as f64 / 1024.0,
                m.pss_file_kb as f64 / 1024.0,
                m.hwm_kb as f64 / 1024.0
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}
