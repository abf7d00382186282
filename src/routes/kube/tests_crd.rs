//! Pure mapping tests for the CRD mode: `SSHRoute` + Pods, Services and
//! Secrets → route and `Ready` verdict.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Pod, Secret, Service};
use serde_json::{Value, json};

use super::crd::SSHRoute;
use super::crd_map::{Cluster, Mapped, Mapper, wanted};
use super::secrets;
use super::tests::{pod, private_text, public, public_line};
use crate::routes::{Forwarding, RouteState};

fn sshroute(name: &str, spec: Value) -> SSHRoute {
    serde_json::from_value(json!({
        "apiVersion": "switchboard.dev/v1alpha1", "kind": "SSHRoute",
        "metadata": {"name": name, "namespace": "team", "generation": 3},
        "spec": spec,
    }))
    .expect("sshroute")
}

fn secret(name: &str, data: Value) -> Arc<Secret> {
    let mut s: Secret = serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "team", "uid": format!("u-{name}"), "resourceVersion": "7"},
        "stringData": data,
    }))
    .expect("secret");
    // The API returns `data` (bytes); build it from the readable stringData.
    s.data = s.string_data.take().map(|d| {
        d.into_iter()
            .map(|(k, v)| (k, k8s_openapi::ByteString(v.into_bytes())))
            .collect()
    });
    Arc::new(s)
}

/// A Service selecting the pods labelled `app: ws`.
fn service(name: &str, cluster_ip: &str) -> Arc<Service> {
    service_spec(
        name,
        json!({"clusterIP": cluster_ip, "selector": {"app": "ws"}}),
    )
}

fn service_spec(name: &str, spec: Value) -> Arc<Service> {
    Arc::new(
        serde_json::from_value(
            json!({"metadata": {"name": name, "namespace": "team"}, "spec": spec}),
        )
        .expect("service"),
    )
}

fn team_pod(name: &str, app: &str, ip: &str, ready: bool, created: &str) -> Arc<Pod> {
    let mut p = pod("team", name, "unused", ip, ready, created);
    p.metadata.labels = Some([("app".to_owned(), app.to_owned())].into());
    Arc::new(p)
}

fn map(
    sr: &SSHRoute,
    pods: &[Arc<Pod>],
    services: &[Arc<Service>],
    secrets: &[Arc<Secret>],
) -> Mapped {
    Mapper::default().map(sr, &Cluster::new(pods, services, secrets))
}

fn selector_spec() -> Value {
    json!({"backend": {"podSelector": {"matchLabels": {"app": "ws"}}, "port": 2222},
           "authorizedKeys": [public_line(1)], "user": "dev"})
}

#[test]
fn pod_selector_picks_the_oldest_ready_matching_pod() {
    let pods = [
        team_pod("young", "ws", "10.0.0.2", true, "2025-02-01T00:00:00Z"),
        team_pod("old", "ws", "10.0.0.1", true, "2025-01-01T00:00:00Z"),
        team_pod(
            "older-not-ready",
            "ws",
            "10.0.0.3",
            false,
            "2024-01-01T00:00:00Z",
        ),
        team_pod("other-app", "db", "10.0.0.4", true, "2023-01-01T00:00:00Z"),
    ];
    let m = map(&sshroute("ws", selector_spec()), &pods, &[], &[]);
    let r = m.route.expect("route");
    assert_eq!(r.name, "ws.team");
    assert_eq!(r.address, "10.0.0.1:2222");
    assert_eq!(r.user.as_deref(), Some("dev"));
    assert!(r.authorizes(&public(1)));
    assert_eq!(r.forwarding, Forwarding::default());
    assert!(m.verdict.ready);
    assert_eq!(m.verdict.reason, "Resolved");
    assert_eq!(m.verdict.message, "routes to 10.0.0.1:2222");
}

#[test]
fn no_ready_pod_is_stopped_with_a_reason() {
    let pods = [team_pod(
        "p",
        "ws",
        "10.0.0.1",
        false,
        "2025-01-01T00:00:00Z",
    )];
    let m = map(&sshroute("ws", selector_spec()), &pods, &[], &[]);
    assert_eq!(
        m.route.expect("route").state,
        RouteState::Stopped { message: None }
    );
    assert!(!m.verdict.ready);
    assert_eq!(m.verdict.reason, "NoReadyPod");
}

