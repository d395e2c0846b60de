//! The last hour at a glance: per-minute counts of connections (per protocol), logins ok and
//! failed, and messages delivered, for the status page's charts and `/status.json`.
//!
//! Nothing is added to the sessions' paths: the process-wide [`counters`](crate::counters)
//! already count every event, so this samples their totals (every [`SAMPLE_EVERY`] and on each
//! page request) and adds what changed since the previous sample to the current minute's
//! slot. The slots form a fixed ring of [`MINUTES`], so memory stays the same however long
//! roost runs; minutes that passed without a sample (a suspended machine, a stalled runtime)
//! read as zero, and an event lands at most one sampling interval after its minute.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::config::Protocol;
use crate::counters::{self, CounterSnapshot};

/// Slots in the ring: one hour of minutes.
pub const MINUTES: usize = 60;
/// How often the background task samples the counters.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(10);

const PROTOCOLS: usize = Protocol::ALL.len();

/// Counts of the charted events: running totals, or what one minute added to them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Connections accepted, per protocol in [`Protocol::ALL`] order.
    pub connections: [u64; PROTOCOLS],
    /// Successful logins, all protocols.
    pub logins_ok: u64,
    /// Refused logins, all protocols.
    pub logins_failed: u64,
    /// Messages delivered into mailboxes.
    pub delivered: u64,
}

impl Tally {
    /// The charted totals of a counter snapshot.
    pub fn of(snapshot: &CounterSnapshot) -> Self {
        let mut tally = Self::default();
        for (i, protocol) in Protocol::ALL.iter().enumerate() {
            let name = protocol.name();
            tally.connections[i] = snapshot
                .connections
                .iter()
                .find(|c| c.proto == name)
                .map_or(0, |c| c.total);
        }
        tally.logins_ok = snapshot.logins.iter().map(|l| l.ok).sum();
        tally.logins_failed = snapshot.logins.iter().map(|l| l.failed).sum();
        tally.delivered = snapshot.messages_delivered;
        tally
    }

    /// What was added from `earlier` to `self` (a total that went down counts as zero).
    fn since(&self, earlier: &Self) -> Self {
        let mut delta = Self::default();
        for (d, (now, then)) in delta
            .connections
            .iter_mut()
            .zip(self.connections.iter().zip(&earlier.connections))
        {
            *d = now.saturating_sub(*then);
        }
        delta.logins_ok = self.logins_ok.saturating_sub(earlier.logins_ok);
        delta.logins_failed = self.logins_failed.saturating_sub(earlier.logins_failed);
        delta.delivered = self.delivered.saturating_sub(earlier.delivered);
        delta
    }

    fn add(&mut self, other: &Self) {
        for (a, b) in self.connections.iter_mut().zip(&other.connections) {
            *a = a.saturating_add(*b);
        }
        self.logins_ok = self.logins_ok.saturating_add(other.logins_ok);
        self.logins_failed = self.logins_failed.saturating_add(other.logins_failed);
        self.delivered = self.delivered.saturating_add(other.delivered);
    }
}

/// One slot per minute for the last [`MINUTES`] minutes, and the totals last sampled.
#[derive(Debug, Clone)]
pub struct Ring {
    slots: [Tally; MINUTES],
    /// The minute (since the Unix epoch) the newest slot counts.
    newest: u64,
    /// The totals at the last sample.
    last: Tally,
}

impl Ring {
    /// An empty hour ending at `minute`, counting from the totals `start`.
    pub fn new(start: Tally, minute: u64) -> Self {
        Self {
            slots: [Tally::default(); MINUTES],
            newest: minute,
            last: start,
        }
    }

    /// Adds what the totals gained since the last sample to `minute`'s slot, first emptying
    /// the slots of the minutes in between. A clock that went back counts into the newest slot.
    pub fn sample(&mut self, totals: Tally, minute: u64) {
        if minute > self.newest {
            let passed = (minute - self.newest).min(MINUTES as u64);
            for step in 1..=passed {
                self.slots[slot(self.newest + step)] = Tally::default();
            }
            self.newest = minute;
        }
        let gained = totals.since(&self.last);
        self.slots[slot(self.newest)].add(&gained);
        self.last = totals;
    }

    /// The minute the newest slot counts.
    pub fn newest(&self) -> u64 {
        self.newest
    }

    /// The slots, oldest first; the last is the current (unfinished) minute.
    pub fn minutes(&self) -> impl Iterator<Item = &Tally> {
        (1..=MINUTES as u64).map(move |age| &self.slots[slot(self.newest + age)])
    }
}

fn slot(minute: u64) -> usize {
    // The remainder is below MINUTES, so it fits.
    (minute % MINUTES as u64) as usize
}

/// The minute (since the Unix epoch) that `time` falls in.
pub fn minute_of(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
        / 60
}

/// One chart line: a name and its count per minute, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Series {
    /// `imap`, `ok`, `failed`, `delivered`, ...
    pub name: String,
    /// One count per minute, oldest first; the last is the current minute.
    pub per_minute: Vec<u64>,
}

/// The last hour as `/status.json` carries it and the page charts it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryReport {
    /// The start of the current (last, unfinished) minute, seconds since the Unix epoch.
    pub current_minute: u64,
    /// Connections accepted per minute, one series per protocol served.
    pub connections: Vec<Series>,
    /// Logins per minute: `ok` and `failed`.
    pub logins: Vec<Series>,
    /// Messages delivered per minute: one series, `delivered`.
    pub delivered: Vec<Series>,
}

