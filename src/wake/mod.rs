//! Waiting for a box that is stopped or still starting (`[wake]`).
//!
//! - Wake on connect: a stopped route with a [`WakeTarget`] (the
//!   Kubernetes source, `wake = true`) is started through a [`Starter`] —
//!   one start request per box at a time across the gateway's connections,
//!   and none again within `wake.cooldown` — then waited for until it is
//!   running and a login succeeds, up to `wake.timeout`.
//! - Start-wait: a running box that does not answer yet (just created,
//!   restarting) is retried up to `wake.start_wait`.
//!
//! Only fronts that have authorized a key for the box ask this module
//! (key-mode sessions and forwards, jumps whose key is authorized for the
//! route): an unauthenticated or agent-mode-pending client never wakes a
//! box. Progress is reported as [`WaitPhase`]s; the fronts render it
//! (stderr lines for sessions, nothing for `-W`/`-J`).

#[cfg(feature = "kubernetes")]
pub mod kube;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::config::WakeConfig;
use crate::notice::{Notice, Wait, WaitPhase};
use crate::ops::metrics;
use crate::routes::{Route, RouteState, SharedRoutes, WakeTarget};

/// How often a wait looks at the route table and retries the box.
const POLL: Duration = Duration::from_millis(250);
/// The first pause before a start request the cluster refused as busy is
/// repeated; it doubles up to [`BUSY_BACKOFF_MAX`].
const BUSY_BACKOFF: Duration = Duration::from_millis(500);
const BUSY_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Asks the platform to start a box.
pub trait Starter: Send + Sync {
    fn start<'a>(&'a self, target: &'a WakeTarget) -> BoxFuture<'a, Result<(), StartError>>;
}

/// Why a start request did not go through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartError {
    /// Not now (a Sealos Devbox saving a commit answers 422): asked again.
    Busy,
    /// Refused or failed; the reason is for the operator's log.
    Failed(String),
}

/// Where one box's start request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Request {
    Pending(WaitPhase),
    Failed,
}

/// One box's latest wake: when it was asked for, and how it goes.
struct Woken {
    at: Instant,
    request: watch::Receiver<Request>,
    /// A waiter logged in since: the box came up, so a stopped box now is
    /// stopped again (the cooldown applies), not still starting.
    up: bool,
}

/// The gateway's waits for boxes: the configuration, the live route table,
/// and the wake of each box asked for lately.
pub struct Wakes {
    config: WakeConfig,
    routes: SharedRoutes,
    starter: Option<Arc<dyn Starter>>,
    woken: Mutex<HashMap<String, Woken>>,
}

impl Wakes {
    /// `starter`: `None` when waking is off (no route is woken then).
    pub fn new(
        config: WakeConfig,
        routes: SharedRoutes,
        starter: Option<Arc<dyn Starter>>,
    ) -> Arc<Self> {
        Arc::new(Self {
            config,
            routes,
            starter,
            woken: Mutex::default(),
        })
    }

    /// How often a waiting session is told it still waits.
    pub fn heartbeat(&self) -> Duration {
        self.config.heartbeat
    }

    /// Whether reaching the route called `name` means waiting from the
    /// start: it is stopped and can be woken.
    pub fn waits_for(&self, name: &str) -> bool {
        let table = self.routes.load();
        let Some(route) = table.get(name) else {
            return false;
        };
        match route.state {
            RouteState::Stopped { .. } => self.target(route).is_some(),
            RouteState::Running => false,
        }
    }

    /// Whether a first attempt that failed with `notice` is worth a wait:
    /// the box does not answer yet and `start_wait` is set.
    pub fn retries(&self, notice: &Notice) -> bool {
        !self.config.start_wait.is_zero() && retryable(notice)
    }

