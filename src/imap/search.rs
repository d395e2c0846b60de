//! SEARCH (RFC 3501 6.4.4) with every RFC 3501 key, MODSEQ (RFC 7162), ESEARCH result
//! options (RFC 4731) and the saved result (RFC 5182). Which messages match is decided in
//! [`super::search_key`]; the header blocks and sizes the criteria read are read ahead from
//! the field cache a chunk of messages at a time.

use roost_protocol::imap::imap_types::core::Charset;
use roost_protocol::imap::imap_types::extensions::sort::SortCriterion;
use roost_protocol::imap::imap_types::search::SearchKey;
use roost_protocol::imap::response::{AllNumbers, Code, Esearch, Response};
use roost_storage::{Error as StorageError, Uid};

use super::command::Search;
use super::context::{Cx, Step};
use super::live::{self, LiveSearch};
use super::message::{Cached, Prefetch, PREFETCH_CHUNK};
use super::reply::Tagged;
use super::search_key::{Candidate, SearchError};
use super::selected::Selected;
use super::state::Account;

/// Runs SEARCH: `* SEARCH ...`, or `* ESEARCH ...` when the client asked for result options
/// (IMAP4rev2 answers every SEARCH with ESEARCH, RFC 9051 7.3.4). A MODSEQ key turns
/// CONDSTORE on (RFC 7162 3.1) and adds the highest mod-sequence of the matches.
pub fn search(
    account: &mut Account<'_>,
    selected: &mut Selected,
    args: &Search,
    cx: &mut Cx<'_>,
) -> Step {
    let returns = cx
        .extras
        .search_return
        .clone()
        .or_else(|| account.enabled.rev2.then(Vec::new));
    let (returns, update) = match result_options(selected, cx, returns) {
        Ok(checked) => checked,
        Err(refused) => return Step::Reply(refused),
    };
    let hits = match find(account, selected, args.charset.as_ref(), &args.criteria, cx) {
        Ok(hits) => hits,
        Err(refused) => return Step::Reply(refused),
    };
    let numbers: Vec<u32> = hits
        .iter()
        .map(|&i| number(selected, i, args.uid))
        .collect();
    let uses_modseq = args.criteria.iter().any(uses_modseq);
    let enabled_condstore = uses_modseq && account.enable_condstore();
    let highest = hits.iter().map(|&i| selected.view.modseq(i)).max();
    let modseq = highest.filter(|_| uses_modseq);
    let done = |cx: &Cx<'_>, selected: &Selected, text| {
        Step::Reply(cx.ok_condstore(enabled_condstore, selected, text))
    };
    if update {
        let results = hits.iter().map(|&i| selected.uid(i)).collect();
        keep_current(selected, cx, args.uid, &args.criteria, None, results);
    }
    let Some(mut options) = returns else {
        cx.send(Response::Search {
            numbers: &numbers,
            modseq,
        });
        return done(cx, selected, "Search completed.");
    };
    // SAVE keeps the result for `$` (RFC 5182); alone, it asks for no ESEARCH response.
    if options.iter().any(|o| o == "SAVE") {
        selected.saved = hits.iter().map(|&i| selected.uid(i)).collect();
        options.retain(|o| o != "SAVE");
        if options.is_empty() {
            return done(cx, selected, "Search completed; result saved.");
        }
    }
    esearch(cx, args.uid, &numbers, &options, modseq, false);
    done(cx, selected, "Search completed.")
}

/// The result options of a SEARCH or SORT, checked (`Err`: the BAD), without UPDATE and
/// CONTEXT; the flag says whether UPDATE was among them.
pub fn result_options(
    selected: &Selected,
    cx: &Cx<'_>,
    returns: Option<Vec<String>>,
) -> Result<(Option<Vec<String>>, bool), Tagged> {
    if let Some(why) = returns.as_deref().and_then(refused_options) {
        return Err(cx.bad(why));
    }
    let update = returns
        .as_ref()
        .is_some_and(|o| o.iter().any(|x| x == "UPDATE"));
    if update && live::tag_in_use(selected, &cx.tag) {
        return Err(cx.bad("Tag reuse: that tag already names a search kept current."));
    }
    let returns = returns.map(|mut options| {
        // CONTEXT is a hint; UPDATE asks for later updates, not for anything now.
        options.retain(|o| o != "UPDATE" && o != "CONTEXT");
        options
    });
    Ok((returns, update))
}

