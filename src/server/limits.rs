//! Pre-authentication fairness, per source (an IPv4 address, an IPv6 /64:
//! one host usually owns a whole /64; the real client after a PROXY header):
//!
//! - random early drop as the unauthenticated table fills (OpenSSH
//!   `MaxStartups start:rate:full`), decided at accept ([`EarlyDrop`]);
//! - a per-source share of `max_unauthenticated` (OpenSSH
//!   `PerSourceMaxStartups`), held until the connection authenticates
//!   ([`ShareSlot`]);
//! - the penalty (OpenSSH `PerSourcePenalties`): a source whose connections
//!   keep failing to log in is refused for a while, even with a valid key,
//!   while every other source still gets in ([`Penalties`]);
//! - `per_source_exempt`: sources that neither share nor penalty applies to.
//!
//! Every table is bounded: the shares by `max_unauthenticated` (an entry
//! lives only while one of its slots does), the penalties by
//! [`MAX_TRACKED`], evicting the entries closest to expiry when full.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ipnet::IpNet;
use rand::Rng;

use crate::config::ServerConfig;
use crate::ops::source::{canonical, source};

/// Sources the penalty table remembers at most.
const MAX_TRACKED: usize = 65_536;

/// When the penalty table is full of live entries, this fraction of it (the
/// entries closest to expiry) is evicted at once, so a spray of addresses
/// costs one scan per `MAX_TRACKED / EVICT_FRACTION` failures, not per failure.
const EVICT_FRACTION: usize = 8;

/// Penalty units of one failed login: the weights of [`Failure`] are in
/// halves of a failure, so `per_source_max_failures` counts whole ones.
const UNITS_PER_FAILURE: u32 = 2;

/// How an unauthenticated connection ended, for the penalty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// A rejected key or token, or `login_grace` ran out: one failure
    /// (OpenSSH `authfail`, `grace-exceeded`).
    Rejected,
    /// Ended without authenticating and without a rejected attempt (closed
    /// mid-handshake, a request that was never accepted, a provisional
    /// login that never got in): half a failure (OpenSSH `noauth`).
    NoAuth,
}

impl Failure {
    fn units(self) -> u32 {
        match self {
            Failure::Rejected => UNITS_PER_FAILURE,
            Failure::NoAuth => 1,
        }
    }
}

/// Why [`PreAuth::admit`] refused a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Penalized for this much longer.
    Penalized(Duration),
    /// It already holds `per_source_max_unauthenticated` slots.
    ShareFull,
}

/// The per-source limits of the pre-authentication phase, from `[server]`.
pub struct PreAuth {
    exempt: Vec<IpNet>,
    early_drop: EarlyDrop,
    shares: Shares,
    penalties: Penalties,
}

impl PreAuth {
    pub fn new(s: &ServerConfig) -> Self {
        Self {
            exempt: s.per_source_exempt(),
            early_drop: EarlyDrop {
                start: s.max_unauthenticated_start,
                rate: s.max_unauthenticated_rate,
                full: s.max_unauthenticated,
            },
            shares: Shares::new(s.per_source_max_unauthenticated),
            penalties: Penalties::new(s.per_source_max_failures, s.per_source_penalty),
        }
    }

    /// Whether a new connection is dropped at random, with `in_use`
    /// connections unauthenticated now.
    pub fn early_drop(&self, in_use: usize) -> bool {
        self.early_drop.drops(in_use, &mut rand::thread_rng())
    }

    /// Admits a connection from `ip`: its share slot (`None` when the share
    /// is off or `ip` is exempt), or why it is refused.
    pub fn admit(&self, ip: IpAddr, now: Instant) -> Result<Option<ShareSlot>, Refusal> {
        if self.is_exempt(ip) {
            return Ok(None);
        }
        if let Some(left) = self.penalties.refused_for(ip, now) {
            return Err(Refusal::Penalized(left));
        }
        self.shares.take(ip)
    }

    /// An unauthenticated connection from `ip` ended as `failure`; true when
    /// this starts a penalty for its source.
    pub fn failed(&self, ip: IpAddr, failure: Failure, now: Instant) -> bool {
        !self.is_exempt(ip) && self.penalties.failed(ip, failure, now)
    }

    fn is_exempt(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.exempt.iter().any(|net| net.contains(&ip))
    }
}

/// Random early drop: from `start` unauthenticated connections, a new one
/// is refused with a chance of `rate`% rising linearly to 100% at `full`.
#[derive(Debug, Clone, Copy)]
struct EarlyDrop {
    /// 0, or not below `full`: no early drop.
    start: usize,
    /// Percent, at most 100 (validated).
    rate: u32,
    full: usize,
}

