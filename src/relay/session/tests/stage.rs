//! The stage the session tests play on: a user, the gateway's two russh legs
//! and a box ([`super::box_side`]), each SSH connection an in-process russh
//! client and server over `tokio::io::duplex`. What the user's channel
//! receives is read as short lines ("data hi", "exit 0", "eof"), so a test
//! reads like the wire.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use russh::keys::PublicKeyOrCertificate;
use russh::server::{self, Auth, ChannelOpenHandle, Session};
use russh::{Channel, ChannelMsg, client};
use tokio::io::DuplexStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::box_side::{BoxSide, Reply, open_box};
use crate::notice::Notice;
use crate::ops::Conn;
use crate::relay::session::{
    Answers, BoxChannel, PendingBudget, PendingPool, REPLY_TIMEOUT, SessionRelay,
};

/// The route named in notices.
pub(super) const ROUTE: &str = "web";
/// Room in each direction of a pipe.
const PIPE: usize = 256 * 1024;
/// Deadline for anything a test waits on: beyond [`REPLY_TIMEOUT`], so a
/// request the box never answers still ends before a test gives up.
pub(super) const WAIT: Duration = REPLY_TIMEOUT.saturating_mul(2);

/// A session channel relayed by the code under test.
pub(super) struct Stage {
    pub relay: SessionRelay,
    pub user: User,
    pub at_box: BoxSide,
}

/// Key mode: the box channel is open before the relay starts.
pub(super) async fn stage(script: &[Reply]) -> Stage {
    let (channel, at_box) = open_box(script).await;
    let opening = std::future::ready(Ok(channel));
    let (relay, user) = relay(opening, Answers::ByBox).await;
    Stage {
        relay,
        user,
        at_box,
    }
}

/// Agent mode: the box channel arrives when the test ends the login.
pub(super) async fn agent_stage() -> (Stage, Login) {
    agent_stage_with(PendingBudget::new(PendingPool::new())).await
}

/// [`agent_stage`] spending `budget`, the connection's pending allowance.
pub(super) async fn agent_stage_with(budget: Arc<PendingBudget>) -> (Stage, Login) {
    let (channel, at_box) = open_box(&[]).await;
    let (tx, rx) = oneshot::channel::<BoxChannel>();
    // A test that drops the login unfinished gets the box's refusal.
    let opening = async move {
        rx.await.unwrap_or(Err(Notice::SessionRefused {
            route: ROUTE.into(),
        }))
    };
    let (relay, user) = relay(opening, Answers::Pending(budget)).await;
    let stage = Stage {
        relay,
        user,
        at_box,
    };
    (stage, Login { tx, channel })
}

/// No box: opening the session yields `notice` (key mode, as a stopped or
/// unreachable route does).
pub(super) async fn without_box(notice: Notice) -> (SessionRelay, User) {
    relay(std::future::ready(Err(notice)), Answers::ByBox).await
}

/// The agent-mode login, still under way.
pub(super) struct Login {
    tx: oneshot::Sender<BoxChannel>,
    channel: Channel<client::Msg>,
}

impl Login {
    /// The login finished: the pump gets the box channel.
    pub fn done(self) {
        let _ = self.tx.send(Ok(self.channel));
    }
}

async fn relay(
    opening: impl Future<Output = BoxChannel> + Send + 'static,
    answers: Answers,
) -> (SessionRelay, User) {
    let (user, channel, handle) = open_user().await;
    let conn = Arc::new(Conn::new(
        SocketAddr::from(([127, 0, 0, 1], 40000)),
        "ssh",
        None,
    ));
    let span = tracing::Span::none();
    let route = ROUTE.to_owned();
    let relay = SessionRelay::start(channel, handle, opening, answers, route, conn, &span);
    (relay, user)
}

fn server_config(seed: &[u8]) -> Arc<server::Config> {
    Arc::new(server::Config {
        keys: vec![crate::hostkey::derive(seed)],
        inactivity_timeout: None,
        auth_rejection_time: Duration::ZERO,
        ..server::Config::default()
    })
}

