//! Moving channels between the client and the box with bounded buffers and
//! end-to-end backpressure.

pub mod flow;
pub mod meter;
pub mod session;
pub mod tcpip;
pub mod tell;
