//! An in-process fake Kubernetes API server that speaks the real wire
//! protocol for what Switchboard uses: JSON lists with a `resourceVersion`,
//! chunked watch streams of ADDED/MODIFIED/DELETED/BOOKMARK events resumed
//! from a resourceVersion, `410 Gone` for a compacted resourceVersion (which
//! forces the client to relist), label selectors, and status PATCHes.
//!
//! Tests drive it from blocking code: put/delete objects, delete one
//! *without* an event (a missed delete), compact the history and cut every
//! watch (so the next resume gets 410), or take the API down (503 and cut
//! watches) and back up.
#![allow(dead_code)] // each test uses a different part

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::sync::watch;

pub mod fixtures;
mod http;
mod wake;
mod watch_stream;

/// How often an idle watch gets a BOOKMARK.
const BOOKMARK_EVERY: Duration = Duration::from_millis(500);

/// One stored object, keyed by (resource, namespace, name).
type Key = (String, String, String);

#[derive(Default)]
pub(crate) struct State {
    rv: u64,
    objects: BTreeMap<Key, Value>,
    /// (resourceVersion, resource, event type, object)
    log: Vec<(u64, String, &'static str, Value)>,
    /// Watches from a resourceVersion below this get 410 Gone.
    compacted: u64,
    down: bool,
    /// Bumped to cut every open watch.
    cut: u64,
    /// Every PATCH: (path, content type, body).
    pub patches: Vec<(String, String, Value)>,
    /// Every request line (`GET /api/v1/pods?…`).
    pub requests: Vec<String>,
    /// Devbox PATCHes still to be answered 422, as while a commit is in
    /// progress (see [`FakeApi::set_committing`]).
    pub committing: usize,
}

pub struct FakeApi {
    pub port: u16,
    pub(crate) state: Arc<Mutex<State>>,
    pub(crate) changed: watch::Sender<u64>,
    _runtime: tokio::runtime::Runtime,
}

/// The `apiVersion` of `resource`'s objects.
fn api_version(resource: &str) -> &'static str {
    match resource {
        "sshroutes" => "switchboard.dev/v1alpha1",
        "devboxes" => wake::DEVBOX_API_VERSION,
        "deployments" | "statefulsets" => "apps/v1",
        _ => "v1",
    }
}

fn kind(resource: &str) -> &'static str {
    match resource {
        "pods" => "Pod",
        "secrets" => "Secret",
        "services" => "Service",
        "sshroutes" => "SSHRoute",
        "devboxes" => "Devbox",
        "deployments" => "Deployment",
        "statefulsets" => "StatefulSet",
        _ => "Unknown",
    }
}

