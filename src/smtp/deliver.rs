//! Local delivery: a spooled message into users' INBOXes, through the storage layer, always
//! as the mail owner.
//!
//! ```text
//!   one process (not root)   Deliverer::InProcess ── Store::open + append_to_inbox (fsync)
//!   login process (nobody)   Deliverer::Master ── DELIVER + spool fd ──► master (root)
//!   master, or root CLI      Deliverer::Spawn ── `roost deliver-worker` per mail owner,
//!                                                  setuid/setgid, stdin = the spool file
//! ```
//! The master resolves user names itself and never trusts a uid from the login process; the
//! worst a compromised login process can do is what any SMTP client may: deliver to a user.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Cursor, Read, Write};
use std::os::fd::{AsFd, OwnedFd, RawFd};
use std::os::unix::fs::FileExt;
use std::process::Stdio;
use std::sync::Arc;

use base64::{engine::general_purpose::STANDARD, Engine};
use clap::Args;
use roost_protocol::smtp::address::ReversePath;
use roost_storage::{MailLocation, Store, UserVars};
use tokio::io::AsyncReadExt;

use super::resolve::Resolver;
use crate::auth::{MailUser, Source};
use crate::counters;
use crate::privilege::control::MasterClient;
use crate::privilege::{mail_owner, worker};

/// What became of one user's copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// In the INBOX, durably.
    Delivered,
    /// Not now; retry later.
    Temporary(String),
    /// Never (no such user, no mail owner).
    Permanent(String),
}

impl Outcome {
    /// One token for a control line: `ok`, `temp:BASE64`, `perm:BASE64`.
    pub fn encode(&self) -> String {
        match self {
            Self::Delivered => "ok".into(),
            Self::Temporary(why) => format!("temp:{}", STANDARD.encode(why)),
            Self::Permanent(why) => format!("perm:{}", STANDARD.encode(why)),
        }
    }

    /// Parses a token written by [`Outcome::encode`].
    pub fn decode(token: &str) -> Self {
        let text = |b64: &str| {
            STANDARD
                .decode(b64)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .unwrap_or_default()
        };
        match token.split_once(':') {
            None if token == "ok" => Self::Delivered,
            Some(("perm", why)) => Self::Permanent(text(why)),
            Some(("temp", why)) => Self::Temporary(text(why)),
            _ => Self::Temporary(format!("bad delivery answer {token:?}")),
        }
    }
}

/// Reads a file from the start with positional reads, so many readers can share one open
/// file (and a descriptor passed between processes) without sharing an offset.
pub struct FileReader<'a> {
    file: &'a File,
    pos: u64,
}

impl<'a> FileReader<'a> {
    /// A reader at offset 0.
    pub fn new(file: &'a File) -> Self {
        Self { file, pos: 0 }
    }
}

impl Read for FileReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// The `Return-Path:` line RFC 5321 4.4 has the final delivery add (a checked path cannot
/// carry a line break).
fn return_path_line(return_path: &ReversePath) -> Vec<u8> {
    format!("Return-Path: <{return_path}>\r\n").into_bytes()
}

/// Blocking: appends the message to one user's INBOX (fsync before return) as this process.
pub fn deliver_one(
    location: &MailLocation,
    user: &MailUser,
    return_path: &ReversePath,
    message: &File,
) -> Outcome {
    let mut reader = FileReader::new(message);
    deliver_from(location, user, Some(return_path), &mut reader)
}

/// Blocking: appends what `message` yields to one user's INBOX, after a `Return-Path:` line
/// when the envelope sender is known.
pub fn deliver_from(
    location: &MailLocation,
    user: &MailUser,
    return_path: Option<&ReversePath>,
    message: &mut dyn Read,
) -> Outcome {
    let vars = UserVars {
        user: user.name.clone(),
        home: user.home.clone(),
    };
    let head = return_path.map(return_path_line).unwrap_or_default();
    let mut reader = Read::chain(Cursor::new(head), message);
    match Store::open(location, &vars).and_then(|mut store| store.append_to_inbox(&mut reader)) {
        Ok(_) => {
            counters::global().delivered();
            tracing::info!(user = %user.name, "delivered to INBOX");
            Outcome::Delivered
        }
        Err(e) => {
            tracing::error!(user = %user.name, "delivery failed: {e}");
            Outcome::Temporary(e.to_string())
        }
    }
}

