//! The mailbox responses: LIST / LSUB lines and STATUS, with mailbox names as the client reads
//! them.

use crate::imap::mutf7;
use crate::imap::strings::astring;

/// Whether a LIST line answers LIST or LSUB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    /// `* LIST`.
    List,
    /// `* LSUB`.
    Lsub,
}

/// A mailbox name attribute in a LIST response (RFC 3501, RFC 3348, RFC 5258, RFC 6154).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListAttribute<'a> {
    /// `\Noselect`.
    Noselect,
    /// `\NonExistent`.
    NonExistent,
    /// `\HasChildren`.
    HasChildren,
    /// `\HasNoChildren`.
    HasNoChildren,
    /// `\Subscribed`.
    Subscribed,
    /// A SPECIAL-USE attribute such as `\Sent`, spelled with its backslash.
    SpecialUse(&'a str),
}

impl ListAttribute<'_> {
    fn text(&self) -> &str {
        match self {
            Self::Noselect => "\\Noselect",
            Self::NonExistent => "\\NonExistent",
            Self::HasChildren => "\\HasChildren",
            Self::HasNoChildren => "\\HasNoChildren",
            Self::Subscribed => "\\Subscribed",
            Self::SpecialUse(name) => name,
        }
    }
}

/// A stored (modified UTF-7) mailbox name as the client reads it: as stored, or as UTF-8 once
/// the client enabled UTF8=ACCEPT or IMAP4rev2 (RFC 6855 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailboxName<'a> {
    /// The stored name.
    pub name: &'a str,
    /// The client reads UTF-8 names.
    pub utf8: bool,
}

impl MailboxName<'_> {
    /// Appends the name as an astring (or a quoted UTF-8 string).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.wire().as_bytes());
    }

    fn wire(&self) -> String {
        if !self.utf8 {
            return astring(self.name);
        }
        match mutf7::decode(self.name) {
            Ok(decoded) if !decoded.is_ascii() => {
                // UTF-8 is allowed in quoted strings once UTF8=ACCEPT is on (RFC 6855 3).
                format!("\"{}\"", decoded.replace('\\', "\\\\").replace('"', "\\\""))
            }
            _ => astring(self.name),
        }
    }
}

/// One item of a STATUS response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusItem {
    /// `MESSAGES n`.
    Messages(u32),
    /// `RECENT n`.
    Recent(u32),
    /// `UIDNEXT n`.
    UidNext(u32),
    /// `UIDVALIDITY n`.
    UidValidity(u32),
    /// `UNSEEN n`.
    Unseen(u32),
    /// `DELETED n` (RFC 9051).
    Deleted(u32),
    /// `HIGHESTMODSEQ n` (RFC 7162).
    HighestModSeq(u64),
    /// `SIZE n` (RFC 8438).
    Size(u64),
}

impl StatusItem {
    fn text(&self) -> String {
        match self {
            Self::Messages(n) => format!("MESSAGES {n}"),
            Self::Recent(n) => format!("RECENT {n}"),
            Self::UidNext(n) => format!("UIDNEXT {n}"),
            Self::UidValidity(n) => format!("UIDVALIDITY {n}"),
            Self::Unseen(n) => format!("UNSEEN {n}"),
            Self::Deleted(n) => format!("DELETED {n}"),
            Self::HighestModSeq(n) => format!("HIGHESTMODSEQ {n}"),
            Self::Size(n) => format!("SIZE {n}"),
        }
    }
}

/// `* LIST (attributes) "/" name\r\n` (or LSUB), with `extended` (the LIST-EXTENDED data,
/// from its leading space) before the CRLF.
pub(super) fn push_list(
    out: &mut Vec<u8>,
    kind: ListKind,
    attributes: &[ListAttribute<'_>],
    separator: char,
    mailbox: &MailboxName<'_>,
    extended: &str,
) {
    let word = match kind {
        ListKind::List => "LIST",
        ListKind::Lsub => "LSUB",
    };
    let attributes: Vec<&str> = attributes.iter().map(ListAttribute::text).collect();
    let head = format!("* {word} ({}) \"{separator}\" ", attributes.join(" "));
    out.extend_from_slice(head.as_bytes());
    mailbox.encode(out);
    out.extend_from_slice(extended.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// `* STATUS name (items)\r\n`.
pub(super) fn push_status(out: &mut Vec<u8>, mailbox: &MailboxName<'_>, items: &[StatusItem]) {
    out.extend_from_slice(b"* STATUS ");
    mailbox.encode(out);
    let items: Vec<String> = items.iter().map(StatusItem::text).collect();
    out.extend_from_slice(format!(" ({})\r\n", items.join(" ")).as_bytes());
}
