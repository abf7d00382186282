//! The russh client handler for one box connection: checks the box's host
//! key against the route's pin and policy, and carries channels the box opens
//! back to the client (`-R` forwarded-tcpip, agent forwarding into the box),
//! subject to the route's `forwarding`.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use russh::client::{ChannelOpenHandle, Handler, Msg, Session};
use russh::keys::{PublicKey, PublicKeyOrCertificate};
use russh::{Channel, ChannelOpenFailure, server};
use tracing::{Instrument, Span, debug, warn};

use crate::config::HostKeyPolicy;
use crate::ops::Conn;
use crate::relay::meter::Metered;
use crate::relay::tcpip;
use crate::routes::{Forwarding, Route};

/// What the box leg knows about the client it serves.
#[derive(Clone)]
pub struct ClientLink {
    /// The client connection, for opening channels back to it.
    pub handle: server::Handle,
    /// Set once the client asks for agent forwarding (`ssh -A`).
    pub agent: Arc<AtomicBool>,
    /// The client connection's record (byte accounting).
    pub conn: Arc<Conn>,
    /// The client connection's span.
    pub span: Span,
}

/// The handler for one box connection.
pub struct BoxHandler {
    route: String,
    pin: Option<PublicKey>,
    policy: HostKeyPolicy,
    /// The route's forwarding switches, for the channels the box opens.
    forwarding: Forwarding,
    client: Option<ClientLink>,
}

impl BoxHandler {
    pub(super) fn new(route: &Route, policy: HostKeyPolicy, client: Option<ClientLink>) -> Self {
        Self {
            route: route.name.clone(),
            pin: route.host_key.clone(),
            policy,
            forwarding: route.forwarding,
            client,
        }
    }
}

impl Handler for BoxHandler {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        server_key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let PublicKeyOrCertificate::PublicKey { key, .. } = server_key else {
            // Host certificates are not trusted (no CA configured).
            return Ok(false);
        };
        let ok = match (&self.pin, self.policy) {
            (Some(pin), _) => pin.key_data() == key.key_data(),
            (None, HostKeyPolicy::PinnedOrAccept) => true,
            (None, HostKeyPolicy::RequirePinned) => false,
        };
        if !ok {
            warn!(route = %self.route, presented = %key.fingerprint(Default::default()), "box host key rejected");
        }
        Ok(ok)
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
        let Some(client) = self.client.clone().filter(|_| self.forwarding.remote) else {
            reply
                .reject(ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        };
        let (address, originator) = (connected_address.to_owned(), originator_address.to_owned());
        let handle = client.handle.clone();
        let opening = async move {
            handle
                .channel_open_forwarded_tcpip(address, connected_port, originator, originator_port)
                .await
        };
        bridge(channel, reply, opening, client);
        Ok(())
    }

    async fn server_channel_open_agent_forward(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(client) = self
            .client
            .clone()
            .filter(|c| self.forwarding.agent && c.agent.load(Ordering::Acquire))
        else {
            reply
                .reject(ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        };
        let handle = client.handle.clone();
        bridge(
            channel,
            reply,
            async move { handle.channel_open_agent().await },
            client,
        );
        Ok(())
    }
}

/// Opens the matching channel to the client (off the box connection's event
/// loop: it waits on the client connection), then accepts the box's channel
/// and splices the two, or refuses it when the client refuses.
fn bridge(
    from_box: Channel<Msg>,
    reply: ChannelOpenHandle,
    opening: impl Future<Output = Result<Channel<server::Msg>, russh::Error>> + Send + 'static,
    client: ClientLink,
) {
    let ClientLink { conn, span, .. } = client;
    let task = async move {
        match opening.await {
            Ok(to_client) => {
                reply.accept().await;
                let to_client = Metered::new(to_client.into_stream(), conn);
                tcpip::splice(from_box.into_stream(), to_client).await;
            }
            Err(e) => {
                debug!(error = %e, "client refused a channel the box opened");
                reply.reject(ChannelOpenFailure::ConnectFailed).await;
            }
        }
    };
    tokio::spawn(task.instrument(span));
}
