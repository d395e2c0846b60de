//! `cargo build --release --workspace && target/release/delivery [--protocol smtp|lmtp]
//!  [--senders 1,4,16] [--messages 200] [--only workers,single,dovecot] [--sieve SCRIPT]
//!  [--results FILE]`
//!
//! Local delivery throughput (numbers to report, not a test): five local users; for each
//! sender count, that many senders, each on its own connection, send MESSAGES 2 kB messages
//! one after the other (MAIL, RCPT, DATA, wait for the reply, which comes only after the
//! message is fsynced), spread over the users' INBOXes. Over SMTP port 25 (roost only; senders
//! 1, 4 and 16 by default) or LMTP (roost's against Dovecot's `lmtp`; 10 senders by default).
//! roost runs started as root (master, workers) and as `nobody` (one process). `TMPDIR=/dev/shm`
//! puts the mail on tmpfs, where fsync costs nothing, to show what it costs. `--sieve SCRIPT`
//! makes SCRIPT every user's active Sieve script (roost only), to show what filtering costs.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use roost_bench::harness::{catch_sigint, chown, interrupted, is_root, raise_nofile};
use roost_bench::results::{take_results_flag, Results};
use roost_bench::servers::{self, Kind, Proto, Spec};

const USERS: [&str; 5] = ["ann", "bob", "cid", "dee", "eve"];

/// One SMTP or LMTP client connection.
struct Smtp {
    reader: BufReader<TcpStream>,
}

impl Smtp {
    fn connect(addr: SocketAddr) -> std::io::Result<Smtp> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        stream.set_nodelay(true)?;
        let mut c = Smtp {
            reader: BufReader::new(stream),
        };
        c.reply()?;
        Ok(c)
    }

    /// The last line of the next (possibly multi-line) reply.
    fn reply(&mut self) -> std::io::Result<String> {
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line)? == 0 {
                return Err(std::io::Error::other("server closed the connection"));
            }
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok(line);
            }
        }
    }

    /// Sends a line; an error unless the reply starts with `want`.
    fn cmd(&mut self, line: &str, want: &str) -> std::io::Result<String> {
        self.reader
            .get_mut()
            .write_all(format!("{line}\r\n").as_bytes())?;
        let reply = self.reply()?;
        if !reply.starts_with(want) {
            let first = line.lines().next().unwrap_or(line);
            return Err(std::io::Error::other(format!(
                "{first}: {}",
                reply.trim_end()
            )));
        }
        Ok(reply)
    }
}

/// One sender: its connection, then `count` messages to `user`; per-message latencies (µs).
fn sender(
    addr: SocketAddr,
    lmtp: bool,
    user: &str,
    count: usize,
    msg: &str,
) -> std::io::Result<Vec<u32>> {
    let mut c = Smtp::connect(addr)?;
    c.cmd(
        if lmtp {
            "LHLO bench.test"
        } else {
            "EHLO bench.test"
        },
        "250",
    )?;
    let mut lat = Vec::with_capacity(count);
    for _ in 0..count {
        if interrupted() {
            break;
        }
        let t = Instant::now();
        c.cmd("MAIL FROM:<bench@far.example>", "250")?;
        c.cmd(&format!("RCPT TO:<{user}@example.com>"), "250")?;
        c.cmd("DATA", "354")?;
        c.cmd(&format!("{msg}."), "250")?;
        lat.push(t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
    }
    let _ = c.cmd("QUIT", "221");
    Ok(lat)
}

/// Messages in every user's maildir (new/ and cur/).
fn delivered(mail: &Path) -> usize {
    USERS
        .iter()
        .flat_map(|u| ["new", "cur"].map(|d| mail.join(u).join(d)))
        .map(|d| fs::read_dir(d).map(|r| r.count()).unwrap_or(0))
        .sum()
}

struct Opts {
    lmtp: bool,
    senders: Vec<usize>,
    per_sender: usize,
    only: Vec<String>,
    /// A Sieve script to make every user's active one.
    sieve: Option<String>,
    results: Results,
}

fn usage() -> ! {
    eprintln!(
        "usage: delivery [--protocol smtp|lmtp] [--senders N[,N…] (1..=64)] \
         [--messages 1..=10000 (200) | MESSAGES] [--only workers,single,dovecot] \
         [--sieve SCRIPT] [--results FILE]"
    );
    std::process::exit(2)
}

fn parse_opts() -> Opts {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let results = take_results_flag(&mut args);
    let mut o = Opts {
        lmtp: false,
        senders: vec![],
        per_sender: 200,
        only: vec![],
        sieve: None,
        results,
    };
    let num = |v: Option<String>, hi: usize| -> usize {
        match v.and_then(|v| v.parse().ok()) {
            Some(n) if (1..=hi).contains(&n) => n,
            _ => usage(),
        }
    };
    let mut args = args.into_iter();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--protocol" => match args.next().as_deref() {
                Some("lmtp") => o.lmtp = true,
                Some("smtp") => o.lmtp = false,
                _ => usage(),
            },
            "--senders" => {
                let list = args.next().unwrap_or_else(|| usage());
                o.senders = list.split(',').map(|s| num(Some(s.into()), 64)).collect();
            }
            "--messages" => o.per_sender = num(args.next(), 10_000),
            "--sieve" => {
                let path = args.next().unwrap_or_else(|| usage());
                o.sieve = Some(fs::read_to_string(path).unwrap_or_else(|_| usage()));
            }
            "--only" => {
                let list = args.next().unwrap_or_else(|| usage());
                o.only = list.split(',').map(str::to_string).collect();
            }
            n => o.per_sender = num(Some(n.into()), 10_000),
        }
    }
    if o.senders.is_empty() {
        o.senders = if o.lmtp { vec![10] } else { vec![1, 4, 16] };
    }
    o
}

