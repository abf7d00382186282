//! The box leg: the only code that reaches a box. [`BoxLeg::dial`] opens TCP
//! to a route's `address` (and nowhere else) under `connect_timeout`;
//! [`BoxLeg::login`] adds the SSH handshake, the host-key check ([`back`])
//! and the login — with the route's identity or through the client's
//! forwarded agent — under `handshake_timeout`. Every failure is the
//! [`Notice`] the user is told; every attempt is counted in the metrics.
//! Agent mode's login ([`BoxLeg::agent_login`]) opens the client's agent and
//! lists its keys whether or not its target exists. Key mode logs in with
//! the route's identity, or, for `login = "certificate"` routes, with a
//! certificate the gateway's user CA mints for that login ([`user_ca`]).
//!
//! Jumps and HTTP tunnels use `dial`; relayed sessions use `login`.

mod agent;
mod agent_slots;
mod back;
mod login;
mod seen;
pub mod settings;
pub mod user_ca;

pub use agent::{AgentFailure, AgentLogin};
pub use back::ClientLink;
pub use login::BoxSession;
pub use user_ca::{UserCa, UserCaError};

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use russh::client;
use russh::keys::PublicKey;
use russh::keys::agent::AgentIdentity;
use russh::keys::agent::client::AgentClient;
use tokio::net::TcpStream;

use crate::config::{Config, UpstreamConfig};
use crate::notice::Notice;
use crate::ops::metrics;
use crate::routes::{Route, RouteState};

/// What reaching a box needs: the timeouts and host-key policy, and the
/// russh client settings.
pub struct BoxLeg {
    config: UpstreamConfig,
    settings: Arc<client::Config>,
    /// Host keys seen per backend, for trust on first use.
    seen: Arc<seen::SeenKeys>,
    /// Agent-mode logins in progress, per route and per source.
    agent_slots: Arc<agent_slots::AgentSlots>,
    /// The user CA for `login = "certificate"` routes, when configured.
    user_ca: Option<Arc<UserCa>>,
    /// `[upstream] trusted_host_cas`, parsed.
    host_cas: Vec<PublicKey>,
    /// [`settings`] that ask for host certificates, for boxes with host CAs.
    cert_settings: Arc<client::Config>,
}

/// How the gateway logs in to the box.
pub enum Login {
    /// Key mode: the route's `identity_file`, or a minted certificate
    /// for a `login = "certificate"` route.
    Identity,
    /// Agent mode: the keys in the client's forwarded agent; the box's own
    /// `authorized_keys` decides.
    Agent(Box<AgentKeys>),
}

/// The agent the client forwarded (`ssh -A`), reached over a channel to it.
pub type ClientAgent = AgentClient<crate::relay::flow::FlowStream<russh::server::Msg>>;

/// The client's agent and the keys it listed, for the login.
pub struct AgentKeys {
    agent: ClientAgent,
    identities: Vec<AgentIdentity>,
    timeout: Duration,
}

/// A failed attempt: the metrics label and what the user is told.
type Failed = (&'static str, Notice);

impl BoxLeg {
    /// The box leg under `config`, minting login certificates with
    /// `user_ca` (loaded at start, see [`UserCa::load`]) when given.
    pub fn new(config: &Config, user_ca: Option<Arc<UserCa>>) -> Self {
        // Validated at load: a line that does not parse was refused there.
        let host_cas = config
            .upstream
            .trusted_host_cas
            .iter()
            .filter_map(|line| crate::routes::keys::parse_public_key(line).ok())
            .collect();
        Self {
            config: config.upstream.clone(),
            settings: Arc::new(settings::client_config(config)),
            seen: Arc::default(),
            agent_slots: Arc::default(),
            user_ca,
            host_cas,
            cert_settings: Arc::new(settings::client_config_with_host_certificates(config)),
        }
    }

    /// `Stopped` when the route's box is not running: nothing is dialled.
    pub fn running(route: &Route) -> Result<(), Notice> {
        match &route.state {
            RouteState::Running => Ok(()),
            RouteState::Stopped { message } => Err(Notice::Stopped {
                route: route.name.clone(),
                note: message.clone(),
            }),
        }
    }

    /// Raw TCP to the route's sshd (jump mode, HTTP tunnels): the SSH inside
    /// is end to end between the client and the box.
    pub async fn dial(&self, route: &Route) -> Result<TcpStream, Notice> {
        Self::running(route)?;
        let started = Instant::now();
        let result = self.connect_tcp(route).await;
        metrics::get().upstream(started.elapsed(), result.as_ref().err().map(|f| f.0));
        result.map_err(|(_, notice)| notice)
    }

    /// Connects and logs in to `route` as `user`; the attempt is timed and
    /// any failure counted in the metrics. `client` carries the channels the
    /// box opens back (`-R`, agent forwarding into the box).
    pub async fn login(
        &self,
        route: &Route,
        user: Option<&str>,
        client: Option<ClientLink>,
        login: Login,
    ) -> Result<BoxSession, Notice> {
        Self::running(route)?;
        let Some(user) = user else {
            return Err(Notice::NoUser {
                route: route.name.clone(),
            });
        };
        let started = Instant::now();
        let result = login::connect(self, route, user, client, login).await;
        metrics::get().upstream(started.elapsed(), result.as_ref().err().map(|f| f.0));
        result.map_err(|(_, notice)| notice)
    }

    /// TCP to `route.address` within `connect_timeout`, Nagle off.
    async fn connect_tcp(&self, route: &Route) -> Result<TcpStream, Failed> {
        let connecting = TcpStream::connect(&route.address);
        let reason = match tokio::time::timeout(self.config.connect_timeout, connecting).await {
            Ok(Ok(tcp)) => {
                let _ = tcp.set_nodelay(true);
                return Ok(tcp);
            }
            Ok(Err(e)) => describe_io(&e),
            Err(_) => "connection timed out".to_owned(),
        };
        Err(unreachable(route, reason))
    }
}

fn unreachable(route: &Route, reason: String) -> Failed {
    let notice = Notice::Unreachable {
        route: route.name.clone(),
        address: route.address.clone(),
        reason,
    };
    ("unreachable", notice)
}

/// `io::Error` → a short lower-case reason without the `(os error N)` suffix.
fn describe_io(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".into(),
        io::ErrorKind::TimedOut => "connection timed out".into(),
        io::ErrorKind::ConnectionReset => "connection reset".into(),
        _ => {
            let text = e.to_string();
            let text = text.split(" (os error").next().unwrap_or(&text);
            text.to_lowercase()
        }
    }
}
