//! Process-wide Prometheus metrics (SPEC §9), served by the admin endpoint
//! (`server::admin`).
//!
//! Every label value is a `&'static str` chosen by the code, never a client
//! address, key, user or route name, so every label set is bounded by
//! construction.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

mod known;

/// Buckets of `session_duration_seconds`: 1 s to a day.
fn session_histogram() -> Histogram {
    Histogram::new([
        1.0,
        10.0,
        60.0,
        300.0,
        1800.0,
        3600.0,
        4.0 * 3600.0,
        12.0 * 3600.0,
        86400.0,
    ])
}

/// A metric's one label: `name = value`, value chosen by the code.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Reason {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Mode {
    pub mode: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AuthLabels {
    pub mode: &'static str,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Direction {
    pub direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Source {
    pub source: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Protocol {
    pub protocol: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Limit {
    pub limit: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub version: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TunnelLabels {
    pub kind: &'static str,
    pub outcome: &'static str,
}

/// Every metric the gateway exports.
pub struct Metrics {
    registry: Registry,
    /// Connections accepted, by detected protocol (`ssh`, `http`).
    pub connections_accepted: Family<Protocol, Counter>,
    /// Connections open now.
    pub connections_active: Gauge,
    /// Connections refused before they were served, by reason.
    pub connections_rejected: Family<Reason, Counter>,
    /// Authentication decisions by mode (`key`, `agent`, `jump`, `choose`;
    /// `none` when rejected) and outcome (`accepted`, `rejected`).
    pub auth: Family<AuthLabels, Counter>,
    /// Authenticated connections open now, by mode (the SSH modes, and
    /// `connect` / `websocket` for HTTP tunnels).
    pub sessions_active: Family<Mode, Gauge>,
    /// Bytes relayed: `up` is client → box, `down` is box → client.
    pub bytes: Family<Direction, Counter>,
    /// Reaching a box, in seconds: TCP connect (jumps, tunnels), or TCP
    /// connect + SSH handshake + login (relayed sessions).
    pub upstream_connect_seconds: Histogram,
    /// Attempts to reach a box that failed, by reason (`unreachable`,
    /// `timeout`, `login_refused`, `host_key`, `host_key_changed`,
    /// `no_identity`).
    pub upstream_failures: Family<Reason, Counter>,
    /// Routes in the table, by source.
    pub routes: Family<Source, Gauge>,
    /// Route table updates from each source.
    pub route_reloads: Family<Source, Counter>,
    /// Route updates (or single routes) rejected, by source.
    pub route_reload_errors: Family<Source, Counter>,
    /// Limits that refused or closed something, by limit.
    pub limit_hits: Family<Limit, Counter>,
    /// HTTP tunnel requests by kind (`connect`, `websocket`, `other`) and
    /// outcome (`ok`, or why it was refused: `not_found`, `proxy_auth`, …).
    pub tunnels: Family<TunnelLabels, Counter>,
    /// Authenticated connections' lifetimes, by mode, observed when they end.
    pub session_duration: Family<Mode, Histogram, fn() -> Histogram>,
    /// 1 while `/readyz` answers 200 (set at each scrape).
    pub ready: Gauge,
    /// Seconds each route source has served routes it cannot refresh; 0 when fresh.
    pub route_source_stale_seconds: Family<Source, Gauge>,
    /// 1 while draining after SIGTERM.
    pub draining: Gauge,
    /// Waits for a box to start, by outcome: `started` (a wake was asked
    /// of the cluster), `joined` (a wake in progress was waited for),
    /// `cooldown`, `failed`, `ready`, `timed_out`.
    pub wakes: Family<Outcome, Counter>,
    /// Seconds from the start of a wait until the box was logged in to.
    pub wake_seconds: Histogram,
    /// Wakes in progress now (start requested, box not up yet).
    pub wakes_active: Gauge,
    /// Unix time the soonest-ending host certificate ends; 0 without one
    /// that ends (`server.host_certificates`).
    pub host_certificate_expiry: Gauge,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Outcome {
    pub outcome: &'static str,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics.
pub fn get() -> &'static Metrics {
    &METRICS
}

impl Metrics {
    // Over 80 lines: one registration per metric, in the order of the
    // struct; splitting it would only scatter that list.
    fn new() -> Self {
        let mut m = Self {
            connections_accepted: Family::default(),
            connections_active: Gauge::default(),
            connections_rejected: Family::default(),
            auth: Family::default(),
            sessions_active: Family::default(),
            bytes: Family::default(),
            upstream_connect_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 15)),
            upstream_failures: Family::default(),
            routes: Family::default(),
            route_reloads: Family::default(),
            route_reload_errors: Family::default(),
            limit_hits: Family::default(),
            tunnels: Family::default(),
            session_duration: Family::new_with_constructor(session_histogram),
            ready: Gauge::default(),
            route_source_stale_seconds: Family::default(),
            draining: Gauge::default(),
            wakes: Family::default(),
            wake_seconds: Histogram::new(exponential_buckets(0.5, 2.0, 12)),
            wakes_active: Gauge::default(),
            host_certificate_expiry: Gauge::default(),
            registry: Registry::with_prefix("switchboard"),
        };
        let r = &mut m.registry;
        r.register(
            "connections_accepted",
            "Connections accepted, by detected protocol",
            m.connections_accepted.clone(),
        );
        r.register(
            "connections_active",
            "Connections open now",
            m.connections_active.clone(),
        );
        r.register(
            "connections_rejected",
            "Connections refused before being served, by reason",
            m.connections_rejected.clone(),
        );
        r.register(
            "authentications",
            "Authentication decisions by mode and outcome",
            m.auth.clone(),
        );
        r.register(
            "sessions_active",
            "Authenticated SSH connections open now, by mode",
            m.sessions_active.clone(),
        );
        r.register(
            "relayed_bytes",
            "Bytes relayed; up = client to box, down = box to client",
            m.bytes.clone(),
        );
        r.register(
            "upstream_connect_seconds",
            "Time to connect, handshake and log in to a box",
            m.upstream_connect_seconds.clone(),
        );
        r.register(
            "upstream_failures",
            "Failed upstream connections, by reason",
            m.upstream_failures.clone(),
        );
        r.register("routes", "Routes loaded, by source", m.routes.clone());
        r.register(
            "route_reloads",
            "Route table updates, by source",
            m.route_reloads.clone(),
        );
        r.register(
            "route_reload_errors",
            "Rejected route updates or routes, by source",
            m.route_reload_errors.clone(),
        );
        r.register(
            "limit_hits",
            "Connections refused or closed by a limit, by limit",
            m.limit_hits.clone(),
        );
        r.register(
            "tunnels",
            "HTTP tunnel requests by kind and outcome",
            m.tunnels.clone(),
        );
        r.register("ready", "1 while /readyz answers 200", m.ready.clone());
        r.register(
            "route_source_stale_seconds",
            "Seconds a route source has served routes it cannot refresh; 0 when fresh",
            m.route_source_stale_seconds.clone(),
        );
        let build: Family<BuildLabels, Gauge> = Family::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        r.register("build_info", "The running build (always 1)", build);
        r.register(
            "session_duration_seconds",
            "How long authenticated connections lasted, by mode",
            m.session_duration.clone(),
        );
        r.register(
            "draining",
            "1 while draining for shutdown",
            m.draining.clone(),
        );
        r.register(
            "wakes",
            "Waits for a stopped or starting box, by outcome",
            m.wakes.clone(),
        );
        r.register(
            "wake_seconds",
            "Time from the start of a wait until the box was logged in to",
            m.wake_seconds.clone(),
        );
        r.register(
            "wakes_active",
            "Wakes in progress now",
            m.wakes_active.clone(),
        );
        r.register(
            "host_certificate_expiry_timestamp_seconds",
            "Unix time the soonest-ending host certificate ends; 0 without one",
            m.host_certificate_expiry.clone(),
        );
        known::zero(&m);
        m
    }

    /// The Prometheus text exposition of every metric, the process's
    /// (`process_*`, read from /proc now) included.
    pub fn encode(&self) -> String {
        use prometheus_client::encoding::text::{encode_eof, encode_registry};
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode_registry(&mut out, &self.registry);
        let _ = encode_registry(&mut out, &super::process::registry());
        let _ = encode_eof(&mut out);
        out
    }

    /// Records the end of an authenticated connection that lived `age`.
    pub fn session_ended(&self, mode: &'static str, age: Duration) {
        self.session_duration
            .get_or_create(&Mode { mode })
            .observe(age.as_secs_f64());
    }

    /// Counts one refused connection.
    pub fn reject(&self, reason: &'static str) {
        self.connections_rejected
            .get_or_create(&Reason { reason })
            .inc();
    }

    /// Counts one limit that refused or closed something.
    pub fn limit(&self, limit: &'static str) {
        self.limit_hits.get_or_create(&Limit { limit }).inc();
    }

    /// Counts one authentication decision.
    pub fn auth(&self, mode: &'static str, outcome: &'static str) {
        self.auth.get_or_create(&AuthLabels { mode, outcome }).inc();
    }

    /// Counts relayed bytes.
    pub fn relayed(&self, direction: &'static str, bytes: u64) {
        self.bytes
            .get_or_create(&Direction { direction })
            .inc_by(bytes);
    }

    /// Records an upstream login attempt.
    pub fn upstream(&self, took: Duration, failure: Option<&'static str>) {
        self.upstream_connect_seconds.observe(took.as_secs_f64());
        if let Some(reason) = failure {
            self.upstream_failures
                .get_or_create(&Reason { reason })
                .inc();
        }
    }

    /// Counts one wait outcome (see [`Metrics::wakes`]).
    pub fn wake(&self, outcome: &'static str) {
        self.wakes.get_or_create(&Outcome { outcome }).inc();
    }

    /// Counts one HTTP tunnel request.
    pub fn tunnel(&self, kind: &'static str, outcome: &'static str) {
        self.tunnels
            .get_or_create(&TunnelLabels { kind, outcome })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_prefixed_names_and_static_labels() {
        let m = Metrics::new();
        m.reject("max_unauthenticated");
        m.relayed("up", 42);
        let text = m.encode();
        assert!(
            text.contains(
                "switchboard_connections_rejected_total{reason=\"max_unauthenticated\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("switchboard_relayed_bytes_total{direction=\"up\"} 42"),
            "{text}"
        );
        assert!(
            text.contains("switchboard_upstream_connect_seconds_bucket"),
            "{text}"
        );
    }
}
