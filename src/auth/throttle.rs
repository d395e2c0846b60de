//! Login failure throttling: password guessing stalls whether it comes from one address or is
//! spread over many against one account.
//!
//! Failures are counted twice, per client network and per user name:
//!
//! ```text
//!   peer IP ──► IpKey: IPv4 address (IPv4-mapped IPv6 included) | IPv6 /64 ──► failures
//!   user    ──► the exact name the passdbs look up (keyed hash)           ──► failures
//! ```
//!
//! A login is refused while either count is at its limit. A success clears only that user's
//! count, never the network's, so one valid account does not buy more guesses at others.
//! Attempts still being verified count against a network or user that already has failures,
//! so parallel connections cannot slip a burst of guesses past the check. Both tables are
//! capped: expired entries go first, then the stalest tenth.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long failures are remembered after the last one.
pub const WINDOW: Duration = Duration::from_secs(5 * 60);

/// Most entries per table (networks, user names) before the stalest are dropped.
pub const MAX_ENTRIES: usize = 100_000;

/// Where failures are counted for a client address: IPv4 per address, IPv6 per /64 (one
/// customer's subnet), IPv4-mapped IPv6 as the IPv4 address it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpKey {
    /// One IPv4 address.
    V4(u32),
    /// The upper 64 bits of an IPv6 address.
    V6Prefix(u64),
}

impl From<IpAddr> for IpKey {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self::V4(u32::from(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self::V4(u32::from(v4)),
                None => Self::V6Prefix((u128::from(v6) >> 64) as u64),
            },
        }
    }
}

/// The limits, from `[auth]`; 0 turns a counter off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Failures per network (IPv4 address, IPv6 /64) within [`WINDOW`].
    pub per_ip: u32,
    /// Failures per user name within [`WINDOW`], from all addresses together.
    pub per_user: u32,
}

/// Which counter refused a login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocked {
    /// The client's network has too many recent failures.
    Ip,
    /// The user name has too many recent failures.
    User,
}

/// One counter: failures, attempts in progress, and when it last failed.
#[derive(Debug, Clone, Copy)]
struct Slot {
    failures: u32,
    in_flight: u32,
    last: Instant,
}

/// A capped map of counters.
#[derive(Debug)]
struct Table<K> {
    limit: u32,
    slots: HashMap<K, Slot>,
}

impl<K: Hash + Eq + Copy> Table<K> {
    fn new(limit: u32) -> Self {
        Self {
            limit,
            slots: HashMap::new(),
        }
    }

    /// Whether `key` is at its limit now (forgetting it when its failures expired).
    fn is_blocked(&mut self, key: K, now: Instant) -> bool {
        if self.limit == 0 {
            return false;
        }
        let Some(slot) = self.slots.get(&key).copied() else {
            return false;
        };
        if slot.failures > 0 && now.duration_since(slot.last) > WINDOW {
            if slot.in_flight == 0 {
                self.slots.remove(&key);
            } else if let Some(s) = self.slots.get_mut(&key) {
                s.failures = 0;
            }
            return false;
        }
        slot.failures > 0 && slot.failures.saturating_add(slot.in_flight) >= self.limit
    }

    /// Counts an attempt in progress.
    fn begin(&mut self, key: K, now: Instant) {
        if self.limit == 0 {
            return;
        }
        self.make_room(now);
        let slot = self.slots.entry(key).or_insert(Slot {
            failures: 0,
            in_flight: 0,
            last: now,
        });
        slot.in_flight = slot.in_flight.saturating_add(1);
    }

    /// Ends an attempt: a failure is counted, a success clears the key, anything else only
    /// releases the attempt.
    fn end(&mut self, key: K, outcome: Outcome, now: Instant) {
        let Some(slot) = self.slots.get_mut(&key) else {
            return;
        };
        slot.in_flight = slot.in_flight.saturating_sub(1);
        match outcome {
            Outcome::Failed => {
                slot.failures = slot.failures.saturating_add(1);
                slot.last = now;
            }
            Outcome::Cleared => slot.failures = 0,
            Outcome::Released => {}
        }
        if slot.failures == 0 && slot.in_flight == 0 {
            self.slots.remove(&key);
        }
    }

