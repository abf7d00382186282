//! Read-ahead on a session channel, sized to what the receiving side takes.
//!
//! The client is granted window for what reached the box (`relay::flow`),
//! so the client leg stops whenever the box leg pauses for longer than one
//! window lasts: 2 MiB is 4 ms at 500 MB/s, and a box's sshd that shares
//! its machine is descheduled that long all the time. OpenSSH clients do
//! not take a larger window well (they buffer up to it in user space and
//! spend several times the CPU: BENCHMARKS.md, "Throughput, fourth round"),
//! so the slack is kept here instead: the pump may hand data to a writer
//! task ahead of the box, the client being granted window as it is handed
//! over, up to [`SPANS_AHEAD`] times what the box took in a recent [`SPAN`]
//! (its rate times the pause to ride out), at most [`PER_CHANNEL`] per
//! channel and [`TOTAL`] for the whole gateway. Otherwise data is written to the box directly, as
//! without read-ahead.
//!
//! The same holds box → client (`output`), with the client as the reader:
//! the box is granted window as its output is handed over.
//!
//! Only a rate held over two whole spans earns read-ahead, and a reader
//! that stops reading ends the lending within a span: a stuck or slow
//! channel holds at most [`SPANS_AHEAD`] times what its reader took in a
//! span, besides the window (a box that never read: nothing, though its
//! sshd took a window's worth at once), and a box reading 1 MiB/s gets
//! about 200 KiB.
//! A sender cannot raise any of this: only the reader's reading does.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use russh::{ChannelId, ChannelMsg, ChannelWriteHalf};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::debug;

/// Read-ahead one channel may hold at most.
pub const PER_CHANNEL: usize = 32 * 1024 * 1024;

/// Read-ahead all channels of the gateway together may hold.
pub const TOTAL: usize = 128 * 1024 * 1024;

/// The box's rate is measured over spans of this length.
pub(super) const SPAN: Duration = Duration::from_millis(50);

/// Read-ahead covers this many spans of the reader's rate, a 200 ms pause
/// of its leg (one span measured 0.91–0.95× the stock build's agent-mode
/// upload, four 0.96–0.98×: BENCHMARKS.md, "Throughput, fourth round").
pub(super) const SPANS_AHEAD: usize = 4;

/// What each handed-over piece costs beyond its bytes, so that a flood of
/// tiny packets is bounded too.
const ITEM_COST: usize = 64;

/// The gateway's read-ahead still unlent.
static POOL: AtomicUsize = AtomicUsize::new(TOTAL);

/// Bytes the reader took in the span under way and in the two before it.
///
/// Only a rate held over two whole spans counts: a reader that takes a
/// burst and stops (a box's sshd filling its own 2 MiB window, a pipe
/// buffer) earns nothing, and one span without reading ends the lending.
#[derive(Debug)]
pub(super) struct Rate {
    started: Instant,
    current: usize,
    last: usize,
    older: usize,
}

impl Rate {
    pub(super) fn new(now: Instant) -> Self {
        Self {
            started: now,
            current: 0,
            last: 0,
            older: 0,
        }
    }

    fn roll(&mut self, now: Instant) {
        if now.saturating_duration_since(self.started) >= 3 * SPAN {
            (self.older, self.last, self.current, self.started) = (0, 0, 0, now);
            return;
        }
        while now.saturating_duration_since(self.started) >= SPAN {
            (self.older, self.last, self.current) = (self.last, self.current, 0);
            self.started += SPAN;
        }
    }

    /// The reader took `n` bytes at `now`.
    pub(super) fn record(&mut self, now: Instant, n: usize) {
        self.roll(now);
        self.current += n;
    }

    /// How much may be held ahead of the reader at `now`: [`SPANS_AHEAD`]
    /// times what it took in each of the last two whole spans, at most
    /// [`PER_CHANNEL`].
    pub(super) fn allowance(&mut self, now: Instant) -> usize {
        self.roll(now);
        (self.last.min(self.older) * SPANS_AHEAD).min(PER_CHANNEL)
    }
}

/// What the pump and its writer share.
struct Shared {
    rate: Mutex<Rate>,
    /// Lent and not yet written (bytes plus [`ITEM_COST`] each).
    held: AtomicUsize,
}

impl Shared {
    fn record(&self, n: usize) {
        let mut rate = self.rate.lock().unwrap_or_else(PoisonError::into_inner);
        rate.record(Instant::now(), n);
    }
}

/// Read-ahead lent to one piece of data; given back however the piece ends
/// (written, or dropped with the channel).
struct Lent {
    cost: usize,
    shared: Arc<Shared>,
}

impl Drop for Lent {
    fn drop(&mut self) {
        self.shared.held.fetch_sub(self.cost, Ordering::AcqRel);
        POOL.fetch_add(self.cost, Ordering::AcqRel);
    }
}

enum Job {
    Data(Option<u32>, Bytes, Lent),
    /// Answered once everything before it was written.
    Flush(oneshot::Sender<()>),
}