impl EarlyDrop {
    /// The chance, 0 to 1, that a connection is refused with `in_use`
    /// connections unauthenticated.
    fn probability(&self, in_use: usize) -> f64 {
        if self.start == 0 || self.start >= self.full || in_use < self.start {
            return 0.0;
        }
        if in_use >= self.full {
            return 1.0;
        }
        let rate = f64::from(self.rate.min(100)) / 100.0;
        let past = (in_use - self.start) as f64 / (self.full - self.start) as f64;
        rate + (1.0 - rate) * past
    }

    fn drops(&self, in_use: usize, rng: &mut impl Rng) -> bool {
        let p = self.probability(in_use);
        p > 0.0 && rng.gen_bool(p.min(1.0))
    }
}

/// Unauthenticated connections held per source.
struct Shares {
    /// 0 = no per-source share.
    max: usize,
    held: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Shares {
    fn new(max: usize) -> Self {
        Self {
            max,
            held: Arc::default(),
        }
    }

    /// One more slot for `ip`'s source (`None` when there is no share).
    fn take(&self, ip: IpAddr) -> Result<Option<ShareSlot>, Refusal> {
        if self.max == 0 {
            return Ok(None);
        }
        let source = source(ip);
        let mut held = lock(&self.held);
        let count = held.entry(source).or_insert(0);
        if *count >= self.max {
            return Err(Refusal::ShareFull);
        }
        *count += 1;
        Ok(Some(ShareSlot {
            held: self.held.clone(),
            source,
        }))
    }
}

/// One of a source's `per_source_max_unauthenticated` slots; given back on drop.
pub struct ShareSlot {
    held: Arc<Mutex<HashMap<IpAddr, usize>>>,
    source: IpAddr,
}

impl Drop for ShareSlot {
    fn drop(&mut self) {
        let mut held = lock(&self.held);
        if let Some(count) = held.get_mut(&self.source) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                held.remove(&self.source);
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    /// Failure units ([`Failure::units`]) since the last penalty.
    units: u32,
    /// Failures are forgotten `penalty` after the last one.
    last_failure: Instant,
    /// Refused until then.
    until: Option<Instant>,
}

impl Entry {
    fn penalized(&self, now: Instant) -> bool {
        self.until.is_some_and(|u| u > now)
    }

    /// Still worth remembering: penalized, or failed recently.
    fn live(&self, now: Instant, penalty: Duration) -> bool {
        self.penalized(now) || now.duration_since(self.last_failure) < penalty
    }

    /// When it stops being [`live`](Entry::live).
    fn expires(&self, penalty: Duration) -> Instant {
        let forgotten = self.last_failure + penalty;
        self.until.map_or(forgotten, |u| u.max(forgotten))
    }
}

/// Failed logins per source, and who is refused now.
struct Penalties {
    /// In units: `per_source_max_failures` whole failures.
    max_units: u32,
    penalty: Duration,
    capacity: usize,
    table: Mutex<HashMap<IpAddr, Entry>>,
}

impl Penalties {
    /// `penalty` zero (or `max_failures` zero) turns the penalty off.
    fn new(max_failures: u32, penalty: Duration) -> Self {
        Self {
            max_units: max_failures.saturating_mul(UNITS_PER_FAILURE),
            penalty,
            capacity: MAX_TRACKED,
            table: Mutex::new(HashMap::new()),
        }
    }

    fn enabled(&self) -> bool {
        self.max_units > 0 && !self.penalty.is_zero()
    }

    /// How much longer `ip` is refused, if it is.
    fn refused_for(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        if !self.enabled() {
            return None;
        }
        let until = lock(&self.table).get(&source(ip))?.until?;
        (until > now).then(|| until - now)
    }

    /// A failed connection from `ip`; returns true when it starts a penalty.
    fn failed(&self, ip: IpAddr, failure: Failure, now: Instant) -> bool {
        if !self.enabled() {
            return false;
        }
        let source = source(ip);
        let mut table = lock(&self.table);
        if !table.contains_key(&source) && table.len() >= self.capacity {
            self.make_room(&mut table, now);
        }
        let fresh = Entry {
            units: 0,
            last_failure: now,
            until: None,
        };
        let entry = table.entry(source).or_insert(fresh);
        if !entry.live(now, self.penalty) {
            *entry = fresh;
        }
        entry.units = entry.units.saturating_add(failure.units());
        entry.last_failure = now;
        if entry.units >= self.max_units && !entry.penalized(now) {
            entry.until = Some(now + self.penalty);
            entry.units = 0;
            return true;
        }
        false
    }

