//! SEARCH (RFC 3501 6.4.4) with every RFC 3501 key, and MODSEQ (RFC 7162).
//!
//! Flag, size, date and set keys are answered from the selected view. Header keys read the
//! cached header block; BODY and TEXT parse the message and search its decoded text parts,
//! case-insensitively, so a UTF-8 search finds text sent as quoted-printable or base64.

use chrono::{DateTime, NaiveDate as ChronoDate, Utc};
use roost_protocol::imap::imap_types::core::Charset;
use roost_protocol::imap::imap_types::search::SearchKey;
use roost_protocol::imap::message::header_fields;
use roost_protocol::imap::parsed::ParsedMessage;
use roost_protocol::imap::response::{AllNumbers, Code, Esearch, Response};
use roost_protocol::mail_parser::{Address, HeaderValue, Message, MessageParser, PartType};
use roost_storage::{Error as StorageError, Flags, MessageInfo};

use super::reply::{bad, no, ok, storage_failure, Tagged};
use super::selected::{contains, Selected};

/// Runs SEARCH; writes `* SEARCH ...` and returns the tagged line.
#[allow(clippy::too_many_arguments)]
pub fn search(
    selected: &mut Selected,
    charset: Option<&Charset<'_>>,
    criteria: &[SearchKey<'_>],
    uid: bool,
    returns: Option<&[String]>,
    tag: &str,
    user: &str,
    out: &mut Vec<u8>,
) -> Tagged {
    let hits = match find(selected, charset, criteria, tag, user) {
        Ok(hits) => hits,
        Err(tagged) => return tagged,
    };
    if let Some(options) = returns {
        // SAVE keeps the result for `$` (RFC 5182); alone, it asks for no ESEARCH response.
        let mut options = options.to_vec();
        if options.iter().any(|o| o == "SAVE") {
            selected.saved = hits.iter().map(|&i| selected.messages[i].uid).collect();
            options.retain(|o| o != "SAVE");
            if options.is_empty() {
                return ok(tag, "Search completed; result saved.");
            }
        }
        let numbers: Vec<u32> = hits
            .iter()
            .map(|&i| {
                if uid {
                    selected.messages[i].uid
                } else {
                    i as u32 + 1
                }
            })
            .collect();
        let highest = hits.iter().map(|&i| selected.messages[i].modseq).max();
        let modseq = highest.filter(|_| criteria.iter().any(uses_modseq));
        esearch(tag, uid, &numbers, &options, modseq, false, out);
        return ok(tag, "Search completed.");
    }
    let mut numbers = Vec::with_capacity(hits.len());
    let mut highest = 0u64;
    for &i in &hits {
        let m = &selected.messages[i];
        highest = highest.max(m.modseq);
        numbers.push(if uid { m.uid } else { i as u32 + 1 });
    }
    let modseq = (criteria.iter().any(uses_modseq) && !hits.is_empty()).then_some(highest);
    Response::Search {
        numbers: &numbers,
        modseq,
    }
    .encode(out);
    ok(tag, "Search completed.")
}

/// The indexes of the messages matching every criterion (SEARCH, SORT, THREAD); `Err` is the
/// tagged answer for a search that cannot run.
pub fn find(
    selected: &mut Selected,
    charset: Option<&Charset<'_>>,
    criteria: &[SearchKey<'_>],
    tag: &str,
    user: &str,
) -> Result<Vec<usize>, Tagged> {
    if let Some(charset) = charset {
        let name = charset.as_ref().to_ascii_uppercase();
        if name != "UTF-8" && name != "US-ASCII" {
            return Err(no(
                tag,
                Some(Code::BadCharset(&["UTF-8", "US-ASCII"])),
                "Only UTF-8 and US-ASCII searches are supported.",
            ));
        }
    }
    let mut hits = Vec::new();
    for i in 0..selected.messages.len() {
        let mut ctx = Context {
            selected: &mut *selected,
            i,
            header: None,
            text: None,
        };
        let all = criteria.iter().try_fold(true, |acc, key| {
            if !acc {
                return Ok(false);
            }
            ctx.matches(key)
        });
        match all {
            Ok(true) => hits.push(i),
            Ok(false) => {}
            Err(SearchError::Storage(StorageError::NoSuchMessage(_))) => {}
            Err(SearchError::Storage(e)) => return Err(storage_failure(tag, user, &e)),
            Err(SearchError::Unsupported(what)) => {
                return Err(bad(tag, &format!("Search key {what} is not supported.")))
            }
        }
    }
    Ok(hits)
}

/// `* ESEARCH (TAG "a") UID MIN 1 MAX 9 COUNT 4 ALL 1:3,9` (RFC 4731; `sorted` keeps the given
/// order for ESORT, RFC 5267).
pub fn esearch(
    tag: &str,
    uid: bool,
    numbers: &[u32],
    options: &[String],
    modseq: Option<u64>,
    sorted: bool,
    out: &mut Vec<u8>,
) {
    let all = options.is_empty();
    let wants = |o: &str| all && o == "ALL" || options.iter().any(|x| x == o);
    let (min, max) = if sorted {
        (numbers.first(), numbers.last())
    } else {
        (numbers.iter().min(), numbers.iter().max())
    };
    let mut ordered = numbers.to_vec();
    ordered.sort_unstable();
    let listed = match (wants("ALL") && !numbers.is_empty(), sorted) {
        (false, _) => None,
        (true, true) => Some(AllNumbers::Ordered(numbers)),
        (true, false) => Some(AllNumbers::Set(&ordered)),
    };
    Response::Esearch(Esearch {
        tag,
        uid,
        min: min.copied().filter(|_| wants("MIN")),
        max: max.copied().filter(|_| wants("MAX")),
        count: wants("COUNT").then_some(numbers.len()),
        all: listed,
        modseq,
    })
    .encode(out);
}

fn uses_modseq(key: &SearchKey<'_>) -> bool {
    match key {
        SearchKey::ModSequence { .. } => true,
        SearchKey::And(keys) => keys.as_ref().iter().any(uses_modseq),
        SearchKey::Not(k) => uses_modseq(k),
        SearchKey::Or(a, b) => uses_modseq(a) || uses_modseq(b),
        _ => false,
    }
}

enum SearchError {
    Storage(StorageError),
    Unsupported(&'static str),
}

impl From<StorageError> for SearchError {
    fn from(e: StorageError) -> Self {
        Self::Storage(e)
    }
}

/// One message under test, with what was loaded for it so far.
struct Context<'s> {
    selected: &'s mut Selected,
    i: usize,
    header: Option<Vec<u8>>,
    /// The decoded text of the body parts, lowercased.
    text: Option<String>,
}

impl Context<'_> {
    fn info(&self) -> &MessageInfo {
        &self.selected.messages[self.i]
    }

    fn matches(&mut self, key: &SearchKey<'_>) -> Result<bool, SearchError> {
        let info = self.info().clone();
        let flag = |f: Flags| info.flags.contains(f);
        Ok(match key {
            SearchKey::And(keys) => {
                for k in keys.as_ref() {
                    if !self.matches(k)? {
                        return Ok(false);
                    }
                }
                true
            }
            SearchKey::Or(a, b) => self.matches(a)? || self.matches(b)?,
            SearchKey::Not(k) => !self.matches(k)?,
            SearchKey::All | SearchKey::Old => true,
            SearchKey::New | SearchKey::Recent => false,
            SearchKey::SequenceSet(set) => {
                contains(set, self.i as u32 + 1, self.selected.messages.len() as u32)
            }
            SearchKey::Uid(set) => {
                let largest = self.selected.messages.last().map_or(0, |m| m.uid);
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
            SearchKey::Keyword(k) => info
                .keywords
                .iter()
                .any(|x| x.eq_ignore_ascii_case(k.as_ref())),
            SearchKey::Unkeyword(k) => !info
                .keywords
                .iter()
                .any(|x| x.eq_ignore_ascii_case(k.as_ref())),
            SearchKey::Larger(n) => self.size()? > u64::from(*n),
            SearchKey::Smaller(n) => self.size()? < u64::from(*n),
            SearchKey::Before(d) => day(info.internal_date.into()) < *d.as_ref(),
            SearchKey::On(d) => day(info.internal_date.into()) == *d.as_ref(),
            SearchKey::Since(d) => day(info.internal_date.into()) >= *d.as_ref(),
            SearchKey::SentBefore(d) => self.sent()?.is_some_and(|s| s < *d.as_ref()),
            SearchKey::SentOn(d) => self.sent()?.is_some_and(|s| s == *d.as_ref()),
            SearchKey::SentSince(d) => self.sent()?.is_some_and(|s| s >= *d.as_ref()),
            SearchKey::From(s) => self.header_contains("From", s.as_ref())?,
            SearchKey::To(s) => self.header_contains("To", s.as_ref())?,
            SearchKey::Cc(s) => self.header_contains("Cc", s.as_ref())?,
            SearchKey::Bcc(s) => self.header_contains("Bcc", s.as_ref())?,
            SearchKey::Subject(s) => self.header_contains("Subject", s.as_ref())?,
            SearchKey::Header(name, value) => {
                let name = String::from_utf8_lossy(name.as_ref()).into_owned();
                self.header_contains(&name, value.as_ref())?
            }
            SearchKey::Body(s) => {
                let needle = lower(s.as_ref());
                self.body_text()?.contains(&needle)
            }
            SearchKey::Text(s) => {
                let needle = lower(s.as_ref());
                let header = lower(&self.header()?);
                header.contains(&needle) || self.body_text()?.contains(&needle)
            }
            SearchKey::ModSequence { modseq, .. } => info.modseq >= *modseq,
            #[allow(unreachable_patterns)]
            _ => return Err(SearchError::Unsupported("(extension)")),
        })
    }

    fn size(&mut self) -> Result<u64, StorageError> {
        let uid = self.info().uid;
        self.selected.mailbox.crlf_size(uid)
    }

    fn header(&mut self) -> Result<Vec<u8>, StorageError> {
        if let Some(h) = &self.header {
            return Ok(h.clone());
        }
        let uid = self.info().uid;
        let h = super::fetch::header_of(self.selected.mailbox.as_mut(), uid)?;
        self.header = Some(h.clone());
        Ok(h)
    }

    /// The Date header's day (UTC), if it has a readable one.
    fn sent(&mut self) -> Result<Option<ChronoDate>, StorageError> {
        let header = header_fields(&self.header()?, &[b"date"], false);
        let Some(message) = MessageParser::default().parse_headers(&header[..]) else {
            return Ok(None);
        };
        Ok(message
            .date()
            .and_then(|d| DateTime::<Utc>::from_timestamp(d.to_timestamp(), 0))
            .map(|d| d.date_naive()))
    }

    /// Whether any `name` field contains `needle` (case-insensitive, encoded words decoded);
    /// an empty needle asks whether the field exists.
    fn header_contains(&mut self, name: &str, needle: &[u8]) -> Result<bool, StorageError> {
        // Only the asked-for field is parsed: Received and DKIM fields cost more than the rest.
        let header = header_fields(&self.header()?, &[name.as_bytes()], false);
        let needle = lower(needle);
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
        let whole = super::fetch::whole_message_of(self.selected.mailbox.as_mut(), uid)?;
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

fn lower(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_lowercase()
}

fn day(time: DateTime<Utc>) -> ChronoDate {
    time.date_naive()
}

fn value_text(value: &HeaderValue<'_>) -> String {
    match value {
        HeaderValue::Text(t) => t.to_string(),
        HeaderValue::TextList(list) => list.join(" "),
        HeaderValue::Address(Address::List(list)) => list
            .iter()
            .map(|a| {
                format!(
                    "{} <{}>",
                    a.name.as_deref().unwrap_or(""),
                    a.address.as_deref().unwrap_or("")
                )
            })
            .collect::<Vec<_>>()
            .join(", "),
        HeaderValue::Address(Address::Group(groups)) => groups
            .iter()
            .flat_map(|g| g.addresses.iter())
            .map(|a| {
                format!(
                    "{} <{}>",
                    a.name.as_deref().unwrap_or(""),
                    a.address.as_deref().unwrap_or("")
                )
            })
            .collect::<Vec<_>>()
            .join(", "),
        _ => String::new(),
    }
}
