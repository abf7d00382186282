//! Relaying byte-stream channels (`direct-tcpip` for `-L`/`-D`/`-W`, `-R`,
//! tunnels): both sides become `AsyncRead + AsyncWrite` and are copied with
//! bounded buffers; jump mode, the common long-lived case, is spliced
//! without buffers held while idle.

use std::sync::Arc;

use bytes::BytesMut;
use russh::{Channel, ChannelMsg, server};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::debug;

use crate::ops::Conn;
use crate::relay::flow::{self, Credit, Granter, Inbox, Item};

/// Copy buffer per direction: one full SSH packet (OpenSSH's and russh's
/// maximum), so a read fills one packet and a packet fits one write. Held
/// for the stream's whole life, idle or not: 64 KiB buffers made idle jump
/// sessions cost 128 KiB of heap each for no throughput (see BENCHMARKS.md).
const COPY_BUFFER: usize = 32 * 1024;

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

/// Jump mode: the client's `direct-tcpip` channel and the TCP stream to the
/// box. Unlike [`splice`] this holds no buffer while the stream is idle (an
/// idle `ssh -J` session is the common case): the client's data arrives as
/// russh's own `Bytes` (in the channel's inbox, `relay::flow`) and is written
/// as is, the client granted window for what the box took; a read buffer for
/// the box's side is taken only once the socket is readable and handed to
/// russh. Bytes are counted on `conn` (up: from the client).
pub async fn splice_jump(channel: Channel<server::Msg>, tcp: TcpStream, conn: Arc<Conn>) {
    let (from_client, to_client) = channel.split();
    let to_client = Arc::new(to_client);
    let inbox = Arc::new(Inbox::default());
    tokio::spawn(flow::intake(from_client, inbox.clone()));
    let mut credit = Credit::new(Granter::ClientHalf(to_client.clone()));
    let (from_box, mut to_box) = tcp.into_split();
    let up = async {
        let mut open = credit.open().await;
        while open && let Some(item) = inbox.next().await {
            match item {
                Item::Data(None, data) => {
                    let len = data.len();
                    conn.add_up(len);
                    if to_box.write_all(&data).await.is_err() {
                        break;
                    }
                    open = credit.consumed(len).await;
                }
                Item::Data(Some(_), data) => {
                    open = credit.consumed(data.len()).await;
                }
                Item::Other(ChannelMsg::Eof | ChannelMsg::Close) => break,
                Item::Other(_) => {}
            }
        }
        let _ = to_box.shutdown().await;
    };
    let down = async {
        loop {
            if from_box.readable().await.is_err() {
                break;
            }
            let mut buf = BytesMut::with_capacity(COPY_BUFFER);
            match from_box.try_read_buf(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    conn.add_down(n);
                    if to_client.data_bytes(buf.freeze()).await.is_err() {
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => {
                    debug!(error = %e, "box stream ended with error");
                    break;
                }
            }
        }
        let _ = to_client.eof().await;
    };
    tokio::join!(up, down);
    let _ = to_client.close().await;
    debug!("jump stream closed");
}
