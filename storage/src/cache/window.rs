//! Records read ahead for a whole FETCH, SEARCH or SORT set: the records wanted are sorted by
//! where they lie and grouped in as few spans as their gaps allow (one, when they lie together,
//! as the records of one earlier FETCH do), so serving 50 messages' fields costs one read of
//! the file, not one per value. A span is read when a value in it is first asked for, so a
//! SEARCH that plans the headers of a whole folder and needs a few reads only their spans.

use std::collections::VecDeque;

/// Records this close are read in one span; the bytes between them are read and dropped.
const MAX_GAP: u64 = 64 * 1024;
/// The most a window holds; records beyond it are read one by one when asked for.
const MAX_BYTES: u64 = 8 << 20;

/// Spans of the cache file planned, each read on first use; sorted by offset and disjoint.
#[derive(Debug, Default)]
pub(super) struct Window {
    spans: Vec<Span>,
}

/// One span of the file: where, how long, and its bytes once read (empty if that failed).
#[derive(Debug)]
struct Span {
    at: u64,
    len: u64,
    bytes: Option<Vec<u8>>,
}

impl Window {
    /// A window of spans for these records (`(offset, length)` each, in any order), none
    /// read yet.
    pub fn planned(records: Vec<(u64, u64)>) -> Self {
        let spans = Self::plan(records)
            .into_iter()
            .map(|(at, len)| Span {
                at,
                len,
                bytes: None,
            })
            .collect();
        Self { spans }
    }

    /// The spans to read for these records (`(offset, length)` each, in any order): nearby
    /// records are merged, and no more than [`MAX_BYTES`] is planned in all.
    fn plan(mut records: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
        records.sort_unstable();
        let mut spans: Vec<(u64, u64)> = Vec::new();
        let mut total = 0u64;
        for (at, len) in records {
            let end = at.saturating_add(len);
            let joins = |span_end: u64| at <= span_end.saturating_add(MAX_GAP);
            let grows_by = match spans.last() {
                Some(&(_, span_end)) if joins(span_end) => end.saturating_sub(span_end),
                _ => len,
            };
            if total.saturating_add(grows_by) > MAX_BYTES {
                break;
            }
            total += grows_by;
            match spans.last_mut() {
                Some((_, span_end)) if joins(*span_end) => *span_end = end.max(*span_end),
                _ => spans.push((at, end)),
            }
        }
        spans
            .into_iter()
            .map(|(start, end)| (start, end - start))
            .collect()
    }

    /// Whether one planned span holds all of `at..at + len`.
    fn covers(&self, at: u64, len: u64) -> bool {
        let i = self.spans.partition_point(|span| span.at <= at);
        i.checked_sub(1)
            .and_then(|i| self.spans.get(i))
            .is_some_and(|span| at - span.at + len <= span.len)
    }

    /// The bytes the plan reads in all.
    fn planned_bytes(&self) -> u64 {
        self.spans.iter().map(|span| span.len).sum()
    }

    /// The bytes at `at..at + len`, if one planned span holds all of them; the span is read
    /// with `read` (offset, length) the first time.
    pub fn slice(
        &mut self,
        at: u64,
        len: u64,
        read: impl FnOnce(u64, u64) -> Option<Vec<u8>>,
    ) -> Option<&[u8]> {
        let i = self.spans.partition_point(|span| span.at <= at);
        let span = self.spans.get_mut(i.checked_sub(1)?)?;
        let from = usize::try_from(at - span.at).ok()?;
        let to = from.checked_add(usize::try_from(len).ok()?)?;
        if to as u64 > span.len {
            return None;
        }
        let bytes = span
            .bytes
            .get_or_insert_with(|| read(span.at, span.len).unwrap_or_default());
        bytes.get(from..to)
    }
}

/// How many sessions' plans one cache keeps at once (the oldest go first).
const MAX_PLANS: usize = 64;

/// The read-ahead plans of the sessions that use one cache at the same time, each its own, so
/// one session's FETCH does not throw away another's read-ahead (the sessions of one process
/// share the mailbox and its cache).
#[derive(Debug, Default)]
pub(super) struct Plans {
    next: u64,
    plans: VecDeque<(u64, Window)>,
}

