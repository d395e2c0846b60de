//! Running the scripts for one delivery: the admin's `before` scripts, the user's active
//! script, the admin's `after` scripts (Dovecot's `sieve_before`/`sieve_after`), turned into a
//! [`Plan`]: the copies to store and the mail to send. A script that cannot be read or does
//! not compile is logged and skipped; a run that fails keeps the message in INBOX. Nothing a
//! script does can lose a message.

use std::path::{Path, PathBuf};

use roost_protocol::sieve::{
    self, Action, CompileError, Envelope, Includes, Input, Location, Script,
};

use roost_storage::sieve_scripts::{check_name, ScriptStore};

use super::store::Placement;
use super::Followup;

/// The largest script read from disk (ManageSieve's limit applies at upload; this guards
/// against whatever else put a file there).
const MAX_SCRIPT_BYTES: u64 = 1024 * 1024;

/// The admin's scripts, run for every user (`[sieve] before` / `after`), and where `include
/// :global` finds scripts.
#[derive(Debug, Clone, Default)]
pub struct SiteScripts {
    /// Run before the user's script, in order.
    pub before: Vec<PathBuf>,
    /// Run after the user's script, in order.
    pub after: Vec<PathBuf>,
    /// The directory of `:global` includes (the first `before` script's directory if unset).
    pub global_dir: Option<PathBuf>,
    /// Run [`SPAM_TO_JUNK`] first: a scanner is configured and the admin set no `before`
    /// scripts of their own.
    pub spam_to_junk: bool,
}

/// The site `before` script used when a spam scanner is configured and the admin wrote none:
/// what the scanner flags goes to Junk, and the user's own script is not asked.
pub const SPAM_TO_JUNK: &str = "require \"fileinto\";\r\n\
    if header :is \"X-Spam-Flag\" \"YES\" { fileinto \"Junk\"; stop; }\r\n";

/// The user's side: their active script and where their other scripts are.
pub struct UserScripts {
    /// The active script's name and text, if one is active.
    pub active: Option<(String, Vec<u8>)>,
    /// The user's script directory (`include :personal`, the vacation memory, the error log).
    pub dir: PathBuf,
}

/// What delivery must do with the message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Copies to store (INBOX and folders, with flags); empty when discarded or rejected.
    pub placements: Vec<Placement>,
    /// Mail to send once the copies are stored.
    pub followups: Vec<Followup>,
    /// `reject`/`ereject`: refuse the message with this reason.
    pub reject: Option<String>,
}

impl Plan {
    /// The plan without Sieve: one copy in INBOX.
    pub fn keep() -> Self {
        Self {
            placements: vec![Placement {
                folder: None,
                flags: Vec::new(),
                create: false,
            }],
            ..Self::default()
        }
    }
}

/// One delivery's facts, as the scripts see them.
pub struct Delivery<'a> {
    /// The user's login name (for logs).
    pub user: &'a str,
    /// The envelope sender; empty for `<>`.
    pub from: &'a str,
    /// The recipient address as the client gave it (`user+tag@domain`).
    pub to: &'a str,
    /// The message (a mapped spool file).
    pub message: &'a [u8],
    /// Seconds since the epoch.
    pub now: i64,
}

fn read_script(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_SCRIPT_BYTES)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

fn compile_site(path: &Path) -> Option<Script> {
    let compiled = read_script(path)
        .map_err(|e| e.to_string())
        .and_then(|text| sieve::compile(&text).map_err(|e| e.to_string()));
    match compiled {
        Ok(script) => Some(script),
        Err(e) => {
            tracing::error!(script = %path.display(), "sieve: admin script skipped: {e}");
            None
        }
    }
}

/// `include` resolution: personal scripts from the user's directory, global ones from the
/// site's. Names that could climb out of the directory are not found.
struct Resolver<'a> {
    personal: &'a Path,
    global: Option<&'a Path>,
}

impl Includes for Resolver<'_> {
    fn load(&mut self, location: Location, name: &str) -> Option<Result<Script, CompileError>> {
        // The user's own through their script store (a file of the directory, never through
        // a symlink); the admin's by name from the global directory. Either way the store's
        // name rules keep the name from climbing out of its directory.
        check_name(name).ok()?;
        let text = match location {
            Location::Personal => ScriptStore::new(self.personal).get(name).ok()?,
            Location::Global => read_script(&self.global?.join(format!("{name}.sieve"))).ok()?,
        };
        Some(sieve::compile(&text))
    }
}

