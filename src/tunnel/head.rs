//! The request head of an HTTP tunnel: read with a hard size bound, parsed
//! with `httparse`, and classified as a CONNECT, a WebSocket upgrade at
//! `/tunnel/ROUTE`, or something this port does not serve.
//!
//! [`parse`] is pure (no I/O) so it can be fuzzed; [`read_head`] feeds it.

use std::fmt;

use tokio::io::{AsyncRead, AsyncReadExt};
use zeroize::Zeroizing;

use super::token;

/// Largest request head accepted, request line and headers together. A
/// CONNECT or WebSocket upgrade needs a few hundred bytes; 8 KiB is what
/// common servers allow (nginx's default buffer), so real proxies fit, and
/// it bounds what one unauthenticated connection can make the gateway hold.
pub const MAX_HEAD: usize = 8 * 1024;

/// Most header lines accepted. Proxies add a handful (Via, X-Forwarded-*,
/// Forwarded); more than this is not a tunnel request.
pub const MAX_HEADERS: usize = 32;

/// Path prefix of the WebSocket tunnel: `GET /tunnel/ROUTE`.
pub const WEBSOCKET_PATH: &str = "/tunnel/";

/// The only WebSocket protocol version (RFC 6455).
pub const WEBSOCKET_VERSION: &str = "13";

/// Length of a decoded `Sec-WebSocket-Key` (RFC 6455 §4.1: a random 16-byte value).
const WEBSOCKET_KEY_BYTES: usize = 16;

/// What kind of request a head was, for metrics (`kind` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Connect,
    WebSocket,
    Other,
}

impl Kind {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Connect => "connect",
            Kind::WebSocket => "websocket",
            Kind::Other => "other",
        }
    }
}

/// A credential header's value (`Proxy-Authorization`, `Authorization`):
/// wiped on drop, never printed.
pub struct Credential(Zeroizing<String>);

impl Credential {
    pub(crate) fn new(value: &str) -> Self {
        Self(Zeroizing::new(value.to_owned()))
    }

