//! Per-channel flow control: what one leg sends on a channel is held only
//! until it is written to the other leg, and the sender is granted window
//! for exactly what was written.
//!
//! Both russh legs run with `manual_window_adjust` (our russh patch, see
//! `patches/README.md`): every channel starts with a receive window of zero,
//! received data only debits it, and a peer that sends past it is
//! disconnected by russh. So per channel the gateway holds at most
//! [`WINDOW`] bytes, whatever the peer does (session channels add a
//! read-ahead that only a fast reader earns: `relay::session::ahead`), and
//! a consumer that stops
//! reading stops only its own channel: russh's connection loop never waits
//! for it, because every channel is drained at once into an [`Inbox`]
//! (coalescing small packets, so a flood of one-byte packets costs its bytes,
//! not a queue slot each) and window is given back by a [`Credit`] as the
//! bytes leave.
//!
//! [`stream`] turns a channel into `AsyncRead + AsyncWrite` on these terms,
//! for byte streams (`-L`, `-R`, `-W`, agent channels).

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_util::stream::{self, Stream};
use russh::{Channel, ChannelId, ChannelMsg, ChannelWriteHalf, client, server};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio_util::io::StreamReader;

/// The receive window granted on every relayed channel, both legs:
/// OpenSSH's own channel window, enough to keep a loopback or LAN path full
/// (BENCHMARKS.md, "Throughput, third round": 1 MiB cost up to a fifth of
/// the throughput of a session channel), and the most the gateway holds per
/// channel and direction.
pub const WINDOW: u32 = 2 * 1024 * 1024;

/// Data packets smaller than this are merged into the chunk before them.
const COALESCE: usize = 16 * 1024;

/// Non-data messages (requests, EOF, exit status) an inbox holds before its
/// producer has to wait: a peer flooding requests slows only its own
/// connection, and data never waits behind this bound.
pub(crate) const CONTROL_DEPTH: usize = 128;

/// What an [`Inbox`] yields: data (`Some(code)` for extended data) or
/// another message, in the order they arrived.
#[derive(Debug)]
pub enum Item<M> {
    Data(Option<u32>, Bytes),
    Other(M),
}

enum Held<M> {
    Data(Option<u32>, Chunk),
    Other(M),
}

/// A run of data: the peer's own buffer while it is one packet, a merged
/// copy once small packets follow it.
enum Chunk {
    One(Bytes),
    Merged(BytesMut),
}

impl Chunk {
    fn len(&self) -> usize {
        match self {
            Chunk::One(b) => b.len(),
            Chunk::Merged(b) => b.len(),
        }
    }

    fn append(&mut self, data: &[u8]) {
        if let Chunk::One(first) = self {
            let mut merged = BytesMut::with_capacity(COALESCE.max(first.len() + data.len()));
            merged.extend_from_slice(first);
            *self = Chunk::Merged(merged);
        }
        if let Chunk::Merged(merged) = self {
            merged.extend_from_slice(data);
        }
    }

    fn freeze(self) -> Bytes {
        match self {
            Chunk::One(b) => b,
            Chunk::Merged(b) => b.freeze(),
        }
    }
}

struct Queue<M> {
    items: VecDeque<Held<M>>,
    controls: usize,
    /// The producer is done.
    ended: bool,
    /// The consumer is gone: whatever comes is dropped.
    closed: bool,
}

/// One channel direction's messages, taken from russh (or from the handler's
/// callbacks) without ever waiting for data, and handed to one consumer.
/// Bounded by the window for data and by [`CONTROL_DEPTH`] for the rest.
pub struct Inbox<M> {
    queue: Mutex<Queue<M>>,
    ready: Notify,
    room: Notify,
}

impl<M> Default for Inbox<M> {
    fn default() -> Self {
        Self {
            queue: Mutex::new(Queue {
                items: VecDeque::new(),
                controls: 0,
                ended: false,
                closed: false,
            }),
            ready: Notify::new(),
            room: Notify::new(),
        }
    }
}

impl<M> Inbox<M> {
    fn lock(&self) -> MutexGuard<'_, Queue<M>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Data from the peer; never waits (the window bounds it).
    pub fn data(&self, ext: Option<u32>, data: Bytes) {
        if data.is_empty() {
            return;
        }
        let mut queue = self.lock();
        if queue.closed {
            return;
        }
        match queue.items.back_mut() {
            Some(Held::Data(code, chunk)) if *code == ext && chunk.len() < COALESCE => {
                chunk.append(&data)
            }
            _ => queue.items.push_back(Held::Data(ext, Chunk::One(data))),
        }
        drop(queue);
        self.ready.notify_one();
    }