/// The data path of one session channel towards one leg (the box, or the
/// client).
pub(super) struct Ahead<S: From<(ChannelId, ChannelMsg)> + Send + Sync + 'static> {
    to: Arc<ChannelWriteHalf<S>>,
    shared: Arc<Shared>,
    /// Started at the first lending.
    writer: Option<mpsc::UnboundedSender<Job>>,
    /// Cancelled when the channel's reader is gone: whatever waits for its
    /// window stops then (russh does not wake window waiters on close), so
    /// what was lent always comes back.
    gone: CancellationToken,
}

impl<S: From<(ChannelId, ChannelMsg)> + Send + Sync + 'static> Ahead<S> {
    pub(super) fn new(to: Arc<ChannelWriteHalf<S>>, gone: CancellationToken) -> Self {
        Self {
            to,
            gone,
            shared: Arc::new(Shared {
                rate: Mutex::new(Rate::new(Instant::now())),
                held: AtomicUsize::new(0),
            }),
            writer: None,
        }
    }

    /// Hands `data` on: ahead of the reader when its rate allows, else
    /// after all that is ahead, directly. Once this returns, the sender may
    /// be granted window for it. False when the channel is gone.
    pub(super) async fn write(&mut self, code: Option<u32>, data: Bytes) -> bool {
        if let Some(lent) = self.lend(data.len() + ITEM_COST) {
            let job = Job::Data(code, data, lent);
            return self.writer().send(job).is_ok();
        }
        if !self.flush().await {
            return false;
        }
        let n = data.len();
        if !send_unless(&self.gone, &self.to, code, data).await {
            return false;
        }
        self.shared.record(n);
        true
    }

    /// Waits until everything handed on is written (before a request, EOF,
    /// exit status or close); false when the channel is gone.
    pub(super) async fn flush(&mut self) -> bool {
        let Some(writer) = &self.writer else {
            return true;
        };
        // Pieces give their read-ahead back once written: none held, none
        // waiting.
        if self.shared.held.load(Ordering::Acquire) == 0 {
            return true;
        }
        let (done, written) = oneshot::channel();
        if writer.send(Job::Flush(done)).is_err() {
            return false;
        }
        tokio::select! {
            written = written => written.is_ok(),
            () = self.gone.cancelled() => false,
        }
    }

    fn lend(&self, cost: usize) -> Option<Lent> {
        let allowance = {
            let mut rate = self
                .shared
                .rate
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            rate.allowance(Instant::now())
        };
        let held = self.shared.held.load(Ordering::Acquire);
        if held + cost > allowance {
            return None;
        }
        POOL.fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| {
            left.checked_sub(cost)
        })
        .ok()?;
        self.shared.held.fetch_add(cost, Ordering::AcqRel);
        Some(Lent {
            cost,
            shared: self.shared.clone(),
        })
    }

    fn writer(&mut self) -> &mpsc::UnboundedSender<Job> {
        self.writer.get_or_insert_with(|| {
            let (jobs, queue) = mpsc::unbounded_channel();
            tokio::spawn(write_ahead(
                self.to.clone(),
                self.shared.clone(),
                queue,
                self.gone.clone(),
            ));
            jobs
        })
    }
}

/// Writes what was handed on, in order, until the sender is done or the
/// channel or its reader is gone (then what is left is dropped, its
/// read-ahead given back, and the next hand-over fails).
async fn write_ahead<S: From<(ChannelId, ChannelMsg)> + Send + Sync + 'static>(
    to: Arc<ChannelWriteHalf<S>>,
    shared: Arc<Shared>,
    mut queue: mpsc::UnboundedReceiver<Job>,
    gone: CancellationToken,
) {
    while let Some(job) = queue.recv().await {
        match job {
            Job::Data(code, data, lent) => {
                let n = data.len();
                if !send_unless(&gone, &to, code, data).await {
                    debug!("channel gone; dropping what was read ahead");
                    return;
                }
                shared.record(n);
                drop(lent);
            }
            Job::Flush(done) => {
                let _ = done.send(());
            }
        }
    }
}

/// Sends unless the reader is gone first; false if it did not.
async fn send_unless<S: From<(ChannelId, ChannelMsg)> + Send + Sync + 'static>(
    gone: &CancellationToken,
    to: &ChannelWriteHalf<S>,
    code: Option<u32>,
    data: Bytes,
) -> bool {
    tokio::select! {
        sent = send(to, code, data) => sent.is_ok(),
        () = gone.cancelled() => false,
    }
}

async fn send<S: From<(ChannelId, ChannelMsg)> + Send + Sync + 'static>(
    to: &ChannelWriteHalf<S>,
    code: Option<u32>,
    data: Bytes,
) -> Result<(), russh::Error> {
    match code {
        None => to.data_bytes(data).await,
        Some(code) => to.extended_data_bytes(code, data).await,
    }
}
