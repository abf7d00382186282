//! Relaying one `session` channel (shell, exec, sftp) between the client and
//! the box.
//!
//! - client → box: the connection handler feeds data, EOF and close into a
//!   bounded queue drained by a pump task (so the client's event loop is not
//!   held up by every packet waiting for the box's window);
//! - requests (pty, env, exec, …) are forwarded by the handler itself, which
//!   waits for the box's answer and replies inline (russh keeps a single
//!   "wants reply" flag per channel, so a deferred reply would be lost);
//! - box → client: a task reads the box channel and writes stdout, stderr
//!   (extended data), EOF, exit-status, exit-signal and close to the client,
//!   each write waiting for the client's window.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use russh::{ChannelMsg, ChannelWriteHalf, client, server};
use tokio::sync::{mpsc, oneshot};
use tracing::{Instrument, debug};

/// Packets queued from the client towards the box per channel. At the default
/// 32 KiB packet size this is 1 MiB of slack beyond the box's own window:
/// enough to keep the pipe full, small enough to bound memory per channel.
const PUMP_DEPTH: usize = 128;

/// How long a forwarded request may wait for the box's reply before the client
/// is told "failure"; a box that never answers must not wedge the connection.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

enum Input {
    Data(Bytes),
    Extended(u32, Bytes),
    Eof,
    Close,
}

/// Replies the box owes us, in request order (SSH answers channel requests in order).
type PendingReplies = Arc<Mutex<VecDeque<oneshot::Sender<bool>>>>;

/// A request from the client that is forwarded to the box.
pub enum Request {
    Pty { term: String, cols: u32, rows: u32, pix_width: u32, pix_height: u32, modes: Vec<(russh::Pty, u32)> },
    Env { name: String, value: String },
    Shell,
    Exec(Vec<u8>),
    Subsystem(String),
    AgentForward,
}

/// The handler's side of one relayed session channel.
pub struct SessionRelay {
    to_box: Arc<ChannelWriteHalf<client::Msg>>,
    replies: PendingReplies,
    input: mpsc::Sender<Input>,
}

impl SessionRelay {
    /// Starts the pump and the box → client task for a freshly opened pair.
    pub fn start(
        client_channel: russh::Channel<server::Msg>,
        box_channel: russh::Channel<client::Msg>,
        client_handle: server::Handle,
        span: &tracing::Span,
    ) -> Self {
        let (client_read, to_client) = client_channel.split();
        // Client data reaches us through the handler callbacks; an unread
        // receiver would stall the connection, so drop it.
        drop(client_read);
        let (box_read, to_box) = box_channel.split();
        let to_box = Arc::new(to_box);
        let replies = PendingReplies::default();
        let (input, queue) = mpsc::channel(PUMP_DEPTH);

        tokio::spawn(pump(queue, to_box.clone()).instrument(span.clone()));
        tokio::spawn(box_to_client(box_read, to_client, client_handle, replies.clone()).instrument(span.clone()));
        Self { to_box, replies, input }
    }

    /// Client data (stdin). Waits while the queue is full: backpressure.
    pub async fn data(&self, data: &[u8]) {
        let _ = self.input.send(Input::Data(Bytes::copy_from_slice(data))).await;
    }

    /// Client extended data (rare; forwarded as is).
    pub async fn extended_data(&self, code: u32, data: &[u8]) {
        let _ = self.input.send(Input::Extended(code, Bytes::copy_from_slice(data))).await;
    }

    /// Client EOF, after all queued data.
    pub async fn eof(&self) {
        let _ = self.input.send(Input::Eof).await;
    }

    /// Client closed the channel, after all queued data.
    pub async fn close(&self) {
        let _ = self.input.send(Input::Close).await;
    }

    /// Forwards a request the client wants answered; returns the box's answer.
    pub async fn request(&self, request: Request) -> bool {
        let (tx, rx) = oneshot::channel();
        if let Ok(mut q) = self.replies.lock() {
            q.push_back(tx);
        }
        let sent = match request {
            Request::Pty { term, cols, rows, pix_width, pix_height, modes } => {
                self.to_box.request_pty(true, &term, cols, rows, pix_width, pix_height, &modes).await
            }
            Request::Env { name, value } => self.to_box.set_env(true, name, value).await,
            Request::Shell => self.to_box.request_shell(true).await,
            Request::Exec(command) => self.to_box.exec(true, command).await,
            Request::Subsystem(name) => self.to_box.request_subsystem(true, name).await,
            Request::AgentForward => self.to_box.agent_forward(true).await,
        };
        if sent.is_err() {
            return false;
        }
        matches!(tokio::time::timeout(REPLY_TIMEOUT, rx).await, Ok(Ok(true)))
    }

    /// Terminal resize; no reply expected.
    pub async fn window_change(&self, cols: u32, rows: u32, pix_width: u32, pix_height: u32) {
        let _ = self.to_box.window_change(cols, rows, pix_width, pix_height).await;
    }

    /// A signal for the remote process; no reply expected.
    pub async fn signal(&self, signal: russh::Sig) {
        let _ = self.to_box.signal(signal).await;
    }
}

/// client → box: drain the queue into the box channel, waiting for its window.
async fn pump(mut queue: mpsc::Receiver<Input>, to_box: Arc<ChannelWriteHalf<client::Msg>>) {
    while let Some(input) = queue.recv().await {
        let result = match input {
            Input::Data(data) => to_box.data_bytes(data).await,
            Input::Extended(code, data) => to_box.extended_data_bytes(code, data).await,
            Input::Eof => to_box.eof().await,
            Input::Close => {
                let _ = to_box.close().await;
                break;
            }
        };
        if result.is_err() {
            debug!("box channel gone; dropping client input");
            break;
        }
    }
}

/// box → client: everything the box says on this channel, in order.
async fn box_to_client(
    mut from_box: russh::ChannelReadHalf,
    to_client: ChannelWriteHalf<server::Msg>,
    client_handle: server::Handle,
    replies: PendingReplies,
) {
    let id = to_client.id();
    while let Some(msg) = from_box.wait().await {
        let delivered = match msg {
            ChannelMsg::Data { data } => to_client.data_bytes(data).await.is_ok(),
            ChannelMsg::ExtendedData { data, ext } => to_client.extended_data_bytes(ext, data).await.is_ok(),
            ChannelMsg::Eof => to_client.eof().await.is_ok(),
            ChannelMsg::ExitStatus { exit_status } => to_client.exit_status(exit_status).await.is_ok(),
            ChannelMsg::ExitSignal { signal_name, core_dumped, error_message, lang_tag } => client_handle
                .exit_signal_request(id, signal_name, core_dumped, error_message, lang_tag)
                .await
                .is_ok(),
            ChannelMsg::XonXoff { client_can_do } => client_handle.xon_xoff_request(id, client_can_do).await.is_ok(),
            ChannelMsg::Success => answer(&replies, true),
            ChannelMsg::Failure => answer(&replies, false),
            ChannelMsg::Close => break,
            // Window bookkeeping and requests a box does not send on a session
            // channel it serves.
            _ => true,
        };
        if !delivered {
            debug!("client channel gone");
            break;
        }
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
