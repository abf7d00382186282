//! The route model: one route is one box the gateway can reach.
//!
//! Sources (the routes file, Kubernetes) produce `Route`s; the gateway only
//! reads them, through a [`super::RouteTable`] snapshot.

use std::fmt;
use std::sync::Arc;

use russh::keys::{PrivateKey, PublicKey};

/// One box behind the gateway.
#[derive(Clone)]
pub struct Route {
    /// Unique name; what users type as the target (`user@<name>@gw`).
    pub name: String,
    /// `host:port` of the box's sshd.
    pub address: String,
    /// Login user on the box; when set it overrides the SSH username.
    pub user: Option<String>,
    /// Client keys that may use this route (key mode, jump mode).
    pub authorized_keys: Vec<PublicKey>,
    /// Key the gateway logs in to the box with (key mode).
    pub identity: Option<Arc<PrivateKey>>,
    /// Pin of the box's host key; checked on every upstream connection.
    pub host_key: Option<PublicKey>,
    /// Whether the box is running.
    pub state: RouteState,
    /// Per-route forwarding switches, enforced at the gateway.
    pub forwarding: Forwarding,
    /// SHA-256 of the HTTP tunnel token for this route (SPEC §11,
    /// `auth = "token"`); the token itself is never stored.
    pub token_sha256: Option<[u8; 32]>,
}

impl fmt::Debug for Route {
    // The identity is a private key: never print it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Route")
            .field("name", &self.name)
            .field("address", &self.address)
            .field("user", &self.user)
            .field("authorized_keys", &self.authorized_keys.len())
            .field("identity", &self.identity.as_ref().map(|_| "<redacted>"))
            .field(
                "host_key",
                &self
                    .host_key
                    .as_ref()
                    .map(|k| k.fingerprint(Default::default()).to_string()),
            )
            .field("state", &self.state)
            .field("forwarding", &self.forwarding)
            .field("token_sha256", &self.token_sha256.map(|_| "<set>"))
            .finish()
    }
}

impl Route {
    /// True when `key` (comments ignored) is in this route's `authorized_keys`.
    pub fn authorizes(&self, key: &PublicKey) -> bool {
        self.authorized_keys
            .iter()
            .any(|k| k.key_data() == key.key_data())
    }
}

/// Whether a box can be reached now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteState {
    Running,
    /// The box is stopped; `message` is an optional operator note shown to the user.
    Stopped {
        message: Option<String>,
    },
}

/// Which forwardings a route allows (all default to allowed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Forwarding {
    /// `-L`, `-D`, `-W` (direct-tcpip channels forwarded by the box).
    pub local: bool,
    /// `-R` (tcpip-forward and forwarded-tcpip channels).
    pub remote: bool,
    /// `ssh -A` into the box.
    pub agent: bool,
}

impl Default for Forwarding {
    fn default() -> Self {
        Self {
            local: true,
            remote: true,
            agent: true,
        }
    }
}
