//! Operating the gateway: metrics, the per-connection record that becomes
//! the audit event, and where a connection comes from. A leaf: it imports nothing else of the crate.

pub mod conn;
pub mod metrics;
pub mod source;

pub use conn::Conn;
