//! SORT and THREAD (RFC 5256: ORDEREDSUBJECT and REFERENCES), on the header block the field
//! cache keeps, so the second SORT of a big folder opens no message file; the headers are read
//! ahead a chunk of messages at a time, one read of the cache per chunk, not one per message.

use std::cmp::Ordering;

use roost_protocol::imap::imap_types::extensions::sort::{SortCriterion, SortKey};
use roost_protocol::imap::message::header_fields;
use roost_protocol::imap::response::Response;
use roost_protocol::mail_parser::{Address, HeaderValue, Message, MessageParser};
use roost_storage::{Error as StorageError, Uid};

use super::command::Sort;
use super::context::{Cx, Step};
use super::message::{header_of, Cached, Prefetch, PREFETCH_CHUNK};
use super::search::{esearch, find, number};
use super::selected::Selected;
use super::state::Account;

/// SORT (RFC 5256): the matching messages in the requested order, as `* SORT`, or as ESORT's
/// `* ESEARCH` when result options were given (RFC 5267).
pub fn sort_command(
    account: &Account<'_>,
    selected: &mut Selected,
    args: &Sort,
    cx: &mut Cx<'_>,
) -> Step {
    let hits = match find(account, selected, Some(&args.charset), &args.keys, cx) {
        Ok(hits) => hits,
        Err(refused) => return Step::Reply(refused),
    };
    let order = match sort(selected, &hits, &args.criteria) {
        Ok(order) => order,
        Err(e) => return Step::Reply(cx.failure(account.name(), &e)),
    };
    let numbers: Vec<u32> = order
        .iter()
        .map(|&i| number(selected, i, args.uid))
        .collect();
    match cx.extras.search_return.clone() {
        Some(options) => esearch(cx, args.uid, &numbers, &options, None, true),
        None => cx.send(Response::Sort(&numbers)),
    }
    Step::Reply(cx.ok("Sort completed."))
}

/// What sorting and threading need of one message, read from its cached header.
#[derive(Debug, Clone, Default)]
pub struct Fields {
    /// RFC 5256 base subject.
    pub subject: String,
    /// Sent date (Date header, else the internal date), seconds since the epoch.
    pub date: i64,
    /// First From / To / Cc mailbox, lowercased.
    pub from: String,
    /// First To mailbox.
    pub to: String,
    /// First Cc mailbox.
    pub cc: String,
    /// Display name of the first From (or its mailbox), lowercased.
    pub display_from: String,
    /// Display name of the first To (or its mailbox).
    pub display_to: String,
    /// Message-ID without brackets.
    pub message_id: Option<String>,
    /// References (or In-Reply-To) ids, oldest first.
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
    /// Fills in what the parsed header says.
    fn read(&mut self, message: &Message<'_>) {
        self.subject = base_subject(message.subject().unwrap_or(""));
        if let Some(d) = message.date() {
            self.date = d.to_timestamp();
        }
        if let Some((m, d)) = first_mailbox(message.from()) {
            self.from = m;
            self.display_from = d;
        }
        if let Some((m, d)) = first_mailbox(message.to()) {
            self.to = m;
            self.display_to = d;
        }
        if let Some((m, _)) = first_mailbox(message.cc()) {
            self.cc = m;
        }
        self.message_id = message.message_id().map(str::to_string);
        self.references = ids(message.references());
        if self.references.is_empty() {
            self.references = ids(message.in_reply_to()).into_iter().take(1).collect();
        }
    }
}

/// The first address's mailbox (local part, lowercased) and display name (or the address).
fn first_mailbox(a: Option<&Address<'_>>) -> Option<(String, String)> {
    a.and_then(|a| a.first()).map(|addr| {
        let mailbox = addr.address.as_deref().unwrap_or("").to_lowercase();
        let display = addr
            .name
            .as_deref()
            .filter(|n| !n.is_empty())
            .map(str::to_lowercase)
            .unwrap_or_else(|| mailbox.clone());
        (mailbox.split('@').next().unwrap_or("").to_string(), display)
    })
}

