//! `mode = "crd"`, the live part: watches of SSHRoutes, Pods, Services and
//! the Secrets routes refer to; the builder that turns them into routes and
//! status conditions.
//!
//! Secrets: the watch lists only the Secrets with the label
//! `sources.kubernetes.secret_selector` (default
//! `switchboard.dev/route-secret=true`; RBAC cannot narrow a list by name or
//! label, so the selector keeps unrelated Secrets off the wire and out of
//! memory), and keeps only the ones routes refer to, and of those only the
//! data keys used. It starts once the SSHRoutes are listed (so it knows what to keep),
//! and relists when a route starts referring to a Secret or key it has not
//! kept. A Secret no route refers to any more is dropped at its next change
//! or relist, and ignored until then.

use std::sync::{Arc, RwLock};
use std::time::Instant;

use futures_util::future::BoxFuture;
use k8s_openapi::api::core::v1::{Pod, Secret, Service, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use tokio::sync::watch;

use super::crd::SSHRoute;
use super::crd_map::{self, Cluster, Mapper};
use super::reflect::{Keep, Shared, reflector};
use super::secrets::{self, Wanted};
use super::status::{self, Desired};
use super::sync::{Builder, Built};
use super::{apis, pods};
use crate::config::KubernetesSourceConfig;

/// Every store the CRD mode reads, and the channels it drives.
pub(super) struct CrdBuilder {
    shared: Arc<Shared>,
    routes: Vec<Store<SSHRoute>>,
    pods: Vec<Store<Pod>>,
    services: Vec<Store<Service>>,
    secrets: Vec<Store<Secret>>,
    wanted: Arc<RwLock<Wanted>>,
    relist: watch::Sender<u64>,
    relist_at: Option<Instant>,
    status: Option<watch::Sender<Arc<Vec<Desired>>>>,
    mapper: Mapper,
}

/// The watches, the builder, and (when `write_status`) the status writer.
pub(super) fn setup(
    client: &Client,
    config: &KubernetesSourceConfig,
    shared: &Arc<Shared>,
    user_ca: bool,
) -> (CrdBuilder, Vec<BoxFuture<'static, ()>>) {
    let mut tasks = Vec::new();
    let wanted: Arc<RwLock<Wanted>> = Arc::default();
    let (relist, relist_rx) = watch::channel(0u64);
    let mut b = CrdBuilder {
        shared: shared.clone(),
        routes: Vec::new(),
        pods: Vec::new(),
        services: Vec::new(),
        secrets: Vec::new(),
        wanted: wanted.clone(),
        relist,
        relist_at: None,
        status: None,
        mapper: Mapper::new(config).user_ca(user_ca),
    };
    let all = watcher::Config::default();
    for (api, label) in apis::<SSHRoute>(client, &config.namespaces, "sshroutes") {
        let keep: Keep<SSHRoute> = Arc::new(|r: &SSHRoute| {
            let mut r = r.clone();
            r.metadata.managed_fields = None;
            r.metadata.annotations = None;
            Some(r)
        });
        let (store, task) = reflector(api, all.clone(), label, shared.clone(), keep, None);
        b.routes.push(store);
        tasks.push(task);
    }
    for (api, label) in apis::<Pod>(client, &config.namespaces, "pods") {
        let keep: Keep<Pod> = Arc::new(|p: &Pod| Some(pods::strip(p)));
        let (store, task) = reflector(api, all.clone(), label, shared.clone(), keep, None);
        b.pods.push(store);
        tasks.push(task);
    }
    for (api, label) in apis::<Service>(client, &config.namespaces, "services") {
        let keep: Keep<Service> = Arc::new(|s: &Service| Some(strip_service(s)));
        let (store, task) = reflector(api, all.clone(), label, shared.clone(), keep, None);
        b.services.push(store);
        tasks.push(task);
    }
    // Only Secrets with the label are ever listed or watched, and none
    // without `read_secrets`.
    let labelled = watcher::Config::default().labels(&config.secret_selector);
    let secret_apis = match config.read_secrets {
        true => apis::<Secret>(client, &config.namespaces, "secrets"),
        false => Vec::new(),
    };
    for (api, label) in secret_apis {
        let wanted = wanted.clone();
        let keep: Keep<Secret> = Arc::new(move |s: &Secret| {
            let wanted = wanted.read().unwrap_or_else(|e| e.into_inner());
            secrets::keep_wanted(s, &wanted)
        });
        let (store, task) = reflector(
            api,
            labelled.clone(),
            label,
            shared.clone(),
            keep,
            Some(relist_rx.clone()),
        );
        b.secrets.push(store);
        tasks.push(task);
    }
    if config.write_status {
        let (tx, rx) = watch::channel(Arc::new(Vec::new()));
        b.status = Some(tx);
        tasks.push(Box::pin(status::run_writer(
            client.clone(),
            b.routes.clone(),
            rx,
        )));
    }
    (b, tasks)
}

/// What is kept of a Service: its identity, type, selector and cluster IP
/// (what [`super::backend`] decides with).
fn strip_service(s: &Service) -> Service {
    let m = &s.metadata;
    Service {
        metadata: ObjectMeta {
            name: m.name.clone(),
            namespace: m.namespace.clone(),
            uid: m.uid.clone(),
            resource_version: m.resource_version.clone(),
            ..Default::default()
        },
        spec: s.spec.as_ref().map(|spec| ServiceSpec {
            cluster_ip: spec.cluster_ip.clone(),
            type_: spec.type_.clone(),
            selector: spec.selector.clone(),
            ..Default::default()
        }),
        status: None,
    }
}

impl CrdBuilder {
    /// Updates the kept-Secrets set; relists Secrets when it grew (or on the
    /// first call, which starts the Secrets watch).
    fn update_wanted(&mut self, routes: &[Arc<SSHRoute>]) {
        let wanted = crd_map::wanted(routes.iter().map(|r| &**r));
        let grew = {
            let mut current = self.wanted.write().unwrap_or_else(|e| e.into_inner());
            let grew = wanted
                .iter()
                .any(|(k, keys)| current.get(k).is_none_or(|have| !keys.is_subset(have)));
            *current = wanted;
            grew
        };
        if grew || self.relist_at.is_none() {
            self.relist_at = Some(Instant::now());
            self.relist.send_modify(|n| *n = n.wrapping_add(1));
        }
    }
}

impl Builder for CrdBuilder {
    fn build(&mut self) -> Option<Built> {
        if !self.shared.synced("sshroutes") {
            return None;
        }
        let mut routes: Vec<Arc<SSHRoute>> = self.routes.iter().flat_map(Store::state).collect();
        routes.sort_by(|a, b| {
            (&a.metadata.namespace, &a.metadata.name)
                .cmp(&(&b.metadata.namespace, &b.metadata.name))
        });
        self.update_wanted(&routes);
        if !self.shared.all_synced() {
            return None;
        }
        let relisting = self
            .relist_at
            .is_some_and(|t| !self.shared.relisted_since("secrets", t));
        let pods: Vec<_> = self.pods.iter().flat_map(Store::state).collect();
        let services: Vec<_> = self.services.iter().flat_map(Store::state).collect();
        let secrets: Vec<_> = self.secrets.iter().flat_map(Store::state).collect();
        let cluster = Cluster::new(&pods, &services, &secrets);
        let mut built = Built {
            routes: Vec::with_capacity(routes.len()),
            problems: Vec::new(),
        };
        let mut desired = Vec::with_capacity(routes.len());
        for sr in &routes {
            let mapped = self.mapper.map(sr, &cluster);
            let (ns, name) = (
                sr.metadata.namespace.clone().unwrap_or_default(),
                sr.metadata.name.clone().unwrap_or_default(),
            );
            if !mapped.verdict.ready {
                built.problems.push(format!(
                    "SSHRoute {ns}/{name}: {}: {}",
                    mapped.verdict.reason, mapped.verdict.message
                ));
            }
            built.routes.extend(mapped.route);
            desired.push(Desired {
                namespace: ns,
                name,
                generation: sr.metadata.generation,
                verdict: mapped.verdict,
            });
        }
        self.mapper.finish();
        // While Secrets relist, a route may look SecretMissing for a moment:
        // do not write that to its status.
        if let Some(tx) = &self.status
            && !relisting
        {
            tx.send_replace(Arc::new(desired));
        }
        Some(built)
    }
}
