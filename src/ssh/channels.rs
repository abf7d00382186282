//! Channels the client opens: sessions are relayed to the box (or answered
//! by the gateway with a notice), `direct-tcpip` is forwarded by the box.

use russh::server::{ChannelOpenHandle, Msg, Session};
use russh::{Channel, ChannelId, ChannelOpenFailure, ChannelWriteHalf};
use tracing::{Instrument, debug};

use super::handler::ClientHandler;
use super::login::State;
use super::messages::Notice;
use super::upstream::Upstream;
use crate::relay::session::{Request, SessionRelay};
use crate::relay::{notice, tcpip};

/// A session channel on this connection.
pub enum Slot {
    /// Relayed to the box.
    Relay(SessionRelay),
    /// Answered by the gateway: `notice` is told when the client starts a
    /// shell, a command or a subsystem.
    Local { to_client: Option<ChannelWriteHalf<Msg>>, pty: bool, notice: Notice },
}

/// SSH_OPEN_CONNECT_FAILED: the reason code OpenSSH uses when a forward fails.
const OPEN_CONNECT_FAILED: u32 = 2;

impl ClientHandler {
    pub(super) async fn open_session(&mut self, channel: Channel<Msg>, reply: ChannelOpenHandle, session: &mut Session) {
        let id = channel.id();
        let slot = match self.upstream().await {
            Ok(up) => match open_box_session(&up).await {
                Ok(box_channel) => {
                    reply.accept().await;
                    Slot::Relay(SessionRelay::start(channel, box_channel, session.handle(), &self.span))
                }
                Err(e) => {
                    debug!(parent: &self.span, error = %e, "box refused a session channel");
                    reply.accept().await;
                    Slot::Local { to_client: Some(channel.split().1), pty: false, notice: self.lost() }
                }
            },
            Err(notice) => {
                reply.accept().await;
                Slot::Local { to_client: Some(channel.split().1), pty: false, notice }
            }
        };
        self.channels.insert(id, slot);
    }

    /// The notice for a box connection that went away after login.
    fn lost(&self) -> Notice {
        match &self.state {
            State::Relay { route, .. } => Notice::Unreachable {
                route: route.name.clone(),
                address: route.address.clone(),
                reason: "the connection to the box was lost".into(),
            },
            State::Notice(n) => n.clone(),
            State::Unauthenticated => Notice::NoIdentity { route: String::new() },
        }
    }

    pub(super) async fn open_direct_tcpip(
        &mut self,
        channel: Channel<Msg>,
        host: &str,
        port: u32,
        originator_address: &str,
        originator_port: u32,
        reply: ChannelOpenHandle,
    ) {
        let allowed = match &self.state {
            State::Relay { route, .. } => route.forwarding.local,
            State::Notice(_) | State::Unauthenticated => true, // told below
        };
        if !allowed {
            debug!(parent: &self.span, host, port, "direct-tcpip refused by route policy");
            return reply.reject(ChannelOpenFailure::AdministrativelyProhibited).await;
        }
        let up = match self.upstream().await {
            Ok(up) => up,
            Err(notice) => {
                let failure = ChannelOpenFailure::Other { code: OPEN_CONNECT_FAILED, reason: notice.to_string() };
                return reply.reject(failure).await;
            }
        };
        // The box opens the connection (as with a direct `ssh -L`); do it off
        // the connection's event loop, since the box may take a while.
        let (host, originator) = (host.to_owned(), originator_address.to_owned());
        let task = async move {
            let Some(handle) = up.handle() else { return };
            match handle.channel_open_direct_tcpip(host, port, originator, originator_port).await {
                Ok(box_channel) => {
                    reply.accept().await;
                    tcpip::splice(channel.into_stream(), box_channel.into_stream()).await;
                    drop(up);
                }
                Err(russh::Error::ChannelOpenFailure(failure)) => reply.reject(failure).await,
                Err(e) => {
                    debug!(error = %e, "direct-tcpip to the box failed");
                    reply.reject(ChannelOpenFailure::ConnectFailed).await;
                }
            }
        };
        tokio::spawn(task.instrument(self.span.clone()));
    }

    /// Forwards a channel request to the box and answers the client with the
    /// box's reply; on a notice channel, shell/exec/subsystem tell the notice.
    pub(super) async fn forward_request(
        &mut self,
        channel: ChannelId,
        request: Request,
        session: &mut Session,
    ) -> Result<(), russh::Error> {
        let ok = match self.channels.get_mut(&channel) {
            Some(Slot::Relay(relay)) => relay.request(request).await,
            Some(Slot::Local { to_client, pty, notice }) => match request {
                Request::Pty { .. } => {
                    *pty = true;
                    true
                }
                Request::Env { .. } | Request::AgentForward => true,
                Request::Shell | Request::Exec(_) | Request::Subsystem(_) => {
                    if let Some(to_client) = to_client.take() {
                        let text = notice.to_string();
                        tokio::spawn(notice::tell(to_client, text, *pty));
                    }
                    true
                }
            },
            None => false,
        };
        if ok { session.channel_success(channel) } else { session.channel_failure(channel) }
    }
}

async fn open_box_session(up: &Upstream) -> Result<Channel<russh::client::Msg>, russh::Error> {
    match up.handle() {
        Some(handle) => handle.channel_open_session().await,
        None => Err(russh::Error::SendError),
    }
}
