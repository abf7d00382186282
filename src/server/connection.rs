//! One accepted TCP connection, down the pipeline: PROXY header (when
//! enabled) → per-source penalty → protocol detection (when HTTP tunnels are
//! enabled) → the SSH server or the HTTP tunnel front. At the end: the
//! penalty bookkeeping and the audit event.
//!
//! The whole pre-authentication phase, PROXY header included, is bounded by
//! `login_grace`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tracing::{Instrument, debug, field, info, info_span, warn};

use super::Gateway;
use super::detect::{self, Protocol, replay};
use super::guard::{Served, idle_expired, login_grace_expired};
use super::proxy;
use crate::ops::Conn;
use crate::ops::metrics::{self, Protocol as ProtocolLabel};
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
        let sniff = self.proxy.is_some() || self.config.http_tunnel.enabled;
        let mut first = Vec::new();
        if sniff {
            detect::sniff(&mut stream, &mut first, detect::SILENT_CLIENT_WAIT).await;
        }
        let client = match self
            .client_address(&mut stream, &mut first, peer, deadline)
            .await
        {
            Some(client) => client,
            None => return,
        };
        if let Some(left) = self.penalties.refused_for(client.ip(), Instant::now()) {
            info!(client = %client, "refused: too many failed logins from this address; {}s left", left.as_secs());
            m.reject("per_source_penalty");
            m.limit("per_source_penalty");
            return;
        }
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
        let conn = Arc::new(Conn::new(client, protocol.name(), Some(unauthenticated)));
        let span = info_span!(
            "conn",
            client = %client,
            key_fp = field::Empty,
            route = field::Empty,
            user = field::Empty,
            mode = field::Empty
        );
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
    /// request is accepted, when it has been idle for `idle_timeout`, or
    /// when the gateway closes after draining.
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
                Served::Ended
            }
            () = self.closing.cancelled() => Served::Ended,
        }
    }

    /// Penalty bookkeeping and the audit event.
    fn finish(&self, conn: &Conn, served: Served) {
        let failed = !conn.is_authenticated()
            && (conn.auth_failures() > 0 || served == Served::LoginGraceExpired);
        if served == Served::LoginGraceExpired {
            metrics::get().limit("login_grace");
        }
        if failed && self.penalties.failed(conn.client.ip(), Instant::now()) {
            warn!(client = %conn.client, "too many failed logins; address refused for {:?}", self.config.server.per_source_penalty);
        }
        conn.finish();
    }
}

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
