//! The one listening port: accept, cap connections, enforce the login grace,
//! and hand each stream to the SSH layer.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use russh::keys::PrivateKey;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, field, info_span, warn};

use crate::config::Config;
use crate::routes::SharedRoutes;
use crate::ssh::handler::ClientHandler;
use crate::ssh::{Context, settings};

/// Pause after a failed `accept` (e.g. out of file descriptors) so the loop
/// does not spin; the listener keeps going.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The gateway: shared state for every listener and connection.
pub struct Gateway {
    ctx: Arc<Context>,
    ssh: Arc<russh::server::Config>,
    connections: Arc<Semaphore>,
}

impl Gateway {
    pub fn new(config: Arc<Config>, host_key: PrivateKey, routes: SharedRoutes) -> Arc<Self> {
        let ssh = Arc::new(settings::server_config(&config, host_key));
        let client_settings = Arc::new(settings::client_config(&config));
        let connections = Arc::new(Semaphore::new(config.server.max_connections));
        let ctx = Arc::new(Context {
            config,
            routes,
            client_settings,
        });
        Arc::new(Self {
            ctx,
            ssh,
            connections,
        })
    }

    /// Accepts on `listener` until `shutdown` is cancelled. The caller binds,
    /// so tests can use `127.0.0.1:0`.
    pub async fn run(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> io::Result<()> {
        loop {
            let (stream, peer) = tokio::select! {
                biased;
                _ = shutdown.cancelled() => return Ok(()),
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        warn!(error = %e, "accept failed");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        continue;
                    }
                },
            };
            let Ok(permit) = self.connections.clone().try_acquire_owned() else {
                debug!(client = %peer, "max_connections reached; connection refused");
                continue;
            };
            let span = info_span!(
                "conn",
                client = %peer,
                key_fp = field::Empty,
                route = field::Empty,
                user = field::Empty,
                mode = field::Empty
            );
            tokio::spawn(
                self.clone()
                    .serve(stream, permit, span.clone())
                    .instrument(span),
            );
        }
    }

    async fn serve(
        self: Arc<Self>,
        stream: TcpStream,
        _permit: OwnedSemaphorePermit,
        span: tracing::Span,
    ) {
        let started = Instant::now();
        let grace = self.ctx.config.server.login_grace;
        let _ = stream.set_nodelay(true);
        let local = stream
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        let authenticated = Arc::new(AtomicBool::new(false));
        let handler = ClientHandler::new(self.ctx.clone(), local, authenticated.clone(), span);

        // A client that never sends its version line must not hold a slot.
        let session = match tokio::time::timeout(
            grace,
            russh::server::run_stream(self.ssh.clone(), stream, handler),
        )
        .await
        {
            Err(_) => return debug!("no SSH version line within login_grace; closed"),
            Ok(Err(e)) => return debug!(error = %e, "not an SSH client; closed"),
            Ok(Ok(session)) => session,
        };
        let handle = session.handle();
        let remaining = grace.saturating_sub(started.elapsed());
        let login_grace = tokio::spawn(async move {
            tokio::time::sleep(remaining).await;
            if !authenticated.load(Ordering::Acquire) {
                debug!("login_grace expired before authentication; disconnecting");
                let _ = handle
                    .disconnect(
                        russh::Disconnect::ByApplication,
                        "login grace time expired".into(),
                        "en".into(),
                    )
                    .await;
            }
        });
        match session.await {
            Ok(()) => debug!("connection closed"),
            Err(e) => debug!(error = %e, "connection ended"),
        }
        login_grace.abort();
    }
}
