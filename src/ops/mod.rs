//! Operating the gateway: metrics, and the per-connection record that
//! becomes the audit event. A leaf: it imports nothing else of the crate.

pub mod conn;
pub mod metrics;

pub use conn::Conn;
