//! The parts of a message that FETCH, SEARCH and SORT read: the header block, the whole
//! message, ENVELOPE and BODYSTRUCTURE, each with CRLF line ends. What is costly to compute is
//! kept in the folder's field cache, so asking again opens no message file.

use std::io::Read;

use roost_protocol::imap::message::{header_len, Structure};
use roost_storage::wire::CrlfReader;
use roost_storage::{Error as StorageError, Mailbox, Uid};

/// Field cache names.
const ENVELOPE: &str = "ENVELOPE";
const BODYSTRUCTURE: &str = "BODYSTRUCTURE";
const BODY: &str = "BODY";
const HEADER: &str = "HEADER";

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
