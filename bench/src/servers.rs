//! The servers every benchmark compares, started the same way by each of them on its own copy
//! of the data: roost started as root (master, login process, workers per mail owner, mail
//! owned by `nobody`), roost started as `nobody` (everything in one process), and a private,
//! tuned Dovecot 2.3 with its own config file, ports and directories (never the system's).

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::harness::{chown, free_port, is_root, roost_bin, wait_listening};
use crate::imap_proc::Server;

/// Dovecot's master binary, as Debian installs it.
pub const DOVECOT: &str = "/usr/sbin/dovecot";
/// Dovecot moves a connection that has been in IDLE this long into its imap-hibernate process.
pub const HIBERNATE_SECS: u64 = 5;

/// Which server, in which process model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// roost started as root: master, login process, a worker per mail owner.
    Workers,
    /// roost started as an ordinary user: one process.
    Single,
    /// A private Dovecot instance.
    Dovecot,
}

impl Kind {
    /// Every server, in the order reports list them.
    pub const ALL: [Kind; 3] = [Kind::Workers, Kind::Single, Kind::Dovecot];

    /// The name `--only` and the results file use.
    pub fn key(self) -> &'static str {
        match self {
            Kind::Workers => "workers",
            Kind::Single => "single",
            Kind::Dovecot => "dovecot",
        }
    }

    /// A label for printed reports.
    pub fn label(self) -> String {
        match self {
            Kind::Workers => format!("{} as root (master, login, workers)", roost_label()),
            Kind::Single if is_root() => format!("{} as nobody (one process)", roost_label()),
            Kind::Single => format!("{} (one process)", roost_label()),
            Kind::Dovecot => format!(
                "Dovecot {} (tuned)",
                dovecot_version().unwrap_or_else(|| "?".into())
            ),
        }
    }
}

fn roost_label() -> String {
    let version = crate::harness::roost_version();
    match version.strip_prefix("roost ") {
        Some(v) => format!("roost {v}"),
        None => version,
    }
}

/// A protocol a workload needs the server to listen for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// IMAP on a plain TCP port.
    Imap,
    /// IMAP over implicit TLS, with the certificate of [`crate::tls::make_cert`].
    Imaps,
    /// POP3 on a plain TCP port.
    Pop3,
    /// LMTP on a loopback TCP port.
    Lmtp,
    /// SMTP (port 25 style: local delivery without AUTH); roost only.
    Smtp,
}

impl Proto {
    /// roost's name for it in `protocols` and `[listen]`.
    fn key(self) -> &'static str {
        match self {
            Proto::Imap => "imap",
            Proto::Imaps => "imaps",
            Proto::Pop3 => "pop3",
            Proto::Lmtp => "lmtp",
            Proto::Smtp => "smtp",
        }
    }

    /// The Dovecot package binary that serves it (missing: the package is not installed).
    fn dovecot_binary(self) -> (&'static str, &'static str) {
        match self {
            Proto::Imap | Proto::Imaps => ("/usr/lib/dovecot/imap", "dovecot-imapd"),
            Proto::Pop3 => ("/usr/lib/dovecot/pop3", "dovecot-pop3d"),
            Proto::Lmtp => ("/usr/lib/dovecot/lmtp", "dovecot-lmtpd"),
            Proto::Smtp => (
                "/nonexistent/dovecot/smtp",
                "an SMTP server (Dovecot has none)",
            ),
        }
    }
}

/// `dovecot --version`'s first word, when Dovecot is installed.
pub fn dovecot_version() -> Option<String> {
    let out = Command::new(DOVECOT).arg("--version").output().ok()?;
    let v = String::from_utf8_lossy(&out.stdout);
    Some(v.split_whitespace().next()?.to_string())
}

