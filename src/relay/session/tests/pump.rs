//! client → box: order and replies with a box, acknowledgements and the
//! notice without one, and the agent-mode gate.

use std::time::Duration;

use russh::Sig;
use tokio::time::Instant;

use super::box_side::Reply;
use super::stage::{ROUTE, agent_stage, agent_stage_with, env, pty, stage, told, without_box};
use crate::notice::Notice;
use crate::relay::flow::CONTROL_DEPTH;
use crate::relay::session::{
    PENDING_BYTES, PENDING_OWN, PENDING_TOTAL, PendingBudget, PendingPool, REPLY_TIMEOUT, Request,
};

/// Long enough that anything on its way would have arrived.
const A_WHILE: Duration = Duration::from_secs(5);

#[tokio::test(start_paused = true)]
async fn input_reaches_the_box_in_order() {
    let mut s = stage(&[Reply::Success, Reply::Failure, Reply::Success]).await;
    assert!(s.relay.request(pty()).await, "the box took the pty");
    let resize = Request::WindowChange {
        cols: 100,
        rows: 40,
        pix_width: 0,
        pix_height: 0,
    };
    s.relay.notify(resize).await;
    assert!(
        !s.relay.request(env("LANG", "C")).await,
        "the box refused it"
    );
    assert!(s.relay.request(Request::Exec(b"cat".to_vec())).await);
    s.relay.data(b"hello");
    s.relay.extended_data(1, b"aside");
    s.relay.notify(Request::Signal(Sig::INT)).await;
    s.relay.eof().await;
    s.relay.close().await;

    let mut heard = Vec::new();
    while heard.last().is_none_or(|line| line != "close") {
        heard.push(s.at_box.heard().await);
    }
    let expected = [
        "pty xterm 80x24",
        "window 100x40",
        "env LANG=C",
        "exec cat",
        "data hello",
        "ext 1 aside",
        "signal INT",
        "eof",
        "close",
    ];
    assert_eq!(heard, expected);
}

#[tokio::test(start_paused = true)]
async fn each_reply_answers_its_own_request() {
    let script = [
        Reply::Failure,
        Reply::Success,
        Reply::Failure,
        Reply::Success,
    ];
    let mut s = stage(&script).await;
    // All four are queued before the box answers the first.
    let answers = tokio::join!(
        s.relay.request(env("A", "1")),
        s.relay.request(Request::AgentForward),
        s.relay.request(env("B", "2")),
        s.relay.request(Request::Subsystem("sftp".into())),
    );
    assert_eq!(answers, (false, true, false, true));
    let heard = s.at_box.heard_so_far();
    assert_eq!(heard, ["env A=1", "agent", "env B=2", "subsystem sftp"]);
}

#[tokio::test(start_paused = true)]
async fn requests_still_waiting_fail_when_the_box_vanishes() {
    let mut s = stage(&[Reply::Success, Reply::Silent]).await;
    assert!(s.relay.request(Request::Shell).await);
    assert_eq!(s.at_box.heard().await, "shell");
    let start = Instant::now();
    let vanish = async {
        assert_eq!(s.at_box.heard().await, "env A=1");
        s.at_box.vanish();
    };
    let (answer, ()) = tokio::join!(s.relay.request(env("A", "1")), vanish);
    assert!(!answer);
    assert!(
        start.elapsed() < REPLY_TIMEOUT,
        "failed at once, not timed out"
    );
}

#[tokio::test(start_paused = true)]
async fn a_request_the_box_never_answers_fails_after_the_timeout() {
    let s = stage(&[Reply::Silent]).await;
    let start = Instant::now();
    assert!(!s.relay.request(Request::Shell).await);
    assert!(start.elapsed() >= REPLY_TIMEOUT);
}