#[test]
fn service_backends_use_the_cluster_ip_or_the_pods_of_a_headless_one() {
    let spec = json!({"backend": {"service": "ssh"}});
    let sr = sshroute("s", spec);
    let m = map(&sr, &[], &[service("ssh", "10.96.0.9")], &[]);
    assert_eq!(m.route.expect("route").address, "10.96.0.9:22");
    // Headless: the oldest Ready pod it selects in the route's namespace,
    // never a DNS name.
    let pods = [
        team_pod("young", "ws", "10.0.0.2", true, "2025-02-01T00:00:00Z"),
        team_pod("old", "ws", "10.0.0.1", true, "2025-01-01T00:00:00Z"),
        team_pod("db", "db", "10.0.0.5", true, "2024-01-01T00:00:00Z"),
    ];
    let m = map(&sr, &pods, &[service("ssh", "None")], &[]);
    assert_eq!(m.route.expect("route").address, "10.0.0.1:22");
    let m = map(&sr, &[], &[service("ssh", "None")], &[]);
    assert_eq!(m.verdict.reason, "NoReadyPod");
    assert!(matches!(
        m.route.expect("route").state,
        RouteState::Stopped { .. }
    ));
    let m = map(&sr, &[], &[], &[]);
    assert_eq!(m.verdict.reason, "ServiceMissing");
    assert!(matches!(
        m.route.expect("route").state,
        RouteState::Stopped { message: Some(_) }
    ));
}

#[test]
fn external_name_selectorless_and_out_of_policy_backends_are_refused() {
    let sr = sshroute("s", json!({"backend": {"service": "ssh"}}));
    let refused = |m: Mapped, why: &str| {
        assert_eq!(m.verdict.reason, "BackendRefused", "{:?}", m.verdict);
        assert!(m.verdict.message.contains(why), "{:?}", m.verdict);
        let route = m.route.expect("route");
        assert!(route.address.is_empty(), "{route:?}");
        assert!(matches!(
            route.state,
            RouteState::Stopped { message: Some(_) }
        ));
    };
    let external = service_spec(
        "ssh",
        json!({"type": "ExternalName", "externalName": "kubernetes.default.svc.cluster.local"}),
    );
    refused(map(&sr, &[], &[external], &[]), "ExternalName");
    let manual = service_spec("ssh", json!({"clusterIP": "10.96.0.9"}));
    refused(map(&sr, &[], &[manual], &[]), "no selector");
    let sr = sshroute("s", json!({"backend": {"service": "ssh", "port": 6443}}));
    refused(
        map(&sr, &[], &[service("ssh", "10.96.0.9")], &[]),
        "backend_ports",
    );
    // The port is checked first: refused even while no pod is Ready.
    let spec = json!({"backend": {"podSelector": {"matchLabels": {"app": "ws"}}, "port": 10250}});
    refused(map(&sshroute("k", spec), &[], &[], &[]), "backend_ports");
    let spec = json!({"backend": {"podSelector": {"matchLabels": {"app": "ws"}}}});
    let pods = [team_pod(
        "p",
        "ws",
        "169.254.169.254",
        true,
        "2025-01-01T00:00:00Z",
    )];
    refused(
        map(&sshroute("p", spec), &pods, &[], &[]),
        "refused_backends",
    );
}

#[test]
fn invalid_specs_publish_no_route() {
    for (spec, want) in [
        (
            json!({"backend": {"service": "a", "podSelector": {"matchLabels": {"a": "b"}}}}),
            "exactly one",
        ),
        (json!({"backend": {}}), "exactly one"),
        (
            json!({"backend": {"podSelector": {"matchLabels": {}}}}),
            "must not be empty",
        ),
        (
            json!({"backend": {"service": "a", "port": 70000}}),
            "backend.port",
        ),
        (
            json!({"backend": {"service": "a"}, "hostKey": "ssh-ed25519 AAAA"}),
            "hostKey",
        ),
        (
            json!({"backend": {"service": "a"}, "tokenSha256": "abc"}),
            "tokenSha256",
        ),
        (
            json!({"backend": {"service": "a"}, "user": "two words"}),
            "user",
        ),
    ] {
        let m = map(
            &sshroute("bad", spec),
            &[],
            &[service("a", "10.0.0.1")],
            &[],
        );
        assert!(m.route.is_none(), "{want}");
        assert_eq!(m.verdict.reason, "InvalidSpec");
        assert!(
            m.verdict.message.contains(want),
            "{want}: {}",
            m.verdict.message
        );
    }
}

