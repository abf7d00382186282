//! Relaying byte-stream channels (`direct-tcpip` for `-L`/`-D`/`-W`): both
//! sides become `AsyncRead + AsyncWrite` and are copied with bounded buffers.

use tokio::io::{AsyncRead, AsyncWrite};
use tracing::debug;

/// Copy buffer per direction: one full SSH packet, so a read fills one packet.
const COPY_BUFFER: usize = 64 * 1024;

/// Copies both ways until both directions have ended; half-close (EOF) is
/// passed on as soon as one side finishes.
pub async fn splice<A, B>(mut a: A, mut b: B)
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    match tokio::io::copy_bidirectional_with_sizes(&mut a, &mut b, COPY_BUFFER, COPY_BUFFER).await {
        Ok((up, down)) => debug!(bytes_up = up, bytes_down = down, "stream closed"),
        Err(e) => debug!(error = %e, "stream ended with error"),
    }
}
