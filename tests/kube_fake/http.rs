//! The fake API's HTTP side: routing a request to a list, a watch stream,
//! or a status PATCH, and the JSON shapes the API answers with.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use super::{State, api_version, kind, selected, watch_stream};

pub(super) type Body = BoxBody<Bytes, Infallible>;

pub(super) fn full(status: StatusCode, body: Value) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())).boxed());
    *r.status_mut() = status;
    r.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

pub(super) fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

/// What an API path names.
struct ApiPath {
    resource: String,
    ns: Option<String>,
    name: Option<String>,
    sub: Option<String>,
}

/// Parses `/api/v1/[namespaces/NS/]RESOURCE[/NAME[/SUB]]` (or the SSHRoute group's).
fn parse_path(path: &str) -> Option<ApiPath> {
    let rest = path
        .strip_prefix("/apis/switchboard.dev/v1alpha1/")
        .or_else(|| path.strip_prefix("/api/v1/"))?;
    let parts: Vec<&str> = rest.split('/').collect();
    let (resource, ns, name, sub) = match parts[..] {
        [resource] => (resource, None, None, None),
        ["namespaces", ns, resource] => (resource, Some(ns), None, None),
        ["namespaces", ns, resource, name] => (resource, Some(ns), Some(name), None),
        ["namespaces", ns, resource, name, sub] => (resource, Some(ns), Some(name), Some(sub)),
        _ => return None,
    };
    let own = |s: Option<&str>| s.map(str::to_owned);
    Some(ApiPath {
        resource: resource.to_owned(),
        ns: own(ns),
        name: own(name),
        sub: own(sub),
    })
}

fn query(req: &Request<()>) -> BTreeMap<String, String> {
    req.uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| {
            (
                k.to_owned(),
                v.replace("%3D", "=")
                    .replace("%2C", ",")
                    .replace("%2F", "/"),
            )
        })
        .collect()
}

pub(super) async fn handle(
    req: Request<Incoming>,
    state: Arc<Mutex<State>>,
    changed: watch::Sender<u64>,
) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let bytes = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    respond(Request::from_parts(parts, ()), &bytes, &state, &changed)
}

/// Everything after the request body is in: no await while the state is locked.
fn respond(
    req: Request<()>,
    bytes: &[u8],
    state: &Arc<Mutex<State>>,
    changed: &watch::Sender<u64>,
) -> Response<Body> {
    let line = format!("{} {}", req.method(), req.uri());
    let q = query(&req);
    let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
    s.requests.push(line);
    if s.down {
        return full(
            StatusCode::SERVICE_UNAVAILABLE,
            status(503, "ServiceUnavailable", "the fake API is down"),
        );
    }
    if let Some(answer) = super::wake::respond(&req, bytes, &mut s) {
        drop(s);
        changed.send_modify(|n| *n += 1);
        return answer;
    }
    let Some(ApiPath {
        resource,
        ns,
        name,
        sub,
    }) = parse_path(req.uri().path())
    else {
        return full(
            StatusCode::NOT_FOUND,
            status(404, "NotFound", "no such path"),
        );
    };
    let selector = q.get("labelSelector").cloned();
    match (req.method().clone(), name, sub) {
        (Method::GET, None, None) if q.get("watch").is_some_and(|w| w == "true" || w == "1") => {
            let from: u64 = q
                .get("resourceVersion")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if from < s.compacted {
                let line = json!({"type": "ERROR", "object": status(410, "Expired", "too old resource version")});
                let body = Full::new(Bytes::from(format!("{line}\n"))).boxed();
                return Response::new(body);
            }
            let timeout = q
                .get("timeoutSeconds")
                .and_then(|t| t.parse().ok())
                .unwrap_or(290);
            let bookmarks = q.get("allowWatchBookmarks").is_some_and(|b| b == "true");
            let (tx, rx) = mpsc::channel::<Bytes>(64);
            let spec = watch_stream::Spec {
                resource,
                ns,
                selector,
                from,
                cut: s.cut,
                timeout: Duration::from_secs(timeout),
                bookmarks,
            };
            drop(s);
            tokio::spawn(watch_stream::run(
                spec,
                state.clone(),
                changed.subscribe(),
                tx,
            ));
            let body = stream::unfold(rx, |mut rx| async move {
                let chunk = rx.recv().await?;
                Some((Ok::<_, Infallible>(Frame::data(chunk)), rx))
            });
            Response::new(BodyExt::boxed(StreamBody::new(body)))
        }
        (Method::GET, None, None) => {
            let items: Vec<Value> = s
                .objects
                .iter()
                .filter(|((r, _, _), o)| {
                    *r == resource && selected(o, ns.as_deref(), selector.as_deref())
                })
                .map(|(_, o)| o.clone())
                .collect();
            let list_kind = format!("{}List", kind(&resource));
            full(
                StatusCode::OK,
                json!({
                    "apiVersion": api_version(&resource),
                    "kind": list_kind, "metadata": {"resourceVersion": s.rv.to_string()}, "items": items,
                }),
            )
        }
        (Method::PATCH, Some(name), Some(sub)) if sub == "status" => {
            let content_type = req
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let path = req.uri().path().to_owned();
            let body: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
            s.patches.push((path, content_type, body.clone()));
            let key = (resource.clone(), ns.clone().unwrap_or_default(), name);
            let Some(mut obj) = s.objects.get(&key).cloned() else {
                return full(StatusCode::NOT_FOUND, status(404, "NotFound", "not found"));
            };
            obj["status"] = body["status"].clone();
            s.rv += 1;
            let rv = s.rv;
            obj["metadata"]["resourceVersion"] = json!(rv.to_string());
            s.objects.insert(key, obj.clone());
            s.log.push((rv, resource, "MODIFIED", obj.clone()));
            drop(s);
            changed.send_modify(|n| *n += 1);
            full(StatusCode::OK, obj)
        }
        _ => full(
            StatusCode::METHOD_NOT_ALLOWED,
            status(405, "MethodNotAllowed", "not supported by the fake"),
        ),
    }
}
