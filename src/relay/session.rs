//! Relaying one `session` channel (shell, exec, sftp) between the client and
//! the box.
//!
//! - client → box: the connection handler puts requests, data, EOF and close
//!   into one bounded, ordered queue drained by a pump task. The pump first
//!   waits for the box channel — open at once in key mode, after the agent
//!   login in agent mode — or, when there is no box, tells the client why.
//! - Requests the client wants answered carry a oneshot: the box's reply is
//!   routed back to it (SSH answers channel requests in order), and the
//!   handler replies inline (russh keeps a single "wants reply" flag per
//!   channel, so a deferred reply would be lost).
//! - box → client: a task writes stdout, stderr (extended data), EOF,
//!   exit-status, exit-signal and close to the client, each write waiting for
//!   the client's window.
//! - Agent mode: until the box channel exists the queue cannot drain, and
//!   the login needs this connection's event loop, so a full queue is never
//!   waited on (that would deadlock until the handshake timeout). Input that
//!   overflows it fails the session with [`OVERFLOW`] instead; nothing is
//!   sent to the box.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use russh::{ChannelMsg, ChannelWriteHalf, client, server};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot};
use tracing::{Instrument, debug};

use super::notice;
use crate::ops::Conn;

/// Messages queued from the client towards the box per channel: at 32 KiB
/// packets, 4 MiB of slack beyond the box's window. It must exceed the
/// window the gateway grants the client (see `ssh::settings`), or a client
/// streaming stdin could fill it before its own window adjust for our output
/// is read, and both directions would stall.
const PUMP_DEPTH: usize = 128;

/// Queue depth while the box is still being logged in to through the
/// client's own agent (agent mode). That login needs the client connection's
/// event loop, so stdin the client streams meanwhile must fit here without
/// blocking it: up to 32 MiB at 32 KiB packets, used only during the login.
const PENDING_DEPTH: usize = 1024;

/// Told when input outran the queue while the box was still being logged in
/// to through the client's agent.
const OVERFLOW: &str = "switchboard: more input arrived than the gateway holds (32 MiB) before the \
login to the box through your agent finished; nothing was sent to the box. Start sending once the \
session is open, or use a key the gateway knows, or ssh -J";

/// How long a forwarded request may wait for the box's reply before the client
/// is told "failure"; a box that never answers must not wedge the connection.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// A request from the client that is forwarded to the box.
#[derive(Debug)]
pub enum Request {
    Pty {
        term: String,
        cols: u32,
        rows: u32,
        pix_width: u32,
        pix_height: u32,
        modes: Vec<(russh::Pty, u32)>,
    },
    Env {
        name: String,
        value: String,
    },
    Shell,
    Exec(Vec<u8>),
    Subsystem(String),
    AgentForward,
    WindowChange {
        cols: u32,
        rows: u32,
        pix_width: u32,
        pix_height: u32,
    },
    Signal(russh::Sig),
}

enum Input {
    Request(Request, Option<oneshot::Sender<bool>>),
    Data(Bytes),
    Extended(u32, Bytes),
    Eof,
    Close,
}

/// Replies the box owes us, in request order.
type PendingReplies = Arc<Mutex<VecDeque<oneshot::Sender<bool>>>>;

/// The box side of a session channel, once known: the channel, or the notice
/// that explains why there is none.
pub type BoxChannel = Result<russh::Channel<client::Msg>, String>;

/// Whether the queue may be waited on: not while the box is still being
/// logged in to through the client's agent (see the module docs).
#[derive(Clone)]
struct Gate(Arc<AtomicU8>);

const PENDING: u8 = 0;
const OPEN: u8 = 1;
const OVERFLOWED: u8 = 2;

impl Gate {
    fn new(open: bool) -> Self {
        Self(Arc::new(AtomicU8::new(if open { OPEN } else { PENDING })))
    }

    /// The pump has the box channel: from now on the queue drains. False if
    /// the input overflowed first.
    fn open(&self) -> bool {
        match self
            .0
            .compare_exchange(PENDING, OPEN, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(state) => state == OPEN,
        }
    }

