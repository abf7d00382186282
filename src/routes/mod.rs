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

pub(crate) use keys::decode_identity;
pub(crate) use model::parse_token_sha256;
pub use model::{
    CertAuthority, Forwarding, LoginMethod, Route, RouteState, ScaleKind, UserCerts, WakeTarget,
};
pub use sources::{NO_USER_CA, RouteSources};
pub use table::{RouteTable, SharedRoutes, shared};
pub use trust::UserTrust;
