//! The reader's rate that sizes the read-ahead.

use std::time::{Duration, Instant};

use super::super::ahead::{PER_CHANNEL, Rate, SPAN, SPANS_AHEAD};

#[test]
fn read_ahead_follows_what_the_reader_kept_taking() {
    let start = Instant::now();
    let span = |n: u32| start + SPAN * n + Duration::from_millis(1);
    let mut rate = Rate::new(start);
    assert_eq!(
        rate.allowance(start),
        0,
        "nothing is lent before the reader reads"
    );
    rate.record(start, 1000);
    rate.record(span(1), 2000);
    assert_eq!(
        rate.allowance(span(1)),
        0,
        "one whole span is not a rate yet"
    );
    rate.record(span(2), 1500);
    assert_eq!(
        rate.allowance(span(2)),
        1000 * SPANS_AHEAD,
        "the slower of the last two whole spans"
    );
    assert_eq!(rate.allowance(span(3)), 1500 * SPANS_AHEAD);
    assert_eq!(
        rate.allowance(span(4)),
        0,
        "a span without reading ends the lending"
    );
}

#[test]
fn a_burst_earns_nothing() {
    let start = Instant::now();
    let mut rate = Rate::new(start);
    rate.record(start, 2 * 1024 * 1024);
    for n in 1..5 {
        let now = start + SPAN * n + Duration::from_millis(1);
        assert_eq!(rate.allowance(now), 0, "span {n}");
    }
}

#[test]
fn read_ahead_is_capped_per_channel() {
    let start = Instant::now();
    let mut rate = Rate::new(start);
    rate.record(start, PER_CHANNEL);
    rate.record(start + SPAN, PER_CHANNEL);
    assert_eq!(rate.allowance(start + 2 * SPAN), PER_CHANNEL);
}
