//! The parts of a message that FETCH, SEARCH and SORT read: the header block, the whole
//! message, ENVELOPE and BODYSTRUCTURE, each with CRLF line ends. What is costly to compute is
//! kept in the folder's field cache, so asking again opens no message file. A command that
//! reads these for many messages first calls [`prefetch`] for a chunk of them, so the cache
//! serves the chunk with one read of its file instead of one per value.

use std::io::Read;

use roost_protocol::imap::message::{header_len, Structure};
use roost_storage::mailbox::CRLF_SIZE_FIELD;
use roost_storage::wire::CrlfReader;
use roost_storage::{Error as StorageError, Mailbox, Uid};

/// Field cache names. The computed ones carry a version: values cached before attached
/// messages and source routes were described right are not served again, but recomputed.
const ENVELOPE: &str = "ENVELOPE2";
const BODYSTRUCTURE: &str = "BODYSTRUCTURE2";
const BODY: &str = "BODY2";
const HEADER: &str = "HEADER";

/// How many messages one [`prefetch`] covers: a FETCH or SEARCH of a whole big folder holds
/// only this many messages' cached fields in memory at once. Every session running such a
/// command holds its own chunk (header blocks are kilobytes each), and past a few dozen
/// messages a bigger chunk saves no reads worth having: 256 made the heap's peak under the
/// 20-client IMAP load 6.2 MB, 64 makes it 2.7 MB.
pub const PREFETCH_CHUNK: usize = 64;

/// A cached field a command can read ahead for its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cached {
    /// The header block ([`header_of`]).
    Header,
    /// ENVELOPE ([`envelope`]).
    Envelope,
    /// BODY ([`structure`], not extended).
    Body,
    /// BODYSTRUCTURE ([`structure`], extended).
    BodyStructure,
    /// RFC822.SIZE, where the mailbox keeps it in the cache (mbox; maildir names it in the
    /// file name, so nothing is read for it).
    Size,
}

impl Cached {
    /// The name the field cache keeps it under.
    fn name(self) -> &'static str {
        match self {
            Self::Header => HEADER,
            Self::Envelope => ENVELOPE,
            Self::Body => BODY,
            Self::BodyStructure => BODYSTRUCTURE,
            Self::Size => CRLF_SIZE_FIELD,
        }
    }
}

/// The cached fields a command reads for each of its messages, read ahead a chunk of
/// messages at a time: each chunk then costs one read of the cache file per span of records,
/// not one per value. With no fields it does nothing (and opens no cache).
#[derive(Debug, Default)]
pub struct Prefetch {
    fields: Vec<Cached>,
    /// The cache's number for the chunk planned now (other sessions have plans of their own).
    plan: Option<u64>,
}

impl Prefetch {
    /// Adds a field to read ahead (once).
    pub fn add(&mut self, field: Cached) {
        if !self.fields.contains(&field) {
            self.fields.push(field);
        }
    }

    /// Plans the read-ahead for these messages (the next chunk, replacing this command's
    /// previous one); holds until the next chunk or [`Prefetch::done`].
    pub fn chunk(&mut self, mailbox: &mut dyn Mailbox, uids: &[Uid]) {
        if self.fields.is_empty() || uids.is_empty() {
            return;
        }
        let names: Vec<&str> = self.fields.iter().map(|f| f.name()).collect();
        if let Some(cache) = mailbox.field_cache() {
            if let Some(previous) = self.plan.take() {
                cache.forget_prefetched(previous);
            }
            self.plan = Some(cache.prefetch(uids, &names));
        }
    }

    /// Lets go of what was read ahead, once the command is done with it.
    pub fn done(&mut self, mailbox: &mut dyn Mailbox) {
        let Some(plan) = self.plan.take() else {
            return;
        };
        if let Some(cache) = mailbox.field_cache() {
            cache.forget_prefetched(plan);
        }
    }
}

