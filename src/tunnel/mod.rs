//! HTTP CONNECT and WebSocket tunnels on the SSH port (SPEC §11).
//!
//! The accept path (`server`) has already read any PROXY header and seen that
//! the client speaks HTTP; `stream` replays every byte read so far. The flow:
//! [`head`] reads and classifies one request → `admit` finds the route,
//! checks its [`token`] and state, connects to the route's address (and
//! nowhere else) → `connect` or `websocket` carries the bytes. Refusals are
//! answered by `response`. [`client`] is the other end, for
//! `switchboard tunnel`.
//!
//! The port in `CONNECT host:port` is ignored: a tunnel always reaches the
//! route's `address`, whatever port the client names.

mod admit;
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

use crate::ops::{Conn, metrics};
use crate::ssh::Context;
use head::{Kind, ReadError, Request};
use response::Refusal;

/// Serves one HTTP connection: a CONNECT or a WebSocket upgrade to a route,
/// spliced to the route's address; anything else is answered and closed.
pub async fn serve<S>(mut stream: S, conn: Arc<Conn>, ctx: Arc<Context>)
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
    let (route, upstream) = match open(&head.request, &conn, &ctx).await {
        Ok(opened) => opened,
        Err(refusal) => return refuse(&mut stream, kind, refusal).await,
    };
    let mode = kind.label();
    conn.mark_authenticated(mode);
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
/// route, token, state, connect. Records who the connection is as it goes.
async fn open(
    request: &Request,
    conn: &Conn,
    ctx: &Context,
) -> Result<(Arc<crate::routes::Route>, tokio::net::TcpStream), Refusal> {
    let config = &ctx.config.http_tunnel;
    if !config.enabled {
        return Err(Refusal::Disabled);
    }
    let kind = request.kind();
    let name = match request {
        Request::Connect { host, .. } => host,
        Request::WebSocket { route, .. } => route,
    };
    let route = admit::lookup(&ctx.routes.load(), config, name)
        .ok_or_else(|| Refusal::NotFound { name: name.clone() })?;
    let mode = kind.label();
    conn.identify(|id| {
        id.route = Some(route.name.clone());
        id.mode = Some(mode);
    });
    let span = tracing::Span::current();
    span.record("route", route.name.as_str());
    span.record("mode", mode);
    if let Err(refusal) = admit::authorize(&route, config.auth, kind, request.credentials()) {
        if let Refusal::ProxyAuth { .. } | Refusal::Unauthorized { .. } = refusal {
            conn.note_auth_failure();
        }
        return Err(refusal);
    }
    let upstream = admit::connect(&route, ctx).await?;
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
        Refusal::ProxyAuth { route } | Refusal::Unauthorized { route } => {
            info!(route = %route, kind = kind.label(), "tunnel token refused");
        }
        Refusal::Rejected(_)
        | Refusal::Disabled
        | Refusal::NotFound { .. }
        | Refusal::Stopped(_)
        | Refusal::Unreachable(_) => debug!(kind = kind.label(), outcome, "tunnel request refused"),
    }
    response::refuse(stream, &refusal).await;
}
