//! The per-source-address penalty (like OpenSSH `PerSourcePenalties`): an
//! address whose connections keep failing to log in is refused for a while,
//! even with a valid key, while every other address still gets in.
//!
//! IPv6 clients are grouped by /64 (one host usually owns a whole /64). The
//! table is bounded: expired entries are pruned, and when it is full of live
//! entries new failures are not recorded (the gateway never grows without
//! bound under a spray of addresses).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Addresses tracked at most.
const MAX_TRACKED: usize = 65_536;

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    /// Failures are forgotten `penalty` after the last one.
    last_failure: Instant,
    /// Refused until then.
    until: Option<Instant>,
}

/// Failed logins per source address, and who is refused now.
pub struct Penalties {
    max_failures: u32,
    penalty: Duration,
    table: Mutex<HashMap<IpAddr, Entry>>,
}

impl Penalties {
    /// `penalty` zero (or `max_failures` zero) turns the penalty off.
    pub fn new(max_failures: u32, penalty: Duration) -> Self {
        Self {
            max_failures,
            penalty,
            table: Mutex::new(HashMap::new()),
        }
    }

    fn enabled(&self) -> bool {
        self.max_failures > 0 && !self.penalty.is_zero()
    }

    /// How much longer `ip` is refused, if it is.
    pub fn refused_for(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        if !self.enabled() {
            return None;
        }
        let table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        let until = table.get(&group(ip))?.until?;
        (until > now).then(|| until - now)
    }

    /// One failed login from `ip`; returns true when this failure starts a penalty.
    pub fn failed(&self, ip: IpAddr, now: Instant) -> bool {
        if !self.enabled() {
            return false;
        }
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        if table.len() >= MAX_TRACKED {
            let penalty = self.penalty;
            table.retain(|_, e| live(e, now, penalty));
            if table.len() >= MAX_TRACKED {
                return false;
            }
        }
        let entry = table.entry(group(ip)).or_insert(Entry {
            failures: 0,
            last_failure: now,
            until: None,
        });
        if !live(entry, now, self.penalty) {
            *entry = Entry {
                failures: 0,
                last_failure: now,
                until: None,
            };
        }
        entry.failures = entry.failures.saturating_add(1);
        entry.last_failure = now;
        if entry.failures >= self.max_failures && entry.until.is_none_or(|u| u <= now) {
            entry.until = Some(now + self.penalty);
            entry.failures = 0;
            return true;
        }
        false
    }
}

/// Still worth remembering: penalized, or failed recently.
fn live(e: &Entry, now: Instant, penalty: Duration) -> bool {
    e.until.is_some_and(|u| u > now) || now.duration_since(e.last_failure) < penalty
}

/// The key an address is tracked under: itself, or its /64 for IPv6.
fn group(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn an_address_is_refused_after_max_failures_and_others_are_not() {
        let p = Penalties::new(3, Duration::from_secs(60));
        let t = Instant::now();
        assert!(!p.failed(ip("203.0.113.1"), t));
        assert!(!p.failed(ip("203.0.113.1"), t));
        assert!(p.refused_for(ip("203.0.113.1"), t).is_none());
        assert!(p.failed(ip("203.0.113.1"), t));
        assert_eq!(
            p.refused_for(ip("203.0.113.1"), t),
            Some(Duration::from_secs(60))
        );
        assert!(p.refused_for(ip("203.0.113.2"), t).is_none());
        // The penalty ends.
        assert!(
            p.refused_for(ip("203.0.113.1"), t + Duration::from_secs(61))
                .is_none()
        );
    }

    #[test]
    fn old_failures_are_forgotten_and_ipv6_is_grouped_by_64() {
        let p = Penalties::new(2, Duration::from_secs(10));
        let t = Instant::now();
        p.failed(ip("2001:db8::1"), t);
        assert!(!p.failed(ip("2001:db8::2"), t + Duration::from_secs(11)));
        assert!(p.failed(ip("2001:db8::3"), t + Duration::from_secs(12)));
        assert!(
            p.refused_for(ip("2001:db8::99"), t + Duration::from_secs(12))
                .is_some()
        );
        assert!(
            p.refused_for(ip("2001:db9::1"), t + Duration::from_secs(12))
                .is_none()
        );
    }

    #[test]
    fn zero_turns_it_off() {
        let p = Penalties::new(1, Duration::ZERO);
        let t = Instant::now();
        assert!(!p.failed(ip("10.0.0.1"), t));
        assert!(p.refused_for(ip("10.0.0.1"), t).is_none());
    }
}
