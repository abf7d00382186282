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
mod tests;