/// The servers among `only` (keys; empty: all) that can run here for `protos`, and why each
/// of the others cannot.
pub fn available(only: &[String], protos: &[Proto]) -> (Vec<Kind>, Vec<String>) {
    let (mut kinds, mut skipped) = (vec![], vec![]);
    for kind in Kind::ALL {
        if !only.is_empty() && !only.iter().any(|o| o == kind.key()) {
            continue;
        }
        match why_not(kind, protos) {
            None => kinds.push(kind),
            Some(why) => skipped.push(format!("{}: skipped: {why}", kind.key())),
        }
    }
    (kinds, skipped)
}

fn why_not(kind: Kind, protos: &[Proto]) -> Option<String> {
    match kind {
        Kind::Single => None,
        Kind::Workers if !is_root() => Some("needs root (the master/login/worker split)".into()),
        Kind::Workers => None,
        Kind::Dovecot if !is_root() => Some("needs root (a private Dovecot runs as nobody)".into()),
        Kind::Dovecot if dovecot_version().is_none() => {
            Some("not installed (apt-get install dovecot-imapd dovecot-pop3d dovecot-lmtpd)".into())
        }
        Kind::Dovecot => protos
            .iter()
            .map(|p| p.dovecot_binary())
            .find(|(bin, _)| !Path::new(bin).exists())
            .map(|(_, pkg)| match pkg.strip_prefix("dovecot-") {
                Some(_) => format!("{pkg} not installed (apt-get install {pkg})"),
                None => format!("needs {pkg}"),
            }),
    }
}

/// What to start: where, for whom, listening for what.
pub struct Spec {
    /// The server's own directory: config, users, logs; mail in `dir/mail/<user>`.
    pub dir: PathBuf,
    /// passwd-file users: name and plaintext password.
    pub users: Vec<(String, String)>,
    /// What to listen for (each on its own free loopback port).
    pub protos: Vec<Proto>,
    /// How many simultaneous connections (of one user, from one IP) must be let in.
    pub connections: usize,
    /// Dovecot: the tuning below on top of the raised limits (`false`: limits only).
    pub tuned: bool,
    /// roost's `[mail] user` when started as root (the owner of every virtual user's mail).
    pub owner: String,
}

impl Spec {
    /// A spec for `users` with the defaults: tuned Dovecot, mail owned by `nobody`.
    pub fn new(dir: &Path, users: Vec<(String, String)>, protos: &[Proto]) -> Spec {
        Spec {
            dir: dir.to_path_buf(),
            users,
            protos: protos.to_vec(),
            connections: 100,
            tuned: true,
            owner: "nobody".into(),
        }
    }

    /// The maildir of `user` (the same layout for every server).
    pub fn maildir(&self, user: &str) -> PathBuf {
        self.dir.join("mail").join(user)
    }
}

/// A started server: stopped (its whole tree) when dropped.
pub struct Running {
    /// The process tree.
    pub server: Server,
    /// Which server.
    pub kind: Kind,
    /// Where it listens, per protocol.
    pub addrs: Vec<(Proto, SocketAddr)>,
    /// Its log file.
    pub log: PathBuf,
}

impl Running {
    /// The address for `proto` (it was in the spec).
    pub fn addr(&self, proto: Proto) -> SocketAddr {
        self.addrs
            .iter()
            .find(|(p, _)| *p == proto)
            .map(|(_, a)| *a)
            .expect("the spec listed this protocol")
    }

    /// The root of the server's process tree.
    pub fn pid(&self) -> u32 {
        self.server.pid()
    }

    /// How the server's root process ended, if it has: a server that dies mid-run makes every
    /// later number meaningless, so workloads check and report it.
    pub fn exited(&mut self) -> Option<String> {
        match self.server.child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            _ => None,
        }
    }

    /// Writes the count of warnings and errors it logged, and the first few, to `results`.
    pub fn record_problems(&self, results: &crate::results::Results, workload: &str) {
        let (count, first) = self.problems();
        let key = self.kind.key();
        results.num(workload, key, "log_problems", count as f64);
        for (i, line) in first.iter().take(3).enumerate() {
            results.put(workload, key, &format!("log.{i}"), line);
        }
    }

    /// Warnings and errors it logged so far: their count and the first few distinct ones.
    pub fn problems(&self) -> (usize, Vec<String>) {
        log_problems(&self.log, self.kind)
    }
}