#[tokio::test(start_paused = true)]
async fn without_a_box_the_notice_waits_for_the_shell() {
    let commands = vec!["ssh a@web@gw".into(), "ssh a@db@gw".into()];
    let notice = Notice::ChooseRoute { commands };
    let (relay, mut user) = without_box(notice.clone()).await;
    assert!(relay.request(pty()).await, "acknowledged");
    assert!(relay.request(env("LANG", "C")).await, "acknowledged");
    relay.data(b"typed early");
    assert!(
        user.quiet_for(A_WHILE).await,
        "nothing told before the start"
    );

    assert!(relay.request(Request::Shell).await);
    // With a pty every line ends in CR LF.
    let told = told(&notice, true);
    assert!(told.contains("\r\n  ssh a@db@gw\r\n"), "{told:?}");
    assert_eq!(user.rest().await, [told.as_str(), "exit 1", "eof", "close"]);
}

#[tokio::test(start_paused = true)]
async fn without_a_box_exec_and_subsystem_tell_it_too() {
    let notice = Notice::Stopped {
        route: ROUTE.into(),
        note: None,
    };
    for start in [
        Request::Exec(b"ls".to_vec()),
        Request::Subsystem("sftp".into()),
    ] {
        let (relay, mut user) = without_box(notice.clone()).await;
        assert!(relay.request(start).await);
        let told = told(&notice, false);
        assert!(told.ends_with("reconnect\n"), "{told:?}");
        assert_eq!(user.rest().await, [told.as_str(), "exit 1", "eof", "close"]);
    }
}

#[tokio::test(start_paused = true)]
async fn without_a_box_a_session_closed_unstarted_is_told_nothing() {
    let notice = Notice::SessionRefused {
        route: ROUTE.into(),
    };
    let (relay, mut user) = without_box(notice).await;
    assert!(relay.request(env("LANG", "C")).await);
    relay.eof().await;
    relay.close().await;
    assert!(user.quiet_for(A_WHILE).await);
}

#[tokio::test(start_paused = true)]
async fn agent_mode_holds_input_until_the_login_ends() {
    let (mut s, login) = agent_stage().await;
    assert!(s.relay.request(pty()).await, "acknowledged at once");
    assert!(
        s.relay.request(Request::Shell).await,
        "acknowledged at once"
    );
    s.relay.data(b"typed early");
    tokio::time::sleep(A_WHILE).await;
    assert!(s.at_box.heard_so_far().is_empty(), "no box yet");

    login.done();
    s.relay.data(b"typed later");
    let mut heard = Vec::new();
    for _ in 0..3 {
        heard.push(s.at_box.heard().await);
    }
    // Data held together may reach the box as one packet.
    if heard[2] == "data typed early" {
        heard.push(s.at_box.heard().await);
    }
    let data: String = heard[2..]
        .iter()
        .map(|h| h.trim_start_matches("data "))
        .collect();
    assert_eq!(heard[..2], ["pty xterm 80x24", "shell"]);
    assert_eq!(data, "typed earlytyped later");
}

#[tokio::test(start_paused = true)]
async fn agent_mode_input_beyond_the_queue_fails_the_session() {
    let (mut s, login) = agent_stage().await;
    assert!(s.relay.request(pty()).await);
    // The pty takes one place: the last of these finds the inbox full.
    for _ in 1..CONTROL_DEPTH {
        s.relay.notify(env("X", "x")).await;
    }
    assert!(!s.relay.request(Request::Shell).await, "the session failed");

    login.done();
    let told = told(
        &Notice::InputOverflow {
            route: ROUTE.into(),
        },
        true,
    );
    assert_eq!(
        s.user.rest().await,
        [told.as_str(), "exit 1", "eof", "close"]
    );
    assert_eq!(
        s.at_box.heard().await,
        "close",
        "the box channel is closed unused"
    );
    tokio::time::sleep(A_WHILE).await;
    assert!(
        s.at_box.heard_so_far().is_empty(),
        "nothing else reached the box"
    );
}

