//! A byte stream carried over a WebSocket, used by both ends: the gateway
//! (WebSocket ↔ the route's TCP) and `switchboard tunnel --websocket`
//! (stdin/stdout ↔ WebSocket).
//!
//! Bytes travel as binary messages of at most [`CHUNK`] bytes. WebSocket has
//! no half-close, so an **empty binary message means end of stream in that
//! direction** (what a TCP FIN means to CONNECT); a Close frame ends both.
//! Text frames are refused (close code 1003).

use std::pin::pin;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tracing::debug;

use crate::ops::Conn;

/// Bytes read from the byte-stream side per message, like the CONNECT
/// splice's copy buffer: one full SSH packet per read.
pub const CHUNK: usize = 64 * 1024;

/// Largest message (and frame) accepted from the peer. Our own ends send at
/// most [`CHUNK`]; other clients get room to spare, and one connection can
/// never make the gateway buffer more than this per direction.
pub const MAX_MESSAGE: usize = 256 * 1024;

/// Outgoing bytes tungstenite may hold while the socket is not writable
/// (every send is flushed, so this is one message plus control frames).
const MAX_WRITE_BUFFER: usize = 4 * CHUNK;

/// How long the closing handshake may take before the socket is just dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// The bounded WebSocket settings both ends use.
pub fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(CHUNK)
        .write_buffer_size(CHUNK)
        .max_write_buffer_size(MAX_WRITE_BUFFER)
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE))
}

/// When [`bridge`] is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// Both directions have ended (the gateway: a half-closed box keeps
    /// receiving).
    BothEnded,
    /// The peer's direction has ended (the ProxyCommand: its stdout can only
    /// be closed by exiting, and ssh waits for that EOF).
    PeerEnded,
}

/// Which byte counters to feed: the gateway counts tunnel payload on the
/// client's connection (received messages are `up`, sent ones `down`); the
/// ProxyCommand counts nothing.
#[derive(Clone, Copy)]
pub struct Meter<'a>(pub Option<&'a Conn>);

/// Why a direction stopped early; logged, never shown.
#[derive(Debug, thiserror::Error)]
enum End {
    #[error("byte stream: {0}")]
    Io(#[from] std::io::Error),
    #[error("websocket: {0}")]
    Ws(#[from] tungstenite::Error),
    #[error("peer closed the websocket")]
    Closed,
    #[error("peer sent a text message")]
    Text,
}

/// Carries `from` → WebSocket and WebSocket → `to` until `until`, then
/// closes the WebSocket (bounded by [`CLOSE_TIMEOUT`]).
pub async fn bridge<S, R, W>(ws: WebSocketStream<S>, from: R, to: W, until: Until, meter: Meter<'_>)
where
    S: AsyncRead + AsyncWrite + Unpin,
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (mut sink, mut stream) = ws.split();
    let outcome = {
        let mut send = pin!(send(&mut sink, from, meter));
        let mut recv = pin!(receive(&mut stream, to, meter));
        match until {
            Until::BothEnded => tokio::try_join!(&mut send, &mut recv).map(|_| ()),
            Until::PeerEnded => {
                let mut sent = false;
                loop {
                    tokio::select! {
                        r = &mut send, if !sent => match r {
                            Ok(()) => sent = true,
                            Err(e) => break Err(e),
                        },
                        r = &mut recv => break r,
                    }
                }
            }
        }
    };
    let close = async {
        match &outcome {
            Err(End::Text) => {
                let refusal = CloseFrame {
                    code: CloseCode::Unsupported,
                    reason: "binary messages only".into(),
                };
                sink.send(Message::Close(Some(refusal))).await
            }
            Ok(()) | Err(End::Closed | End::Io(_) | End::Ws(_)) => sink.close().await,
        }
    };
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, close).await;
    match outcome {
        Ok(()) => debug!("websocket tunnel closed"),
        Err(e) => debug!(error = %e, "websocket tunnel ended"),
    }
}

/// `from` → binary messages; EOF becomes the empty message.
async fn send<K, R>(sink: &mut K, mut from: R, meter: Meter<'_>) -> Result<(), End>
where
    K: futures_util::Sink<Message, Error = tungstenite::Error> + Unpin,
    R: AsyncRead + Unpin,
{
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = from.read(&mut buf).await?;
        sink.send(Message::Binary(Bytes::copy_from_slice(&buf[..n])))
            .await?;
        if n == 0 {
            return Ok(());
        }
        if let Meter(Some(conn)) = meter {
            conn.add_down(n);
        }
    }
}

/// Binary messages → `to`; the empty message shuts `to` down.
async fn receive<T, W>(stream: &mut T, mut to: W, meter: Meter<'_>) -> Result<(), End>
where
    T: futures_util::Stream<Item = Result<Message, tungstenite::Error>> + Unpin,
    W: AsyncWrite + Unpin,
{
    while let Some(message) = stream.next().await {
        match message? {
            Message::Binary(data) if data.is_empty() => {
                to.shutdown().await?;
                return Ok(());
            }
            Message::Binary(data) => {
                to.write_all(&data).await?;
                to.flush().await?;
                if let Meter(Some(conn)) = meter {
                    conn.add_up(data.len());
                }
            }
            Message::Text(_) => return Err(End::Text),
            // tungstenite answers pings itself.
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
            Message::Close(_) => return Err(End::Closed),
        }
    }
    Err(End::Closed)
}
