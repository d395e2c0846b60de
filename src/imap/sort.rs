//! SORT and THREAD (RFC 5256: ORDEREDSUBJECT and REFERENCES), on the header block the field
//! cache keeps, so the second SORT of a big folder opens no message file; the headers are read
//! ahead a chunk of messages at a time, one read of the cache per chunk, not one per message.

mod collate;
mod fields;
mod message_id;
mod subject;

use std::cmp::Ordering;
use std::time::SystemTime;

use roost_protocol::imap::imap_types::extensions::sort::{SortCriterion, SortKey};
use roost_protocol::imap::response::Response;
use roost_storage::{Error as StorageError, Uid};

use super::command::Sort;
use super::context::{Cx, Step};
use super::message::{Cached, Prefetch, PREFETCH_CHUNK};
use super::search::{esearch, find, keep_current, number, result_options, uses_modseq};
use super::selected::Selected;
use super::state::Account;

pub use fields::{fields, Fields};

/// SORT (RFC 5256): the matching messages in the requested order, as `* SORT`, or as ESORT's
/// `* ESEARCH` when result options were given (RFC 5267). A MODSEQ search key turns CONDSTORE
/// on and adds the highest mod-sequence of the matches, as SEARCH does (RFC 7162 3.1.5).
pub fn sort_command(
    account: &mut Account<'_>,
    selected: &mut Selected,
    args: &Sort,
    cx: &mut Cx<'_>,
) -> Step {
    let returns = cx.extras.search_return.clone();
    let (returns, update) = match result_options(selected, cx, returns) {
        Ok(checked) => checked,
        Err(refused) => return Step::Reply(refused),
    };
    let hits = match find(account, selected, Some(&args.charset), &args.keys, cx) {
        Ok(hits) => hits,
        Err(refused) => return Step::Reply(refused),
    };
    let order = match sort(selected, &hits, &args.criteria) {
        Ok(order) => order,
        Err(e) => return Step::Reply(cx.failure(account.name(), &e)),
    };
    if update {
        let results = order.iter().map(|&i| selected.uid(i)).collect();
        let criteria = Some(args.criteria.clone());
        keep_current(selected, cx, args.uid, &args.keys, criteria, results);
    }
    let numbers: Vec<u32> = order
        .iter()
        .map(|&i| number(selected, i, args.uid))
        .collect();
    let modseq_used = args.keys.iter().any(uses_modseq);
    let enabled_now = modseq_used && account.enable_condstore();
    let modseq = match modseq_used {
        true => hits.iter().map(|&i| selected.view.modseq(i)).max(),
        false => None,
    };
    match returns {
        Some(options) => esearch(cx, args.uid, &numbers, &options, modseq, true),
        None => cx.send(Response::Sort {
            numbers: &numbers,
            modseq,
        }),
    }
    Step::Reply(cx.ok_condstore(enabled_now, selected, "Sort completed."))
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
        let fields = match needs_header {
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
        Ok(Keyed {
            index: i,
            fields,
            size,
            arrived,
        })
    })?;
    keyed.sort_by(|a, b| compare(a, b, criteria));
    Ok(keyed.into_iter().map(|k| k.index).collect())
}

/// One message's sort keys.
#[derive(Debug)]
struct Keyed {
    /// The message's index (its sequence number less one), the final tie-break.
    index: usize,
    fields: Fields,
    /// RFC822.SIZE.
    size: u64,
    /// The internal date (ARRIVAL).
    arrived: SystemTime,
}

/// RFC 5256 order: each criterion in turn, REVERSE turning only its own key around; equal
/// under all of them, the lower sequence number first (never reversed).
fn compare(a: &Keyed, b: &Keyed, criteria: &[SortCriterion]) -> Ordering {
    let (x, y) = (&a.fields, &b.fields);
    for c in criteria {
        let ord = match c.key {
            SortKey::Arrival => a.arrived.cmp(&b.arrived),
            SortKey::Size => a.size.cmp(&b.size),
            SortKey::Date => x.date.cmp(&y.date),
            SortKey::Subject => x.subject.cmp(&y.subject),
            SortKey::From => x.from.cmp(&y.from),
            SortKey::To => x.to.cmp(&y.to),
            SortKey::Cc => x.cc.cmp(&y.cc),
            SortKey::DisplayFrom => x.display_from.cmp(&y.display_from),
            SortKey::DisplayTo => x.display_to.cmp(&y.display_to),
        };
        let ord = if c.reverse { ord.reverse() } else { ord };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    a.index.cmp(&b.index)
}

#[cfg(test)]
mod tests {
    use roost_protocol::imap::imap_types::extensions::sort::{SortCriterion, SortKey};

    use super::*;

    #[test]
    fn reverse_turns_one_key_and_never_the_sequence_tie_break() {
        let keyed = |index: usize, subject: &str, date: i64| {
            let mut fields = Fields {
                date,
                ..Fields::default()
            };
            fields.set_subject(subject);
            Keyed {
                index,
                fields,
                size: 0,
                arrived: SystemTime::UNIX_EPOCH,
            }
        };
        let mut all = vec![
            keyed(0, "b", 2),
            keyed(1, "a", 2),
            keyed(2, "b", 1),
            keyed(3, "a", 2),
        ];
        let by = |reverse, key| SortCriterion { reverse, key };
        let order = |all: &mut Vec<Keyed>, criteria: &[SortCriterion]| {
            all.sort_by(|a, b| compare(a, b, criteria));
            all.iter().map(|k| k.index).collect::<Vec<_>>()
        };
        let reverse_subject = [by(true, SortKey::Subject), by(false, SortKey::Date)];
        assert_eq!(order(&mut all, &reverse_subject), [2, 0, 1, 3]);
        assert_eq!(order(&mut all, &[by(true, SortKey::Date)]), [0, 1, 3, 2]);
        assert_eq!(order(&mut all, &[by(true, SortKey::Size)]), [0, 1, 2, 3]);
    }
}