    /// The queue is full while pending: give up on this session. False if
    /// the box channel arrived meanwhile (then the queue drains: wait).
    fn overflow(&self) -> bool {
        match self
            .0
            .compare_exchange(PENDING, OVERFLOWED, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(state) => state == OVERFLOWED,
        }
    }

    fn state(&self) -> u8 {
        self.0.load(Ordering::Acquire)
    }
}

/// The handler's side of one relayed session channel.
pub struct SessionRelay {
    input: mpsc::Sender<Input>,
    gate: Gate,
    /// Whether requests are answered by the box (key mode) or at once,
    /// because the box is not known yet (agent mode, still logging in).
    answered_by_box: bool,
}

impl SessionRelay {
    /// Starts relaying `client_channel` to the box channel `opening` yields.
    /// With `answered_by_box` false, requests are acknowledged at once
    /// (the box is still being logged in to, through the client itself).
    pub fn start(
        client_channel: russh::Channel<server::Msg>,
        client_handle: server::Handle,
        opening: impl Future<Output = BoxChannel> + Send + 'static,
        answered_by_box: bool,
        conn: Arc<Conn>,
        span: &tracing::Span,
    ) -> Self {
        let (client_read, to_client) = client_channel.split();
        // Client data reaches us through the handler callbacks; an unread
        // receiver would stall the connection, so drop it.
        drop(client_read);
        let depth = if answered_by_box {
            PUMP_DEPTH
        } else {
            PENDING_DEPTH
        };
        let (input, queue) = mpsc::channel(depth);
        let gate = Gate::new(answered_by_box);
        let pump = pump(
            queue,
            opening,
            gate.clone(),
            to_client,
            client_handle,
            conn,
            span.clone(),
        );
        tokio::spawn(pump.instrument(span.clone()));
        Self {
            input,
            gate,
            answered_by_box,
        }
    }

    /// Queues `input` for the box. Waits while the queue is full
    /// (backpressure), except while the box is still being logged in to
    /// through the client's agent (see [`Gate`]). False if it was not queued.
    async fn push(&self, input: Input) -> bool {
        if self.gate.state() == PENDING {
            match self.input.try_send(input) {
                Ok(()) => return true,
                Err(TrySendError::Closed(_)) => return false,
                Err(TrySendError::Full(input)) => {
                    if self.gate.overflow() {
                        debug!("input outran the agent login; the session fails");
                        return false;
                    }
                    return self.input.send(input).await.is_ok();
                }
            }
        }
        if self.gate.state() == OVERFLOWED {
            return false;
        }
        self.input.send(input).await.is_ok()
    }

    /// Client data (stdin).
    pub async fn data(&self, data: &[u8]) {
        self.push(Input::Data(Bytes::copy_from_slice(data))).await;
    }

    /// Client extended data (rare; forwarded as is).
    pub async fn extended_data(&self, code: u32, data: &[u8]) {
        self.push(Input::Extended(code, Bytes::copy_from_slice(data)))
            .await;
    }

    /// Client EOF, after all queued data.
    pub async fn eof(&self) {
        self.push(Input::Eof).await;
    }

    /// Client closed the channel, after all queued data.
    pub async fn close(&self) {
        self.push(Input::Close).await;
    }

    /// Forwards a request the client may want answered; returns the answer.
    pub async fn request(&self, request: Request) -> bool {
        if !self.answered_by_box {
            return self.push(Input::Request(request, None)).await;
        }
        let (tx, rx) = oneshot::channel();
        if !self.push(Input::Request(request, Some(tx))).await {
            return false;
        }
        matches!(tokio::time::timeout(REPLY_TIMEOUT, rx).await, Ok(Ok(true)))
    }

    /// A request nobody waits for (window-change, signal).
    pub async fn notify(&self, request: Request) {
        self.push(Input::Request(request, None)).await;
    }
}

