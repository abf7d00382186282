//! Channels and global requests from the client: sessions are relayed to the
//! box (or answered by the gateway with a notice); `direct-tcpip` to a route
//! name is a jump (raw TCP to that route's sshd), any other destination is
//! forwarded by the box; `tcpip-forward` (`-R`) is asked of the box.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use russh::server::{ChannelOpenHandle, Msg, Session};
use russh::{Channel, ChannelId, ChannelOpenFailure};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tracing::{Instrument, debug, info};

use super::Context;
use super::box_handler::ClientLink;
use super::handler::ClientHandler;
use super::login::{AgentLogin, State};
use super::messages::Notice;
use super::upstream::{self, Login, Upstream};
use crate::config::JumpPolicy;
use crate::relay::meter::Metered;
use crate::relay::session::{BoxChannel, Request, SessionRelay};
use crate::relay::tcpip;
use crate::routes::{Route, RouteState};

/// SSH_OPEN_CONNECT_FAILED: the reason code OpenSSH uses when a forward fails.
const OPEN_CONNECT_FAILED: u32 = 2;

impl ClientHandler {
    pub(super) async fn open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        session: &mut Session,
    ) {
        let id = channel.id();
        let relay = if let State::Agent { login, .. } = &self.state {
            // The box is logged in to through the client's agent, which needs
            // this connection's event loop: open the box channel later.
            let opening = agent_box_channel(login.subscribe());
            reply.accept().await;
            SessionRelay::start(
                channel,
                session.handle(),
                opening,
                false,
                self.conn.clone(),
                &self.span,
            )
        } else {
            let opened = match self.upstream(session.handle()).await {
                Ok(up) => open_box_session(&up).await.map_err(|e| {
                    debug!(parent: &self.span, error = %e, "box refused a session channel");
                    self.lost().to_string()
                }),
                Err(notice) => Err(notice.to_string()),
            };
            reply.accept().await;
            SessionRelay::start(
                channel,
                session.handle(),
                std::future::ready(opened),
                true,
                self.conn.clone(),
                &self.span,
            )
        };
        self.channels.insert(id, relay);
    }

    /// The notice for a box connection that went away after login.
    fn lost(&self) -> Notice {
        match &self.state {
            State::Relay { route, .. } => Notice::Unreachable {
                route: route.name.clone(),
                address: route.address.clone(),
                reason: "the connection to the box was lost".into(),
            },
            State::Agent { target, .. } => Notice::Unreachable {
                route: target.clone(),
                address: String::new(),
                reason: "the connection to the box was lost".into(),
            },
            State::Notice(n) => n.clone(),
            State::Unauthenticated => Notice::JumpOnly,
        }
    }

    /// The route `host` names, when this connection may jump to it.
    fn jump_target(&self, host: &str) -> Option<Arc<Route>> {
        let route = self.ctx.routes.load().get(host)?.clone();
        let allowed = match self.ctx.config.routing.jump {
            JumpPolicy::Off => false,
            JumpPolicy::AnyKey => self.key.is_some(),
            JumpPolicy::Authenticated => self.key.as_ref().is_some_and(|k| route.authorizes(k)),
        };
        allowed.then_some(route)
    }

    #[allow(clippy::too_many_arguments)] // mirrors the russh callback
    pub(super) async fn open_direct_tcpip(
        &mut self,
        channel: Channel<Msg>,
        host: &str,
        port: u32,
        originator_address: &str,
        originator_port: u32,
        reply: ChannelOpenHandle,
        session: &mut Session,
    ) {
        let table = self.ctx.routes.load();
        if table.get(host).is_some() {
            return match self.jump_target(host) {
                Some(route) => self.jump(channel, route, reply),
                // Unknown to this key: the same answer as any refused forward.
                None => {
                    reply
                        .reject(ChannelOpenFailure::AdministrativelyProhibited)
                        .await
                }
            };
        }
        let allowed = match &self.state {
            State::Relay { route, .. } => route.forwarding.local,
            State::Agent {
                route: Some(route), ..
            } => route.forwarding.local,
            State::Agent { route: None, .. } | State::Notice(_) | State::Unauthenticated => true, // told below
        };
        if !allowed {
            debug!(parent: &self.span, host, port, "direct-tcpip refused by route policy");
            return reply
                .reject(ChannelOpenFailure::AdministrativelyProhibited)
                .await;
        }
        let up = match self.upstream(session.handle()).await {
            Ok(up) => up,
            Err(notice) => {
                let failure = ChannelOpenFailure::Other {
                    code: OPEN_CONNECT_FAILED,
                    reason: notice.to_string(),
                };
                return reply.reject(failure).await;
            }
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
        let connect_timeout = self.ctx.config.upstream.connect_timeout;
        let conn = self.conn.clone();
        let task = async move {
            if let RouteState::Stopped { message } = &route.state {
                let notice = Notice::Stopped {
                    route: route.name.clone(),
                    note: message.clone(),
                };
                let failure = ChannelOpenFailure::Other {
                    code: OPEN_CONNECT_FAILED,
                    reason: notice.to_string(),
                };
                return reply.reject(failure).await;
            }
            let connected =
                tokio::time::timeout(connect_timeout, TcpStream::connect(&route.address)).await;
            let tcp = match connected {
                Ok(Ok(tcp)) => tcp,
                failed => {
                    let reason = match failed {
                        Ok(Err(e)) => super::upstream::describe_io(&e),
                        _ => "connection timed out".into(),
                    };
                    let notice = Notice::Unreachable {
                        route: route.name.clone(),
                        address: route.address.clone(),
                        reason,
                    };
                    let failure = ChannelOpenFailure::Other {
                        code: OPEN_CONNECT_FAILED,
                        reason: notice.to_string(),
                    };
                    return reply.reject(failure).await;
                }
            };
            let _ = tcp.set_nodelay(true);
            info!(route = %route.name, "jump");
            reply.accept().await;
            tcpip::splice_jump(channel, tcp, conn).await;
        };
        tokio::spawn(task.instrument(self.span.clone()));
    }

    /// `tcpip-forward` (`-R`): the box listens; its reply (and allocated port) is passed back.
    pub(super) async fn tcpip_forward(
        &mut self,
        address: &str,
        port: &mut u32,
        session: &mut Session,
    ) -> bool {
        if !matches!(&self.state, State::Relay { route, .. } if route.forwarding.remote) {
            return false;
        }
        let Ok(up) = self.upstream(session.handle()).await else {
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
    pub(super) async fn cancel_tcpip_forward(
        &mut self,
        address: &str,
        port: u32,
        session: &mut Session,
    ) -> bool {
        if !matches!(&self.state, State::Relay { .. }) {
            return false;
        }
        let Ok(up) = self.upstream(session.handle()).await else {
            return false;
        };
        let Some(handle) = up.handle() else {
            return false;
        };
        handle.cancel_tcpip_forward(address, port).await.is_ok()
    }

    /// `auth-agent-req@openssh.com` (`ssh -A`): asked of the box when the
    /// route allows agent forwarding; the box's agent channels come back
    /// through [`super::box_handler`].
    pub(super) async fn agent_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> bool {
        if let State::Agent { .. } = &self.state {
            self.start_agent_login(session.handle());
            return true;
        }
        let allowed = matches!(&self.state, State::Relay { route, .. } if route.forwarding.agent);
        if !allowed {
            return false;
        }
        self.agent_requested.store(true, Ordering::Release);
        match self.channels.get(&channel) {
            Some(relay) => relay.request(Request::AgentForward).await,
            None => false,
        }
    }

    /// Agent mode: open the agent channel back to the client and log in to
    /// the box with its keys, off the event loop (the agent's answers arrive
    /// through it).
    fn start_agent_login(&mut self, client: russh::server::Handle) {
        let State::Agent {
            target,
            route,
            user,
            login,
        } = &self.state
        else {
            return;
        };
        if !matches!(*login.borrow(), AgentLogin::NotRequested) {
            return;
        }
        login.send_replace(AgentLogin::Connecting);
        self.agent_requested.store(true, Ordering::Release);
        let refused = Notice::LoginRefused {
            route: target.clone(),
            user: user.clone().unwrap_or_else(|| "<no user>".into()),
        };
        let (ctx, route, user, login) =
            (self.ctx.clone(), route.clone(), user.clone(), login.clone());
        let link = route.as_ref().map(|r| ClientLink {
            handle: client.clone(),
            forwarding: r.forwarding,
            agent: self.agent_requested.clone(),
            conn: self.conn.clone(),
            span: self.span.clone(),
        });
        let task = async move {
            let result = match (route, user) {
                (Some(route), Some(user)) => {
                    agent_login(&ctx, client, &route, &user, link, refused).await
                }
                // No such box, or no user to log in as: the same answer as a
                // box that refuses the agent's keys.
                _ => Err(refused),
            };
            if let Err(notice) = &result {
                info!(notice = %notice, "agent-mode login failed");
            }
            login.send_replace(AgentLogin::Done(result.map(Arc::new)));
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
        if let (
            State::Agent { login, target, .. },
            Request::Shell | Request::Exec(_) | Request::Subsystem(_),
        ) = (&self.state, &request)
        {
            // The session starts and no agent was forwarded: it never will be.
            login.send_if_modified(|state| match state {
                AgentLogin::NotRequested => {
                    *state = AgentLogin::Done(Err(Notice::NeedAgent {
                        route: target.clone(),
                    }));
                    true
                }
                AgentLogin::Connecting | AgentLogin::Done(_) => false,
            });
        }
        let ok = match self.channels.get(&channel) {
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

async fn open_box_session(up: &Upstream) -> Result<Channel<russh::client::Msg>, russh::Error> {
    match up.handle() {
        Some(handle) => handle.channel_open_session().await,
        None => Err(russh::Error::SendError),
    }
}

/// Agent mode: the box channel, once the agent login is done.
async fn agent_box_channel(mut login: watch::Receiver<AgentLogin>) -> BoxChannel {
    let result = loop {
        if let AgentLogin::Done(result) = &*login.borrow_and_update() {
            break result.clone();
        }
        if login.changed().await.is_err() {
            return Err("switchboard: the connection ended".into());
        }
    };
    let up = result.map_err(|notice| notice.to_string())?;
    open_box_session(&up)
        .await
        .map_err(|e| format!("switchboard: the box refused a session ({e})"))
}

/// Agent mode: the agent channel to the client, then the login with its keys.
async fn agent_login(
    ctx: &Context,
    client: russh::server::Handle,
    route: &Route,
    user: &str,
    link: Option<ClientLink>,
    refused: Notice,
) -> Result<Upstream, Notice> {
    if let RouteState::Stopped { message } = &route.state {
        return Err(Notice::Stopped {
            route: route.name.clone(),
            note: message.clone(),
        });
    }
    let agent = match client.channel_open_agent().await {
        Ok(channel) => russh::keys::agent::client::AgentClient::connect(channel.into_stream()),
        Err(e) => {
            debug!(error = %e, "client refused the agent channel");
            return Err(refused);
        }
    };
    upstream::connect(
        &ctx.client_settings,
        &ctx.config.upstream,
        route,
        user,
        link,
        Login::Agent(Box::new(agent)),
    )
    .await
}
