//! The mbox side file: UIDVALIDITY, UIDNEXT, and the UIDs of messages that have no `X-UID`
//! header yet (in file order, each with its header digest), until a rewrite records them in the
//! mail. Written atomically; a torn or garbled one is reported and rebuilt.

use std::fs;
use std::io;
use std::path::Path;

use super::parse::{RawMessage, Scan};
use crate::durable;
use crate::mailbox::Uid;
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
        durable::replace_file(path, text.as_bytes())
    }
}

/// What [`number`] decided.
#[derive(Debug)]
pub struct Numbering {
    /// UIDVALIDITY (a new one if the UID space was exhausted).
    pub uidvalidity: u32,
    /// UIDNEXT: always below `Uid::MAX`, so `uidnext + 1` cannot overflow.
    pub uidnext: Uid,
    /// The messages with their UIDs; `RawMessage::uid` is `None` where the `X-UID` was not
    /// trusted, so the UID given instead is remembered in the side file.
    pub messages: Vec<(Uid, RawMessage)>,
    /// Messages whose `X-UID` was refused and that got a new UID in this numbering.
    pub repaired: usize,
    /// Whether the UID space was exhausted and everything renumbered under a new UIDVALIDITY.
    pub restarted: bool,
}

/// Gives every message a UID: its `X-UID` if it rises through the file and lies below the
/// UIDNEXT recorded in `X-IMAPbase` or the side file (anything else a sender could have
/// forged), else the side file's, else a new one. When no UID is left to give, the folder
/// starts over: a new UIDVALIDITY and UIDs from 1 — never a wrapped or repeated UID.
pub fn number(
    scan: &Scan,
    state: &Option<UidState>,
    new_uidvalidity: impl FnOnce() -> u32,
) -> Numbering {
    let uidvalidity = scan
        .imapbase
        .map(|(v, _)| v)
        .or(state.as_ref().map(|s| s.uidvalidity))
        .unwrap_or_else(new_uidvalidity);
    // The side file counts only if it describes the same UIDVALIDITY.
    let state = state.as_ref().filter(|s| s.uidvalidity == uidvalidity);
    let bound = scan
        .imapbase
        .map(|(_, n)| n)
        .max(state.map(|s| s.uidnext))
        .unwrap_or(1)
        .max(1);
    assign(scan, state, bound, uidvalidity).unwrap_or_else(|| restart(scan, uidvalidity))
}

/// Numbers the messages below `bound` and up; `None` if the UID space runs out.
fn assign(
    scan: &Scan,
    state: Option<&UidState>,
    bound: Uid,
    uidvalidity: u32,
) -> Option<Numbering> {
    if bound == Uid::MAX {
        return None;
    }
    let mut uidnext = bound;
    let mut last: Uid = 0;
    let mut repaired = 0;
    let mut out = Vec::with_capacity(scan.messages.len());
    let pending = state.map_or(&[][..], |s| &s.pending[..]);
    let mut cursor = 0;
    for msg in &scan.messages {
        let trusted = msg.uid.filter(|u| *u > last && *u < bound);
        let remembered = match trusted {
            Some(_) => None,
            // Messages keep their order: match each to the next remembered one with its digest.
            None => pending[cursor..]
                .iter()
                .position(|(d, _)| *d == msg.digest)
                .map(|i| {
                    cursor += i + 1;
                    pending[cursor - 1].1
                }),
        };
        let uid = match trusted.or(remembered) {
            Some(uid) if uid > last && uid < Uid::MAX => uid,
            _ => {
                repaired += usize::from(msg.uid.is_some());
                uidnext
            }
        };
        // UIDNEXT must stay representable and below Uid::MAX, so appending can add one.
        uidnext = uidnext.max(uid.checked_add(1).filter(|n| *n < Uid::MAX)?);
        last = uid;
        let mut kept = msg.clone();
        kept.uid = trusted;
        out.push((uid, kept));
    }
    Some(Numbering {
        uidvalidity,
        uidnext,
        messages: out,
        repaired,
        restarted: false,
    })
}

/// A new UIDVALIDITY (the old one plus one, so every session that meets the same exhausted
/// mbox agrees on it) and the messages numbered from 1.
fn restart(scan: &Scan, old: u32) -> Numbering {
    let uidvalidity = old.checked_add(1).unwrap_or(1);
    let mut uidnext: Uid = 1;
    let mut messages = Vec::with_capacity(scan.messages.len());
    for msg in &scan.messages {
        let mut kept = msg.clone();
        kept.uid = None;
        messages.push((uidnext, kept));
        // More messages than UIDs cannot fit in a file, but never wrap regardless.
        uidnext = uidnext.saturating_add(1);
    }
    Numbering {
        uidvalidity,
        uidnext,
        repaired: messages.len(),
        messages,
        restarted: true,
    }
}
