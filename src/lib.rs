//! Switchboard: a single-port SSH gateway.
//!
//! The data flows down this list; nothing lower imports anything higher.
//!
//! - [`server`]: accept loop on the one port (limits, shutdown) → hands each
//!   TCP stream to the SSH layer.
//! - [`ssh`]: the russh server handler per client connection (authenticate,
//!   pick the route) and the upstream client that logs in to the box.
//! - [`auth`]: the username grammar and the key + username → principal decision.
//! - [`relay`]: moving channels between the client and the box with bounded buffers.
//! - [`routes`]: the route model and atomically swapped table; sources (the
//!   routes file) only write it.
//! - [`config`], [`hostkey`]: typed configuration, the seed-derived host key.
//! - [`cli`]: the subcommands; only `main.rs` uses it.
#![forbid(unsafe_code)]

pub mod auth;
pub mod cli;
pub mod config;
pub mod hostkey;
pub mod ops;
pub mod relay;
pub mod routes;
pub mod server;
pub mod ssh;
pub mod tunnel;