/// client → box: wait for the box channel, then drain the queue into it.
async fn pump(
    mut queue: mpsc::Receiver<Input>,
    opening: impl Future<Output = BoxChannel>,
    gate: Gate,
    to_client: ChannelWriteHalf<server::Msg>,
    client_handle: server::Handle,
    conn: Arc<Conn>,
    span: tracing::Span,
) {
    let box_channel = match opening.await {
        Ok(channel) => channel,
        Err(text) => {
            if tell_when_started(queue, to_client, text).await {
                conn.set_exit_status(notice::EXIT_STATUS);
            }
            return;
        }
    };
    if !gate.open() {
        let _ = box_channel.close().await;
        let mut pty = false;
        while let Ok(input) = queue.try_recv() {
            pty |= matches!(input, Input::Request(Request::Pty { .. }, _));
        }
        notice::tell(to_client, OVERFLOW.to_owned(), pty).await;
        conn.set_exit_status(notice::EXIT_STATUS);
        return;
    }
    let (from_box, to_box) = box_channel.split();
    let replies = PendingReplies::default();
    let output = box_to_client(
        from_box,
        to_client,
        client_handle,
        replies.clone(),
        conn.clone(),
    );
    tokio::spawn(output.instrument(span));

    while let Some(input) = queue.recv().await {
        let result = match input {
            Input::Data(data) => {
                conn.add_up(data.len());
                to_box.data_bytes(data).await
            }
            Input::Extended(code, data) => {
                conn.add_up(data.len());
                to_box.extended_data_bytes(code, data).await
            }
            Input::Eof => to_box.eof().await,
            Input::Close => {
                let _ = to_box.close().await;
                break;
            }
            Input::Request(request, reply) => {
                let want_reply = reply.is_some();
                if let Some(tx) = reply
                    && let Ok(mut q) = replies.lock()
                {
                    q.push_back(tx);
                }
                send_request(&to_box, request, want_reply).await
            }
        };
        if result.is_err() {
            debug!("box channel gone; dropping client input");
            break;
        }
    }
}

async fn send_request(
    to_box: &ChannelWriteHalf<client::Msg>,
    request: Request,
    want_reply: bool,
) -> Result<(), russh::Error> {
    match request {
        Request::Pty {
            term,
            cols,
            rows,
            pix_width,
            pix_height,
            modes,
        } => {
            to_box
                .request_pty(want_reply, &term, cols, rows, pix_width, pix_height, &modes)
                .await
        }
        Request::Env { name, value } => to_box.set_env(want_reply, name, value).await,
        Request::Shell => to_box.request_shell(want_reply).await,
        Request::Exec(command) => to_box.exec(want_reply, command).await,
        Request::Subsystem(name) => to_box.request_subsystem(want_reply, name).await,
        Request::AgentForward => to_box.agent_forward(want_reply).await,
        Request::WindowChange {
            cols,
            rows,
            pix_width,
            pix_height,
        } => {
            to_box
                .window_change(cols, rows, pix_width, pix_height)
                .await
        }
        Request::Signal(signal) => to_box.signal(signal).await,
    }
}

/// No box: acknowledge requests, and tell `text` once the client starts a
/// shell, a command or a subsystem (returns whether it was told).
async fn tell_when_started(
    mut queue: mpsc::Receiver<Input>,
    to_client: ChannelWriteHalf<server::Msg>,
    text: String,
) -> bool {
    let mut pty = false;
    while let Some(input) = queue.recv().await {
        match input {
            Input::Request(request, reply) => {
                if let Some(tx) = reply {
                    let _ = tx.send(true);
                }
                match request {
                    Request::Pty { .. } => pty = true,
                    Request::Shell | Request::Exec(_) | Request::Subsystem(_) => {
                        notice::tell(to_client, text, pty).await;
                        return true;
                    }
                    Request::Env { .. }
                    | Request::AgentForward
                    | Request::WindowChange { .. }
                    | Request::Signal(_) => {}
                }
            }
            Input::Close => return false,
            Input::Data(_) | Input::Extended(..) | Input::Eof => {}
        }
    }
    false
}

