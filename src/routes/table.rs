//! The route table: an immutable snapshot indexed by name and by key, swapped
//! atomically whenever a source changes.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use russh::keys::PublicKey;
use russh::keys::ssh_key::public::KeyData;

use super::{Route, UserTrust};

/// One consistent view of every route, and of the gateway's trust in user
/// certificates.
#[derive(Debug, Default)]
pub struct RouteTable {
    by_name: HashMap<String, Arc<Route>>,
    by_key: HashMap<KeyData, Vec<Arc<Route>>>,
    /// Routes by the certificate principals they allow (`principals`).
    by_principal: HashMap<String, Vec<Arc<Route>>>,
    /// Routes by the CAs of their `cert-authority` lines.
    by_ca: HashMap<KeyData, Vec<Arc<Route>>>,
    trust: Arc<UserTrust>,
}

impl RouteTable {
    /// Builds the indexes. Later duplicates of a name are the caller's problem:
    /// sources validate uniqueness; here the first one wins.
    pub fn new(routes: impl IntoIterator<Item = Route>) -> Self {
        let mut by_name: HashMap<String, Arc<Route>> = HashMap::new();
        for route in routes {
            by_name
                .entry(route.name.clone())
                .or_insert_with(|| Arc::new(route));
        }
        let mut by_key: HashMap<KeyData, Vec<Arc<Route>>> = HashMap::new();
        for route in by_name.values() {
            for key in &route.authorized_keys {
                let list = by_key.entry(key.key_data().clone()).or_default();
                if !list.iter().any(|r| r.name == route.name) {
                    list.push(route.clone());
                }
            }
        }
        let mut by_principal: HashMap<String, Vec<Arc<Route>>> = HashMap::new();
        let mut by_ca: HashMap<KeyData, Vec<Arc<Route>>> = HashMap::new();
        for route in by_name.values() {
            for principal in &route.user_certs.principals {
                push_once(by_principal.entry(principal.clone()).or_default(), route);
            }
            for ca in &route.user_certs.authorities {
                push_once(by_ca.entry(ca.key.key_data().clone()).or_default(), route);
            }
        }
        for list in by_key
            .values_mut()
            .chain(by_principal.values_mut())
            .chain(by_ca.values_mut())
        {
            list.sort_by(|a, b| a.name.cmp(&b.name));
        }
        Self {
            by_name,
            by_key,
            by_principal,
            by_ca,
            trust: Arc::default(),
        }
    }

    /// This table with `trust` as the gateway's certificate trust.
    pub fn with_trust(mut self, trust: Arc<UserTrust>) -> Self {
        self.trust = trust;
        self
    }

    /// The gateway's trust in user certificates.
    pub fn trust(&self) -> &Arc<UserTrust> {
        &self.trust
    }

    /// Routes that could accept a certificate signed by `ca` naming
    /// `principals` (a superset: [`crate::access`] decides), sorted by name.
    pub fn routes_for_certificate(&self, ca: &KeyData, principals: &[String]) -> Vec<Arc<Route>> {
        let mut routes: Vec<Arc<Route>> = self.by_ca.get(ca).cloned().unwrap_or_default();
        if self.trust.is_ca(ca) {
            for principal in principals {
                for route in self.by_principal.get(principal).into_iter().flatten() {
                    push_once(&mut routes, route);
                }
            }
        }
        routes.sort_by(|a, b| a.name.cmp(&b.name));
        routes.dedup_by(|a, b| a.name == b.name);
        routes
    }

    /// The route called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Route>> {
        self.by_name.get(name)
    }

    /// Every route that authorizes `key`, sorted by name.
    pub fn routes_for_key(&self, key: &PublicKey) -> &[Arc<Route>] {
        self.by_key
            .get(key.key_data())
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// True when there are no routes.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// Route names, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.by_name.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }
}

fn push_once(list: &mut Vec<Arc<Route>>, route: &Arc<Route>) {
    if !list.iter().any(|r| r.name == route.name) {
        list.push(route.clone());
    }
}

/// The live table shared by every connection; sources `store` a new snapshot,
/// connections `load` the current one (lock-free).
pub type SharedRoutes = Arc<ArcSwap<RouteTable>>;

/// Wraps `table` as the live table, ready to be shared.
pub fn shared(table: RouteTable) -> SharedRoutes {
    Arc::new(ArcSwap::from_pointee(table))
}
