//! PROXY protocol v1 and v2 (SPEC §9), parsed by the `ppp` crate: a header is
//! honoured only from `trusted_cidrs`; from anyone else it is refused. A
//! trusted peer may also connect without a header (its own address is used).

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;
use ppp::{HeaderResult, PartialResult, v1, v2};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::ops::source::canonical;

/// The longest header read: a v1 header is at most 107 bytes; v2 headers
/// carry TLVs, and load balancers send a few hundred bytes at most. Anything
/// longer is refused rather than buffered.
pub const MAX_HEADER: usize = 1024;

/// Signature that opens every v2 header.
const V2_SIGNATURE: &[u8] = b"\r\n\r\n\0\r\nQUIT\n";
/// What opens every v1 header.
const V1_PREFIX: &[u8] = b"PROXY ";

/// Why a connection's PROXY header was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProxyError {
    #[error("PROXY header from {0}, which is not in proxy_protocol.trusted_cidrs")]
    Untrusted(IpAddr),
    #[error("malformed PROXY header: {0}")]
    Malformed(String),
    #[error("PROXY header longer than {MAX_HEADER} bytes")]
    TooLong,
    #[error("connection closed inside the PROXY header")]
    Truncated,
    #[error("reading the PROXY header: {0}")]
    Io(String),
}

impl ProxyError {
    /// A bounded label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            ProxyError::Untrusted(_) => "proxy_untrusted",
            ProxyError::Malformed(_) | ProxyError::TooLong => "proxy_malformed",
            ProxyError::Truncated | ProxyError::Io(_) => "proxy_truncated",
        }
    }
}

/// Who is allowed to send PROXY headers.
#[derive(Debug, Clone)]
pub struct ProxyPolicy {
    pub trusted: Vec<IpNet>,
}

impl ProxyPolicy {
    pub fn trusts(&self, peer: IpAddr) -> bool {
        let peer = canonical(peer);
        self.trusted.iter().any(|net| net.contains(&peer))
    }
}

/// Could `buf` (possibly incomplete) be the start of a PROXY header?
pub fn looks_like_header(buf: &[u8]) -> bool {
    let starts = |sig: &[u8]| {
        let n = buf.len().min(sig.len());
        buf[..n] == sig[..n]
    };
    !buf.is_empty() && (starts(V2_SIGNATURE) || starts(V1_PREFIX))
}

/// The outcome of parsing a complete buffer prefix.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// More bytes are needed.
    Incomplete,
    /// A header of `len` bytes; `source` is the declared client, `None` for
    /// `UNKNOWN` / `LOCAL` / non-IP headers (the peer's own address applies).
    Header {
        len: usize,
        source: Option<SocketAddr>,
    },
}

