//! The admin endpoint's routes: which path and method is which endpoint
//! ([`endpoint`]), and the answers, sessions API included (auth in
//! [`super::auth`], the list and its JSON shape in [`crate::ops::sessions`]).

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode};
use serde::Serialize;
use tracing::info;

use super::Admin;
use super::auth::{Denied, Need};
use crate::ops::metrics;
use crate::ops::sessions::{MAX_LISTED, SessionInfo};

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint<'a> {
    Healthz,
    Readyz,
    Metrics,
    /// `GET /sessions`.
    List,
    /// `GET /sessions/{id}`.
    Show(&'a str),
    /// `POST /sessions/{id}/kill` or `DELETE /sessions/{id}`.
    Kill(&'a str),
    /// A known path with another method; the methods it takes.
    NotAllowed(&'static str),
    NotFound,
}

/// The endpoint `method` and `path` name.
pub fn endpoint<'a>(method: &Method, path: &'a str) -> Endpoint<'a> {
    let read = method == Method::GET || method == Method::HEAD;
    let path = path
        .strip_suffix('/')
        .filter(|p| !p.is_empty())
        .unwrap_or(path);
    let simple = match path {
        "/healthz" => Some(Endpoint::Healthz),
        "/readyz" => Some(Endpoint::Readyz),
        "/metrics" => Some(Endpoint::Metrics),
        "/sessions" => Some(Endpoint::List),
        _ => None,
    };
    if let Some(simple) = simple {
        return if read {
            simple
        } else {
            Endpoint::NotAllowed("GET, HEAD")
        };
    }
    let Some(rest) = path.strip_prefix("/sessions/") else {
        return Endpoint::NotFound;
    };
    match rest.split_once('/') {
        None if is_session_id(rest) && read => Endpoint::Show(rest),
        None if is_session_id(rest) && method == Method::DELETE => Endpoint::Kill(rest),
        None if is_session_id(rest) => Endpoint::NotAllowed("GET, HEAD, DELETE"),
        Some((id, "kill")) if is_session_id(id) && method == Method::POST => Endpoint::Kill(id),
        Some((id, "kill")) if is_session_id(id) => Endpoint::NotAllowed("POST"),
        None | Some(_) => Endpoint::NotFound,
    }
}

/// 16 hex digits, as `ops::Conn` makes them.
fn is_session_id(text: &str) -> bool {
    text.len() == 16 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The answer to `req` from the admin client `peer`.
pub fn answer<B>(req: &Request<B>, peer: SocketAddr, admin: &Admin) -> Response<Full<Bytes>> {
    let endpoint = endpoint(req.method(), req.uri().path());
    let need = match endpoint {
        Endpoint::List | Endpoint::Show(_) => Some(Need::Read),
        Endpoint::Kill(_) => Some(Need::Write),
        Endpoint::Healthz
        | Endpoint::Readyz
        | Endpoint::Metrics
        | Endpoint::NotAllowed(_)
        | Endpoint::NotFound => None,
    };
    if let Some(need) = need {
        let authorization = req.headers().get(AUTHORIZATION).map(HeaderValue::as_bytes);
        if let Err(denied) = admin.auth.check(need, peer.ip(), authorization) {
            info!(client = %peer, status = denied.status.as_u16(), "sessions API request refused");
            return refused(denied);
        }
    }
    match endpoint {
        Endpoint::Healthz => text(StatusCode::OK, "ok\n".into()),
        Endpoint::Readyz => readyz(admin),
        Endpoint::Metrics => metrics_text(&admin.health),
        Endpoint::List => json(StatusCode::OK, &admin.sessions.list(MAX_LISTED)),
        Endpoint::Show(id) => match admin.sessions.get(id) {
            Some(session) => json(StatusCode::OK, &session),
            None => no_session(id),
        },
        Endpoint::Kill(id) => match admin.sessions.kill(id, peer) {
            Some(killed) => json(StatusCode::OK, &Killed { killed }),
            None => no_session(id),
        },
        Endpoint::NotAllowed(allowed) => {
            let mut response = text(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("method not allowed; use {allowed}\n"),
            );
            response
                .headers_mut()
                .insert("allow", HeaderValue::from_static(allowed));
            response
        }
        Endpoint::NotFound => text(
            StatusCode::NOT_FOUND,
            "not found; try /healthz, /readyz, /metrics, /sessions\n".into(),
        ),
    }
}

/// `POST /sessions/{id}/kill`: the session as it was when it was ended.
#[derive(Serialize)]
struct Killed {
    killed: SessionInfo,
}

fn readyz(admin: &Admin) -> Response<Full<Bytes>> {
    match admin.health.not_ready() {
        None => {
            // Stale routes still serve: say so, but stay ready.
            let mut body = String::from("ready\n");
            for line in admin.health.sources.stale() {
                body.push_str(&format!("stale: {line}\n"));
            }
            text(StatusCode::OK, body)
        }
        Some(why) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        ),
    }
}

fn metrics_text(health: &super::Health) -> Response<Full<Bytes>> {
    health.observe();
    let mut response = text(StatusCode::OK, metrics::get().encode());
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}

fn no_session(id: &str) -> Response<Full<Bytes>> {
    // `id` is 16 hex digits (checked by `endpoint`): safe to echo.
    text(
        StatusCode::NOT_FOUND,
        format!("no live session {id} on this gateway\n"),
    )
}

fn refused(denied: Denied) -> Response<Full<Bytes>> {
    let mut response = text(denied.status, format!("{}\n", denied.reason));
    if denied.status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"switchboard\""),
        );
    }
    response
}

fn json(status: StatusCode, value: &impl Serialize) -> Response<Full<Bytes>> {
    let body = match serde_json::to_vec(value) {
        Ok(mut body) => {
            body.push(b'\n');
            body
        }
        Err(e) => return text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

pub(super) fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
