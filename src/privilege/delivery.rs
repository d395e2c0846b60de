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
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;

use base64::{engine::general_purpose::STANDARD, Engine};
use clap::Args;
use roost_protocol::smtp::address::ReversePath;
use roost_storage::quota::QuotaLimits;
use roost_storage::MailLocation;
use tokio::io::AsyncReadExt;

use super::control::{decode_deliveries, encode_deliveries, MAX_REPLY};
use super::mail_owner;
use crate::auth::{MailUser, Source};
use crate::filter::run::SiteScripts;
use crate::session::privileged::{Deliveries, LocalRecipient, Outcome};
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
    /// The admin's Sieve scripts, run by the workers for every user.
    pub site: SiteScripts,
}

/// One delivery waiting for its owner's worker: its place in the answer, the user, and the
/// address it was sent to.
type Pending = (usize, MailUser, String);

impl Spawner {
    /// Delivers to each recipient as their mail owner; one outcome per recipient, in order,
    /// and the mail the deliveries ask to send.
    pub async fn deliver(
        &self,
        message: &File,
        return_path: &ReversePath,
        names: &[LocalRecipient],
    ) -> Deliveries {
        let mut out = Deliveries::all(Outcome::Temporary("not attempted".into()), names.len());
        let outcomes = &mut out.outcomes;
        let mut groups: BTreeMap<(u32, u32), Vec<Pending>> = BTreeMap::new();
        for (i, name) in names.iter().enumerate() {
            let resolver = Arc::clone(&self.resolver);
            let owned = name.user.clone();
            let found = tokio::task::spawn_blocking(move || resolver.user(&owned)).await;
            match found {
                Ok(Ok(Some(user))) => match mail_owner(&user, self.mail_user.as_deref()) {
                    Ok(owner) => {
                        let to = name.address.clone();
                        groups.entry(owner).or_default().push((i, user, to))
                    }
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
                    let why = format!("delivery worker: {e}");
                    Deliveries::all(Outcome::Temporary(why), users.len())
                }
            };
            for ((i, _, _), outcome) in users.iter().zip(results.outcomes) {
                out.outcomes[*i] = outcome;
            }
            out.followups.extend(results.followups);
        }
        out
    }

    async fn run_worker(
        &self,
        owner: (u32, u32),
        message: &File,
        return_path: &ReversePath,
        users: &[Pending],
    ) -> std::io::Result<Deliveries> {
        let stdin: OwnedFd = message.as_fd().try_clone_to_owned()?;
        let mut command = tokio::process::Command::new("/proc/self/exe");
        command
            .args(["deliver-worker", "--location", &self.location.to_string()])
            .args(["--return-path", &STANDARD.encode(return_path.to_string())])
            .args(
                users
                    .iter()
                    .flat_map(|(_, u, to)| ["--user".to_string(), encode_user(u, to)]),
            )
            .args(sieve_args(&self.site))
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
            stdout.take(MAX_REPLY).read_to_string(&mut out).await?;
        }
        child.wait().await?;
        let tokens: Vec<&str> = out.split_whitespace().collect();
        let mut results = decode_deliveries(&tokens).unwrap_or_else(|| {
            tracing::error!("bad delivery answer {out:?}");
            Deliveries::default()
        });
        results.outcomes.resize(
            users.len(),
            Outcome::Temporary("the delivery worker ended early".into()),
        );
        Ok(results)
    }
}

/// The worker's arguments naming the admin's Sieve scripts.
fn sieve_args(site: &SiteScripts) -> Vec<String> {
    let mut args = Vec::new();
    for (flag, paths) in [
        ("--sieve-before", &site.before),
        ("--sieve-after", &site.after),
    ] {
        for path in paths {
            args.extend([flag.to_string(), path.to_string_lossy().into_owned()]);
        }
    }
    if site.spam_to_junk {
        args.push("--sieve-spam-to-junk".into());
    }
    if let Some(dir) = &site.global_dir {
        args.extend(["--sieve-global".into(), dir.to_string_lossy().into_owned()]);
    }
    args
}

fn encode_user(user: &MailUser, to: &str) -> String {
    let home = user
        .home
        .as_ref()
        .map(|h| STANDARD.encode(h.to_string_lossy().as_bytes()))
        .unwrap_or_else(|| "-".into());
    let limit = |n: Option<u64>| n.map_or_else(|| "-".to_string(), |n| n.to_string());
    format!(
        "{}:{}:{home}:{}:{}:{}",
        STANDARD.encode(&user.name),
        user.source.name(),
        limit(user.quota.storage),
        limit(user.quota.messages),
        STANDARD.encode(to),
    )
}

fn decode_user(arg: &str) -> Option<(MailUser, String)> {
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
    let to = String::from_utf8(STANDARD.decode(parts.next()?).ok()?).ok()?;
    let user = MailUser {
        name,
        source,
        uid: None,
        gid: None,
        home,
        quota,
    };
    Some((user, to))
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
    /// The admin's Sieve scripts run before each user's.
    #[arg(long = "sieve-before")]
    sieve_before: Vec<PathBuf>,
    /// The admin's Sieve scripts run after each user's.
    #[arg(long = "sieve-after")]
    sieve_after: Vec<PathBuf>,
    /// Where `include :global` finds scripts.
    #[arg(long = "sieve-global")]
    sieve_global: Option<PathBuf>,
    /// Run the built-in "spam goes to Junk" script first.
    #[arg(long = "sieve-spam-to-junk")]
    sieve_spam_to_junk: bool,
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
    let site = SiteScripts {
        before: args.sieve_before,
        after: args.sieve_after,
        global_dir: args.sieve_global,
        spam_to_junk: args.sieve_spam_to_junk,
    }
    .load();
    let mut done = Deliveries::default();
    for arg in &args.users {
        let outcome = match decode_user(arg) {
            Some((user, to)) => {
                let delivered =
                    deliver_one(&location, &user, &to, Some(&return_path), &message, &site);
                done.followups.extend(delivered.followups);
                delivered.outcome
            }
            None => Outcome::Permanent("malformed user argument".into()),
        };
        done.outcomes.push(outcome);
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", encode_deliveries(&done))?;
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
            let token = super::super::control::encode_outcome(&o);
            assert_eq!(super::super::control::decode_outcome(&token), Some(o));
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
        let to = "a+b@c".to_string();
        assert_eq!(decode_user(&encode_user(&user, &to)), Some((user, to)));
    }
}
