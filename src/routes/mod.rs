//! Routes: the model, the atomically swapped table, and the sources that fill it.
//!
//! Sources only write the table; the SSH path only reads it.

pub mod file;
mod model;
mod sources;
mod table;

pub use model::{Forwarding, Route, RouteState};
pub use sources::RouteSources;
pub use table::{RouteTable, SharedRoutes, shared};
