//! An accepted HTTP CONNECT: `200 Connection established`, then raw bytes
//! both ways between the client and the route's sshd, as in jump mode.

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::debug;

use super::response::ESTABLISHED;
use crate::ops::Conn;
use crate::relay::meter::Metered;
use crate::relay::tcpip;

/// Answers 200, forwards what the client sent after the head (`early`),
/// then splices until both directions have ended (half-close passed on).
/// Only tunnel payload is counted on `conn`, not the HTTP exchange.
pub async fn relay<S>(mut client: S, early: Vec<u8>, mut upstream: TcpStream, conn: Arc<Conn>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if let Err(e) = client.write_all(ESTABLISHED).await {
        return debug!(error = %e, "client left before the tunnel opened");
    }
    if !early.is_empty() {
        if let Err(e) = upstream.write_all(&early).await {
            return debug!(error = %e, "box closed before the tunnel opened");
        }
        conn.add_up(early.len());
    }
    tcpip::splice(Metered::new(client, conn), upstream).await;
}
