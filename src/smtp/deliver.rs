//! Local delivery in this process: a spooled message into one user's INBOX through the storage
//! layer, with the `Return-Path:` line final delivery adds. Whoever calls it already runs as the
//! user's mail owner: roost started as that user, a `roost deliver-worker` the master started
//! (see `privilege::delivery`), or `roost deliver` after dropping root.

use std::fs::File;
use std::io::{Cursor, Read};
use std::os::unix::fs::FileExt;

use roost_protocol::smtp::address::ReversePath;
use roost_storage::{MailLocation, Store, UserVars};

use crate::auth::MailUser;
use crate::counters;
use crate::filter::{self, run::SiteFilters, Followup};
pub use crate::session::privileged::Outcome;

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

/// What one delivery did: its outcome, and the mail it asks to be sent (Sieve `redirect`,
/// vacation replies) by whoever can write the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// Stored, refused, or to be retried.
    pub outcome: Outcome,
    /// Mail to queue once the delivery is done (only when the outcome is not temporary).
    pub followups: Vec<Followup>,
}

impl Delivered {
    fn only(outcome: Outcome) -> Self {
        Self {
            outcome,
            followups: Vec::new(),
        }
    }
}

/// Blocking: delivers the spooled message to one user as this process (already the mail
/// owner): the site's and the user's Sieve scripts decide where copies go, then each copy is
/// appended (fsynced before return) after a `Return-Path:` line when the sender is known.
pub fn deliver_one(
    location: &MailLocation,
    user: &MailUser,
    recipient: &str,
    return_path: Option<&ReversePath>,
    message: &File,
    site: &SiteFilters,
) -> Delivered {
    let mapped = match MappedMessage::new(message) {
        Ok(m) => m,
        Err(e) => return Delivered::only(Outcome::Temporary(format!("reading the message: {e}"))),
    };
    let vars = UserVars {
        user: user.name.clone(),
        home: user.home.clone(),
    };
    let mut store = match Store::open_with_quota(location, &vars, user.quota) {
        Ok(store) => store,
        Err(e) => return stored(&user.name, Err(e), Vec::new()),
    };
    let from = return_path.map(ToString::to_string).unwrap_or_default();
    let scripts = filter::run::user_scripts(location, &vars);
    let delivery = filter::run::Delivery {
        user: &user.name,
        from: &from,
        to: recipient,
        message: mapped.bytes(),
        now: crate::smtp::queue::now() as i64,
    };
    let (plan, problem) = filter::run::plan(site, &scripts, &delivery);
    if let Some(problem) = problem {
        tracing::error!(user = %user.name, "sieve: {problem}; the message is kept in INBOX");
        filter::run::record_problem(&scripts.dir, &problem);
    }
    if let Some(reason) = plan.reject {
        tracing::info!(user = %user.name, "sieve: message rejected: {reason}");
        return Delivered {
            outcome: Outcome::Rejected(reason),
            followups: plan.followups,
        };
    }
    let head = return_path.map(return_path_line).unwrap_or_default();
    let mut copy = || -> Box<dyn Read + '_> {
        Box::new(Read::chain(
            Cursor::new(head.clone()),
            FileReader::new(message),
        ))
    };
    let result = filter::store::store_all(&mut store, &user.name, &plan.placements, &mut copy);
    stored(&user.name, result, plan.followups)
}

/// The outcome of storing, logged and counted.
fn stored(
    user: &str,
    result: Result<(), roost_storage::Error>,
    followups: Vec<Followup>,
) -> Delivered {
    let outcome = match result {
        Ok(()) => {
            counters::global().delivered();
            tracing::info!(user, "delivered");
            Outcome::Delivered
        }
        Err(roost_storage::Error::OverQuota) => {
            tracing::info!(user, "not delivered: quota exceeded");
            Outcome::MailboxFull
        }
        Err(e) => {
            tracing::error!(user, "delivery failed: {e}");
            return Delivered::only(Outcome::Temporary(e.to_string()));
        }
    };
    Delivered { outcome, followups }
}

/// A spool file mapped read-only, so Sieve can look at any part of it without reading it
/// into memory.
pub struct MappedMessage {
    map: Option<memmap2::Mmap>,
}

impl MappedMessage {
    /// Maps a spool file (an empty one maps to no bytes).
    pub fn new(file: &File) -> std::io::Result<Self> {
        if file.metadata()?.len() == 0 {
            return Ok(Self { map: None });
        }
        // SAFETY: spool files are written once, before delivery, and never changed or
        // truncated while a delivery reads them; the map is read-only.
        let map = unsafe { memmap2::Mmap::map(file)? };
        Ok(Self { map: Some(map) })
    }

    /// The whole message.
    pub fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or_default()
    }
}