/// Told when the box's connection dies under a session (a dead box is
/// noticed by the keepalives on the box leg).
const LOST: &str = "switchboard: lost the connection to the box";

/// How long the box's EOF is held back waiting for its exit status. sshd
/// sends EOF and then exit-status; a client that sees EOF alone may close the
/// channel before the exit status arrives (and `ssh` then exits 255), so the
/// exit status is passed on first when it follows within this time.
const EOF_HOLD: Duration = Duration::from_millis(200);

/// box → client: everything the box says on this channel, in order (except
/// that an exit status right after EOF overtakes it, see [`EOF_HOLD`]).
async fn box_to_client(
    mut from_box: russh::ChannelReadHalf,
    to_client: ChannelWriteHalf<server::Msg>,
    client_handle: server::Handle,
    replies: PendingReplies,
    conn: Arc<Conn>,
) {
    let id = to_client.id();
    let mut eof_held = false;
    // Whether the box ended the channel itself (close or exit status); if the
    // channel just stops, the box connection died and the user is told.
    let mut ended_by_box = false;
    loop {
        let next = if eof_held {
            match tokio::time::timeout(EOF_HOLD, from_box.wait()).await {
                Ok(next) => next,
                Err(_) => {
                    eof_held = false;
                    if to_client.eof().await.is_err() {
                        break;
                    }
                    continue;
                }
            }
        } else {
            from_box.wait().await
        };
        let Some(msg) = next else { break };
        let exit = matches!(
            msg,
            ChannelMsg::ExitStatus { .. } | ChannelMsg::ExitSignal { .. }
        );
        ended_by_box |= exit || matches!(msg, ChannelMsg::Close);
        if eof_held && !exit {
            eof_held = false;
            if to_client.eof().await.is_err() {
                break;
            }
        }
        let delivered = match msg {
            ChannelMsg::Data { data } => {
                conn.add_down(data.len());
                to_client.data_bytes(data).await.is_ok()
            }
            ChannelMsg::ExtendedData { data, ext } => {
                conn.add_down(data.len());
                to_client.extended_data_bytes(ext, data).await.is_ok()
            }
            ChannelMsg::Eof => {
                eof_held = true;
                true
            }
            ChannelMsg::ExitStatus { exit_status } => {
                conn.set_exit_status(exit_status);
                to_client.exit_status(exit_status).await.is_ok()
            }
            ChannelMsg::ExitSignal {
                signal_name,
                core_dumped,
                error_message,
                lang_tag,
            } => client_handle
                .exit_signal_request(id, signal_name, core_dumped, error_message, lang_tag)
                .await
                .is_ok(),
            ChannelMsg::XonXoff { client_can_do } => client_handle
                .xon_xoff_request(id, client_can_do)
                .await
                .is_ok(),
            ChannelMsg::Success => answer(&replies, true),
            ChannelMsg::Failure => answer(&replies, false),
            ChannelMsg::Close => break,
            // Window bookkeeping, and requests a box does not send on a
            // session channel it serves.
            _ => true,
        };
        if !delivered {
            debug!("client channel gone");
            break;
        }
    }
    if !ended_by_box {
        let text = format!("\n{LOST}\n");
        let _ = to_client.extended_data_bytes(1, text.into_bytes()).await;
        let _ = to_client.exit_status(notice::EXIT_STATUS).await;
        eof_held = true;
    }
    if eof_held {
        let _ = to_client.eof().await;
    }
    // The box closed the channel or its connection ended: close the client side.
    let _ = to_client.close().await;
    // Nobody will answer outstanding requests now.
    if let Ok(mut q) = replies.lock() {
        for tx in q.drain(..) {
            let _ = tx.send(false);
        }
    }
}

fn answer(replies: &PendingReplies, ok: bool) -> bool {
    if let Some(tx) = replies.lock().ok().and_then(|mut q| q.pop_front()) {
        let _ = tx.send(ok);
    }
    true
}
