//! Operating the gateway: metrics, the per-connection record, its channels,
//! the audit trail, the live-session registry behind the sessions API, and
//! where a connection comes from. A leaf: it imports nothing else of the crate.

pub mod audit;
pub mod channel;
pub mod conn;
pub mod metrics;
mod process;
pub mod sessions;
pub mod source;

pub use conn::Conn;
pub use sessions::Sessions;
