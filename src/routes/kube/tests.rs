//! Pure mapping tests for the Sealos Devbox mode and the store plumbing:
//! synthetic Pods and Secrets, watcher events fed into real reflector stores
//! (tombstones, relists, pod churn, several pods per box).

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::runtime::reflector::store::Writer;
use kube::runtime::watcher::Event;
use russh::keys::ssh_key::LineEnding;
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::{PrivateKey, PublicKey};
use serde_json::json;

use super::pods;
use super::reflect::{Keep, trim};
use super::sealos::{self, Mapper};
use crate::routes::{Route, RouteState};

pub(super) fn private(n: u8) -> PrivateKey {
    PrivateKey::from(Ed25519Keypair::from_seed(&[n; 32]))
}

pub(super) fn public(n: u8) -> PublicKey {
    private(n).public_key().clone()
}

pub(super) fn public_line(n: u8) -> String {
    public(n).to_openssh().expect("encodes")
}

pub(super) fn private_text(n: u8) -> String {
    private(n)
        .to_openssh(LineEnding::LF)
        .expect("encodes")
        .to_string()
}

fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// A pod: `owner` is a Devbox name; `ready` sets the Ready condition.
pub(super) fn pod(ns: &str, name: &str, owner: &str, ip: &str, ready: bool, created: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {
            "name": name, "namespace": ns, "uid": format!("uid-{name}"),
            "resourceVersion": "1", "creationTimestamp": created,
            "labels": {"app.kubernetes.io/part-of": "devbox", "app": owner},
            "ownerReferences": [{"apiVersion": "devbox.sealos.io/v1alpha1", "kind": "Devbox",
                                 "name": owner, "uid": "u"}],
            "annotations": {"big": "x".repeat(1000)},
        },
        "spec": {"containers": [{"name": "c", "image": "i"}]},
        "status": {
            "phase": "Running", "podIP": ip,
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }},
                           {"type": "PodScheduled", "status": "True"}],
        },
    }))
    .expect("pod")
}

fn terminating(mut p: Pod) -> Pod {
    p.metadata.deletion_timestamp = p.metadata.creation_timestamp.clone();
    p
}

/// A Devbox Secret with the user's key `n`, the box key `n + 100`, and `extra` authorized keys.
fn devbox_secret(ns: &str, owner: &str, n: u8, extra: &[u8], rv: &str) -> Secret {
    let authorized: String = extra
        .iter()
        .map(|k| format!("{}\n", public_line(*k)))
        .collect();
    let mut data = json!({
        sealos::PUBLIC_KEY: b64(&public_line(n)),
        sealos::PRIVATE_KEY: b64(&private_text(n)),
        "SEALOS_DEVBOX_JWT_SECRET": b64("jwt"),
    });
    if !extra.is_empty() {
        data[sealos::AUTHORIZED_KEYS] = json!(b64(&authorized));
    }
    serde_json::from_value(json!({
        "metadata": {
            "name": owner, "namespace": ns, "uid": format!("uid-s-{owner}"), "resourceVersion": rv,
            "creationTimestamp": "2025-01-01T00:00:00Z",
            "ownerReferences": [{"apiVersion": "devbox.sealos.io/v1alpha1", "kind": "Devbox",
                                 "name": owner, "uid": "u"}],
        },
        "data": data,
    }))
    .expect("secret")
}

fn kept(s: Secret) -> Arc<Secret> {
    Arc::new(sealos::keep_secret(&s).expect("a devbox secret"))
}

fn map(secrets: &[Arc<Secret>], pods: &[Pod]) -> (Vec<Route>, Vec<String>) {
    let pods: Vec<Arc<Pod>> = pods.iter().map(|p| Arc::new(pods::strip(p))).collect();
    let built = Mapper::new(22, "devbox".into()).routes(secrets, &pods);
    (built.routes, built.problems)
}

#[test]
fn devbox_with_a_ready_pod_is_a_running_route() {
    let secret = kept(devbox_secret("ns-abc", "box1", 1, &[2, 1], "5"));
    let p = pod(
        "ns-abc",
        "box1-x",
        "box1",
        "10.0.0.5",
        true,
        "2025-01-01T00:00:00Z",
    );
    let (routes, problems) = map(&[secret], &[p]);
    assert!(problems.is_empty(), "{problems:?}");
    let [r] = &routes[..] else {
        panic!("{routes:?}")
    };
    assert_eq!(r.name, "box1.ns-abc");
    assert_eq!(r.address, "10.0.0.5:22");
    assert_eq!(r.user.as_deref(), Some("devbox"));
    assert_eq!(r.state, RouteState::Running);
    // The public key and the registered keys, once each.
    assert_eq!(r.authorized_keys.len(), 2);
    assert!(r.authorizes(&public(1)) && r.authorizes(&public(2)));
    let id = r.identity.as_ref().expect("identity");
    assert_eq!(id.public_key().key_data(), public(1).key_data());
    assert!(format!("{r:?}").contains("<redacted>"));
}

