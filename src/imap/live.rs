//! Live search results (RFC 5267 CONTEXT=SEARCH and CONTEXT=SORT): after `SEARCH RETURN
//! (UPDATE)` or `SORT RETURN (UPDATE)`, the session keeps the result and, whenever the mailbox
//! changes, tells the client how it changed with `ESEARCH ... ADDTO` and `REMOVEFROM`, until
//! CANCELUPDATE or the mailbox is closed.
//!
//! A result is kept as UIDs in the requested order (mailbox order for SEARCH, sort order for
//! SORT). An expunged message is taken out before its EXPUNGE goes out, so the numbers in the
//! REMOVEFROM are still valid; anything else (flag changes, new mail) is found by running the
//! search again when the shared mailbox moved, and the difference is sent after the EXISTS and
//! FETCH responses. A session keeps at most [`MAX_LIVE`] of them.

use std::collections::BTreeSet;

use roost_protocol::imap::imap_types::extensions::sort::SortCriterion;
use roost_protocol::imap::imap_types::search::SearchKey;
use roost_protocol::imap::response::{ContextUpdate, Response};
use roost_storage::Uid;

use super::selected::Selected;

/// How many live results one session may keep; more get `NOUPDATE`.
pub const MAX_LIVE: usize = 8;

/// One search the client asked to keep current.
pub struct LiveSearch {
    /// The tag of the command that asked.
    pub tag: String,
    /// UID SEARCH / UID SORT: updates name UIDs, else sequence numbers.
    pub uid: bool,
    /// The search program.
    pub criteria: Vec<SearchKey<'static>>,
    /// The sort order for SORT; `None` for SEARCH (mailbox order, positions 0).
    pub order: Option<Vec<SortCriterion>>,
    /// The result as the client has it, in the requested order.
    pub results: Vec<Uid>,
}

/// Why a new live search cannot be kept.
pub enum Refusal {
    /// The tag is already that of a live search (RFC 5267 4.3: BAD).
    TagInUse,
    /// The session keeps as many as it may (untagged `NO [NOUPDATE]`).
    TooMany,
}

/// Starts keeping a search's result current.
pub fn start(selected: &mut Selected, search: LiveSearch) -> Result<(), Refusal> {
    if selected.live.iter().any(|l| l.tag == search.tag) {
        return Err(Refusal::TagInUse);
    }
    if selected.live.len() >= MAX_LIVE {
        return Err(Refusal::TooMany);
    }
    if selected.live.is_empty() {
        selected.live_mark = selected.view.change_mark();
    }
    selected.live.push(search);
    Ok(())
}

/// Whether `tag` names a live search (a new UPDATE with that tag is refused).
pub fn tag_in_use(selected: &Selected, tag: &str) -> bool {
    selected.live.iter().any(|l| l.tag == tag)
}

/// CANCELUPDATE: stops the live searches of these tags.
pub fn cancel(selected: &mut Selected, tags: &[String]) {
    selected.live.retain(|l| !tags.contains(&l.tag));
}

/// Before the EXPUNGE responses for `expunged` (`(sequence number, UID)` as the client knows
/// them now): REMOVEFROM for each live result that held one of them.
pub fn report_expunged(selected: &mut Selected, expunged: &[(u32, Uid)], out: &mut Vec<u8>) {
    if selected.live.is_empty() || expunged.is_empty() {
        return;
    }
    let gone: std::collections::BTreeMap<Uid, u32> =
        expunged.iter().map(|&(seq, uid)| (uid, seq)).collect();
    for live in &mut selected.live {
        let number = |uid: Uid| match live.uid {
            true => uid,
            false => gone.get(&uid).copied().unwrap_or(0),
        };
        let mut pairs = Vec::new();
        match live.order {
            None => {
                let mut numbers: Vec<u32> = live
                    .results
                    .iter()
                    .filter(|u| gone.contains_key(u))
                    .map(|&u| number(u))
                    .collect();
                numbers.sort_unstable();
                if !numbers.is_empty() {
                    pairs.push((0, numbers));
                }
            }
            Some(_) => {
                // From the end, so each position is right when the client reaches it.
                for (i, uid) in live.results.iter().enumerate().rev() {
                    if gone.contains_key(uid) {
                        pairs.push((i as u32 + 1, vec![number(*uid)]));
                    }
                }
            }
        }
        live.results.retain(|u| !gone.contains_key(u));
        send(out, live, false, &pairs);
    }
}

/// After the other updates: runs every live search again if the mailbox moved since the
/// last look, and sends what entered or left each result.
pub fn report_changes(selected: &mut Selected, out: &mut Vec<u8>) {
    if selected.live.is_empty() {
        return;
    }
    let mark = selected.view.change_mark();
    if mark == selected.live_mark {
        return;
    }
    selected.live_mark = mark;
    let mut lives = std::mem::take(&mut selected.live);
    for live in &mut lives {
        let Ok(hits) = super::search::matching(selected, &live.criteria) else {
            continue;
        };
        let ordered = match &live.order {
            Some(order) => super::sort::sort(selected, &hits, order).unwrap_or(hits),
            None => hits,
        };
        let now: Vec<Uid> = ordered.iter().map(|&i| selected.uid(i)).collect();
        report_difference(selected, live, now, out);
    }
    selected.live = lives;
}

/// REMOVEFROM what left the result, then ADDTO what entered it, and keeps the new result.
fn report_difference(selected: &Selected, live: &mut LiveSearch, now: Vec<Uid>, out: &mut Vec<u8>) {
    let before: BTreeSet<Uid> = live.results.iter().copied().collect();
    let after: BTreeSet<Uid> = now.iter().copied().collect();
    let number = |uid: Uid| match live.uid {
        true => uid,
        false => selected.view.index_of(uid).map_or(0, |i| i as u32 + 1),
    };
    let mut removed = Vec::new();
    let mut added: Vec<(u32, Vec<u32>)> = Vec::new();
    match live.order {
        None => {
            let gone: Vec<u32> = live
                .results
                .iter()
                .filter(|u| !after.contains(u))
                .map(|&u| number(u))
                .collect();
            if !gone.is_empty() {
                removed.push((0, gone));
            }
            let new: Vec<u32> = now
                .iter()
                .filter(|u| !before.contains(u))
                .map(|&u| number(u))
                .collect();
            if !new.is_empty() {
                added.push((0, new));
            }
        }
        Some(_) => {
            for (i, uid) in live.results.iter().enumerate().rev() {
                if !after.contains(uid) {
                    removed.push((i as u32 + 1, vec![number(*uid)]));
                }
            }
            // In ascending positions of the new order: once the removals are made, what
            // stayed keeps its relative order, so each insertion lands where it belongs.
            for (i, uid) in now.iter().enumerate() {
                if before.contains(uid) {
                    continue;
                }
                let position = i as u32 + 1;
                match added.last_mut() {
                    Some((at, run)) if *at + run.len() as u32 == position => run.push(number(*uid)),
                    _ => added.push((position, vec![number(*uid)])),
                }
            }
        }
    }
    send(out, live, false, &removed);
    send(out, live, true, &added);
    live.results = now;
}

fn send(out: &mut Vec<u8>, live: &LiveSearch, added: bool, pairs: &[(u32, Vec<u32>)]) {
    if pairs.is_empty() {
        return;
    }
    Response::SearchUpdate(ContextUpdate {
        tag: &live.tag,
        uid: live.uid,
        added,
        pairs,
    })
    .encode(out);
}
