//! The leg to the box: TCP connect, SSH handshake with the box's host key
//! checked against the route's pin, and login with the route's identity —
//! all under `connect_timeout` / `handshake_timeout`.

use std::io;
use std::sync::Arc;
use std::time::Instant;

use russh::client;
use russh::keys::agent::client::AgentClient;
use russh::keys::{HashAlg, PrivateKeyWithHashAlg};
use tokio::net::TcpStream;
use tracing::debug;

use super::box_handler::{BoxHandler, ClientLink};
use super::messages::Notice;
use crate::config::UpstreamConfig;
use crate::ops::metrics;
use crate::routes::Route;

/// A logged-in SSH connection to one box.
pub struct Upstream {
    /// Always `Some` until dropped (taken by `Drop` to disconnect).
    handle: Option<client::Handle<BoxHandler>>,
}

impl Upstream {
    /// The russh handle, for opening channels on the box.
    pub fn handle(&self) -> Option<&client::Handle<BoxHandler>> {
        self.handle.as_ref()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        // Dropping the handle ends the box's session loop; say goodbye politely.
        let Some(handle) = self.handle.take() else {
            return;
        };
        tokio::spawn(async move {
            let _ = handle
                .disconnect(
                    russh::Disconnect::ByApplication,
                    "client disconnected",
                    "en",
                )
                .await;
        });
    }
}

/// The agent the client forwarded (`ssh -A`), reached over a channel to it.
pub type ClientAgent = AgentClient<russh::ChannelStream<russh::server::Msg>>;

/// How the gateway logs in to the box.
pub enum Login {
    /// Key mode: the route's `identity_file`.
    Identity,
    /// Agent mode: the keys in the client's forwarded agent; the box's own
    /// `authorized_keys` decides.
    Agent(Box<ClientAgent>),
}

/// Connects and logs in to `route` as `user`; the attempt is timed and any
/// failure counted in the metrics.
pub async fn connect(
    settings: &Arc<client::Config>,
    upstream: &UpstreamConfig,
    route: &Route,
    user: &str,
    client: Option<ClientLink>,
    login: Login,
) -> Result<Upstream, Notice> {
    let started = Instant::now();
    let result = connect_and_login(settings, upstream, route, user, client, login).await;
    let failure = result.as_ref().err().map(failure_reason);
    metrics::get().upstream(started.elapsed(), failure);
    result
}

/// A bounded metrics label for a failed upstream login.
fn failure_reason(notice: &Notice) -> &'static str {
    match notice {
        Notice::Unreachable { .. } => "unreachable",
        Notice::HandshakeTimeout { .. } => "timeout",
        Notice::LoginRefused { .. } => "login_refused",
        Notice::HostKeyMismatch { .. } => "host_key",
        Notice::NoIdentity { .. } => "no_identity",
        Notice::Stopped { .. }
        | Notice::NoUser { .. }
        | Notice::NeedAgent { .. }
        | Notice::JumpOnly
        | Notice::ChooseRoute { .. } => "other",
    }
}

async fn connect_and_login(
    settings: &Arc<client::Config>,
    upstream: &UpstreamConfig,
    route: &Route,
    user: &str,
    client: Option<ClientLink>,
    login: Login,
) -> Result<Upstream, Notice> {
    let started = Instant::now();
    let unreachable = |reason: String| Notice::Unreachable {
        route: route.name.clone(),
        address: route.address.clone(),
        reason,
    };
    if matches!(login, Login::Identity) && route.identity.is_none() {
        return Err(Notice::NoIdentity {
            route: route.name.clone(),
        });
    }

    let tcp =
        match tokio::time::timeout(upstream.connect_timeout, TcpStream::connect(&route.address))
            .await
        {
            Err(_) => return Err(unreachable("connection timed out".into())),
            Ok(Err(e)) => return Err(unreachable(describe_io(&e))),
            Ok(Ok(tcp)) => tcp,
        };
    let _ = tcp.set_nodelay(true);

    let remaining = upstream.handshake_timeout.saturating_sub(started.elapsed());
    let handler = BoxHandler {
        route: route.name.clone(),
        pin: route.host_key.clone(),
        policy: upstream.host_key_policy,
        client,
    };
    let login = async {
        let mut handle = client::connect_stream(settings.clone(), tcp, handler).await?;
        let hash = handle.best_supported_rsa_hash().await?.flatten();
        let success = match (login, &route.identity) {
            (Login::Identity, Some(identity)) => {
                let key = PrivateKeyWithHashAlg::new(identity.clone(), hash);
                handle.authenticate_publickey(user, key).await?.success()
            }
            (Login::Identity, None) => false,
            (Login::Agent(mut agent), _) => {
                login_with_agent(&mut handle, user, &mut agent, hash).await
            }
        };
        Ok::<_, russh::Error>((handle, success))
    };
    match tokio::time::timeout(remaining, login).await {
        Err(_) => Err(Notice::HandshakeTimeout {
            route: route.name.clone(),
            address: route.address.clone(),
        }),
        Ok(Ok((handle, true))) => {
            debug!(
                elapsed_ms = started.elapsed().as_millis() as u64,
                "logged in to box"
            );
            Ok(Upstream {
                handle: Some(handle),
            })
        }
        Ok(Ok((_, false))) => Err(Notice::LoginRefused {
            route: route.name.clone(),
            user: user.to_owned(),
        }),
        Ok(Err(russh::Error::UnknownKey)) => Err(Notice::HostKeyMismatch {
            route: route.name.clone(),
        }),
        Ok(Err(e)) => Err(unreachable(describe_ssh(&e))),
    }
}

/// `io::Error` → a short lower-case reason without the `(os error N)` suffix.
pub(crate) fn describe_io(e: &io::Error) -> String {
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

fn describe_ssh(e: &russh::Error) -> String {
    match e {
        russh::Error::IO(io) => describe_io(io),
        russh::Error::Disconnect | russh::Error::HUP => {
            "the box closed the connection during the handshake".into()
        }
        other => format!("SSH handshake failed ({other})"),
    }
}

/// Offers each key in the client's agent until the box accepts one.
async fn login_with_agent(
    handle: &mut client::Handle<BoxHandler>,
    user: &str,
    agent: &mut ClientAgent,
    hash: Option<HashAlg>,
) -> bool {
    let identities = match agent.request_identities().await {
        Ok(ids) => ids,
        Err(e) => {
            debug!(error = %e, "client agent did not list its keys");
            return false;
        }
    };
    for identity in identities {
        let key = identity.public_key().into_owned();
        match handle
            .authenticate_publickey_with(user, key, hash, agent)
            .await
        {
            Ok(result) if result.success() => return true,
            Ok(_) => continue,
            Err(e) => {
                debug!(error = ?e, "agent signing failed");
                return false;
            }
        }
    }
    false
}
