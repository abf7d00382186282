//! Relaying one `session` channel (shell, exec, sftp) between the client and
//! the box.
//!
//! - client → box: the connection handler puts data, requests, EOF and close
//!   into one ordered inbox (`relay::flow::Inbox`: data never waits, the
//!   window bounds it) drained by a pump task. The pump first waits for the
//!   box channel — open at once in key mode, after the agent login in agent
//!   mode — or, when there is no box, tells the client why. Only then is the
//!   client granted window, and from then on for what was handed on towards
//!   the box: written to it, or held in a read-ahead sized to the box's own
//!   rate and bounded per channel and gateway-wide (`ahead`).
//! - Requests the client wants answered carry a oneshot: the box's reply is
//!   routed back to it (SSH answers channel requests in order), and the
//!   handler replies inline (russh keeps a single "wants reply" flag per
//!   channel, so a deferred reply would be lost).
//! - box → client: the box channel is drained into an inbox at once, and a
//!   task writes stdout, stderr (extended data), EOF, exit-status,
//!   exit-signal and close to the client, each write waiting for the
//!   client's window; the box is granted window for what reached the client.
//!   A client that stops reading stops only this channel.
//! - Agent mode: until the box channel exists the inbox cannot drain, and
//!   the login needs this connection's event loop, so requests are never
//!   waited on then (that would deadlock until the handshake timeout).
//!   Requests that overflow it fail the session with `Notice::InputOverflow`
//!   instead; nothing is sent to the box. (Data cannot come: no window yet.)
//!
//! Files: [`input`] (what is queued), `pump` (client → box), `ahead` (its
//! read-ahead, sized to the box's rate), `output` (box → client). What users are told comes from [`crate::notice`].
//!
//! Tests (`tests`) drive this code through real russh channels: a user, the
//! gateway's two legs and a box as in-process russh clients and servers over
//! `tokio::io::duplex`. Chosen over fakes behind traits: the pump and the
//! output task keep writing to russh's own channel types, with no seam added
//! for the tests' sake, and the tests also pin down what russh makes of what
//! we send (a reply only when one was wanted, the order on the wire).

mod ahead;
mod input;
mod output;
mod pump;
#[cfg(test)]
mod tests;

pub use input::{
    BoxChannel, PENDING_BYTES, PENDING_OWN, PENDING_TOTAL, PendingBudget, PendingPool, Request,
};

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use russh::server;
use tokio::sync::oneshot;
use tracing::{Instrument, debug};

use crate::ops::Conn;
use crate::relay::flow::Inbox;
use input::{Gate, Input, OVERFLOWED, PENDING};
use output::Ends;
use pump::pump;

/// How long a forwarded request may wait for the box's reply before the client
/// is told "failure"; a box that never answers must not wedge the connection.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// Who answers a session's requests.
#[derive(Debug, Clone)]
pub enum Answers {
    /// Key mode: the box (or, without one, the gateway with the notice).
    ByBox,
    /// Agent mode: the gateway at once, while the box is being logged in to
    /// through the client itself; input held meanwhile spends the
    /// connection's budget.
    Pending(Arc<PendingBudget>),
}

/// The handler's side of one relayed session channel.
pub struct SessionRelay {
    input: Arc<Inbox<Input>>,
    gate: Gate,
    answers: Answers,
    ended: Arc<AtomicBool>,
}

impl SessionRelay {
    /// Starts relaying `client_channel` to the box channel `opening` yields.
    /// `route` names the box in what the user is told.
    pub fn start(
        client_channel: russh::Channel<server::Msg>,
        client_handle: server::Handle,
        opening: impl Future<Output = BoxChannel> + Send + 'static,
        answers: Answers,
        route: String,
        conn: Arc<Conn>,
        span: &tracing::Span,
    ) -> Self {
        let (client_read, to_client) = client_channel.split();
        // Client data reaches us through the handler callbacks; an unread
        // receiver would stall the connection, so drop it.
        drop(client_read);
        let by_box = matches!(answers, Answers::ByBox);
        let input = Arc::new(Inbox::default());
        let gate = Gate::new(by_box);
        let ended = Arc::new(AtomicBool::new(false));
        let ends = Ends {
            to_client: Arc::new(to_client),
            client_handle,
            route,
            conn,
            ended: ended.clone(),
        };
        let pump = pump(input.clone(), opening, gate.clone(), ends, span.clone());
        tokio::spawn(pump.instrument(span.clone()));
        Self {
            input,
            gate,
            answers,
            ended,
        }
    }

    /// True once the gateway has closed the client's side of the channel
    /// (the box ended it, or a notice was told): the session is over and
    /// its place may be given back.
    pub fn is_ended(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }

    /// Queues `input` for the box. Waits while the inbox holds its most
    /// requests (backpressure), except while the box is still being logged in
    /// to through the client's agent (see [`Gate`]). False if it was not queued.
    async fn push(&self, input: Input) -> bool {
        if self.gate.state() == PENDING {
            let affordable = match &self.answers {
                Answers::Pending(budget) => budget.spend(input.cost()),
                Answers::ByBox => true,
            };
            let tried = if affordable {
                self.input.try_push(input)
            } else {
                Err(input)
            };
            match tried {
                Ok(()) => return true,
                Err(input) => {
                    if self.gate.overflow() {
                        debug!("requests outran the agent login; the session fails");
                        return false;
                    }
                    self.input.push(input).await;
                    return true;
                }
            }
        }
        if self.gate.state() == OVERFLOWED {
            return false;
        }
        self.input.push(input).await;
        true
    }

    /// Client data (stdin): never waits, the window the pump granted bounds it.
    pub fn data(&self, data: &[u8]) {
        if self.gate.state() != OVERFLOWED {
            self.input.data(None, Bytes::copy_from_slice(data));
        }
    }

    /// Client extended data (rare; forwarded as is).
    pub fn extended_data(&self, code: u32, data: &[u8]) {
        if self.gate.state() != OVERFLOWED {
            self.input.data(Some(code), Bytes::copy_from_slice(data));
        }
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
        if let Answers::Pending(_) = self.answers {
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
