//! What every benchmark binary needs around the servers it measures: the roost binary, a free
//! loopback port, waiting until a server listens, running as root or not, and enough file
//! descriptors for thousands of connections.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The `roost` binary built with this benchmark (beside it: `target/dist/` when `bench/run`
/// built the `dist` profile, `target/release/` otherwise), or `$ROOST_BIN`.
pub fn roost_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("ROOST_BIN") {
        return bin.into();
    }
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join("roost")))
        .filter(|bin| bin.exists());
    beside.unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/roost"))
}

/// `roost --version` of [`roost_bin`], so that reports say which build they measured.
pub fn roost_version() -> String {
    Command::new(roost_bin())
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "roost".into())
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Waits (bounded) until something accepts connections on `addr`; an error if the process
/// exits first or nothing listens within 30 s.
pub fn wait_listening(addr: SocketAddr, child: &mut Child, what: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(addr).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("{what} exited: {status}"));
        }
        if Instant::now() > deadline {
            return Err(format!("{what} does not listen on {addr}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Whether the benchmark runs as root (roost then splits into master, login and workers).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// `chown -R owner path`.
pub fn chown(path: &Path, owner: &str) {
    let ok = Command::new("chown")
        .args(["-R", owner])
        .arg(path)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "chown -R {owner} {}", path.display());
}

/// Raises this process's open-file limit (inherited by the servers it starts) so that 10,000
/// idle connections fit on both ends: the hard limit too when allowed (root with
/// CAP_SYS_RESOURCE), otherwise the soft limit up to the hard one. Returns the soft limit now
/// in force.
pub fn raise_nofile(wanted: u64) -> u64 {
    // SAFETY: getrlimit/setrlimit with a valid resource and pointers to local structs.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        let higher = libc::rlimit {
            rlim_cur: wanted,
            rlim_max: lim.rlim_max.max(wanted),
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &higher) == 0 {
            return wanted;
        }
        let capped = libc::rlimit {
            rlim_cur: wanted.min(lim.rlim_max),
            rlim_max: lim.rlim_max,
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &capped) == 0 {
            return capped.rlim_cur;
        }
        lim.rlim_cur
    }
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::Relaxed);
}

/// Makes Ctrl-C end the current load early instead of killing the benchmark, so that the
/// servers it started are still stopped.
pub fn catch_sigint() {
    // SAFETY: installing a handler that only stores to an atomic.
    unsafe { libc::signal(libc::SIGINT, on_sigint as *const () as libc::sighandler_t) };
}

/// Whether Ctrl-C was pressed (see [`catch_sigint`]).
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
}

/// CPU seconds this process has used (user + system), to show what the load generator cost.
pub fn own_cpu_secs() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// The system's load average over the last minute, as /proc/loadavg gives it.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}
