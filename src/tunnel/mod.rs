//! HTTP CONNECT and WebSocket tunnels on the SSH port (SPEC §11).
//!
//! The accept path (`server`) has already read any PROXY header and seen that
//! the client speaks HTTP; `stream` replays every byte read so far.

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};

use crate::ops::Conn;
use crate::ssh::Context;

/// Serves one HTTP connection: a CONNECT or a WebSocket upgrade to a route,
/// spliced to the route's address; anything else is answered and closed.
pub async fn serve<S>(stream: S, conn: Arc<Conn>, ctx: Arc<Context>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let _ = (stream, conn, ctx);
}
