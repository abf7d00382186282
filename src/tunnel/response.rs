//! The gateway's own HTTP answers: the success lines that open a tunnel, and
//! refusals — status, headers, and a one-line body from [`crate::notice`]
//! (SPEC §10, §11) — followed by a graceful close.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::head::{Kind, MAX_HEAD, Rejection, WEBSOCKET_VERSION};
use crate::access::tunnel::Denied;
use crate::notice::Notice;

/// The CONNECT success line; the tunnel's bytes follow it directly.
pub const ESTABLISHED: &[u8] = b"HTTP/1.1 200 Connection established\r\n\r\n";

/// Realm named in `Proxy-Authenticate` / `WWW-Authenticate`.
const REALM: &str = "switchboard";

/// After a refusal, how long unread request bytes are drained before the
/// socket closes: closing with unread data sends a reset, which can destroy
/// the answer before the client reads it. Short, since nobody is served.
const LINGER: Duration = Duration::from_secs(1);

/// At most this much is drained while lingering (a client that keeps
/// sending is cut off).
const LINGER_BYTES: usize = 64 * 1024;

/// `HTTP/1.1 101` accepting a WebSocket upgrade; `accept` is
/// `Sec-WebSocket-Accept` derived from the client's key.
pub fn switching_protocols(accept: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n\r\n"
    )
    .into_bytes()
}

/// Why a request is refused; each maps to a status and a metric outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The head itself was refused.
    Rejected(Rejection),
    /// Not admitted (tunnels disabled `400`, no such route `404`, no valid
    /// token `407` for CONNECT or `401` for a WebSocket upgrade).
    Denied(Denied, Kind),
    /// The box leg could not reach the route: stopped `503`, else `502`.
    Box(Notice),
}

impl Refusal {
    /// The `outcome` metric label.
    pub fn outcome(&self) -> &'static str {
        match self {
            Refusal::Rejected(Rejection::TooLarge) => "too_large",
            Refusal::Rejected(
                Rejection::Malformed | Rejection::Unsupported { .. } | Rejection::WebSocketVersion,
            ) => "bad_request",
            Refusal::Denied(Denied::Disabled, _) => "disabled",
            Refusal::Denied(Denied::NotFound { .. }, _) => "not_found",
            Refusal::Denied(Denied::Token { .. }, Kind::WebSocket) => "unauthorized",
            Refusal::Denied(Denied::Token { .. }, Kind::Connect | Kind::Other) => "proxy_auth",
            Refusal::Box(Notice::Stopped { .. }) => "unavailable",
            Refusal::Box(_) => "upstream_failed",
        }
    }

    /// Status, reason phrase, extra header lines and the body's notice.
    fn parts(&self) -> (u16, &'static str, String, Notice) {
        let none = String::new();
        match self {
            Refusal::Rejected(Rejection::TooLarge) => (
                431,
                "Request Header Fields Too Large",
                none,
                Notice::HeadTooLarge { max: MAX_HEAD },
            ),
            Refusal::Rejected(Rejection::Malformed) => {
                (400, "Bad Request", none, Notice::NotUnderstood)
            }
            Refusal::Rejected(Rejection::Unsupported { what, .. }) => {
                (400, "Bad Request", none, Notice::Unsupported { what })
            }
            Refusal::Rejected(Rejection::WebSocketVersion) => (
                426,
                "Upgrade Required",
                format!("Sec-WebSocket-Version: {WEBSOCKET_VERSION}\r\n"),
                Notice::WebSocketVersion {
                    version: WEBSOCKET_VERSION,
                },
            ),
            Refusal::Denied(Denied::Disabled, _) => {
                (400, "Bad Request", none, Notice::TunnelsDisabled)
            }
            Refusal::Denied(Denied::NotFound { name }, _) => {
                let name = name.clone();
                (404, "Not Found", none, Notice::NoSuchRoute { name })
            }
            Refusal::Denied(Denied::Token { route }, Kind::WebSocket) => (
                401,
                "Unauthorized",
                format!("WWW-Authenticate: Basic realm=\"{REALM}\"\r\n"),
                Notice::NeedToken {
                    route: route.clone(),
                    header: "Authorization",
                },
            ),
            Refusal::Denied(Denied::Token { route }, Kind::Connect | Kind::Other) => (
                407,
                "Proxy Authentication Required",
                format!("Proxy-Authenticate: Basic realm=\"{REALM}\"\r\n"),
                Notice::NeedToken {
                    route: route.clone(),
                    header: "Proxy-Authorization",
                },
            ),
            Refusal::Box(notice @ Notice::Stopped { .. }) => {
                (503, "Service Unavailable", none, notice.clone())
            }
            Refusal::Box(notice) => (502, "Bad Gateway", none, notice.clone()),
        }
    }

    /// The full response: status line, headers (always `Connection: close`),
    /// and the one-line body.
    pub fn to_http(&self) -> Vec<u8> {
        let (status, reason, extra, notice) = self.parts();
        let body = format!("{notice}\n");
        format!(
            "HTTP/1.1 {status} {reason}\r\n{extra}Content-Type: text/plain; charset=utf-8\r\n\
             Content-Length: {len}\r\nConnection: close\r\n\r\n{body}",
            len = body.len()
        )
        .into_bytes()
    }
}

/// Answers `refusal`, then closes: shuts down the write side and drains
/// what the client still sends (bounded by [`LINGER`] and [`LINGER_BYTES`])
/// so the answer is not lost to a reset. Peer errors are ignored: the
/// connection is over either way.
pub async fn refuse<S>(stream: &mut S, refusal: &Refusal)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if stream.write_all(&refusal.to_http()).await.is_err() || stream.shutdown().await.is_err() {
        return;
    }
    let drain = async {
        let mut sink = [0u8; 4096];
        let mut drained = 0;
        while drained < LINGER_BYTES {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
    };
    let _ = tokio::time::timeout(LINGER, drain).await;
}
