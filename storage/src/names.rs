//! IMAP mailbox names as the storage layer accepts them, whatever the format: `/` separates
//! hierarchy levels; names that could escape the mail root are refused.

use crate::Error;

/// The IMAP hierarchy separator, the same for maildir and mbox.
pub const SEPARATOR: char = '/';

/// Folders a new user gets, with their RFC 6154 attribute: IMAP makes them at the first login,
/// delivery when a filter files into one first.
pub const SPECIAL_USE: [(&str, &str); 5] = [
    ("Drafts", "\\Drafts"),
    ("Sent", "\\Sent"),
    ("Trash", "\\Trash"),
    ("Junk", "\\Junk"),
    ("Archive", "\\Archive"),
];

/// Checks an IMAP mailbox name and returns its parts; INBOX is returned as `None`.
pub fn parts(name: &str) -> Result<Option<Vec<&str>>, Error> {
    let invalid = |why: &str| Error::InvalidName(name.to_string(), why.to_string());
    if name.eq_ignore_ascii_case("INBOX") {
        return Ok(None);
    }
    if name.len() > 1024 {
        return Err(invalid("too long"));
    }
    let parts: Vec<&str> = name.split(SEPARATOR).collect();
    for part in &parts {
        if part.is_empty() {
            return Err(invalid("empty hierarchy level"));
        }
        if *part == "." || *part == ".." {
            return Err(invalid("\".\" and \"..\" are not mailbox names"));
        }
        if part.chars().any(|c| c.is_control()) {
            return Err(invalid("control characters are not allowed"));
        }
    }
    if parts[0].eq_ignore_ascii_case("INBOX") && parts.len() > 1 {
        return Err(invalid("INBOX cannot have children here"));
    }
    Ok(Some(parts))
}