impl Plans {
    /// Adds a plan; returns its number for [`Plans::remove`]. The oldest plans go when there
    /// are too many or they would read more than [`MAX_BYTES`] between them.
    pub fn add(&mut self, window: Window) -> u64 {
        self.next += 1;
        self.plans.push_back((self.next, window));
        while self.plans.len() > MAX_PLANS || self.planned_bytes() > MAX_BYTES {
            if self.plans.len() == 1 {
                break;
            }
            self.plans.pop_front();
        }
        self.next
    }

    /// Drops plan `id` (its command is done).
    pub fn remove(&mut self, id: u64) {
        self.plans.retain(|(plan, _)| *plan != id);
    }

    fn planned_bytes(&self) -> u64 {
        self.plans.iter().map(|(_, w)| w.planned_bytes()).sum()
    }

    /// The bytes at `at..at + len` from the newest plan that holds them all (see
    /// [`Window::slice`]).
    pub fn slice(
        &mut self,
        at: u64,
        len: u64,
        read: impl FnOnce(u64, u64) -> Option<Vec<u8>>,
    ) -> Option<&[u8]> {
        let (_, window) = self
            .plans
            .iter_mut()
            .rev()
            .find(|(_, window)| window.covers(at, len))?;
        window.slice(at, len, read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearby_records_make_one_span_and_far_ones_another() {
        let records = vec![(300, 50), (100, 100), (200, 100), (1_000_000, 10)];
        assert_eq!(Window::plan(records), vec![(100, 250), (1_000_000, 10)]);
        let overlapping = vec![(100, 100), (150, 10)];
        assert_eq!(Window::plan(overlapping), vec![(100, 100)]);
        assert_eq!(Window::plan(Vec::new()), vec![]);
    }

    #[test]
    fn a_plan_stops_at_its_byte_budget() {
        let records: Vec<(u64, u64)> = (0..100).map(|n| (n * (1 << 20), 1 << 20)).collect();
        let planned = Window::plan(records);
        let total: u64 = planned.iter().map(|(_, len)| len).sum();
        assert!(total <= MAX_BYTES, "{total}");
        assert_eq!(total, MAX_BYTES);
    }

    #[test]
    fn each_session_keeps_its_own_plan() {
        let mut plans = Plans::default();
        let read = |at: u64, len: u64| Some((0..len).map(|n| (at + n) as u8).collect());
        let mine = plans.add(Window::planned(vec![(100, 50)]));
        let theirs = plans.add(Window::planned(vec![(1_000, 50)]));
        assert_eq!(
            plans.slice(100, 2, read),
            Some(&[100, 101][..]),
            "mine survives theirs"
        );
        assert_eq!(plans.slice(1_000, 1, read), Some(&[232][..]));
        plans.remove(mine);
        assert_eq!(plans.slice(100, 2, read), None);
        plans.remove(theirs);
        assert!(plans.plans.is_empty());
    }

    #[test]
    fn a_span_is_read_once_and_only_when_used() {
        let mut window = Window::planned(vec![(100, 50), (150, 50), (1_000_000, 10)]);
        let mut reads = Vec::new();
        let mut read = |at: u64, len: u64| {
            reads.push((at, len));
            Some((0..len).map(|n| (at + n) as u8).collect::<Vec<u8>>())
        };
        assert_eq!(window.slice(110, 3, &mut read), Some(&[110, 111, 112][..]));
        assert_eq!(window.slice(150, 2, &mut read), Some(&[150, 151][..]));
        assert_eq!(window.slice(190, 20, &mut read), None, "runs past the span");
        assert_eq!(window.slice(50, 10, &mut read), None, "before any span");
        assert_eq!(reads, vec![(100, 100)], "one read, the far span never");
        let mut failing = Window::planned(vec![(100, 50)]);
        assert_eq!(failing.slice(100, 50, |_, _| None), None);
        assert_eq!(failing.slice(100, 50, |_, _| panic!("read again")), None);
    }
}
