//! One client connection's record, shared by the accept path, the SSH
//! handler or HTTP tunnel, and the relays: who it is (the real client address,
//! after any PROXY header), what it authenticated as, bytes each way, the last
//! exit status, when it was last active. At the end it becomes the audit event.
//!
//! It also holds the connection's [`UnauthenticatedSlot`] (its share of
//! `max_unauthenticated`), released the moment the connection authenticates.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use tracing::info;

use super::metrics::{self, Mode};

/// Who the connection turned out to be; filled in as it authenticates.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    pub route: Option<String>,
    pub user: Option<String>,
    /// SHA-256 fingerprint of the client key (public information).
    pub key_fp: Option<String>,
}

/// What an unauthenticated connection holds: its `max_unauthenticated`
/// permit and its source's count towards `per_source_max_unauthenticated`,
/// given back together when it is dropped. Opaque here (the accept path
/// decides what it holds), so this leaf needs nothing from the server.
pub struct UnauthenticatedSlot {
    _held: Box<dyn Send + Sync>,
}

impl UnauthenticatedSlot {
    /// A slot releasing `held` (permits, counters: anything whose drop
    /// gives the place back) when the connection authenticates or ends.
    pub fn new(held: impl Send + Sync + 'static) -> Self {
        Self {
            _held: Box::new(held),
        }
    }
}

/// One client connection.
pub struct Conn {
    /// The real client address: the PROXY header's source when one was
    /// honoured, else the TCP peer.
    pub client: SocketAddr,
    /// `ssh` or `http`.
    pub protocol: &'static str,
    started: Instant,
    up: AtomicU64,
    down: AtomicU64,
    /// Milliseconds since `started` of the last relayed byte.
    last_active_ms: AtomicU64,
    /// Last exit status a session channel reported; -1 = none.
    exit_status: AtomicI64,
    /// Rejected authentication attempts (for the per-source penalty).
    auth_failures: AtomicU32,
    /// Set once, when the connection authenticates: `key`, `agent`,
    /// `jump`, `choose`, `connect`, `websocket`. Counted under it in
    /// `sessions_active` until the end, and named in the audit event.
    mode: OnceLock<&'static str>,
    identity: Mutex<Identity>,
    /// The `max_unauthenticated` slot, held until authentication.
    unauthenticated_slot: Mutex<Option<UnauthenticatedSlot>>,
}

impl Conn {
    pub fn new(
        client: SocketAddr,
        protocol: &'static str,
        slot: Option<UnauthenticatedSlot>,
    ) -> Self {
        Self {
            client,
            protocol,
            started: Instant::now(),
            up: AtomicU64::new(0),
            down: AtomicU64::new(0),
            last_active_ms: AtomicU64::new(0),
            exit_status: AtomicI64::new(-1),
            auth_failures: AtomicU32::new(0),
            mode: OnceLock::new(),
            identity: Mutex::new(Identity::default()),
            unauthenticated_slot: Mutex::new(slot),
        }
    }

    /// Client → box bytes.
    pub fn add_up(&self, n: usize) {
        let n = n as u64;
        self.up.fetch_add(n, Ordering::Relaxed);
        metrics::get().relayed("up", n);
        self.touch();
    }

    /// Box → client bytes.
    pub fn add_down(&self, n: usize) {
        let n = n as u64;
        self.down.fetch_add(n, Ordering::Relaxed);
        metrics::get().relayed("down", n);
        self.touch();
    }

    fn touch(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_active_ms.store(ms, Ordering::Relaxed);
    }

    /// How long since the last relayed byte (or since the start).
    pub fn idle_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_active_ms.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(last)
    }

    /// A session channel's exit status.
    pub fn set_exit_status(&self, status: u32) {
        self.exit_status.store(i64::from(status), Ordering::Relaxed);
    }

    /// A rejected authentication attempt.
    pub fn note_auth_failure(&self) {
        self.auth_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Rejected authentication attempts so far.
    pub fn auth_failures(&self) -> u32 {
        self.auth_failures.load(Ordering::Relaxed)
    }

    /// The connection authenticated (or a tunnel request was accepted): frees
    /// its `max_unauthenticated` slot, and counts it under `mode` in
    /// `sessions_active` until it ends.
    pub fn mark_authenticated(&self, mode: &'static str) {
        if self.mode.set(mode).is_err() {
            return;
        }
        lock(&self.unauthenticated_slot).take();
        metrics::get()
            .sessions_active
            .get_or_create(&Mode { mode })
            .inc();
    }

    pub fn is_authenticated(&self) -> bool {
        self.mode.get().is_some()
    }

    /// The mode it authenticated in, once it has.
    pub fn mode(&self) -> Option<&'static str> {
        self.mode.get().copied()
    }

    /// Records who the connection is, field by field (`None` keeps the old value).
    pub fn identify(&self, update: impl FnOnce(&mut Identity)) {
        update(&mut lock(&self.identity));
    }

    pub fn identity(&self) -> Identity {
        lock(&self.identity).clone()
    }

    /// Ends the connection: uncounts it and, when it authenticated, emits the
    /// one audit event for it (target `audit`). Call once.
    pub fn finish(&self) {
        let Some(&mode) = self.mode.get() else {
            return;
        };
        metrics::get()
            .sessions_active
            .get_or_create(&Mode { mode })
            .dec();
        let id = self.identity();
        let exit = self.exit_status.load(Ordering::Relaxed);
        info!(
            target: "audit",
            event = "session_end",
            client = %self.client,
            protocol = self.protocol,
            route = id.route.as_deref().unwrap_or(""),
            user = id.user.as_deref().unwrap_or(""),
            mode,
            key_fp = id.key_fp.as_deref().unwrap_or(""),
            bytes_up = self.up.load(Ordering::Relaxed),
            bytes_down = self.down.load(Ordering::Relaxed),
            duration_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            exit_status = (exit >= 0).then_some(exit),
            "session ended"
        );
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every write under these locks is a single assignment: a poisoned lock
    // still holds consistent data.
    m.lock().unwrap_or_else(|e| e.into_inner())
}
