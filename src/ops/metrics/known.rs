//! The label values each labelled family can carry, created at 0 when the
//! metrics are built: every series exists from start-up, so `increase()`
//! and `rate()` alerts see the first event, and dashboards show 0, not "no data".

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

use super::{AuthLabels, Direction, Limit, Metrics, Mode, Outcome, Protocol, Reason, Source};

pub(super) const REJECT_REASONS: &[&str] = &[
    "max_connections",
    "early_drop",
    "max_unauthenticated",
    "per_source_max_unauthenticated",
    "per_source_penalty",
    "proxy_untrusted",
    "proxy_malformed",
    "proxy_truncated",
];

pub(super) const UPSTREAM_FAILURES: &[&str] = &[
    "unreachable",
    "timeout",
    "login_refused",
    "host_key",
    "host_key_changed",
    "no_identity",
    "other",
];

pub(super) const LIMITS: &[&str] = &[
    "max_connections",
    "early_drop",
    "max_unauthenticated",
    "per_source_max_unauthenticated",
    "login_grace",
    "per_source_penalty",
    "idle_timeout",
];

/// Modes a connection authenticates in (SSH logins, then HTTP tunnels).
const MODES: &[&str] = &["key", "agent", "jump", "choose", "connect", "websocket"];
const AUTH_MODES: &[&str] = &["key", "agent", "jump", "choose", "none"];
const OUTCOMES: &[&str] = &["accepted", "rejected"];
const SOURCES: &[&str] = &["file", "kubernetes"];
/// What a wait for a box ended in (see `Metrics::wakes`).
const WAKE_OUTCOMES: &[&str] = &[
    "started",
    "joined",
    "cooldown",
    "failed",
    "ready",
    "timed_out",
];

/// Creates every known series at 0.
pub(super) fn zero(m: &Metrics) {
    for reason in REJECT_REASONS {
        counter(&m.connections_rejected, Reason { reason });
    }
    for reason in UPSTREAM_FAILURES {
        counter(&m.upstream_failures, Reason { reason });
    }
    for limit in LIMITS {
        counter(&m.limit_hits, Limit { limit });
    }
    for protocol in ["ssh", "http"] {
        counter(&m.connections_accepted, Protocol { protocol });
    }
    for direction in ["up", "down"] {
        counter(&m.bytes, Direction { direction });
    }
    for mode in AUTH_MODES {
        for outcome in OUTCOMES {
            counter(&m.auth, AuthLabels { mode, outcome });
        }
    }
    for mode in MODES {
        gauge(&m.sessions_active, Mode { mode });
        let _ = m.session_duration.get_or_create(&Mode { mode });
    }
    for source in SOURCES {
        counter(&m.route_reloads, Source { source });
        counter(&m.route_reload_errors, Source { source });
    }
    for outcome in WAKE_OUTCOMES {
        counter(&m.wakes, Outcome { outcome });
    }
}

fn counter<L>(family: &Family<L, Counter>, labels: L)
where
    L: Clone + std::hash::Hash + Eq,
{
    let _ = family.get_or_create(&labels);
}

fn gauge<L>(family: &Family<L, Gauge>, labels: L)
where
    L: Clone + std::hash::Hash + Eq,
{
    let _ = family.get_or_create(&labels);
}
