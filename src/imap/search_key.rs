//! Whether one message matches a SEARCH key (RFC 3501 6.4.4, RFC 7162 MODSEQ).
//!
//! Flag, size, date and set keys are answered from the selected view. Header keys read the
//! cached header block; BODY and TEXT parse the message and search its decoded text parts,
//! case-insensitively, so a UTF-8 search finds text sent as quoted-printable or base64.

use chrono::{DateTime, NaiveDate as ChronoDate, Utc};
use roost_protocol::imap::imap_types::search::SearchKey;
use roost_protocol::imap::message::header_fields;
use roost_protocol::imap::parsed::ParsedMessage;
use roost_protocol::mail_parser::{Address, HeaderValue, Message, MessageParser, PartType};
use roost_storage::{Error as StorageError, Flags, MessageInfo};

use super::message::{header_of, whole_message_of};
use super::selected::{contains, Selected};

/// Why a search could not be answered.
pub enum SearchError {
    /// Reading a message failed.
    Storage(StorageError),
    /// A key roost does not implement.
    Unsupported(&'static str),
}

impl From<StorageError> for SearchError {
    fn from(e: StorageError) -> Self {
        Self::Storage(e)
    }
}

/// One message under test, with what was loaded for it so far.
pub struct Candidate<'s> {
    selected: &'s mut Selected,
    i: usize,
    /// The message's flags, dates and sizes as the view has them now.
    info: MessageInfo,
    header: Option<Vec<u8>>,
    /// The decoded text of the body parts, lowercased.
    text: Option<String>,
}

impl<'s> Candidate<'s> {
    /// Message `i` of the selected mailbox.
    pub fn new(selected: &'s mut Selected, i: usize) -> Self {
        let info = selected.info(i);
        Self {
            selected,
            i,
            info,
            header: None,
            text: None,
        }
    }