/// Parses a header at the start of `buf` (which [`looks_like_header`]).
pub fn parse(buf: &[u8]) -> Result<Parsed, ProxyError> {
    let result = HeaderResult::parse(buf);
    if result.is_incomplete() {
        return if buf.len() >= MAX_HEADER {
            Err(ProxyError::TooLong)
        } else {
            Ok(Parsed::Incomplete)
        };
    }
    match result {
        HeaderResult::V1(Ok(header)) => Ok(Parsed::Header {
            len: header.header.len(),
            source: match header.addresses {
                v1::Addresses::Tcp4(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
                v1::Addresses::Tcp6(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
                v1::Addresses::Unknown => None,
            },
        }),
        HeaderResult::V2(Ok(header)) => Ok(Parsed::Header {
            len: header.len(),
            source: match (header.command, header.addresses) {
                (v2::Command::Local, _) => None,
                (v2::Command::Proxy, v2::Addresses::IPv4(a)) => {
                    Some(SocketAddr::from((a.source_address, a.source_port)))
                }
                (v2::Command::Proxy, v2::Addresses::IPv6(a)) => {
                    Some(SocketAddr::from((a.source_address, a.source_port)))
                }
                (v2::Command::Proxy, v2::Addresses::Unspecified | v2::Addresses::Unix(_)) => None,
            },
        }),
        HeaderResult::V1(Err(e)) => Err(ProxyError::Malformed(e.to_string())),
        HeaderResult::V2(Err(e)) => Err(ProxyError::Malformed(e.to_string())),
    }
}

/// Reads a PROXY header if `buf` + the stream start with one: returns the
/// declared client address (or `None` when there is no header, or it
/// declares none). The header's bytes are removed from `buf`; anything the
/// client sent after it stays there. `buf` must hold the first bytes read.
pub async fn read_header<R: AsyncRead + Unpin>(
    stream: &mut R,
    buf: &mut Vec<u8>,
    peer: IpAddr,
    policy: &ProxyPolicy,
) -> Result<Option<SocketAddr>, ProxyError> {
    if !looks_like_header(buf) {
        return Ok(None);
    }
    if !policy.trusts(peer) {
        return Err(ProxyError::Untrusted(peer));
    }
    loop {
        match parse(buf)? {
            Parsed::Header { len, source } => {
                buf.drain(..len);
                return Ok(source);
            }
            Parsed::Incomplete => {
                let mut chunk = [0u8; 256];
                let room = (MAX_HEADER - buf.len()).min(chunk.len());
                let n = stream
                    .read(&mut chunk[..room])
                    .await
                    .map_err(|e| ProxyError::Io(e.kind().to_string()))?;
                if n == 0 {
                    return Err(ProxyError::Truncated);
                }
                buf.extend_from_slice(&chunk[..n]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(cidrs: &[&str]) -> ProxyPolicy {
        ProxyPolicy {
            trusted: cidrs.iter().map(|c| c.parse().expect("cidr")).collect(),
        }
    }

    fn v2_tcp4(src: [u8; 4], sport: u16) -> Vec<u8> {
        let mut h = V2_SIGNATURE.to_vec();
        h.extend([0x21, 0x11, 0, 12]);
        h.extend(src);
        h.extend([127, 0, 0, 1]);
        h.extend(sport.to_be_bytes());
        h.extend(2233u16.to_be_bytes());
        h
    }

    async fn read(
        bytes: &[u8],
        first: usize,
        peer: &str,
    ) -> (Result<Option<SocketAddr>, ProxyError>, Vec<u8>) {
        let mut buf = bytes[..first].to_vec();
        let mut rest = &bytes[first..];
        let r = read_header(
            &mut rest,
            &mut buf,
            peer.parse().expect("ip"),
            &policy(&["10.0.0.0/8", "127.0.0.1/32"]),
        )
        .await;
        buf.extend_from_slice(rest);
        (r, buf)
    }

    #[tokio::test]
    async fn v1_from_a_trusted_peer_declares_the_client_and_keeps_the_rest() {
        let input = b"PROXY TCP4 203.0.113.9 10.0.0.1 51000 2233\r\nSSH-2.0-x\r\n";
        for first in [1, 6, 20, input.len()] {
            let (r, rest) = read(input, first, "10.1.2.3").await;
            assert_eq!(r, Ok(Some("203.0.113.9:51000".parse().expect("addr"))));
            assert_eq!(rest, b"SSH-2.0-x\r\n");
        }
    }

    #[tokio::test]
    async fn v2_from_a_trusted_peer_declares_the_client() {
        let mut input = v2_tcp4([198, 51, 100, 7], 40000);
        input.extend_from_slice(b"SSH-2.0-y\r\n");
        for first in [1, 13, 16, 20] {
            let (r, rest) = read(&input, first, "127.0.0.1").await;
            assert_eq!(r, Ok(Some("198.51.100.7:40000".parse().expect("addr"))));
            assert_eq!(rest, b"SSH-2.0-y\r\n");
        }
    }

    #[tokio::test]
    async fn a_header_from_an_untrusted_peer_is_refused() {
        let (r, _) = read(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n", 6, "192.0.2.1").await;
        assert_eq!(
            r,
            Err(ProxyError::Untrusted("192.0.2.1".parse().expect("ip")))
        );
        // IPv4-mapped IPv6 peers match IPv4 CIDRs.
        assert!(policy(&["10.0.0.0/8"]).trusts("::ffff:10.0.0.1".parse().expect("ip")));
    }

    #[tokio::test]
    async fn no_header_leaves_the_bytes_alone() {
        let (r, rest) = read(b"SSH-2.0-z\r\n", 4, "192.0.2.1").await;
        assert_eq!(r, Ok(None));
        assert_eq!(rest, b"SSH-2.0-z\r\n");
    }

    #[tokio::test]
    async fn truncated_malformed_and_endless_headers_are_errors() {
        let (r, _) = read(b"PROXY TCP4 1.2.3.4", 6, "10.0.0.1").await;
        assert_eq!(r, Err(ProxyError::Truncated));
        let (r, _) = read(b"PROXY TCP4 1.2.3.400 5.6.7.8 1 2\r\n", 6, "10.0.0.1").await;
        assert!(matches!(r, Err(ProxyError::Malformed(_))), "{r:?}");
        let (r, _) = read(&v2_tcp4([1, 2, 3, 4], 1)[..20], 20, "10.0.0.1").await;
        assert_eq!(r, Err(ProxyError::Truncated));
        let mut endless = b"PROXY ".to_vec();
        endless.extend(std::iter::repeat_n(b'1', 4000));
        let (r, _) = read(&endless, 6, "10.0.0.1").await;
        assert!(
            matches!(r, Err(ProxyError::TooLong | ProxyError::Malformed(_))),
            "{r:?}"
        );
    }

    #[test]
    fn unknown_and_local_declare_nothing() {
        assert_eq!(
            parse(b"PROXY UNKNOWN\r\n"),
            Ok(Parsed::Header {
                len: 15,
                source: None
            })
        );
        let mut local = V2_SIGNATURE.to_vec();
        local.extend([0x20, 0x00, 0, 0]);
        assert_eq!(
            parse(&local),
            Ok(Parsed::Header {
                len: 16,
                source: None
            })
        );
    }
}
