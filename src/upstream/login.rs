//! The SSH login to a box: handshake with the host key checked
//! ([`super::back::BoxHandler`]), then the login with the route's identity,
//! a certificate minted for this login ([`super::user_ca`]), or through the
//! client's forwarded agent ([`super::agent`]), all within
//! `handshake_timeout` (counted from the TCP connect). Every login logs the
//! box's host key fingerprint and how it was trusted.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use russh::client;
use russh::keys::{HashAlg, PrivateKey, PrivateKeyWithHashAlg};
use tracing::{debug, info, warn};

use super::agent::TimedAgent;
use super::back::{self, BoxHandler, ClientLink, HostKeyVerdict, Trust};
use super::user_ca::{MintFor, Minted};
use super::{AgentKeys, BoxLeg, Failed, Login, describe_io, unreachable};
use crate::notice::Notice;
use crate::routes::{LoginMethod, Route};

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
    let credential = match login {
        Login::Identity => Credential::of(leg, route, user, client.as_ref())?,
        Login::Agent(keys) => Credential::Agent(keys),
    };
    let tcp = leg.connect_tcp(route).await?;
    let remaining = leg
        .config
        .handshake_timeout
        .saturating_sub(started.elapsed());
    let verdict = Arc::new(OnceLock::new());
    let policy = leg.config.host_key_policy;
    let host_cas = back::host_cas(route, &leg.host_cas);
    let settings = if host_cas.is_empty() {
        leg.settings.clone()
    } else {
        leg.cert_settings.clone()
    };
    let seen = leg.seen.clone();
    let handler = BoxHandler::new(route, policy, seen, verdict.clone(), client, host_cas);
    let login = async {
        let mut handle = client::connect_stream(settings, tcp, handler).await?;
        let success = credential.log_in(&mut handle, user).await?;
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

/// What the gateway logs in to the box with.
enum Credential {
    /// The route's identity key.
    Key(Arc<PrivateKey>),
    /// A key and certificate minted for this login (boxed: a certificate
    /// is large, and this enum lives in the login's future).
    Certificate(Box<Minted>),
    /// The client's forwarded agent.
    Agent(Box<AgentKeys>),
}

impl Credential {
    /// Key mode's credential for `route`: its identity, or (`login =
    /// "certificate"`) a certificate minted now for `user`, its key ID
    /// naming the route, the client's key and the connection.
    fn of(
        leg: &BoxLeg,
        route: &Route,
        user: &str,
        client: Option<&ClientLink>,
    ) -> Result<Self, Failed> {
        let none = || {
            let notice = Notice::NoIdentity {
                route: route.name.clone(),
            };
            ("no_identity", notice)
        };
        match route.login {
            LoginMethod::Key => route.identity.clone().map(Credential::Key).ok_or_else(none),
            // Route sources skip such routes on a gateway without a user CA.
            LoginMethod::Certificate => {
                // Every box trusts the CA, so the typed username must not
                // choose the principal: a certificate route logs in only as
                // its own `user` (`root@alice-ws@gw` is refused, not minted).
                if route.user.as_deref() != Some(user) {
                    let notice = Notice::LoginRefused {
                        route: route.name.clone(),
                        user: user.to_owned(),
                    };
                    return Err(("login_refused", notice));
                }
                let ca = leg.user_ca.as_ref().ok_or_else(none)?;
                let key_id = key_id(route, client);
                let forwarding = route.forwarding;
                let what = MintFor {
                    user,
                    route: &route.name,
                    key_id,
                    forwarding,
                };
                let minted = ca.mint(what).map_err(|e| {
                    warn!(route = %route.name, error = %e, "cannot mint a login certificate");
                    none()
                })?;
                info!(
                    route = %route.name,
                    serial = minted.cert.serial(),
                    key_id = minted.cert.key_id(),
                    valid_before = minted.cert.valid_before(),
                    "minted a login certificate"
                );
                Ok(Credential::Certificate(Box::new(minted)))
            }
        }
    }
}

impl Credential {
    /// Authenticates as `user` on the box; `false` when the box refuses.
    async fn log_in(
        self,
        handle: &mut client::Handle<BoxHandler>,
        user: &str,
    ) -> Result<bool, russh::Error> {
        let hash = handle.best_supported_rsa_hash().await?.flatten();
        Ok(match self {
            Credential::Key(identity) => {
                let key = PrivateKeyWithHashAlg::new(identity, hash);
                handle.authenticate_publickey(user, key).await?.success()
            }
            Credential::Certificate(minted) => {
                let Minted { key, cert } = *minted;
                handle
                    .authenticate_openssh_cert(user, key, cert)
                    .await?
                    .success()
            }
            Credential::Agent(keys) => login_with_agent(handle, user, *keys, hash).await,
        })
    }
}

/// `switchboard route=<name> key=<client key SHA256:…> conn=<session id>`:
/// what the box's sshd logs as the certificate's ID, so its log names who
/// came in through which route.
fn key_id(route: &Route, client: Option<&ClientLink>) -> String {
    let (key, conn) = match client {
        Some(link) => (link.conn.identity().key_fp, link.conn.id().to_owned()),
        None => (None, "-".to_owned()),
    };
    format!(
        "switchboard route={} key={} conn={conn}",
        route.name,
        key.as_deref().unwrap_or("-")
    )
}

/// The failure for a refused host key: changed since first use, not the
/// pin, or not certified by the box's host CAs.
fn host_key_refused(verdict: Option<&HostKeyVerdict>, route: String) -> Failed {
    match verdict.map(|v| v.trust) {
        Some(Trust::Changed) => ("host_key_changed", Notice::HostKeyChanged { route }),
        Some(Trust::Certificate | Trust::NotCertified) => {
            ("host_key", Notice::HostKeyUntrusted { route })
        }
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