/// Starts `kind` on `spec`, logging to `dir/<phase>.log`; waits until every port listens. A
/// server that does not come up is an error carrying the end of what it printed, so that a
/// run can report it and go on with the next server.
pub fn start(kind: Kind, spec: &Spec, phase: &str) -> Result<Running, String> {
    let log = spec.dir.join(format!("{phase}.log"));
    let addrs: Vec<(Proto, SocketAddr)> = spec
        .protos
        .iter()
        .map(|&p| (p, SocketAddr::from(([127, 0, 0, 1], free_port()))))
        .collect();
    let users: String = spec
        .users
        .iter()
        .map(|(u, p)| format!("{u}:{{PLAIN}}{p}::::::\n"))
        .collect();
    fs::write(spec.dir.join("users"), users).expect("write users");
    fs::create_dir_all(spec.dir.join("mail")).expect("mail dir");
    // roost always gets the certificate (else it generates one for STARTTLS and warns);
    // Dovecot only when a workload speaks TLS.
    let tls = (spec.protos.contains(&Proto::Imaps) || kind != Kind::Dovecot)
        .then(|| crate::tls::make_cert(&spec.dir.join("certs")));
    let mut server = match kind {
        Kind::Dovecot => start_dovecot(spec, &addrs, tls.as_ref(), phase, &log),
        _ => start_roost(kind, spec, &addrs, &log),
    };
    for (_, addr) in &addrs {
        if let Err(e) = wait_listening(*addr, &mut server.child, kind.key()) {
            let printed = match kind {
                Kind::Dovecot => spec.dir.join(format!("{phase}.stderr")),
                _ => log.clone(),
            };
            let text = fs::read_to_string(printed).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(3).collect();
            return Err(format!("{e}: {}", tail.join(" / ")));
        }
    }
    Ok(Running {
        server,
        kind,
        addrs,
        log,
    })
}

fn id_of(flag: &str, name: &str) -> u32 {
    let out = Command::new("id").args([flag, name]).output().expect("id");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("no user {name}"))
}

fn roost_config(kind: Kind, spec: &Spec, addrs: &[(Proto, SocketAddr)]) -> String {
    let protocols: Vec<String> = addrs
        .iter()
        .map(|(p, _)| format!("\"{}\"", p.key()))
        .collect();
    let mut conf = format!("protocols = [{}]\n[listen]\n", protocols.join(", "));
    for (p, a) in addrs {
        conf.push_str(&format!("{} = \"{a}\"\n", p.key()));
    }
    conf.push_str(&format!(
        "[mail]\nlocation = \"maildir:{}/mail/%u\"\n",
        spec.dir.display()
    ));
    if kind == Kind::Workers {
        conf.push_str(&format!("user = \"{}\"\n", spec.owner));
    }
    let limit = spec.connections + 100;
    conf.push_str(&format!(
        "[auth]\npassdb = [\"passwd-file:users\"]\n\
         [limits]\nmax_connections = {limit}\nmax_connections_per_ip = {limit}\n"
    ));
    {
        conf.push_str("[tls]\ncert = \"certs/server.crt\"\nkey = \"certs/server.key\"\n");
    }
    if spec.protos.contains(&Proto::Lmtp) || spec.protos.contains(&Proto::Smtp) {
        conf.push_str(&format!(
            "[smtp]\nlocal_domains = [\"example.com\"]\nqueue_dir = \"{}/queue\"\n",
            spec.dir.display()
        ));
    }
    conf
}

