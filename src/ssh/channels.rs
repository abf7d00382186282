//! Channels and global requests of an admitted client: sessions are relayed
//! to the box (or answered with a notice); a `direct-tcpip` to a route name
//! is a jump (raw TCP to that route's sshd), any other destination is
//! forwarded by the box; `tcpip-forward` (`-R`) is asked of the box.

use std::collections::HashMap;
use std::sync::Arc;

use russh::server::{ChannelOpenHandle, Handle, Msg, Session};
use russh::{Channel, ChannelId, ChannelOpenFailure};
use tracing::{Instrument, Span, debug, info};

use super::link::{BoxLink, SessionOpening};
use crate::access::{Access, Forward, Jump, Principal};
use crate::notice::Notice;
use crate::ops::Conn;
use crate::relay::meter::Metered;
use crate::relay::session::{Request, SessionRelay};
use crate::relay::tcpip;
use crate::routes::Route;
use crate::upstream::BoxLeg;

/// SSH_OPEN_CONNECT_FAILED: the reason code OpenSSH uses when a forward fails.
const OPEN_CONNECT_FAILED: u32 = 2;

/// An admitted connection's channels.
pub struct Channels {
    pub principal: Principal,
    link: BoxLink,
    access: Arc<Access>,
    boxes: Arc<BoxLeg>,
    conn: Arc<Conn>,
    span: Span,
    relays: HashMap<ChannelId, SessionRelay>,
}

/// A channel-open failure whose text the client shows (`-W`/`-J`).
fn failure(notice: &Notice) -> ChannelOpenFailure {
    ChannelOpenFailure::Other {
        code: OPEN_CONNECT_FAILED,
        reason: notice.to_string(),
    }
}

impl Channels {
    pub fn new(
        principal: Principal,
        link: BoxLink,
        access: Arc<Access>,
        boxes: Arc<BoxLeg>,
        conn: Arc<Conn>,
        span: Span,
    ) -> Self {
        Self {
            principal,
            link,
            access,
            boxes,
            conn,
            span,
            relays: HashMap::new(),
        }
    }

    /// The relay of an open session channel.
    pub fn relay(&self, id: ChannelId) -> Option<&SessionRelay> {
        self.relays.get(&id)
    }

    /// The client closed a session channel.
    pub async fn close(&mut self, id: ChannelId) {
        if let Some(relay) = self.relays.remove(&id) {
            relay.close().await;
        }
    }

