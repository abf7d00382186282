//! One list+watch per kind and namespace: a kube-rs `watcher` (bookmarks on,
//! relist from scratch on `410 Gone`) behind the default backoff, feeding a
//! reflector store, and telling the builder when anything changed.
//!
//! Each object is trimmed (or dropped) by a `keep` function *before* it is
//! stored, so the store holds only what routes need. A relist (`Init` …
//! `InitDone`) replaces the store's whole content at once, so an object whose
//! delete was missed while the watch was down disappears then.
//!
//! Health: a watch error marks the watch failing (its routes stale). While
//! failing, a cheap probe (a one-item metadata list) runs every few seconds;
//! once it succeeds the watch is restarted, and the relist that follows both
//! proves the watch is back and brings the store up to date. (The watcher's
//! own resume emits nothing when it merely reconnects, so it cannot tell.)

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use futures_util::future::BoxFuture;
use kube::Api;
use kube::Resource;
use kube::api::ListParams;
use kube::runtime::WatchStreamExt as _;
use kube::runtime::reflector::{Store, store::Writer};
use kube::runtime::watcher::{self, Event};
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::ops::metrics::{self, Source};

/// The name the Kubernetes source publishes under.
pub const SOURCE: &str = "kubernetes";

/// How often a failing watch probes the API to see whether it is back.
const PROBE_EVERY: Duration = Duration::from_secs(3);

/// Trims an object to what is kept, or says it is not wanted (`None`).
pub(super) type Keep<K> = Arc<dyn Fn(&K) -> Option<K> + Send + Sync>;

/// Health of every watch, and the "something changed" signal.
pub(super) struct Shared {
    changed: watch::Sender<u64>,
    watches: Mutex<BTreeMap<String, Health>>,
}

#[derive(Default)]
struct Health {
    synced: bool,
    last_init_done: Option<Instant>,
    /// First and latest error of the current streak, and the latest message.
    failing: Option<(Instant, Instant, String)>,
}

impl Shared {
    pub(super) fn new() -> Arc<Self> {
        Arc::new(Self {
            changed: watch::Sender::new(0),
            watches: Mutex::new(BTreeMap::new()),
        })
    }

