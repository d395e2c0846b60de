//! Per-client-IP login failure throttling, so password guessing from one address stalls.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long failures are remembered.
const WINDOW: Duration = Duration::from_secs(5 * 60);

/// Counts recent failures per IP.
#[derive(Debug)]
pub struct Throttle {
    max_failures: u32,
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl Throttle {
    /// Refuses logins from an IP after `max_failures` failures within five minutes.
    pub fn new(max_failures: u32) -> Self {
        Self {
            max_failures,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Whether this IP is currently refused.
    pub fn is_blocked(&self, ip: IpAddr) -> bool {
        let mut map = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        match map.get(&ip) {
            Some((_, last)) if last.elapsed() > WINDOW => {
                map.remove(&ip);
                false
            }
            Some((count, _)) => *count >= self.max_failures,
            None => false,
        }
    }

    /// Records a failed login.
    pub fn failed(&self, ip: IpAddr) {
        let mut map = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() > 100_000 {
            map.retain(|_, (_, last)| last.elapsed() <= WINDOW);
        }
        let entry = map.entry(ip).or_insert((0, Instant::now()));
        entry.0 = entry.0.saturating_add(1);
        entry.1 = Instant::now();
    }

    /// Forgets an IP's failures after a successful login.
    pub fn succeeded(&self, ip: IpAddr) {
        self.failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_the_limit_and_success_resets() {
        let t = Throttle::new(3);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..3 {
            assert!(!t.is_blocked(ip));
            t.failed(ip);
        }
        assert!(t.is_blocked(ip));
        assert!(!t.is_blocked(other));
        t.succeeded(ip);
        assert!(!t.is_blocked(ip));
    }
}