/// Message-IDs of References or In-Reply-To.
fn ids(v: &HeaderValue<'_>) -> Vec<String> {
    match v {
        HeaderValue::Text(t) => vec![t.to_string()],
        HeaderValue::TextList(l) => l.iter().map(|s| s.to_string()).collect(),
        _ => Vec::new(),
    }
}

/// RFC 5256 2.1 base subject: no `Re:`/`Fwd:`/`[list]` prefixes, no `(fwd)` trailer, one space
/// between words, lowercased for comparison. Every step cuts a slice of the subject, so a
/// subject of a million `Re: ` costs one pass, not one copy per prefix.
pub fn base_subject(subject: &str) -> String {
    let normalised = subject.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut s = normalised.as_str();
    loop {
        // (2) trailers
        s = s.trim_end();
        while let Some(rest) = strip_suffix_ignore_case(s, "(fwd)") {
            s = rest.trim_end();
        }
        // (3)-(5) leaders: `re:`, `fwd[blob]:`, and `[blob]` when something follows it
        loop {
            s = s.trim_start();
            if let Some(rest) = strip_refwd(s) {
                s = rest;
            } else if let Some(rest) = strip_blob(s).filter(|r| !r.trim_start().is_empty()) {
                s = rest;
            } else {
                break;
            }
        }
        // (6) a `[fwd: ...]` wrapper, then start over
        match strip_prefix_ignore_case(s, "[fwd:").and_then(|r| r.strip_suffix(']')) {
            Some(inner) => s = inner,
            None => return s.to_lowercase(),
        }
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.as_bytes().get(..prefix.len())?;
    // An ASCII prefix matched, so its length is a character boundary.
    head.eq_ignore_ascii_case(prefix.as_bytes())
        .then(|| &s[prefix.len()..])
}

fn strip_suffix_ignore_case<'a>(s: &'a str, suffix: &str) -> Option<&'a str> {
    let cut = s.len().checked_sub(suffix.len())?;
    let tail = s.as_bytes().get(cut..)?;
    (tail.eq_ignore_ascii_case(suffix.as_bytes()) && s.is_char_boundary(cut)).then(|| &s[..cut])
}

/// `subj-refwd`: `re`, `fw` or `fwd`, optional blanks and blob, then `:`.
fn strip_refwd(s: &str) -> Option<&str> {
    let rest = ["re", "fwd", "fw"]
        .iter()
        .find_map(|word| strip_prefix_ignore_case(s, word))?;
    let rest = rest.trim_start();
    let rest = strip_blob(rest).unwrap_or(rest);
    rest.strip_prefix(':')
}

/// `subj-blob`: `[` text without brackets `]`, and the blanks after it. The scan stops at the
/// first bracket, so a failed attempt never reads past the next `[`.
fn strip_blob(s: &str) -> Option<&str> {
    let inner = s.strip_prefix('[')?;
    let end = inner.find(['[', ']'])?;
    inner[end..].strip_prefix(']').map(str::trim_start)
}

/// The sort fields of every hit (THREAD), their headers read ahead a chunk at a time.
pub fn fields_of(
    selected: &mut Selected,
    hits: &[usize],
) -> Result<Vec<(usize, Fields)>, StorageError> {
    let mut prefetch = Prefetch::default();
    prefetch.add(Cached::Header);
    read_each(selected, hits, &mut prefetch, |selected, i| {
        Ok((i, fields(selected, i)?))
    })
}

