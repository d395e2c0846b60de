//! The checks that need no network peer: listeners' ports, directories, PAM, inotify, queue.

use std::io::{BufRead, BufReader, ErrorKind, Read};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{Finding, Level};
use crate::config::{Config, Passdb};
use crate::privilege::reach::check_start_paths;
use crate::smtp::queue::Queue;
use crate::status::cli::reachable;
use crate::system::{blocking_directory, effective_ids, running_as_root, SystemUser};

/// Each listener's port: free (roost will take it), held by a running roost, or taken by
/// another program (a failure: roost could not start).
pub fn listeners(config: &Config) -> Vec<Finding> {
    config
        .listeners
        .iter()
        .map(|l| {
            let subject = format!("listener {} {}", l.protocol.name(), l.addr);
            match TcpListener::bind(l.addr) {
                Ok(_) => Finding::new(Level::Ok, subject, "the port is free"),
                Err(e) if e.kind() == ErrorKind::AddrInUse => match greeting(l.addr, l.protocol.implicit_tls()) {
                    Some(line) if line.contains("roost") => {
                        Finding::new(Level::Ok, subject, "held by a running roost")
                    }
                    other => Finding::new(
                        Level::Fail,
                        subject,
                        format!(
                            "the port is taken by another program{}; stop it, or move [listen] {}",
                            other.map(|g| format!(" (it says {:?})", g.trim_end())).unwrap_or_default(),
                            l.protocol.name()
                        ),
                    ),
                },
                Err(e) if e.kind() == ErrorKind::PermissionDenied => Finding::new(
                    Level::Warn,
                    subject,
                    "only root may bind this port: start roost as root, or move [listen] to a port above 1023",
                ),
                Err(e) => Finding::new(Level::Fail, subject, format!("cannot bind: {e}")),
            }
        })
        .collect()
}

/// The first line a server at `addr` sends (after a TLS handshake on an implicit-TLS port),
/// if it sends one within a few seconds.
fn greeting(addr: std::net::SocketAddr, tls: bool) -> Option<String> {
    let stream = TcpStream::connect_timeout(&reachable(addr), Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    let mut line = String::new();
    if tls {
        let client = super::identify::tls_client()?;
        let conn = rustls::ClientConnection::new(client, "localhost".try_into().ok()?).ok()?;
        let stream = rustls::StreamOwned::new(conn, stream);
        BufReader::new(stream.take(512)).read_line(&mut line).ok()?;
    } else {
        BufReader::new(stream).take(512).read_line(&mut line).ok()?;
    }
    Some(line)
}

/// The directories the login process and the mail owner must pass through.
pub fn paths(config: &Config) -> Vec<Finding> {
    let mut findings = Vec::new();
    if running_as_root() {
        let Some(login) = SystemUser::by_name(&config.login_user) else {
            return vec![Finding::new(
                Level::Fail,
                "login user",
                format!(
                    "the system has no user {:?}: create it (useradd --system), or set login_user",
                    config.login_user
                ),
            )];
        };
        match check_start_paths(config, &login) {
            Ok(()) => findings.push(Finding::new(
                Level::Ok,
                "directories",
                format!(
                    "the login process ({}) and the mail owner reach what they need",
                    login.name
                ),
            )),
            Err(denied) => {
                findings.push(Finding::new(Level::Fail, "directories", denied.to_string()))
            }
        }
    } else if config.serves_smtp() {
        let queue = &config.smtp.queue_dir;
        let (uid, gid) = effective_ids();
        findings.push(match blocking_directory(queue, uid, gid) {
            None => Finding::new(Level::Ok, "directories", format!("{} is reachable", queue.display())),
            Some((dir, mode)) => Finding::new(
                Level::Fail,
                "directories",
                format!(
                    "{}: this user cannot pass through {} (mode {mode:04o}); set [smtp] queue_dir to a directory you can write",
                    queue.display(),
                    dir.display()
                ),
            ),
        });
    }
    findings
}

/// The PAM service file of each PAM passdb.
pub fn pam(config: &Config) -> Vec<Finding> {
    config
        .auth
        .passdbs
        .iter()
        .filter_map(|p| match p {
            Passdb::Pam(service) => Some(service),
            Passdb::PasswdFile(_) => None,
        })
        .map(|service| {
            let file = Path::new("/etc/pam.d").join(service);
            match file.is_file() {
                true => Finding::new(Level::Ok, "pam", format!("{} exists", file.display())),
                false => Finding::new(
                    Level::Fail,
                    "pam",
                    format!(
                        "{} is missing, so PAM falls back to its `other` service (usually deny): create it, e.g. with `@include common-auth` and `@include common-account`",
                        file.display()
                    ),
                ),
            }
        })
        .collect()
}

/// Whether the kernel lets IDLE watch as many folders as the connection limit allows.
pub fn inotify(config: &Config, proc_sys: &Path) -> Vec<Finding> {
    let read = |name: &str| -> Option<u64> {
        std::fs::read_to_string(proc_sys.join("fs/inotify").join(name))
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    let mut findings = Vec::new();
    // A maildir folder takes two watches (new/, cur/); each IDLE session may watch its own.
    let wanted_watches = u64::from(config.limits.max_connections) * 2;
    match read("max_user_watches") {
        Some(have) if have < wanted_watches => findings.push(Finding::new(
            Level::Warn,
            "inotify",
            format!(
                "fs.inotify.max_user_watches is {have}, below the {wanted_watches} that {} IDLE sessions may need: sysctl -w fs.inotify.max_user_watches={wanted_watches} (and in /etc/sysctl.d/)",
                config.limits.max_connections
            ),
        )),
        Some(have) => findings.push(Finding::new(Level::Ok, "inotify", format!("max_user_watches {have}"))),
        None => findings.push(Finding::new(Level::Warn, "inotify", "cannot read fs.inotify.max_user_watches: IDLE may fall back to polling")),
    }
    // One instance per worker process; a few dozen owners is a lot for a small host.
    match read("max_user_instances") {
        Some(have) if have < 32 => findings.push(Finding::new(
            Level::Warn,
            "inotify",
            format!("fs.inotify.max_user_instances is {have}: raise it to at least 128 (sysctl -w fs.inotify.max_user_instances=128)"),
        )),
        Some(have) => findings.push(Finding::new(Level::Ok, "inotify", format!("max_user_instances {have}"))),
        None => {}
    }
    findings
}

/// The outgoing queue: how many messages wait, and for how long the oldest has.
pub fn queue(config: &Config) -> Vec<Finding> {
    if !config.serves_smtp() || !config.smtp.queue_dir.exists() {
        return Vec::new();
    }
    let queue = match Queue::open(&config.smtp.queue_dir) {
        Ok(queue) => queue,
        Err(e) => {
            return vec![Finding::new(
                Level::Fail,
                "queue",
                format!("cannot open it: {e}"),
            )]
        }
    };
    let ids = queue.ids();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let oldest = ids
        .iter()
        .filter_map(|id| queue.read(id).ok())
        .map(|env| env.created)
        .min();
    let Some(oldest) = oldest else {
        return vec![Finding::new(Level::Ok, "queue", "empty")];
    };
    let hours = now.saturating_sub(oldest) / 3600;
    let text = format!("{} message(s), the oldest waiting {hours} h", ids.len());
    match hours >= 24 {
        true => vec![Finding::new(
            Level::Warn,
            "queue",
            format!("{text}: see `roost queue -c FILE` for why, and the relayhost's logs"),
        )],
        false => vec![Finding::new(Level::Ok, "queue", text)],
    }
}