    /// Receives a new value whenever a store changed or a watch failed.
    pub(super) fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    fn bump(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Health>> {
        // Every update is a single assignment: a poisoned lock is consistent.
        self.watches.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// True once every watch had its first full list.
    pub(super) fn all_synced(&self) -> bool {
        self.lock().values().all(|h| h.synced)
    }

    /// True once every watch whose label starts with `prefix` had its first full list.
    pub(super) fn synced(&self, prefix: &str) -> bool {
        self.lock()
            .iter()
            .filter(|(label, _)| label.starts_with(prefix))
            .all(|(_, h)| h.synced)
    }

    /// True when every watch labelled `prefix…` finished a list after `since`.
    pub(super) fn relisted_since(&self, prefix: &str, since: Instant) -> bool {
        self.lock()
            .iter()
            .filter(|(label, _)| label.starts_with(prefix))
            .all(|(_, h)| h.last_init_done.is_some_and(|t| t >= since))
    }

    /// Why routes may be out of date (`None`: every watch is healthy).
    pub(super) fn staleness(&self) -> Option<String> {
        let watches = self.lock();
        let out: Vec<String> = watches
            .iter()
            .filter_map(|(label, health)| {
                let (since, _, error) = health.failing.as_ref()?;
                Some(format!(
                    "watching {label} failing for {}s: {error}",
                    since.elapsed().as_secs()
                ))
            })
            .collect();
        (!out.is_empty()).then(|| out.join("; "))
    }

    fn is_failing(&self, label: &str) -> bool {
        self.lock().get(label).is_some_and(|h| h.failing.is_some())
    }

    /// The first failure of a watch that never synced, if any (for `check`).
    pub(super) fn initial_failure(&self) -> Option<String> {
        self.lock().iter().find_map(|(label, h)| {
            let (_, _, error) = h.failing.as_ref().filter(|_| !h.synced)?;
            Some(format!("listing {label}: {error}"))
        })
    }

    fn add(&self, label: &str) {
        self.lock().insert(label.to_owned(), Health::default());
    }

    fn ok(&self, label: &str, init_done: bool) {
        let mut watches = self.lock();
        if let Some(h) = watches.get_mut(label) {
            if h.failing.take().is_some() {
                info!(watch = %label, "Kubernetes watch recovered");
            }
            if init_done {
                h.synced = true;
                h.last_init_done = Some(Instant::now());
            }
        }
    }

    fn failed(&self, label: &str, error: String) {
        let mut watches = self.lock();
        if let Some(h) = watches.get_mut(label) {
            let now = Instant::now();
            match &mut h.failing {
                Some((_, last, e)) => {
                    debug!(watch = %label, error = %error, "Kubernetes watch still failing");
                    *last = now;
                    *e = error;
                }
                None => {
                    if h.synced {
                        warn!(watch = %label, error = %error, "Kubernetes watch failed; serving the last known routes, retrying with backoff");
                    } else {
                        warn!(watch = %label, error = %error, "Kubernetes list failed; no routes from Kubernetes until it succeeds, retrying with backoff");
                    }
                    h.failing = Some((now, now, error));
                }
            }
        }
    }
}

/// A store, and the task that fills it from a watch of `api`.
///
/// `relist`: when given, the task waits for its first change before it
/// starts, and restarts the watch (a full relist) on every later change;
/// that is how the Secrets watch learns that routes want more Secrets.
pub(super) fn reflector<K>(
    api: Api<K>,
    config: watcher::Config,
    label: String,
    shared: Arc<Shared>,
    keep: Keep<K>,
    mut relist: Option<watch::Receiver<u64>>,
) -> (Store<K>, BoxFuture<'static, ()>)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let mut writer: Writer<K> = Writer::default();
    let store = writer.as_reader();
    shared.add(&label);
    let task = async move {
        if let Some(rx) = &mut relist
            && rx.changed().await.is_err()
        {
            return;
        }
        loop {
            let mut events = watcher::watcher(api.clone(), config.clone())
                .default_backoff()
                .boxed();
            let mut probe = tokio::time::interval(PROBE_EVERY);
            probe.reset();
            loop {
                let next = tokio::select! {
                    next = events.next() => next,
                    () = relist_requested(&mut relist) => {
                        debug!(watch = %label, "relisting");
                        break;
                    }
                    _ = probe.tick(), if shared.is_failing(&label) => {
                        if api.list_metadata(&ListParams::default().limit(1)).await.is_ok() {
                            info!(watch = %label, "Kubernetes API reachable again; relisting");
                            break;
                        }
                        continue;
                    }
                };
                match next {
                    Some(Ok(event)) => {
                        let init_done = matches!(event, Event::InitDone);
                        if let Some(event) = trim(event, &keep) {
                            writer.apply_watcher_event(&event);
                        }
                        shared.ok(&label, init_done);
                    }
                    Some(Err(e)) => {
                        metrics::get()
                            .route_reload_errors
                            .get_or_create(&Source { source: SOURCE })
                            .inc();
                        shared.failed(&label, chain(&e));
                    }
                    // The watcher never ends; if it did, start over.
                    None => break,
                }
                shared.bump();
            }
        }
    };
    (store, Box::pin(task))
}

/// Resolves when a relist is asked for; never when there is no such channel.
async fn relist_requested(relist: &mut Option<watch::Receiver<u64>>) {
    match relist {
        Some(rx) => {
            if rx.changed().await.is_err() {
                *relist = None;
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending().await,
    }
}

/// Applies `keep` to an event: an applied object that is no longer wanted
/// becomes a delete (so a stored copy goes away); an unwanted listed object
/// is skipped.
pub(super) fn trim<K: Clone>(event: Event<K>, keep: &Keep<K>) -> Option<Event<K>> {
    match event {
        Event::Apply(obj) => Some(match keep(&obj) {
            Some(kept) => Event::Apply(kept),
            None => Event::Delete(obj),
        }),
        Event::InitApply(obj) => keep(&obj).map(Event::InitApply),
        Event::Delete(obj) => Some(Event::Delete(obj)),
        Event::Init => Some(Event::Init),
        Event::InitDone => Some(Event::InitDone),
    }
}

/// An error and its causes, `outer: inner: root`, each said once.
fn chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let text = e.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = e.source();
    }
    out
}