    /// Prunes what has expired; if the table is still full, evicts the
    /// `1/EVICT_FRACTION` of it that would expire first, sources merely
    /// failing before penalized ones (a spray of new addresses must not
    /// lift the penalties it is meant to earn).
    fn make_room(&self, table: &mut HashMap<IpAddr, Entry>, now: Instant) {
        table.retain(|_, e| e.live(now, self.penalty));
        if table.len() < self.capacity {
            return;
        }
        let mut ranked: Vec<(bool, Instant, IpAddr)> = table
            .iter()
            .map(|(ip, e)| (e.penalized(now), e.expires(self.penalty), *ip))
            .collect();
        let evict = (self.capacity / EVICT_FRACTION).clamp(1, ranked.len());
        if evict < ranked.len() {
            ranked.select_nth_unstable(evict);
        }
        for (_, _, ip) in &ranked[..evict] {
            table.remove(ip);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update under these locks leaves the map consistent: a poisoned
    // lock still holds usable data.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn an_address_is_refused_after_max_failures_and_others_are_not() {
        let p = Penalties::new(3, secs(60));
        let t = Instant::now();
        let fail = |at| p.failed(ip("203.0.113.1"), Failure::Rejected, at);
        assert!(!fail(t));
        assert!(!fail(t));
        assert!(p.refused_for(ip("203.0.113.1"), t).is_none());
        assert!(fail(t));
        assert_eq!(p.refused_for(ip("203.0.113.1"), t), Some(secs(60)));
        assert!(p.refused_for(ip("203.0.113.2"), t).is_none());
        // The penalty ends.
        assert!(p.refused_for(ip("203.0.113.1"), t + secs(61)).is_none());
    }

    #[test]
    fn old_failures_are_forgotten_and_ipv6_is_grouped_by_64() {
        let p = Penalties::new(2, secs(10));
        let t = Instant::now();
        p.failed(ip("2001:db8::1"), Failure::Rejected, t);
        assert!(!p.failed(ip("2001:db8::2"), Failure::Rejected, t + secs(11)));
        assert!(p.failed(ip("2001:db8::3"), Failure::Rejected, t + secs(12)));
        assert!(p.refused_for(ip("2001:db8::99"), t + secs(12)).is_some());
        assert!(p.refused_for(ip("2001:db9::1"), t + secs(12)).is_none());
    }

    #[test]
    fn zero_turns_it_off() {
        let p = Penalties::new(1, Duration::ZERO);
        let t = Instant::now();
        assert!(!p.failed(ip("10.0.0.1"), Failure::Rejected, t));
        assert!(p.refused_for(ip("10.0.0.1"), t).is_none());
    }

    #[test]
    fn an_end_without_authentication_is_half_a_failure() {
        let p = Penalties::new(2, secs(60));
        let t = Instant::now();
        let a = ip("198.51.100.1");
        for _ in 0..3 {
            assert!(!p.failed(a, Failure::NoAuth, t));
        }
        assert!(
            p.failed(a, Failure::NoAuth, t),
            "four halves are two failures"
        );
        let b = ip("198.51.100.2");
        assert!(!p.failed(b, Failure::NoAuth, t));
        assert!(!p.failed(b, Failure::Rejected, t));
        assert!(p.failed(b, Failure::NoAuth, t));
        assert!(p.refused_for(b, t).is_some());
    }

    /// A table of `capacity` entries evicts one at a time.
    fn small(max_failures: u32, capacity: usize) -> Penalties {
        Penalties {
            capacity,
            ..Penalties::new(max_failures, secs(60))
        }
    }

    fn v4(i: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, i])
    }

    #[test]
    fn a_full_table_evicts_the_failing_source_closest_to_expiry_not_a_penalized_one() {
        let p = small(2, EVICT_FRACTION);
        let t = Instant::now();
        // The oldest entry is a penalized one.
        p.failed(v4(0), Failure::Rejected, t);
        assert!(p.failed(v4(0), Failure::Rejected, t));
        for i in 1..8 {
            p.failed(v4(i), Failure::Rejected, t + secs(u64::from(i)));
        }
        let now = t + secs(10);
        // A new source is still recorded: the table is not blind when full…
        assert!(!p.failed(v4(100), Failure::Rejected, now));
        assert!(p.failed(v4(100), Failure::Rejected, now));
        // …the source that failed longest ago (and is not penalized) went…
        let table = lock(&p.table);
        assert_eq!(table.len(), 8);
        assert!(!table.contains_key(&v4(1)));
        assert!(table.contains_key(&v4(2)));
        drop(table);
        // …and the penalty stays.
        assert!(p.refused_for(v4(0), now).is_some());
    }

    #[test]
    fn a_table_full_of_penalties_drops_the_one_ending_first() {
        let p = small(1, EVICT_FRACTION);
        let t = Instant::now();
        for i in 0..8 {
            assert!(p.failed(v4(i), Failure::Rejected, t + secs(u64::from(i))));
        }
        let now = t + secs(20);
        assert!(p.failed(v4(100), Failure::Rejected, now));
        assert!(p.refused_for(v4(0), now).is_none());
        assert!(p.refused_for(v4(1), now).is_some());
        assert!(p.refused_for(v4(100), now).is_some());
        assert_eq!(lock(&p.table).len(), 8);
    }

