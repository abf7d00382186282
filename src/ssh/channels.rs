//! Channels and global requests of an admitted client: sessions are relayed
//! to the box (or answered with a notice); a `direct-tcpip` to a route name
//! is a jump (raw TCP to that route's sshd), any other destination is
//! forwarded by the box; `tcpip-forward` (`-R`) is asked of the box.
//!
//! Each open channel is counted against the caps and listed on the
//! connection (the sessions API); each is logged as the audit
//! `channel_open`, allowed or refused — a session channel once it asks for
//! its shell, command or subsystem.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use russh::server::{ChannelOpenHandle, Handle, Msg, Session};
use russh::{Channel, ChannelId, ChannelOpenFailure};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, Span, debug, info};

use super::link::{BoxFuture, BoxLink, SessionOpening};
use crate::access::{Access, Forward, Principal};
use crate::notice::Notice;
use crate::ops::Conn;
use crate::ops::audit::{self, ChannelOpen};
use crate::ops::channel::{ChannelKind, SessionType, clip, destination};
use crate::ops::conn::OpenChannel;
use crate::relay::flow::{self, Granter};
use crate::relay::meter::Metered;
use crate::relay::session::{Answers, Request, SessionRelay};
use crate::relay::tcpip;
use crate::routes::Route;
use crate::upstream::BoxLeg;
use crate::wake::Wakes;

/// SSH_OPEN_ADMINISTRATIVELY_PROHIBITED, for channels beyond a cap.
const OPEN_ADMINISTRATIVELY_PROHIBITED: u32 = 1;
/// SSH_OPEN_CONNECT_FAILED: the reason code OpenSSH uses when a forward fails.
const OPEN_CONNECT_FAILED: u32 = 2;

/// After the client closes a stream channel, how long its task may still
/// write what the client sent to the box before it is ended (a far end
/// that ignores the half-close would otherwise hold it forever).
const STREAM_CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Per-connection channel caps (`server.max_sessions`, `server.max_channels`).
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    pub sessions: usize,
    pub channels: usize,
}

/// An admitted connection's channels.
pub struct Channels {
    pub principal: Principal,
    link: BoxLink,
    access: Arc<Access>,
    boxes: Arc<BoxLeg>,
    wakes: Arc<Wakes>,
    conn: Arc<Conn>,
    span: Span,
    caps: Caps,
    /// Open session channels; each holds one of `open`.
    relays: HashMap<ChannelId, (SessionRelay, Open)>,
    /// Channels of every kind open now, shared with the tasks carrying them.
    open: Arc<AtomicUsize>,
    /// Byte-stream channels (forwards, jumps) by id: the client's close ends
    /// their task, even when the far end ignores the half-close.
    streams: Streams,
}

type Streams = Arc<Mutex<HashMap<ChannelId, CancellationToken>>>;

/// A stream channel's entry in [`Channels::streams`], removed with its task.
struct Tracked(Streams, ChannelId);