fn start_roost(kind: Kind, spec: &Spec, addrs: &[(Proto, SocketAddr)], log: &Path) -> Server {
    fs::write(spec.dir.join("roost.toml"), roost_config(kind, spec, addrs)).expect("config");
    let log = fs::File::create(log).expect("log file");
    let mut cmd = Command::new(roost_bin());
    cmd.args(["serve", "-c", "roost.toml"])
        .current_dir(&spec.dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::from(log));
    if kind == Kind::Single && is_root() {
        // One-process mode is roost started as an ordinary user: nobody, owning it all.
        chown(&spec.dir, "nobody:nogroup");
        use std::os::unix::process::CommandExt;
        cmd.uid(id_of("-u", "nobody")).gid(id_of("-g", "nobody"));
    } else if is_root() {
        chown(&spec.dir.join("mail"), &format!("{}:", spec.owner));
    }
    Server {
        child: cmd.spawn().expect("start roost"),
    }
}

/// The Dovecot settings beyond paths, ports, users and TLS files: raised limits (needed for
/// the connection counts), and when `tuned`, the tuning. Printed by the benchmarks and quoted
/// in BENCHMARKS.md.
pub fn dovecot_tuning(connections: usize, tuned: bool) -> String {
    let procs = connections + 100;
    let mut conf = format!(
        "# limits: this many connections of one user from one IP\n\
         default_process_limit = {procs}\ndefault_client_limit = {}\n\
         mail_max_userip_connections = {procs}\n",
        procs * 4
    );
    if tuned {
        conf.push_str(&format!(
            "# tuning\n\
             maildir_very_dirty_syncs = yes\n\
             service imap-login {{\n  service_count = 0\n  process_min_avail = 2\n  \
             client_limit = {procs}\n}}\n\
             service pop3-login {{\n  service_count = 0\n  process_min_avail = 2\n  \
             client_limit = {procs}\n}}\n\
             service imap {{\n  process_limit = {procs}\n  \
             unix_listener imap-master {{\n    user = $default_internal_user\n  }}\n  \
             extra_groups = $default_internal_group\n}}\n\
             imap_hibernate_timeout = {HIBERNATE_SECS}s\n\
             service imap-hibernate {{\n  client_limit = {procs}\n  \
             unix_listener imap-hibernate {{\n    mode = 0660\n    \
             group = $default_internal_group\n  }}\n}}\n"
        ));
    } else {
        conf.push_str(&format!("service imap {{\n  process_limit = {procs}\n}}\n"));
    }
    conf
}

fn dovecot_listeners(addrs: &[(Proto, SocketAddr)]) -> String {
    let port = |p: Proto| {
        addrs
            .iter()
            .find(|(q, _)| *q == p)
            .map_or(0, |(_, a)| a.port())
    };
    let has = |p: Proto| addrs.iter().any(|(q, _)| *q == p);
    let mut conf = String::new();
    if has(Proto::Imap) || has(Proto::Imaps) {
        conf.push_str(&format!(
            "service imap-login {{\n  inet_listener imap {{\n    port = {}\n  }}\n  \
             inet_listener imaps {{\n    port = {}\n  }}\n}}\n",
            port(Proto::Imap),
            port(Proto::Imaps)
        ));
    }
    if has(Proto::Pop3) {
        conf.push_str(&format!(
            "service pop3-login {{\n  inet_listener pop3 {{\n    port = {}\n  }}\n  \
             inet_listener pop3s {{\n    port = 0\n  }}\n}}\n",
            port(Proto::Pop3)
        ));
    }
    if has(Proto::Lmtp) {
        conf.push_str(&format!(
            "service lmtp {{\n  inet_listener lmtp {{\n    address = 127.0.0.1\n    \
             port = {}\n  }}\n}}\n",
            port(Proto::Lmtp)
        ));
    }
    conf
}

