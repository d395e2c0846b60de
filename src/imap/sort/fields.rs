//! What SORT and THREAD read of a message: the keys of [`Fields`], taken from the cached header
//! block as IMAP's ENVELOPE reads it (the first of a repeated field, a group's start as its
//! first address) and kept in the form they compare in.

use roost_protocol::imap::message::header_fields;
use roost_protocol::mail_parser::{
    Addr, Address, DateTime, Header, HeaderName, HeaderValue, Message, MessageParser,
};
use roost_storage::Error as StorageError;

use super::super::message::header_of;
use super::super::selected::Selected;
use super::collate::{ascii_casemap, unicode_casemap};
use super::message_id::{first_message_id, message_ids};
use super::subject::base_subject;

/// What sorting and threading need of one message, read from its cached header. Strings are
/// kept in the form they compare in (case-mapped, [`super::collate`]), so `Ord` on them is the
/// comparison and `==` the equality THREAD groups by.
#[derive(Debug, Clone, Default)]
pub struct Fields {
    /// RFC 5256 base subject, i;unicode-casemap.
    pub subject: String,
    /// Extracting the base subject removed a reply or forward marker.
    pub reply_or_forward: bool,
    /// Sent date (Date header in UTC, else the internal date), seconds since the epoch.
    pub date: i64,
    /// The first From's `addr-mailbox` (the local part), i;ascii-casemap.
    pub from: String,
    /// The first To's local part, i;ascii-casemap.
    pub to: String,
    /// The first Cc's local part, i;ascii-casemap.
    pub cc: String,
    /// The first From's decoded display name, else its `local@domain` (RFC 5957),
    /// i;unicode-casemap.
    pub display_from: String,
    /// The first To's decoded display name, else its `local@domain`, i;unicode-casemap.
    pub display_to: String,
    /// The first valid id of Message-ID, without brackets.
    pub message_id: Option<String>,
    /// The valid ids of References (oldest first), else the first of In-Reply-To.
    pub references: Vec<String>,
}

/// Reads the sort fields of message `i`.
pub fn fields(selected: &mut Selected, i: usize) -> Result<Fields, StorageError> {
    let info = selected.info(i);
    // Only the fields sorting and threading use are parsed (never the Received chain).
    let header = header_fields(
        &header_of(&mut *selected.mailbox(), info.uid)?,
        &[
            b"subject",
            b"date",
            b"from",
            b"to",
            b"cc",
            b"message-id",
            b"references",
            b"in-reply-to",
        ],
        false,
    );
    let internal = info
        .internal_date
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let mut f = Fields {
        date: internal,
        ..Fields::default()
    };
    if let Some(message) = MessageParser::default().parse_headers(&header[..]) {
        f.read(&message);
    }
    Ok(f)
}

impl Fields {
    /// Sets the subject keys from a Subject whose encoded-words are decoded.
    pub fn set_subject(&mut self, subject: &str) {
        let base = base_subject(subject);
        self.subject = unicode_casemap(&base.text);
        self.reply_or_forward = base.reply_or_forward;
    }

    /// Fills in what the parsed header says (the subject and names arrive decoded).
    fn read(&mut self, message: &Message<'_>) {
        let value = |name| first_field(message, name).map(|h| &h.value);
        self.set_subject(
            value("Subject")
                .and_then(HeaderValue::as_text)
                .unwrap_or(""),
        );
        // An unparseable Date (a field out of range, 31 February) leaves the internal date.
        let date = value("Date").and_then(HeaderValue::as_datetime);
        if let Some(d) = date.filter(|d| is_real_date(d)) {
            self.date = d.to_timestamp();
        }
        let first = |name| {
            value(name)
                .and_then(HeaderValue::as_address)
                .and_then(first_address)
        };
        let from = first("From").unwrap_or_default();
        self.from = ascii_casemap(from.mailbox);
        self.display_from = unicode_casemap(from.display());
        let to = first("To").unwrap_or_default();
        self.to = ascii_casemap(to.mailbox);
        self.display_to = unicode_casemap(to.display());
        self.cc = ascii_casemap(first("Cc").unwrap_or_default().mailbox);
        // The raw fields, not the parser's reading: only valid ids count (RFC 5256 step 1).
        let raw = |name| first_raw(message, name);
        self.message_id = raw("Message-ID").and_then(first_message_id);
        self.references = raw("References").map(message_ids).unwrap_or_default();
        if self.references.is_empty() {
            let first = raw("In-Reply-To").and_then(first_message_id);
            self.references = first.into_iter().collect();
        }
    }
}

