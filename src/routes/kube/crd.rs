//! The `SSHRoute` custom resource (`switchboard.dev/v1alpha1`, SPEC §7): one
//! box per object, defined here in Rust; `switchboard crd` prints the
//! CustomResourceDefinition generated from these types (checked in as
//! `deploy/crd.yaml`, kept in sync by a test).

use std::collections::BTreeMap;

use kube::{CustomResource, CustomResourceExt, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What an `SSHRoute` asks for. The route is named `<name>.<namespace>`.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "switchboard.dev",
    version = "v1alpha1",
    kind = "SSHRoute",
    plural = "sshroutes",
    singular = "sshroute",
    shortname = "sshr",
    namespaced,
    status = "SSHRouteStatus",
    derive = "PartialEq",
    doc = "A box reachable through the Switchboard SSH gateway as <name>.<namespace>.",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct SSHRouteSpec {
    /// Where the box's sshd listens.
    pub backend: Backend,
    /// Login user on the box when the SSH username names none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Client public keys (OpenSSH lines) that may use this route.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authorized_keys: Vec<String>,
    /// More client keys, `authorized_keys` format, from a Secret in this namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorized_keys_secret_ref: Option<SecretKeyRef>,
    /// The private key the gateway logs in to the box with, from a Secret in
    /// this namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_secret_ref: Option<SecretKeyRef>,
    /// Pin of the box's host key (`ssh-ed25519 AAAA…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_key: Option<String>,
    /// Which forwardings the gateway allows (all default to true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forwarding: Option<ForwardingSpec>,
    /// `running` (default) or `stopped`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<StateSpec>,
    /// Note shown to users while the route is stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// SHA-256 (hex) of this route's HTTP tunnel token; never the token itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9a-fA-F]{64}$"))]
    pub token_sha256: Option<String>,
    /// The workload in this namespace the gateway scales to one replica to
    /// start the box when it has no ready pod and an authorized key
    /// connects (with `sources.kubernetes.wake = true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wake: Option<WakeSpec>,
    /// How the gateway logs in to the box: `key` (default: the key in
    /// `identitySecretRef`) or `certificate` (a certificate the gateway's
    /// user CA mints per login; no `identitySecretRef`, no Secret read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<LoginSpec>,
    /// Host CAs (OpenSSH public key lines) whose host certificates the box
    /// may present, instead of `hostKey` or the first key seen; replaces the
    /// gateway's `upstream.trusted_host_cas` for this route.
    #[serde(
        default,
        rename = "trustedHostCAs",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub trusted_host_cas: Vec<String>,
    /// OpenSSH user-certificate principals that may use this route, with a
    /// certificate signed by a CA the gateway trusts (`trusted_user_ca_keys`)
    /// or by a `cert-authority` line of `authorizedKeys`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub principals: Vec<String>,
}

/// `spec.login`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LoginSpec {
    Key,
    Certificate,
}

/// A Deployment or StatefulSet, scaled through its `scale` subresource.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct WakeSpec {
    pub kind: WakeKind,
    pub name: String,
}

/// The workloads a [`WakeSpec`] can name.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum WakeKind {
    Deployment,
    StatefulSet,
}

/// A Service name or a pod selector (exactly one), and the sshd port.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("has(self.service) != has(self.podSelector)")
    .message("set exactly one of service and podSelector"))]
#[serde(rename_all = "camelCase")]
pub struct Backend {
    /// A Service in this namespace; its cluster IP is dialled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Pods in this namespace; the oldest Ready, non-terminating one is dialled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_selector: Option<PodSelector>,
    /// The sshd port on the Service or pod.
    #[serde(default = "default_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
}

fn default_port() -> i32 {
    22
}

/// Pods whose labels include every one of `matchLabels`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodSelector {
    pub match_labels: BTreeMap<String, String>,
}

/// One key of one Secret in the route's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub struct SecretKeyRef {
    pub name: String,
    pub key: String,
}

/// Per-route forwarding switches, enforced by the gateway.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct ForwardingSpec {
    /// `-L`, `-D`, `-W`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<bool>,
    /// `-R`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<bool>,
    /// `ssh -A` into the box.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<bool>,
}

/// Whether the operator wants the box reachable.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum StateSpec {
    Running,
    Stopped,
}

/// What the gateway found when it resolved the route.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SSHRouteStatus {
    /// `Ready`: True when the route is served and its box reachable.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The `metadata.generation` the conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// A status condition, shaped like `metav1.Condition`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// CamelCase cause: `Resolved`, `NoReadyPod`, `SecretMissing`, …
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub message: String,
    /// RFC 3339 time `status` last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// The CustomResourceDefinition as YAML, what `switchboard crd` prints.
pub fn crd_yaml() -> Result<String, serde_yaml::Error> {
    let body = serde_yaml::to_string(&SSHRoute::crd())?;
    Ok(format!(
        "# The SSHRoute CustomResourceDefinition, generated by `switchboard crd`\n\
         # from src/routes/kube/crd.rs: do not edit by hand.\n{body}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checked_in_crd_matches_the_types() {
        let generated = crd_yaml().expect("CRD serializes");
        for (path, checked_in) in [
            ("deploy/crd.yaml", include_str!("../../../deploy/crd.yaml")),
            (
                "deploy/helm/switchboard/crds/sshroute.yaml",
                include_str!("../../../deploy/helm/switchboard/crds/sshroute.yaml"),
            ),
        ] {
            assert!(
                generated == checked_in,
                "{path} is out of date: run `cargo run -- crd > {path}`"
            );
        }
    }

    #[test]
    fn schema_carries_the_backend_rule_and_status_subresource() {
        let yaml = crd_yaml().expect("CRD serializes");
        assert!(yaml.contains("has(self.service) != has(self.podSelector)"));
        assert!(yaml.contains("status: {}"));
        assert!(yaml.contains("group: switchboard.dev"));
    }

    #[test]
    fn spec_round_trips_from_camel_case_yaml() {
        let spec: SSHRouteSpec = serde_json::from_value(serde_json::json!({
            "backend": {"podSelector": {"matchLabels": {"app": "ws"}}},
            "authorizedKeysSecretRef": {"name": "keys", "key": "authorized_keys"},
            "forwarding": {"agent": false},
            "state": "stopped",
            "tokenSha256": "00",
            "wake": {"kind": "StatefulSet", "name": "ws"},
            "login": "certificate",
            "trustedHostCAs": ["ssh-ed25519 AAAA ca"],
        }))
        .expect("parses");
        assert_eq!(spec.login, Some(LoginSpec::Certificate));
        assert_eq!(spec.trusted_host_cas.len(), 1);
        let wake = spec.wake.as_ref().expect("wake");
        assert_eq!(
            (wake.kind, wake.name.as_str()),
            (WakeKind::StatefulSet, "ws")
        );
        assert_eq!(spec.backend.port, 22);
        assert_eq!(spec.state, Some(StateSpec::Stopped));
        assert_eq!(spec.forwarding.and_then(|f| f.agent), Some(false));
    }
}