#[test]
fn devbox_without_a_ready_pod_is_stopped() {
    let secret = kept(devbox_secret("ns", "b", 1, &[], "1"));
    for pods in [
        vec![],
        vec![pod(
            "ns",
            "b-1",
            "b",
            "10.0.0.1",
            false,
            "2025-01-01T00:00:00Z",
        )],
        vec![terminating(pod(
            "ns",
            "b-1",
            "b",
            "10.0.0.1",
            true,
            "2025-01-01T00:00:00Z",
        ))],
        vec![pod(
            "ns",
            "b-1",
            "other",
            "10.0.0.1",
            true,
            "2025-01-01T00:00:00Z",
        )],
        vec![pod(
            "other-ns",
            "b-1",
            "b",
            "10.0.0.1",
            true,
            "2025-01-01T00:00:00Z",
        )],
    ] {
        let (routes, _) = map(std::slice::from_ref(&secret), &pods);
        assert_eq!(
            routes[0].state,
            RouteState::Stopped { message: None },
            "{pods:?}"
        );
        assert_eq!(routes[0].address, "");
    }
}

#[test]
fn several_pods_per_box_resolve_to_the_oldest_ready_one() {
    let secret = kept(devbox_secret("ns", "b", 1, &[], "1"));
    let old = pod("ns", "b-old", "b", "10.0.0.1", true, "2025-01-01T00:00:00Z");
    let new = pod("ns", "b-new", "b", "10.0.0.2", true, "2025-01-02T00:00:00Z");
    let twin = pod("ns", "b-a", "b", "10.0.0.3", true, "2025-01-02T00:00:00Z");
    let address = |pods: &[Pod]| {
        map(std::slice::from_ref(&secret), pods).0[0]
            .address
            .clone()
    };
    assert_eq!(address(&[new.clone(), old.clone()]), "10.0.0.1:22");
    assert_eq!(address(&[old.clone(), new.clone()]), "10.0.0.1:22");
    // Churn: the old pod terminates (still Ready), then is gone.
    assert_eq!(
        address(&[terminating(old.clone()), new.clone()]),
        "10.0.0.2:22"
    );
    assert_eq!(address(std::slice::from_ref(&new)), "10.0.0.2:22");
    // Same age: by name.
    assert_eq!(address(&[new, twin]), "10.0.0.3:22");
}

#[test]
fn tombstones_and_relists_leave_no_stale_route() {
    let keep_secret: Keep<Secret> = Arc::new(sealos::keep_secret);
    let keep_pod: Keep<Pod> = Arc::new(|p: &Pod| Some(pods::strip(p)));
    let mut secrets: Writer<Secret> = Writer::default();
    let mut pods_w: Writer<Pod> = Writer::default();
    let apply = |w: &mut Writer<Secret>, e: Event<Secret>| {
        if let Some(e) = trim(e, &keep_secret) {
            w.apply_watcher_event(&e);
        }
    };
    let s = devbox_secret("ns", "b", 1, &[], "1");
    let p = pod("ns", "b-1", "b", "10.0.0.1", true, "2025-01-01T00:00:00Z");
    for e in [Event::Init, Event::InitApply(s.clone()), Event::InitDone] {
        apply(&mut secrets, e);
    }
    for e in [Event::Init, Event::InitApply(p.clone()), Event::InitDone] {
        pods_w.apply_watcher_event(&trim(e, &keep_pod).expect("kept"));
    }
    let now = |secrets: &Writer<Secret>, pods: &Writer<Pod>| {
        Mapper::new(22, "devbox".into())
            .routes(&secrets.as_reader().state(), &pods.as_reader().state())
            .routes
    };
    assert_eq!(now(&secrets, &pods_w)[0].state, RouteState::Running);
    // Pod deleted (tombstone): stopped.
    pods_w.apply_watcher_event(&Event::Delete(p.clone()));
    assert!(matches!(
        now(&secrets, &pods_w)[0].state,
        RouteState::Stopped { .. }
    ));
    // Pod back, then its delete is missed while the watch is down; the relist
    // after 410 Gone lists no pod: stopped again, nothing stale.
    pods_w.apply_watcher_event(&Event::Apply(pods::strip(&p)));
    assert_eq!(now(&secrets, &pods_w)[0].state, RouteState::Running);
    for e in [Event::Init, Event::InitDone] {
        pods_w.apply_watcher_event(&e);
    }
    assert!(matches!(
        now(&secrets, &pods_w)[0].state,
        RouteState::Stopped { .. }
    ));
    // Secret deleted: the route is gone.
    apply(&mut secrets, Event::Delete(s.clone()));
    assert!(now(&secrets, &pods_w).is_empty());
    // A Secret that loses its Devbox owner is dropped from the store.
    apply(&mut secrets, Event::Apply(s.clone()));
    assert_eq!(secrets.as_reader().state().len(), 1);
    let mut orphan = s.clone();
    orphan.metadata.owner_references = None;
    apply(&mut secrets, Event::Apply(orphan));
    assert!(secrets.as_reader().state().is_empty());
}

