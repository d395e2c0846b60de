//! The mbox side file: UIDVALIDITY, UIDNEXT, and the UIDs of messages that have no `X-UID`
//! header yet (in file order, each with its header digest), until a rewrite records them in the
//! mail. Written atomically; a torn or garbled one is reported and rebuilt.

use std::fs;
use std::io;
use std::path::Path;

use super::parse::{RawMessage, Scan};
use crate::mailbox::Uid;
use crate::maildir::uidlist::write_file_atomically;
use crate::{repair, Error};

const HEADER: &str = "roost-mbox-uids 1";

/// The side file's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UidState {
    /// UIDVALIDITY.
    pub uidvalidity: u32,
    /// UIDNEXT.
    pub uidnext: Uid,
    /// `(header digest, uid)` of messages without `X-UID`, in file order.
    pub pending: Vec<(u32, Uid)>,
}

impl UidState {
    /// Reads the side file of `mbox`; `None` if missing or unusable (the latter reported).
    pub fn read(path: &Path, mbox: &Path) -> Result<Option<Self>, Error> {
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::InvalidData => String::new(),
            Err(e) => return Err(Error::io(path, e)),
        };
        match Self::parse(&text) {
            Some(state) => Ok(Some(state)),
            None => {
                repair::report(
                    mbox,
                    "the UID side file is corrupt",
                    "rebuilt it from the X-UID headers",
                );
                Ok(None)
            }
        }
    }

    fn parse(text: &str) -> Option<Self> {
        let mut lines = text.lines();
        if lines.next()? != HEADER || !text.ends_with("end\n") {
            return None;
        }
        let mut header = lines.next()?.split(' ');
        let uidvalidity = header.next()?.strip_prefix('V')?.parse().ok()?;
        let uidnext = header.next()?.strip_prefix('N')?.parse().ok()?;
        let mut pending = Vec::new();
        for line in lines {
            if line == "end" {
                return Some(Self {
                    uidvalidity,
                    uidnext,
                    pending,
                });
            }
            let (digest, uid) = line.split_once(' ')?;
            pending.push((digest.parse().ok()?, uid.parse().ok()?));
        }
        None
    }

    /// Writes the side file atomically.
    pub fn write(&self, path: &Path) -> Result<(), Error> {
        let mut text = format!("{HEADER}\nV{} N{}\n", self.uidvalidity, self.uidnext);
        for (digest, uid) in &self.pending {
            text.push_str(&format!("{digest} {uid}\n"));
        }
        text.push_str("end\n");
        write_file_atomically(path, text.as_bytes())
    }
}

/// Gives every message a UID: its `X-UID`, else the side file's, else a new one; UIDs must
/// rise through the file, anything else is renumbered.
pub fn number(scan: &Scan, state: &Option<UidState>) -> (u32, Uid, Vec<(Uid, RawMessage)>) {
    let max_xuid = scan
        .messages
        .iter()
        .filter_map(|m| m.uid)
        .max()
        .unwrap_or(0);
    let uidvalidity = scan
        .imapbase
        .map(|(v, _)| v)
        .or(state.as_ref().map(|s| s.uidvalidity))
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_secs() as u32)
        });
    let mut uidnext = scan
        .imapbase
        .map(|(_, n)| n)
        .max(state.as_ref().map(|s| s.uidnext))
        .unwrap_or(1)
        .max(max_xuid.saturating_add(1));
    let mut last = 0;
    let mut out = Vec::with_capacity(scan.messages.len());
    let pending = state.as_ref().map_or(&[][..], |s| &s.pending[..]);
    let mut cursor = 0;
    for msg in &scan.messages {
        let remembered = if msg.uid.is_none() {
            // Messages keep their order: match each to the next remembered one with its digest.
            pending[cursor..]
                .iter()
                .position(|(d, _)| *d == msg.digest)
                .map(|i| {
                    cursor += i + 1;
                    pending[cursor - 1].1
                })
        } else {
            None
        };
        let uid = match msg.uid.or(remembered) {
            Some(uid) if uid > last => uid,
            _ => {
                uidnext += 1;
                uidnext - 1
            }
        };
        last = uid;
        uidnext = uidnext.max(uid + 1);
        out.push((uid, msg.clone()));
    }
    (uidvalidity, uidnext, out)
}