    /// The token it carries (`Bearer`, or `Basic` with the token as the password).
    pub fn token(&self) -> Option<Zeroizing<Vec<u8>>> {
        token::token_of(&self.0)
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A request the gateway serves.
#[derive(Debug)]
pub enum Request {
    /// `CONNECT host:port`: `host` as sent (the route name, maybe with the
    /// configured suffix); `port` is only logged, never connected to.
    Connect {
        host: String,
        port: u16,
        credentials: Vec<Credential>,
    },
    /// `GET /tunnel/ROUTE` with a WebSocket upgrade.
    WebSocket {
        route: String,
        /// `Sec-WebSocket-Key`, for the `Sec-WebSocket-Accept` answer.
        key: String,
        credentials: Vec<Credential>,
    },
}

impl Request {
    pub fn kind(&self) -> Kind {
        match self {
            Request::Connect { .. } => Kind::Connect,
            Request::WebSocket { .. } => Kind::WebSocket,
        }
    }

    pub fn credentials(&self) -> &[Credential] {
        match self {
            Request::Connect { credentials, .. } | Request::WebSocket { credentials, .. } => {
                credentials
            }
        }
    }
}

/// A head the gateway answers with an error status and closes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// Over [`MAX_HEAD`] bytes or [`MAX_HEADERS`] headers: `431`.
    TooLarge,
    /// Not HTTP/1.x syntax (or the client stopped mid-head): `400`.
    Malformed,
    /// Well-formed, but not a request this port serves: `400`.
    Unsupported { kind: Kind, what: &'static str },
    /// A WebSocket upgrade with a version other than 13: `426`.
    WebSocketVersion,
}

impl Rejection {
    pub fn kind(&self) -> Kind {
        match self {
            Rejection::TooLarge | Rejection::Malformed => Kind::Other,
            Rejection::Unsupported { kind, .. } => *kind,
            Rejection::WebSocketVersion => Kind::WebSocket,
        }
    }
}

/// Parses `buf` as a request head. `Ok(None)`: incomplete, read more.
/// `Ok(Some((request, len)))`: the head is `buf[..len]`; what follows is
/// already the tunnel's payload.
pub fn parse(buf: &[u8]) -> Result<Option<(Request, usize)>, Rejection> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => {
            return Err(Rejection::TooLarge);
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(Rejection::TooLarge),
        Err(_) => return Err(Rejection::Malformed),
    };
    if len > MAX_HEAD {
        return Err(Rejection::TooLarge);
    }
    // A complete parse always fills method, path and version.
    let (Some(method), Some(path), Some(version)) = (req.method, req.path, req.version) else {
        return Err(Rejection::Malformed);
    };
    let request = match method {
        "CONNECT" => connect(path, req.headers)?,
        "GET" => websocket(path, version, req.headers)?,
        _ => {
            return Err(Rejection::Unsupported {
                kind: Kind::Other,
                what: "only CONNECT and a WebSocket GET /tunnel/ROUTE are served",
            });
        }
    };
    Ok(Some((request, len)))
}

/// `CONNECT host:port` (authority form, RFC 9110 §9.3.6).
fn connect(authority: &str, headers: &[httparse::Header<'_>]) -> Result<Request, Rejection> {
    let bad = Rejection::Unsupported {
        kind: Kind::Connect,
        what: "CONNECT needs ROUTE:PORT",
    };
    let (host, port) = authority.rsplit_once(':').ok_or(bad.clone())?;
    // Digits only: `u16::from_str` would also take a leading `+`.
    let port = Some(port)
        .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|p| p.parse::<u16>().ok());
    let (Some(port), false) = (port, host.is_empty()) else {
        return Err(bad);
    };
    Ok(Request::Connect {
        host: host.to_owned(),
        port,
        credentials: credentials(headers),
    })
}

/// `GET /tunnel/ROUTE` with `Upgrade: websocket` (RFC 6455 §4.2.1).
fn websocket(
    path: &str,
    version: u8,
    headers: &[httparse::Header<'_>],
) -> Result<Request, Rejection> {
    let upgrade = has_token(headers, "upgrade", "websocket");
    let kind = if upgrade {
        Kind::WebSocket
    } else {
        Kind::Other
    };
    let Some(rest) = path.strip_prefix(WEBSOCKET_PATH) else {
        return Err(Rejection::Unsupported {
            kind,
            what: "only CONNECT and a WebSocket GET /tunnel/ROUTE are served",
        });
    };
    // A query string is ignored (tokens travel in headers, never in URLs).
    let route = rest.split_once('?').map_or(rest, |(route, _)| route);
    if route.is_empty() || route.contains('/') {
        return Err(Rejection::Unsupported {
            kind,
            what: "the WebSocket path is /tunnel/ROUTE",
        });
    }
    if !upgrade || !has_token(headers, "connection", "upgrade") || version != 1 {
        return Err(Rejection::Unsupported {
            kind,
            what: "GET /tunnel/ROUTE needs an HTTP/1.1 WebSocket upgrade",
        });
    }
    if header(headers, "sec-websocket-version").map(str::trim) != Some(WEBSOCKET_VERSION) {
        return Err(Rejection::WebSocketVersion);
    }
    let key = header(headers, "sec-websocket-key")
        .map(str::trim)
        .filter(|k| token::decode_base64(k).is_some_and(|d| d.len() == WEBSOCKET_KEY_BYTES))
        .ok_or(Rejection::Unsupported {
            kind,
            what: "a WebSocket upgrade needs a valid Sec-WebSocket-Key",
        })?;
    Ok(Request::WebSocket {
        route: route.to_owned(),
        key: key.to_owned(),
        credentials: credentials(headers),
    })
}

/// Every `Proxy-Authorization` and `Authorization` value, in that order.
fn credentials(headers: &[httparse::Header<'_>]) -> Vec<Credential> {
    ["proxy-authorization", "authorization"]
        .iter()
        .flat_map(|name| {
            headers
                .iter()
                .filter(move |h| h.name.eq_ignore_ascii_case(name))
        })
        .filter_map(|h| std::str::from_utf8(h.value).ok())
        .map(Credential::new)
        .collect()
}

/// The first header called `name`, when its value is text.
fn header<'h>(headers: &'h [httparse::Header<'_>], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .and_then(|h| std::str::from_utf8(h.value).ok())
}

/// True when some `name` header lists `token` (comma-separated, any case).
fn has_token(headers: &[httparse::Header<'_>], name: &str, token: &str) -> bool {
    headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case(name))
        .filter_map(|h| std::str::from_utf8(h.value).ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// A head read off the wire.
#[derive(Debug)]
pub struct Head {
    pub request: Request,
    /// Bytes the client sent after the head (already tunnel payload).
    pub early: Vec<u8>,
}

/// Why no request came.
#[derive(Debug)]
pub enum ReadError {
    /// The client closed (or failed) before sending anything: nobody to answer.
    Gone,
    /// A head that must be answered with an error status.
    Rejected(Rejection),
}

/// Reads one request head, never holding more than [`MAX_HEAD`] bytes.
/// Bytes after the head come back as [`Head::early`].
pub async fn read_head<R: AsyncRead + Unpin>(reader: &mut R) -> Result<Head, ReadError> {
    let mut buf = vec![0u8; MAX_HEAD];
    let mut filled = 0;
    loop {
        let n = match reader.read(&mut buf[filled..]).await {
            Ok(n) => n,
            Err(_) if filled == 0 => return Err(ReadError::Gone),
            // Mid-head failure: answering is best effort.
            Err(_) => return Err(ReadError::Rejected(Rejection::Malformed)),
        };
        if n == 0 {
            return Err(match filled {
                0 => ReadError::Gone,
                _ => ReadError::Rejected(Rejection::Malformed),
            });
        }
        filled += n;
        // Re-parsing from the start costs at most MAX_HEAD bytes per read,
        // and garbage is refused as soon as it arrives.
        match parse(&buf[..filled]) {
            Ok(Some((request, len))) => {
                buf.truncate(filled);
                let early = buf.split_off(len);
                return Ok(Head { request, early });
            }
            Ok(None) => {}
            Err(rejection) => return Err(ReadError::Rejected(rejection)),
        }
    }
}
