//! The queue runner: attempts due entries (local retries through the deliverer, the rest
//! through the relayhost), reschedules with exponential backoff, and bounces what finally fails.
//!
//! Retry schedule: after attempt n the next comes `queue_retry_secs × 2^(n-1)` later, at most
//! four hours apart (60 s, 2, 4, 8, 16, 32 min, 1, 2, 4, 4 … h by default); a message older
//! than `queue_lifetime_secs` (5 days) or refused with 5xx is returned to its sender.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::bounce::{self, Action, Notice};
use super::deliver::Outcome;
use super::queue::{self, Envelope, QueueError, Recipient};
use super::Services;
use crate::config::MAX_RETRY_DELAY;
use crate::session::privileged::LocalRecipient;

/// Why a copy for a full mailbox was not delivered, for the bounce (RFC 3463 5.2.2).
const MAILBOX_FULL: &str = "5.2.2 mailbox full (quota exceeded)";

/// The runner looks at the queue at least this often (entries `roost queue flush` made due).
const POLL: Duration = Duration::from_secs(2);

/// The delay before the attempt after attempt `n` (1-based).
pub fn backoff(base: Duration, n: u32) -> Duration {
    let factor = 1u32.checked_shl(n.saturating_sub(1)).unwrap_or(u32::MAX);
    base.saturating_mul(factor).min(MAX_RETRY_DELAY)
}

