//! `cargo build --release && cargo run --release -p roost-bench --bin delivery -- [MESSAGES]`
//!
//! Local delivery throughput over SMTP port 25 (numbers to report, not a test): the release
//! `roost` binary (or `$ROOST_BIN`) with five local users; 1, 4 and 16 senders, each on its own
//! connection, send MESSAGES (default 200) 2 kB messages one after the other (MAIL, RCPT, DATA,
//! wait for the 250, which comes only after the message is fsynced). `TMPDIR=/dev/shm` puts the
//! mail on tmpfs, where fsync costs nothing, to show what it costs.

#[path = "../harness.rs"]
mod harness;
#[path = "../imap_proc.rs"]
#[allow(dead_code)]
mod imap_proc;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use harness::{chown, free_port, is_root, roost_bin, wait_listening};
use imap_proc::Server;

const USERS: [&str; 5] = ["ann", "bob", "cid", "dee", "eve"];

/// One SMTP client connection.
struct Smtp {
    reader: BufReader<TcpStream>,
}

impl Smtp {
    fn connect(addr: SocketAddr) -> Smtp {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .expect("timeout");
        stream.set_nodelay(true).expect("nodelay");
        let mut c = Smtp {
            reader: BufReader::new(stream),
        };
        c.reply();
        c
    }

    /// The last line of the next (possibly multi-line) reply.
    fn reply(&mut self) -> String {
        loop {
            let mut line = String::new();
            let n = self.reader.read_line(&mut line).expect("read");
            assert!(n > 0, "server closed the connection");
            if line.as_bytes().get(3) != Some(&b'-') {
                return line;
            }
        }
    }

    fn cmd(&mut self, line: &str) -> String {
        let stream = self.reader.get_mut();
        stream
            .write_all(format!("{line}\r\n").as_bytes())
            .expect("write");
        self.reply()
    }
}

fn start_roost(dir: &Path) -> (Server, SocketAddr) {
    let port = free_port();
    let mut users = String::new();
    for u in USERS {
        users.push_str(&format!("{u}:{{PLAIN}}bench-pw::::::\n"));
    }
    fs::write(dir.join("users"), users).expect("users");
    let owner = if is_root() { "user = \"nobody\"\n" } else { "" };
    fs::write(
        dir.join("roost.toml"),
        format!(
            "protocols = [\"smtp\"]\n[listen]\nsmtp = \"127.0.0.1:{port}\"\n\
             [mail]\nlocation = \"maildir:{0}/mail/%u\"\n{owner}\
             [auth]\npassdb = [\"passwd-file:users\"]\n\
             [smtp]\nlocal_domains = [\"example.com\"]\nqueue_dir = \"{0}/queue\"\n",
            dir.display()
        ),
    )
    .expect("config");
    fs::create_dir_all(dir.join("mail")).expect("mail dir");
    if is_root() {
        chown(&dir.join("mail"), "nobody");
    }
    let mut server = Server {
        child: Command::new(roost_bin())
            .args(["serve", "-c", "roost.toml"])
            .current_dir(dir)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start roost (cargo build --release first, or set ROOST_BIN)"),
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    wait_listening(addr, &mut server.child, "roost");
    (server, addr)
}

fn main() {
    let per_sender: usize = std::env::args()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
        .min(10_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let (_server, addr) = start_roost(dir.path());
    let body = "x".repeat(76) + "\r\n";
    let msg = format!(
        "Subject: bench\r\nMessage-ID: <b@client.test>\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\n{}",
        body.repeat(26)
    );
    println!(
        "local delivery, {} byte messages, {} ({})",
        msg.len(),
        std::env::temp_dir().display(),
        if is_root() {
            "root: a delivery worker per message"
        } else {
            "one process"
        }
    );
    for senders in [1, 4, 16] {
        let started = Instant::now();
        let threads: Vec<_> = (0..senders)
            .map(|t| {
                let msg = msg.clone();
                let user = USERS[t % USERS.len()];
                std::thread::spawn(move || {
                    let mut c = Smtp::connect(addr);
                    assert!(c.cmd("EHLO bench.test").starts_with("250 "));
                    for _ in 0..per_sender {
                        assert!(c.cmd("MAIL FROM:<bench@far.example>").starts_with("250"));
                        assert!(c
                            .cmd(&format!("RCPT TO:<{user}@example.com>"))
                            .starts_with("250"));
                        assert!(c.cmd("DATA").starts_with("354"));
                        let reply = c.cmd(&format!("{msg}."));
                        assert!(reply.starts_with("250 "), "DATA refused: {reply}");
                    }
                    c.cmd("QUIT");
                })
            })
            .collect();
        for t in threads {
            t.join().expect("sender");
        }
        let secs = started.elapsed().as_secs_f64();
        let total = senders * per_sender;
        println!(
            "{senders:>2} senders: {total:>5} messages in {secs:>6.2} s = {:>7.1} messages/s",
            total as f64 / secs
        );
    }
}