/// Starts delivery workers as the mail owners (the master, or `roost queue` run as root).
pub struct Spawner {
    /// The mail location template.
    pub location: MailLocation,
    /// `[mail] user`.
    pub mail_user: Option<String>,
    /// `[mail] privileged_group`'s gid.
    pub privileged_gid: Option<u32>,
    /// Looks users up (the master's own view, never the login process's).
    pub resolver: Arc<Resolver>,
    /// The events pipe workers report deliveries on.
    pub events: Option<RawFd>,
}

impl Spawner {
    /// Delivers to each named user as their mail owner; one outcome per name, in order.
    pub async fn deliver(
        &self,
        message: &File,
        return_path: &ReversePath,
        names: &[String],
    ) -> Vec<Outcome> {
        let mut outcomes = vec![Outcome::Temporary("not attempted".into()); names.len()];
        let mut groups: BTreeMap<(u32, u32), Vec<(usize, MailUser)>> = BTreeMap::new();
        for (i, name) in names.iter().enumerate() {
            let resolver = Arc::clone(&self.resolver);
            let owned = name.clone();
            let found = tokio::task::spawn_blocking(move || resolver.user(&owned)).await;
            match found {
                Ok(Ok(Some(user))) => match mail_owner(&user, self.mail_user.as_deref()) {
                    Ok(owner) => groups.entry(owner).or_default().push((i, user)),
                    Err(e) => outcomes[i] = Outcome::Permanent(e.to_string()),
                },
                Ok(Ok(None)) => outcomes[i] = Outcome::Permanent("no such user".into()),
                Ok(Err(e)) => outcomes[i] = Outcome::Temporary(e),
                Err(e) => outcomes[i] = Outcome::Temporary(e.to_string()),
            }
        }
        for (owner, users) in groups {
            let results = match self.run_worker(owner, message, return_path, &users).await {
                Ok(results) => results,
                Err(e) => {
                    tracing::error!("delivery worker: {e}");
                    vec![Outcome::Temporary(format!("delivery worker: {e}")); users.len()]
                }
            };
            for ((i, _), outcome) in users.iter().zip(results) {
                outcomes[*i] = outcome;
            }
        }
        outcomes
    }

    async fn run_worker(
        &self,
        owner: (u32, u32),
        message: &File,
        return_path: &ReversePath,
        users: &[(usize, MailUser)],
    ) -> std::io::Result<Vec<Outcome>> {
        let stdin: OwnedFd = message.as_fd().try_clone_to_owned()?;
        let mut command = tokio::process::Command::new("/proc/self/exe");
        command
            .args(["deliver-worker", "--location", &self.location.to_string()])
            .args(["--return-path", &STANDARD.encode(return_path.to_string())])
            .args(
                users
                    .iter()
                    .flat_map(|(_, u)| ["--user".to_string(), encode_user(u)]),
            )
            .args(
                self.events
                    .map(|_| ["--events-fd".to_string(), worker::EVENTS_FD.to_string()])
                    .into_iter()
                    .flatten(),
            )
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .stdin(Stdio::from(stdin))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        if let Ok(filter) = std::env::var("RUST_LOG") {
            command.env("RUST_LOG", filter);
        }
        worker::run_as_owner(&mut command, owner, self.events, self.privileged_gid);
        let mut child = command.spawn()?;
        let mut out = String::new();
        if let Some(stdout) = child.stdout.take() {
            stdout.take(64 * 1024).read_to_string(&mut out).await?;
        }
        child.wait().await?;
        let mut results: Vec<Outcome> = out.split_whitespace().map(Outcome::decode).collect();
        results.resize(
            users.len(),
            Outcome::Temporary("the delivery worker ended early".into()),
        );
        Ok(results)
    }
}

fn encode_user(user: &MailUser) -> String {
    let home = user
        .home
        .as_ref()
        .map(|h| STANDARD.encode(h.to_string_lossy().as_bytes()))
        .unwrap_or_else(|| "-".into());
    format!(
        "{}:{}:{home}",
        STANDARD.encode(&user.name),
        user.source.name()
    )
}

