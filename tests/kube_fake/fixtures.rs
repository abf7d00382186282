//! Objects as the API serves them (Sealos Devbox Secrets and Pods, SSHRoutes)
//! and a gateway configured to watch the fake API.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::FakeApi;
use crate::common::{Gateway, GatewayConfig, SEED, toml_str};

/// Base64, as Secret `data` travels on the wire.
pub fn b64(s: &str) -> String {
    STANDARD.encode(s)
}

/// A Sealos Devbox Secret: `public` is the user's key, `private` the box
/// key the gateway logs in with, `registered` more authorized keys.
pub fn devbox_secret(
    ns: &str,
    devbox: &str,
    public: &str,
    private: &str,
    registered: &str,
) -> Value {
    json!({
        "metadata": {
            "name": devbox, "namespace": ns,
            "labels": {"app.kubernetes.io/part-of": "devbox"},
            "ownerReferences": [{"apiVersion": "devbox.sealos.io/v1alpha1", "kind": "Devbox",
                                 "name": devbox, "uid": "devbox-uid", "controller": true}],
        },
        "type": "Opaque",
        "data": {
            "SEALOS_DEVBOX_PUBLIC_KEY": b64(public),
            "SEALOS_DEVBOX_PRIVATE_KEY": b64(private),
            "SEALOS_DEVBOX_AUTHORIZED_KEYS": b64(&format!("{registered}\n")),
            "SEALOS_DEVBOX_JWT_SECRET": b64("not-for-the-gateway"),
        },
    })
}

/// A pod on loopback (`127.0.0.1`), Ready or not, with `labels`, owned by
/// the Devbox `owner` when given.
pub fn pod(ns: &str, name: &str, labels: Value, owner: Option<&str>, ready: bool) -> Value {
    let owners: Vec<Value> = owner
        .map(|o| json!({"apiVersion": "devbox.sealos.io/v1alpha1", "kind": "Devbox", "name": o, "uid": "devbox-uid"}))
        .into_iter()
        .collect();
    json!({
        "metadata": {"name": name, "namespace": ns, "labels": labels, "ownerReferences": owners},
        "spec": {"containers": [{"name": "box", "image": "devbox"}]},
        "status": {
            "phase": "Running", "podIP": "127.0.0.1", "podIPs": [{"ip": "127.0.0.1"}],
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}],
        },
    })
}

/// The labels a Secret needs before routes can use it (the default
/// `sources.kubernetes.secret_selector`).
pub fn route_secret() -> Value {
    json!({"switchboard.dev/route-secret": "true"})
}

/// `[sources.kubernetes]` for `crd` mode with the test's boxes: pods and
/// Services on loopback, sshd on random ports (the defaults refuse both).
pub const CRD_ON_LOOPBACK: &str = "mode = \"crd\"\nbackend_ports = [\"1024-65535\"]\n\
                                   refused_backends = [\"169.254.0.0/16\"]\n";

/// An in-process `crd` gateway ([`CRD_ON_LOOPBACK`]) watching `api`, after
/// a Ready pod `web-0` labelled `app: web` was put in namespace `team`.
pub fn crd_gateway_with_web_pod(api: &FakeApi, dir: &Path) -> Gateway {
    api.put(
        "pods",
        pod("team", "web-0", json!({"app": "web"}), None, true),
    );
    gateway(api, dir, "default", CRD_ON_LOOPBACK, Gateway::start_with).0
}

/// A Devbox pod.
pub fn devbox_pod(ns: &str, name: &str, devbox: &str, ready: bool) -> Value {
    pod(
        ns,
        name,
        json!({"app.kubernetes.io/part-of": "devbox"}),
        Some(devbox),
        ready,
    )
}

/// A gateway watching `api`, started by `start` ([`Gateway::start_with`] or
/// [`Gateway::spawn_with`]); `kube` is the rest of `[sources.kubernetes]`.
/// Returns it with its admin port.
pub fn gateway(
    api: &FakeApi,
    dir: &Path,
    grammar: &str,
    kube: &str,
    start: fn(&GatewayConfig, &str) -> Gateway,
) -> (Gateway, u16) {
    let cfg = GatewayConfig {
        raw: Some(raw_config(api, dir, grammar, kube)),
        ..Default::default()
    };
    let gw = start(&cfg, "");
    let admin = gw.admin_port;
    (gw, admin)
}

/// The config file [`gateway`] uses, with `@LISTEN@`/`@ADMIN@`/`@ROUTES@` placeholders.
pub fn raw_config(api: &FakeApi, dir: &Path, grammar: &str, kube: &str) -> String {
    let kubeconfig = api.kubeconfig(dir);
    format!(
        "[server]\nlisten = @LISTEN@\nhost_key_seed = {seed}\n\n\
         [routing]\nusername_grammar = \"{grammar}\"\nagent_login = false\n\n\
         [upstream]\nconnect_timeout = \"2s\"\nhandshake_timeout = \"5s\"\n\n\
         [sources.file]\npath = @ROUTES@\nwatch = false\n\n\
         [admin]\nlisten = @ADMIN@\n\n\
         [log]\nlevel = \"info,switchboard=debug\"\n\n\
         [sources.kubernetes]\nenabled = true\nkubeconfig = {kc}\n{kube}\n",
        seed = toml_str(SEED),
        kc = toml_str(&kubeconfig.display().to_string()),
    )
}

/// `GET path` on the admin port: (status code, body); `(0, "")` when nothing answers.
pub fn admin_get(port: u16, path: &str) -> (u16, String) {
    let Ok(mut tcp) = TcpStream::connect(("127.0.0.1", port)) else {
        return (0, String::new());
    };
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = write!(
        tcp,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    );
    let mut text = String::new();
    let _ = tcp.read_to_string(&mut text);
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (code, body)
}
