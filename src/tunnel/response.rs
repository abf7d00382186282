//! The gateway's own HTTP answers: the success lines that open a tunnel, and
//! refusals with a one-line `switchboard: …` body (SPEC §10) followed by a
//! graceful close.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::head::{MAX_HEAD, Rejection, WEBSOCKET_VERSION};
use crate::ssh::messages::Notice;

/// The CONNECT success line; the tunnel's bytes follow it directly.
pub const ESTABLISHED: &[u8] = b"HTTP/1.1 200 Connection established\r\n\r\n";

/// Realm named in `Proxy-Authenticate` / `WWW-Authenticate`.
const REALM: &str = "switchboard";

/// What the port serves, appended to "not served" answers.
const SERVED: &str =
    "this port speaks SSH, HTTP CONNECT ROUTE:22 and a WebSocket GET /tunnel/ROUTE";

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
    /// `[http_tunnel] enabled = false`.
    Disabled,
    /// No route by that name: `404`. No connection is attempted.
    NotFound { name: String },
    /// CONNECT without a valid token for the route: `407`.
    ProxyAuth { route: String },
    /// WebSocket upgrade without a valid token for the route: `401`.
    Unauthorized { route: String },
    /// The route is stopped: `503`.
    Stopped(Notice),
    /// The route's address could not be reached: `502`.
    Unreachable(Notice),
}

impl Refusal {
    /// The `outcome` metric label.
    pub fn outcome(&self) -> &'static str {
        match self {
            Refusal::Rejected(Rejection::TooLarge) => "too_large",
            Refusal::Rejected(
                Rejection::Malformed | Rejection::Unsupported { .. } | Rejection::WebSocketVersion,
            ) => "bad_request",
            Refusal::Disabled => "disabled",
            Refusal::NotFound { .. } => "not_found",
            Refusal::ProxyAuth { .. } => "proxy_auth",
            Refusal::Unauthorized { .. } => "unauthorized",
            Refusal::Stopped(_) => "unavailable",
            Refusal::Unreachable(_) => "upstream_failed",
        }
    }

    /// The full response: status line, headers (always `Connection: close`),
    /// and the one-line body.
    pub fn to_http(&self) -> Vec<u8> {
        let mut extra = String::new();
        let (status, reason, body) = match self {
            Refusal::Rejected(Rejection::TooLarge) => (
                431,
                "Request Header Fields Too Large",
                format!("switchboard: request head over {MAX_HEAD} bytes; refused"),
            ),
            Refusal::Rejected(Rejection::Malformed) => (
                400,
                "Bad Request",
                format!("switchboard: not a request this port understands; {SERVED}"),
            ),
            Refusal::Rejected(Rejection::Unsupported { what, .. }) => {
                (400, "Bad Request", format!("switchboard: {what}; {SERVED}"))
            }
            Refusal::Rejected(Rejection::WebSocketVersion) => {
                extra = format!("Sec-WebSocket-Version: {WEBSOCKET_VERSION}\r\n");
                (
                    426,
                    "Upgrade Required",
                    format!("switchboard: only WebSocket version {WEBSOCKET_VERSION} is served"),
                )
            }
            Refusal::Disabled => (
                400,
                "Bad Request",
                "switchboard: HTTP tunnels are not enabled on this gateway; connect with ssh directly"
                    .to_owned(),
            ),
            Refusal::NotFound { name } => (
                404,
                "Not Found",
                format!("switchboard: no route named {name}; check the name (CONNECT ROUTE:22)"),
            ),
            Refusal::ProxyAuth { route } => {
                extra = format!("Proxy-Authenticate: Basic realm=\"{REALM}\"\r\n");
                (
                    407,
                    "Proxy Authentication Required",
                    format!(
                        "switchboard: {route} needs its tunnel token; send Proxy-Authorization: Bearer TOKEN"
                    ),
                )
            }
            Refusal::Unauthorized { route } => {
                extra = format!("WWW-Authenticate: Basic realm=\"{REALM}\"\r\n");
                (
                    401,
                    "Unauthorized",
                    format!(
                        "switchboard: {route} needs its tunnel token; send Authorization: Bearer TOKEN"
                    ),
                )
            }
            Refusal::Stopped(notice) => (503, "Service Unavailable", notice.to_string()),
            Refusal::Unreachable(notice) => (502, "Bad Gateway", notice.to_string()),
        };
        let body = format!("{body}\n");
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