/// Connects an SSH client to a server over a pipe and logs in with `none`.
/// The pipe runs through a cable task: aborting it cuts the connection.
pub(super) async fn connect<S>(seed: &[u8], server: S) -> (client::Handle<Trusting>, JoinHandle<()>)
where
    S: server::Handler<Error = russh::Error> + Send + 'static,
{
    let (near, mut near_end): (DuplexStream, DuplexStream) = tokio::io::duplex(PIPE);
    let (mut far_end, far) = tokio::io::duplex(PIPE);
    let cable = tokio::spawn(async move {
        let _ = tokio::io::copy_bidirectional(&mut near_end, &mut far_end).await;
    });
    let config = server_config(seed);
    tokio::spawn(async move {
        if let Ok(running) = server::run_stream(config, far, server).await {
            let _ = running.await;
        }
    });
    let config = Arc::new(client::Config::default());
    let mut handle = client::connect_stream(config, near, Trusting)
        .await
        .expect("SSH handshake over the pipe");
    let auth = handle.authenticate_none("tester").await.expect("login");
    assert!(auth.success(), "the test servers accept `none`");
    (handle, cable)
}

/// Trusts any server key: both servers are this test's own.
pub(super) struct Trusting;

impl client::Handler for Trusting {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        _key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

/// The user: an SSH client whose session channel the gateway serves.
pub(super) struct User {
    channel: Channel<client::Msg>,
    _connection: client::Handle<Trusting>,
}

impl User {
    /// The next thing the user's channel says ("gone" once it is dropped).
    pub async fn next(&mut self) -> String {
        tokio::time::timeout(WAIT, self.read())
            .await
            .expect("the user's channel says something")
    }

    /// Everything up to and including the channel's close.
    pub async fn rest(&mut self) -> Vec<String> {
        let mut seen = Vec::new();
        loop {
            let line = self.next().await;
            let end = line == "close" || line == "gone";
            seen.push(line);
            if end {
                return seen;
            }
        }
    }

    /// True if the user's channel says nothing for `time`.
    pub async fn quiet_for(&mut self, time: Duration) -> bool {
        tokio::time::timeout(time, self.read()).await.is_err()
    }

    async fn read(&mut self) -> String {
        loop {
            let Some(msg) = self.channel.wait().await else {
                return "gone".into();
            };
            if let Some(line) = describe(msg) {
                return line;
            }
        }
    }
}

/// Opens the user's session channel at a gateway-side server that hands it
/// (and its connection's handle) to the relay.
async fn open_user() -> (User, Channel<server::Msg>, server::Handle) {
    let (opened, mut at_gateway) = mpsc::unbounded_channel();
    let (connection, _task) = connect(b"gateway seed for the tests", Front { opened }).await;
    let channel = connection
        .channel_open_session()
        .await
        .expect("user's session");
    let (served, handle) = at_gateway
        .recv()
        .await
        .expect("the gateway gets the channel");
    let user = User {
        channel,
        _connection: connection,
    };
    (user, served, handle)
}

/// The gateway's client-facing server: accepts a session, passes it on.
struct Front {
    opened: mpsc::UnboundedSender<(Channel<server::Msg>, server::Handle)>,
}

impl server::Handler for Front {
    type Error = russh::Error;

    async fn auth_none(&mut self, _user: &str) -> Result<Auth, Self::Error> {
        Ok(Auth::Accept)
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<server::Msg>,
        reply: ChannelOpenHandle,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        reply.accept().await;
        let _ = self.opened.send((channel, session.handle()));
        Ok(())
    }
}

/// One line for what the user's channel received; `None` for window
/// bookkeeping.
fn describe(msg: ChannelMsg) -> Option<String> {
    Some(match msg {
        ChannelMsg::Data { data } => format!("data {}", String::from_utf8_lossy(&data)),
        ChannelMsg::ExtendedData { data, ext } => {
            format!("ext {ext} {}", String::from_utf8_lossy(&data))
        }
        ChannelMsg::Eof => "eof".into(),
        ChannelMsg::Close => "close".into(),
        ChannelMsg::ExitStatus { exit_status } => format!("exit {exit_status}"),
        ChannelMsg::ExitSignal { signal_name, .. } => format!("killed by {signal_name:?}"),
        ChannelMsg::WindowAdjusted { .. } => return None,
        other => format!("unexpected {other:?}"),
    })
}

/// The user's view of a notice told on stderr.
pub(super) fn told(notice: &Notice, pty: bool) -> String {
    let text = notice.to_string();
    if pty {
        format!("ext 1 {}\r\n", text.replace('\n', "\r\n"))
    } else {
        format!("ext 1 {text}\n")
    }
}

/// A pty request as the client sends it.
pub(super) fn pty() -> crate::relay::session::Request {
    crate::relay::session::Request::Pty {
        term: "xterm".into(),
        cols: 80,
        rows: 24,
        pix_width: 0,
        pix_height: 0,
        modes: Vec::new(),
    }
}

/// An env request as the client sends it.
pub(super) fn env(name: &str, value: &str) -> crate::relay::session::Request {
    crate::relay::session::Request::Env {
        name: name.into(),
        value: value.into(),
    }
}