#[test]
fn keys_from_secrets_merge_and_their_problems_are_reasons() {
    let mut spec = selector_spec();
    spec["authorizedKeysSecretRef"] = json!({"name": "keys", "key": "authorized_keys"});
    spec["identitySecretRef"] = json!({"name": "id", "key": "ssh-privatekey"});
    let sr = sshroute("ws", spec);
    let pods = [team_pod(
        "p",
        "ws",
        "10.0.0.1",
        true,
        "2025-01-01T00:00:00Z",
    )];
    let keys = secret(
        "keys",
        json!({"authorized_keys": format!("{}\n{}\n", public_line(1), public_line(2))}),
    );
    let id = secret("id", json!({"ssh-privatekey": private_text(9)}));

    let m = map(&sr, &pods, &[], &[keys.clone(), id.clone()]);
    assert!(m.verdict.ready, "{:?}", m.verdict);
    let r = m.route.expect("route");
    assert_eq!(r.authorized_keys.len(), 2);
    assert_eq!(
        r.identity.expect("identity").public_key().key_data(),
        public(9).key_data()
    );

    // Missing Secret: the route keeps its inline keys, the reason says why.
    let m = map(&sr, &pods, &[], std::slice::from_ref(&id));
    assert_eq!(m.verdict.reason, "SecretMissing");
    assert!(
        m.verdict.message.contains("Secret keys not found"),
        "{}",
        m.verdict.message
    );
    assert_eq!(m.route.expect("route").authorized_keys.len(), 1);

    // Missing key in the Secret.
    let m = map(
        &sr,
        &pods,
        &[],
        &[keys.clone(), secret("id", json!({"other": "x"}))],
    );
    assert_eq!(m.verdict.reason, "SecretMissing");
    assert!(m.verdict.message.contains("has no key ssh-privatekey"));

    // Unparsable identity: no identity, KeyUnparsable, nothing of it quoted.
    let m = map(
        &sr,
        &pods,
        &[],
        &[
            keys,
            secret(
                "id",
                json!({"ssh-privatekey": "-----BEGIN OPENSSH PRIVATE KEY-----\nc2VjcmV0\n"}),
            ),
        ],
    );
    assert_eq!(m.verdict.reason, "KeyUnparsable");
    assert!(!m.verdict.message.contains("c2VjcmV0"));
    assert!(m.route.expect("route").identity.is_none());
}

#[test]
fn the_most_serious_reason_wins_and_all_are_listed() {
    let mut spec = selector_spec();
    spec["authorizedKeys"] = json!(["nonsense"]);
    spec["identitySecretRef"] = json!({"name": "gone", "key": "k"});
    let m = map(&sshroute("ws", spec), &[], &[], &[]);
    assert_eq!(m.verdict.reason, "NoReadyPod");
    for part in ["authorizedKeys[0]", "Secret gone not found", "no Ready pod"] {
        assert!(
            m.verdict.message.contains(part),
            "{part}: {}",
            m.verdict.message
        );
    }
}

#[test]
fn stopped_by_spec_with_forwarding_and_token() {
    let mut spec = selector_spec();
    spec["state"] = json!("stopped");
    spec["message"] = json!("maintenance until 14:00");
    spec["forwarding"] = json!({"remote": false});
    spec["tokenSha256"] = json!("ab".repeat(32));
    let pods = [team_pod(
        "p",
        "ws",
        "10.0.0.1",
        true,
        "2025-01-01T00:00:00Z",
    )];
    let m = map(&sshroute("ws", spec), &pods, &[], &[]);
    assert_eq!(m.verdict.reason, "Stopped");
    let r = m.route.expect("route");
    assert_eq!(
        r.state,
        RouteState::Stopped {
            message: Some("maintenance until 14:00".into())
        }
    );
    assert!(!r.forwarding.remote && r.forwarding.local && r.forwarding.agent);
    assert_eq!(r.token_sha256, Some([0xab; 32]));
}

#[test]
fn wanted_lists_each_referenced_secret_key_once() {
    let mut a = selector_spec();
    a["identitySecretRef"] = json!({"name": "s", "key": "id"});
    a["authorizedKeysSecretRef"] = json!({"name": "s", "key": "keys"});
    let mut b = selector_spec();
    b["identitySecretRef"] = json!({"name": "s", "key": "id"});
    let routes = [
        sshroute("a", a),
        sshroute("b", b),
        sshroute("c", selector_spec()),
    ];
    let w = wanted(routes.iter());
    assert_eq!(w.len(), 1);
    let keys: Vec<_> = w[&("team".to_owned(), "s".to_owned())]
        .iter()
        .cloned()
        .collect();
    assert_eq!(keys, ["id", "keys"]);
    // Unreferenced Secrets are not kept.
    let other = secret("other", json!({"k": "v"}));
    assert!(secrets::keep_wanted(&other, &w).is_none());
}

#[test]
fn a_wake_target_is_kept_unless_the_spec_stops_the_route() {
    let mut spec = selector_spec();
    spec["wake"] = json!({"kind": "StatefulSet", "name": "ws-set"});
    let m = map(&sshroute("ws", spec.clone()), &[], &[], &[]);
    let wake = m.route.expect("route").wake;
    assert_eq!(
        wake,
        Some(crate::routes::WakeTarget::Scale {
            namespace: "team".into(),
            kind: crate::routes::ScaleKind::StatefulSet,
            name: "ws-set".into(),
        })
    );
    // An operator's `state: stopped` is never overridden by a wake.
    spec["state"] = json!("stopped");
    let m = map(&sshroute("ws", spec), &[], &[], &[]);
    assert_eq!(m.route.expect("route").wake, None);
}

