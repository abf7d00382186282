//! `mode = "crd"`, the pure part: one `SSHRoute` plus the Pods, Services and
//! Secrets it refers to → its route and its `Ready` verdict.
//!
//! An invalid spec (both or neither backend, a bad port, host key pin or
//! token) publishes no route: serving it half-configured could weaken it
//! (an unpinned host key). Missing or bad key material degrades the route
//! (those keys are left out) and says so in the verdict; no ready backend
//! makes it `stopped`.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Pod, Secret, Service};
use russh::keys::{PrivateKey, PublicKey};
use tracing::warn;

use super::backend::{self, Policy};
use super::crd::{ForwardingSpec, SSHRoute, SSHRouteSpec, SecretKeyRef, StateSpec, WakeKind};
use super::crd_validate::validate;
use super::secrets::{self, Memo, Version, Wanted};
use crate::config::KubernetesSourceConfig;
use crate::routes::keys::{AuthorizedKeys, AuthorizedLine, check_principal, parse_authorized_line};
use crate::routes::{
    Forwarding, LoginMethod, NO_USER_CA, Route, RouteState, ScaleKind, UserCerts, WakeTarget,
};

/// Why a route is not Ready, most serious first (the verdict names the first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Reason {
    InvalidSpec,
    NoUserCA,
    BackendRefused,
    ServiceMissing,
    NoReadyPod,
    SecretMissing,
    KeyUnparsable,
    Stopped,
}

impl Reason {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Reason::InvalidSpec => "InvalidSpec",
            Reason::NoUserCA => "NoUserCA",
            Reason::BackendRefused => "BackendRefused",
            Reason::ServiceMissing => "ServiceMissing",
            Reason::NoReadyPod => "NoReadyPod",
            Reason::SecretMissing => "SecretMissing",
            Reason::KeyUnparsable => "KeyUnparsable",
            Reason::Stopped => "Stopped",
        }
    }
}

/// The `Ready` condition a route should have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Verdict {
    pub ready: bool,
    pub reason: &'static str,
    pub message: String,
}

/// One `SSHRoute`, resolved.
#[derive(Debug)]
pub(super) struct Mapped {
    /// `None` when the spec is invalid.
    pub route: Option<Route>,
    pub verdict: Verdict,
}

/// The objects routes refer to, indexed.
#[derive(Default)]
pub(super) struct Cluster<'a> {
    /// Pods by namespace.
    pub pods: HashMap<&'a str, Vec<&'a Pod>>,
    /// Services by (namespace, name).
    pub services: HashMap<(&'a str, &'a str), &'a Service>,
    /// Secrets by (namespace, name).
    pub secrets: HashMap<(&'a str, &'a str), &'a Secret>,
}

impl<'a> Cluster<'a> {
    pub(super) fn new(
        pods: &'a [Arc<Pod>],
        services: &'a [Arc<Service>],
        secrets: &'a [Arc<Secret>],
    ) -> Self {
        let mut c = Cluster::default();
        for p in pods {
            if let Some(ns) = p.metadata.namespace.as_deref() {
                c.pods.entry(ns).or_default().push(p);
            }
        }
        for s in services {
            if let (Some(ns), Some(n)) =
                (s.metadata.namespace.as_deref(), s.metadata.name.as_deref())
            {
                c.services.insert((ns, n), s);
            }
        }
        for s in secrets {
            if let (Some(ns), Some(n)) =
                (s.metadata.namespace.as_deref(), s.metadata.name.as_deref())
            {
                c.secrets.insert((ns, n), s);
            }
        }
        c
    }
}

/// The Secrets (and keys) that `routes` refer to.
pub(super) fn wanted<'a>(routes: impl IntoIterator<Item = &'a SSHRoute>) -> Wanted {
    let mut wanted = Wanted::new();
    for r in routes {
        let Some(ns) = &r.metadata.namespace else {
            continue;
        };
        for s in [
            &r.spec.authorized_keys_secret_ref,
            &r.spec.identity_secret_ref,
        ]
        .into_iter()
        .flatten()
        {
            wanted
                .entry((ns.clone(), s.name.clone()))
                .or_default()
                .insert(s.key.clone());
        }
    }
    wanted
}

/// Problems found while resolving one route.
#[derive(Default)]
pub(super) struct Problems(Vec<(Reason, String)>);

impl Problems {
    pub(super) fn add(&mut self, reason: Reason, message: String) {
        self.0.push((reason, message));
    }

    fn verdict(&self, ok: impl FnOnce() -> String) -> Verdict {
        match self.0.iter().map(|(r, _)| *r).min() {
            None => Verdict {
                ready: true,
                reason: "Resolved",
                message: ok(),
            },
            Some(reason) => Verdict {
                ready: false,
                reason: reason.as_str(),
                message: self
                    .0
                    .iter()
                    .map(|(_, m)| m.as_str())
                    .collect::<Vec<_>>()
                    .join("; "),
            },
        }
    }
}

