//! Connection admission: a global cap and a per-client-IP cap, as owned permits that move into
//! the connection task and free their slot when it ends.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The server's connection caps.
#[derive(Debug)]
pub struct ConnectionLimits {
    global: Arc<Semaphore>,
    per_ip: Mutex<HashMap<IpAddr, u32>>,
    max_per_ip: u32,
}

/// Proof that a connection was admitted; dropping it frees both slots.
#[derive(Debug)]
pub struct Admission {
    _global: OwnedSemaphorePermit,
    limits: Arc<ConnectionLimits>,
    ip: IpAddr,
}

impl ConnectionLimits {
    /// Caps of `max_total` connections, `max_per_ip` from any one address.
    pub fn new(max_total: u32, max_per_ip: u32) -> Arc<Self> {
        Arc::new(Self {
            global: Arc::new(Semaphore::new(max_total as usize)),
            per_ip: Mutex::new(HashMap::new()),
            max_per_ip,
        })
    }

    /// Admits a connection from `ip`, or says why not.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Admission, &'static str> {
        let global = Arc::clone(&self.global)
            .try_acquire_owned()
            .map_err(|_| "Too many connections to this server")?;
        let mut per_ip = self.per_ip.lock().unwrap_or_else(PoisonError::into_inner);
        let count = per_ip.entry(ip).or_insert(0);
        if *count >= self.max_per_ip {
            return Err("Too many connections from your address");
        }
        *count += 1;
        Ok(Admission {
            _global: global,
            limits: Arc::clone(self),
            ip,
        })
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        let mut per_ip = self
            .limits
            .per_ip
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = per_ip.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                per_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_are_enforced_and_released() {
        let limits = ConnectionLimits::new(3, 2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let first = limits.admit(a).unwrap();
        let _second = limits.admit(a).unwrap();
        assert_eq!(
            limits.admit(a).unwrap_err(),
            "Too many connections from your address"
        );
        let _third = limits.admit(b).unwrap();
        assert_eq!(
            limits.admit(b).unwrap_err(),
            "Too many connections to this server"
        );
        drop(first);
        assert!(limits.admit(a).is_ok());
    }
}
