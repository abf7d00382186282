//! Writing each `SSHRoute`'s `Ready` condition back through the status
//! subresource (a JSON merge patch of `status`), only when it differs from
//! what the object already says. Every replica computes the same verdict
//! from the same objects, so replicas converge instead of fighting.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client};
use serde_json::{Value, json};
use tokio::sync::watch;
use tracing::{debug, warn};

use super::crd::{Condition, SSHRoute, SSHRouteStatus};
use super::crd_map::Verdict;

/// After writing (or failing to write) a condition, how long to wait for the
/// watch to show it before writing the same condition again.
const ECHO_WAIT: Duration = Duration::from_secs(30);

/// The condition one route should carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Desired {
    pub namespace: String,
    pub name: String,
    pub generation: Option<i64>,
    pub verdict: Verdict,
}

/// True when `current` does not already say what `desired` says.
pub(super) fn needs_write(current: Option<&SSHRouteStatus>, desired: &Desired) -> bool {
    let Some(status) = current else {
        return true;
    };
    let Some(c) = ready_condition(status) else {
        return true;
    };
    c.status != status_word(desired.verdict.ready)
        || c.reason != desired.verdict.reason
        || c.message != desired.verdict.message
        || status.observed_generation != desired.generation
}

/// The merge patch that sets `desired`; `lastTransitionTime` moves only when
/// the True/False status changes.
pub(super) fn patch_body(current: Option<&SSHRouteStatus>, desired: &Desired, now: &str) -> Value {
    let status = status_word(desired.verdict.ready);
    let since = current
        .and_then(ready_condition)
        .filter(|c| c.status == status)
        .and_then(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| now.to_owned());
    let condition = Condition {
        type_: "Ready".into(),
        status: status.into(),
        reason: desired.verdict.reason.into(),
        message: desired.verdict.message.clone(),
        last_transition_time: Some(since),
        observed_generation: desired.generation,
    };
    json!({
        "status": {
            "observedGeneration": desired.generation,
            "conditions": [condition],
        }
    })
}

fn ready_condition(status: &SSHRouteStatus) -> Option<&Condition> {
    status.conditions.iter().find(|c| c.type_ == "Ready")
}

fn status_word(ready: bool) -> &'static str {
    if ready { "True" } else { "False" }
}

/// Writes conditions as the builder sends them, until the channel closes.
pub(super) async fn run_writer(
    client: Client,
    stores: Vec<Store<SSHRoute>>,
    mut desired: watch::Receiver<Arc<Vec<Desired>>>,
) {
    let mut written: HashMap<(String, String), (Desired, Instant)> = HashMap::new();
    while desired.changed().await.is_ok() {
        let batch = desired.borrow_and_update().clone();
        for d in batch.iter() {
            let key = (d.namespace.clone(), d.name.clone());
            let object_ref = ObjectRef::<SSHRoute>::new(&d.name).within(&d.namespace);
            let current = stores.iter().find_map(|s| s.get(&object_ref));
            let Some(current) = current else {
                continue;
            };
            if !needs_write(current.status.as_ref(), d) {
                written.remove(&key);
                continue;
            }
            if written
                .get(&key)
                .is_some_and(|(w, at)| w == d && at.elapsed() < ECHO_WAIT)
            {
                continue;
            }
            let now = Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
            let body = patch_body(current.status.as_ref(), d, &now);
            let api: Api<SSHRoute> = Api::namespaced(client.clone(), &d.namespace);
            match api
                .patch_status(&d.name, &PatchParams::default(), &Patch::Merge(&body))
                .await
            {
                Ok(_) => {
                    debug!(route = %format!("{}.{}", d.name, d.namespace), reason = d.verdict.reason, "status written")
                }
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => warn!(
                    route = %format!("{}.{}", d.name, d.namespace),
                    error = %e,
                    "cannot write SSHRoute status (RBAC needs patch on sshroutes/status)"
                ),
            }
            written.insert(key, (d.clone(), Instant::now()));
        }
        let live: std::collections::HashSet<_> = batch
            .iter()
            .map(|d| (d.namespace.clone(), d.name.clone()))
            .collect();
        written.retain(|k, _| live.contains(k));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desired(ready: bool, reason: &'static str) -> Desired {
        Desired {
            namespace: "ns".into(),
            name: "r".into(),
            generation: Some(2),
            verdict: Verdict {
                ready,
                reason,
                message: "m".into(),
            },
        }
    }

    #[test]
    fn writes_only_on_change_and_keeps_transition_time() {
        let d = desired(false, "NoReadyPod");
        assert!(needs_write(None, &d));
        let body = patch_body(None, &d, "2025-01-01T00:00:00Z");
        let status: SSHRouteStatus =
            serde_json::from_value(body["status"].clone()).expect("status shape");
        assert!(!needs_write(Some(&status), &d));
        assert_eq!(status.conditions[0].status, "False");
        // Same status, other reason: rewritten, transition time kept.
        let d2 = desired(false, "SecretMissing");
        assert!(needs_write(Some(&status), &d2));
        let body = patch_body(Some(&status), &d2, "2025-02-02T00:00:00Z");
        assert_eq!(
            body["status"]["conditions"][0]["lastTransitionTime"],
            "2025-01-01T00:00:00Z"
        );
        // Status flips: the time moves.
        let body = patch_body(
            Some(&status),
            &desired(true, "Resolved"),
            "2025-03-03T00:00:00Z",
        );
        assert_eq!(body["status"]["conditions"][0]["status"], "True");
        assert_eq!(
            body["status"]["conditions"][0]["lastTransitionTime"],
            "2025-03-03T00:00:00Z"
        );
        // A new generation is rewritten even with the same verdict.
        let mut d3 = d.clone();
        d3.generation = Some(3);
        assert!(needs_write(Some(&status), &d3));
    }
}
