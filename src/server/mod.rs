//! The one listening port: accept, cap connections (`max_connections`, random
//! early drop, `max_unauthenticated`), and hand each stream down the pipeline
//! (see [`connection`]): PROXY header → per-source share and penalty
//! ([`limits`]) → protocol detection → SSH ([`ssh`]) or an HTTP tunnel.
//!
//! Shutdown: `/readyz` false at once; new connections still accepted for
//! `accept_after_unready` (the caller cancels `run`'s token after it, see
//! `cli::serve`); then [`Gateway::drain`]: let connections run for
//! `shutdown_grace`, then tell the users still connected that the gateway is
//! restarting and close.

pub mod admin;
mod connection;
pub mod detect;
mod guard;
pub mod limits;
pub mod proxy;
mod ssh;

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use crate::access::Access;
use crate::config::Config;
use crate::ops::{Sessions, metrics};
use crate::routes::RouteSources;
use crate::tunnel;
use crate::upstream::{BoxLeg, UserCa};
use admin::Health;
use limits::PreAuth;
use proxy::ProxyPolicy;

/// Pause after a failed `accept` (e.g. out of file descriptors) so the loop
/// does not spin; the listener keeps going.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// After the users still connected at the end of `shutdown_grace` are told
/// and disconnected, how long their connections get to finish closing.
const CLOSE_MARGIN: Duration = Duration::from_secs(3);

/// The gateway: shared state for every listener and connection.
pub struct Gateway {
    config: Arc<Config>,
    /// What the SSH front's connections share, and its russh settings.
    ssh: Arc<crate::ssh::Shared>,
    ssh_settings: Arc<russh::server::Config>,
    /// What the HTTP tunnel front's connections share.
    tunnels: Arc<tunnel::Shared>,
    sources: Arc<RouteSources>,
    health: Arc<Health>,
    /// The live connections (the sessions API).
    sessions: Arc<Sessions>,
    connections: Arc<Semaphore>,
    unauthenticated: Arc<Semaphore>,
    /// Early drop, the per-source share and penalty, the exempt sources.
    pre_auth: PreAuth,
    proxy: Option<ProxyPolicy>,
    /// Every connection task, so shutdown can wait for them.
    tracker: TaskTracker,
    /// Cancelled when `shutdown_grace` is over: connections tell their users
    /// and close.
    closing: CancellationToken,
}

impl Gateway {
    /// `wakes` waits for stopped or starting boxes (built on the same table);
    /// `user_ca` signs the logins of `login = "certificate"` routes.
    pub fn new(
        config: Arc<Config>,
        identity: &crate::hostkey::HostIdentity,
        sources: Arc<RouteSources>,
        wakes: Arc<crate::wake::Wakes>,
        user_ca: Option<Arc<UserCa>>,
    ) -> Arc<Self> {
        let ssh_settings = Arc::new(crate::ssh::settings::server_config(&config, identity));
        let s = &config.server;
        let connections = Arc::new(Semaphore::new(s.max_connections));
        let unauthenticated = Arc::new(Semaphore::new(s.max_unauthenticated));
        let pre_auth = PreAuth::new(s);
        let proxy = config.proxy_protocol.enabled.then(|| ProxyPolicy {
            trusted: config.proxy_protocol.trusted(),
        });
        let health = Health::new(sources.clone());
        let access = Arc::new(Access::new(config.clone(), sources.table().clone()));
        let boxes = Arc::new(BoxLeg::new(&config, user_ca));
        let ssh = Arc::new(crate::ssh::Shared {
            config: config.clone(),
            access: access.clone(),
            boxes: boxes.clone(),
            wakes,
            pending: crate::relay::session::PendingPool::new(),
        });
        let tunnels = Arc::new(tunnel::Shared { access, boxes });
        Arc::new(Self {
            config,
            ssh,
            ssh_settings,
            tunnels,
            sources,
            health,
            sessions: Sessions::new(),
            connections,
            unauthenticated,
            pre_auth,
            proxy,
            tracker: TaskTracker::new(),
            closing: CancellationToken::new(),
        })
    }

    /// What `/readyz` reports.
    pub fn health(&self) -> Arc<Health> {
        self.health.clone()
    }

    /// The live connections, for the sessions API.
    pub fn sessions(&self) -> Arc<Sessions> {
        self.sessions.clone()
    }

    /// Accepts on `listener` until `shutdown` is cancelled, then drops it (new
    /// connections are refused at once). No client is accepted before every
    /// route source has synced once. The caller binds, so tests can use
    /// `127.0.0.1:0`.
    pub async fn run(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> io::Result<()> {
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            () = self.sources.wait_ready() => {}
        }
        loop {
            let (stream, peer) = tokio::select! {
                biased;
                () = shutdown.cancelled() => return Ok(()),
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        warn!(error = %e, "accept failed");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        continue;
                    }
                },
            };
            let m = metrics::get();
            let Ok(slot) = self.connections.clone().try_acquire_owned() else {
                debug!(peer = %peer, "max_connections reached; connection refused");
                m.reject("max_connections");
                m.limit("max_connections");
                continue;
            };
            let full = self.config.server.max_unauthenticated;
            let in_use = full.saturating_sub(self.unauthenticated.available_permits());
            let Ok(unauthenticated) = self.unauthenticated.clone().try_acquire_owned() else {
                debug!(peer = %peer, "max_unauthenticated reached; connection refused");
                m.reject("max_unauthenticated");
                m.limit("max_unauthenticated");
                continue;
            };
            // Below full (a full table is refused above, as such).
            if self.pre_auth.early_drop(in_use) {
                debug!(peer = %peer, in_use, "unauthenticated table filling; connection dropped early");
                m.reject("early_drop");
                m.limit("early_drop");
                continue;
            }
            let gateway = self.clone();
            self.tracker.spawn(async move {
                let _slot = slot;
                gateway.handle(stream, peer, unauthenticated).await;
            });
        }
    }

    /// Waits for the connections to finish, for at most `grace`; then tells
    /// the users still connected that the gateway is restarting, closes
    /// their connections and waits a moment for them to go.
    /// Call after cancelling the `shutdown` token given to [`Gateway::run`].
    pub async fn drain(&self, grace: Duration) {
        self.health.start_draining();
        self.tracker.close();
        let open = self.tracker.len();
        if open > 0 {
            info!("draining {open} connections for up to {grace:?}");
        }
        if tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_ok()
        {
            return info!("all connections finished");
        }
        warn!(
            "shutdown_grace over; closing {} connections",
            self.tracker.len()
        );
        self.closing.cancel();
        if tokio::time::timeout(CLOSE_MARGIN, self.tracker.wait())
            .await
            .is_err()
        {
            warn!("{} connections did not close in time", self.tracker.len());
        }
    }
}
