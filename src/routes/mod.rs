//! Routes: the model, the atomically swapped table, and the sources that fill it.
//!
//! Sources (the routes file; Kubernetes with the `kubernetes` feature) only
//! write the table; the SSH path only reads it.

pub mod file;
pub(crate) mod keys;
#[cfg(feature = "kubernetes")]
pub mod kube;
mod model;
mod sources;
mod table;
pub mod trust;

pub(crate) use model::parse_token_sha256;
pub use model::{CertAuthority, Forwarding, Route, RouteState, ScaleKind, UserCerts, WakeTarget};
pub use sources::RouteSources;
pub use table::{RouteTable, SharedRoutes, shared};
pub use trust::UserTrust;
