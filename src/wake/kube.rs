//! Starting boxes through the Kubernetes API (`sources.kubernetes.wake`).
//!
//! - A Sealos `Devbox` (`devbox.sealos.io/v1alpha2`): a JSON merge patch of
//!   `spec.state` to `Running`. While the Devbox saves a commit its
//!   admission answers 422, which is [`StartError::Busy`] (asked again).
//! - A Deployment or StatefulSet (an `SSHRoute`'s `wake`): its `scale`
//!   subresource is read, and merge-patched to one replica only if it is
//!   at zero, so a workload scaled up by someone else is never scaled down.
//!
//! The RBAC this needs, and nothing more: `patch` on `devboxes`
//! (`devbox.sealos.io`), or `get` and `patch` on `deployments/scale` and
//! `statefulsets/scale` (`apps`).

use futures_util::future::BoxFuture;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::{Api, Client};
use serde_json::json;

use super::{StartError, Starter};
use crate::routes::{ScaleKind, WakeTarget};

/// The Devbox resource the Sealos controller reconciles.
const DEVBOX_GROUP: &str = "devbox.sealos.io";
const DEVBOX_VERSION: &str = "v1alpha2";
const DEVBOX_KIND: &str = "Devbox";
const DEVBOX_PLURAL: &str = "devboxes";

/// The field manager named in the gateway's patches.
const FIELD_MANAGER: &str = "switchboard";

/// Starts boxes with the gateway's Kubernetes client.
pub struct KubeStarter {
    client: Client,
}

impl KubeStarter {
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    async fn start_devbox(&self, namespace: &str, name: &str) -> Result<(), StartError> {
        let gvk = GroupVersionKind::gvk(DEVBOX_GROUP, DEVBOX_VERSION, DEVBOX_KIND);
        let resource = ApiResource::from_gvk_with_plural(&gvk, DEVBOX_PLURAL);
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), namespace, &resource);
        let running = Patch::Merge(json!({"spec": {"state": "Running"}}));
        match api.patch(name, &params(), &running).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 422 => Err(StartError::Busy),
            Err(e) => Err(failed(&e)),
        }
    }

    async fn scale_up<K>(&self, namespace: &str, name: &str) -> Result<(), StartError>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
        K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        let api: Api<K> = Api::namespaced(self.client.clone(), namespace);
        let scale = api.get_scale(name).await.map_err(|e| failed(&e))?;
        let replicas = scale.spec.and_then(|s| s.replicas).unwrap_or(0);
        if replicas > 0 {
            // Already scaled up (by someone else, or an earlier wake).
            return Ok(());
        }
        let one = Patch::Merge(json!({"spec": {"replicas": 1}}));
        api.patch_scale(name, &params(), &one)
            .await
            .map(|_| ())
            .map_err(|e| failed(&e))
    }
}

impl Starter for KubeStarter {
    fn start<'a>(&'a self, target: &'a WakeTarget) -> BoxFuture<'a, Result<(), StartError>> {
        Box::pin(async move {
            match target {
                WakeTarget::Devbox { namespace, name } => self.start_devbox(namespace, name).await,
                WakeTarget::Scale {
                    namespace,
                    kind: ScaleKind::Deployment,
                    name,
                } => self.scale_up::<Deployment>(namespace, name).await,
                WakeTarget::Scale {
                    namespace,
                    kind: ScaleKind::StatefulSet,
                    name,
                } => self.scale_up::<StatefulSet>(namespace, name).await,
            }
        })
    }
}

fn params() -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PatchParams::default()
    }
}

/// An API error, for the operator's log (never shown to the user).
fn failed(e: &kube::Error) -> StartError {
    StartError::Failed(match e {
        kube::Error::Api(status) => format!("{} ({})", status.message, status.code),
        other => other.to_string(),
    })
}
