//! The admin HTTP endpoint (`[admin] listen`, SPEC §9): `/healthz` (the
//! process is up), `/readyz` (every route source has synced and the gateway
//! is not draining; a load balancer stops sending new clients otherwise) and
//! `/metrics` (Prometheus text).

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info_span, warn};

use crate::ops::metrics;
use crate::routes::RouteSources;

/// How long one admin request may take to arrive (a slow scraper must not
/// hold a task forever).
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// What `/readyz` reports.
pub struct Health {
    sources: Arc<RouteSources>,
    draining: AtomicBool,
}

impl Health {
    pub fn new(sources: Arc<RouteSources>) -> Arc<Self> {
        Arc::new(Self {
            sources,
            draining: AtomicBool::new(false),
        })
    }

    /// From now on `/readyz` answers 503.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Release);
        metrics::get().draining.set(1);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Why the gateway is not ready, or `None` when it is.
    pub fn not_ready(&self) -> Option<&'static str> {
        if self.is_draining() {
            Some("draining")
        } else if !self.sources.is_ready() {
            Some("route sources not synced yet")
        } else {
            None
        }
    }
}

/// Serves the admin endpoint on `listener` until `stop` is cancelled.
pub async fn serve(listener: TcpListener, health: Arc<Health>, stop: CancellationToken) {
    loop {
        let (stream, peer) = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    warn!(error = %e, "admin accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let health = health.clone();
        let service = service_fn(move |req| {
            let health = health.clone();
            async move { Ok::<_, Infallible>(answer(&req, &health)) }
        });
        let conn = http1::Builder::new()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT)
            .serve_connection(TokioIo::new(stream), service);
        tokio::spawn(
            async move {
                if let Err(e) = conn.await {
                    debug!(error = %e, "admin connection ended");
                }
            }
            .instrument(info_span!("admin", client = %peer)),
        );
    }
}

fn answer(req: &Request<Incoming>, health: &Health) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "GET only\n".into());
    }
    match req.uri().path() {
        "/healthz" => text(StatusCode::OK, "ok\n".into()),
        "/readyz" => match health.not_ready() {
            None => {
                // Stale routes still serve: say so, but stay ready.
                let mut body = String::from("ready\n");
                for line in health.sources.stale() {
                    body.push_str(&format!("stale: {line}\n"));
                }
                text(StatusCode::OK, body)
            }
            Some(why) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready: {why}\n"),
            ),
        },
        "/metrics" => {
            let mut response = text(StatusCode::OK, metrics::get().encode());
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            response
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "not found; try /healthz, /readyz, /metrics\n".into(),
        ),
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