    /// Whether every key matches (reading no more of the message than the keys need).
    pub fn matches_all(&mut self, keys: &[SearchKey<'_>]) -> Result<bool, SearchError> {
        for key in keys {
            if !self.matches(key)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn info(&self) -> &MessageInfo {
        &self.info
    }

    fn matches(&mut self, key: &SearchKey<'_>) -> Result<bool, SearchError> {
        if let Some(known) = self.answered_by_view(key) {
            return Ok(known);
        }
        Ok(match key {
            SearchKey::And(keys) => self.matches_all(keys.as_ref())?,
            SearchKey::Or(a, b) => self.matches(a)? || self.matches(b)?,
            SearchKey::Not(k) => !self.matches(k)?,
            SearchKey::Larger(n) => self.size()? > u64::from(*n),
            SearchKey::Smaller(n) => self.size()? < u64::from(*n),
            SearchKey::SentBefore(d) => self.sent()? < *d.as_ref(),
            SearchKey::SentOn(d) => self.sent()? == *d.as_ref(),
            SearchKey::SentSince(d) => self.sent()? >= *d.as_ref(),
            SearchKey::From(s) => self.header_contains("From", s.as_ref())?,
            SearchKey::To(s) => self.header_contains("To", s.as_ref())?,
            SearchKey::Cc(s) => self.header_contains("Cc", s.as_ref())?,
            SearchKey::Bcc(s) => self.header_contains("Bcc", s.as_ref())?,
            SearchKey::Subject(s) => self.header_contains("Subject", s.as_ref())?,
            SearchKey::Header(name, value) => {
                let name = String::from_utf8_lossy(name.as_ref()).into_owned();
                self.header_contains(&name, value.as_ref())?
            }
            SearchKey::Body(s) => self.body_text()?.contains(&lower(s.as_ref())),
            SearchKey::Text(s) => {
                let needle = lower(s.as_ref());
                let header = lower(self.header()?);
                header.contains(&needle) || self.body_text()?.contains(&needle)
            }
            _ => return Err(SearchError::Unsupported("(extension)")),
        })
    }

    /// The keys the selected view answers without reading the message; `None` for the others.
    fn answered_by_view(&self, key: &SearchKey<'_>) -> Option<bool> {
        let info = self.info();
        let flag = |f: Flags| info.flags.contains(f);
        let keyword = |k: &str| info.keywords.iter().any(|x| x.eq_ignore_ascii_case(k));
        let arrived = day(info.internal_date.into());
        Some(match key {
            SearchKey::All => true,
            SearchKey::Recent => self.selected.is_recent(info.uid),
            SearchKey::New => self.selected.is_recent(info.uid) && !flag(Flags::SEEN),
            SearchKey::Old => !self.selected.is_recent(info.uid),
            SearchKey::SequenceSet(set) => {
                contains(set, self.i as u32 + 1, self.selected.len() as u32)
            }
            SearchKey::Uid(set) => {
                let largest = self.selected.view.uids().last().copied().unwrap_or(0);
                contains(set, info.uid, largest)
            }
            SearchKey::Answered => flag(Flags::ANSWERED),
            SearchKey::Unanswered => !flag(Flags::ANSWERED),
            SearchKey::Deleted => flag(Flags::DELETED),
            SearchKey::Undeleted => !flag(Flags::DELETED),
            SearchKey::Draft => flag(Flags::DRAFT),
            SearchKey::Undraft => !flag(Flags::DRAFT),
            SearchKey::Flagged => flag(Flags::FLAGGED),
            SearchKey::Unflagged => !flag(Flags::FLAGGED),
            SearchKey::Seen => flag(Flags::SEEN),
            SearchKey::Unseen => !flag(Flags::SEEN),
            SearchKey::Keyword(k) => keyword(k.as_ref()),
            SearchKey::Unkeyword(k) => !keyword(k.as_ref()),
            SearchKey::Before(d) => arrived < *d.as_ref(),
            SearchKey::On(d) => arrived == *d.as_ref(),
            SearchKey::Since(d) => arrived >= *d.as_ref(),
            SearchKey::ModSequence { modseq, .. } => info.modseq >= *modseq,
            _ => return None,
        })
    }

    fn size(&mut self) -> Result<u64, StorageError> {
        let uid = self.info().uid;
        self.selected.mailbox().crlf_size(uid)
    }

    fn header(&mut self) -> Result<&[u8], StorageError> {
        if self.header.is_none() {
            let uid = self.info().uid;
            self.header = Some(header_of(&mut *self.selected.mailbox(), uid)?);
        }
        Ok(self.header.as_deref().unwrap_or_default())
    }

    /// The day SENTBEFORE/SENTON/SENTSINCE compare (RFC 3501 6.4.4): the calendar date the
    /// Date header writes, its time and zone disregarded; without a readable Date header, the
    /// internal date's day, as RFC 5256 has SORT use it.
    fn sent(&mut self) -> Result<ChronoDate, StorageError> {
        let header = header_fields(self.header()?, &[b"date"], false);
        let written = MessageParser::default()
            .parse_headers(&header[..])
            .and_then(|message| message.date().and_then(written_day));
        Ok(written.unwrap_or_else(|| day(self.info().internal_date.into())))
    }

    /// Whether any `name` field contains `needle` (case-insensitive, encoded words decoded);
    /// an empty needle asks whether the field exists.
    fn header_contains(&mut self, name: &str, needle: &[u8]) -> Result<bool, StorageError> {
        // Only the asked-for field is parsed: Received and DKIM fields cost more than the rest.
        let header = header_fields(self.header()?, &[name.as_bytes()], false);
        let needle = lower(needle);
        if let Some(found) = plain_text_contains(name, &header, &needle) {
            return Ok(found);
        }
        let Some(message) = MessageParser::default().parse_headers(&header[..]) else {
            return Ok(false);
        };
        let Some(part) = message.parts.first() else {
            return Ok(false);
        };
        for h in part
            .headers
            .iter()
            .filter(|h| h.name.as_str().eq_ignore_ascii_case(name))
        {
            if needle.is_empty() {
                return Ok(true);
            }
            let raw = header
                .get(h.offset_start as usize..h.offset_end as usize)
                .unwrap_or_default();
            let mut text = lower(raw);
            text.push(' ');
            text.push_str(&value_text(&h.value).to_lowercase());
            if text.contains(&needle) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn body_text(&mut self) -> Result<String, StorageError> {
        if let Some(t) = &self.text {
            return Ok(t.clone());
        }
        let uid = self.info().uid;
        let whole = whole_message_of(&mut *self.selected.mailbox(), uid)?;
        let mut text = String::new();
        if let Some(message) = ParsedMessage::parse(&whole[..]) {
            collect_text(&message, &mut text, 0);
        }
        self.text = Some(text.clone());
        Ok(text)
    }
}

/// The decoded text parts of a message, attached messages included (their header text too,
/// as TEXT should find it), lowercased.
fn collect_text(message: &Message<'_>, text: &mut String, depth: usize) {
    for part in &message.parts {
        match &part.body {
            PartType::Text(t) | PartType::Html(t) => {
                text.push_str(&t.to_lowercase());
                text.push('\n');
            }
            PartType::Message(inner) if depth < 8 => {
                if let Some(top) = inner.parts.first() {
                    let raw = &inner.raw_message[..];
                    let header = raw
                        .get(top.offset_header as usize..top.offset_body as usize)
                        .unwrap_or_default();
                    text.push_str(&lower(header));
                }
                collect_text(inner, text, depth + 1);
            }
            _ => {}
        }
    }
}

/// [`Candidate::header_contains`] without a MIME parse, for the common case: an unstructured
/// field (Subject, Comments) without encoded words, whose text is its raw value unfolded.
/// `None` when the field needs the parser.
fn plain_text_contains(name: &str, fields: &[u8], needle: &str) -> Option<bool> {
    let unstructured = ["Subject", "Comments"]
        .iter()
        .any(|n| n.eq_ignore_ascii_case(name));
    if !unstructured || needle.is_empty() || memchr::memmem::find(fields, b"=?").is_some() {
        return None;
    }
    let raw = lower(fields);
    Some(raw.contains(needle) || raw.replace("\r\n", "").contains(needle))
}

fn lower(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_lowercase()
}

fn day(time: DateTime<Utc>) -> ChronoDate {
    time.date_naive()
}

/// The calendar date a Date header writes (`Mon, 1 Jan 2024 23:30:00 -0800` is 1 January,
/// whatever day it was in UTC); `None` for an impossible one.
fn written_day(date: &roost_protocol::mail_parser::DateTime) -> Option<ChronoDate> {
    if !date.is_valid() {
        return None;
    }
    ChronoDate::from_ymd_opt(
        i32::from(date.year),
        u32::from(date.month),
        u32::from(date.day),
    )
}

fn value_text(value: &HeaderValue<'_>) -> String {
    let addresses = |list: &mut dyn Iterator<Item = &roost_protocol::mail_parser::Addr<'_>>| {
        list.map(|a| {
            format!(
                "{} <{}>",
                a.name.as_deref().unwrap_or(""),
                a.address.as_deref().unwrap_or("")
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
    };
    match value {
        HeaderValue::Text(t) => t.to_string(),
        HeaderValue::TextList(list) => list.join(" "),
        HeaderValue::Address(Address::List(list)) => addresses(&mut list.iter()),
        HeaderValue::Address(Address::Group(groups)) => {
            addresses(&mut groups.iter().flat_map(|g| g.addresses.iter()))
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::{plain_text_contains, written_day, ChronoDate, MessageParser};

    fn sent_day(header: &[u8]) -> Option<ChronoDate> {
        MessageParser::default()
            .parse_headers(header)
            .and_then(|m| m.date().and_then(written_day))
    }

    #[test]
    fn the_sent_day_is_the_one_the_date_header_writes() {
        let day = |y, m, d| ChronoDate::from_ymd_opt(y, m, d);
        // 07:30 on 2 January in UTC, but the sender wrote 1 January.
        let west = b"Date: Mon, 1 Jan 2024 23:30:00 -0800\r\n\r\n";
        assert_eq!(sent_day(west), day(2024, 1, 1));
        // 22:30 on 31 December in UTC, but the sender wrote 1 January.
        let east = b"Date: Mon, 1 Jan 2024 00:30:00 +0200\r\n\r\n";
        assert_eq!(sent_day(east), day(2024, 1, 1));
        assert_eq!(
            sent_day(b"Date: 29 Feb 2024 10:00 +0000\r\n\r\n"),
            day(2024, 2, 29)
        );
        let gmt = b"Date: Thu, 29 Feb 2024 23:59:59 GMT\r\n\r\n";
        assert_eq!(sent_day(gmt), day(2024, 2, 29));
        assert_eq!(sent_day(b"Date: someday soon\r\n\r\n"), None);
        assert_eq!(sent_day(b"Date: 31 Feb 2024 10:00:00 +0000\r\n\r\n"), None);
        assert_eq!(sent_day(b"Subject: no date\r\n\r\n"), None);
    }

    #[test]
    fn a_plain_subject_is_searched_unfolded_without_the_parser() {
        let folded = b"Subject: Quarterly\r\n report due\r\n\r\n";
        assert_eq!(plain_text_contains("SUBJECT", folded, "report"), Some(true));
        assert_eq!(
            plain_text_contains("Subject", folded, "quarterly report"),
            Some(true)
        );
        assert_eq!(
            plain_text_contains("Subject", folded, "invoice"),
            Some(false)
        );
        assert_eq!(
            plain_text_contains("Subject", b"\r\n", "x"),
            Some(false),
            "no field"
        );
        let encoded = b"Subject: =?utf-8?q?caf=C3=A9?=\r\n\r\n";
        assert_eq!(
            plain_text_contains("Subject", encoded, "caf"),
            None,
            "needs decoding"
        );
        assert_eq!(
            plain_text_contains("From", folded, "x"),
            None,
            "structured field"
        );
    }
}
