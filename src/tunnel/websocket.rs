//! An accepted WebSocket upgrade (`GET /tunnel/ROUTE`): `101 Switching
//! Protocols`, then binary messages ↔ the route's TCP (see [`super::bridge`]).

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tracing::debug;

use super::bridge::{self, Meter, Until};
use super::response::switching_protocols;
use crate::ops::Conn;

/// Answers 101 for `key` (the request's `Sec-WebSocket-Key`), then carries
/// the stream; `early` holds frames the client sent right after its head.
pub async fn relay<S>(
    mut client: S,
    key: &str,
    early: Vec<u8>,
    upstream: TcpStream,
    conn: Arc<Conn>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let accept = derive_accept_key(key.as_bytes());
    if let Err(e) = client.write_all(&switching_protocols(&accept)).await {
        return debug!(error = %e, "client left before the tunnel opened");
    }
    let ws =
        WebSocketStream::from_partially_read(client, early, Role::Server, Some(bridge::config()))
            .await;
    let (from_box, to_box) = upstream.into_split();
    bridge::bridge(ws, from_box, to_box, Until::BothEnded, Meter(Some(&conn))).await;
}
