//! HTTP CONNECT and WebSocket tunnels on the SSH port (SPEC §11).
//!
//! The accept path (`server`) has already read any PROXY header and seen that
//! the client speaks HTTP; `stream` replays every byte read so far. The flow:
//! [`head`] reads and classifies one request → the access layer admits it
//! (route name, [`token`]) → the box leg dials the route's address (and
//! nowhere else) → `connect` or `websocket` carries the bytes. Refusals are
//! answered by `response`, with texts from [`crate::notice`]. [`client`] is
//! the other end, for `switchboard tunnel`.
//!
//! The port in `CONNECT host:port` is ignored: a tunnel always reaches the
//! route's `address`, whatever port the client names.

mod bridge;
pub mod client;
mod connect;
pub mod head;
mod response;
pub mod token;
mod websocket;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tracing::{debug, info};

use crate::access::Access;
use crate::access::tunnel::Denied;
use crate::ops::audit::{self, AuthFailure};
use crate::ops::{Conn, metrics};
use crate::routes::Route;
use crate::upstream::BoxLeg;
use head::{Credential, Kind, ReadError, Request};
use response::Refusal;

/// What every tunnel connection shares.
pub struct Shared {
    pub access: Arc<Access>,
    pub boxes: Arc<BoxLeg>,
}

/// Serves one HTTP connection: a CONNECT or a WebSocket upgrade to a route,
/// spliced to the route's address; anything else is answered and closed.
pub async fn serve<S>(mut stream: S, conn: Arc<Conn>, shared: Arc<Shared>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let head = match head::read_head(&mut stream).await {
        Ok(head) => head,
        Err(ReadError::Gone) => {
            metrics::get().tunnel(Kind::Other.label(), "incomplete");
            return debug!("client left before sending a request");
        }
        Err(ReadError::Rejected(rejection)) => {
            let kind = rejection.kind();
            return refuse(&mut stream, kind, Refusal::Rejected(rejection)).await;
        }
    };
    let kind = head.request.kind();
    let (route, upstream) = match open(&head.request, &conn, &shared).await {
        Ok(opened) => opened,
        Err(refusal) => return refuse(&mut stream, kind, refusal).await,
    };
    let mode = kind.label();
    crate::ops::audit::authenticated(&conn, mode);
    metrics::get().tunnel(mode, "ok");
    let requested_port = match &head.request {
        Request::Connect { port, .. } => Some(*port),
        Request::WebSocket { .. } => None,
    };
    // The requested port is only logged: the route's address decides.
    info!(route = %route.name, address = %route.address, mode, requested_port, "tunnel opened");
    match head.request {
        Request::Connect { .. } => connect::relay(stream, head.early, upstream, conn).await,
        Request::WebSocket { key, .. } => {
            websocket::relay(stream, &key, head.early, upstream, conn).await;
        }
    }
}

/// Everything between a parsed request and an open TCP stream to its box:
/// admission, then the dial. Records who the connection is as it goes.
async fn open(
    request: &Request,
    conn: &Conn,
    shared: &Shared,
) -> Result<(Arc<Route>, tokio::net::TcpStream), Refusal> {
    let kind = request.kind();
    let name = match request {
        Request::Connect { host, .. } => host,
        Request::WebSocket { route, .. } => route,
    };
    let tokens: Vec<_> = request
        .credentials()
        .iter()
        .filter_map(Credential::token)
        .collect();
    let admitted = shared.access.tunnel(name, &tokens);
    let route_name = match &admitted {
        Ok(route) => Some(route.name.as_str()),
        Err(Denied::Token { route }) => Some(route.as_str()),
        Err(Denied::Disabled | Denied::NotFound { .. }) => None,
    };
    if let Some(route) = route_name {
        conn.identify(|id| id.route = Some(route.to_owned()));
        let span = tracing::Span::current();
        span.record("route", route);
        span.record("auth.mode", kind.label());
    }
    let route = admitted.map_err(|denied| {
        let reason = match denied {
            Denied::Token { .. } => {
                conn.note_auth_failure();
                Some("tunnel_token")
            }
            Denied::NotFound { .. } => Some("unknown_target"),
            Denied::Disabled => None,
        };
        if let Some(reason) = reason {
            let failure = AuthFailure {
                reason,
                key_fingerprint: None,
                requested: Some(name),
            };
            audit::auth_failure(conn, &failure);
        }
        Refusal::Denied(denied, kind)
    })?;
    let upstream = shared.boxes.dial(&route).await.map_err(Refusal::Box)?;
    Ok((route, upstream))
}

/// Answers a refusal, counts it, and closes.
async fn refuse<S>(stream: &mut S, kind: Kind, refusal: Refusal)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let outcome = refusal.outcome();
    metrics::get().tunnel(kind.label(), outcome);
    match &refusal {
        Refusal::Denied(Denied::Token { route }, _) => {
            info!(route = %route, kind = kind.label(), "tunnel token refused");
        }
        Refusal::Rejected(_)
        | Refusal::Denied(Denied::Disabled | Denied::NotFound { .. }, _)
        | Refusal::Box(_) => debug!(kind = kind.label(), outcome, "tunnel request refused"),
    }
    response::refuse(stream, &refusal).await;
}