#[test]
fn only_the_three_devbox_keys_are_kept() {
    let s = sealos::keep_secret(&devbox_secret("ns", "b", 1, &[2], "1")).expect("kept");
    let mut keys: Vec<_> = s.data.iter().flatten().map(|(k, _)| k.as_str()).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            sealos::AUTHORIZED_KEYS,
            sealos::PRIVATE_KEY,
            sealos::PUBLIC_KEY
        ]
    );
}

#[test]
fn broken_key_material_degrades_the_route_and_says_why() {
    let mut s = devbox_secret("ns", "b", 1, &[], "1");
    let data = s.data.as_mut().expect("data");
    data.insert(
        sealos::PRIVATE_KEY.into(),
        k8s_openapi::ByteString(b"-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n".to_vec()),
    );
    data.remove(sealos::PUBLIC_KEY);
    data.insert(
        sealos::AUTHORIZED_KEYS.into(),
        k8s_openapi::ByteString(format!("{}\ngarbage\n", public_line(3)).into_bytes()),
    );
    let (routes, problems) = map(&[kept(s)], &[]);
    let r = &routes[0];
    assert!(r.identity.is_none());
    assert!(r.authorizes(&public(3)));
    let all = problems.join("\n");
    assert!(all.contains("no SEALOS_DEVBOX_PUBLIC_KEY"), "{all}");
    assert!(
        all.contains("SEALOS_DEVBOX_AUTHORIZED_KEYS: line 2"),
        "{all}"
    );
    assert!(
        all.contains("SEALOS_DEVBOX_PRIVATE_KEY is not a private key"),
        "{all}"
    );
    assert!(!all.contains("AAAA"), "{all}");
}

#[test]
fn a_second_secret_for_a_box_is_ignored_deterministically() {
    let a = devbox_secret("ns", "b", 1, &[], "1");
    let mut b = devbox_secret("ns", "b", 2, &[], "1");
    b.metadata.name = Some("b-copy".into());
    b.metadata.creation_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        "2025-06-01T00:00:00Z".parse().expect("time"),
    ));
    for order in [
        [kept(a.clone()), kept(b.clone())],
        [kept(b.clone()), kept(a.clone())],
    ] {
        let (routes, problems) = map(&order, &[]);
        assert_eq!(routes.len(), 1);
        assert!(routes[0].authorizes(&public(1)));
        assert!(problems[0].contains("b-copy"), "{problems:?}");
    }
}

#[test]
fn ipv6_pod_addresses_are_bracketed() {
    assert_eq!(pods::address("fd00::5", 22), "[fd00::5]:22");
    assert_eq!(pods::address("10.0.0.1", 2222), "10.0.0.1:2222");
}

#[test]
fn stripped_pods_keep_only_what_routing_needs() {
    let p = pods::strip(&pod(
        "ns",
        "p",
        "b",
        "10.0.0.1",
        true,
        "2025-01-01T00:00:00Z",
    ));
    assert!(p.spec.is_none());
    assert!(p.metadata.annotations.is_none());
    assert_eq!(
        p.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .map(Vec::len),
        Some(1)
    );
    assert!(pods::is_ready(&p));
}

/// `sync` publishes a rebuild only when it differs from the last one.
#[test]
fn rebuilds_differ_in_what_users_see_only() {
    let secret = kept(devbox_secret("ns", "b", 1, &[], "1"));
    let up = pod("ns", "b-1", "b", "10.0.0.1", true, "2025-01-01T00:00:00Z");
    let (a, _) = map(std::slice::from_ref(&secret), std::slice::from_ref(&up));
    let (b, _) = map(std::slice::from_ref(&secret), &[up]);
    assert_eq!(a, b);
    let (c, _) = map(&[secret], &[]);
    assert_ne!(a, c);
}

#[test]
fn devbox_routes_are_sshgate_compatible_and_wakeable_when_asked() {
    let secret = kept(devbox_secret("ns-abc", "box1", 1, &[2], "5"));
    let (routes, _) = map(std::slice::from_ref(&secret), &[]);
    assert!(routes[0].sshgate_compat);
    assert_eq!(routes[0].wake, None);
    let built = Mapper::new(22, "devbox".into())
        .waking(true)
        .routes(&[secret], &[]);
    assert_eq!(
        built.routes[0].wake,
        Some(crate::routes::WakeTarget::Devbox {
            namespace: "ns-abc".into(),
            name: "box1".into(),
        })
    );
}
