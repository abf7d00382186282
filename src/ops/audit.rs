//! The audit trail (target `audit`): one event per fact an incident
//! responder asks about, each joined to its connection by `session.id`.
//! Field names follow ECS / OpenTelemetry where one fits and are documented
//! in the README ("Audit events"); a rename is a breaking change.
//!
//! | `event.action` | when |
//! |---|---|
//! | `auth_failure` | a key, login or tunnel token is refused (the client is told nothing more) |
//! | `session_start` | the connection authenticates (agent mode: the box accepts) |
//! | `channel_open` | a channel is allowed or refused |
//! | `operator_kill` | an operator ends the connection through the sessions API |
//! | `session_end` | an authenticated connection ends |
//!
//! Never logged: secrets, and text that could hold one (an exec command).

use std::net::SocketAddr;

use tracing::{Level, event};

use super::channel::{ChannelKind, SessionType, clip};
use super::conn::Conn;
use super::source::canonical;

/// What an `auth_failure` event says beyond the connection.
#[derive(Debug, Clone, Copy)]
pub struct AuthFailure<'a> {
    /// The reason class: `unknown_key`, `unknown_target`, `not_authorized`,
    /// `malformed_username`, `agent_login_refused`, `certificate_…` (a
    /// certificate not used, and its bare key refused too), `tunnel_token`.
    pub reason: &'static str,
    /// `SHA256:…` of the offered key, for SSH.
    pub key_fingerprint: Option<&'a str>,
    /// What the client asked for, as typed: the SSH username (with its
    /// target), or a tunnel's route name; clipped.
    pub requested: Option<&'a str>,
}

/// A key, login or token was refused.
pub fn auth_failure(conn: &Conn, failure: &AuthFailure<'_>) {
    event!(
        target: "audit",
        Level::INFO,
        event.action = "auth_failure",
        event.outcome = "failure",
        event.reason = failure.reason,
        session.id = conn.id(),
        client.address = %canonical(conn.client.ip()),
        client.port = conn.client.port(),
        network.protocol = conn.protocol,
        key.fingerprint = failure.key_fingerprint,
        requested = failure.requested.map(clip),
        "authentication failed"
    );
}

/// Marks `conn` authenticated in `mode` ([`Conn::mark_authenticated`]) and,
/// the first time, logs `session_start`. Record its identity first.
pub fn authenticated(conn: &Conn, mode: &'static str) {
    if conn.mark_authenticated(mode) {
        session_start(conn);
    }
}

/// Ends `conn` ([`Conn::finish`]) and, when it had authenticated, logs
/// `session_end`. Call once.
pub fn ended(conn: &Conn) {
    if conn.finish() {
        session_end(conn);
    }
}

/// The connection authenticated.
fn session_start(conn: &Conn) {
    let id = conn.identity();
    event!(
        target: "audit",
        Level::INFO,
        event.action = "session_start",
        event.outcome = "success",
        session.id = conn.id(),
        client.address = %canonical(conn.client.ip()),
        client.port = conn.client.port(),
        network.protocol = conn.protocol,
        auth.mode = conn.mode(),
        route = id.route.as_deref(),
        user.name = id.user.as_deref(),
        key.fingerprint = id.key_fp.as_deref(),
        cert.key_id = id.cert.as_ref().map(|c| clip(&c.key_id)),
        cert.serial = id.cert.as_ref().map(|c| c.serial),
        cert.ca_fingerprint = id.cert.as_ref().map(|c| c.ca_fp.as_str()),
        "session started"
    );
}

/// What a `channel_open` event says.
#[derive(Debug, Clone, Copy)]
pub struct ChannelOpen<'a> {
    pub kind: ChannelKind,
    /// `host:port` of a forward or jump.
    pub destination: Option<&'a str>,
    /// What a session channel runs.
    pub session_type: Option<&'a SessionType>,
    /// `Err(reason)` when refused: `max_sessions`, `max_channels`,
    /// `forwarding_disabled`, `no_box`, `box_refused`, `unreachable`,
    /// `client_refused`.
    pub outcome: Result<(), &'static str>,
}

/// [`channel_open`] for a channel that is not a session (no session type).
pub fn stream_open(
    conn: &Conn,
    kind: ChannelKind,
    destination: Option<&str>,
    outcome: Result<(), &'static str>,
) {
    let open = ChannelOpen {
        kind,
        destination,
        session_type: None,
        outcome,
    };
    channel_open(conn, &open);
}

/// A channel was allowed or refused.
pub fn channel_open(conn: &Conn, open: &ChannelOpen<'_>) {
    let (outcome, reason) = match open.outcome {
        Ok(()) => ("success", None),
        Err(reason) => ("failure", Some(reason)),
    };
    event!(
        target: "audit",
        Level::INFO,
        event.action = "channel_open",
        event.outcome = outcome,
        event.reason = reason,
        session.id = conn.id(),
        client.address = %canonical(conn.client.ip()),
        client.port = conn.client.port(),
        channel.kind = open.kind.label(),
        channel.destination = open.destination.map(clip),
        session.type = open.session_type.map(SessionType::label),
        session.subsystem = open.session_type.and_then(SessionType::subsystem),
        "channel {}",
        if open.outcome.is_ok() { "opened" } else { "refused" }
    );
}

/// An operator ended the connection; `by` is the admin client.
pub fn operator_kill(conn: &Conn, by: SocketAddr) {
    let id = conn.identity();
    event!(
        target: "audit",
        Level::INFO,
        event.action = "operator_kill",
        event.outcome = "success",
        session.id = conn.id(),
        client.address = %canonical(conn.client.ip()),
        client.port = conn.client.port(),
        route = id.route.as_deref(),
        user.name = id.user.as_deref(),
        source.address = %canonical(by.ip()),
        source.port = by.port(),
        "session ended by an operator"
    );
}

/// An authenticated connection ended.
fn session_end(conn: &Conn) {
    let id = conn.identity();
    let (up, down) = conn.bytes();
    event!(
        target: "audit",
        Level::INFO,
        event.action = "session_end",
        event.outcome = "success",
        event.reason = conn.end_reason(),
        event.duration = u64::try_from(conn.age().as_nanos()).unwrap_or(u64::MAX),
        session.id = conn.id(),
        client.address = %canonical(conn.client.ip()),
        client.port = conn.client.port(),
        network.protocol = conn.protocol,
        auth.mode = conn.mode(),
        route = id.route.as_deref(),
        user.name = id.user.as_deref(),
        key.fingerprint = id.key_fp.as_deref(),
        cert.key_id = id.cert.as_ref().map(|c| clip(&c.key_id)),
        cert.serial = id.cert.as_ref().map(|c| c.serial),
        bytes.up = up,
        bytes.down = down,
        process.exit_code = conn.exit_status(),
        "session ended"
    );
}
