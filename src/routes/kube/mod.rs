//! The Kubernetes route source (SPEC §7): kube-rs reflectors watch the
//! cluster and every change republishes this source's complete route set.
//!
//! Layout: [`reflect`] runs one list+watch per kind and namespace into a
//! store; [`sync`] rebuilds the routes from the stores after each burst of
//! events and publishes them; the modes map objects to routes —
//! [`crd_source`]/[`crd_map`] for `SSHRoute` objects ([`crd`]), [`sealos`]
//! for Sealos Devboxes — using [`pods`] and [`secrets`]. [`status`] writes
//! `SSHRoute` conditions back.
//!
//! Guarantees: nothing is published before every watch had its first full
//! list; when the API is unreachable the last routes keep serving (and
//! `/readyz` says they are stale); a relist replaces each store wholesale,
//! so nothing deleted while the watch was down survives it.

mod backend;
pub mod crd;
mod crd_map;
mod crd_source;
mod crd_validate;
mod pods;
mod reflect;
mod sealos;
mod secrets;
mod status;
mod sync;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_crd;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use futures_util::future::BoxFuture;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::watcher;
use kube::{Api, Client, Resource};
use tokio::task::{JoinHandle, JoinSet};
use tracing::error;

pub use self::reflect::SOURCE;
use self::reflect::{Keep, Shared, reflector};
use self::sync::Report;
use crate::config::{KubernetesMode, KubernetesSourceConfig};
use crate::routes::RouteSources;

/// Longest a response from the API may take to start (lists, status
/// patches); watches are long polls the API server ends itself after ~290 s.
const READ_TIMEOUT: Duration = Duration::from_secs(300);

/// Registers [`SOURCE`] in `sources` (so the gateway is not ready and serves
/// no client until the first full sync), then runs the reflectors and
/// publishes the complete route set on every change. The handle's task owns
/// every watch; aborting it stops them all.
pub async fn start(
    config: &KubernetesSourceConfig,
    sources: Arc<RouteSources>,
) -> anyhow::Result<JoinHandle<()>> {
    sources.register(SOURCE);
    let (client, url) = client(config, None).await?;
    tracing::info!(api = %url, mode = ?config.mode, namespaces = ?config.namespaces, "watching Kubernetes for routes");
    let (tasks, _, _) = spawn(client, config, sources);
    Ok(supervise(tasks))
}

/// What `switchboard check` reports about this source.
#[derive(Debug)]
pub struct CheckReport {
    /// The API server's URL.
    pub api: String,
    pub routes: usize,
    /// Objects that are skipped or degraded, one line each.
    pub problems: Vec<String>,
}

/// Lists everything once (through the same watches and mapping as `serve`)
/// and reports; fails with a clear message when the API cannot be reached
/// within `timeout`. Blocking: runs its own runtime.
/// `user_ca`: whether the gateway has a user CA (`login: certificate` routes
/// are problems without one).
pub fn check(
    config: &KubernetesSourceConfig,
    timeout: Duration,
    user_ca: bool,
) -> Result<CheckReport, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting a runtime: {e}"))?;
    runtime.block_on(async {
        let (client, url) = client(config, Some(timeout.min(Duration::from_secs(5))))
            .await
            .map_err(|e| format!("{e:#}"))?;
        let sources = RouteSources::new();
        sources.set_user_ca(user_ca);
        sources.register(SOURCE);
        let (tasks, shared, report) = spawn(client, config, sources.clone());
        let supervisor = supervise(tasks);
        let mut changed = shared.subscribe();
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let outcome = loop {
            if let Some(failure) = shared.initial_failure() {
                break Err(format!(
                    "cannot reach the Kubernetes API at {url}: {failure}"
                ));
            }
            if sources.is_ready() {
                let report = report.lock().unwrap_or_else(|e| e.into_inner()).clone();
                let report = report.unwrap_or_default();
                break Ok(CheckReport {
                    api: url.clone(),
                    routes: report.routes,
                    problems: report.problems,
                });
            }
            tokio::select! {
                _ = changed.changed() => {}
                () = sources.wait_ready() => {}
                () = &mut deadline => break Err(format!(
                    "the Kubernetes API at {url} did not answer within {}s",
                    timeout.as_secs()
                )),
            }
        };
        supervisor.abort();
        outcome
    })
}