fn dovecot_config(
    spec: &Spec,
    addrs: &[(Proto, SocketAddr)],
    tls: Option<&(PathBuf, PathBuf)>,
    phase: &str,
    log: &Path,
) -> String {
    let d = spec.dir.display();
    let mut protocols: Vec<&str> = vec![];
    for (p, _) in addrs {
        let name = match p {
            Proto::Imap | Proto::Imaps => "imap",
            Proto::Pop3 => "pop3",
            Proto::Lmtp => "lmtp",
            Proto::Smtp => continue,
        };
        if !protocols.contains(&name) {
            protocols.push(name);
        }
    }
    let ssl = match tls {
        Some((crt, key)) => format!(
            "ssl = yes\nssl_cert = <{}\nssl_key = <{}\n",
            crt.display(),
            key.display()
        ),
        None => "ssl = no\n".into(),
    };
    format!(
        "base_dir = {d}/run-{phase}\nstate_dir = {d}/state\nlog_path = {}\n\
         protocols = {}\nlisten = 127.0.0.1\n{ssl}disable_plaintext_auth = no\n\
         mail_location = maildir:{d}/mail/%u\n\
         pop3_uidl_format = %08Xu%08Xv\n\
         auth_username_format = %Ln\npostmaster_address = postmaster@example.com\n\
         passdb {{\n  driver = passwd-file\n  args = {d}/users\n}}\n\
         userdb {{\n  driver = static\n  args = uid=nobody gid=nogroup home={d}/mail/%u\n}}\n\
         {}{}",
        log.display(),
        protocols.join(" "),
        dovecot_listeners(addrs),
        dovecot_tuning(spec.connections, spec.tuned)
    )
}

/// Starts Dovecot with a run directory of its own per phase: one whose previous instance is
/// still draining thousands of connections does not stand in the way.
fn start_dovecot(
    spec: &Spec,
    addrs: &[(Proto, SocketAddr)],
    tls: Option<&(PathBuf, PathBuf)>,
    phase: &str,
    log: &Path,
) -> Server {
    chown(&spec.dir.join("mail"), "nobody:nogroup");
    let conf = spec.dir.join(format!("dovecot-{phase}.conf"));
    let text = dovecot_config(spec, addrs, tls, phase, log);
    fs::write(&conf, text).expect("dovecot.conf");
    Server {
        child: Command::new(DOVECOT)
            .args(["-F", "-c"])
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                fs::File::create(spec.dir.join(format!("{phase}.stderr"))).expect("stderr file"),
            ))
            .spawn()
            .expect("start dovecot"),
    }
}

/// Warnings and errors a server logged: their count and the first few distinct ones (without
/// time stamps and per-connection details).
pub fn log_problems(path: &Path, kind: Kind) -> (usize, Vec<String>) {
    let text = fs::read_to_string(path).unwrap_or_default();
    let bad: Vec<&str> = text
        .lines()
        .filter(|l| match kind {
            Kind::Dovecot => ["Warning:", "Error:", "Fatal:", "Panic:"]
                .iter()
                .any(|w| l.contains(w)),
            _ => l.contains(" WARN ") || l.contains(" ERROR ") || l.contains("panicked"),
        })
        .collect();
    let mut first: Vec<String> = vec![];
    for l in &bad {
        let skip = if kind == Kind::Dovecot { 3 } else { 1 };
        let text = l.splitn(skip + 1, ' ').last().unwrap_or(l).trim_start();
        // Dovecot's <pid><session> vary line to line.
        let mut clean = String::new();
        let mut depth = 0;
        for ch in text.chars() {
            match ch {
                '<' if kind == Kind::Dovecot => depth += 1,
                '>' if depth > 0 => depth -= 1,
                _ if depth == 0 => clean.push(ch),
                _ => {}
            }
        }
        let clean: String = clean.chars().take(300).collect();
        if first.len() < 8 && !first.contains(&clean) {
            first.push(clean);
        }
    }
    (bad.len(), first)
}
