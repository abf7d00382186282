//! The russh server handler for one client connection. The callbacks are
//! thin: authentication goes to [`super::auth`] (and through it to the
//! access layer), channels and global requests to [`Channels`], which exist
//! once the client is admitted (russh opens no channel before that).

use std::net::SocketAddr;
use std::sync::Arc;

use russh::keys::ssh_key::Certificate;
use russh::server::{
    Auth, ChannelOpenHandle, Handler, Msg, PublicKeyOffer, Session, VerifiedPublicKey,
};
use russh::{Channel, ChannelId, Pty, Sig};
use tracing::Span;

use super::Shared;
use super::auth;
use super::channels::{Caps, Channels};
use super::link::BoxLink;
use super::settings::MAX_PACKET;
use crate::ops::{Conn, metrics};
use crate::relay::session::Request;

/// Per-connection state.
pub struct ClientHandler {
    shared: Arc<Shared>,
    /// The address the client connected to (used in the "pick a route" hint).
    local: SocketAddr,
    /// The connection's record: identity, bytes, exit status, auth state
    /// (read by the login-grace timer and the audit event).
    conn: Arc<Conn>,
    /// The connection's span: `session.id`, `client.address`, `client.port`,
    /// `key.fingerprint`, `cert.key_id`, `cert.serial`, `route`,
    /// `user.name`, `auth.mode`.
    span: Span,
    /// Set once a key is admitted.
    channels: Option<Channels>,
}

impl ClientHandler {
    pub fn new(shared: Arc<Shared>, local: SocketAddr, conn: Arc<Conn>, span: Span) -> Self {
        Self {
            shared,
            local,
            conn,
            span,
            channels: None,
        }
    }

    /// An admitted client: its box link and channels.
    fn admitted(&mut self, principal: crate::access::Principal) {
        let shared = &self.shared;
        let link = BoxLink::new(
            &principal,
            (shared.boxes.clone(), shared.wakes.clone()),
            self.conn.clone(),
            self.span.clone(),
            (self.local, &shared.access.routing().target_separator),
            &shared.pending,
        );
        self.channels = Some(Channels::new(
            principal,
            link,
            shared.access.clone(),
            (shared.boxes.clone(), shared.wakes.clone()),
            self.conn.clone(),
            self.span.clone(),
            Caps {
                sessions: shared.config.server.max_sessions,
                channels: shared.config.server.max_channels,
            },
        ));
    }

    /// Forwards a channel request (see [`Channels::forward_request`]).
    async fn forward_request(
        &mut self,
        channel: ChannelId,
        request: Request,
        session: &mut Session,
    ) -> Result<(), russh::Error> {
        match &mut self.channels {
            Some(channels) => channels.forward_request(channel, request, session).await,
            None => session.channel_failure(channel),
        }
    }

    /// A peer that sends more in one packet than the gateway advertised is
    /// cut off (counted, logged): it is not an SSH client playing by the rules.
    fn check_packet(&self, len: usize) -> Result<(), russh::Error> {
        if len <= MAX_PACKET as usize {
            return Ok(());
        }
        self.span.in_scope(|| {
            tracing::warn!(
                len,
                max = MAX_PACKET,
                "packet over the advertised maximum; disconnecting"
            )
        });
        metrics::get().limit("max_packet");
        Err(russh::Error::PacketSize(len))
    }

    /// A request nobody waits for (window-change, signal).
    async fn notify(&self, channel: ChannelId, request: Request) {
        if let Some(relay) = self.channels.as_ref().and_then(|c| c.relay(channel)) {
            relay.notify(request).await;
        }
    }
}

impl Handler for ClientHandler {
    type Error = russh::Error;

    async fn authentication_banner(&mut self) -> Result<Option<String>, Self::Error> {
        let banner = &self.shared.config.server.banner;
        Ok((!banner.is_empty()).then(|| format!("{}\n", banner.trim_end())))
    }

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        let (access, conn) = (&self.shared.access, &self.conn);
        let cert = offer.certificate;
        Ok(auth::offered(access, conn, user, offer.public_key, cert))
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        let shared = &self.shared;
        let (result, principal) =
            auth::verified(&shared.access, &self.conn, &self.span, user, key.public_key);
        if let Some(principal) = principal {
            self.admitted(principal);
        }
        Ok(result)
    }

    async fn auth_openssh_certificate(
        &mut self,
        user: &str,
        cert: &Certificate,
    ) -> Result<Auth, Self::Error> {
        let shared = &self.shared;
        let (result, principal) =
            auth::certificate(&shared.access, &self.conn, &self.span, user, cert);
        if let Some(principal) = principal {
            self.admitted(principal);
        }
        Ok(result)
    }

    async fn auth_succeeded(&mut self, _session: &mut Session) -> Result<(), Self::Error> {
        // Agent mode is marked authenticated only once the box accepts.
        if let Some(channels) = &self.channels
            && !channels.principal.is_provisional()
        {
            crate::ops::audit::authenticated(&self.conn, channels.principal.label());
        }
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
        if let Some(channels) = &mut self.channels {
            Box::pin(channels.open_session(channel, reply, session)).await;
        }
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
        if let Some(channels) = &mut self.channels {
            let opening = channels.open_direct_tcpip(
                channel,
                host,
                port,
                originator_address,
                originator_port,
                reply,
                session,
            );
            Box::pin(opening).await;
        }
        Ok(())
    }

    async fn data(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.check_packet(data.len())?;
        if let Some(relay) = self.channels.as_ref().and_then(|c| c.relay(channel)) {
            relay.data(data);
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
        self.check_packet(data.len())?;
        if let Some(relay) = self.channels.as_ref().and_then(|c| c.relay(channel)) {
            relay.extended_data(code, data);
        }
        Ok(())
    }

    async fn channel_eof(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(relay) = self.channels.as_ref().and_then(|c| c.relay(channel)) {
            relay.eof().await;
        }
        Ok(())
    }

    async fn channel_close(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(channels) = &mut self.channels {
            channels.close(channel).await;
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
        let request = Request::WindowChange {
            cols,
            rows,
            pix_width,
            pix_height,
        };
        self.notify(channel, request).await;
        session.channel_success(channel)?;
        Ok(())
    }

    async fn signal(
        &mut self,
        channel: ChannelId,
        signal: Sig,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.notify(channel, Request::Signal(signal)).await;
        Ok(())
    }

    async fn agent_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<bool, Self::Error> {
        Ok(match &mut self.channels {
            Some(channels) => channels.agent_request(channel, session.handle()).await,
            None => false,
        })
    }

    async fn tcpip_forward(
        &mut self,
        address: &str,
        port: &mut u32,
        session: &mut Session,
    ) -> Result<bool, Self::Error> {
        Ok(match &mut self.channels {
            Some(channels) => {
                channels
                    .tcpip_forward(address, port, session.handle())
                    .await
            }
            None => false,
        })
    }

    async fn cancel_tcpip_forward(
        &mut self,
        address: &str,
        port: u32,
        session: &mut Session,
    ) -> Result<bool, Self::Error> {
        Ok(match &mut self.channels {
            Some(channels) => {
                channels
                    .cancel_tcpip_forward(address, port, session.handle())
                    .await
            }
            None => false,
        })
    }
}
