//! Sessions the gateway answers itself: a one-line notice on stderr and exit
//! status 1 (a stopped box, a box that cannot be reached, a choice of routes).

use russh::{ChannelWriteHalf, server};

use crate::notice::Notice;

/// The exit status of a session the gateway answers itself.
pub const EXIT_STATUS: u32 = 1;

/// Writes `notice` to the client's stderr, then exit-status 1, EOF and close.
pub async fn tell(to_client: &ChannelWriteHalf<server::Msg>, notice: &Notice, pty: bool) {
    let text = notice.to_string();
    // With a PTY the client's terminal is raw: end lines with CR LF.
    let mut text = if pty {
        text.replace('\n', "\r\n")
    } else {
        text
    };
    text.push_str(if pty { "\r\n" } else { "\n" });
    let _ = to_client.extended_data_bytes(1, text.into_bytes()).await;
    let _ = to_client.exit_status(EXIT_STATUS).await;
    let _ = to_client.eof().await;
    let _ = to_client.close().await;
}
