//! Records read ahead for a whole FETCH, SEARCH or SORT set: the records wanted are sorted by
//! where they lie and read in as few spans as their gaps allow (one, when they lie together,
//! as the records of one earlier FETCH do), so serving 50 messages' fields costs one read of
//! the file, not one per value.

/// Records this close are read in one span; the bytes between them are read and dropped.
const MAX_GAP: u64 = 64 * 1024;
/// The most a window holds; records beyond it are read one by one when asked for.
const MAX_BYTES: u64 = 8 << 20;

/// Spans of the cache file read ahead, sorted by offset and disjoint.
#[derive(Debug, Default)]
pub(super) struct Window {
    spans: Vec<(u64, Vec<u8>)>,
}

impl Window {
    /// The spans to read for these records (`(offset, length)` each, in any order): nearby
    /// records are merged, and no more than [`MAX_BYTES`] is planned in all.
    pub fn plan(mut records: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
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

    /// Keeps a span read at `at` (spans are added in the order [`Window::plan`] gave).
    pub fn add(&mut self, at: u64, bytes: Vec<u8>) {
        self.spans.push((at, bytes));
    }

    /// The bytes at `at..at + len`, if one span holds all of them.
    pub fn slice(&self, at: u64, len: u64) -> Option<&[u8]> {
        let i = self.spans.partition_point(|(start, _)| *start <= at);
        let (start, bytes) = self.spans.get(i.checked_sub(1)?)?;
        let from = usize::try_from(at - start).ok()?;
        bytes.get(from..from.checked_add(usize::try_from(len).ok()?)?)
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
    fn slices_come_only_from_one_span() {
        let mut window = Window::default();
        window.add(100, (0..100).collect());
        window.add(1000, vec![7; 10]);
        assert_eq!(window.slice(110, 3), Some(&[10, 11, 12][..]));
        assert_eq!(window.slice(1005, 5), Some(&[7; 5][..]));
        assert_eq!(window.slice(1005, 6), None, "past the span");
        assert_eq!(window.slice(50, 10), None, "before any span");
        assert_eq!(window.slice(190, 20), None, "runs past the first span");
    }
}
