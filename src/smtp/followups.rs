//! Queuing the mail a delivery asks to send: a Sieve `redirect` (the delivered message again,
//! with an `X-Sieve-Redirected-From:` line on top as the loop guard) and vacation replies. They become
//! ordinary queue entries, so they are retried, relayed and bounced like any other mail.

use std::fs::File;
use std::io::{Read, Write};

use roost_protocol::smtp::address::{Address, ReversePath};

use super::deliver::FileReader;
use super::queue::{self, Envelope, QueueError, Recipient};
use super::resolve::Target;
use super::Services;
use crate::filter::run::REDIRECTED_FROM;
use crate::filter::Followup;

/// Who a message to `address` goes to: the local users it resolves to, or the address itself
/// when it is not local. `None` when a local address resolves to nobody (logged).
pub async fn recipients_for(services: &Services, address: &Address) -> Option<Vec<Recipient>> {
    let targets = if services.config.smtp.is_local(address.domain()) {
        match services.privileged.resolve(address).await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!("mail to <{address}> dropped: {e}");
                return None;
            }
        }
    } else {
        vec![Target::Remote(address.clone())]
    };
    let recipients = targets
        .into_iter()
        .map(|t| match t {
            Target::Local(user) => Recipient::new(address.clone(), Some(user)),
            Target::Remote(address) => Recipient::new(address, None),
        })
        .collect();
    Some(recipients)
}

/// Writes a new queue entry from `from` to `recipients` whose message `write` produces, and
/// wakes the runner; returns its id.
pub fn queue_new(
    services: &Services,
    from: ReversePath,
    recipients: Vec<Recipient>,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<String, QueueError> {
    let mut spool = services.queue.spool()?;
    let mut file = spool.file();
    write(&mut file).map_err(|source| QueueError::Io {
        path: services.queue.dir().join("tmp"),
        source,
    })?;
    let now = queue::now();
    let envelope = Envelope {
        id: spool.id.clone(),
        from,
        eight_bit: true,
        smtputf8: false,
        created: now,
        attempts: 0,
        next_attempt: now,
        last_error: None,
        recipients,
        ret: None,
        envid: None,
    };
    services.queue.commit(&mut spool, &envelope)?;
    services.wake.notify_one();
    Ok(envelope.id)
}

/// Queues every follow-up of a delivery of `message` (sent by `from`); returns the new
/// entries' ids. Failures are logged: the delivery itself has already succeeded and must not
/// be repeated for them.
pub async fn queue_followups(
    services: &Services,
    from: &ReversePath,
    message: &File,
    followups: Vec<Followup>,
) -> Vec<String> {
    let mut ids = Vec::new();
    for followup in followups {
        let queued = match followup {
            Followup::Redirect { to, delivered_to } => {
                redirect(services, from, message, &to, &delivered_to).await
            }
            Followup::Message { from, to, message } => reply(services, &from, &to, message).await,
        };
        match queued {
            Ok(Some(id)) => {
                tracing::info!(id, "sieve: follow-up queued");
                ids.push(id);
            }
            Ok(None) => {}
            Err(e) => tracing::error!("sieve: follow-up not queued: {e}"),
        }
    }
    ids
}

async fn redirect(
    services: &Services,
    from: &ReversePath,
    message: &File,
    to: &str,
    delivered_to: &str,
) -> Result<Option<String>, QueueError> {
    let (Ok(to), Ok(via)) = (Address::parse(to), Address::parse(delivered_to)) else {
        tracing::warn!(to, "sieve: redirect to an address that is not one; dropped");
        return Ok(None);
    };
    let Some(recipients) = recipients_for(services, &to).await else {
        return Ok(None);
    };
    let id = queue_new(services, from.clone(), recipients, |out| {
        out.write_all(format!("{REDIRECTED_FROM}: <{via}>\r\n").as_bytes())?;
        std::io::copy(&mut FileReader::new(message).take(u64::MAX), out)?;
        Ok(())
    })?;
    Ok(Some(id))
}

async fn reply(
    services: &Services,
    from: &str,
    to: &str,
    message: Vec<u8>,
) -> Result<Option<String>, QueueError> {
    let (Ok(sender), Ok(to)) = (from.parse::<ReversePath>(), Address::parse(to)) else {
        tracing::warn!(to, "sieve: reply with a bad envelope; dropped");
        return Ok(None);
    };
    let Some(recipients) = recipients_for(services, &to).await else {
        return Ok(None);
    };
    let id = queue_new(services, sender, recipients, |out| out.write_all(&message))?;
    Ok(Some(id))
}
