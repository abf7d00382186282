//! The russh client handler for one box connection: checks the box's host
//! key against the route's pin, the policy and the keys seen before
//! ([`super::seen`]), and carries channels the box opens back to the client
//! (`-R` forwarded-tcpip; agent forwarding into the box only in key mode,
//! after the client's `ssh -A`), subject to the route's `forwarding`; each
//! is listed on the client's connection while open and logged as the audit
//! `channel_open`, allowed or refused.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use russh::client::{ChannelOpenHandle, Handler, Msg, Session};
use russh::keys::{HashAlg, PublicKey, PublicKeyOrCertificate};
use russh::{Channel, ChannelOpenFailure, server};
use tracing::{Instrument, Span, debug, warn};

use super::seen::{Seen, SeenKeys};
use crate::config::HostKeyPolicy;
use crate::ops::Conn;
use crate::ops::audit;
use crate::ops::channel::{ChannelKind, destination};
use crate::ops::conn::OpenChannel;
use crate::relay::flow::{self, Granter};
use crate::relay::meter::Metered;
use crate::relay::tcpip;
use crate::routes::{Forwarding, Route};

/// What the box leg knows about the client it serves.
#[derive(Clone)]
pub struct ClientLink {
    /// The client connection, for opening channels back to it.
    pub handle: server::Handle,
    /// Set once a key-mode client asks for agent forwarding (`ssh -A`);
    /// never in agent mode, where the client's agent is the gateway's login
    /// and no box may reach it.
    pub agent_forwarding: Arc<AtomicBool>,
    /// The client connection's record (byte accounting).
    pub conn: Arc<Conn>,
    /// The client connection's span.
    pub span: Span,
}

/// How the box's host key was judged; read by the login for its log line
/// and, when refused, for the notice.
#[derive(Debug, Clone)]
pub struct HostKeyVerdict {
    /// `SHA256:…` of the presented key (public information).
    pub fingerprint: String,
    pub trust: Trust,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// Matches the route's `host_key` pin.
    Pinned,
    /// No pin; first key from this backend, remembered from now on.
    FirstUse,
    /// No pin; the key this backend presented before.
    Known,
    /// Does not match the pin, or a pin is required and there is none.
    Mismatch,
    /// No pin; a different key than this backend presented before.
    Changed,
    /// A host certificate (no host CA is trusted).
    Certificate,
}

impl Trust {
    pub fn accepted(self) -> bool {
        matches!(self, Trust::Pinned | Trust::FirstUse | Trust::Known)
    }

    /// The word in the log line.
    pub fn label(self) -> &'static str {
        match self {
            Trust::Pinned => "pinned",
            Trust::FirstUse => "first-use",
            Trust::Known => "known",
            Trust::Mismatch => "mismatch",
            Trust::Changed => "changed",
            Trust::Certificate => "certificate",
        }
    }
}

/// The handler for one box connection.
pub struct BoxHandler {
    route: String,
    address: String,
    pin: Option<PublicKey>,
    policy: HostKeyPolicy,
    seen: Arc<SeenKeys>,
    verdict: Arc<OnceLock<HostKeyVerdict>>,
    /// The route's forwarding switches, for the channels the box opens.
    forwarding: Forwarding,
    client: Option<ClientLink>,
}

impl BoxHandler {
    pub(super) fn new(
        route: &Route,
        policy: HostKeyPolicy,
        seen: Arc<SeenKeys>,
        verdict: Arc<OnceLock<HostKeyVerdict>>,
        client: Option<ClientLink>,
    ) -> Self {
        Self {
            route: route.name.clone(),
            address: route.address.clone(),
            pin: route.host_key.clone(),
            policy,
            seen,
            verdict,
            forwarding: route.forwarding,
            client,
        }
    }

    fn judge(&self, key: &PublicKey) -> Trust {
        match (&self.pin, self.policy) {
            (Some(pin), _) if pin.key_data() == key.key_data() => Trust::Pinned,
            (Some(_), _) | (None, HostKeyPolicy::RequirePinned) => Trust::Mismatch,
            (None, HostKeyPolicy::PinnedOrAccept) => {
                match self.seen.check(&self.route, &self.address, key) {
                    Seen::First => Trust::FirstUse,
                    Seen::Known => Trust::Known,
                    Seen::Changed => Trust::Changed,
                }
            }
        }
    }
}