fn decode_user(arg: &str) -> Option<MailUser> {
    let mut parts = arg.split(':');
    let name = String::from_utf8(STANDARD.decode(parts.next()?).ok()?).ok()?;
    let source = match parts.next()? {
        "pam" => Source::Pam,
        _ => Source::PasswdFile,
    };
    let home = match parts.next()? {
        "-" => None,
        b64 => Some(String::from_utf8(STANDARD.decode(b64).ok()?).ok()?.into()),
    };
    Some(MailUser {
        name,
        source,
        uid: None,
        gid: None,
        home,
    })
}

/// Where local deliveries are carried out for this process.
#[derive(Clone)]
pub enum Deliverer {
    /// Here: roost runs as the (single) mail owner.
    InProcess {
        /// Looks users up.
        resolver: Arc<Resolver>,
        /// The mail location template.
        location: MailLocation,
    },
    /// Through the root master (this is the login process).
    Master(Arc<MasterClient>),
    /// By starting delivery workers directly (this process is root).
    Spawn(Arc<Spawner>),
}

impl Deliverer {
    /// Delivers the message to each named user; one outcome per name, in order.
    pub async fn deliver(
        &self,
        message: &File,
        return_path: &ReversePath,
        names: &[String],
    ) -> Vec<Outcome> {
        match self {
            Self::InProcess { resolver, location } => {
                let file = match message.try_clone() {
                    Ok(f) => f,
                    Err(e) => return vec![Outcome::Temporary(e.to_string()); names.len()],
                };
                let (resolver, location) = (Arc::clone(resolver), location.clone());
                let (rp, names) = (return_path.clone(), names.to_vec());
                let count = names.len();
                tokio::task::spawn_blocking(move || {
                    names
                        .iter()
                        .map(|name| match resolver.user(name) {
                            Ok(Some(user)) => deliver_one(&location, &user, &rp, &file),
                            Ok(None) => Outcome::Permanent("no such user".into()),
                            Err(e) => Outcome::Temporary(e),
                        })
                        .collect()
                })
                .await
                .unwrap_or_else(|e| vec![Outcome::Temporary(e.to_string()); count])
            }
            Self::Master(master) => master.deliver(message, return_path, names).await,
            Self::Spawn(spawner) => spawner.deliver(message, return_path, names).await,
        }
    }
}

/// The arguments of `roost deliver-worker` (started by the master as the mail owner).
#[derive(Debug, Args)]
pub struct DeliverWorkerArgs {
    /// The mail location template.
    #[arg(long)]
    location: String,
    /// The envelope sender, base64 (checked again here).
    #[arg(long)]
    return_path: String,
    /// Each user: base64 name, source, base64 home (or -).
    #[arg(long = "user")]
    users: Vec<String>,
    /// Descriptor on which to announce deliveries to the master.
    #[arg(long)]
    events_fd: Option<RawFd>,
}

/// `roost deliver-worker`: appends the message on stdin to each user's INBOX, printing one
/// outcome token per user.
pub fn worker_main(args: DeliverWorkerArgs) -> anyhow::Result<()> {
    crate::privilege::keep_privileged_group_saved_only()?;
    if let Some(fd) = args.events_fd {
        worker::announce_events_on(fd);
    }
    let location = MailLocation::parse(&args.location)?;
    let return_path: ReversePath = String::from_utf8(STANDARD.decode(&args.return_path)?)?
        .parse()
        .map_err(|e| anyhow::anyhow!("--return-path: {e}"))?;
    let message = File::from(std::io::stdin().as_fd().try_clone_to_owned()?);
    let mut out = std::io::stdout().lock();
    for arg in &args.users {
        let outcome = match decode_user(arg) {
            Some(user) => deliver_one(&location, &user, &return_path, &message),
            None => Outcome::Permanent("malformed user argument".into()),
        };
        writeln!(out, "{}", outcome.encode())?;
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_and_users_round_trip() {
        for o in [
            Outcome::Delivered,
            Outcome::Temporary("disk full: a b".into()),
            Outcome::Permanent("no such user".into()),
        ] {
            assert_eq!(Outcome::decode(&o.encode()), o);
        }
        let user = MailUser {
            name: "a:b c".into(),
            source: Source::Pam,
            uid: None,
            gid: None,
            home: Some("/home/a b".into()),
        };
        assert_eq!(decode_user(&encode_user(&user)), Some(user));
    }
}
