//! The session relay driven through real russh channels (see [`stage`]):
//! what reaches the box and in which order, whose request a reply answers,
//! the EOF hold, sessions without a box, the agent-mode gate and a box that
//! vanishes. Time is paused: holds and timeouts elapse without sleeping.

mod ahead;
mod box_side;
mod output;
mod pump;
mod stage;

use super::input::{Gate, OPEN, OVERFLOWED, PENDING};

#[test]
fn the_gate_decides_once() {
    let opened = Gate::new(false);
    assert_eq!(opened.state(), PENDING);
    assert!(opened.open());
    assert!(opened.open(), "opening twice keeps it open");
    assert!(!opened.overflow(), "an open gate drains: wait instead");
    assert_eq!(opened.state(), OPEN);

    let overflowed = Gate::new(false);
    assert!(overflowed.overflow());
    assert!(overflowed.overflow(), "overflowing twice keeps it failed");
    assert!(!overflowed.open(), "a box arriving late is not used");
    assert_eq!(overflowed.state(), OVERFLOWED);

    assert_eq!(Gate::new(true).state(), OPEN, "key mode starts open");
}

#[test]
fn the_pending_limit_users_are_told_is_the_one_enforced() {
    let told = crate::notice::AGENT_PENDING_LIMIT;
    assert_eq!(told, format!("{} MiB", super::PENDING_BYTES >> 20));
    assert_eq!(super::PENDING_BYTES % (1 << 20), 0);
}
