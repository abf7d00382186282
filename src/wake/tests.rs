//! Waits over a table the test rewrites, with a starter that plays the
//! cluster, on paused time.

use std::sync::Mutex as StdMutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::routes::{RouteTable, shared};

const NAME: &str = "box1.ns-abc";

fn route(running: bool, wake: bool) -> Route {
    let address = if running { "127.0.0.1:22" } else { "" };
    Route {
        user: Some("devbox".into()),
        state: if running {
            RouteState::Running
        } else {
            RouteState::Stopped { message: None }
        },
        sshgate_compat: true,
        wake: wake.then(|| WakeTarget::Devbox {
            namespace: "ns-abc".into(),
            name: "box1".into(),
        }),
        ..Route::for_test(NAME, address)
    }
}

/// Answers `busy` times Busy, then starts the box: the route runs after
/// that (what the controller and the source would do).
struct Cluster {
    routes: SharedRoutes,
    busy: AtomicUsize,
    calls: AtomicUsize,
    fail: bool,
}

impl Starter for Cluster {
    fn start<'a>(&'a self, _: &'a WakeTarget) -> BoxFuture<'a, Result<(), StartError>> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if self.fail {
                return Err(StartError::Failed("forbidden".into()));
            }
            if self
                .busy
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                return Err(StartError::Busy);
            }
            let routes = self.routes.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(3)).await;
                routes.store(Arc::new(RouteTable::new([route(true, true)])));
            });
            Ok(())
        })
    }
}

fn setup(route: Route, busy: usize, fail: bool, config: WakeConfig) -> (Arc<Wakes>, Arc<Cluster>) {
    let routes = shared(RouteTable::new([route]));
    let cluster = Arc::new(Cluster {
        routes: routes.clone(),
        busy: AtomicUsize::new(busy),
        calls: AtomicUsize::new(0),
        fail,
    });
    let wakes = Wakes::new(config, routes, Some(cluster.clone()));
    (wakes, cluster)
}

/// Waits for the box, "logging in" by returning the address; the phases
/// told are collected.
async fn wait(wakes: &Wakes) -> (Result<String, Notice>, Vec<WaitPhase>) {
    let phases = StdMutex::new(Vec::new());
    let result = wakes
        .until_up(
            NAME,
            |p| phases.lock().unwrap().push(p),
            |r| async move { Ok(r.address.clone()) },
        )
        .await;
    (result, phases.into_inner().unwrap())
}

#[tokio::test(start_paused = true)]
async fn a_stopped_box_is_started_once_for_every_waiter() {
    let (wakes, cluster) = setup(route(false, true), 2, false, WakeConfig::default());
    let ((a, phases), (b, _)) = tokio::join!(wait(&wakes), wait(&wakes));
    assert_eq!(a.as_deref(), Ok("127.0.0.1:22"));
    assert_eq!(b.as_deref(), Ok("127.0.0.1:22"));
    // Two 422s while committing, then one start that went through.
    assert_eq!(cluster.calls.load(Ordering::SeqCst), 3);
    assert_eq!(
        phases,
        [
            WaitPhase::Starting,
            WaitPhase::Committing,
            WaitPhase::Booting
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_box_that_stopped_again_within_the_cooldown_is_not_woken() {
    let (wakes, cluster) = setup(route(false, true), 0, false, WakeConfig::default());
    assert!(wait(&wakes).await.0.is_ok());
    wakes
        .routes
        .store(Arc::new(RouteTable::new([route(false, true)])));
    tokio::time::advance(Duration::from_secs(60)).await;
    let (again, _) = wait(&wakes).await;
    let Err(Notice::Wait(Wait::Cooldown { retry_in, .. })) = again else {
        panic!("not refused: {again:?}");
    };
    assert!(retry_in <= Duration::from_secs(540), "{retry_in:?}");
    assert_eq!(cluster.calls.load(Ordering::SeqCst), 1);
    // After the cooldown it is woken again.
    tokio::time::advance(Duration::from_secs(600)).await;
    assert!(wait(&wakes).await.0.is_ok());
    assert_eq!(cluster.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn a_box_without_a_wake_target_is_told_stopped_at_once() {
    let (wakes, cluster) = setup(route(false, false), 0, false, WakeConfig::default());
    let (result, phases) = wait(&wakes).await;
    assert!(matches!(result, Err(Notice::Stopped { .. })), "{result:?}");
    assert!(phases.is_empty());
    assert_eq!(cluster.calls.load(Ordering::SeqCst), 0);
    // Nor without a starter (waking off), whatever the route says.
    let wakes = Wakes::new(
        WakeConfig::default(),
        shared(RouteTable::new([route(false, true)])),
        None,
    );
    assert!(!wakes.waits_for(NAME));
    assert!(matches!(wait(&wakes).await.0, Err(Notice::Stopped { .. })));
}

#[tokio::test(start_paused = true)]
async fn a_refused_start_is_told() {
    let (wakes, _) = setup(route(false, true), 0, true, WakeConfig::default());
    let (result, _) = wait(&wakes).await;
    assert!(
        matches!(result, Err(Notice::Wait(Wait::WakeFailed { .. }))),
        "{result:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_timeout_names_the_phase_it_stuck_in() {
    let config = WakeConfig {
        timeout: Duration::from_secs(60),
        ..WakeConfig::default()
    };
    // Busy for ever: the commit never ends.
    let (wakes, _) = setup(route(false, true), usize::MAX, false, config);
    let (result, _) = wait(&wakes).await;
    let Err(Notice::Wait(Wait::TimedOut { phase, after, .. })) = result else {
        panic!("{result:?}");
    };
    assert_eq!(
        (phase, after),
        (WaitPhase::Committing, Duration::from_secs(60))
    );
}

/// Start-wait: the box runs, its sshd answers on the third try.
async fn flaky(wakes: &Wakes) -> (Result<(), Notice>, Vec<WaitPhase>) {
    let tries = AtomicUsize::new(0);
    let phases = StdMutex::new(Vec::new());
    let result = wakes
        .until_up(
            NAME,
            |p| phases.lock().unwrap().push(p),
            |r| {
                let n = tries.fetch_add(1, Ordering::SeqCst);
                async move {
                    if n < 2 {
                        return Err(Notice::Unreachable {
                            route: r.name.clone(),
                            address: r.address.clone(),
                            reason: "connection refused".into(),
                        });
                    }
                    Ok(())
                }
            },
        )
        .await;
    (result, phases.into_inner().unwrap())
}

#[tokio::test(start_paused = true)]
async fn start_wait_retries_a_box_that_does_not_answer_yet() {
    let config = WakeConfig {
        start_wait: Duration::from_secs(30),
        ..WakeConfig::default()
    };
    let (wakes, _) = setup(route(true, false), 0, false, config);
    let (result, phases) = flaky(&wakes).await;
    assert_eq!(result, Ok(()));
    assert_eq!(phases, [WaitPhase::Reaching]);
    // Without start-wait the first failure is told as it is.
    let (wakes, _) = setup(route(true, false), 0, false, WakeConfig::default());
    let (result, phases) = flaky(&wakes).await;
    assert!(
        matches!(result, Err(Notice::Unreachable { .. })),
        "{result:?}"
    );
    assert!(phases.is_empty());
}