    /// Queues a non-data message unless [`CONTROL_DEPTH`] are already
    /// held; gives it back then. Dropped once the consumer is gone.
    pub fn try_push(&self, msg: M) -> Result<(), M> {
        let mut queue = self.lock();
        if queue.closed {
            return Ok(());
        }
        if queue.controls >= CONTROL_DEPTH {
            return Err(msg);
        }
        queue.controls += 1;
        queue.items.push_back(Held::Other(msg));
        drop(queue);
        self.ready.notify_one();
        Ok(())
    }

    /// Queues a non-data message, waiting while [`CONTROL_DEPTH`] are held.
    pub async fn push(&self, mut msg: M) {
        loop {
            let room = self.room.notified();
            match self.try_push(msg) {
                Ok(()) => return,
                Err(back) => msg = back,
            }
            room.await;
        }
    }

    /// Nothing more will come; [`Inbox::next`] yields what is held, then `None`.
    pub fn end(&self) {
        self.lock().ended = true;
        self.ready.notify_one();
    }

    /// The consumer is gone: drop what is held and whatever comes.
    pub fn close(&self) {
        let mut queue = self.lock();
        queue.closed = true;
        queue.items.clear();
        queue.controls = 0;
        drop(queue);
        self.room.notify_one();
    }

    /// The next item, waiting for one; `None` once ended and drained.
    pub async fn next(&self) -> Option<Item<M>> {
        loop {
            let ready = self.ready.notified();
            if let Some(item) = self.try_next() {
                return Some(item);
            }
            if self.lock().ended {
                return None;
            }
            ready.await;
        }
    }

    /// The next item if one is held.
    pub fn try_next(&self) -> Option<Item<M>> {
        let mut queue = self.lock();
        let held = queue.items.pop_front()?;
        Some(match held {
            Held::Data(ext, chunk) => Item::Data(ext, chunk.freeze()),
            Held::Other(msg) => {
                queue.controls -= 1;
                drop(queue);
                self.room.notify_one();
                Item::Other(msg)
            }
        })
    }
}

/// Where a channel's window is granted: the leg the data came from.
pub enum Granter {
    /// A client channel, through the connection's handle.
    Client(server::Handle, ChannelId),
    /// A client channel, through its write half.
    ClientHalf(Arc<ChannelWriteHalf<server::Msg>>),
    /// A box channel, through its write half.
    BoxHalf(Arc<ChannelWriteHalf<client::Msg>>),
}

impl Granter {
    /// Grants `amount` bytes; false when the channel is gone.
    async fn grant(&self, amount: u32) -> bool {
        match self {
            Granter::Client(handle, id) => handle.grant_window(*id, amount).await.is_ok(),
            Granter::ClientHalf(half) => half.grant_window(amount).await.is_ok(),
            Granter::BoxHalf(half) => half.grant_window(amount).await.is_ok(),
        }
    }
}

/// Window is given back in steps of this much of what was written on: a
/// packet (`WINDOW_ADJUST`) per quarter window rather than one per data
/// packet, and the sender never has less than three quarters of the window
/// beyond what is still queued here.
const GRANT_STEP: u64 = WINDOW as u64 / 4;

/// The sender's window on one channel: opened to [`WINDOW`] by
/// [`Credit::open`], given back as data is written on ([`Credit::consumed`])
/// in steps of [`GRANT_STEP`].
pub struct Credit {
    granter: Granter,
    owed: Owed,
}

impl Credit {
    pub fn new(granter: Granter) -> Self {
        Self {
            granter,
            owed: Owed::default(),
        }
    }

    /// Grants the first window: the peer may send from now on.
    pub async fn open(&mut self) -> bool {
        self.granter.grant(WINDOW).await
    }

    /// `n` bytes of the peer's data were written on; false when the channel
    /// is gone.
    pub async fn consumed(&mut self, n: usize) -> bool {
        match self.owed.add(n) {
            Some(amount) => self.granter.grant(amount).await,
            None => true,
        }
    }
}

