//! From stores to the route table: after every burst of watch events
//! (debounced), the mode's builder rebuilds the *whole* route set from the
//! stores, and it is published when it differs (by [`Route`]'s derived
//! equality) from the last set published. Rebuilding from the stores rather
//! than patching per event means a missed or replayed event can never leave
//! a route behind.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::reflect::{SOURCE, Shared};
use crate::routes::{Route, RouteSources};

/// Events arriving within this window after the first one are applied in one
/// rebuild (a rollout moves many pods at once).
const DEBOUNCE: Duration = Duration::from_millis(100);

/// How often watch health is re-read for `/readyz` when nothing happens.
const HEALTH_INTERVAL: Duration = Duration::from_secs(5);

/// One rebuild's outcome.
pub(super) struct Built {
    pub routes: Vec<Route>,
    /// Problems with individual objects (a route skipped or degraded), for `check`.
    pub problems: Vec<String>,
}

/// A mode's mapping from its stores to routes.
pub(super) trait Builder: Send + 'static {
    /// The complete route set, or `None` while the stores are not all
    /// synced yet (nothing is published before the first full sync).
    fn build(&mut self) -> Option<Built>;
}

/// What the last build found, for `switchboard check`.
#[derive(Clone, Debug, Default)]
pub(super) struct Report {
    pub routes: usize,
    pub problems: Vec<String>,
}

/// Runs forever: rebuild on change, publish on difference, report staleness.
pub(super) async fn run(
    shared: Arc<Shared>,
    sources: Arc<RouteSources>,
    mut builder: impl Builder,
    report: Arc<Mutex<Option<Report>>>,
) {
    let mut changed = shared.subscribe();
    // The watches may have synced before this task subscribed: build once anyway.
    changed.mark_changed();
    let mut health = tokio::time::interval(HEALTH_INTERVAL);
    // What was published last, so that identical rebuilds are not re-published.
    let mut last: Option<Vec<Route>> = None;
    loop {
        tokio::select! {
            r = changed.changed() => {
                if r.is_err() {
                    return;
                }
                tokio::time::sleep(DEBOUNCE).await;
                changed.borrow_and_update();
            }
            _ = health.tick() => {
                sources.set_stale(SOURCE, shared.staleness());
                continue;
            }
        }
        sources.set_stale(SOURCE, shared.staleness());
        let Some(built) = builder.build() else {
            continue;
        };
        *report.lock().unwrap_or_else(|e| e.into_inner()) = Some(Report {
            routes: built.routes.len(),
            problems: built.problems,
        });
        if last.as_ref() != Some(&built.routes) {
            sources.publish(SOURCE, built.routes.clone());
            last = Some(built.routes);
        }
    }
}