    pub async fn open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        session: &mut Session,
    ) {
        let id = channel.id();
        let route = self.link.route_name().unwrap_or_default().to_owned();
        let (opening, answered_by_box) = match self.link.open_session(session.handle()).await {
            SessionOpening::Now(opened) => (Box::pin(std::future::ready(opened)) as _, true),
            SessionOpening::Later(opening) => (opening, false),
        };
        reply.accept().await;
        let relay = SessionRelay::start(
            channel,
            session.handle(),
            opening,
            answered_by_box,
            route,
            self.conn.clone(),
            &self.span,
        );
        self.relays.insert(id, relay);
    }

    #[allow(clippy::too_many_arguments)] // mirrors the russh callback
    pub async fn open_direct_tcpip(
        &mut self,
        channel: Channel<Msg>,
        host: &str,
        port: u32,
        originator_address: &str,
        originator_port: u32,
        reply: ChannelOpenHandle,
        session: &mut Session,
    ) {
        match self.principal.jump(&self.access.table(), host) {
            Jump::To(route) => return self.jump(channel, route, reply),
            // Not for this key: the same answer as any refused forward.
            Jump::Refused => {
                return reply
                    .reject(ChannelOpenFailure::AdministrativelyProhibited)
                    .await;
            }
            Jump::NotARoute => {}
        }
        if !self.principal.allows(Forward::Local) {
            debug!(parent: &self.span, host, port, "direct-tcpip refused by route policy");
            return reply
                .reject(ChannelOpenFailure::AdministrativelyProhibited)
                .await;
        }
        let up = match self.link.session_box(session.handle()).await {
            Ok(up) => up,
            Err(notice) => return reply.reject(failure(&notice)).await,
        };
        // The box opens the connection (as with a direct `ssh -L`); do it off
        // the connection's event loop, since the box may take a while.
        let (host, originator) = (host.to_owned(), originator_address.to_owned());
        let conn = self.conn.clone();
        let task = async move {
            let Some(handle) = up.handle() else { return };
            match handle
                .channel_open_direct_tcpip(host, port, originator, originator_port)
                .await
            {
                Ok(box_channel) => {
                    reply.accept().await;
                    let channel = Metered::new(channel.into_stream(), conn);
                    tcpip::splice(channel, box_channel.into_stream()).await;
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

    /// Jump mode: a raw TCP stream to the route's sshd; the SSH inside is
    /// end-to-end between the client and the box.
    fn jump(&self, channel: Channel<Msg>, route: Arc<Route>, reply: ChannelOpenHandle) {
        let (boxes, conn) = (self.boxes.clone(), self.conn.clone());
        let task = async move {
            let tcp = match boxes.dial(&route).await {
                Ok(tcp) => tcp,
                Err(notice) => return reply.reject(failure(&notice)).await,
            };
            info!(route = %route.name, "jump");
            reply.accept().await;
            tcpip::splice_jump(channel, tcp, conn).await;
        };
        tokio::spawn(task.instrument(self.span.clone()));
    }

    /// `tcpip-forward` (`-R`): the box listens; its reply (and allocated port) is passed back.
    pub async fn tcpip_forward(&mut self, address: &str, port: &mut u32, client: Handle) -> bool {
        if !self.principal.allows(Forward::Remote) {
            return false;
        }
        let Ok(up) = self.link.session_box(client).await else {
            return false;
        };
        let Some(handle) = up.handle() else {
            return false;
        };
        match handle.tcpip_forward(address, *port).await {
            Ok(allocated) => {
                if *port == 0 {
                    *port = allocated;
                }
                true
            }
            Err(e) => {
                debug!(parent: &self.span, error = %e, "box refused tcpip-forward");
                false
            }
        }
    }

    /// `cancel-tcpip-forward`: passed to the box.
    pub async fn cancel_tcpip_forward(&mut self, address: &str, port: u32, client: Handle) -> bool {
        if !self.principal.allows(Forward::Remote) {
            return false;
        }
        let Ok(up) = self.link.session_box(client).await else {
            return false;
        };
        let Some(handle) = up.handle() else {
            return false;
        };
        handle.cancel_tcpip_forward(address, port).await.is_ok()
    }

    /// `auth-agent-req@openssh.com` (`ssh -A`): in agent mode the login
    /// through the client's agent starts; in key mode it is asked of the box
    /// when the route allows agent forwarding, and the box's agent channels
    /// come back through the box leg.
    pub async fn agent_request(&mut self, channel: ChannelId, client: Handle) -> bool {
        if self.link.is_agent_mode() {
            self.link.agent_requested(client);
            return true;
        }
        if !self.principal.allows(Forward::Agent) {
            return false;
        }
        self.link.agent_requested(client);
        match self.relays.get(&channel) {
            Some(relay) => relay.request(Request::AgentForward).await,
            None => false,
        }
    }

    /// Forwards a channel request to the box and answers the client with the
    /// box's reply; on a notice channel, shell/exec/subsystem tell the notice.
    pub async fn forward_request(
        &mut self,
        channel: ChannelId,
        request: Request,
        session: &mut Session,
    ) -> Result<(), russh::Error> {
        if let Request::Shell | Request::Exec(_) | Request::Subsystem(_) = &request {
            self.link.session_started();
        }
        let ok = match self.relays.get(&channel) {
            Some(relay) => relay.request(request).await,
            None => false,
        };
        if ok {
            session.channel_success(channel)
        } else {
            session.channel_failure(channel)
        }
    }
}