/// Every sender count against one server.
fn measure(o: &Opts, kind: Kind, addr: SocketAddr, mail: &Path, msg: &str) {
    let proto = if o.lmtp { "lmtp" } else { "smtp" };
    for &senders in &o.senders {
        let before = delivered(mail);
        let started = Instant::now();
        let threads: Vec<_> = (0..senders)
            .map(|t| {
                let (msg, user, n, lmtp) = (
                    msg.to_string(),
                    USERS[t % USERS.len()],
                    o.per_sender,
                    o.lmtp,
                );
                std::thread::spawn(move || sender(addr, lmtp, user, n, &msg))
            })
            .collect();
        let (mut lat, mut failed) = (vec![], vec![]);
        for t in threads {
            match t.join() {
                Ok(Ok(mut l)) => lat.append(&mut l),
                Ok(Err(e)) => failed.push(e.to_string()),
                Err(_) => failed.push("sender panicked".into()),
            }
        }
        let secs = started.elapsed().as_secs_f64();
        lat.sort_unstable();
        let p = |q: f64| {
            lat.get(((lat.len().max(1) - 1) as f64 * q).round() as usize)
                .map_or(0.0, |&us| f64::from(us) / 1000.0)
        };
        let landed = delivered(mail) - before;
        println!(
            "  {senders:>2} senders: {:>5} messages in {secs:>6.2} s = {:>7.1} messages/s; \
             p50 {:.1} ms, p99 {:.1} ms; {landed} in the maildirs",
            lat.len(),
            lat.len() as f64 / secs,
            p(0.5),
            p(0.99)
        );
        for f in failed.iter().take(3) {
            println!("  sender failed: {f}");
        }
        let (w, key, r) = (format!("{proto}-{senders}"), kind.key(), &o.results);
        r.num(&w, key, "msgs_per_s", lat.len() as f64 / secs);
        r.num(&w, key, "messages", lat.len() as f64);
        r.num(&w, key, "landed", landed as f64);
        r.num(&w, key, "p50_ms", p(0.5));
        r.num(&w, key, "p99_ms", p(0.99));
        r.num(&w, key, "failed_senders", failed.len() as f64);
        for f in failed.iter().take(2) {
            r.put(&w, key, "error", f);
        }
    }
}

/// Makes `script` every user's active Sieve script, where ManageSieve would put it, owned by
/// the mail owner (`nobody`).
fn install_sieve(mail: &Path, script: &str) {
    for user in USERS {
        let dir = mail.join(user).join("sieve");
        fs::create_dir_all(&dir).expect("sieve dir");
        fs::write(dir.join("bench.sieve"), script).expect("script");
        let _ = fs::remove_file(dir.join("active"));
        std::os::unix::fs::symlink("bench.sieve", dir.join("active")).expect("active link");
        if is_root() {
            chown(&mail.join(user), "nobody:nogroup");
        }
    }
}

fn main() {
    let o = parse_opts();
    catch_sigint();
    raise_nofile(4096);
    let dir = tempfile::tempdir().expect("temp dir");
    if is_root() {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let proto = if o.lmtp { Proto::Lmtp } else { Proto::Smtp };
    let (kinds, skipped) = servers::available(&o.only, &[proto]);
    for s in &skipped {
        println!("{s}");
    }
    let body = "x".repeat(76) + "\r\n";
    let msg = format!(
        "Subject: bench\r\nMessage-ID: <b@client.test>\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\n{}",
        body.repeat(26)
    );
    println!(
        "local delivery over {}, {} byte messages, {} per sender, mail in {}",
        if o.lmtp { "LMTP" } else { "SMTP" },
        msg.len(),
        o.per_sender,
        std::env::temp_dir().display()
    );
    for kind in kinds {
        let server_dir = dir.path().join(kind.key());
        fs::create_dir_all(&server_dir).expect("server dir");
        let users = USERS
            .iter()
            .map(|u| (u.to_string(), "bench-pw".to_string()))
            .collect();
        let mut spec = Spec::new(&server_dir, users, &[proto]);
        spec.connections = o.senders.iter().copied().max().unwrap_or(1) + 10;
        let run = match servers::start(kind, &spec, "delivery") {
            Ok(run) => run,
            Err(e) => {
                println!("\n{}: {e}", kind.label());
                let proto = if o.lmtp { "lmtp" } else { "smtp" };
                for senders in &o.senders {
                    o.results
                        .put(&format!("{proto}-{senders}"), kind.key(), "error", &e);
                }
                continue;
            }
        };
        println!("\n{}:", kind.label());
        if let (Some(script), false) = (&o.sieve, kind == Kind::Dovecot) {
            install_sieve(&server_dir.join("mail"), script);
        }
        measure(&o, kind, run.addr(proto), &server_dir.join("mail"), &msg);
        let (count, first) = run.problems();
        if count > 0 {
            println!("  server log: {count} warnings/errors; first: {first:?}");
        }
        let proto = if o.lmtp { "lmtp" } else { "smtp" };
        for senders in &o.senders {
            run.record_problems(&o.results, &format!("{proto}-{senders}"));
        }
    }
}
