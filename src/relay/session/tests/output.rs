//! box → client: order, the EOF hold, and a box that vanishes.

use std::time::Duration;

use russh::Sig;
use tokio::time::{Instant, sleep};

use super::stage::{ROUTE, Stage, stage};
use crate::notice::Notice;
use crate::relay::session::Request;
use crate::relay::session::output::EOF_HOLD;

/// A key-mode session whose shell the box has started.
async fn started() -> Stage {
    let mut s = stage(&[]).await;
    assert!(s.relay.request(Request::Shell).await);
    assert_eq!(s.at_box.heard().await, "shell");
    s
}

/// What the user sees when the box's connection ends under the session.
fn lost() -> String {
    format!(
        "ext 1 \n{}\n",
        Notice::LostBox {
            route: ROUTE.into()
        }
    )
}

#[tokio::test(start_paused = true)]
async fn box_output_reaches_the_user_in_order() {
    let mut s = started().await;
    s.at_box.data("out").await;
    s.at_box.stderr("err").await;
    s.at_box.data("more").await;
    // As sshd ends a command: EOF, then at once the exit status.
    s.at_box.eof().await;
    s.at_box.exit(3).await;
    s.at_box.close().await;
    let expected = [
        "data out",
        "ext 1 err",
        "data more",
        "exit 3",
        "eof",
        "close",
    ];
    assert_eq!(s.user.rest().await, expected);
}

#[tokio::test(start_paused = true)]
async fn an_exit_status_within_the_hold_overtakes_eof() {
    let mut s = started().await;
    s.at_box.eof().await;
    sleep(EOF_HOLD - Duration::from_millis(50)).await;
    s.at_box.exit(0).await;
    assert_eq!(s.user.next().await, "exit 0");
    assert_eq!(s.user.next().await, "eof");
    s.at_box.close().await;
    assert_eq!(s.user.rest().await, ["close"]);
}

#[tokio::test(start_paused = true)]
async fn an_exit_signal_overtakes_eof_too() {
    let mut s = started().await;
    s.at_box.eof().await;
    s.at_box.killed_by(Sig::TERM).await;
    s.at_box.close().await;
    assert_eq!(s.user.rest().await, ["killed by TERM", "eof", "close"]);
}

#[tokio::test(start_paused = true)]
async fn eof_alone_is_passed_on_when_the_hold_ends() {
    let mut s = started().await;
    s.at_box.eof().await;
    let start = Instant::now();
    assert_eq!(s.user.next().await, "eof");
    let held = start.elapsed();
    assert!(held >= EOF_HOLD, "{held:?}");
    assert!(held < EOF_HOLD + Duration::from_millis(20), "{held:?}");
    // An exit status after the hold simply follows.
    s.at_box.exit(0).await;
    s.at_box.close().await;
    assert_eq!(s.user.rest().await, ["exit 0", "close"]);
}

#[tokio::test(start_paused = true)]
async fn output_after_eof_releases_it_first() {
    let mut s = started().await;
    s.at_box.eof().await;
    s.at_box.data("late").await;
    let start = Instant::now();
    assert_eq!(s.user.next().await, "eof");
    assert!(start.elapsed() < EOF_HOLD, "not held for the whole time");
    assert_eq!(s.user.next().await, "data late");
    s.at_box.close().await;
    assert_eq!(s.user.rest().await, ["close"]);
}

#[tokio::test(start_paused = true)]
async fn a_close_after_eof_passes_it_on_first() {
    let mut s = started().await;
    s.at_box.eof().await;
    s.at_box.close().await;
    let start = Instant::now();
    assert_eq!(s.user.rest().await, ["eof", "close"]);
    assert!(start.elapsed() < EOF_HOLD, "not held for the whole time");
}

#[tokio::test(start_paused = true)]
async fn a_box_that_vanishes_is_told_as_lost() {
    let mut s = started().await;
    s.at_box.data("hi").await;
    assert_eq!(s.user.next().await, "data hi");
    s.at_box.vanish();
    let lost = lost();
    assert_eq!(
        s.user.rest().await,
        [lost.as_str(), "exit 1", "eof", "close"]
    );
}

#[tokio::test(start_paused = true)]
async fn a_box_vanishing_during_the_hold_ends_with_one_eof() {
    let mut s = started().await;
    s.at_box.eof().await;
    sleep(EOF_HOLD / 2).await;
    s.at_box.vanish();
    let lost = lost();
    assert_eq!(
        s.user.rest().await,
        [lost.as_str(), "exit 1", "eof", "close"]
    );
}

#[tokio::test(start_paused = true)]
async fn a_box_that_exited_then_vanished_is_not_lost() {
    let mut s = started().await;
    s.at_box.exit(0).await;
    assert_eq!(s.user.next().await, "exit 0");
    s.at_box.vanish();
    assert_eq!(s.user.rest().await, ["close"]);
}

/// The handler learns from the relay that a session the box ended is over
/// (russh reports no close for a channel the gateway closed first).
#[tokio::test(start_paused = true)]
async fn a_session_the_box_ended_says_so() {
    let mut s = started().await;
    assert!(!s.relay.is_ended());
    s.at_box.exit(0).await;
    s.at_box.close().await;
    assert_eq!(s.user.rest().await, ["exit 0", "close"]);
    assert!(s.relay.is_ended());
}
