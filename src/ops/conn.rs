//! One client connection's record, shared by the accept path, the SSH
//! handler or HTTP tunnel, and the relays: its session id, who it is (the
//! real client address, after any PROXY header), what it authenticated as,
//! bytes each way, its open channels, the last exit status, when it was last
//! active, and whether an operator ended it. Its authentication and its end
//! are audit events (`ops::audit`).
//!
//! It also holds the connection's [`UnauthenticatedSlot`] (its share of
//! `max_unauthenticated`), released the moment the connection authenticates.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

use super::channel::{ChannelEntry, ChannelKind, ChannelTable, SessionType, clip};
use super::metrics::{self, Mode};

/// Who the connection turned out to be; filled in as it authenticates.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    pub route: Option<String>,
    pub user: Option<String>,
    /// SHA-256 fingerprint of the client key (public information).
    pub key_fp: Option<String>,
    /// The user certificate it authenticated with, if any.
    pub cert: Option<CertIdentity>,
}

/// What logs say about a user certificate (all public: a certificate is
/// shown to every server it is offered to).
#[derive(Debug, Clone, Default)]
pub struct CertIdentity {
    /// The key ID its CA signed (`ssh-keygen -I`).
    pub key_id: String,
    pub serial: u64,
    /// `SHA256:…` of the signing CA.
    pub ca_fp: String,
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
    /// 16 random hex digits: joins the connection's audit events, log lines
    /// and its entry in the sessions API.
    id: String,
    started: Instant,
    /// Wall-clock start, for the sessions API.
    started_at: SystemTime,
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
    /// Channels open now (see [`super::channel::OpenChannel`]).
    channels: Mutex<ChannelTable>,
    /// Cancelled when an operator ends the connection.
    killed: CancellationToken,
    /// Why the gateway ended the connection, when it did (`operator_kill`,
    /// `idle_timeout`, `shutdown`, `login_grace`); first one wins.
    end_reason: OnceLock<&'static str>,
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
            id: format!("{:016x}", rand::random::<u64>()),
            started: Instant::now(),
            started_at: SystemTime::now(),
            up: AtomicU64::new(0),
            down: AtomicU64::new(0),
            last_active_ms: AtomicU64::new(0),
            exit_status: AtomicI64::new(-1),
            auth_failures: AtomicU32::new(0),
            mode: OnceLock::new(),
            identity: Mutex::new(Identity::default()),
            unauthenticated_slot: Mutex::new(slot),
            channels: Mutex::default(),
            killed: CancellationToken::new(),
            end_reason: OnceLock::new(),
        }
    }

    /// The session id (16 hex digits).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// When the connection was accepted (wall clock).
    pub fn started_at(&self) -> SystemTime {
        self.started_at
    }

    /// How long the connection has lived.
    pub fn age(&self) -> Duration {
        self.started.elapsed()
    }

    /// Bytes relayed so far: (client → box, box → client).
    pub fn bytes(&self) -> (u64, u64) {
        (
            self.up.load(Ordering::Relaxed),
            self.down.load(Ordering::Relaxed),
        )
    }

    /// The last exit status a session channel reported.
    pub fn exit_status(&self) -> Option<i64> {
        let exit = self.exit_status.load(Ordering::Relaxed);
        (exit >= 0).then_some(exit)
    }

    /// The channels open now, in the order they opened.
    pub fn channels(&self) -> Vec<ChannelEntry> {
        lock(&self.channels).entries().cloned().collect()
    }

    /// How many channels are open now.
    pub fn channel_count(&self) -> usize {
        lock(&self.channels).len()
    }

    pub(super) fn channel_table(&self) -> &Mutex<ChannelTable> {
        &self.channels
    }

    /// Ends the connection on an operator's request: the front watching
    /// [`Conn::killed`] tells the user and disconnects.
    pub fn kill(&self) {
        self.set_end_reason("operator_kill");
        self.killed.cancel();
    }

    /// Resolves once an operator has ended the connection.
    pub fn killed(&self) -> WaitForCancellationFuture<'_> {
        self.killed.cancelled()
    }

    /// Records why the gateway ends the connection (the first reason stays).
    pub fn set_end_reason(&self, reason: &'static str) {
        let _ = self.end_reason.set(reason);
    }

    /// Why the gateway ended it; `None` when the client (or the box) did.
    pub fn end_reason(&self) -> Option<&'static str> {
        self.end_reason.get().copied()
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

    /// Marks the connection active without relaying anything (a session
    /// told it still waits for its box is not idle).
    pub fn touch(&self) {
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
    /// its `max_unauthenticated` slot and counts it under `mode` in
    /// `sessions_active` until it ends. True the first time only. Fronts call
    /// it through `audit::authenticated`, which logs `session_start`.
    pub fn mark_authenticated(&self, mode: &'static str) -> bool {
        if self.mode.set(mode).is_err() {
            return false;
        }
        lock(&self.unauthenticated_slot).take();
        metrics::get()
            .sessions_active
            .get_or_create(&Mode { mode })
            .inc();
        true
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

    /// Ends the connection: uncounts it; true when it had authenticated.
    /// Called once, through `audit::ended`, which logs `session_end`.
    pub fn finish(&self) -> bool {
        let Some(&mode) = self.mode.get() else {
            return false;
        };
        let m = metrics::get();
        m.sessions_active.get_or_create(&Mode { mode }).dec();
        m.session_ended(mode, self.age());
        true
    }
}

/// A channel registered on its connection; removed from it when dropped.
pub struct OpenChannel {
    conn: Arc<Conn>,
    key: u64,
}

impl OpenChannel {
    /// Registers a channel of `kind` (to `destination`) on `conn`.
    pub fn new(conn: &Arc<Conn>, kind: ChannelKind, destination: Option<String>) -> Self {
        let entry = ChannelEntry {
            kind,
            destination: destination.map(|d| clip(&d).to_owned()),
            session_type: None,
            started_at: SystemTime::now(),
        };
        let key = lock(conn.channel_table()).insert(entry);
        Self {
            conn: conn.clone(),
            key,
        }
    }

    /// Records what a session channel runs; `true` the first time only (a
    /// channel runs one shell, command or subsystem).
    pub fn set_session_type(&self, session_type: SessionType) -> bool {
        let mut table = lock(self.conn.channel_table());
        match table.get_mut(self.key) {
            Some(entry) if entry.session_type.is_none() => {
                entry.session_type = Some(session_type);
                true
            }
            Some(_) | None => false,
        }
    }

    /// The connection this channel is on.
    pub fn conn(&self) -> &Arc<Conn> {
        &self.conn
    }
}

impl Drop for OpenChannel {
    fn drop(&mut self) {
        lock(self.conn.channel_table()).remove(self.key);
    }
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every write under these locks is a single assignment: a poisoned lock
    // still holds consistent data.
    m.lock().unwrap_or_else(|e| e.into_inner())
}
