//! The russh client handler for one box connection: checks the box's host
//! key against the route's pin, the policy and the keys seen before
//! ([`super::seen`]) — or, where host CAs are trusted for the box, its host
//! certificate ([`judge_certificate`]) — and carries channels the box opens
//! back to the client (`-R` forwarded-tcpip; agent forwarding into the box
//! only in key mode, after the client's `ssh -A`), subject to the route's
//! `forwarding`; each is listed on the client's connection while open and
//! logged as the audit `channel_open`, allowed or refused.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use russh::client::{ChannelOpenHandle, Handler, Msg, Session};
use russh::keys::ssh_key::certificate::CertType;
use russh::keys::{Certificate, HashAlg, PublicKey, PublicKeyOrCertificate};
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
    /// A host certificate that is refused: no host CA is trusted for this
    /// box, or none of them signed it, or it is not valid now, or it names
    /// neither this box's address host nor its route.
    Certificate,
    /// A host certificate signed by a trusted host CA, valid now, naming
    /// this box.
    HostCa,
    /// Host CAs are trusted for this box, and it presented a plain key.
    NotCertified,
}

impl Trust {
    pub fn accepted(self) -> bool {
        matches!(
            self,
            Trust::Pinned | Trust::FirstUse | Trust::Known | Trust::HostCa
        )
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
            Trust::HostCa => "host-ca",
            Trust::NotCertified => "not-certified",
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
    /// The host CAs trusted for this box ([`host_cas`]); when any is, only
    /// a host certificate signed by one of them is accepted.
    host_cas: Vec<PublicKey>,
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
        host_cas: Vec<PublicKey>,
    ) -> Self {
        Self {
            route: route.name.clone(),
            address: route.address.clone(),
            pin: route.host_key.clone(),
            policy,
            seen,
            verdict,
            host_cas,
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
        let (trust, key, why) = match server_key {
            PublicKeyOrCertificate::PublicKey { key, .. } if !self.host_cas.is_empty() => (
                Trust::NotCertified,
                key.key_data(),
                "a plain key, where a host certificate is required",
            ),
            PublicKeyOrCertificate::PublicKey { key, .. } => (self.judge(key), key.key_data(), ""),
            PublicKeyOrCertificate::Certificate(cert) => {
                match judge_certificate(cert, &self.host_cas, &self.route, &self.address) {
                    Ok(()) => (Trust::HostCa, cert.public_key(), ""),
                    Err(why) => (Trust::Certificate, cert.public_key(), why),
                }
            }
        };
        let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
        if !trust.accepted() {
            warn!(route = %self.route, address = %self.address, presented = %fingerprint,
                trust = trust.label(), why, "box host key rejected");
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

/// The host CAs trusted for `route`'s box: its own `trusted_host_cas`, else
/// none when it pins a `host_key` (the pin decides), else `global`
/// (`[upstream] trusted_host_cas`).
pub(super) fn host_cas(route: &Route, global: &[PublicKey]) -> Vec<PublicKey> {
    if !route.trusted_host_cas.is_empty() {
        route.trusted_host_cas.clone()
    } else if route.host_key.is_some() {
        Vec::new()
    } else {
        global.to_vec()
    }
}

/// Accepts a box's host certificate when it is of host type, signed by one
/// of `cas`, valid now, without critical options, and names the box: one
/// of its principals is the host of the route's `address` or the route's
/// name (an empty principal list names nobody, unlike OpenSSH's "any
/// host"). The error is why, for the log.
fn judge_certificate(
    cert: &Certificate,
    cas: &[PublicKey],
    route: &str,
    address: &str,
) -> Result<(), &'static str> {
    if cas.is_empty() {
        return Err("a host certificate, and no host CA is trusted for this box");
    }
    if cert.cert_type() != CertType::Host {
        return Err("a user certificate, not a host certificate");
    }
    let Some(ca) = cas.iter().find(|ca| ca.key_data() == cert.signature_key()) else {
        return Err("a host certificate signed by a CA that is not trusted for this box");
    };
    let fingerprint = ca.fingerprint(HashAlg::Sha256);
    if cert.validate([&fingerprint]).is_err() || crate::routes::trust::sha1_signed(cert) {
        return Err("a host certificate that is expired, not yet valid, or badly signed");
    }
    if !cert.critical_options().is_empty() {
        return Err("a host certificate with critical options");
    }
    let host = address_host(address);
    if !cert
        .valid_principals()
        .iter()
        .any(|p| p == host || p == route)
    {
        return Err("a host certificate that names neither the box's address nor its route");
    }
    Ok(())
}

/// The host part of `host:port` or `[v6]:port`.
fn address_host(address: &str) -> &str {
    let host = address.rsplit_once(':').map_or(address, |(h, _)| h);
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
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

#[cfg(test)]
mod tests {
    use super::*;
    use russh::keys::PrivateKey;
    use russh::keys::ssh_key::certificate::Builder;
    use russh::keys::ssh_key::private::Ed25519Keypair;
    use std::time::{SystemTime, UNIX_EPOCH};

    fn key(n: u8) -> PrivateKey {
        PrivateKey::from(Ed25519Keypair::from_seed(&[n; 32]))
    }

    fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }

    /// A certificate for key 1 signed by key `ca`.
    fn cert(ca: u8, kind: CertType, principals: &[&str], from: u64, to: u64) -> Certificate {
        let subject = key(1).public_key().key_data().clone();
        let mut b = Builder::new([0u8; 16].to_vec(), subject, from, to).expect("builder");
        b.cert_type(kind).expect("type");
        for p in principals {
            b.valid_principal(*p).expect("principal");
        }
        if principals.is_empty() {
            b.all_principals_valid().expect("any");
        }
        b.sign(&key(ca)).expect("signs")
    }

    #[test]
    fn host_certificates_are_judged_by_ca_type_time_and_principal() {
        let cas = [key(9).public_key().clone()];
        let (t, judge) = (now(), |c: &Certificate| {
            judge_certificate(c, &cas, "alice-ws", "10.0.3.7:22")
        });
        let ok = |p: &[&str]| cert(9, CertType::Host, p, t - 60, t + 600);
        assert_eq!(judge(&ok(&["10.0.3.7"])), Ok(()));
        assert_eq!(judge(&ok(&["x", "alice-ws"])), Ok(()));
        let refused = [
            ok(&["10.0.3.8", "bob-ws"]),
            ok(&[]),
            cert(8, CertType::Host, &["alice-ws"], t - 60, t + 600),
            cert(9, CertType::User, &["alice-ws"], t - 60, t + 600),
            cert(9, CertType::Host, &["alice-ws"], t - 600, t - 60),
            cert(9, CertType::Host, &["alice-ws"], t + 60, t + 600),
        ];
        for c in &refused {
            assert!(judge(c).is_err(), "{c:?}");
        }
        assert!(judge_certificate(&ok(&["alice-ws"]), &[], "alice-ws", "h:22").is_err());
    }

    #[test]
    fn address_hosts() {
        assert_eq!(address_host("10.0.3.7:22"), "10.0.3.7");
        assert_eq!(address_host("box.example.com:2222"), "box.example.com");
        assert_eq!(address_host("[fe80::1]:22"), "fe80::1");
    }
}