/// Starts keeping a result current (RFC 5267 UPDATE), or says `* NO [NOUPDATE]` when the
/// session keeps as many as it may.
pub fn keep_current(
    selected: &mut Selected,
    cx: &mut Cx<'_>,
    uid: bool,
    criteria: &[SearchKey<'static>],
    order: Option<Vec<SortCriterion>>,
    results: Vec<Uid>,
) {
    let search = LiveSearch {
        tag: cx.tag.clone(),
        uid,
        criteria: criteria.to_vec(),
        order,
        results,
    };
    if let Err(live::Refusal::TooMany) = live::start(selected, search) {
        let tag = cx.tag.clone();
        cx.send(Response::No {
            code: Some(Code::NoUpdate(&tag)),
            text: "Too many searches kept current; cancel one first.",
        });
    }
}

/// The number the client knows message `i` by: its UID, or its sequence number.
pub fn number(selected: &Selected, i: usize, uid: bool) -> u32 {
    match uid {
        true => selected.uid(i),
        false => i as u32 + 1,
    }
}

/// The indexes of the messages matching every criterion (SEARCH, SORT, THREAD); `Err` is the
/// tagged answer for a search that cannot run.
pub fn find(
    account: &Account<'_>,
    selected: &mut Selected,
    charset: Option<&Charset<'_>>,
    criteria: &[SearchKey<'_>],
    cx: &Cx<'_>,
) -> Result<Vec<usize>, Tagged> {
    if let Some(charset) = charset {
        let name = charset.as_ref().to_ascii_uppercase();
        if name != "UTF-8" && name != "US-ASCII" {
            return Err(cx.no(
                Some(Code::BadCharset(&["UTF-8", "US-ASCII"])),
                "Only UTF-8 and US-ASCII searches are supported.",
            ));
        }
    }
    match matching(selected, criteria) {
        Ok(hits) => Ok(hits),
        Err(SearchError::Storage(e)) => Err(cx.failure(account.name(), &e)),
        Err(SearchError::Unsupported(what)) => {
            Err(cx.bad(&format!("Search key {what} is not supported.")))
        }
    }
}

/// The indexes of the messages matching every criterion, a chunk of messages at a time with
/// the cached fields the criteria read planned ahead (a chunk's span is read only if a
/// message in it needs its header or size).
pub(super) fn matching(
    selected: &mut Selected,
    criteria: &[SearchKey<'_>],
) -> Result<Vec<usize>, SearchError> {
    let mut prefetch = prefetch_for(criteria);
    let mut hits = Vec::new();
    let mut result = Ok(());
    let count = selected.len();
    for start in (0..count).step_by(PREFETCH_CHUNK) {
        let chunk = start..count.min(start + PREFETCH_CHUNK);
        let uids: Vec<Uid> = chunk.clone().map(|i| selected.uid(i)).collect();
        prefetch.chunk(&mut *selected.mailbox(), &uids);
        result = chunk.into_iter().try_for_each(|i| {
            match Candidate::new(selected, i).matches_all(criteria) {
                Ok(true) => hits.push(i),
                Ok(false) | Err(SearchError::Storage(StorageError::NoSuchMessage(_))) => {}
                Err(e) => return Err(e),
            }
            Ok(())
        });
        if result.is_err() {
            break;
        }
    }
    prefetch.done(&mut *selected.mailbox());
    result.map(|()| hits)
}

/// The cached fields the criteria may read: the header for header and sent-date keys, the
/// size for LARGER and SMALLER (walked with a stack, not recursion: nesting is the client's).
fn prefetch_for(criteria: &[SearchKey<'_>]) -> Prefetch {
    let mut prefetch = Prefetch::default();
    let mut keys: Vec<&SearchKey<'_>> = criteria.iter().collect();
    while let Some(key) = keys.pop() {
        match key {
            SearchKey::And(and) => keys.extend(and.as_ref().iter()),
            SearchKey::Or(a, b) => keys.extend([a.as_ref(), b.as_ref()]),
            SearchKey::Not(k) => keys.push(k),
            SearchKey::Larger(_) | SearchKey::Smaller(_) => prefetch.add(Cached::Size),
            SearchKey::SentBefore(_)
            | SearchKey::SentOn(_)
            | SearchKey::SentSince(_)
            | SearchKey::From(_)
            | SearchKey::To(_)
            | SearchKey::Cc(_)
            | SearchKey::Bcc(_)
            | SearchKey::Subject(_)
            | SearchKey::Header(..)
            | SearchKey::Text(_) => prefetch.add(Cached::Header),
            _ => {}
        }
    }
    prefetch
}

/// `* ESEARCH (TAG "a") UID MIN 1 MAX 9 COUNT 4 ALL 1:3,9` (RFC 4731; `sorted` keeps the given
/// order for ESORT, RFC 5267).
pub fn esearch(
    cx: &mut Cx<'_>,
    uid: bool,
    numbers: &[u32],
    options: &[String],
    modseq: Option<u64>,
    sorted: bool,
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
    let in_order = if sorted { numbers } else { &ordered[..] };
    let partial = partial_range(options).map(|(range, positions)| {
        let at = positions.resolve(in_order.len());
        let slice = &in_order[at];
        let listed = match sorted {
            true => AllNumbers::Ordered(slice),
            false => AllNumbers::Set(slice),
        };
        (range, listed)
    });
    let response = Response::Esearch(Esearch {
        tag: &cx.tag,
        uid,
        min: min.copied().filter(|_| wants("MIN")),
        max: max.copied().filter(|_| wants("MAX")),
        count: wants("COUNT").then_some(numbers.len()),
        all: listed,
        modseq,
        partial,
    });
    response.encode(&mut cx.out);
}

/// A PARTIAL range (RFC 9394): positions `first..=last` counted from 1 at the start of the
/// result, or from -1 at its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Positions {
    first: i64,
    last: i64,
}

impl Positions {
    /// Reads `low:high` (both positive or both negative, never 0, either order).
    pub fn parse(range: &str) -> Option<Self> {
        let (a, b) = range.split_once(':')?;
        let (a, b): (i64, i64) = (a.parse().ok()?, b.parse().ok()?);
        let valid = a != 0 && b != 0 && (a > 0) == (b > 0) && a.abs() <= u32::MAX as i64;
        (valid && b.abs() <= u32::MAX as i64).then(|| Self {
            first: a.min(b),
            last: a.max(b),
        })
    }

    /// The indexes of a result of `len` these positions name (clamped to the result).
    pub fn resolve(self, len: usize) -> std::ops::Range<usize> {
        let len = len as i64;
        let (from, to) = if self.first > 0 {
            (self.first - 1, self.last)
        } else {
            (len + self.first, len + self.last + 1)
        };
        let clamp = |n: i64| n.clamp(0, len) as usize;
        clamp(from)..clamp(to).max(clamp(from))
    }
}

/// The `PARTIAL low:high` among the result options, if any: the range as written and what it
/// names.
pub fn partial_range(options: &[String]) -> Option<(&str, Positions)> {
    let at = options.iter().position(|o| o == "PARTIAL")?;
    let range = options.get(at + 1)?;
    Some((range.as_str(), Positions::parse(range)?))
}

/// Why a set of result options cannot be answered (RFC 4731, RFC 9394), if it cannot.
pub fn refused_options(options: &[String]) -> Option<&'static str> {
    let mut words = options.iter();
    while let Some(option) = words.next() {
        match option.as_str() {
            "MIN" | "MAX" | "COUNT" | "ALL" | "SAVE" | "UPDATE" | "CONTEXT" => {}
            "PARTIAL" => match words.next().and_then(|r| Positions::parse(r)) {
                Some(_) => {}
                None => return Some("PARTIAL needs a range such as 1:100 or -1:-100."),
            },
            _ => return Some("Unknown search result option."),
        }
    }
    let has = |o: &str| options.iter().any(|x| x == o);
    (has("PARTIAL") && has("ALL")).then_some("PARTIAL and ALL cannot be combined.")
}

/// Whether a search key uses MODSEQ anywhere in it (which turns CONDSTORE on, RFC 7162 3.1),
/// for SEARCH and SORT; walked with a stack, not recursion: nesting is the client's.
pub fn uses_modseq(key: &SearchKey<'_>) -> bool {
    let mut keys = vec![key];
    while let Some(key) = keys.pop() {
        match key {
            SearchKey::ModSequence { .. } => return true,
            SearchKey::And(and) => keys.extend(and.as_ref().iter()),
            SearchKey::Or(a, b) => keys.extend([a.as_ref(), b.as_ref()]),
            SearchKey::Not(k) => keys.push(k),
            _ => {}
        }
    }
    false
}
