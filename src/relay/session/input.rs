//! What flows from the client towards the box on a session channel besides
//! data: the [`Input`] items of its inbox (`relay::flow::Inbox`), the replies
//! the box owes, and the [`Gate`] that says whether the inbox may be waited on.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

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
    Eof,
    Close,
}

impl Input {
    /// What holding it costs, in bytes: its payload plus a fixed overhead
    /// per item (so that a flood of empty messages costs too).
    pub(super) fn cost(&self) -> usize {
        const ITEM: usize = 64;
        ITEM + match self {
            Input::Request(request, _) => match request {
                Request::Pty { term, modes, .. } => term.len() + modes.len() * 5,
                Request::Env { name, value } => name.len() + value.len(),
                Request::Exec(command) => command.len(),
                Request::Subsystem(name) => name.len(),
                Request::Shell
                | Request::AgentForward
                | Request::WindowChange { .. }
                | Request::Signal(_) => 0,
            },
            Input::Eof | Input::Close => 0,
        }
    }
}

/// Bytes of requests (pty, env, exec…) one provisional (agent-mode)
/// connection may have queued, across all its sessions, while its box login
/// is not done. Data cannot be queued then: no window is granted to a
/// session before its box channel exists (`relay::flow`). Nothing of it
/// reaches a box before the box accepts the client; bounded by
/// [`PENDING_TOTAL`] for all provisional connections together.
pub const PENDING_BYTES: usize = 1024 * 1024;

/// Bytes of pending input all provisional connections together may hold
/// beyond their own [`PENDING_OWN`].
pub const PENDING_TOTAL: usize = 64 * 1024 * 1024;

/// The first bytes of every provisional connection's allowance are its own,
/// not drawn from the pool: requests and typing always fit, however many
/// other clients have spent the pool.
pub const PENDING_OWN: usize = 256 * 1024;

/// The gateway's pool of [`PENDING_TOTAL`] bytes.
#[derive(Debug)]
pub struct PendingPool(AtomicUsize);

impl PendingPool {
    pub fn new() -> Arc<Self> {
        Arc::new(Self(AtomicUsize::new(PENDING_TOTAL)))
    }
}

/// A provisional connection's allowance: up to [`PENDING_BYTES`], the first
/// [`PENDING_OWN`] its own and the rest drawn from the gateway's pool. Spent
/// by every session of the connection while its box login is pending; what
/// it drew is given back to the pool when the login is done (either way) or
/// the connection ends, and it is unlimited from then on.
#[derive(Debug)]
pub struct PendingBudget {
    left: AtomicUsize,
    own_left: AtomicUsize,
    /// Drawn from the pool, to give back.
    drawn: AtomicUsize,
    settled: AtomicBool,
    pool: Arc<PendingPool>,
}

impl PendingBudget {
    pub fn new(pool: Arc<PendingPool>) -> Arc<Self> {
        Arc::new(Self {
            left: AtomicUsize::new(PENDING_BYTES),
            own_left: AtomicUsize::new(PENDING_OWN),
            drawn: AtomicUsize::new(0),
            settled: AtomicBool::new(false),
            pool,
        })
    }

    /// Spends `n` bytes; false (and nothing spent) when the connection's
    /// allowance or the gateway's pool has fewer left.
    pub(super) fn spend(&self, n: usize) -> bool {
        if self.settled.load(Ordering::Acquire) {
            return true;
        }
        if !take(&self.left, n) {
            return false;
        }
        let own = take_up_to(&self.own_left, n);
        let rest = n - own;
        if rest > 0 && !take(&self.pool.0, rest) {
            self.own_left.fetch_add(own, Ordering::AcqRel);
            self.left.fetch_add(n, Ordering::AcqRel);
            return false;
        }
        self.drawn.fetch_add(rest, Ordering::AcqRel);
        true
    }

    /// The login is done: what was drawn goes back to the pool.
    pub fn settle(&self) {
        if !self.settled.swap(true, Ordering::AcqRel) {
            let drawn = self.drawn.swap(0, Ordering::AcqRel);
            self.pool.0.fetch_add(drawn, Ordering::AcqRel);
        }
    }
}

impl Drop for PendingBudget {
    fn drop(&mut self) {
        self.settle();
    }
}

/// Takes as much of `n` as `counter` holds; returns how much.
fn take_up_to(counter: &AtomicUsize, n: usize) -> usize {
    match counter.fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| {
        Some(left - left.min(n))
    }) {
        Ok(before) | Err(before) => before.min(n),
    }
}

fn take(counter: &AtomicUsize, n: usize) -> bool {
    counter
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| {
            left.checked_sub(n)
        })
        .is_ok()
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
