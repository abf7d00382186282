//! Several sources, one table: each source (the routes file, Kubernetes)
//! publishes its whole current set of routes; the table served to clients is
//! rebuilt from every source's latest set and swapped in atomically.
//!
//! A name claimed by two sources goes to the source registered first (the
//! routes file, so an operator can override a cluster route by hand); the
//! clash is logged on every rebuild, never silently.
//!
//! Readiness: a registered source is *pending* until its first full publish;
//! the gateway serves no client while any source is pending (SPEC §7: no
//! client served before the first full sync).
//!
//! Staleness: a source that cannot refresh its routes (the Kubernetes API is
//! unreachable) keeps serving the last ones it published and says so through
//! [`RouteSources::set_stale`]; `/readyz` reports it without turning the
//! gateway unready (every replica would lose it at once).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::watch;
use tracing::{error, warn};

use super::{LoginMethod, Route, RouteTable, SharedRoutes, UserTrust, shared};
use crate::ops::metrics::{self, Source};

/// Why a `login = "certificate"` route is skipped on a gateway without a user CA.
pub const NO_USER_CA: &str = "login = \"certificate\" needs the gateway's user CA, and \
     upstream.user_ca_key_file is not set";

struct Part {
    source: &'static str,
    /// `None` until the first full publish.
    routes: Option<Arc<Vec<Route>>>,
    /// Since when, and why, the routes cannot be refreshed.
    stale: Option<(Instant, String)>,
}

/// Every source's latest routes and the table built from them.
pub struct RouteSources {
    table: SharedRoutes,
    parts: Mutex<Vec<Part>>,
    /// The certificate trust every rebuilt table carries.
    trust: Mutex<Arc<UserTrust>>,
    ready: watch::Sender<bool>,
    /// Whether the gateway has a user CA (`upstream.user_ca_key_file`):
    /// without one, every `login = "certificate"` route is skipped.
    user_ca: AtomicBool,
}

