//! Pods as backends: which pods can take a connection (Ready and not
//! terminating, with an IP), which one of several a route uses, and the
//! small part of a Pod kept in memory.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Pod, PodCondition, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// True when `pod` can take a connection now: no `deletionTimestamp`
/// (terminating pods may still be Ready but are going away), the `Ready`
/// condition is `True`, and it has an IP.
pub(super) fn is_ready(pod: &Pod) -> bool {
    if pod.metadata.deletion_timestamp.is_some() {
        return false;
    }
    let Some(status) = &pod.status else {
        return false;
    };
    let ready = status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    ready && ip(pod).is_some()
}

/// The pod's IP, if it has one.
pub(super) fn ip(pod: &Pod) -> Option<&str> {
    pod.status
        .as_ref()
        .and_then(|s| s.pod_ip.as_deref())
        .filter(|ip| !ip.is_empty())
}

/// The pod a route uses among `candidates`: the oldest Ready one (by
/// `creationTimestamp`, then name), so that every replica picks the same pod
/// and a pod started by a rollout does not take over until the old one goes.
pub(super) fn pick<'a>(candidates: impl IntoIterator<Item = &'a Pod>) -> Option<&'a Pod> {
    candidates
        .into_iter()
        .filter(|p| is_ready(p))
        .min_by(|a, b| {
            let key = |p: &'a Pod| {
                let created = p.metadata.creation_timestamp.as_ref().map(|t| t.0);
                (created.is_none(), created, p.metadata.name.as_deref())
            };
            key(a).cmp(&key(b))
        })
}

/// True when `labels` has every `selector` entry.
pub(super) fn matches(
    labels: Option<&BTreeMap<String, String>>,
    selector: &BTreeMap<String, String>,
) -> bool {
    selector
        .iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// `ip:port`, bracketing IPv6.
pub(super) fn address(ip: &str, port: u16) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

/// What is kept of a Pod: identity, labels, owners, timestamps, IP and the
/// Ready condition. Spec, container statuses, annotations and managed fields
/// are dropped (they are most of a Pod's size).
pub(super) fn strip(pod: &Pod) -> Pod {
    let m = &pod.metadata;
    let status = pod.status.as_ref().map(|s| PodStatus {
        pod_ip: s.pod_ip.clone(),
        phase: s.phase.clone(),
        conditions: s.conditions.as_ref().map(|cs| {
            cs.iter()
                .filter(|c| c.type_ == "Ready")
                .map(|c| PodCondition {
                    type_: c.type_.clone(),
                    status: c.status.clone(),
                    ..Default::default()
                })
                .collect()
        }),
        ..Default::default()
    });
    Pod {
        metadata: ObjectMeta {
            name: m.name.clone(),
            namespace: m.namespace.clone(),
            uid: m.uid.clone(),
            resource_version: m.resource_version.clone(),
            labels: m.labels.clone(),
            owner_references: m.owner_references.clone(),
            creation_timestamp: m.creation_timestamp.clone(),
            deletion_timestamp: m.deletion_timestamp.clone(),
            ..Default::default()
        },
        spec: None,
        status,
    }
}
