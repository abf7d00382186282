//! The pre-auth limits' tables: shares, early drop, penalties, eviction.

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
