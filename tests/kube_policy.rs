//! Least privilege in `crd` mode against the fake API server: Secrets are
//! only ever listed and watched with the route-secret label selector, and a
//! tenant's route to an ExternalName Service, a selectorless Service, a port
//! outside `backend_ports` or a refused address never makes the gateway dial.
#![cfg(feature = "kubernetes")]

mod common;
mod kube_fake;

use std::fs;
use std::net::TcpListener;
use std::time::Duration;

use common::*;
use kube_fake::FakeApi;
use kube_fake::fixtures::*;
use serde_json::{Value, json};

const NOTICE: Duration = Duration::from_secs(20);

/// The label selector as it appears in a request's query string.
const SELECTOR_QUERY: &str = "labelSelector=switchboard.dev%2Froute-secret%3Dtrue";

fn route(name: &str, backend: Value, user: &Key) -> Value {
    json!({"metadata": {"name": name, "namespace": "team"},
           "spec": {"backend": backend, "user": "root", "authorizedKeys": [user.public],
                    "identitySecretRef": {"name": "id", "key": "ssh-privatekey"}}})
}

/// The status condition the gateway last wrote for route `name`.
fn last_condition(api: &FakeApi, name: &str) -> Option<Value> {
    let path = format!("/apis/switchboard.dev/v1alpha1/namespaces/team/sshroutes/{name}/status");
    api.patches()
        .into_iter()
        .rev()
        .find(|(p, ..)| *p == path)
        .map(|(_, _, body)| body["status"]["conditions"][0].clone())
}

#[test]
fn secrets_are_only_listed_and_watched_with_the_label_selector() {
    let api = FakeApi::start();
    let b = SshdBox::start("web");
    let dir = temp_dir();
    let user = Key::generate(dir.path(), "user");
    let identity = fs::read_to_string(&b.identity.path).expect("identity");
    api.put(
        "secrets",
        json!({"metadata": {"name": "id", "namespace": "team", "labels": route_secret()},
               "data": {"ssh-privatekey": b64(&identity)}}),
    );
    // Same name in another namespace and an unlabelled one: never seen.
    api.put(
        "secrets",
        json!({"metadata": {"name": "other", "namespace": "team"}, "data": {"x": b64("y")}}),
    );
    let backend = json!({"podSelector": {"matchLabels": {"app": "web"}}, "port": b.port});
    api.put("sshroutes", route("web", backend, &user));
    let gw = crd_gateway_with_web_pod(&api, dir.path());
    let out = gw.ssh(&user, &["root@web.team@127.0.0.1", "echo $BOX"]);
    assert_eq!(out.stdout, "web\n", "{out:?}");

    // A route that names an unlabelled Secret: not found, and the status
    // says which label it needs.
    let backend = json!({"podSelector": {"matchLabels": {"app": "web"}}, "port": b.port});
    let mut unlabelled = route("other", backend, &user);
    unlabelled["spec"]["identitySecretRef"]["name"] = json!("other");
    api.put("sshroutes", unlabelled);
    assert!(eventually(NOTICE, || last_condition(&api, "other")
        .is_some_and(|c| c["reason"] == "SecretMissing"
            && c["message"].as_str().is_some_and(
                |m| m.contains("switchboard.dev/route-secret=true")
            ))));

    let secret_requests: Vec<String> = api
        .requests()
        .into_iter()
        .filter(|r| r.contains("/secrets"))
        .collect();
    assert!(
        secret_requests.iter().any(|r| r.contains("watch=true")),
        "{secret_requests:?}"
    );
    for r in &secret_requests {
        assert!(
            r.contains(SELECTOR_QUERY),
            "an unselected Secrets request: {r}"
        );
    }
}

#[test]
fn tenant_routes_to_refused_backends_never_dial() {
    let api = FakeApi::start();
    let dir = temp_dir();
    let user = Key::generate(dir.path(), "user");
    // What a tenant would like the gateway to reach: a listener on loopback.
    let target = TcpListener::bind("127.0.0.1:0").expect("bind");
    target.set_nonblocking(true).expect("nonblocking");
    let port = target.local_addr().expect("addr").port();
    api.put(
        "services",
        json!({"metadata": {"name": "ext", "namespace": "team"},
               "spec": {"type": "ExternalName", "externalName": "localhost"}}),
    );
    api.put(
        "services",
        json!({"metadata": {"name": "manual", "namespace": "team"},
               "spec": {"clusterIP": "127.0.0.1"}}),
    );
    api.put(
        "services",
        json!({"metadata": {"name": "headless", "namespace": "team"},
               "spec": {"clusterIP": "None", "selector": {"app": "none"}}}),
    );
    api.put("pods", pod("team", "p-0", json!({"app": "p"}), None, true));
    api.put(
        "sshroutes",
        route("ext", json!({"service": "ext", "port": port}), &user),
    );
    api.put(
        "sshroutes",
        route("manual", json!({"service": "manual", "port": port}), &user),
    );
    api.put(
        "sshroutes",
        route(
            "headless",
            json!({"service": "headless", "port": port}),
            &user,
        ),
    );
    // Allowed port range, but the pod is on loopback, which the defaults refuse.
    api.put(
        "sshroutes",
        route(
            "local",
            json!({"podSelector": {"matchLabels": {"app": "p"}}, "port": 22}),
            &user,
        ),
    );
    let kube = format!("mode = \"crd\"\nbackend_ports = [22, {port}]\n");
    let (gw, _) = gateway(&api, dir.path(), "default", &kube, Gateway::start_with);

    for (name, reason) in [
        ("ext", "BackendRefused"),
        ("manual", "BackendRefused"),
        ("headless", "NoReadyPod"),
        ("local", "BackendRefused"),
    ] {
        assert!(
            eventually(NOTICE, || last_condition(&api, name)
                .is_some_and(|c| c["reason"] == reason && c["status"] == "False")),
            "{name}: {:?}",
            last_condition(&api, name)
        );
        let out = gw.ssh(&user, &[&format!("root@{name}.team@127.0.0.1"), "true"]);
        assert_eq!(out.code, Some(1), "{name}: {out:?}");
        assert!(
            out.stderr
                .contains(&format!("switchboard: {name}.team is stopped")),
            "{name}: {out:?}"
        );
    }
    let ext = last_condition(&api, "ext").expect("ext");
    assert!(
        ext["message"]
            .as_str()
            .is_some_and(|m| m.contains("ExternalName")),
        "{ext:?}"
    );
    assert!(
        target.accept().is_err(),
        "the gateway dialled a refused backend"
    );
}
