//! What every benchmark binary needs around the servers it measures: the roost binary, a free
//! loopback port, waiting until a server listens, and running as root or not.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// The release `roost` binary (or `$ROOST_BIN`).
pub fn roost_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("ROOST_BIN") {
        return bin.into();
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/roost")
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits (bounded) until something accepts connections on `addr`.
pub fn wait_listening(addr: SocketAddr, child: &mut Child, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(addr).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "{what} does not listen on {addr}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
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