/// Runs `each` over the messages `indexes`, a chunk at a time with the chunk's cached fields
/// read ahead; stops at the first error.
fn read_each<T>(
    selected: &mut Selected,
    indexes: &[usize],
    prefetch: &mut Prefetch,
    mut each: impl FnMut(&mut Selected, usize) -> Result<T, StorageError>,
) -> Result<Vec<T>, StorageError> {
    let mut all = Vec::with_capacity(indexes.len());
    let mut result = Ok(());
    for chunk in indexes.chunks(PREFETCH_CHUNK) {
        let uids: Vec<Uid> = chunk.iter().map(|&i| selected.uid(i)).collect();
        prefetch.chunk(&mut *selected.mailbox(), &uids);
        result = chunk
            .iter()
            .try_for_each(|&i| each(selected, i).map(|value| all.push(value)));
        if result.is_err() {
            break;
        }
    }
    prefetch.done(&mut *selected.mailbox());
    result.map(|()| all)
}

/// Sorts the indexes `hits` by the criteria (ties by sequence number, RFC 5256).
pub fn sort(
    selected: &mut Selected,
    hits: &[usize],
    criteria: &[SortCriterion],
) -> Result<Vec<usize>, StorageError> {
    let needs_header = criteria
        .iter()
        .any(|c| !matches!(c.key, SortKey::Arrival | SortKey::Size));
    let needs_size = criteria.iter().any(|c| matches!(c.key, SortKey::Size));
    let mut prefetch = Prefetch::default();
    if needs_header {
        prefetch.add(Cached::Header);
    }
    if needs_size {
        prefetch.add(Cached::Size);
    }
    let mut keyed = read_each(selected, hits, &mut prefetch, |selected, i| {
        let f = match needs_header {
            true => fields(selected, i)?,
            false => Fields::default(),
        };
        let size = match needs_size {
            true => {
                let uid = selected.uid(i);
                selected.mailbox().crlf_size(uid)?
            }
            false => 0,
        };
        let arrived = selected.info(i).internal_date;
        Ok((i, f, size, arrived))
    })?;
    keyed.sort_by(|a, b| {
        for c in criteria {
            let ord = match c.key {
                SortKey::Arrival => a.3.cmp(&b.3),
                SortKey::Size => a.2.cmp(&b.2),
                SortKey::Date => a.1.date.cmp(&b.1.date),
                SortKey::Subject => a.1.subject.cmp(&b.1.subject),
                SortKey::From => a.1.from.cmp(&b.1.from),
                SortKey::To => a.1.to.cmp(&b.1.to),
                SortKey::Cc => a.1.cc.cmp(&b.1.cc),
                SortKey::DisplayFrom => a.1.display_from.cmp(&b.1.display_from),
                SortKey::DisplayTo => a.1.display_to.cmp(&b.1.display_to),
            };
            let ord = if c.reverse { ord.reverse() } else { ord };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        a.0.cmp(&b.0)
    });
    Ok(keyed.into_iter().map(|(i, _, _, _)| i).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_subjects_drop_reply_and_list_prefixes() {
        assert_eq!(
            base_subject("Re: Fwd: [list] Hello  world (fwd)"),
            "hello world"
        );
        assert_eq!(base_subject("RE[2]: hi"), "hi");
        assert_eq!(base_subject("[Fwd: report]"), "report");
        assert_eq!(base_subject("[only]"), "[only]");
        assert_eq!(base_subject("Plain"), "plain");
        assert_eq!(base_subject("[fwd: Re: [a] x (FWD)]"), "x");
        assert_eq!(base_subject("fw: Ré: é"), "ré: é");
        assert_eq!(base_subject("Re (fwd)"), "re");
    }

    #[test]
    fn base_subject_is_linear_in_the_number_of_prefixes() {
        // Quadratic stripping took minutes on these; each is one pass now.
        let replies = "Re: ".repeat(250_000) + "end";
        assert_eq!(base_subject(&replies), "end");
        let wrapped = "[fwd: ".repeat(100_000) + "end" + &"]".repeat(100_000);
        assert_eq!(base_subject(&wrapped), "end");
        let trailers = "end".to_string() + &" (fwd)".repeat(150_000);
        assert_eq!(base_subject(&trailers), "end");
        let open = "[".repeat(200_000) + "x";
        assert_eq!(base_subject(&open), open);
    }
}
