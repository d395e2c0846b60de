//! The queue runner: attempts due entries (local retries through the deliverer, the rest
//! through the relayhost), reschedules with exponential backoff, and bounces what finally fails.
//!
//! Retry schedule: after attempt n the next comes `queue_retry_secs × 2^(n-1)` later, at most
//! four hours apart (60 s, 2, 4, 8, 16, 32 min, 1, 2, 4, 4 … h by default); a message older
//! than `queue_lifetime_secs` (5 days) or refused with 5xx is returned to its sender.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use roost_protocol::smtp::address::ReversePath;
use tokio_util::sync::CancellationToken;

use super::bounce::{self, Failure};
use super::deliver::Outcome;
use super::queue::{self, Envelope, QueueError, Recipient};
use super::resolve::Target;
use super::Services;
use crate::config::MAX_RETRY_DELAY;

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

/// One attempt at one entry, under its lock.
pub async fn attempt(services: &Services, id: &str) -> Result<(), QueueError> {
    let Some(locked) = services.queue.lock(id)? else {
        return Ok(());
    };
    let config = &services.config.smtp;
    let mut env = locked.envelope.clone();
    let (local, remote): (Vec<Recipient>, Vec<Recipient>) = env
        .recipients
        .iter()
        .cloned()
        .partition(|r| r.local_user.is_some());
    let mut results: Vec<(Recipient, Outcome)> = Vec::new();
    if !local.is_empty() {
        let users: Vec<String> = local.iter().filter_map(|r| r.local_user.clone()).collect();
        let outcomes = services
            .privileged
            .deliver(&locked.message, &env.from, &users)
            .await;
        results.extend(local.into_iter().zip(outcomes));
    }
    if !remote.is_empty() {
        let outcomes = match &config.relayhost {
            Some(relayhost) => {
                let host = roost_storage::host::name();
                super::relay::send(config, relayhost, host, &env, &locked.message, &remote).await
            }
            None => vec![Outcome::Permanent("no relayhost is configured".into()); remote.len()],
        };
        results.extend(remote.into_iter().zip(outcomes));
    }
    let expired = queue::now().saturating_sub(env.created) >= config.queue_lifetime.as_secs();
    let mut kept = Vec::new();
    let mut failed = Vec::new();
    for (rcpt, outcome) in results {
        match outcome {
            Outcome::Delivered => {
                tracing::info!(id, rcpt = %rcpt.address, "queue: delivered");
            }
            Outcome::Permanent(reason) => failed.push(Failure {
                address: rcpt.address,
                reason,
            }),
            Outcome::Temporary(reason) if expired => failed.push(Failure {
                address: rcpt.address,
                reason: format!("gave up after {} attempts: {reason}", env.attempts + 1),
            }),
            Outcome::Temporary(reason) => {
                env.last_error = Some(reason);
                kept.push(rcpt);
            }
            Outcome::MailboxFull if services.config.mail.quota_full_tempfail && !expired => {
                env.last_error = Some(MAILBOX_FULL.into());
                kept.push(rcpt);
            }
            Outcome::MailboxFull => failed.push(Failure {
                address: rcpt.address,
                reason: MAILBOX_FULL.into(),
            }),
        }
    }
    if !failed.is_empty() {
        for f in &failed {
            tracing::warn!(id, rcpt = %f.address, "queue: failed for good: {}", f.reason);
        }
        if let Err(e) = queue_bounce(services, &env, &failed, &locked.message).await {
            tracing::error!(id, "queue: cannot bounce to <{}>: {e}", env.from);
        }
    }
    if kept.is_empty() {
        return services.queue.remove(id);
    }
    env.recipients = kept;
    env.attempts += 1;
    env.next_attempt = queue::now() + backoff(config.retry_delay, env.attempts).as_secs();
    services.queue.write_envelope(&env)
}

/// Queues a DSN to the sender of `env` (never for the null sender, so bounces cannot loop).
async fn queue_bounce(
    services: &Services,
    env: &Envelope,
    failed: &[Failure],
    message: &std::fs::File,
) -> Result<(), QueueError> {
    let Some(sender) = env.from.mailbox() else {
        return Ok(());
    };
    let targets = if services.config.smtp.is_local(sender.domain()) {
        match services.privileged.resolve(sender).await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!("bounce to <{sender}> dropped: {e}");
                return Ok(());
            }
        }
    } else {
        vec![Target::Remote(sender.clone())]
    };
    let recipients = targets
        .into_iter()
        .map(|t| match t {
            Target::Local(user) => Recipient {
                address: sender.clone(),
                local_user: Some(user),
            },
            Target::Remote(address) => Recipient {
                address,
                local_user: None,
            },
        })
        .collect();
    let mut spool = services.queue.spool()?;
    let host = roost_storage::host::name();
    let text = bounce::compose(host, env, failed, message, &super::rfc5322_now());
    spool
        .file()
        .write_all(&text)
        .map_err(|source| QueueError::Io {
            path: services.queue.dir().join("tmp"),
            source,
        })?;
    let now = queue::now();
    let bounce = Envelope {
        id: spool.id.clone(),
        from: ReversePath::Null,
        eight_bit: true,
        smtputf8: false,
        created: now,
        attempts: 0,
        next_attempt: now,
        last_error: None,
        recipients,
    };
    services.queue.commit(&mut spool, &bounce)?;
    services.wake.notify_one();
    tracing::info!(id = %bounce.id, to = %env.from, "queue: bounce queued");
    Ok(())
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
