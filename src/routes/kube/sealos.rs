//! `mode = "sealos-devbox"`: the Sealos Devbox layout (SPEC §7), as a drop-in
//! for its gateway. A Devbox is a Secret and Pods, both labelled
//! `app.kubernetes.io/part-of=devbox` and owned by the `Devbox` object whose
//! name is the box's. The Secret holds `SEALOS_DEVBOX_PUBLIC_KEY` (the user's
//! key), `SEALOS_DEVBOX_PRIVATE_KEY` (the gateway's login to the box) and
//! optionally `SEALOS_DEVBOX_AUTHORIZED_KEYS` (more keys the user registered);
//! the box's address is its Ready pod's IP.
//!
//! Route `<devbox>.<namespace>`, so that `routing.username_grammar = "sealos"`
//! maps `user@nsid-box` to `box.ns-nsid`. A box whose Secret exists but which
//! has no Ready, non-terminating pod is `stopped`.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Pod, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::runtime::reflector::Store;
use russh::keys::{PrivateKey, PublicKey};
use tracing::warn;

use super::pods;
use super::reflect::Shared;
use super::secrets::{self, Memo, Version};
use super::sync::{Builder, Built};
use crate::routes::keys::AuthorizedKeys;
use crate::routes::{CertAuthority, Forwarding, Route, RouteState, UserCerts, WakeTarget};

/// The label selecting Devbox Secrets and Pods.
pub(super) const SELECTOR: &str = "app.kubernetes.io/part-of=devbox";
/// The user's public key: authorized for the box.
pub(super) const PUBLIC_KEY: &str = "SEALOS_DEVBOX_PUBLIC_KEY";
/// The box's private key: the gateway logs in with it.
pub(super) const PRIVATE_KEY: &str = "SEALOS_DEVBOX_PRIVATE_KEY";
/// More keys authorized for the box (`authorized_keys` format; may be absent).
pub(super) const AUTHORIZED_KEYS: &str = "SEALOS_DEVBOX_AUTHORIZED_KEYS";
/// The data keys kept from a Devbox Secret; the rest (a JWT secret, …) is dropped.
pub(super) const KEYS: [&str; 3] = [PUBLIC_KEY, PRIVATE_KEY, AUTHORIZED_KEYS];

/// The name of the `Devbox` that owns an object.
pub(super) fn devbox_owner(meta: &ObjectMeta) -> Option<&str> {
    meta.owner_references
        .iter()
        .flatten()
        .find(|o| o.kind == "Devbox")
        .map(|o| o.name.as_str())
}

/// What is kept of a Devbox Secret: its identity and the three key entries.
/// Secrets without a Devbox owner are not boxes.
pub(super) fn keep_secret(secret: &Secret) -> Option<Secret> {
    devbox_owner(&secret.metadata)?;
    Some(secrets::keep_keys(secret, |k| KEYS.contains(&k)))
}

/// Devbox Secrets + Pods → routes, parsing each Secret version once.
pub(super) struct Mapper {
    port: u16,
    user: String,
    /// `sources.kubernetes.wake`: every Devbox may be woken.
    wake: bool,
    authorized: Memo<Version, Arc<AuthorizedKeys>>,
    identities: Memo<Version, Result<Arc<PrivateKey>, String>>,
}

impl Mapper {
    pub(super) fn new(port: u16, user: String) -> Self {
        Self {
            port,
            user,
            wake: false,
            authorized: Memo::default(),
            identities: Memo::default(),
        }
    }

    /// Routes that may be woken: their `Devbox` is patched to `Running`.
    pub(super) fn waking(mut self, wake: bool) -> Self {
        self.wake = wake;
        self
    }

    /// The routes of every Devbox Secret, in name order.
    pub(super) fn routes(&mut self, secrets: &[Arc<Secret>], pods: &[Arc<Pod>]) -> Built {
        let mut by_box: HashMap<(&str, &str), Vec<&Pod>> = HashMap::new();
        for pod in pods {
            if let (Some(ns), Some(owner)) = (
                pod.metadata.namespace.as_deref(),
                devbox_owner(&pod.metadata),
            ) {
                by_box.entry((ns, owner)).or_default().push(pod);
            }
        }
        let mut boxes: Vec<(&str, &str, &Secret)> = secrets
            .iter()
            .filter_map(|s| {
                Some((
                    s.metadata.namespace.as_deref()?,
                    devbox_owner(&s.metadata)?,
                    &**s,
                ))
            })
            .collect();
        // Two Secrets for one box: the oldest wins, whichever replica decides.
        boxes.sort_by(|a, b| {
            let created = |s: &Secret| s.metadata.creation_timestamp.as_ref().map(|t| t.0);
            (a.0, a.1, created(a.2), &a.2.metadata.name).cmp(&(
                b.0,
                b.1,
                created(b.2),
                &b.2.metadata.name,
            ))
        });
        let mut built = Built {
            routes: Vec::new(),
            problems: Vec::new(),
        };
        for (i, (ns, devbox, secret)) in boxes.iter().enumerate() {
            let name = format!("{devbox}.{ns}");
            if i > 0 && (boxes[i - 1].0, boxes[i - 1].1) == (*ns, *devbox) {
                built.problems.push(format!(
                    "devbox {name}: Secret {} is a second Secret for this box; ignored",
                    secret.metadata.name.as_deref().unwrap_or("?")
                ));
                continue;
            }
            let pod = pods::pick(by_box.get(&(*ns, *devbox)).into_iter().flatten().copied());
            let mut route = self.route(name, secret, pod, &mut built.problems);
            route.wake = self.wake.then(|| WakeTarget::Devbox {
                namespace: (*ns).to_owned(),
                name: (*devbox).to_owned(),
            });
            built.routes.push(route);
        }
        self.authorized.finish();
        self.identities.finish();
        built
    }

