//! The fake API's side of waking boxes: merge PATCHes of a Sealos `Devbox`
//! (answered 422 while it "commits"), and the `scale` subresource of
//! Deployments and StatefulSets (GET and PATCH). Every PATCH is recorded
//! with its content type and body.

use hyper::{Method, Request, StatusCode};
use serde_json::{Value, json};

use super::State;
use super::http::{Body, full, status};

pub const DEVBOX_API_VERSION: &str = "devbox.sealos.io/v1alpha2";

/// `(resource, namespace, name, subresource)` of a path this file serves.
fn parse(path: &str) -> Option<(&str, &str, &str, Option<&str>)> {
    let rest = path
        .strip_prefix("/apis/devbox.sealos.io/v1alpha2/")
        .or_else(|| path.strip_prefix("/apis/apps/v1/"))?;
    match rest.split('/').collect::<Vec<_>>()[..] {
        ["namespaces", ns, resource, name] => Some((resource, ns, name, None)),
        ["namespaces", ns, resource, name, sub] => Some((resource, ns, name, Some(sub))),
        _ => None,
    }
}

/// The answer to a wake request, or `None` for any other request.
pub(super) fn respond(
    req: &Request<()>,
    bytes: &[u8],
    s: &mut State,
) -> Option<hyper::Response<Body>> {
    let (resource, ns, name, sub) = parse(req.uri().path())?;
    let key = (resource.to_owned(), ns.to_owned(), name.to_owned());
    if req.method() == Method::PATCH {
        let content_type = req
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
        s.patches
            .push((req.uri().path().to_owned(), content_type, body));
    }
    let patch: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
    let Some(mut obj) = s.objects.get(&key).cloned() else {
        return Some(full(
            StatusCode::NOT_FOUND,
            status(404, "NotFound", "not found"),
        ));
    };
    let answer = match (req.method().clone(), resource, sub) {
        (Method::PATCH, "devboxes", None) if s.committing > 0 => {
            s.committing -= 1;
            let message = "devbox is committing, please wait";
            return Some(full(
                StatusCode::UNPROCESSABLE_ENTITY,
                status(422, "Invalid", message),
            ));
        }
        (Method::PATCH, "devboxes", None) => {
            obj["spec"]["state"] = patch["spec"]["state"].clone();
            obj.clone()
        }
        (Method::GET, "deployments" | "statefulsets", Some("scale")) => scale(&obj),
        (Method::PATCH, "deployments" | "statefulsets", Some("scale")) => {
            obj["spec"]["replicas"] = patch["spec"]["replicas"].clone();
            scale(&obj)
        }
        _ => {
            return Some(full(
                StatusCode::METHOD_NOT_ALLOWED,
                status(405, "MethodNotAllowed", "not supported by the fake"),
            ));
        }
    };
    s.rv += 1;
    obj["metadata"]["resourceVersion"] = json!(s.rv.to_string());
    s.objects.insert(key, obj);
    Some(full(StatusCode::OK, answer))
}

/// The `autoscaling/v1` Scale of a workload.
fn scale(obj: &Value) -> Value {
    json!({
        "apiVersion": "autoscaling/v1", "kind": "Scale",
        "metadata": {"name": obj["metadata"]["name"], "namespace": obj["metadata"]["namespace"]},
        "spec": {"replicas": obj["spec"]["replicas"]},
        "status": {"replicas": obj["spec"]["replicas"]},
    })
}
