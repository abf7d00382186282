//! Operating the gateway: metrics, the admin HTTP endpoint, the
//! per-connection record that becomes the audit event.

pub mod admin;
pub mod conn;
pub mod metrics;

pub use conn::Conn;