    /// Keeps the table under [`MAX_ENTRIES`]: expired entries first, then the stalest tenth.
    fn make_room(&mut self, now: Instant) {
        if self.slots.len() < MAX_ENTRIES {
            return;
        }
        self.slots
            .retain(|_, s| s.in_flight > 0 || now.duration_since(s.last) <= WINDOW);
        if self.slots.len() < MAX_ENTRIES {
            return;
        }
        let mut ages: Vec<Instant> = self.slots.values().map(|s| s.last).collect();
        let tenth = ages.len() / 10;
        let (_, cutoff, _) = ages.select_nth_unstable(tenth);
        let cutoff = *cutoff;
        self.slots.retain(|_, s| s.last > cutoff);
    }
}

/// How an attempt ended, for one table.
#[derive(Debug, Clone, Copy)]
enum Outcome {
    Failed,
    Cleared,
    Released,
}

/// Both tables behind one lock.
#[derive(Debug)]
struct Tables {
    ips: Table<IpKey>,
    users: Table<u64>,
}

/// Counts recent login failures per client network and per user name.
#[derive(Debug)]
pub struct Throttle {
    tables: Mutex<Tables>,
    hasher: RandomState,
}

impl Throttle {
    /// A throttle with these limits.
    pub fn new(limits: Limits) -> Self {
        Self {
            tables: Mutex::new(Tables {
                ips: Table::new(limits.per_ip),
                users: Table::new(limits.per_user),
            }),
            hasher: RandomState::new(),
        }
    }

    /// Starts a login attempt for `user` from `ip`, or says which counter refuses it.
    pub fn begin(&self, ip: IpAddr, user: &str) -> Result<Attempt<'_>, Blocked> {
        self.begin_at(ip, user, Instant::now())
    }

    fn begin_at(&self, ip: IpAddr, user: &str, now: Instant) -> Result<Attempt<'_>, Blocked> {
        let ip = IpKey::from(ip);
        // A keyed hash: fixed-size entries whatever name a client sends, and collisions
        // nobody outside this process can aim for.
        let user = self.hasher.hash_one(user);
        let mut tables = self.lock();
        if tables.ips.is_blocked(ip, now) {
            return Err(Blocked::Ip);
        }
        if tables.users.is_blocked(user, now) {
            return Err(Blocked::User);
        }
        tables.ips.begin(ip, now);
        tables.users.begin(user, now);
        Ok(Attempt {
            throttle: self,
            ip,
            user,
            ended: false,
        })
    }

    fn end(&self, ip: IpKey, user: u64, ip_outcome: Outcome, user_outcome: Outcome) {
        let now = Instant::now();
        let mut tables = self.lock();
        tables.ips.end(ip, ip_outcome, now);
        tables.users.end(user, user_outcome, now);
    }

    /// The counters; a poisoned lock only means a panic elsewhere, and every update leaves
    /// the tables coherent.
    fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A login attempt in progress; dropping it without a verdict (a temporary error) only
/// releases it.
#[derive(Debug)]
pub struct Attempt<'a> {
    throttle: &'a Throttle,
    ip: IpKey,
    user: u64,
    ended: bool,
}