/// Runs until shutdown.
pub async fn run(services: Arc<Services>, shutdown: CancellationToken) {
    services.queue.clean();
    let smtp = &services.config.smtp;
    if let (Some(file), None) = (&smtp.relayhost_password_file, &smtp.relay_credentials) {
        tracing::error!(
            "queue: {} is not readable by this user; nothing will be relayed (start roost as root, or give the file to this user)",
            file.display()
        );
    }
    loop {
        let next = run_once(&services, false).await;
        let wait = next
            .map(|t| Duration::from_secs(t.saturating_sub(queue::now())))
            .unwrap_or(POLL)
            .min(POLL);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = services.wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Attempts every due entry (every entry with `all`); returns the earliest next attempt.
pub async fn run_once(services: &Services, all: bool) -> Option<u64> {
    let mut earliest: Option<u64> = None;
    for id in services.queue.ids() {
        let due = match services.queue.read(&id) {
            Ok(env) => all || env.next_attempt <= queue::now(),
            Err(_) => true, // `attempt` sets a corrupt entry aside
        };
        if due {
            if let Err(e) = attempt(services, &id).await {
                tracing::error!("queue: {e}");
            }
        }
        if let Ok(env) = services.queue.read(&id) {
            earliest = Some(earliest.map_or(env.next_attempt, |e| e.min(env.next_attempt)));
        }
    }
    earliest
}

/// What one attempt did with one recipient.
enum Verdict {
    /// Done; a report (failure, or success the sender asked for) may be due.
    Done(Option<Notice>),
    /// Still to be tried, with the reason.
    Keep(String),
}

/// Local recipients through the deliverer, the rest through the relayhost; one result per
/// recipient, and whether the relayhost took the DSN requests over (it offered DSN).
async fn deliver_all(
    services: &Services,
    env: &Envelope,
    message: &std::fs::File,
) -> (Vec<(Recipient, Outcome)>, bool) {
    let config = &services.config.smtp;
    let (local, remote): (Vec<Recipient>, Vec<Recipient>) = env
        .recipients
        .iter()
        .cloned()
        .partition(|r| r.local_user.is_some());
    let mut results: Vec<(Recipient, Outcome)> = Vec::new();
    if !local.is_empty() {
        let users: Vec<LocalRecipient> = local
            .iter()
            .filter_map(|r| {
                Some(LocalRecipient {
                    user: r.local_user.clone()?,
                    address: r.address.to_string(),
                })
            })
            .collect();
        let done = services
            .privileged
            .deliver(message, &env.from, &users)
            .await;
        super::followups::queue_followups(services, &env.from, message, done.followups).await;
        results.extend(local.into_iter().zip(done.outcomes));
    }
    let mut dsn_passed_on = false;
    if !remote.is_empty() {
        let outcomes = match &config.relayhost {
            Some(relayhost) => {
                let host = roost_storage::host::name();
                let sent = super::relay::send(config, relayhost, host, env, message, &remote).await;
                dsn_passed_on = sent.dsn_passed_on;
                sent.outcomes
            }
            None => vec![Outcome::Permanent("no relayhost is configured".into()); remote.len()],
        };
        results.extend(remote.into_iter().zip(outcomes));
    }
    (results, dsn_passed_on)
}

/// What an outcome means for its recipient: done (with the report the sender wants), or kept.
fn judge(
    services: &Services,
    env: &Envelope,
    rcpt: &Recipient,
    outcome: Outcome,
    expired: bool,
    dsn_passed_on: bool,
) -> Verdict {
    let failed = |reason: String| {
        tracing::warn!(id = %env.id, rcpt = %rcpt.address, "queue: failed for good: {reason}");
        Verdict::Done(
            rcpt.wants_failure()
                .then(|| Notice::new(rcpt, Action::Failed, reason)),
        )
    };
    match outcome {
        Outcome::Delivered => {
            tracing::info!(id = %env.id, rcpt = %rcpt.address, "queue: delivered");
            let action = match (&rcpt.local_user, dsn_passed_on) {
                (Some(_), _) => Some(Action::Delivered),
                (None, false) => Some(Action::Relayed),
                (None, true) => None, // the relayhost reports from here on
            };
            let notice = action
                .filter(|_| rcpt.wants_success())
                .map(|a| Notice::new(rcpt, a, ""));
            Verdict::Done(notice)
        }
        Outcome::Permanent(reason) => failed(reason),
        Outcome::Temporary(reason) if expired => failed(format!(
            "gave up after {} attempts: {reason}",
            env.attempts + 1
        )),
        Outcome::Temporary(reason) => Verdict::Keep(reason),
        Outcome::MailboxFull if services.config.mail.quota_full_tempfail && !expired => {
            Verdict::Keep(MAILBOX_FULL.into())
        }
        Outcome::MailboxFull => failed(MAILBOX_FULL.into()),
        Outcome::Rejected(reason) => failed(format!(
            "5.7.1 refused by the recipient's mail filter: {reason}"
        )),
    }
}

/// One attempt at one entry, under its lock.
pub async fn attempt(services: &Services, id: &str) -> Result<(), QueueError> {
    let Some(locked) = services.queue.lock(id)? else {
        return Ok(());
    };
    let config = &services.config.smtp;
    let mut env = locked.envelope.clone();
    let (results, dsn_passed_on) = deliver_all(services, &env, &locked.message).await;
    let expired = queue::now().saturating_sub(env.created) >= config.queue_lifetime.as_secs();
    let mut kept = Vec::new();
    let mut notices = Vec::new();
    for (rcpt, outcome) in results {
        match judge(services, &env, &rcpt, outcome, expired, dsn_passed_on) {
            Verdict::Done(notice) => notices.extend(notice),
            Verdict::Keep(reason) => {
                env.last_error = Some(reason);
                kept.push(rcpt);
            }
        }
    }
    if let Err(e) = bounce::queue_report(services, &env, &notices, &locked.message).await {
        tracing::error!(id, "queue: cannot report to <{}>: {e}", env.from);
    }
    if kept.is_empty() {
        return services.queue.remove(id);
    }
    env.recipients = kept;
    env.attempts += 1;
    env.next_attempt = queue::now() + backoff(config.retry_delay, env.attempts).as_secs();
    services.queue.write_envelope(&env)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_four_hours() {
        let m = Duration::from_secs(60);
        let secs: Vec<u64> = (1..=10).map(|n| backoff(m, n).as_secs()).collect();
        assert_eq!(
            secs,
            [60, 120, 240, 480, 960, 1920, 3840, 7680, 14400, 14400]
        );
        assert_eq!(backoff(m, 200), MAX_RETRY_DELAY);
    }
}
