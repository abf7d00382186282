//! The SSH login to a box: handshake with the host key checked
//! ([`super::back::BoxHandler`]), then the login with the route's identity
//! or through the client's forwarded agent ([`super::agent`]), all within
//! `handshake_timeout` (counted from the TCP connect). Every login logs the
//! box's host key fingerprint and how it was trusted.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use russh::client;
use russh::keys::{HashAlg, PrivateKeyWithHashAlg};
use tracing::{debug, info};

use super::agent::TimedAgent;
use super::back::{BoxHandler, ClientLink, HostKeyVerdict, Trust};
use super::{AgentKeys, BoxLeg, Failed, Login, describe_io, unreachable};
use crate::notice::Notice;
use crate::routes::Route;

/// A logged-in SSH connection to one box; disconnects when dropped.
pub struct BoxSession {
    /// Always `Some` until dropped (taken by `Drop` to disconnect).
    handle: Option<client::Handle<BoxHandler>>,
}

impl BoxSession {
    /// The russh handle, for opening channels on the box.
    pub fn handle(&self) -> Option<&client::Handle<BoxHandler>> {
        self.handle.as_ref()
    }

    /// True once the connection to the box has ended.
    pub fn is_closed(&self) -> bool {
        self.handle.as_ref().is_none_or(|h| h.is_closed())
    }

    /// Opens a session channel on the box.
    pub async fn open_session(&self) -> Result<russh::Channel<client::Msg>, russh::Error> {
        match &self.handle {
            Some(handle) => handle.channel_open_session().await,
            None => Err(russh::Error::SendError),
        }
    }
}

impl Drop for BoxSession {
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

/// TCP, handshake and login, each failure with its metrics label.
pub(super) async fn connect(
    leg: &BoxLeg,
    route: &Route,
    user: &str,
    client: Option<ClientLink>,
    login: Login,
) -> Result<BoxSession, Failed> {
    let started = Instant::now();
    if matches!(login, Login::Identity) && route.identity.is_none() {
        let notice = Notice::NoIdentity {
            route: route.name.clone(),
        };
        return Err(("no_identity", notice));
    }
    let tcp = leg.connect_tcp(route).await?;
    let remaining = leg
        .config
        .handshake_timeout
        .saturating_sub(started.elapsed());
    let verdict = Arc::new(OnceLock::new());
    let policy = leg.config.host_key_policy;
    let handler = BoxHandler::new(route, policy, leg.seen.clone(), verdict.clone(), client);
    let login = async {
        let mut handle = client::connect_stream(leg.settings.clone(), tcp, handler).await?;
        let hash = handle.best_supported_rsa_hash().await?.flatten();
        let success = match (login, &route.identity) {
            (Login::Identity, Some(identity)) => {
                let key = PrivateKeyWithHashAlg::new(identity.clone(), hash);
                handle.authenticate_publickey(user, key).await?.success()
            }
            (Login::Identity, None) => false,
            (Login::Agent(keys), _) => login_with_agent(&mut handle, user, *keys, hash).await,
        };
        Ok::<_, russh::Error>((handle, success))
    };
    let name = || route.name.clone();
    match tokio::time::timeout(remaining, login).await {
        Err(_) => Err((
            "timeout",
            Notice::HandshakeTimeout {
                route: name(),
                address: route.address.clone(),
            },
        )),
        Ok(Ok((handle, true))) => {
            let seen = verdict.get();
            info!(
                route = %route.name,
                host_key = seen.map_or("", |v| v.fingerprint.as_str()),
                host_key_trust = seen.map_or("", |v| v.trust.label()),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "logged in to box"
            );
            Ok(BoxSession {
                handle: Some(handle),
            })
        }
        Ok(Ok((_, false))) => {
            let seen = verdict.get();
            info!(
                route = %route.name,
                host_key = seen.map_or("", |v| v.fingerprint.as_str()),
                host_key_trust = seen.map_or("", |v| v.trust.label()),
                "box refused the login"
            );
            Err((
                "login_refused",
                Notice::LoginRefused {
                    route: name(),
                    user: user.to_owned(),
                },
            ))
        }
        Ok(Err(russh::Error::UnknownKey)) => Err(host_key_refused(verdict.get(), name())),
        Ok(Err(e)) => Err(unreachable(route, describe_ssh(&e))),
    }
}

/// The failure for a refused host key: changed since first use, or not the pin.
fn host_key_refused(verdict: Option<&HostKeyVerdict>, route: String) -> Failed {
    match verdict.map(|v| v.trust) {
        Some(Trust::Changed) => ("host_key_changed", Notice::HostKeyChanged { route }),
        _ => ("host_key", Notice::HostKeyMismatch { route }),
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

/// Offers each key the client's agent listed until the box accepts one.
async fn login_with_agent(
    handle: &mut client::Handle<BoxHandler>,
    user: &str,
    keys: AgentKeys,
    hash: Option<HashAlg>,
) -> bool {
    let AgentKeys {
        mut agent,
        identities,
        timeout,
    } = keys;
    let mut signer = TimedAgent {
        agent: &mut agent,
        timeout,
        deadline: None,
    };
    for identity in identities {
        let key = identity.public_key().into_owned();
        match handle
            .authenticate_publickey_with(user, key, hash, &mut signer)
            .await
        {
            Ok(result) if result.success() => return true,
            Ok(_) => continue,
            Err(e) => {
                debug!(error = %e, "agent signing failed");
                return false;
            }
        }
    }
    false
}
