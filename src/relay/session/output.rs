//! box → client: everything the box says on a session channel, in order,
//! drained from russh at once into an inbox (`relay::flow`) and written to
//! the client, each write waiting for the client's window and the box
//! granted window for what was written; the box's EOF is held back
//! briefly for its exit status ([`EOF_HOLD`]); a box that vanishes without
//! ending the channel is told to the user as a lost connection.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use russh::{ChannelMsg, ChannelWriteHalf, client, server};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::ahead::Ahead;
use super::input::PendingReplies;
use crate::notice::Notice;
use crate::ops::Conn;
use crate::relay::flow::{self, Credit, Granter, Inbox, Item};
use crate::relay::tell;

/// The client side of a session channel, and what names it to the user.
pub(super) struct Ends {
    pub to_client: Arc<ChannelWriteHalf<server::Msg>>,
    pub client_handle: server::Handle,
    /// The route, for notices.
    pub route: String,
    pub conn: Arc<Conn>,
    /// Set once the gateway has closed the client's channel itself (the box
    /// ended it, or a notice was told): russh then drops the client's
    /// answering close without a callback, so the handler learns of the end
    /// from this (`SessionRelay::is_ended`).
    pub ended: Arc<AtomicBool>,
}

/// How long the box's EOF is held back waiting for its exit status. sshd
/// sends EOF and then exit-status; a client that sees EOF alone may close the
/// channel before the exit status arrives (and `ssh` then exits 255), so the
/// exit status is passed on first when it follows within this time.
pub(super) const EOF_HOLD: Duration = Duration::from_millis(200);

/// What waiting on the box gave.
enum Waited {
    Message(Option<Item<ChannelMsg>>),
    /// The EOF hold is over with nothing from the box.
    HoldOver,
    /// The client closed the channel: nobody reads the output any more.
    ClientClosed,
}

/// The next message from the box, the end of the EOF hold, or the client's
/// close (after which russh drops the box's answering close, so waiting on
/// the box would park this task until the whole box connection ends).
async fn wait(from_box: &Inbox<ChannelMsg>, eof_held: bool, closed: &CancellationToken) -> Waited {
    let message = async {
        if !eof_held {
            return Waited::Message(from_box.next().await);
        }
        match tokio::time::timeout(EOF_HOLD, from_box.next()).await {
            Ok(next) => Waited::Message(next),
            Err(_) => Waited::HoldOver,
        }
    };
    tokio::select! {
        biased;
        () = closed.cancelled() => Waited::ClientClosed,
        waited = message => waited,
    }
}

/// box → client: everything the box says on this channel, in order (except
/// that an exit status right after EOF overtakes it, see [`EOF_HOLD`]),
/// until the box ends the channel or `closed` says the client has.
pub(super) async fn box_to_client(
    from_box: russh::ChannelReadHalf,
    to_box: Arc<ChannelWriteHalf<client::Msg>>,
    ends: Ends,
    replies: PendingReplies,
    closed: CancellationToken,
    box_gone: CancellationToken,
) {
    let inbox = Arc::new(Inbox::default());
    tokio::spawn(flow::intake(from_box, inbox.clone()));
    let mut credit = Credit::new(Granter::BoxHalf(to_box));
    let mut eof_held = false;
    // Whether the box ended the channel itself (close or exit status); if the
    // channel just stops, the box connection died and the user is told.
    let mut ended_by_box = false;
    // A box gone already shows as the channel's end below.
    credit.open().await;
    // The client's reading ends with `closed`, or with this task (which
    // flushes first on every way out but the client's own close).
    let reader_gone = closed.child_token();
    let _reader_done = reader_gone.clone().drop_guard();
    let mut ahead = Ahead::new(ends.to_client.clone(), reader_gone);
    let _box_done = box_gone.drop_guard();
    loop {
        let waited = wait(&inbox, eof_held, &closed).await;
        // Whatever the box says besides data follows the data before it.
        let follows = matches!(
            waited,
            Waited::Message(Some(Item::Other(_)) | None) | Waited::HoldOver
        );
        if follows && !ahead.flush().await {
            debug!("client channel gone");
            break;
        }
        let msg = match waited {
            Waited::Message(Some(Item::Data(code, data))) => {
                if eof_held {
                    // Data after EOF: a broken box; pass the EOF on first.
                    eof_held = false;
                    if ends.to_client.eof().await.is_err() {
                        break;
                    }
                }
                let len = data.len();
                ends.conn.add_down(len);
                if !ahead.write(code, data).await {
                    debug!("client channel gone");
                    break;
                }
                credit.consumed(len).await;
                continue;
            }
            Waited::Message(Some(Item::Other(msg))) => msg,
            Waited::Message(None) => break,
            Waited::HoldOver => {
                eof_held = false;
                if ends.to_client.eof().await.is_err() {
                    break;
                }
                continue;
            }
            Waited::ClientClosed => return fail_waiting(&replies),
        };
        let exit = matches!(
            msg,
            ChannelMsg::ExitStatus { .. } | ChannelMsg::ExitSignal { .. }
        );
        ended_by_box |= exit || matches!(msg, ChannelMsg::Close);
        if eof_held && !exit {
            eof_held = false;
            if ends.to_client.eof().await.is_err() {
                break;
            }
        }
        let delivered = match msg {
            ChannelMsg::Eof => {
                eof_held = true;
                true
            }
            ChannelMsg::Close => break,
            msg => deliver(msg, &ends, &replies).await,
        };
        if !delivered {
            debug!("client channel gone");
            break;
        }
    }
    finish(ends, replies, ended_by_box, eof_held).await;
}

/// Passes one box message on to the client; false when the client is gone.
async fn deliver(msg: ChannelMsg, ends: &Ends, replies: &PendingReplies) -> bool {
    let (to_client, conn) = (&ends.to_client, &ends.conn);
    let id = to_client.id();
    match msg {
        ChannelMsg::ExitStatus { exit_status } => {
            conn.set_exit_status(exit_status);
            to_client.exit_status(exit_status).await.is_ok()
        }
        ChannelMsg::ExitSignal {
            signal_name,
            core_dumped,
            error_message,
            lang_tag,
        } => ends
            .client_handle
            .exit_signal_request(id, signal_name, core_dumped, error_message, lang_tag)
            .await
            .is_ok(),
        ChannelMsg::XonXoff { client_can_do } => ends
            .client_handle
            .xon_xoff_request(id, client_can_do)
            .await
            .is_ok(),
        ChannelMsg::Success => answer(replies, true),
        ChannelMsg::Failure => answer(replies, false),
        // Window bookkeeping, and requests a box does not send on a
        // session channel it serves.
        _ => true,
    }
}

/// The box side is over: tell the user if the box vanished, pass on a held
/// EOF, close the client's channel, and fail requests nobody will answer.
async fn finish(ends: Ends, replies: PendingReplies, ended_by_box: bool, mut eof_held: bool) {
    let to_client = &ends.to_client;
    if !ended_by_box {
        let notice = Notice::LostBox { route: ends.route };
        let text = format!("\n{notice}\n");
        let _ = to_client.extended_data_bytes(1, text.into_bytes()).await;
        let _ = to_client.exit_status(tell::EXIT_STATUS).await;
        eof_held = true;
    }
    if eof_held {
        let _ = to_client.eof().await;
    }
    // The box closed the channel or its connection ended: close the client side.
    let _ = to_client.close().await;
    ends.ended.store(true, Ordering::Release);
    fail_waiting(&replies);
}

/// Requests nobody will answer now get "failure".
fn fail_waiting(replies: &PendingReplies) {
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
