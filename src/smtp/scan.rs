//! The spam scanner's turn, between the end of DATA and delivery: the message goes to the
//! configured scanner once; on port 25 a score at or above `[spam] reject_score` is refused
//! while the sender is still connected; otherwise the message continues with the verdict in
//! its header. Mail from logged-in users (submission) is not scanned.

use roost_protocol::smtp::Reply;

use super::deliver::FileReader;
use super::policy::Mode;
use super::queue::Spool;
use super::Services;
use crate::filter::spam::{self, ScanEnvelope};

/// Scans `spool` (`size` bytes) when a scanner is configured. `Ok(Some(new))`: deliver `new`,
/// the message with the verdict on top; `Ok(None)`: deliver `spool` unchanged (no scanner,
/// too big, or the scanner away and `on_failure = "accept"`); `Err(reply)`: refuse with it.
pub async fn scan_received(
    services: &Services,
    spool: &Spool,
    size: u64,
    mode: Mode,
    envelope: &ScanEnvelope,
) -> Result<Option<Spool>, Reply> {
    let Some(config) = services.config.spam.as_ref() else {
        return Ok(None);
    };
    if mode == Mode::Submission || size > config.max_size {
        return Ok(None);
    }
    let mapped = crate::smtp::deliver::MappedMessage::new(spool.file()).map_err(|e| {
        tracing::error!(id = %spool.id, "cannot read the spooled message: {e}");
        local_error()
    })?;
    let verdict = match spam::scan(config, mapped.bytes(), envelope).await {
        Ok(v) => v,
        Err(e) if config.accept_on_failure => {
            tracing::warn!(id = %spool.id, "{e}; delivering unscanned");
            return Ok(None);
        }
        Err(e) => {
            tracing::warn!(id = %spool.id, "{e}; asking the sender to retry");
            return Err(Reply::new(
                451,
                "4.7.1",
                "Content scanner unavailable; try again later",
            ));
        }
    };
    tracing::info!(id = %spool.id, spam = verdict.is_spam, score = verdict.score, "spam scan");
    let over = config
        .reject_score
        .is_some_and(|limit| verdict.score >= limit);
    if over && mode == Mode::Inbound {
        return Err(Reply::new(550, "5.7.1", "Message refused as spam"));
    }
    let fresh = services.queue.spool().map_err(|e| {
        tracing::error!("cannot spool the scanned message: {e}");
        local_error()
    })?;
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, fresh.file());
    let written = spam::rewrite(
        &verdict.header_fields(),
        &mut FileReader::new(spool.file()),
        &mut out,
    )
    .and_then(|n| std::io::Write::flush(&mut out).map(|()| n));
    drop(out);
    match written {
        Ok(_) => Ok(Some(fresh)),
        Err(e) => {
            tracing::error!(id = %spool.id, "cannot write the scanned message: {e}");
            Err(local_error())
        }
    }
}

fn local_error() -> Reply {
    Reply::new(451, "4.3.0", "Local error in processing; try again later")
}
