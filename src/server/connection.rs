//! One accepted TCP connection, down the pipeline: PROXY header (when
//! enabled) → per-source share and penalty → protocol detection (when HTTP
//! tunnels are enabled) → the SSH server or the HTTP tunnel front. While it
//! runs it is listed in the gateway's [`Sessions`](crate::ops::Sessions) (an
//! operator may end it); at the end: the penalty bookkeeping and the audit
//! event.
//!
//! The per-source checks run as soon as the source is known: at once when
//! the peer cannot declare another client (no PROXY protocol, or a peer
//! outside `trusted_cidrs`), else after its header. Before that, a
//! connection holds only its global `max_unauthenticated` slot.
//!
//! The whole pre-authentication phase, PROXY header included, is bounded by
//! `login_grace`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tracing::{Instrument, Span, debug, field, info, info_span, warn};

use super::Gateway;
use super::detect::{self, Protocol, replay};
use super::guard::{Served, failure, idle_expired, login_grace_expired};
use super::limits::{Refusal, ShareSlot};
use super::proxy;
use crate::ops::Conn;
use crate::ops::conn::UnauthenticatedSlot;
use crate::ops::metrics::{self, Protocol as ProtocolLabel};
use crate::ops::source::canonical;
use crate::tunnel;

impl Gateway {
    pub(super) async fn handle(
        self: Arc<Self>,
        mut stream: TcpStream,
        peer: SocketAddr,
        unauthenticated: OwnedSemaphorePermit,
    ) {
        let m = metrics::get();
        m.connections_active.inc();
        let _active = scopeguard(|| {
            metrics::get().connections_active.dec();
        });
        let deadline = Instant::now() + self.config.server.login_grace;
        let _ = stream.set_nodelay(true);
        let mut first = Vec::new();
        let Some((client, share)) = self
            .admit_client(&mut stream, &mut first, peer, deadline)
            .await
        else {
            return;
        };
        let protocol = if self.config.http_tunnel.enabled {
            if first.is_empty() {
                detect::sniff(&mut stream, &mut first, detect::SILENT_CLIENT_WAIT).await;
            }
            detect::classify(&first)
        } else {
            Protocol::Ssh
        };
        m.connections_accepted
            .get_or_create(&ProtocolLabel {
                protocol: protocol.name(),
            })
            .inc();
        let slot = UnauthenticatedSlot::new((unauthenticated, share));
        let conn = Arc::new(Conn::new(client, protocol.name(), Some(slot)));
        let _listed = self.sessions.register(conn.clone());
        let span = conn_span(&conn);
        if client != peer {
            span.in_scope(|| debug!(peer = %peer, "client address from the PROXY header"));
        }
        let stream = replay(stream, first);
        let served = match protocol {
            Protocol::Ssh => {
                self.clone()
                    .serve_ssh(stream, conn.clone(), deadline, span.clone())
                    .instrument(span.clone())
                    .await
            }
            Protocol::Http => {
                // Boxed, so that SSH connections do not carry its size.
                let serving = Box::pin(tunnel::serve(stream, conn.clone(), self.tunnels.clone()));
                self.guard(serving, &conn, deadline)
                    .instrument(span.clone())
                    .await
            }
        };
        span.in_scope(|| self.finish(&conn, served));
    }

    /// The real client and its share slot (if it has a share), each taken as
    /// soon as it is known: at once when the peer cannot declare another
    /// client, else after its PROXY header. `None` when refused.
    async fn admit_client(
        &self,
        stream: &mut TcpStream,
        first: &mut Vec<u8>,
        peer: SocketAddr,
        deadline: Instant,
    ) -> Option<(SocketAddr, Option<ShareSlot>)> {
        let declares = self.proxy.as_ref().is_some_and(|p| p.trusts(peer.ip()));
        let early = if declares {
            None
        } else {
            Some(self.admit(peer).ok()?)
        };
        if self.proxy.is_some() || self.config.http_tunnel.enabled {
            detect::sniff(stream, first, detect::SILENT_CLIENT_WAIT).await;
        }
        let client = self.client_address(stream, first, peer, deadline).await?;
        let share = match early {
            Some(share) => share,
            None => self.admit(client).ok()?,
        };
        Some((client, share))
    }