/// SSHRoutes → routes, parsing each Secret version once.
#[derive(Default)]
pub(super) struct Mapper {
    authorized: Memo<Version, Arc<AuthorizedKeys>>,
    identities: Memo<Version, Result<Arc<PrivateKey>, String>>,
    policy: Policy,
    /// The label selector Secrets are watched with (named when one is missing).
    secret_selector: String,
    /// `sources.kubernetes.read_secrets = false`: no Secret is ever there.
    secrets_off: bool,
    /// Whether the gateway has a user CA for `login: certificate` routes.
    user_ca: bool,
}

impl Mapper {
    /// A mapper under `config`'s backend limits and Secret selector.
    pub(super) fn new(config: &KubernetesSourceConfig) -> Self {
        Self {
            policy: Policy::new(config),
            secret_selector: config.secret_selector.clone(),
            secrets_off: !config.read_secrets,
            ..Self::default()
        }
    }

    /// Says whether the gateway has a user CA (without one, `login:
    /// certificate` routes are not served).
    pub(super) fn user_ca(mut self, configured: bool) -> Self {
        self.user_ca = configured;
        self
    }

    /// Ends a build (forgets parsed Secrets no route used).
    pub(super) fn finish(&mut self) {
        self.authorized.finish();
        self.identities.finish();
    }

    /// Resolves one `SSHRoute`.
    pub(super) fn map(&mut self, sr: &SSHRoute, cluster: &Cluster<'_>) -> Mapped {
        let (Some(ns), Some(name)) = (
            sr.metadata.namespace.as_deref(),
            sr.metadata.name.as_deref(),
        ) else {
            return invalid("the object has no name or namespace".into());
        };
        let route_name = format!("{name}.{ns}");
        let spec = &sr.spec;
        let valid = match validate(spec) {
            Ok(v) => v,
            Err(problems) => return invalid(problems.join("; ")),
        };
        if valid.login == LoginMethod::Certificate && !self.user_ca {
            return unservable(
                Reason::NoUserCA,
                NO_USER_CA.replace("= \"certificate\"", ": certificate"),
            );
        }
        let mut problems = Problems::default();
        let mut authorized_keys = Vec::new();
        let mut user_certs = UserCerts::default();
        for (i, line) in spec.authorized_keys.iter().enumerate() {
            match parse_authorized_line(line) {
                Ok(AuthorizedLine::Key(k)) => authorized_keys.push(k),
                Ok(AuthorizedLine::Authority(ca)) => user_certs.authorities.push(ca),
                Err(e) => problems.add(Reason::KeyUnparsable, format!("authorizedKeys[{i}]: {e}")),
            }
        }
        for (i, principal) in spec.principals.iter().enumerate() {
            match check_principal(principal) {
                Ok(()) => user_certs.principals.push(principal.clone()),
                Err(e) => problems.add(Reason::KeyUnparsable, format!("principals[{i}]: {e}")),
            }
        }
        if let Some(r) = &spec.authorized_keys_secret_ref {
            self.secret_keys(
                ns,
                r,
                cluster,
                &route_name,
                (&mut authorized_keys, &mut user_certs),
                &mut problems,
            );
        }
        let identity = spec
            .identity_secret_ref
            .as_ref()
            .and_then(|r| self.identity(ns, r, cluster, &route_name, &mut problems));
        let (address, mut state) =
            backend::resolve(ns, spec, valid.port, cluster, &self.policy, &mut problems);
        if spec.state == Some(StateSpec::Stopped) {
            problems.add(Reason::Stopped, "spec.state is stopped".into());
            state = RouteState::Stopped {
                message: spec.message.clone(),
            };
        }
        let verdict = problems.verdict(|| format!("routes to {address}"));
        Mapped {
            route: Some(Route {
                name: route_name,
                address,
                user: spec.user.clone(),
                authorized_keys,
                identity,
                host_key: valid.host_key,
                state,
                forwarding: forwarding(spec.forwarding.as_ref()),
                token_sha256: valid.token_sha256,
                sshgate_compat: false,
                wake: wake_target(ns, spec),
                login: valid.login,
                trusted_host_cas: valid.trusted_host_cas,
                user_certs,
            }),
            verdict,
        }
    }

