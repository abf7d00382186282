//! Switchboard: a single-port SSH gateway.
//!
//! The data flows down this list; a module imports only modules below it
//! (no file or module imports one that imports it back):
//!
//! - [`cli`]: the subcommands; only `main.rs` uses it.
//! - [`server`]: the one port — accept loop, limits, PROXY header, protocol
//!   detection, shutdown, the admin endpoint — handing each connection to a
//!   front.
//! - Fronts: [`ssh`] (the russh server handler per client connection) and
//!   [`tunnel`] (HTTP CONNECT and WebSocket). Both are thin: they ask
//!   `access`, reach the box through `upstream`, and move bytes with `relay`.
//! - [`access`]: the username grammar and the one admission decision — who
//!   may go where, in which mode (key, agent, jump, tunnel token).
//! - [`upstream`]: the box leg, the only code that dials a route, logs in to
//!   a box and checks its host key.
//! - [`relay`]: session channels and byte streams between client and box,
//!   with bounded buffers.
//! - [`routes`]: the route model and atomically swapped table; sources (the
//!   routes file, Kubernetes) only write it.
//! - [`wake`]: waiting for a stopped box (starting it through the cluster)
//!   or a starting one, for fronts that authorized a key for it.
//! - [`config`], [`hostkey`]: typed configuration, the seed-derived host key.
//! - Leaves anyone may use: [`notice`] (every line users are told) and
//!   [`ops`] (metrics, the per-connection record behind the audit event).
#![forbid(unsafe_code)]

pub mod access;
pub mod cli;
pub mod config;
pub mod hostkey;
pub mod notice;
pub mod ops;
pub mod relay;
pub mod routes;
pub mod server;
pub mod ssh;
pub mod tunnel;
pub mod upstream;
pub mod wake;