/// Builds the client: `kubeconfig` when set, else kube's inference
/// (`KUBECONFIG`, `~/.kube/config`, in-cluster). Returns it with the API's URL.
pub(crate) async fn client(
    config: &KubernetesSourceConfig,
    connect_timeout: Option<Duration>,
) -> anyhow::Result<(Client, String)> {
    let mut kube_config = match &config.kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path).with_context(|| {
                format!("sources.kubernetes.kubeconfig: reading {}", path.display())
            })?;
            kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                .await
                .with_context(|| {
                    format!("sources.kubernetes.kubeconfig: using {}", path.display())
                })?
        }
        None => kube::Config::infer().await.context(
            "sources.kubernetes: no Kubernetes configuration found (not in a cluster, \
             no KUBECONFIG, no ~/.kube/config); set sources.kubernetes.kubeconfig",
        )?,
    };
    kube_config.read_timeout = Some(READ_TIMEOUT);
    // The client's own retry of 429/503/504 (up to 15 times over minutes)
    // would hide an unhealthy API from the watchers, which retry with their
    // own backoff and report staleness.
    kube_config.default_retry = false;
    kube_config.reset_reader_on_write = true;
    if connect_timeout.is_some() {
        kube_config.connect_timeout = connect_timeout;
    }
    let url = kube_config.cluster_url.to_string();
    let client =
        Client::try_from(kube_config).context("sources.kubernetes: building the API client")?;
    Ok((client, url))
}

/// The last build's report, shared with `check`.
type SharedReport = Arc<Mutex<Option<Report>>>;

/// Every watch and the builder of the configured mode, not yet running.
fn spawn(
    client: Client,
    config: &KubernetesSourceConfig,
    sources: Arc<RouteSources>,
) -> (Vec<BoxFuture<'static, ()>>, Arc<Shared>, SharedReport) {
    let shared = Shared::new();
    let report: SharedReport = Arc::default();
    let mut tasks = Vec::new();
    match config.mode {
        KubernetesMode::Crd => {
            let (builder, watches) = crd_source::setup(&client, config, &shared, sources.user_ca());
            tasks.extend(watches);
            tasks.push(Box::pin(sync::run(
                shared.clone(),
                sources.clone(),
                builder,
                report.clone(),
            )));
        }
        KubernetesMode::SealosDevbox => {
            let selector = watcher::Config::default().labels(sealos::SELECTOR);
            let mut b = sealos::SealosBuilder {
                shared: shared.clone(),
                secrets: Vec::new(),
                pods: Vec::new(),
                mapper: sealos::Mapper::new(config.devbox_port, config.devbox_user.clone())
                    .waking(config.wake),
            };
            for (api, label) in apis::<Secret>(&client, &config.namespaces, "secrets") {
                let keep: Keep<Secret> = Arc::new(sealos::keep_secret);
                let (store, task) =
                    reflector(api, selector.clone(), label, shared.clone(), keep, None);
                b.secrets.push(store);
                tasks.push(task);
            }
            for (api, label) in apis::<Pod>(&client, &config.namespaces, "pods") {
                let keep: Keep<Pod> = Arc::new(|p: &Pod| {
                    sealos::devbox_owner(&p.metadata)?;
                    Some(pods::strip(p))
                });
                let (store, task) =
                    reflector(api, selector.clone(), label, shared.clone(), keep, None);
                b.pods.push(store);
                tasks.push(task);
            }
            tasks.push(Box::pin(sync::run(
                shared.clone(),
                sources.clone(),
                b,
                report.clone(),
            )));
        }
    }
    (tasks, shared, report)
}

/// One `Api` per configured namespace (or one for all), with a watch label
/// such as `pods` or `pods in team-a`.
fn apis<K>(client: &Client, namespaces: &[String], kind: &str) -> Vec<(Api<K>, String)>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    if namespaces.is_empty() {
        return vec![(Api::all(client.clone()), kind.to_owned())];
    }
    namespaces
        .iter()
        .map(|ns| {
            (
                Api::namespaced(client.clone(), ns),
                format!("{kind} in {ns}"),
            )
        })
        .collect()
}

/// Runs `tasks` until aborted; a task that ends (a panic) is logged.
fn supervise(tasks: Vec<BoxFuture<'static, ()>>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut set = JoinSet::new();
        for task in tasks {
            set.spawn(task);
        }
        while let Some(ended) = set.join_next().await {
            if let Err(e) = ended {
                error!(error = %e, "a Kubernetes watch task failed; its routes are no longer refreshed");
            }
        }
    })
}