/// Whether a parsed Date names a real moment: every field in range, the day in its month.
fn is_real_date(d: &DateTime) -> bool {
    let leap =
        d.year.is_multiple_of(4) && (!d.year.is_multiple_of(100) || d.year.is_multiple_of(400));
    let days = match d.month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    d.is_valid() && d.day <= days
}

/// The first field called `name`: of a repeated field the first counts, as it does for
/// Dovecot and ENVELOPE (the parser's own accessors give the last).
fn first_field<'a>(message: &'a Message<'a>, name: &str) -> Option<&'a Header<'a>> {
    let name = HeaderName::from(name);
    message.headers().iter().find(|h| h.name == name)
}

/// The raw text of the first field called `name`, if it is UTF-8.
fn first_raw<'a>(message: &'a Message<'a>, name: &str) -> Option<&'a str> {
    let field = first_field(message, name)?;
    let span = field.offset_start as usize..field.offset_end as usize;
    std::str::from_utf8(message.raw_message().get(span)?).ok()
}

/// The first address of an address field, as IMAP's ENVELOPE lists it: for group syntax
/// (`undisclosed-recipients:;`) that is the start of the group, whose mailbox is the group's
/// name; empty strings when the field is missing or holds nothing.
#[derive(Debug, Default, Clone, Copy)]
struct FirstAddress<'a> {
    /// The decoded display name, if it has one.
    name: Option<&'a str>,
    /// `addr-mailbox`, the local part (SORT FROM/TO/CC).
    mailbox: &'a str,
    /// The addr-spec, `local@domain`.
    addr_spec: &'a str,
}

impl<'a> FirstAddress<'a> {
    /// SORT DISPLAYFROM/DISPLAYTO (RFC 5957): the display name, else the addr-spec.
    fn display(&self) -> &'a str {
        self.name
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .unwrap_or(self.addr_spec)
    }
}