impl Attempt<'_> {
    /// The password was wrong (or the account refused): counts for the network and the user.
    pub fn failed(mut self) {
        self.finish(Outcome::Failed, Outcome::Failed);
    }

    /// The login succeeded: clears the user's failures, never the network's.
    pub fn succeeded(mut self) {
        self.finish(Outcome::Released, Outcome::Cleared);
    }

    fn finish(&mut self, ip: Outcome, user: Outcome) {
        if !self.ended {
            self.ended = true;
            self.throttle.end(self.ip, self.user, ip, user);
        }
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        self.finish(Outcome::Released, Outcome::Released);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn limits(per_ip: u32, per_user: u32) -> Throttle {
        Throttle::new(Limits { per_ip, per_user })
    }

    fn fail(t: &Throttle, from: &str, user: &str) {
        t.begin(ip(from), user).unwrap().failed();
    }

    #[test]
    fn blocks_an_address_after_the_limit() {
        let t = limits(3, 0);
        for _ in 0..3 {
            fail(&t, "192.0.2.1", "alice");
        }
        assert_eq!(t.begin(ip("192.0.2.1"), "bob").unwrap_err(), Blocked::Ip);
        assert!(t.begin(ip("192.0.2.2"), "bob").is_ok());
    }

    #[test]
    fn success_clears_only_that_user_and_never_the_address() {
        let t = limits(3, 3);
        fail(&t, "192.0.2.1", "alice");
        fail(&t, "192.0.2.1", "alice");
        // A valid account from the same address does not reset the address.
        t.begin(ip("192.0.2.1"), "mallory").unwrap().succeeded();
        fail(&t, "192.0.2.1", "bob");
        assert_eq!(t.begin(ip("192.0.2.1"), "carol").unwrap_err(), Blocked::Ip);
        // alice's own success clears her count.
        fail(&t, "198.51.100.1", "alice");
        assert_eq!(
            t.begin(ip("203.0.113.9"), "alice").unwrap_err(),
            Blocked::User
        );
        let t = limits(0, 3);
        fail(&t, "192.0.2.1", "alice");
        fail(&t, "192.0.2.1", "alice");
        t.begin(ip("192.0.2.1"), "alice").unwrap().succeeded();
        fail(&t, "192.0.2.1", "alice");
        fail(&t, "192.0.2.1", "alice");
        assert!(t.begin(ip("192.0.2.1"), "alice").is_ok());
    }

    #[test]
    fn a_user_is_protected_from_many_addresses() {
        let t = limits(10, 3);
        for n in 1..=3 {
            fail(&t, &format!("192.0.2.{n}"), "alice");
        }
        assert_eq!(
            t.begin(ip("192.0.2.50"), "alice").unwrap_err(),
            Blocked::User
        );
        assert!(
            t.begin(ip("192.0.2.50"), "Alice").is_ok(),
            "names are exact"
        );
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let t = limits(3, 0);
        for host in ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::3"] {
            fail(&t, host, "x");
        }
        assert_eq!(
            t.begin(ip("2001:db8:1:2:abcd::9"), "x").unwrap_err(),
            Blocked::Ip
        );
        assert!(t.begin(ip("2001:db8:1:3::1"), "x").is_ok());
        fail(&t, "::ffff:192.0.2.7", "x");
        fail(&t, "192.0.2.7", "x");
        fail(&t, "::ffff:192.0.2.7", "x");
        assert_eq!(t.begin(ip("192.0.2.7"), "x").unwrap_err(), Blocked::Ip);
        assert_eq!(
            IpKey::from(ip("::ffff:10.1.2.3")),
            IpKey::from(ip("10.1.2.3"))
        );
    }

    #[test]
    fn attempts_in_progress_count_once_there_are_failures() {
        let t = limits(3, 0);
        // No failures yet: many parallel logins (a NAT) are fine.
        let many: Vec<_> = (0..20)
            .map(|_| t.begin(ip("192.0.2.1"), "u").unwrap())
            .collect();
        drop(many);
        fail(&t, "192.0.2.1", "u");
        let a = t.begin(ip("192.0.2.1"), "u").unwrap();
        let b = t.begin(ip("192.0.2.1"), "u").unwrap();
        assert_eq!(t.begin(ip("192.0.2.1"), "u").unwrap_err(), Blocked::Ip);
        drop(a); // a temporary error releases without counting
        b.failed();
        let c = t.begin(ip("192.0.2.1"), "u").unwrap();
        assert_eq!(t.begin(ip("192.0.2.1"), "u").unwrap_err(), Blocked::Ip);
        c.succeeded();
        assert!(t.begin(ip("192.0.2.1"), "u").is_ok());
    }

    #[test]
    fn failures_expire_after_the_window() {
        let t = limits(1, 1);
        let old = Instant::now();
        t.begin_at(ip("192.0.2.1"), "alice", old).unwrap().failed();
        assert!(t.begin(ip("192.0.2.1"), "alice").is_err());
        let later = Instant::now() + WINDOW + Duration::from_secs(1);
        assert!(t.begin_at(ip("192.0.2.1"), "alice", later).is_ok());
        let tables = t.lock();
        assert!(tables.ips.slots.is_empty() && tables.users.slots.is_empty());
    }

    #[test]
    fn tables_stay_bounded() {
        let t = limits(5, 5);
        for n in 0..(MAX_ENTRIES as u32 + 5_000) {
            let addr = IpAddr::from((0x0a00_0000u32 + n).to_be_bytes());
            t.begin(addr, &format!("user{n}")).unwrap().failed();
        }
        let tables = t.lock();
        assert!(
            tables.ips.slots.len() <= MAX_ENTRIES,
            "{}",
            tables.ips.slots.len()
        );
        assert!(tables.users.slots.len() <= MAX_ENTRIES);
        // The newest entries survive.
        let newest = IpKey::from(IpAddr::from(
            (0x0a00_0000u32 + MAX_ENTRIES as u32 + 4_999).to_be_bytes(),
        ));
        assert!(tables.ips.slots.contains_key(&newest));
    }
}
