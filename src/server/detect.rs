//! Telling protocols apart on the one port (SPEC §11): the first bytes (after
//! any PROXY header) say whether the client speaks SSH or HTTP. OpenSSH sends
//! its version line at once, so SSH clients wait for nothing; a client that
//! says nothing first is SSH after [`SILENT_CLIENT_WAIT`].

use std::io::Cursor;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::TcpStream;

/// How long a client may stay silent before it is taken for an SSH client
/// that waits for the server's version line (SPEC: at most 300 ms).
pub const SILENT_CLIENT_WAIT: Duration = Duration::from_millis(250);

/// Bytes read per sniff.
const SNIFF_CHUNK: usize = 512;

/// What the client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Ssh,
    /// HTTP (CONNECT, a WebSocket upgrade) or anything else that is not SSH:
    /// the tunnel front answers it (`400` for garbage).
    Http,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Ssh => "ssh",
            Protocol::Http => "http",
        }
    }
}

/// Classifies the first bytes: nothing yet, or `SSH-…`, is SSH.
pub fn classify(first: &[u8]) -> Protocol {
    match first.first() {
        None | Some(b'S') => Protocol::Ssh,
        Some(_) => Protocol::Http,
    }
}

/// Appends the client's first bytes to `buf`, waiting at most `wait`; a
/// client that sends nothing (or closes) leaves `buf` as it was.
pub async fn sniff<R: AsyncRead + Unpin>(stream: &mut R, buf: &mut Vec<u8>, wait: Duration) {
    let mut chunk = [0u8; SNIFF_CHUNK];
    if let Ok(Ok(n)) = tokio::time::timeout(wait, stream.read(&mut chunk)).await {
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// What the client sent before its protocol was known, replayed in front of
/// the rest of the stream.
pub type Replayed = tokio::io::Join<
    tokio::io::Chain<Cursor<Vec<u8>>, tokio::net::tcp::OwnedReadHalf>,
    tokio::net::tcp::OwnedWriteHalf,
>;

pub fn replay(stream: TcpStream, read: Vec<u8>) -> Replayed {
    let (r, w) = stream.into_split();
    tokio::io::join(Cursor::new(read).chain(r), w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_and_silence_are_ssh_everything_else_goes_to_http() {
        assert_eq!(classify(b""), Protocol::Ssh);
        assert_eq!(classify(b"SSH-2.0-OpenSSH_9.2\r\n"), Protocol::Ssh);
        assert_eq!(classify(b"CONNECT alice:22 HTTP/1.1\r\n"), Protocol::Http);
        assert_eq!(classify(b"GET /tunnel/alice HTTP/1.1\r\n"), Protocol::Http);
        assert_eq!(classify(b"\x16\x03\x01"), Protocol::Http);
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_client_is_given_up_on_after_the_wait() {
        let (mut client, mut server) = tokio::io::duplex(64);
        let mut buf = Vec::new();
        sniff(&mut server, &mut buf, SILENT_CLIENT_WAIT).await;
        assert!(buf.is_empty());
        tokio::io::AsyncWriteExt::write_all(&mut client, b"SSH-2.0-x\r\n")
            .await
            .expect("write");
        sniff(&mut server, &mut buf, SILENT_CLIENT_WAIT).await;
        assert_eq!(buf, b"SSH-2.0-x\r\n");
    }
}