/// The first address of `field`, ENVELOPE's way (see [`FirstAddress`]).
fn first_address<'a>(field: &'a Address<'a>) -> Option<FirstAddress<'a>> {
    let of_addr = |addr: &'a Addr<'a>| {
        let addr_spec = addr.address.as_deref().unwrap_or("");
        // An obsolete source route (`<@relay:user@host>`) is no part of the address.
        let addr_spec = addr_spec
            .strip_prefix('@')
            .and_then(|route| route.split_once(':'))
            .map_or(addr_spec, |(_, spec)| spec);
        // The domain never holds an `@`; a quoted local part may.
        let mailbox = addr_spec
            .rsplit_once('@')
            .map_or(addr_spec, |(local, _)| local);
        FirstAddress {
            name: addr.name.as_deref(),
            mailbox,
            addr_spec,
        }
    };
    match field {
        Address::List(list) => list.first().map(of_addr),
        Address::Group(groups) => {
            let group = groups.first()?;
            match group.name.as_deref() {
                Some(name) => Some(FirstAddress {
                    name: None,
                    mailbox: name,
                    addr_spec: name,
                }),
                None => group.addresses.first().map(of_addr),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fields of a header, internal date 1000.
    fn read(header: &str) -> Fields {
        let header = header.replace('\n', "\r\n") + "\r\n";
        let message = MessageParser::default()
            .parse_headers(header.as_bytes())
            .expect("a header");
        let mut f = Fields {
            date: 1000,
            ..Fields::default()
        };
        f.read(&message);
        f
    }

    #[test]
    fn address_keys_are_the_local_part_and_the_display_name() {
        let f = read(
            "From: \"Zed\" <Alice.B@Example.org>\nTo: <Bob@x.example>, c@x.example\n\
             Cc: Team: \"Carol\" <CAROL@x.example>, dan@x.example;",
        );
        assert_eq!(
            (f.from.as_str(), f.display_from.as_str()),
            ("ALICE.B", "ZED")
        );
        assert_eq!(
            (f.to.as_str(), f.display_to.as_str()),
            ("BOB", "BOB@X.EXAMPLE")
        );
        assert_eq!(f.cc, "TEAM", "a group starts with its name, as in ENVELOPE");
        let f = read("From: undisclosed-recipients:;\nTo: a@x.example, G: b@x.example;");
        assert_eq!(f.from, "UNDISCLOSED-RECIPIENTS");
        assert_eq!(f.display_from, "UNDISCLOSED-RECIPIENTS");
        assert_eq!(f.to, "A", "an address before the group comes first");
        let f = read("From: <@relay.example:r@x.example>");
        assert_eq!(
            (f.from.as_str(), f.display_from.as_str()),
            ("R", "R@X.EXAMPLE")
        );
        let f = read("From: =?UTF-8?Q?=C3=89mile_Zola?= <ez@x.example>\nSubject: x");
        assert_eq!(
            f.display_from, "E\u{301}MILE ZOLA",
            "decoded, then case-mapped"
        );
        assert_eq!(
            (f.to.as_str(), f.display_to.as_str(), f.cc.as_str()),
            ("", "", "")
        );
    }

    #[test]
    fn the_sent_date_is_utc_or_else_the_internal_date() {
        let f = read("Date: Thu, 1 Jan 1970 01:00:00 +0100");
        assert_eq!(f.date, 0);
        let f = read("Date: Wed, 31 Dec 1969 19:00:00 -0500");
        assert_eq!(f.date, 0);
        assert_eq!(read("Date: someday").date, 1000);
        assert_eq!(read("Date: Thu, 45 Jan 1970 01:00:00 +0100").date, 1000);
        assert_eq!(read("Date: 31 Feb 2026 12:00:00 +0000").date, 1000);
        assert_eq!(read("Date: 29 Feb 2023 12:00:00 +0000").date, 1000);
        assert_ne!(read("Date: 29 Feb 2024 12:00:00 +0000").date, 1000);
        assert_eq!(read("Subject: no date").date, 1000);
    }

    #[test]
    fn references_fall_back_to_the_first_in_reply_to() {
        let f = read("Message-ID: <m@x>\nIn-Reply-To: <a@x> <b@x>");
        assert_eq!(f.message_id.as_deref(), Some("m@x"));
        assert_eq!(f.references, ["a@x"]);
        let f = read("References: <r1@x>\n <r2@x>\nIn-Reply-To: <a@x>");
        assert_eq!(f.references, ["r1@x", "r2@x"]);
    }

    #[test]
    fn of_a_repeated_field_the_first_counts() {
        let f = read(
            "Message-ID: <first@x>\nMessage-ID: <second@x>\nSubject: one\nSubject: two\n\
             From: a@x.example\nFrom: b@x.example\nReferences: garbage\nIn-Reply-To: <p@x>",
        );
        assert_eq!(f.message_id.as_deref(), Some("first@x"));
        assert_eq!((f.subject.as_str(), f.from.as_str()), ("ONE", "A"));
        assert_eq!(
            f.references,
            ["p@x"],
            "no valid id in References: In-Reply-To's"
        );
    }

    #[test]
    fn the_subject_key_is_the_decoded_base_subject() {
        let f = read("Subject: =?UTF-8?Q?Re=3A_=5Blist=5D_Gr=C3=BC=C3=9Fe?= (fwd)");
        assert_eq!(f.subject, "GRU\u{308}ßE");
        assert!(f.reply_or_forward);
    }
}
