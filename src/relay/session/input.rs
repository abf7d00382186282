//! What flows from the client towards the box on a session channel: the
//! ordered [`Input`] queue's items, the replies the box owes, and the
//! [`Gate`] that says whether the queue may be waited on.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use russh::client;
use tokio::sync::oneshot;

use crate::notice::Notice;

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

pub(super) enum Input {
    Request(Request, Option<oneshot::Sender<bool>>),
    Data(Bytes),
    Extended(u32, Bytes),
    Eof,
    Close,
}

/// Replies the box owes us, in request order.
pub(super) type PendingReplies = Arc<Mutex<VecDeque<oneshot::Sender<bool>>>>;

/// The box side of a session channel, once known: the channel, or the notice
/// that explains why there is none.
pub type BoxChannel = Result<russh::Channel<client::Msg>, Notice>;

/// Whether the queue may be waited on: not while the box is still being
/// logged in to through the client's agent (see the module docs).
#[derive(Clone)]
pub(super) struct Gate(Arc<AtomicU8>);

pub(super) const PENDING: u8 = 0;
pub(super) const OPEN: u8 = 1;
pub(super) const OVERFLOWED: u8 = 2;

impl Gate {
    pub(super) fn new(open: bool) -> Self {
        Self(Arc::new(AtomicU8::new(if open { OPEN } else { PENDING })))
    }

    /// The pump has the box channel: from now on the queue drains. False if
    /// the input overflowed first.
    pub(super) fn open(&self) -> bool {
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
    pub(super) fn overflow(&self) -> bool {
        match self
            .0
            .compare_exchange(PENDING, OVERFLOWED, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(state) => state == OVERFLOWED,
        }
    }

    pub(super) fn state(&self) -> u8 {
        self.0.load(Ordering::Acquire)
    }
}