    #[test]
    fn expired_entries_are_pruned_before_anything_live_is_evicted() {
        let p = small(3, EVICT_FRACTION);
        let t = Instant::now();
        for i in 0..8 {
            p.failed(v4(i), Failure::NoAuth, t);
        }
        let later = t + secs(61);
        p.failed(v4(100), Failure::NoAuth, later);
        let table = lock(&p.table);
        assert_eq!(table.len(), 1, "only the live entry is left");
        assert!(table.contains_key(&v4(100)));
    }

    #[test]
    fn a_source_holds_at_most_its_share_and_gets_it_back_on_drop() {
        let shares = Shares::new(2);
        let a1 = shares.take(ip("127.0.0.2")).expect("first");
        let a2 = shares.take(ip("127.0.0.2")).expect("second");
        assert_eq!(shares.take(ip("127.0.0.2")).err(), Some(Refusal::ShareFull));
        assert!(shares.take(ip("127.0.0.3")).is_ok_and(|s| s.is_some()));
        // One /64 is one source; a v4-mapped address is the IPv4 one.
        let _b1 = shares.take(ip("2001:db8::1")).expect("v6");
        let _b2 = shares.take(ip("2001:db8::2")).expect("v6");
        assert!(shares.take(ip("2001:db8::3")).is_err());
        assert!(shares.take(ip("::ffff:127.0.0.2")).is_err());
        drop(a1);
        let a3 = shares.take(ip("127.0.0.2")).expect("freed");
        drop((a2, a3));
        assert!(!lock(&shares.held).contains_key(&ip("127.0.0.2")));
        assert!(
            Shares::new(0)
                .take(ip("127.0.0.2"))
                .is_ok_and(|s| s.is_none())
        );
    }

    fn pre_auth(share: usize, max_failures: u32, exempt: &[&str]) -> PreAuth {
        PreAuth::new(&ServerConfig {
            per_source_max_unauthenticated: share,
            per_source_max_failures: max_failures,
            per_source_exempt: exempt.iter().map(|s| (*s).to_owned()).collect(),
            ..ServerConfig::default()
        })
    }

    #[test]
    fn admission_refuses_a_penalized_source_and_one_over_its_share() {
        let limits = pre_auth(1, 1, &[]);
        let t = Instant::now();
        let slot = limits.admit(ip("203.0.113.5"), t).expect("admitted");
        assert!(slot.is_some());
        assert_eq!(
            limits.admit(ip("203.0.113.5"), t).err(),
            Some(Refusal::ShareFull)
        );
        assert!(limits.failed(ip("203.0.113.6"), Failure::Rejected, t));
        assert_eq!(
            limits.admit(ip("203.0.113.6"), t).err(),
            Some(Refusal::Penalized(secs(60)))
        );
    }

    #[test]
    fn exempt_sources_have_no_share_and_no_penalty() {
        let limits = pre_auth(1, 1, &["10.0.0.0/8", "2001:db8::7"]);
        let t = Instant::now();
        for source in ["10.1.2.3", "::ffff:10.1.2.3", "2001:db8::7"] {
            let slots: Vec<_> = (0..5)
                .map(|_| limits.admit(ip(source), t).expect("exempt"))
                .collect();
            assert!(slots.iter().all(Option::is_none), "{source}");
            assert!(!limits.failed(ip(source), Failure::Rejected, t));
            assert!(limits.admit(ip(source), t).is_ok());
        }
        // Its /64 neighbour is not exempt.
        let _slot = limits.admit(ip("2001:db8::8"), t).expect("first");
        assert!(limits.admit(ip("2001:db8::8"), t).is_err());
    }

    #[test]
    fn early_drop_rises_linearly_from_rate_at_start_to_all_at_full() {
        let d = EarlyDrop {
            start: 100,
            rate: 30,
            full: 200,
        };
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        assert!(close(d.probability(0), 0.0));
        assert!(close(d.probability(99), 0.0));
        assert!(close(d.probability(100), 0.3));
        assert!(close(d.probability(150), 0.65));
        assert!(close(d.probability(200), 1.0));
        for off in [
            EarlyDrop { start: 0, ..d },
            EarlyDrop { start: 200, ..d },
            EarlyDrop { start: 300, ..d },
        ] {
            assert!(close(off.probability(199), 0.0));
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let dropped = (0..10_000).filter(|_| d.drops(100, &mut rng)).count();
        assert!((2_700..3_300).contains(&dropped), "{dropped} of 10000");
        assert!(!(0..1_000).any(|_| d.drops(99, &mut rng)));
        assert!((0..1_000).all(|_| d.drops(200, &mut rng)));
    }
}
