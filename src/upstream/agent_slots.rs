//! Agent-mode box logins in progress, capped per route and per client
//! source. Anyone can start one (any key with `-A` and a named target), and
//! each holds a connection to the box until the client's agent answers, so
//! without a cap a few clients fill a box's `MaxStartups` and real logins to
//! it fail.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use crate::ops::source::source;

/// Logins in progress, by route and by source.
#[derive(Default)]
pub struct AgentSlots {
    counts: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    by_route: HashMap<String, usize>,
    by_source: HashMap<IpAddr, usize>,
}

/// One login in progress; frees its slots when dropped.
pub struct AgentSlot {
    slots: Arc<AgentSlots>,
    route: String,
    source: IpAddr,
}

impl AgentSlots {
    /// A slot for a login to `route` from `client`, or `None` when either
    /// cap is reached.
    pub fn acquire(
        self: &Arc<Self>,
        route: &str,
        client: IpAddr,
        per_route: usize,
        per_source: usize,
    ) -> Option<AgentSlot> {
        let source = source(client);
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let on_route = counts.by_route.get(route).copied().unwrap_or(0);
        let from_source = counts.by_source.get(&source).copied().unwrap_or(0);
        if on_route >= per_route || from_source >= per_source {
            return None;
        }
        *counts.by_route.entry(route.to_owned()).or_default() += 1;
        *counts.by_source.entry(source).or_default() += 1;
        Some(AgentSlot {
            slots: self.clone(),
            route: route.to_owned(),
            source,
        })
    }
}

impl Drop for AgentSlot {
    fn drop(&mut self) {
        let mut counts = self.slots.counts.lock().unwrap_or_else(|e| e.into_inner());
        release(&mut counts.by_route, &self.route);
        release(&mut counts.by_source, &self.source);
    }
}

fn release<K: std::hash::Hash + Eq>(map: &mut HashMap<K, usize>, key: &K) {
    if let Some(n) = map.get_mut(key) {
        *n -= 1;
        if *n == 0 {
            map.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_per_route_and_per_source_and_slots_come_back() {
        let slots = Arc::new(AgentSlots::default());
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let b: IpAddr = "127.0.0.3".parse().unwrap();
        let a1 = slots.acquire("r", a, 2, 1).expect("first");
        assert!(slots.acquire("r", a, 2, 1).is_none(), "source cap");
        let b1 = slots.acquire("r", b, 2, 1).expect("other source");
        let c: IpAddr = "127.0.0.4".parse().unwrap();
        assert!(slots.acquire("r", c, 2, 1).is_none(), "route cap");
        assert!(slots.acquire("other", c, 2, 1).is_some(), "other route");
        drop(a1);
        assert!(slots.acquire("r", c, 2, 1).is_some(), "freed");
        drop(b1);
    }

    #[test]
    fn ipv6_sources_are_grouped_by_64() {
        let slots = Arc::new(AgentSlots::default());
        let x: IpAddr = "2001:db8::1".parse().unwrap();
        let y: IpAddr = "2001:db8::2".parse().unwrap();
        let _x = slots.acquire("r", x, 9, 1).expect("first");
        assert!(slots.acquire("r", y, 9, 1).is_none());
    }
}