    fn route(
        &mut self,
        name: String,
        secret: &Secret,
        pod: Option<&Pod>,
        problems: &mut Vec<String>,
    ) -> Route {
        let (authorized_keys, authorities) = self.authorized_keys(&name, secret, problems);
        let identity = self.identity(&name, secret, problems);
        let (address, state) = match pod.and_then(|p| pods::ip(p)) {
            Some(ip) => (pods::address(ip, self.port), RouteState::Running),
            // Never dialled while stopped; empty so that nothing can dial it.
            None => (String::new(), RouteState::Stopped { message: None }),
        };
        Route {
            name,
            address,
            user: Some(self.user.clone()),
            authorized_keys,
            identity,
            host_key: None,
            state,
            forwarding: Forwarding::default(),
            token_sha256: None,
            sshgate_compat: true,
            wake: None,
            login: crate::routes::LoginMethod::Key,
            trusted_host_cas: Vec::new(),
            user_certs: UserCerts {
                principals: Vec::new(),
                authorities,
            },
        }
    }

    /// The user's key and any more the Secret authorizes, and its
    /// `cert-authority` lines; problems degrade the route to the lines that
    /// parsed.
    fn authorized_keys(
        &mut self,
        name: &str,
        secret: &Secret,
        problems: &mut Vec<String>,
    ) -> (Vec<PublicKey>, Vec<CertAuthority>) {
        let mut authorized_keys = Vec::new();
        let mut authorities: Vec<CertAuthority> = Vec::new();
        for key in [PUBLIC_KEY, AUTHORIZED_KEYS] {
            let Some(bytes) = data(secret, key) else {
                if key == PUBLIC_KEY {
                    problems.push(format!("devbox {name}: Secret has no {PUBLIC_KEY}"));
                }
                continue;
            };
            let parsed = self.authorized.get(Version::of(secret, key), || {
                let parsed = secrets::authorized_keys(bytes);
                for p in &parsed.problems {
                    warn!(route = %name, "{key}: {p}; that key is skipped");
                }
                Arc::new(parsed)
            });
            problems.extend(
                parsed
                    .problems
                    .iter()
                    .map(|p| format!("devbox {name}: {key}: {p}")),
            );
            secrets::add_new_keys(&mut authorized_keys, &parsed.keys);
            for ca in &parsed.authorities {
                if !authorities.contains(ca) {
                    authorities.push(ca.clone());
                }
            }
        }
        (authorized_keys, authorities)
    }

    /// The box's private key, which the gateway logs in with.
    fn identity(
        &mut self,
        name: &str,
        secret: &Secret,
        problems: &mut Vec<String>,
    ) -> Option<Arc<PrivateKey>> {
        let Some(bytes) = data(secret, PRIVATE_KEY) else {
            problems.push(format!("devbox {name}: Secret has no {PRIVATE_KEY}"));
            return None;
        };
        let parsed = self.identities.get(Version::of(secret, PRIVATE_KEY), || {
            let parsed = secrets::identity(bytes, PRIVATE_KEY);
            if let Err(e) = &parsed {
                warn!(route = %name, "{e}; key mode cannot log in to this box");
            }
            parsed
        });
        parsed
            .map_err(|e| problems.push(format!("devbox {name}: {e}")))
            .ok()
    }
}

/// One data entry of a Secret.
fn data<'a>(secret: &'a Secret, key: &str) -> Option<&'a [u8]> {
    secret.data.as_ref()?.get(key).map(|v| v.0.as_slice())
}

/// The live builder: every store synced → the routes of their content.
pub(super) struct SealosBuilder {
    pub shared: Arc<Shared>,
    pub secrets: Vec<Store<Secret>>,
    pub pods: Vec<Store<Pod>>,
    pub mapper: Mapper,
}

impl Builder for SealosBuilder {
    fn build(&mut self) -> Option<Built> {
        if !self.shared.all_synced() {
            return None;
        }
        let secrets: Vec<_> = self.secrets.iter().flat_map(Store::state).collect();
        let pods: Vec<_> = self.pods.iter().flat_map(Store::state).collect();
        Some(self.mapper.routes(&secrets, &pods))
    }
}
