//! The admin HTTP endpoint (`[admin] listen`, SPEC §9): `/healthz` (the
//! process is up), `/readyz` (every route source has synced and the gateway
//! is not draining; a load balancer stops sending new clients otherwise),
//! `/metrics` (Prometheus text), and the sessions API — `GET /sessions`,
//! `GET /sessions/{id}`, `POST /sessions/{id}/kill` (or `DELETE
//! /sessions/{id}`) — guarded by [`auth`]. Routes and answers: [`api`].

mod api;
pub mod auth;
#[cfg(test)]
mod tests;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info_span, warn};

use crate::ops::{Sessions, metrics};
use crate::routes::RouteSources;
use auth::AdminAuth;

/// How long one admin request may take to arrive (a slow scraper must not
/// hold a task forever).
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// What the admin endpoint serves.
pub struct Admin {
    pub health: Arc<Health>,
    pub sessions: Arc<Sessions>,
    pub auth: AdminAuth,
}

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

    /// Sets the gauges only a scrape needs: `ready` and each route source's
    /// staleness.
    pub fn observe(&self) {
        let m = metrics::get();
        m.ready.set(i64::from(self.not_ready().is_none()));
        for (source, seconds) in self.sources.staleness() {
            let seconds = i64::try_from(seconds).unwrap_or(i64::MAX);
            m.route_source_stale_seconds
                .get_or_create(&metrics::Source { source })
                .set(seconds);
        }
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
pub async fn serve(listener: TcpListener, admin: Arc<Admin>, stop: CancellationToken) {
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
        let admin = admin.clone();
        let service = service_fn(move |req| {
            let admin = admin.clone();
            async move { Ok::<_, Infallible>(api::answer(&req, peer, &admin)) }
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
