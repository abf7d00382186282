//! The box's rate that sizes the read-ahead.

use std::time::{Duration, Instant};

use super::super::ahead::{PER_CHANNEL, Rate, SPAN, SPANS_AHEAD};

#[test]
fn read_ahead_follows_what_the_box_took_lately() {
    let start = Instant::now();
    let mut rate = Rate::new(start);
    assert_eq!(
        rate.allowance(start),
        0,
        "nothing is lent before the box reads"
    );
    rate.record(start, 1000);
    assert_eq!(rate.allowance(start), 1000 * SPANS_AHEAD);
    let next = start + SPAN + Duration::from_millis(1);
    rate.record(next, 10);
    assert_eq!(
        rate.allowance(next),
        1000 * SPANS_AHEAD,
        "the span before still counts"
    );
    let later = start + 2 * SPAN + Duration::from_millis(2);
    assert_eq!(
        rate.allowance(later),
        10 * SPANS_AHEAD,
        "the older span is gone"
    );
    assert_eq!(
        rate.allowance(later + 2 * SPAN),
        0,
        "a box that stopped reading is lent nothing more"
    );
}

#[test]
fn read_ahead_is_capped_per_channel() {
    let start = Instant::now();
    let mut rate = Rate::new(start);
    rate.record(start, PER_CHANNEL);
    assert_eq!(rate.allowance(start), PER_CHANNEL);
}