impl Drop for Tracked {
    fn drop(&mut self) {
        lock(&self.0).remove(&self.1);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every write under this lock is one insert or remove.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One open channel: in the connection's count and on its list; uncounted
/// and unlisted when dropped.
struct Open {
    count: Arc<AtomicUsize>,
    listed: OpenChannel,
}

impl Drop for Open {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::AcqRel);
    }
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
        (boxes, wakes): (Arc<BoxLeg>, Arc<Wakes>),
        conn: Arc<Conn>,
        span: Span,
        caps: Caps,
    ) -> Self {
        Self {
            principal,
            link,
            access,
            boxes,
            wakes,
            conn,
            span,
            caps,
            relays: HashMap::new(),
            open: Arc::default(),
            streams: Arc::default(),
        }
    }

    /// The relay of an open session channel.
    pub fn relay(&self, id: ChannelId) -> Option<&SessionRelay> {
        self.relays.get(&id).map(|(relay, _)| relay)
    }

    /// The client closed a channel: a session is closed towards the box
    /// after its queued input; a stream's task ends.
    pub async fn close(&mut self, id: ChannelId) {
        if let Some((relay, _open)) = self.relays.remove(&id) {
            return relay.close().await;
        }
        if let Some(closed) = lock(&self.streams).get(&id) {
            closed.cancel();
        }
    }

    /// Runs a stream channel's task until it ends or the client closes the
    /// channel, holding its place in the count.
    fn spawn_stream(
        &self,
        id: ChannelId,
        open: Open,
        task: impl Future<Output = ()> + Send + 'static,
    ) {
        let closed = CancellationToken::new();
        lock(&self.streams).insert(id, closed.clone());
        let tracked = Tracked(self.streams.clone(), id);
        // Boxed: moved into `select!` below, an unboxed task would be held
        // twice in this future for the stream's life (rust-lang/rust#62958).
        let task = Box::pin(task);
        let carried = async move {
            let _held = (open, tracked);
            let closed_a_while = async {
                closed.cancelled().await;
                tokio::time::sleep(STREAM_CLOSE_GRACE).await;
            };
            tokio::select! {
                () = closed_a_while => debug!("client closed the channel; stream ended"),
                () = task => {}
            }
        };
        tokio::spawn(carried.instrument(self.span.clone()));
    }

    /// Counts and lists one more channel of `kind`, or says which cap
    /// refuses it (logged). Sessions the gateway itself closed (russh
    /// reports no close for those) are forgotten first.
    fn count(
        &mut self,
        kind: ChannelKind,
        destination: Option<&str>,
    ) -> Result<Open, ChannelOpenFailure> {
        self.relays.retain(|_, (relay, _)| !relay.is_ended());
        let refuse = |what, limit, max| {
            let notice = Notice::TooManyChannels { what, limit, max };
            debug!(parent: &self.span, %notice, "channel refused");
            let reason = if what == "sessions" {
                "max_sessions"
            } else {
                "max_channels"
            };
            audit::stream_open(&self.conn, kind, destination, Err(reason));
            ChannelOpenFailure::Other {
                code: OPEN_ADMINISTRATIVELY_PROHIBITED,
                reason: notice.to_string(),
            }
        };
        let session = kind == ChannelKind::Session;
        if session && self.relays.len() >= self.caps.sessions {
            return Err(refuse(
                "sessions",
                "server.max_sessions",
                self.caps.sessions,
            ));
        }
        if self.open.fetch_add(1, Ordering::AcqRel) >= self.caps.channels {
            self.open.fetch_sub(1, Ordering::AcqRel);
            return Err(refuse(
                "channels",
                "server.max_channels",
                self.caps.channels,
            ));
        }
        Ok(Open {
            count: self.open.clone(),
            listed: OpenChannel::new(&self.conn, kind, destination.map(str::to_owned)),
        })
    }

    pub async fn open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        session: &mut Session,
    ) {
        let open = match self.count(ChannelKind::Session, None) {
            Ok(open) => open,
            Err(refused) => return reply.reject(refused).await,
        };
        let id = channel.id();
        let route = self.link.route_name().unwrap_or_default().to_owned();
        let stderr = Box::pin(channel.make_writer_ext(Some(1)));
        let (opening, answers) = match self.link.open_session(session.handle(), stderr).await {
            SessionOpening::Now(opened) => {
                (Box::pin(std::future::ready(opened)) as _, Answers::ByBox)
            }
            SessionOpening::Later(opening, budget) => (opening, Answers::Pending(budget)),
        };
        reply.accept().await;
        let relay = SessionRelay::start(
            channel,
            session.handle(),
            opening,
            answers,
            route,
            self.conn.clone(),
            &self.span,
        );
        self.relays.insert(id, (relay, open));
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
        let to = destination(host, port);
        let jump = self.principal.jump(&self.access.table(), host, port);
        let kind = match jump {
            Some(_) => ChannelKind::Jump,
            None => ChannelKind::DirectTcpip,
        };
        let open = match self.count(kind, Some(&to)) {
            Ok(open) => open,
            Err(refused) => return reply.reject(refused).await,
        };
        if let Some(route) = jump {
            return self.jump(channel, route, reply, (open, to));
        }
        if !self.principal.allows(Forward::Local) {
            debug!(parent: &self.span, host, port, "direct-tcpip refused by route policy");
            audit::stream_open(&self.conn, kind, Some(&to), Err("forwarding_disabled"));
            return reply
                .reject(ChannelOpenFailure::AdministrativelyProhibited)
                .await;
        }
        // In agent mode while the login runs, the forward waits for it in
        // its own task (the login needs this connection's event loop).
        let up: BoxFuture = self.link.box_for_forward(session.handle()).await;
        let allowed = self.principal.allows_once_in();
        let request = (
            host.to_owned(),
            port,
            originator_address.to_owned(),
            originator_port,
        );
        let id = channel.id();
        let task = forward(
            channel,
            reply,
            up,
            allowed,
            (kind, to),
            request,
            self.conn.clone(),
        );
        self.spawn_stream(id, open, task);
    }

    /// Jump mode: a raw TCP stream to the route's sshd; the SSH inside is
    /// end-to-end between the client and the box.
    /// `to` is the destination as the client named it.
    fn jump(
        &self,
        channel: Channel<Msg>,
        route: Arc<Route>,
        reply: ChannelOpenHandle,
        (open, to): (Open, String),
    ) {
        let (id, boxes, conn) = (channel.id(), self.boxes.clone(), self.conn.clone());
        // Only a key authorized for the box may wake it (or wait for it).
        let wakes = self.principal.may_wake(&route).then(|| self.wakes.clone());
        let task = async move {
            let dialled = match wakes {
                Some(wakes) => {
                    let dial = |r: Arc<Route>| {
                        let boxes = boxes.clone();
                        async move { boxes.dial(&r).await }
                    };
                    wakes.until_up(&route.name, |_| {}, dial).await
                }
                None => boxes.dial(&route).await,
            };
            let tcp = match dialled {
                Ok(tcp) => tcp,
                Err(notice) => {
                    audit::stream_open(&conn, ChannelKind::Jump, Some(&to), Err("unreachable"));
                    return reply.reject(failure(&notice)).await;
                }
            };
            audit::stream_open(&conn, ChannelKind::Jump, Some(&to), Ok(()));
            info!(route = %route.name, "jump");
            reply.accept().await;
            tcpip::splice_jump(channel, tcp, conn).await;
        };
        self.spawn_stream(id, open, task);
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
        match self.relay(channel) {
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
        if matches!(request, Request::Pty { .. }) && !self.principal.allows(Forward::Pty) {
            debug!(parent: &self.span, "pty-req refused: the certificate has no permit-pty");
            return session.channel_failure(channel);
        }
        let started = match &request {
            Request::Shell => Some(SessionType::Shell),
            Request::Exec(_) => Some(SessionType::Exec),
            Request::Subsystem(name) => Some(SessionType::Subsystem(clip(name).to_owned())),
            Request::Pty { .. }
            | Request::Env { .. }
            | Request::AgentForward
            | Request::WindowChange { .. }
            | Request::Signal(_) => None,
        };
        if started.is_some() {
            self.link.session_started();
        }
        // Only a channel's first shell, command or subsystem is its open.
        let first = started.filter(|t| {
            self.relays
                .get(&channel)
                .is_some_and(|(_, open)| open.listed.set_session_type(t.clone()))
        });
        let ok = match self.relay(channel) {
            Some(relay) => relay.request(request).await,
            None => false,
        };
        if let Some(session_type) = &first {
            let open = ChannelOpen {
                kind: ChannelKind::Session,
                destination: None,
                session_type: Some(session_type),
                outcome: if ok { Ok(()) } else { Err("box_refused") },
            };
            audit::channel_open(&self.conn, &open);
        }
        if ok {
            session.channel_success(channel)
        } else {
            session.channel_failure(channel)
        }
    }
}