impl RouteSources {
    /// No sources yet: ready, with an empty table.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            table: shared(RouteTable::default()),
            parts: Mutex::new(Vec::new()),
            trust: Mutex::default(),
            ready: watch::Sender::new(true),
            user_ca: AtomicBool::new(false),
        })
    }

    /// Says whether the gateway has a user CA to mint login certificates
    /// with; set before the first publish (routes published earlier are not
    /// re-checked).
    pub fn set_user_ca(&self, configured: bool) {
        self.user_ca.store(configured, Ordering::Release);
    }

    /// Whether `login = "certificate"` routes can be served.
    pub fn user_ca(&self) -> bool {
        self.user_ca.load(Ordering::Acquire)
    }

    /// The table connections read.
    pub fn table(&self) -> &SharedRoutes {
        &self.table
    }

    /// Adds a source; it is pending (the gateway not ready) until its first
    /// [`publish`](Self::publish). Registering a name twice is a no-op.
    pub fn register(&self, source: &'static str) {
        let mut parts = self.lock();
        if parts.iter().any(|p| p.source == source) {
            return;
        }
        parts.push(Part {
            source,
            routes: None,
            stale: None,
        });
        self.ready.send_replace(false);
    }

    /// Replaces everything `source` contributes (registering it if needed)
    /// and swaps in the rebuilt table.
    pub fn publish(&self, source: &'static str, mut routes: Vec<Route>) {
        if !self.user_ca() {
            routes.retain(|r| {
                let servable = r.login != LoginMethod::Certificate;
                if !servable {
                    error!(route = %r.name, "{source}: route \"{}\": {NO_USER_CA}; route skipped", r.name);
                }
                servable
            });
        }
        let m = metrics::get();
        m.routes
            .get_or_create(&Source { source })
            .set(i64::try_from(routes.len()).unwrap_or(i64::MAX));
        m.route_reloads.get_or_create(&Source { source }).inc();
        let mut parts = self.lock();
        match parts.iter_mut().find(|p| p.source == source) {
            Some(part) => part.routes = Some(Arc::new(routes)),
            None => parts.push(Part {
                source,
                routes: Some(Arc::new(routes)),
                stale: None,
            }),
        }
        let table = build(&parts).with_trust(self.current_trust());
        self.table.store(Arc::new(table));
        let ready = parts.iter().all(|p| p.routes.is_some());
        drop(parts);
        self.ready.send_if_modified(|r| {
            let changed = *r != ready;
            *r = ready;
            changed
        });
    }

    /// Replaces the gateway's certificate trust and swaps in a table that
    /// carries it.
    pub fn set_trust(&self, trust: Arc<UserTrust>) {
        *self.trust.lock().unwrap_or_else(|e| e.into_inner()) = trust.clone();
        let parts = self.lock();
        self.table.store(Arc::new(build(&parts).with_trust(trust)));
    }

    fn current_trust(&self) -> Arc<UserTrust> {
        // Poison-safe like `lock`: the value is replaced whole.
        self.trust.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The routes `source` published last (empty before its first publish),
    /// as a table of their own; a source's reload merges against this.
    pub fn routes_of(&self, source: &str) -> RouteTable {
        let parts = self.lock();
        let routes = parts
            .iter()
            .find(|p| p.source == source)
            .and_then(|p| p.routes.clone());
        drop(parts);
        RouteTable::new(routes.iter().flat_map(|r| r.iter().cloned()))
    }

    /// Marks `source`'s routes as stale because it cannot refresh them now
    /// (`why`, which must not contain secrets), or fresh again (`None`). The
    /// routes keep being served either way.
    pub fn set_stale(&self, source: &'static str, why: Option<String>) {
        let mut parts = self.lock();
        let Some(part) = parts.iter_mut().find(|p| p.source == source) else {
            return;
        };
        part.stale = match (part.stale.take(), why) {
            (_, None) => None,
            (Some((since, _)), Some(why)) => Some((since, why)),
            (None, Some(why)) => Some((Instant::now(), why)),
        };
    }

    /// Every registered source with how long (seconds) it has served routes
    /// it cannot refresh; 0 when fresh.
    pub fn staleness(&self) -> Vec<(&'static str, u64)> {
        let parts = self.lock();
        parts
            .iter()
            .map(|p| {
                let secs = p
                    .stale
                    .as_ref()
                    .map_or(0, |(since, _)| since.elapsed().as_secs());
                (p.source, secs)
            })
            .collect()
    }

    /// One line per source serving last-known routes:
    /// `kubernetes: not refreshed for 42s: <why>`.
    pub fn stale(&self) -> Vec<String> {
        let parts = self.lock();
        parts
            .iter()
            .filter_map(|p| {
                let (since, why) = p.stale.as_ref()?;
                Some(format!(
                    "{}: not refreshed for {}s: {why}",
                    p.source,
                    since.elapsed().as_secs()
                ))
            })
            .collect()
    }

    /// True once every registered source has published once.
    pub fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }

    /// Resolves once every registered source has published once.
    pub async fn wait_ready(&self) {
        let mut rx = self.ready.subscribe();
        // The sender lives in `self`, so this cannot fail while we are borrowed.
        let _ = rx.wait_for(|ready| *ready).await;
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Part>> {
        // A panic while holding this lock leaves consistent data (every write
        // is a single assignment), so a poisoned lock is still usable.
        self.parts.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One table from every source, first source winning a name.
fn build(parts: &[Part]) -> RouteTable {
    let mut seen: std::collections::HashMap<&str, &'static str> = Default::default();
    let mut all = Vec::new();
    for part in parts {
        for route in part.routes.iter().flat_map(|r| r.iter()) {
            if let Some(owner) = seen.get(route.name.as_str()) {
                warn!(
                    route = %route.name,
                    "route defined by both {owner} and {}; using the one from {owner}",
                    part.source
                );
                continue;
            }
            seen.insert(&route.name, part.source);
            all.push(route.clone());
        }
    }
    RouteTable::new(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(name: &str, address: &str) -> Route {
        Route::for_test(name, address)
    }

    #[test]
    fn pending_until_every_source_published() {
        let sources = RouteSources::new();
        assert!(sources.is_ready());
        sources.register("file");
        sources.register("kubernetes");
        assert!(!sources.is_ready());
        sources.publish("file", vec![route("a", "127.0.0.1:1")]);
        assert!(!sources.is_ready());
        sources.publish("kubernetes", vec![]);
        assert!(sources.is_ready());
        assert_eq!(sources.table().load().len(), 1);
    }

    #[test]
    fn certificate_routes_need_the_user_ca() {
        let mut cert = route("c", "10.0.0.3:22");
        cert.login = crate::routes::LoginMethod::Certificate;
        let sources = RouteSources::new();
        sources.publish("file", vec![route("a", "10.0.0.1:22"), cert.clone()]);
        let table = sources.table().load();
        assert!(table.get("c").is_none() && table.get("a").is_some());
        sources.set_user_ca(true);
        sources.publish("file", vec![route("a", "10.0.0.1:22"), cert]);
        assert!(sources.table().load().get("c").is_some());
    }

    #[test]
    fn stale_is_reported_and_keeps_routes() {
        let sources = RouteSources::new();
        sources.publish("kubernetes", vec![route("a.ns", "10.0.0.1:22")]);
        assert!(sources.stale().is_empty());
        sources.set_stale("kubernetes", Some("API unreachable".into()));
        sources.set_stale("kubernetes", Some("still unreachable".into()));
        assert_eq!(
            sources.stale(),
            ["kubernetes: not refreshed for 0s: still unreachable"]
        );
        assert!(sources.is_ready());
        assert_eq!(sources.table().load().len(), 1);
        sources.set_stale("kubernetes", None);
        assert!(sources.stale().is_empty());
    }

    #[test]
    fn first_source_wins_a_name_and_others_stay() {
        let sources = RouteSources::new();
        sources.register("file");
        sources.register("kubernetes");
        sources.publish(
            "kubernetes",
            vec![route("a", "10.0.0.1:22"), route("b.ns", "10.0.0.2:22")],
        );
        sources.publish("file", vec![route("a", "127.0.0.1:22")]);
        let table = sources.table().load();
        assert_eq!(
            table.get("a").map(|r| r.address.as_str()),
            Some("127.0.0.1:22")
        );
        assert!(table.get("b.ns").is_some());
        // A source replacing its set removes its own routes only.
        sources.publish("kubernetes", vec![]);
        let table = sources.table().load();
        assert_eq!(table.names(), vec!["a"]);
        assert_eq!(sources.routes_of("file").len(), 1);
        assert_eq!(sources.routes_of("kubernetes").len(), 0);
    }
}