#[tokio::test(start_paused = true)]
async fn agent_mode_input_beyond_the_connection_budget_fails_the_session() {
    // Two sessions of one provisional connection share its allowance.
    let budget = PendingBudget::new(PendingPool::new());
    let (mut first, _first_login) = agent_stage_with(budget.clone()).await;
    let (mut second, login) = agent_stage_with(budget).await;
    let value = "x".repeat(16 * 1024);
    let half = PENDING_BYTES / 2 / value.len();
    for _ in 0..half {
        first.relay.notify(env("X", &value)).await;
    }
    // The second session finds the allowance spent well before its inbox is full.
    for _ in 0..half {
        second.relay.notify(env("X", &value)).await;
    }
    assert!(
        !second.relay.request(Request::Shell).await,
        "the session failed"
    );
    login.done();
    let told = told(
        &Notice::InputOverflow {
            route: ROUTE.into(),
        },
        false,
    );
    assert_eq!(
        second.user.rest().await,
        [told.as_str(), "exit 1", "eof", "close"]
    );
    assert_eq!(
        second.at_box.heard().await,
        "close",
        "nothing reached the box"
    );
    let _ = &mut first;
}

#[test]
fn the_pool_bounds_all_provisional_connections_and_comes_back() {
    let pool = PendingPool::new();
    let per = PENDING_BYTES;
    let budgets: Vec<_> = (0..PENDING_TOTAL / (per - PENDING_OWN))
        .map(|_| PendingBudget::new(pool.clone()))
        .collect();
    for b in &budgets {
        assert!(b.spend(per), "each connection gets its own allowance");
    }
    let rest = PENDING_TOTAL - budgets.len() * (per - PENDING_OWN);
    let last = PendingBudget::new(pool.clone());
    assert!(last.spend(PENDING_OWN + rest), "the pool's last bytes");
    let late = PendingBudget::new(pool.clone());
    assert!(late.spend(PENDING_OWN), "its own part needs no pool");
    assert!(!late.spend(1), "the pool is spent");
    budgets[0].settle();
    assert!(
        budgets[0].spend(per * 4),
        "a settled connection is not limited"
    );
    assert!(
        late.spend(per - PENDING_OWN),
        "settling gave the bytes back"
    );
    drop(budgets);
    let again = PendingBudget::new(pool);
    assert!(again.spend(per), "ended connections gave theirs back");
}

/// The client's close ends the output side at once (russh drops the box's
/// answering close, so it must not wait for one): a request still waiting
/// fails then, not at the reply timeout.
#[tokio::test(start_paused = true)]
async fn the_clients_close_ends_the_output_side_at_once() {
    let mut s = stage(&[Reply::Silent]).await;
    let start = Instant::now();
    let close = async {
        assert_eq!(s.at_box.heard().await, "shell");
        s.relay.close().await;
    };
    let (answer, ()) = tokio::join!(s.relay.request(Request::Shell), close);
    assert!(!answer);
    assert!(start.elapsed() < REPLY_TIMEOUT, "ended at the close");
}

#[tokio::test(start_paused = true)]
async fn input_handed_on_ahead_of_the_box_keeps_its_order() {
    let mut s = stage(&[Reply::Success]).await;
    assert!(s.relay.request(Request::Exec(b"cat".to_vec())).await);
    // Enough, fast enough, that the box's rate earns read-ahead: requests
    // and EOF must still follow the data sent before them.
    let piece = |i: usize| format!("{i:05}{}", "x".repeat(4090));
    let mut sent = [String::new(), String::new()];
    for (part, range) in [0..300, 300..600].into_iter().enumerate() {
        for i in range {
            s.relay.data(piece(i).as_bytes());
            sent[part].push_str(&piece(i));
        }
        s.relay.notify(Request::Signal(Sig::INT)).await;
    }
    s.relay.eof().await;
    s.relay.close().await;

    let mut heard = vec![String::new()];
    loop {
        let line = s.at_box.heard().await;
        if let Some(data) = line.strip_prefix("data ") {
            heard.last_mut().expect("a part").push_str(data);
        } else if line == "signal INT" {
            heard.push(String::new());
        } else if line == "close" {
            break;
        } else {
            assert!(line == "exec cat" || line == "eof", "unexpected {line}");
        }
    }
    assert_eq!(heard.len(), 3, "two signals");
    assert!(
        heard[0] == sent[0],
        "the first part, whole, before the first signal"
    );
    assert!(
        heard[1] == sent[1],
        "the second part, whole, before the second signal"
    );
    assert!(heard[2].is_empty());
}