/// `-L`/`-D`/`-W` through the box, as a channel's own task: waits for the box
/// connection, checks the route's switch (agent mode asks only now), and has
/// the box open the connection (as with a direct `ssh -L`). `request` is
/// (host, port, originator, originator port).
async fn forward(
    channel: Channel<Msg>,
    reply: ChannelOpenHandle,
    up: BoxFuture,
    allowed: bool,
    (kind, to): (ChannelKind, String),
    (host, port, originator, originator_port): (String, u32, String, u32),
    conn: Arc<Conn>,
) {
    let up = match up.await {
        Ok(up) => up,
        Err(notice) => {
            audit::stream_open(&conn, kind, Some(&to), Err("no_box"));
            return reply.reject(failure(&notice)).await;
        }
    };
    if !allowed {
        debug!(host, port, "direct-tcpip refused by route policy");
        audit::stream_open(&conn, kind, Some(&to), Err("forwarding_disabled"));
        return reply
            .reject(ChannelOpenFailure::AdministrativelyProhibited)
            .await;
    }
    let Some(handle) = up.handle() else {
        audit::stream_open(&conn, kind, Some(&to), Err("no_box"));
        return reply
            .reject(ChannelOpenFailure::AdministrativelyProhibited)
            .await;
    };
    let opened = handle
        .channel_open_direct_tcpip(host, port, originator, originator_port)
        .await;
    let outcome = opened.as_ref().map(|_| ()).map_err(|_| "box_refused");
    audit::stream_open(&conn, kind, Some(&to), outcome);
    match opened {
        Ok(box_channel) => {
            reply.accept().await;
            let channel = flow::stream(channel, Granter::ClientHalf);
            let box_channel = flow::stream(box_channel, Granter::BoxHalf);
            tcpip::splice(Metered::new(channel, conn), box_channel).await;
        }
        Err(russh::Error::ChannelOpenFailure(failure)) => reply.reject(failure).await,
        Err(e) => {
            debug!(error = %e, "direct-tcpip to the box failed");
            reply.reject(ChannelOpenFailure::ConnectFailed).await;
        }
    }
}
