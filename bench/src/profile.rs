//! Profiles cheap enough to take inside a benchmark run, to show why an aim is missed:
//! `perf record` with the cpu-clock software event (works in VMs without hardware counters)
//! for where the CPU goes, and `strace -c` for which system calls a command costs. Both attach
//! to a running server's processes for a bounded window and are stopped with SIGINT.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Which profiler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// `perf record -e cpu-clock`: CPU samples by symbol.
    Perf,
    /// `strace -c -f`: system calls by count.
    Strace,
}

impl Tool {
    /// Whether the tool is installed and allowed to attach here (checked once).
    pub fn works(self) -> bool {
        static PERF: OnceLock<bool> = OnceLock::new();
        static STRACE: OnceLock<bool> = OnceLock::new();
        let probe = |args: &[&str]| {
            Command::new(args[0])
                .args(&args[1..])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        match self {
            Tool::Perf => *PERF.get_or_init(|| {
                probe(&[
                    "perf",
                    "record",
                    "-q",
                    "-e",
                    "cpu-clock",
                    "-o",
                    "/dev/null",
                    "--",
                    "true",
                ])
            }),
            Tool::Strace => {
                *STRACE.get_or_init(|| probe(&["strace", "-c", "-o", "/dev/null", "true"]))
            }
        }
    }
}

/// A profiler attached to some processes.
pub struct Attached {
    tool: Tool,
    child: Child,
    out: PathBuf,
}

/// Attaches `tool` to `pids` (all their threads; `strace` also follows new children), writing
/// to `out`. Give the tool a moment to attach before the window starts counting.
pub fn attach(tool: Tool, pids: &[u32], out: &Path) -> std::io::Result<Attached> {
    let list: Vec<String> = pids.iter().map(u32::to_string).collect();
    let mut cmd = match tool {
        Tool::Perf => {
            let mut c = Command::new("perf");
            c.args(["record", "-q", "-e", "cpu-clock", "-F", "499", "-p"])
                .arg(list.join(","))
                .arg("-o")
                .arg(out);
            c
        }
        Tool::Strace => {
            let mut c = Command::new("strace");
            c.args(["-c", "-f", "-o"]).arg(out);
            for p in &list {
                c.args(["-p", p]);
            }
            c
        }
    };
    let child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn()?;
    std::thread::sleep(Duration::from_millis(500));
    Ok(Attached {
        tool,
        child,
        out: out.to_path_buf(),
    })
}

impl Attached {
    /// Detaches (SIGINT, bounded wait) and summarises: for perf, the hottest symbols as
    /// (share of samples in %, "symbol (object)"); for strace, system calls as (calls, name).
    pub fn finish(mut self) -> Vec<(f64, String)> {
        // SAFETY: kill with the pid of a child we spawned and a valid signal.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        match self.tool {
            Tool::Perf => perf_top(&self.out),
            Tool::Strace => strace_top(&self.out),
        }
    }
}

/// The hottest symbols of a perf.data file, self time, at least 1 % of the samples each.
fn perf_top(data: &Path) -> Vec<(f64, String)> {
    let Ok(out) = Command::new("perf")
        .args(["report", "--stdio", "--no-children", "--sort", "dso,symbol"])
        .args(["--percent-limit", "1", "-i"])
        .arg(data)
        .stderr(Stdio::null())
        .output()
    else {
        return vec![];
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let mut top = vec![];
    for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
        let mut words = line.split_whitespace();
        let Some(pct) = words
            .next()
            .and_then(|w| w.strip_suffix('%'))
            .and_then(|w| w.parse::<f64>().ok())
        else {
            continue;
        };
        let dso = words.next().unwrap_or("?");
        let mut rest: Vec<&str> = words.collect();
        // "[.] symbol" or "[k] symbol", then IPC columns ("-  -") where there are none.
        while rest.last() == Some(&"-") {
            rest.pop();
        }
        let symbol = rest
            .iter()
            .skip_while(|w| w.starts_with('['))
            .copied()
            .collect::<Vec<_>>()
            .join(" ");
        top.push((pct, format!("{} ({dso})", shorten(&symbol))));
    }
    top.truncate(15);
    top
}

/// A Rust symbol without its hash and nested generic arguments (`<Map<…> as Iterator>::fold`),
/// short enough for a table cell.
fn shorten(symbol: &str) -> String {
    let s = symbol.trim();
    let s = match s.rfind("::h") {
        Some(i) if s[i + 3..].chars().all(|c| c.is_ascii_hexdigit()) => &s[..i],
        _ => s,
    };
    let mut out = String::new();
    let mut depth = 0;
    for ch in s.chars() {
        match ch {
            '<' => {
                depth += 1;
                match depth {
                    1 => out.push('<'),
                    2 => out.push_str("<…"),
                    _ => {}
                }
            }
            '>' if depth > 0 => {
                if depth <= 2 {
                    out.push('>');
                }
                depth -= 1;
            }
            _ if depth <= 1 => out.push(ch),
            _ => {}
        }
    }
    // Module paths: the last two segments say enough (`iterator::Iterator`).
    let short: Vec<String> = out
        .split(' ')
        .map(|word| {
            let lead: String = word.chars().take_while(|c| *c == '<').collect();
            let parts: Vec<&str> = word[lead.len()..].split("::").collect();
            let keep = parts.len().saturating_sub(4);
            format!("{lead}{}", parts[keep..].join("::"))
        })
        .collect();
    short.join(" ").chars().take(100).collect()
}

/// Every system call of an `strace -c` summary, most frequent first.
fn strace_top(file: &Path) -> Vec<(f64, String)> {
    let text = fs::read_to_string(file).unwrap_or_default();
    let mut rows = vec![];
    for line in text.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        // % time, seconds, usecs/call, calls, [errors,] syscall
        if w.len() < 5 || w[0].parse::<f64>().is_err() || w.last() == Some(&"total") {
            continue;
        }
        let (Some(calls), Some(name)) = (w.get(3).and_then(|c| c.parse::<f64>().ok()), w.last())
        else {
            continue;
        };
        rows.push((calls, name.to_string()));
    }
    rows.sort_by(|a, b| b.0.total_cmp(&a.0));
    rows
}