fn certificate_spec(extra: Value) -> Value {
    let mut spec = selector_spec();
    spec["login"] = json!("certificate");
    if let (Some(spec), Value::Object(extra)) = (spec.as_object_mut(), extra) {
        spec.extend(extra);
    }
    spec
}

#[test]
fn certificate_logins_need_no_identity_and_a_user_ca() {
    let pods = [team_pod(
        "p",
        "ws",
        "10.0.0.1",
        true,
        "2025-01-01T00:00:00Z",
    )];
    let cluster = Cluster::new(&pods, &[], &[]);
    let sr = sshroute(
        "ws",
        certificate_spec(json!({"trustedHostCAs": [public_line(5)]})),
    );
    let m = Mapper::default().user_ca(true).map(&sr, &cluster);
    let r = m.route.expect("route");
    assert_eq!(r.login, crate::routes::LoginMethod::Certificate);
    assert!(r.identity.is_none());
    assert_eq!(r.trusted_host_cas, [public(5)]);
    assert!(m.verdict.ready, "{:?}", m.verdict);
    // No user CA at the gateway: not served, and the status says why.
    let m = Mapper::default().map(&sr, &cluster);
    assert!(m.route.is_none());
    assert_eq!(m.verdict.reason, "NoUserCA");
    assert!(
        m.verdict.message.contains("user_ca_key_file"),
        "{:?}",
        m.verdict
    );
    // An identity beside it, or host CAs beside a pin: invalid.
    for extra in [
        json!({"identitySecretRef": {"name": "id", "key": "k"}}),
        json!({"trustedHostCAs": [public_line(5)], "hostKey": public_line(6)}),
        json!({"trustedHostCAs": ["not a key"]}),
    ] {
        let sr = sshroute("ws", certificate_spec(extra.clone()));
        let m = Mapper::default().user_ca(true).map(&sr, &cluster);
        assert!(m.route.is_none(), "{extra}");
        assert_eq!(m.verdict.reason, "InvalidSpec", "{extra}");
    }
}

#[test]
fn without_read_secrets_a_secret_reference_is_a_reason_naming_the_switch() {
    let config = crate::config::KubernetesSourceConfig {
        read_secrets: false,
        backend_ports: vec![crate::config::PortSpec::One(2222)],
        ..Default::default()
    };
    let mut spec = selector_spec();
    spec["authorizedKeysSecretRef"] = json!({"name": "keys", "key": "authorized_keys"});
    let pods = [team_pod(
        "p",
        "ws",
        "10.0.0.1",
        true,
        "2025-01-01T00:00:00Z",
    )];
    let m = Mapper::new(&config).map(&sshroute("ws", spec), &Cluster::new(&pods, &[], &[]));
    let r = m
        .route
        .expect("degraded, still served with its inline keys");
    assert!(r.authorizes(&public(1)));
    assert_eq!(m.verdict.reason, "SecretMissing");
    assert!(
        m.verdict.message.contains("read_secrets = false"),
        "{:?}",
        m.verdict
    );
}

#[test]
fn principals_and_cert_authority_lines_inline_and_from_secrets() {
    let mut spec = selector_spec();
    spec["principals"] = json!(["alice", "bad principal"]);
    spec["authorizedKeys"] = json!([
        public_line(1),
        format!("cert-authority,principals=\"ops\" {}", public_line(2)),
    ]);
    spec["authorizedKeysSecretRef"] = json!({"name": "keys", "key": "authorized_keys"});
    let sr = sshroute("ws", spec);
    let pods = [team_pod(
        "p",
        "ws",
        "10.0.0.1",
        true,
        "2025-01-01T00:00:00Z",
    )];
    let keys = secret(
        "keys",
        json!({"authorized_keys": format!("cert-authority {}\n", public_line(3))}),
    );
    let m = map(&sr, &pods, &[], &[keys]);
    assert_eq!(m.verdict.reason, "KeyUnparsable", "{:?}", m.verdict);
    assert!(
        m.verdict.message.contains("principals[1]"),
        "{}",
        m.verdict.message
    );
    let r = m.route.expect("route");
    assert_eq!(r.authorized_keys.len(), 1);
    assert_eq!(r.user_certs.principals, ["alice"]);
    let cas: Vec<_> = r
        .user_certs
        .authorities
        .iter()
        .map(|a| (a.key.key_data().clone(), a.principals.clone()))
        .collect();
    assert_eq!(
        cas,
        [
            (public(2).key_data().clone(), Some(vec!["ops".to_owned()])),
            (public(3).key_data().clone(), None),
        ]
    );
}