    fn secret_keys(
        &mut self,
        ns: &str,
        r: &SecretKeyRef,
        cluster: &Cluster<'_>,
        route: &str,
        (keys, user_certs): (&mut Vec<PublicKey>, &mut UserCerts),
        problems: &mut Problems,
    ) {
        let found = self.lookup(ns, r, cluster, "authorizedKeysSecretRef", problems);
        let Some((secret, bytes)) = found else {
            return;
        };
        let parsed = self.authorized.get(Version::of(secret, &r.key), || {
            let parsed = secrets::authorized_keys(bytes);
            for p in &parsed.problems {
                warn!(route = %route, "Secret {}, key {}: {p}; that key is skipped", r.name, r.key);
            }
            Arc::new(parsed)
        });
        for p in &parsed.problems {
            problems.add(
                Reason::KeyUnparsable,
                format!("authorizedKeysSecretRef: {p}"),
            );
        }
        secrets::add_new_keys(keys, &parsed.keys);
        for ca in &parsed.authorities {
            if !user_certs.authorities.contains(ca) {
                user_certs.authorities.push(ca.clone());
            }
        }
    }

    fn identity(
        &mut self,
        ns: &str,
        r: &SecretKeyRef,
        cluster: &Cluster<'_>,
        route: &str,
        problems: &mut Problems,
    ) -> Option<Arc<PrivateKey>> {
        let (secret, bytes) = self.lookup(ns, r, cluster, "identitySecretRef", problems)?;
        let what = format!("Secret {}, key {}", r.name, r.key);
        let parsed = self.identities.get(Version::of(secret, &r.key), || {
            let parsed = secrets::identity(bytes, &what);
            if let Err(e) = &parsed {
                warn!(route = %route, "{e}; key mode cannot log in to this box");
            }
            parsed
        });
        parsed
            .map_err(|e| problems.add(Reason::KeyUnparsable, format!("identitySecretRef: {e}")))
            .ok()
    }
}

/// `spec.forwarding`: each switch left out takes [`Forwarding::default`]'s value.
fn forwarding(spec: Option<&ForwardingSpec>) -> Forwarding {
    let default = Forwarding::default();
    let Some(f) = spec else {
        return default;
    };
    Forwarding {
        local: f.local.unwrap_or(default.local),
        remote: f.remote.unwrap_or(default.remote),
        agent: f.agent.unwrap_or(default.agent),
    }
}

impl Mapper {
    /// The Secret and data entry `r` names, or a `SecretMissing` problem.
    fn lookup<'c>(
        &self,
        ns: &str,
        r: &SecretKeyRef,
        cluster: &Cluster<'c>,
        field: &str,
        problems: &mut Problems,
    ) -> Option<(&'c Secret, &'c [u8])> {
        if self.secrets_off {
            problems.add(
                Reason::SecretMissing,
                format!(
                    "{field}: this gateway reads no Secrets (sources.kubernetes.read_secrets = \
                     false); use inline keys or login: certificate"
                ),
            );
            return None;
        }
        lookup(ns, r, cluster, field, &self.secret_selector, problems)
    }
}

/// The Secret and data entry `r` names, or a `SecretMissing` problem.
fn lookup<'c>(
    ns: &str,
    r: &SecretKeyRef,
    cluster: &Cluster<'c>,
    field: &str,
    selector: &str,
    problems: &mut Problems,
) -> Option<(&'c Secret, &'c [u8])> {
    let Some(secret) = cluster.secrets.get(&(ns, r.name.as_str())).copied() else {
        problems.add(
            Reason::SecretMissing,
            format!(
                "{field}: Secret {} not found (a Secret routes use needs the label {selector})",
                r.name
            ),
        );
        return None;
    };
    let Some(bytes) = secret.data.as_ref().and_then(|d| d.get(&r.key)) else {
        problems.add(
            Reason::SecretMissing,
            format!("{field}: Secret {} has no key {}", r.name, r.key),
        );
        return None;
    };
    Some((secret, bytes.0.as_slice()))
}

fn invalid(message: String) -> Mapped {
    unservable(Reason::InvalidSpec, message)
}

/// No route, and why.
fn unservable(reason: Reason, message: String) -> Mapped {
    Mapped {
        route: None,
        verdict: Verdict {
            ready: false,
            reason: reason.as_str(),
            message,
        },
    }
}

/// The `wake` workload, unless the operator stopped the route itself
/// (`spec.state: stopped`), which no wake may override.
fn wake_target(ns: &str, spec: &SSHRouteSpec) -> Option<WakeTarget> {
    if spec.state == Some(StateSpec::Stopped) {
        return None;
    }
    let wake = spec.wake.as_ref()?;
    Some(WakeTarget::Scale {
        namespace: ns.to_owned(),
        kind: match wake.kind {
            WakeKind::Deployment => ScaleKind::Deployment,
            WakeKind::StatefulSet => ScaleKind::StatefulSet,
        },
        name: wake.name.clone(),
    })
}