impl FakeApi {
    pub fn start() -> FakeApi {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let state = Arc::new(Mutex::new(State {
            rv: 100,
            ..Default::default()
        }));
        let changed = watch::Sender::new(0u64);
        let (st, ch) = (state.clone(), changed.clone());
        runtime.spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let (st, ch) = (st.clone(), ch.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let (st, ch) = (st.clone(), ch.clone());
                        async move { Ok::<_, Infallible>(http::handle(req, st, ch).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), service)
                        .await;
                });
            }
        });
        FakeApi {
            port,
            state,
            changed,
            _runtime: runtime,
        }
    }

    /// A kubeconfig pointing at this server (plain HTTP, no credentials).
    pub fn kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: fake\n\
             clusters:\n- name: fake\n  cluster:\n    server: http://127.0.0.1:{}\n\
             contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: anon\n\
             users:\n- name: anon\n  user: {{}}\n",
            self.port
        );
        std::fs::write(&path, text).expect("kubeconfig");
        path
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn notify(&self) {
        self.changed.send_modify(|n| *n += 1);
    }

    /// Creates or replaces an object (ADDED or MODIFIED), stamping
    /// resourceVersion, uid, creationTimestamp and, for SSHRoutes, generation.
    pub fn put(&self, resource: &str, mut obj: Value) {
        let mut s = self.lock();
        s.rv += 1;
        let rv = s.rv;
        let ns = obj["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let key = (resource.to_owned(), ns.clone(), name.clone());
        let old = s.objects.get(&key).cloned();
        let meta = &mut obj["metadata"];
        meta["resourceVersion"] = json!(rv.to_string());
        if meta["uid"].is_null() {
            meta["uid"] = json!(format!("uid-{resource}-{ns}-{name}-{rv}"));
        }
        if meta["creationTimestamp"].is_null() {
            meta["creationTimestamp"] = json!("2025-01-01T00:00:00Z");
        }
        if resource == "sshroutes" {
            let generation = old
                .as_ref()
                .map_or(0, |o| o["metadata"]["generation"].as_i64().unwrap_or(0));
            let same_spec = old.as_ref().is_some_and(|o| o["spec"] == obj["spec"]);
            obj["metadata"]["generation"] = json!(if same_spec {
                generation
            } else {
                generation + 1
            });
            if let Some(o) = &old {
                obj["status"] = o["status"].clone();
            }
        }
        obj["apiVersion"] = json!(api_version(resource));
        obj["kind"] = json!(kind(resource));
        let event = if old.is_some() { "MODIFIED" } else { "ADDED" };
        s.objects.insert(key, obj.clone());
        s.log.push((rv, resource.to_owned(), event, obj));
        drop(s);
        self.notify();
    }

    /// Deletes an object with a DELETED event.
    pub fn delete(&self, resource: &str, ns: &str, name: &str) {
        let mut s = self.lock();
        let key = (resource.to_owned(), ns.to_owned(), name.to_owned());
        if let Some(mut obj) = s.objects.remove(&key) {
            s.rv += 1;
            let rv = s.rv;
            obj["metadata"]["resourceVersion"] = json!(rv.to_string());
            s.log.push((rv, resource.to_owned(), "DELETED", obj));
        }
        drop(s);
        self.notify();
    }

    /// Deletes an object without telling any watch: a delete the client missed.
    pub fn delete_silently(&self, resource: &str, ns: &str, name: &str) {
        let mut s = self.lock();
        s.objects
            .remove(&(resource.to_owned(), ns.to_owned(), name.to_owned()));
    }

    /// Forgets the event history and cuts every watch: each client's resume
    /// gets `410 Gone` and must relist.
    pub fn compact_and_cut(&self) {
        let mut s = self.lock();
        s.rv += 1;
        s.compacted = s.rv;
        s.log.clear();
        s.cut += 1;
        drop(s);
        self.notify();
    }

    /// Down: every request gets 503 and open watches are cut. Up: serves again.
    pub fn set_down(&self, down: bool) {
        let mut s = self.lock();
        s.down = down;
        s.cut += 1;
        drop(s);
        self.notify();
    }

    /// The PATCH requests received so far.
    pub fn patches(&self) -> Vec<(String, String, Value)> {
        self.lock().patches.clone()
    }

    /// The next `n` Devbox PATCHes are answered 422, as the Devbox
    /// admission does while the box saves a commit.
    pub fn set_committing(&self, n: usize) {
        self.lock().committing = n;
    }

    /// The request lines received so far.
    pub fn requests(&self) -> Vec<String> {
        self.lock().requests.clone()
    }

    /// The stored object, if any.
    pub fn get(&self, resource: &str, ns: &str, name: &str) -> Option<Value> {
        self.lock()
            .objects
            .get(&(resource.to_owned(), ns.to_owned(), name.to_owned()))
            .cloned()
    }
}

/// True when `obj` is in `ns` (if given) and has every `k=v` of `selector`.
pub(crate) fn selected(obj: &Value, ns: Option<&str>, selector: Option<&str>) -> bool {
    if ns.is_some_and(|ns| obj["metadata"]["namespace"].as_str() != Some(ns)) {
        return false;
    }
    selector
        .into_iter()
        .flat_map(|s| s.split(','))
        .filter(|s| !s.is_empty())
        .all(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            obj["metadata"]["labels"][k].as_str() == Some(v)
        })
}
