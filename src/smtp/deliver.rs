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
    let opened = Store::open_with_quota(location, &vars, user.quota);
    match opened.and_then(|mut store| store.append_to_inbox(&mut reader)) {
        Ok(_) => {
            counters::global().delivered();
            tracing::info!(user = %user.name, "delivered to INBOX");
            Outcome::Delivered
        }
        Err(roost_storage::Error::OverQuota) => {
            tracing::info!(user = %user.name, "not delivered: quota exceeded");
            Outcome::MailboxFull
        }
        Err(e) => {
            tracing::error!(user = %user.name, "delivery failed: {e}");
            Outcome::Temporary(e.to_string())
        }
    }
}