/// The admin's scripts read and compiled, once for a batch of deliveries (every recipient of
/// a message), so an edit takes effect with the next message.
pub struct SiteFilters {
    before: Vec<Script>,
    after: Vec<Script>,
    /// Where `include :global` looks.
    global_dir: Option<PathBuf>,
}

impl SiteScripts {
    /// Reads and compiles the scripts; one that cannot be read or compiled is logged and
    /// skipped.
    pub fn load(&self) -> SiteFilters {
        let mut before: Vec<Script> = Vec::new();
        if self.spam_to_junk {
            match sieve::compile(SPAM_TO_JUNK.as_bytes()) {
                Ok(script) => before.push(script),
                Err(e) => tracing::error!("sieve: the built-in spam script does not compile: {e}"),
            }
        }
        before.extend(self.before.iter().filter_map(|p| compile_site(p)));
        let global_dir = self.global_dir.clone().or_else(|| {
            self.before
                .first()
                .and_then(|p| p.parent())
                .map(Path::to_path_buf)
        });
        SiteFilters {
            before,
            after: self.after.iter().filter_map(|p| compile_site(p)).collect(),
            global_dir,
        }
    }
}

/// Runs the scripts and returns the plan. `Err` carries why the user's script was not used
/// (it is logged and recorded for ManageSieve by the caller); the plan is then "keep".
pub fn plan(
    site: &SiteFilters,
    user: &UserScripts,
    delivery: &Delivery<'_>,
) -> (Plan, Option<String>) {
    let (before, after) = (&site.before, &site.after);
    let mut problem = None;
    let personal = user
        .active
        .as_ref()
        .and_then(|(name, text)| match sieve::compile(text) {
            Ok(script) => Some(script),
            Err(e) => {
                problem = Some(format!("script {name:?} does not compile: {e}"));
                None
            }
        });
    if before.is_empty() && after.is_empty() && personal.is_none() {
        return (Plan::keep(), problem);
    }
    let scripts: Vec<&Script> = before.iter().chain(&personal).chain(after).collect();
    let addresses = user_addresses(delivery);
    let input = Input {
        envelope: Envelope {
            from: delivery.from,
            to: delivery.to,
        },
        message: delivery.message,
        now: delivery.now,
        zone_minutes: local_zone_minutes(delivery.now),
        user_addresses: &addresses,
    };
    let mut includes = Resolver {
        personal: &user.dir,
        global: site.global_dir.as_deref(),
    };
    match sieve::execute(&scripts, &input, &mut includes) {
        Ok(outcome) => (plan_from(outcome.actions, delivery, &user.dir), problem),
        Err(e) => (Plan::keep(), Some(format!("sieve run failed: {e}"))),
    }
}

/// The addresses vacation treats as the user's own: the recipient as given and without its
/// `+detail`.
fn user_addresses(delivery: &Delivery<'_>) -> Vec<String> {
    let mut out = vec![delivery.to.to_string()];
    if let Some((local, domain)) = delivery.to.rsplit_once('@') {
        if let Some((base, _)) = local.split_once('+') {
            out.push(format!("{base}@{domain}"));
        }
    }
    if delivery.user.contains('@') && !out.iter().any(|a| a.eq_ignore_ascii_case(delivery.user)) {
        out.push(delivery.user.to_string());
    }
    out
}

/// The local time zone's offset at `now`, in minutes east of UTC.
fn local_zone_minutes(now: i64) -> i32 {
    let time: libc::time_t = now;
    // SAFETY: localtime_r reads `time` and writes only the `tm` it is given.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let filled = unsafe { libc::localtime_r(&time, &mut tm) };
    if filled.is_null() {
        return 0;
    }
    i32::try_from(tm.tm_gmtoff / 60).unwrap_or(0)
}

/// Turns the interpreter's actions into what delivery does.
fn plan_from(actions: Vec<Action>, delivery: &Delivery<'_>, dir: &Path) -> Plan {
    let mut plan = Plan::default();
    for action in actions {
        match action {
            Action::Keep { flags } => plan.placements.push(Placement {
                folder: None,
                flags,
                create: false,
            }),
            Action::FileInto {
                mailbox,
                flags,
                create,
            } => plan.placements.push(Placement {
                folder: Some(mailbox),
                flags,
                create,
            }),
            Action::Redirect { address } => {
                if redirect_loops(delivery.message, delivery.to) {
                    tracing::warn!(user = delivery.user, to = %address, "sieve: redirect loop stopped; keeping the message");
                    plan.placements.push(Placement {
                        folder: None,
                        flags: Vec::new(),
                        create: false,
                    });
                } else {
                    plan.followups.push(Followup::Redirect {
                        to: address,
                        delivered_to: delivery.to.to_string(),
                    });
                }
            }
            Action::Reject { reason, .. } => plan.reject = Some(reason),
            Action::Discard => tracing::info!(user = delivery.user, "sieve: message discarded"),
            Action::Vacation {
                to,
                handle,
                period_seconds,
                reply,
                envelope_from,
            } => {
                match super::vacation::should_reply(dir, &handle, &to, delivery.now, period_seconds)
                {
                    Ok(true) => plan.followups.push(Followup::Message {
                        from: envelope_from,
                        to,
                        message: reply,
                    }),
                    Ok(false) => {
                        tracing::debug!(user = delivery.user, %to, "sieve: vacation already answered")
                    }
                    Err(e) => tracing::warn!(
                        user = delivery.user,
                        "sieve: vacation memory unusable, no reply sent: {e}"
                    ),
                }
            }
        }
    }
    if plan.reject.is_some() {
        plan.placements.clear();
    }
    plan
}

