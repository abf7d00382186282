//! The SSH leg of a connection: run the russh server on the stream, with a
//! watchdog that disconnects when `login_grace` passes before authentication,
//! when the session has been idle for `idle_timeout`, when an operator ends
//! it (sessions API), or when the gateway closes after draining — telling
//! the user why (the SSH disconnect reason).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use russh::server::Handle;
use tracing::{Span, debug, info};

use super::Gateway;
use super::detect::Replayed;
use super::guard::{Served, idle_expired, login_grace_expired};
use crate::notice::Notice;
use crate::ops::{Conn, metrics};
use crate::ssh::handler::ClientHandler;

impl Gateway {
    pub(super) async fn serve_ssh(
        self: Arc<Self>,
        stream: Replayed,
        conn: Arc<Conn>,
        deadline: Instant,
        span: Span,
    ) -> Served {
        let local = stream
            .writer()
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        let handler = ClientHandler::new(self.ssh.clone(), local, conn.clone(), span);
        // A client that never sends its version line must not hold a slot.
        // Boxed: the handshake future is large and short-lived; unboxed it
        // would size this connection's task for its whole life.
        let running = Box::pin(russh::server::run_stream(
            self.ssh_settings.clone(),
            stream,
            handler,
        ));
        let handshake = tokio::select! {
            done = tokio::time::timeout_at(deadline.into(), running) => done,
            () = conn.killed() => {
                info!("ended by an operator before the handshake; closed");
                return Served::Ended;
            }
        };
        let session = match handshake {
            Err(_) => {
                debug!("no SSH version line within login_grace; closed");
                return Served::LoginGraceExpired;
            }
            Ok(Err(e)) => {
                debug!(error = %e, "not an SSH client; closed");
                return Served::Ended;
            }
            Ok(Ok(session)) => session,
        };
        let handle = session.handle();
        let watchdog = tokio::spawn(self.clone().watch(handle, conn.clone(), deadline));
        match session.await {
            Ok(()) => debug!("connection closed"),
            Err(russh::Error::WindowExceeded) => {
                // russh (manual_window_adjust) cut a peer that sent more
                // than the window the relay granted.
                info!("sent past its channel window; disconnected");
                metrics::get().limit("window");
                conn.set_end_reason("window_exceeded");
            }
            Err(e) => debug!(error = %e, "connection ended"),
        }
        watchdog.abort();
        match watchdog.await {
            Ok(served) => served,
            Err(_) => Served::Ended,
        }
    }

    /// Disconnects the client when a limit or the shutdown says so.
    async fn watch(self: Arc<Self>, handle: Handle, conn: Arc<Conn>, deadline: Instant) -> Served {
        let idle = self.config.server.idle_timeout;
        let (reason, served) = tokio::select! {
            () = login_grace_expired(&conn, deadline) => {
                debug!("login_grace expired before authentication; disconnecting");
                ("login grace time expired".to_owned(), Served::LoginGraceExpired)
            }
            () = idle_expired(&conn, idle) => {
                info!("idle for {}; disconnecting", humantime::format_duration(idle));
                metrics::get().limit("idle_timeout");
                conn.set_end_reason("idle_timeout");
                (Notice::Idle { after: idle }.to_string(), Served::Ended)
            }
            () = conn.killed() => {
                info!("ended by an operator; disconnecting");
                (Notice::EndedByOperator.to_string(), Served::Ended)
            }
            () = self.closing.cancelled() => {
                info!("shutdown_grace over; disconnecting");
                conn.set_end_reason("shutdown");
                (Notice::Restarting.to_string(), Served::Ended)
            }
        };
        let _ = handle
            .disconnect(russh::Disconnect::ByApplication, reason, "en".into())
            .await;
        served
    }
}