/// The ring, shared by the sampling task and the status listener.
pub struct History {
    ring: Mutex<Ring>,
}

impl History {
    /// Starts counting from the counters' totals now.
    pub fn new() -> Self {
        Self {
            ring: Mutex::new(Ring::new(current(), minute_of(SystemTime::now()))),
        }
    }

    /// Samples the counters now.
    pub fn sample(&self) {
        let totals = current();
        let minute = minute_of(SystemTime::now());
        self.lock().sample(totals, minute);
    }

    /// Samples, then reports the hour, with connection series for the `served` protocols.
    pub fn report(&self, served: &[Protocol]) -> HistoryReport {
        self.sample();
        let ring = self.lock();
        let series = |name: &str, pick: &dyn Fn(&Tally) -> u64| Series {
            name: name.to_string(),
            per_minute: ring.minutes().map(pick).collect(),
        };
        let connections = Protocol::ALL
            .iter()
            .enumerate()
            .filter(|(_, p)| served.contains(p))
            .map(|(i, p)| series(p.name(), &|t: &Tally| t.connections[i]))
            .collect();
        HistoryReport {
            current_minute: ring.newest() * 60,
            connections,
            logins: vec![
                series("ok", &|t: &Tally| t.logins_ok),
                series("failed", &|t: &Tally| t.logins_failed),
            ],
            delivered: vec![series("delivered", &|t: &Tally| t.delivered)],
        }
    }

    /// Samples every [`SAMPLE_EVERY`] until shutdown, so each minute gets its own events
    /// even when nobody looks at the page.
    pub async fn run(self: std::sync::Arc<Self>, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(SAMPLE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => self.sample(),
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ring> {
        self.ring.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for History {
    fn default() -> Self {
        Self::new()
    }
}

fn current() -> Tally {
    Tally::of(&counters::global().snapshot())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totals(ok: u64, failed: u64, delivered: u64, imap: u64) -> Tally {
        let mut t = Tally {
            logins_ok: ok,
            logins_failed: failed,
            delivered,
            ..Tally::default()
        };
        t.connections[0] = imap;
        t
    }

    fn oks(ring: &Ring) -> Vec<u64> {
        ring.minutes().map(|t| t.logins_ok).collect()
    }

    #[test]
    fn events_land_in_the_minute_they_were_sampled_in() {
        let mut ring = Ring::new(totals(5, 0, 0, 0), 1000);
        ring.sample(totals(7, 1, 0, 3), 1000);
        ring.sample(totals(8, 1, 2, 3), 1000);
        ring.sample(totals(9, 1, 2, 4), 1001);
        let minutes: Vec<&Tally> = ring.minutes().collect();
        assert_eq!(minutes.len(), MINUTES);
        assert_eq!(*minutes[MINUTES - 2], totals(3, 1, 2, 3), "minute 1000");
        assert_eq!(*minutes[MINUTES - 1], totals(1, 0, 0, 1), "minute 1001");
        assert!(minutes[..MINUTES - 2]
            .iter()
            .all(|t| **t == Tally::default()));
        assert_eq!(ring.newest(), 1001);
    }

    #[test]
    fn a_gap_of_several_minutes_reads_as_zeros_and_the_ring_rolls_over() {
        let mut ring = Ring::new(Tally::default(), 0);
        // One login in each of the first 70 minutes: the ring holds the last 60.
        for minute in 0..70 {
            ring.sample(totals(minute + 1, 0, 0, 0), minute);
        }
        assert_eq!(oks(&ring), vec![1; MINUTES]);
        // Nobody sampled for 4 minutes; then 3 logins are seen at once.
        ring.sample(totals(73, 0, 0, 0), 74);
        let series = oks(&ring);
        assert_eq!(&series[MINUTES - 6..], &[1, 0, 0, 0, 0, 3]);
        assert_eq!(series.iter().sum::<u64>(), 55 + 3);
        // More than an hour without samples empties every slot.
        ring.sample(totals(73, 0, 0, 0), 74 + 500);
        assert_eq!(oks(&ring), vec![0; MINUTES]);
        assert_eq!(ring.newest(), 574);
    }

    #[test]
    fn a_clock_going_back_or_a_counter_going_down_never_underflows() {
        let mut ring = Ring::new(totals(10, 0, 0, 0), 100);
        ring.sample(totals(12, 0, 0, 0), 90);
        assert_eq!(ring.newest(), 100);
        assert_eq!(oks(&ring)[MINUTES - 1], 2);
        ring.sample(totals(3, 0, 0, 0), 100);
        assert_eq!(oks(&ring)[MINUTES - 1], 2);
        ring.sample(totals(4, 0, 0, 0), 100);
        assert_eq!(oks(&ring)[MINUTES - 1], 3);
    }

    #[test]
    fn the_report_names_only_served_protocols() {
        let history = History::new();
        let report = history.report(&[Protocol::Imaps, Protocol::Lmtp]);
        let names: Vec<&str> = report.connections.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["imaps", "lmtp"]);
        assert!(report
            .connections
            .iter()
            .chain(&report.logins)
            .chain(&report.delivered)
            .all(|s| s.per_minute.len() == MINUTES));
        assert_eq!(report.current_minute % 60, 0);
    }
}