impl Handler for BoxHandler {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        server_key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let (trust, key) = match server_key {
            PublicKeyOrCertificate::PublicKey { key, .. } => (self.judge(key), key.key_data()),
            PublicKeyOrCertificate::Certificate(cert) => (Trust::Certificate, cert.public_key()),
        };
        let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
        if !trust.accepted() {
            warn!(route = %self.route, address = %self.address, presented = %fingerprint,
                trust = trust.label(), "box host key rejected");
        }
        let _ = self.verdict.set(HostKeyVerdict { fingerprint, trust });
        Ok(trust.accepted())
    }

    async fn server_channel_open_forwarded_tcpip(
        &mut self,
        channel: Channel<Msg>,
        connected_address: &str,
        connected_port: u32,
        originator_address: &str,
        originator_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        let to = destination(connected_address, connected_port);
        let kind = (ChannelKind::ForwardedTcpip, Some(to));
        let Some(client) = self.client.clone() else {
            return refuse(reply, None, kind, "no_client").await;
        };
        if !self.forwarding.remote {
            return refuse(reply, Some(&client.conn), kind, "forwarding_disabled").await;
        }
        let (address, originator) = (connected_address.to_owned(), originator_address.to_owned());
        let handle = client.handle.clone();
        let opening = async move {
            handle
                .channel_open_forwarded_tcpip(address, connected_port, originator, originator_port)
                .await
        };
        bridge(channel, reply, opening, client, kind);
        Ok(())
    }

    async fn server_channel_open_agent_forward(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        let kind = (ChannelKind::Agent, None);
        let Some(client) = self.client.clone() else {
            return refuse(reply, None, kind, "no_client").await;
        };
        if !self.forwarding.agent {
            return refuse(reply, Some(&client.conn), kind, "forwarding_disabled").await;
        }
        if !client.agent_forwarding.load(Ordering::Acquire) {
            return refuse(reply, Some(&client.conn), kind, "not_requested").await;
        }
        let handle = client.handle.clone();
        bridge(
            channel,
            reply,
            async move { handle.channel_open_agent().await },
            client,
            kind,
        );
        Ok(())
    }
}

/// A channel of `kind` (to its destination) the box opened and the gateway
/// refuses: logged on the client's connection, when there is one.
async fn refuse(
    reply: ChannelOpenHandle,
    conn: Option<&Conn>,
    (kind, to): (ChannelKind, Option<String>),
    reason: &'static str,
) -> Result<(), russh::Error> {
    if let Some(conn) = conn {
        audit::stream_open(conn, kind, to.as_deref(), Err(reason));
    }
    reply
        .reject(ChannelOpenFailure::AdministrativelyProhibited)
        .await;
    Ok(())
}

/// Opens the matching channel to the client (off the box connection's event
/// loop: it waits on the client connection), then accepts the box's channel
/// and splices the two, listed on the client's connection while open; or
/// refuses it when the client refuses.
fn bridge(
    from_box: Channel<Msg>,
    reply: ChannelOpenHandle,
    opening: impl Future<Output = Result<Channel<server::Msg>, russh::Error>> + Send + 'static,
    client: ClientLink,
    (kind, to): (ChannelKind, Option<String>),
) {
    let ClientLink { conn, span, .. } = client;
    let task = async move {
        match opening.await {
            Ok(to_client) => {
                let _listed = OpenChannel::new(&conn, kind, to.clone());
                audit::stream_open(&conn, kind, to.as_deref(), Ok(()));
                reply.accept().await;
                let to_client = flow::stream(to_client, Granter::ClientHalf);
                let from_box = flow::stream(from_box, Granter::BoxHalf);
                tcpip::splice(from_box, Metered::new(to_client, conn.clone())).await;
            }
            Err(e) => {
                debug!(error = %e, "client refused a channel the box opened");
                audit::stream_open(&conn, kind, to.as_deref(), Err("client_refused"));
                reply.reject(ChannelOpenFailure::ConnectFailed).await;
            }
        }
    };
    tokio::spawn(task.instrument(span));
}