/// The field every redirect puts on top, naming the user whose script redirected the message
/// (Pigeonhole's name for it). `Delivered-To:` is not used: MTAs add it themselves (Postfix's
/// local delivery does), so it says nothing about roost's own redirects.
pub const REDIRECTED_FROM: &str = "X-Sieve-Redirected-From";

/// Whether the message was already redirected by this recipient's script: an
/// [`REDIRECTED_FROM`] field naming it in the header.
pub fn redirect_loops(message: &[u8], recipient: &str) -> bool {
    let header_end = memchr::memmem::find(message, b"\r\n\r\n")
        .or_else(|| memchr::memmem::find(message, b"\n\n"))
        .unwrap_or(message.len());
    let header = String::from_utf8_lossy(&message[..header_end]);
    header.lines().any(|line| {
        line.split_once(':').is_some_and(|(name, value)| {
            let value = value.trim().trim_start_matches('<').trim_end_matches('>');
            name.eq_ignore_ascii_case(REDIRECTED_FROM) && value.eq_ignore_ascii_case(recipient)
        })
    })
}

/// The admin's scripts from the configuration (`[sieve] before`/`after`; with a spam scanner
/// and no `before` of the admin's own, the built-in "spam goes to Junk").
pub fn site_scripts(config: &crate::config::Config) -> SiteScripts {
    SiteScripts {
        spam_to_junk: config.spam.is_some() && config.sieve.before.is_empty(),
        before: config.sieve.before.clone(),
        after: config.sieve.after.clone(),
        global_dir: None,
    }
}

/// The user's active script and script directory (what ManageSieve manages). A script store
/// that cannot be read is logged and treated as "no script": the message is kept.
pub fn user_scripts(
    location: &roost_storage::MailLocation,
    vars: &roost_storage::UserVars,
) -> UserScripts {
    let store = match roost_storage::sieve_scripts::ScriptStore::for_user(location, vars) {
        Ok(store) => store,
        Err(e) => {
            tracing::warn!(user = %vars.user, "sieve: no script directory: {e}");
            return UserScripts {
                active: None,
                dir: PathBuf::new(),
            };
        }
    };
    let active = store.active().unwrap_or_else(|e| {
        tracing::warn!(user = %vars.user, "sieve: the active script cannot be read: {e}");
        None
    });
    UserScripts {
        active,
        dir: store.dir().to_path_buf(),
    }
}

/// Records a problem with the user's scripts beside them, for ManageSieve to show; failures
/// to record are only logged.
pub fn record_problem(dir: &Path, problem: &str) {
    let store = roost_storage::sieve_scripts::ScriptStore::new(dir);
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let now = chrono::DateTime::from_timestamp(i64::try_from(secs).unwrap_or(0), 0)
        .unwrap_or_default()
        .format("%Y-%m-%d %H:%M:%S UTC")
        .to_string();
    if let Err(e) = store.record_problem(&now, problem) {
        tracing::warn!(dir = %dir.display(), "cannot record the sieve problem: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_roosts_own_redirect_mark_is_a_loop() {
        let postfix = b"Delivered-To: alice@example.com\r\nSubject: x\r\n\r\nbody\r\n";
        assert!(!redirect_loops(postfix, "alice@example.com"));
        let ours = b"X-Sieve-Redirected-From: <Alice@Example.com>\r\nSubject: x\r\n\r\n";
        assert!(redirect_loops(ours, "alice@example.com"));
        assert!(!redirect_loops(ours, "bob@example.com"));
        let in_body = b"Subject: x\r\n\r\nX-Sieve-Redirected-From: <alice@example.com>\r\n";
        assert!(!redirect_loops(in_body, "alice@example.com"));
    }
}