/// The message's header block with CRLF line ends, blank line included (cached).
pub fn header_of(mailbox: &mut dyn Mailbox, uid: Uid) -> Result<Vec<u8>, StorageError> {
    if let Some(cached) = mailbox.cached(uid, HEADER) {
        return Ok(cached);
    }
    let mut reader = CrlfReader::new(mailbox.open_message(uid)?);
    let mut header = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = reader
            .read(&mut buf)
            .map_err(|e| StorageError::io(format!("message UID {uid}"), e))?;
        if n == 0 {
            break;
        }
        header.extend_from_slice(&buf[..n]);
        let len = header_len(&header);
        if len < header.len() || header.ends_with(b"\r\n\r\n") {
            header.truncate(len);
            break;
        }
    }
    mailbox.cache(uid, HEADER, &header)?;
    Ok(header)
}

/// The whole message with CRLF line ends, in memory (for part-number sections and BODY).
pub fn whole_message_of(mailbox: &mut dyn Mailbox, uid: Uid) -> Result<Vec<u8>, StorageError> {
    let mut reader = CrlfReader::new(mailbox.open_message(uid)?);
    let mut whole = Vec::new();
    reader
        .read_to_end(&mut whole)
        .map_err(|e| StorageError::io(format!("message UID {uid}"), e))?;
    Ok(whole)
}

/// ENVELOPE, encoded (cached).
pub fn envelope(mailbox: &mut dyn Mailbox, uid: Uid) -> Result<Vec<u8>, StorageError> {
    if let Some(cached) = mailbox.cached(uid, ENVELOPE) {
        return Ok(cached);
    }
    let header = header_of(mailbox, uid)?;
    let value = Structure::parse(&header).envelope();
    mailbox.cache(uid, ENVELOPE, &value)?;
    Ok(value)
}

/// BODYSTRUCTURE (`extended`) or BODY, encoded (cached; both are cached together).
pub fn structure(
    mailbox: &mut dyn Mailbox,
    uid: Uid,
    extended: bool,
) -> Result<Vec<u8>, StorageError> {
    let field = if extended { BODYSTRUCTURE } else { BODY };
    if let Some(cached) = mailbox.cached(uid, field) {
        return Ok(cached);
    }
    let whole = whole_message_of(mailbox, uid)?;
    let parsed = Structure::parse(&whole);
    let full = parsed.body_structure(true);
    let basic = parsed.body_structure(false);
    mailbox.cache(uid, BODYSTRUCTURE, &full)?;
    mailbox.cache(uid, BODY, &basic)?;
    Ok(if extended { full } else { basic })
}

#[cfg(test)]
mod tests {
    use super::*;
    use roost_storage::maildir::Maildir;
    use std::collections::BTreeSet;

    /// Reads the cache file has had, through the mailbox.
    fn reads(mailbox: &mut dyn Mailbox) -> u64 {
        mailbox.field_cache().map_or(0, |c| c.reads())
    }

    #[test]
    fn a_prefetched_chunk_of_fifty_headers_and_envelopes_costs_one_read_each() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("Maildir");
        let mut first = Maildir::new(&root);
        first.sync().unwrap();
        let mut uids = Vec::new();
        for n in 0..50 {
            let text = format!("From: a{n}@example.com\nSubject: {n}\n\nbody {n}\n");
            let keywords = BTreeSet::new();
            let uid = first.append(&mut text.as_bytes(), Default::default(), &keywords, None);
            uids.push(uid.unwrap());
        }
        for &uid in &uids {
            envelope(&mut first, uid).unwrap();
        }
        let mut again = Maildir::new(&root);
        again.sync().unwrap();
        let opened = reads(&mut again);
        let mut prefetch = Prefetch::default();
        prefetch.add(Cached::Header);
        prefetch.chunk(&mut again, &uids);
        for (n, &uid) in uids.iter().enumerate() {
            let header = header_of(&mut again, uid).unwrap();
            assert_eq!(
                header,
                format!("From: a{n}@example.com\r\nSubject: {n}\r\n\r\n").as_bytes()
            );
        }
        assert_eq!(reads(&mut again) - opened, 1, "50 headers in one read");
        prefetch.add(Cached::Envelope);
        prefetch.chunk(&mut again, &uids);
        for &uid in &uids {
            envelope(&mut again, uid).unwrap();
        }
        assert_eq!(
            reads(&mut again) - opened,
            2,
            "and 50 envelopes in one more"
        );
        prefetch.done(&mut again);
        header_of(&mut again, uids[7]).unwrap();
        assert_eq!(
            reads(&mut again) - opened,
            3,
            "without a prefetch: a read a value"
        );
    }
}