    fn target<'a>(&self, route: &'a Route) -> Option<&'a WakeTarget> {
        self.starter.as_ref().and(route.wake.as_ref())
    }

    /// Reaches the route called `name` with `attempt` (a login, a dial),
    /// waking it first when it is stopped and wakeable, and retrying while
    /// it does not answer, within `wake.timeout` of a wake or `start_wait`
    /// otherwise. `phase` is told each phase the wait enters. Without any
    /// wait, this is `attempt` once, its notice unchanged.
    pub async fn until_up<T, F, Fut>(
        &self,
        name: &str,
        phase: impl Fn(WaitPhase),
        mut attempt: F,
    ) -> Result<T, Notice>
    where
        F: FnMut(Arc<Route>) -> Fut,
        Fut: Future<Output = Result<T, Notice>>,
    {
        let started = Instant::now();
        let mut limit = self.config.start_wait;
        let mut wake: Option<watch::Receiver<Request>> = None;
        let mut told: Option<WaitPhase> = None;
        let tell = |told: &mut Option<WaitPhase>, p: WaitPhase| {
            if *told != Some(p) {
                *told = Some(p);
                phase(p);
            }
        };
        loop {
            let route = self.routes.load().get(name).cloned();
            let Some(route) = route else {
                return Err(Notice::Stopped {
                    route: name.to_owned(),
                    note: None,
                });
            };
            match &route.state {
                RouteState::Running => match attempt(route.clone()).await {
                    Ok(up) => {
                        self.came_up(name, wake.is_some(), told.is_some(), started);
                        return Ok(up);
                    }
                    Err(notice) if !retryable(&notice) => return Err(notice),
                    // No wait at all (start_wait off): told as it is.
                    Err(notice) if limit.is_zero() && wake.is_none() => return Err(notice),
                    Err(_) => tell(&mut told, WaitPhase::Reaching),
                },
                RouteState::Stopped { .. } => {
                    if wake.is_none() {
                        wake = Some(self.join_or_wake(&route)?);
                        limit = self.config.timeout;
                    }
                    match wake.as_ref().map(|w| *w.borrow()) {
                        Some(Request::Pending(p)) => tell(&mut told, p),
                        Some(Request::Failed) | None => {
                            return Err(Notice::Wait(Wait::WakeFailed {
                                route: name.to_owned(),
                            }));
                        }
                    }
                }
            }
            if started.elapsed() >= limit {
                metrics::get().wake("timed_out");
                return Err(Notice::Wait(Wait::TimedOut {
                    route: name.to_owned(),
                    phase: told.unwrap_or(WaitPhase::Reaching),
                    after: limit,
                }));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The wait reached the box: counted, and the wake marked as done.
    fn came_up(&self, name: &str, woke: bool, waited: bool, started: Instant) {
        if woke && let Some(w) = lock(&self.woken).get_mut(name) {
            w.up = true;
        }
        if waited {
            metrics::get().wake("ready");
            metrics::get()
                .wake_seconds
                .observe(started.elapsed().as_secs_f64());
        }
    }

    /// The stopped `route`'s wake: the one in progress, or a new one unless
    /// the box was woken within the cooldown (or cannot be woken).
    fn join_or_wake(&self, route: &Route) -> Result<watch::Receiver<Request>, Notice> {
        let (Some(target), Some(starter)) = (self.target(route), self.starter.clone()) else {
            return Err(match &route.state {
                RouteState::Stopped { message } => Notice::Stopped {
                    route: route.name.clone(),
                    note: message.clone(),
                },
                RouteState::Running => Notice::LostBox {
                    route: route.name.clone(),
                },
            });
        };
        let (timeout, cooldown) = (self.config.timeout, self.config.cooldown);
        let mut woken = lock(&self.woken);
        woken.retain(|_, w| w.at.elapsed() < timeout.max(cooldown));
        if let Some(w) = woken.get(&route.name) {
            let since = w.at.elapsed();
            if !w.up && since < timeout {
                metrics::get().wake("joined");
                return Ok(w.request.clone());
            }
            if since < cooldown {
                metrics::get().wake("cooldown");
                info!(route = %route.name, "not waking the box again within wake.cooldown");
                return Err(Notice::Wait(Wait::Cooldown {
                    route: route.name.clone(),
                    cooldown,
                    retry_in: cooldown - since,
                }));
            }
        }
        let (tx, rx) = watch::channel(Request::Pending(WaitPhase::Starting));
        let woke = Woken {
            at: Instant::now(),
            request: rx.clone(),
            up: false,
        };
        woken.insert(route.name.clone(), woke);
        drop(woken);
        metrics::get().wake("started");
        info!(route = %route.name, target = ?target, "waking the box");
        let (target, name) = (target.clone(), route.name.clone());
        let until = Instant::now() + timeout;
        tokio::spawn(async move { request_start(&*starter, &target, &name, &tx, until).await });
        Ok(rx)
    }
}

/// Asks `starter` to start the box, again while it is busy (until
/// `until`), and publishes how it goes.
async fn request_start(
    starter: &dyn Starter,
    target: &WakeTarget,
    name: &str,
    request: &watch::Sender<Request>,
    until: Instant,
) {
    let active = &metrics::get().wakes_active;
    active.inc();
    let mut pause = BUSY_BACKOFF;
    loop {
        match starter.start(target).await {
            Ok(()) => {
                request.send_replace(Request::Pending(WaitPhase::Booting));
                break;
            }
            Err(StartError::Busy) => {
                request.send_replace(Request::Pending(WaitPhase::Committing));
                if Instant::now() + pause >= until {
                    break;
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(BUSY_BACKOFF_MAX);
            }
            Err(StartError::Failed(why)) => {
                warn!(route = %name, error = %why, "could not wake the box");
                metrics::get().wake("failed");
                request.send_replace(Request::Failed);
                break;
            }
        }
    }
    active.dec();
}

/// Failures that a box still starting gives: worth another try.
fn retryable(notice: &Notice) -> bool {
    matches!(
        notice,
        Notice::Unreachable { .. } | Notice::HandshakeTimeout { .. }
    )
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every write under this lock is a map update that cannot panic midway.
    m.lock().unwrap_or_else(|e| e.into_inner())
}
