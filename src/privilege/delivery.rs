//! Delivery as the mail owner when this process is root (the master, or `roost queue flush`
//! run as root): users are grouped by mail owner and each group gets one `roost deliver-worker`,
//! started with that owner's uid and gid and the spool file as its standard input.
//!
//! ```text
//!   master / root CLI ── Spawner::deliver ── resolve names ── group by (uid, gid)
//!        └── per owner: `roost deliver-worker --user …` (setuid) ── deliver_one ── "ok|temp:…|perm:…"
//! ```
//! The master resolves user names itself and never trusts a uid from the login process; the
//! worst a compromised login process can do is what any SMTP client may: deliver to a user.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd, RawFd};
use std::process::Stdio;
use std::sync::Arc;

use base64::{engine::general_purpose::STANDARD, Engine};
use clap::Args;
use roost_protocol::smtp::address::ReversePath;
use roost_storage::quota::QuotaLimits;
use roost_storage::MailLocation;
use tokio::io::AsyncReadExt;

use super::control::{decode_outcome, encode_outcome};
use super::mail_owner;
use crate::auth::{MailUser, Source};
use crate::session::privileged::Outcome;
use crate::smtp::deliver::deliver_one;
use crate::smtp::resolve::Resolver;

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
                    .map(|_| {
                        [
                            "--events-fd".to_string(),
                            super::worker::EVENTS_FD.to_string(),
                        ]
                    })
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
        super::worker::run_as_owner(&mut command, owner, self.events, self.privileged_gid);
        let mut child = command.spawn()?;
        let mut out = String::new();
        if let Some(stdout) = child.stdout.take() {
            stdout.take(64 * 1024).read_to_string(&mut out).await?;
        }
        child.wait().await?;
        let mut results: Vec<Outcome> = out
            .split_whitespace()
            .map(|token| {
                decode_outcome(token)
                    .unwrap_or_else(|| Outcome::Temporary(format!("bad delivery answer {token:?}")))
            })
            .collect();
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
    let limit = |n: Option<u64>| n.map_or_else(|| "-".to_string(), |n| n.to_string());
    format!(
        "{}:{}:{home}:{}:{}",
        STANDARD.encode(&user.name),
        user.source.name(),
        limit(user.quota.storage),
        limit(user.quota.messages),
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
    let mut limit = || match parts.next()? {
        "-" => Some(None),
        n => n.parse().ok().map(Some),
    };
    let quota = QuotaLimits {
        storage: limit()?,
        messages: limit()?,
    };
    Some(MailUser {
        name,
        source,
        uid: None,
        gid: None,
        home,
        quota,
    })
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
    super::keep_privileged_group_saved_only()?;
    if let Some(fd) = args.events_fd {
        super::worker::announce_events_on(fd);
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
        writeln!(out, "{}", encode_outcome(&outcome))?;
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
            assert_eq!(decode_outcome(&encode_outcome(&o)), Some(o));
        }
        let user = MailUser {
            name: "a:b c".into(),
            source: Source::Pam,
            uid: None,
            gid: None,
            home: Some("/home/a b".into()),
            quota: QuotaLimits {
                storage: Some(1 << 30),
                messages: None,
            },
        };
        assert_eq!(decode_user(&encode_user(&user)), Some(user));
    }
}
