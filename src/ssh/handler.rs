//! The russh server handler for one client connection: the callbacks are thin
//! and delegate to [`super::login`] (authentication, choosing the route) and
//! [`super::channels`] (opening and relaying channels).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use russh::keys::PublicKey;
use russh::keys::ssh_key::Certificate;
use russh::server::{
    Auth, ChannelOpenHandle, Handler, Msg, PublicKeyOffer, Session, VerifiedPublicKey,
};
use russh::{Channel, ChannelId, Pty, Sig};
use tracing::Span;

use super::Context;
use super::login::State;
use crate::ops::Conn;
use crate::relay::session::{Request, SessionRelay};

/// Per-connection state.
pub struct ClientHandler {
    pub(super) ctx: Arc<Context>,
    /// The address the client connected to (used in the "pick a route" hint).
    pub(super) local: SocketAddr,
    /// The connection's record: identity, bytes, exit status, auth state
    /// (read by the login-grace timer and the audit event).
    pub(super) conn: Arc<Conn>,
    /// The connection's span: `client`, `key_fp`, `route`, `user`, `mode`.
    pub(super) span: Span,
    pub(super) state: State,
    /// The verified client key (for jump-mode checks).
    pub(super) key: Option<PublicKey>,
    /// Set when the client asks for agent forwarding (`ssh -A`).
    pub(super) agent_requested: Arc<AtomicBool>,
    pub(super) channels: HashMap<ChannelId, SessionRelay>,
}

impl ClientHandler {
    pub fn new(ctx: Arc<Context>, local: SocketAddr, conn: Arc<Conn>, span: Span) -> Self {
        Self {
            ctx,
            local,
            conn,
            span,
            state: State::Unauthenticated,
            key: None,
            agent_requested: Arc::default(),
            channels: HashMap::new(),
        }
    }
}

impl Handler for ClientHandler {
    type Error = russh::Error;

    async fn authentication_banner(&mut self) -> Result<Option<String>, Self::Error> {
        let banner = &self.ctx.config.server.banner;
        Ok((!banner.is_empty()).then(|| format!("{}\n", banner.trim_end())))
    }

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(self.offered(user, offer.public_key))
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(self.verified(user, key.public_key))
    }

    async fn auth_openssh_certificate(
        &mut self,
        _user: &str,
        _cert: &Certificate,
    ) -> Result<Auth, Self::Error> {
        // No user CA is configured: certificates are not accepted.
        Ok(Auth::reject())
    }

    async fn auth_succeeded(&mut self, _session: &mut Session) -> Result<(), Self::Error> {
        let mode = self.conn.identity().mode.unwrap_or("key");
        self.conn.mark_authenticated(mode);
        Ok(())
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        // Boxed here and below: the callback's future lives inside russh's
        // per-connection task for the whole connection, sized for its
        // largest callback; a box login must not set that size.
        Box::pin(self.open_session(channel, reply, session)).await;
        Ok(())
    }

    async fn channel_open_direct_tcpip(
        &mut self,
        channel: Channel<Msg>,
        host: &str,
        port: u32,
        originator_address: &str,
        originator_port: u32,
        reply: ChannelOpenHandle,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        Box::pin(self.open_direct_tcpip(
            channel,
            host,
            port,
            originator_address,
            originator_port,
            reply,
            session,
        ))
        .await;
        Ok(())
    }

    async fn data(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(relay) = self.channels.get(&channel) {
            relay.data(data).await;
        }
        Ok(())
    }

    async fn extended_data(
        &mut self,
        channel: ChannelId,
        code: u32,
        data: &[u8],
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(relay) = self.channels.get(&channel) {
            relay.extended_data(code, data).await;
        }
        Ok(())
    }

    async fn channel_eof(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(relay) = self.channels.get(&channel) {
            relay.eof().await;
        }
        Ok(())
    }

    async fn channel_close(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(relay) = self.channels.remove(&channel) {
            relay.close().await;
        }
        Ok(())
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        term: &str,
        cols: u32,
        rows: u32,
        pix_width: u32,
        pix_height: u32,
        modes: &[(Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let request = Request::Pty {
            term: term.to_owned(),
            cols,
            rows,
            pix_width,
            pix_height,
            modes: modes.to_vec(),
        };
        self.forward_request(channel, request, session).await
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let request = Request::Env {
            name: name.to_owned(),
            value: value.to_owned(),
        };
        self.forward_request(channel, request, session).await
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.forward_request(channel, Request::Shell, session).await
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.forward_request(channel, Request::Exec(data.to_vec()), session)
            .await
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.forward_request(channel, Request::Subsystem(name.to_owned()), session)
            .await
    }

    async fn window_change_request(
        &mut self,
        channel: ChannelId,
        cols: u32,
        rows: u32,
        pix_width: u32,
        pix_height: u32,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(relay) = self.channels.get(&channel) {
            relay
                .notify(Request::WindowChange {
                    cols,
                    rows,
                    pix_width,
                    pix_height,
                })
                .await;
        }
        session.channel_success(channel)?;
        Ok(())
    }

    async fn signal(
        &mut self,
        channel: ChannelId,
        signal: Sig,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(relay) = self.channels.get(&channel) {
            relay.notify(Request::Signal(signal)).await;
        }
        Ok(())
    }

    async fn agent_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<bool, Self::Error> {
        Ok(ClientHandler::agent_request(self, channel, session).await)
    }

    async fn tcpip_forward(
        &mut self,
        address: &str,
        port: &mut u32,
        session: &mut Session,
    ) -> Result<bool, Self::Error> {
        Ok(ClientHandler::tcpip_forward(self, address, port, session).await)
    }

    async fn cancel_tcpip_forward(
        &mut self,
        address: &str,
        port: u32,
        session: &mut Session,
    ) -> Result<bool, Self::Error> {
        Ok(ClientHandler::cancel_tcpip_forward(self, address, port, session).await)
    }
}