/// Bytes written on and not yet granted back.
///
/// Granted in steps, not "when the sender runs low" (OpenSSH's rule, which
/// suits a loop that grants once per pass over all channels): a sender ahead
/// of the consumer is always low, and that rule here sent a `WINDOW_ADJUST`
/// per data packet, doubling the packets and wake-ups on both legs
/// (BENCHMARKS.md, "Throughput, third round").
#[derive(Debug, Default)]
struct Owed(u64);

impl Owed {
    /// Counts `n` more bytes written on; what to grant now, if anything.
    fn add(&mut self, n: usize) -> Option<u32> {
        self.0 += n as u64;
        if self.0 < GRANT_STEP {
            return None;
        }
        // What is owed never exceeds what the peer sent: at most a window.
        let amount = u32::try_from(self.0).unwrap_or(WINDOW).min(WINDOW);
        self.0 -= u64::from(amount);
        Some(amount)
    }
}

/// Drains `from` into `inbox` until the channel ends: data at once, other
/// messages as [`CONTROL_DEPTH`] allows, window notes not at all. Run as
/// its own task, so that russh's connection loop never waits on a slow
/// consumer.
pub async fn intake(mut from: russh::ChannelReadHalf, inbox: Arc<Inbox<ChannelMsg>>) {
    while let Some(msg) = from.wait().await {
        match msg {
            ChannelMsg::Data { data } => inbox.data(None, data),
            ChannelMsg::ExtendedData { data, ext } => inbox.data(Some(ext), data),
            // russh's note that the peer granted window (it has applied it
            // already); the peer's own adjusts would otherwise take places
            // meant for requests, and wake the consumer every few packets.
            ChannelMsg::WindowAdjusted { .. } => {}
            msg => inbox.push(msg).await,
        }
    }
    inbox.end();
}

type Chunks = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;
type Writer = Pin<Box<dyn AsyncWrite + Send>>;

/// A byte-stream channel as `AsyncRead + AsyncWrite` under flow control:
/// reading takes from the channel's [`Inbox`] and grants the bytes back;
/// writing waits for the peer's window. Dropping it closes the channel.
pub struct FlowStream<S: From<(ChannelId, ChannelMsg)> + Send + Sync + 'static> {
    reader: StreamReader<Chunks, Bytes>,
    writer: Writer,
    half: Arc<ChannelWriteHalf<S>>,
}

/// Starts `channel`'s intake and grants its first window.
pub fn stream<S>(
    channel: Channel<S>,
    granter: impl FnOnce(Arc<ChannelWriteHalf<S>>) -> Granter,
) -> FlowStream<S>
where
    S: From<(ChannelId, ChannelMsg)> + Send + Sync + 'static,
{
    let (from, half) = channel.split();
    let half = Arc::new(half);
    let inbox = Arc::new(Inbox::default());
    tokio::spawn(intake(from, inbox.clone()));
    let credit = Credit::new(granter(half.clone()));
    let chunks = stream::unfold(
        (inbox, credit, false),
        |(inbox, mut credit, opened)| async move {
            if !opened {
                credit.open().await;
            }
            loop {
                match inbox.next().await? {
                    Item::Data(None, data) => {
                        credit.consumed(data.len()).await;
                        return Some((Ok(data), (inbox, credit, true)));
                    }
                    // Extended data has no place in a byte stream.
                    Item::Data(Some(_), data) => {
                        credit.consumed(data.len()).await;
                    }
                    Item::Other(ChannelMsg::Eof | ChannelMsg::Close) => return None,
                    Item::Other(_) => {}
                }
            }
        },
    );
    FlowStream {
        reader: StreamReader::new(Box::pin(chunks) as Chunks),
        writer: Box::pin(half.make_writer()),
        half,
    }
}

impl<S: From<(ChannelId, ChannelMsg)> + Send + Sync + 'static> AsyncRead for FlowStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.reader).poll_read(cx, buf)
    }
}

impl<S: From<(ChannelId, ChannelMsg)> + Send + Sync + 'static> AsyncWrite for FlowStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.writer.as_mut().poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.writer.as_mut().poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.writer.as_mut().poll_shutdown(cx)
    }
}

impl<S: From<(ChannelId, ChannelMsg)> + Send + Sync + 'static> Drop for FlowStream<S> {
    fn drop(&mut self) {
        let half = self.half.clone();
        tokio::spawn(async move {
            let _ = half.close().await;
        });
    }
}

#[cfg(test)]
mod tests;
