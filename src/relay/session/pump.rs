//! client → box: wait for the box channel, grant the client its window, then
//! drain the client's inbox into the box (through the read-ahead of
//! [`super::ahead`]), granting back what was handed on; without a box,
//! answer requests and tell the notice.

use russh::{ChannelWriteHalf, client, server};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug};

use super::ahead::Ahead;
use super::input::{BoxChannel, Gate, Input, PendingReplies, Request};
use super::output::{Ends, box_to_client};
use crate::notice::Notice;
use crate::ops::Conn;
use crate::relay::flow::{Credit, Granter, Inbox, Item};
use crate::relay::tell::{self, tell};

/// The client's inbox; nobody reads it once the pump is done.
type Queue = Arc<Inbox<Input>>;

struct Closing(Queue);

impl Drop for Closing {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// client → box: wait for the box channel, then drain the inbox into it.
pub(super) async fn pump(
    queue: Queue,
    opening: impl Future<Output = BoxChannel>,
    gate: Gate,
    ends: Ends,
    span: tracing::Span,
) {
    let _closing = Closing(queue.clone());
    let conn = ends.conn.clone();
    let box_channel = match opening.await {
        Ok(channel) => channel,
        Err(notice) => {
            if tell_when_started(queue, &ends.to_client, &notice).await {
                conn.set_exit_status(tell::EXIT_STATUS);
                ends.ended.store(true, Ordering::Release);
            }
            return;
        }
    };
    if !gate.open() {
        let _ = box_channel.close().await;
        let mut pty = false;
        while let Some(input) = queue.try_next() {
            pty |= matches!(input, Item::Other(Input::Request(Request::Pty { .. }, _)));
        }
        let notice = Notice::InputOverflow { route: ends.route };
        tell(&ends.to_client, &notice, pty).await;
        conn.set_exit_status(tell::EXIT_STATUS);
        ends.ended.store(true, Ordering::Release);
        return;
    }
    let (from_box, to_box) = box_channel.split();
    let to_box = Arc::new(to_box);
    let mut credit = Credit::new(Granter::Client(
        ends.client_handle.clone(),
        ends.to_client.id(),
    ));
    let replies = PendingReplies::default();
    // Cancelled when the client is done with the channel (its close, or
    // its connection gone); not when the box is, so its last words arrive.
    let closed = CancellationToken::new();
    // Cancelled when the box side is over (the output task ends): the
    // box's reading is then done, and what waits for its window stops.
    let box_gone = CancellationToken::new();
    let output = box_to_client(
        from_box,
        to_box.clone(),
        ends,
        replies.clone(),
        closed.clone(),
        box_gone.clone(),
    );
    tokio::spawn(output.instrument(span));
    if credit.open().await && drain(&queue, &to_box, box_gone, &mut credit, &replies, &conn).await {
        closed.cancel();
    }
}

/// Writes the client's input to the box until the client closes the
/// channel or goes away (true), or the box channel is gone (false: the box
/// ends the channel, and its output finishes on its own).
async fn drain(
    queue: &Queue,
    to_box: &Arc<ChannelWriteHalf<client::Msg>>,
    box_gone: CancellationToken,
    credit: &mut Credit,
    replies: &PendingReplies,
    conn: &Conn,
) -> bool {
    let mut ahead = Ahead::new(to_box.clone(), box_gone);
    while let Some(item) = queue.next().await {
        let input = match item {
            Item::Data(code, data) => {
                let len = data.len();
                conn.add_up(len);
                if !ahead.write(code, data).await {
                    debug!("box channel gone; dropping client input");
                    return false;
                }
                // A client gone meanwhile: its close follows in the inbox.
                credit.consumed(len).await;
                continue;
            }
            Item::Other(input) => input,
        };
        // Requests, EOF and close follow the data before them.
        if !ahead.flush().await {
            debug!("box channel gone; dropping client input");
            return false;
        }
        let result = match input {
            Input::Eof => to_box.eof().await,
            Input::Close => {
                let _ = to_box.close().await;
                return true;
            }
            Input::Request(request, reply) => {
                let want_reply = reply.is_some();
                if let Some(tx) = reply
                    && let Ok(mut q) = replies.lock()
                {
                    q.push_back(tx);
                }
                send_request(to_box, request, want_reply).await
            }
        };
        if result.is_err() {
            debug!("box channel gone; dropping client input");
            return false;
        }
    }
    true
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

/// No box: acknowledge requests, and tell `notice` once the client starts a
/// shell, a command or a subsystem (returns whether it was told). The
/// client was granted no window, so no data comes.
async fn tell_when_started(
    queue: Queue,
    to_client: &ChannelWriteHalf<server::Msg>,
    notice: &Notice,
) -> bool {
    let mut pty = false;
    while let Some(item) = queue.next().await {
        let Item::Other(input) = item else { continue };
        match input {
            Input::Request(request, reply) => {
                if let Some(tx) = reply {
                    let _ = tx.send(true);
                }
                match request {
                    Request::Pty { .. } => pty = true,
                    Request::Shell | Request::Exec(_) | Request::Subsystem(_) => {
                        tell(to_client, notice, pty).await;
                        return true;
                    }
                    Request::Env { .. }
                    | Request::AgentForward
                    | Request::WindowChange { .. }
                    | Request::Signal(_) => {}
                }
            }
            Input::Close => return false,
            Input::Eof => {}
        }
    }
    false
}