    /// The per-source checks for `client`: its share slot (if it has a
    /// share), or `Refused` (logged and counted).
    fn admit(&self, client: SocketAddr) -> Result<Option<ShareSlot>, Refused> {
        let m = metrics::get();
        match self.pre_auth.admit(client.ip(), Instant::now()) {
            Ok(share) => Ok(share),
            Err(Refusal::Penalized(left)) => {
                info!(client = %client, "refused: too many failed logins from this address; {}s left", left.as_secs());
                m.reject("per_source_penalty");
                m.limit("per_source_penalty");
                Err(Refused)
            }
            Err(Refusal::ShareFull) => {
                debug!(client = %client, "per_source_max_unauthenticated reached; connection refused");
                m.reject("per_source_max_unauthenticated");
                m.limit("per_source_max_unauthenticated");
                Err(Refused)
            }
        }
    }

    /// The real client: the PROXY header's source when one is honoured, else
    /// the peer. `None` when the connection is refused.
    async fn client_address(
        &self,
        stream: &mut TcpStream,
        first: &mut Vec<u8>,
        peer: SocketAddr,
        deadline: Instant,
    ) -> Option<SocketAddr> {
        let Some(policy) = &self.proxy else {
            return Some(peer);
        };
        let reading = proxy::read_header(stream, first, peer.ip(), policy);
        let result = match tokio::time::timeout_at(deadline.into(), reading).await {
            Ok(result) => result,
            Err(_) => Err(proxy::ProxyError::Truncated),
        };
        match result {
            Ok(declared) => Some(declared.unwrap_or(peer)),
            Err(e) => {
                warn!(peer = %peer, error = %e, "connection refused");
                metrics::get().reject(e.reason());
                None
            }
        }
    }

    /// Runs an HTTP tunnel, dropping it when `login_grace` passes before its
    /// request is accepted, when it has been idle for `idle_timeout`, when
    /// an operator ends it, or when the gateway closes after draining.
    async fn guard(
        &self,
        serving: impl Future<Output = ()>,
        conn: &Conn,
        deadline: Instant,
    ) -> Served {
        let idle = self.config.server.idle_timeout;
        tokio::select! {
            () = serving => Served::Ended,
            () = login_grace_expired(conn, deadline) => Served::LoginGraceExpired,
            () = idle_expired(conn, idle) => {
                debug!("tunnel idle for {}; closed", humantime::format_duration(idle));
                metrics::get().limit("idle_timeout");
                conn.set_end_reason("idle_timeout");
                Served::Ended
            }
            () = conn.killed() => {
                info!("ended by an operator; closed");
                Served::Ended
            }
            () = self.closing.cancelled() => {
                conn.set_end_reason("shutdown");
                Served::Ended
            }
        }
    }

    /// Penalty bookkeeping and the audit event.
    fn finish(&self, conn: &Conn, served: Served) {
        if served == Served::LoginGraceExpired {
            metrics::get().limit("login_grace");
        }
        let penalized = failure(conn, served)
            .is_some_and(|f| self.pre_auth.failed(conn.client.ip(), f, Instant::now()));
        if penalized {
            warn!(client = %conn.client, "too many failed logins; address refused for {:?}", self.config.server.per_source_penalty);
        }
        crate::ops::audit::ended(conn);
    }
}

/// The connection's span: every log line of it carries these fields (the
/// identity ones are recorded as it authenticates), named as in the audit
/// events.
fn conn_span(conn: &Conn) -> Span {
    info_span!(
        "conn",
        session.id = conn.id(),
        client.address = %canonical(conn.client.ip()),
        client.port = conn.client.port(),
        key.fingerprint = field::Empty,
        cert.key_id = field::Empty,
        cert.serial = field::Empty,
        route = field::Empty,
        user.name = field::Empty,
        auth.mode = field::Empty
    )
}

/// A connection refused by a per-source check (already logged and counted).
struct Refused;

/// Runs `f` on drop.
fn scopeguard(f: impl FnOnce()) -> impl Drop {
    struct Guard<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for Guard<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    Guard(Some(f))
}
