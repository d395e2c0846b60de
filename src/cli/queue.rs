//! `roost queue`: list the queue (like mailq) or flush it (like `exim -qf`): every entry is
//! attempted now, by this process, under the same per-entry lock the server's runner takes.

use std::fmt::Write;
use std::sync::Arc;

use crate::auth::Authenticator;
use crate::config::Config;
use crate::privilege::in_process::InProcess;
use crate::smtp::queue::{Queue, QueueError};
use crate::smtp::{runner, Services};

/// Why `roost queue` failed.
#[derive(Debug, thiserror::Error)]
pub enum QueueCliError {
    /// The queue directory cannot be used.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// The runtime for a flush could not start.
    #[error("cannot start: {0}")]
    Runtime(#[from] std::io::Error),
}

/// The listing, mailq style.
pub fn list(config: &Config) -> Result<String, QueueCliError> {
    let queue = Queue::open(&config.smtp.queue_dir)?;
    let mut out = String::new();
    let ids = queue.ids();
    for id in &ids {
        match queue.read(id) {
            Ok(env) => {
                let arrival = chrono::DateTime::from_timestamp(env.created as i64, 0)
                    .unwrap_or_default()
                    .format("%Y-%m-%d %H:%M:%S");
                let from = match env.from.mailbox() {
                    Some(sender) => sender.to_string(),
                    None => "<>".into(),
                };
                let _ = writeln!(
                    out,
                    "{id} {:>9} {arrival} {from} (attempts: {})",
                    queue.message_size(id),
                    env.attempts
                );
                if let Some(e) = &env.last_error {
                    let _ = writeln!(out, "    ({e})");
                }
                for r in &env.recipients {
                    match &r.local_user {
                        Some(user) => {
                            let _ = writeln!(out, "    {} (local user {user})", r.address);
                        }
                        None => {
                            let _ = writeln!(out, "    {}", r.address);
                        }
                    }
                }
            }
            Err(e) => {
                let _ = writeln!(out, "{id} unreadable: {e}");
            }
        }
    }
    let _ = writeln!(
        out,
        "-- {} message{} in {}",
        ids.len(),
        if ids.len() == 1 { "" } else { "s" },
        queue.dir().display()
    );
    Ok(out)
}

/// Attempts every entry now, then lists what is left.
pub fn flush(config: Config) -> Result<String, QueueCliError> {
    let config = Arc::new(config);
    let auth = Arc::new(Authenticator::new(&config.auth));
    let privileged = Arc::new(InProcess::for_this_process(&config, auth));
    let services = Services::new(&config, privileged)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let before = services.queue.ids().len();
    runtime.block_on(async {
        // Bounces made on the way are attempted in a second pass.
        runner::run_once(&services, true).await;
        runner::run_once(&services, false).await;
    });
    let after = services.queue.ids().len();
    Ok(format!(
        "flushed: {before} message(s) attempted, {after} left\n{}",
        list(&config)?
    ))
}
