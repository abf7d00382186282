//! The client end of a tunnel, for `switchboard tunnel` (a `ProxyCommand`):
//! open a CONNECT or WebSocket tunnel to a route through the gateway, then
//! carry stdin → tunnel and tunnel → stdout.
//!
//! The tunnel ends when the gateway's side ends: a ProxyCommand cannot
//! close its stdout except by exiting, and ssh waits for that EOF. Before
//! that, EOF on stdin is passed on (TCP half-close, or the empty WebSocket
//! message of the `bridge` module) so the box sees the client finish.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderValue, header};
use tokio_tungstenite::tungstenite::{self, http};
use zeroize::Zeroizing;

use super::bridge::{self, CHUNK, Meter, Until};
use super::head::{MAX_HEAD, MAX_HEADERS, WEBSOCKET_PATH};

/// The port named in `CONNECT ROUTE:PORT`. The gateway ignores it (it always
/// connects to the route's address); 22 says "the box's sshd" to any proxy
/// in between.
pub const CONNECT_PORT: u16 = 22;

/// How long reaching the gateway may take (TCP connect and its answer);
/// ssh's own `ConnectTimeout` does not reach a ProxyCommand.
const GATEWAY_TIMEOUT: Duration = Duration::from_secs(30);

/// Most of a refusal's body that is read and shown; the gateway's are one line.
const MAX_BODY: usize = 4 * 1024;

/// What `switchboard tunnel` was asked to do.
pub struct Options {
    /// The route (box) name.
    pub route: String,
    /// `HOST:PORT` of the gateway.
    pub gateway: String,
    /// WebSocket (`GET /tunnel/ROUTE`) instead of CONNECT.
    pub websocket: bool,
    /// The route's tunnel token, if the gateway wants one.
    pub token: Option<Zeroizing<String>>,
}

/// Why the tunnel did not open.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bad argument (exit 2).
    #[error("{0}")]
    Invalid(String),
    /// The gateway could not be reached.
    #[error("cannot reach the gateway {gateway}: {reason}")]
    Unreachable { gateway: String, reason: String },
    /// The gateway answered with a refusal: its message, or the status.
    #[error("{0}")]
    Refused(String),
    /// The gateway's answer was not HTTP, or the connection failed mid-way.
    #[error("tunnel through {gateway} failed: {reason}")]
    Failed { gateway: String, reason: String },
}

impl Options {
    /// Checks that the route, gateway and token can go into a request as is.
    pub fn validate(&self) -> Result<(), Error> {
        let route_ok = !self.route.is_empty()
            && self
                .route
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
        if !route_ok {
            return Err(Error::Invalid(format!(
                "{:?} is not a route name (letters, digits, '-', '.', '_')",
                self.route
            )));
        }
        let port_ok = self
            .gateway
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !port_ok || !self.gateway.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::Invalid(format!(
                "--gateway {:?} is not HOST:PORT",
                self.gateway
            )));
        }
        if let Some(token) = &self.token
            && (token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()))
        {
            return Err(Error::Invalid(
                "the token is empty or has spaces or non-ASCII characters".into(),
            ));
        }
        Ok(())
    }

    fn failed(&self, reason: impl ToString) -> Error {
        Error::Failed {
            gateway: self.gateway.clone(),
            reason: reason.to_string(),
        }
    }
}

/// Connects to the gateway and runs the tunnel between `input` and `output`.
pub async fn run<R, W>(opts: &Options, input: R, output: W) -> Result<(), Error>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    opts.validate()?;
    let connected = tokio::time::timeout(GATEWAY_TIMEOUT, TcpStream::connect(&opts.gateway)).await;
    let stream = match connected {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            return Err(Error::Unreachable {
                gateway: opts.gateway.clone(),
                reason: e.to_string(),
            });
        }
        Err(_) => {
            return Err(Error::Unreachable {
                gateway: opts.gateway.clone(),
                reason: "timed out".into(),
            });
        }
    };
    let _ = stream.set_nodelay(true);
    tunnel(stream, opts, input, output).await
}

/// Runs the tunnel over an already open connection to the gateway.
pub async fn tunnel<S, R, W>(stream: S, opts: &Options, input: R, output: W) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    if opts.websocket {
        websocket(stream, opts, input, output).await
    } else {
        connect(stream, opts, input, output).await
    }
}

/// `CONNECT ROUTE:22`, then raw bytes.
async fn connect<S, R, W>(
    mut stream: S,
    opts: &Options,
    input: R,
    mut output: W,
) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let authority = format!("{}:{CONNECT_PORT}", opts.route);
    let mut request = Zeroizing::new(format!(
        "CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n"
    ));
    if let Some(token) = &opts.token {
        request.push_str("Proxy-Authorization: Bearer ");
        request.push_str(token);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    let answer = async {
        stream.write_all(request.as_bytes()).await?;
        read_response(&mut stream).await
    };
    let (status, early) = match tokio::time::timeout(GATEWAY_TIMEOUT, answer).await {
        Ok(Ok(Answer::Open { status, early })) => (status, early),
        Ok(Ok(Answer::Refused { status, body })) => return Err(refusal(status, &body)),
        Ok(Err(e)) => return Err(opts.failed(e)),
        Err(_) => return Err(opts.failed("no answer to CONNECT")),
    };
    tracing::debug!(status, "tunnel open");
    output.write_all(&early).await.map_err(|e| opts.failed(e))?;
    output.flush().await.map_err(|e| opts.failed(e))?;
    let (mut from_gw, mut to_gw) = tokio::io::split(stream);
    let mut input = BufReader::with_capacity(CHUNK, input);
    let send = async {
        tokio::io::copy_buf(&mut input, &mut to_gw).await?;
        to_gw.shutdown().await
    };
    let receive = async {
        let mut from_gw = BufReader::with_capacity(CHUNK, &mut from_gw);
        tokio::io::copy_buf(&mut from_gw, &mut output).await?;
        output.flush().await
    };
    let mut send = std::pin::pin!(send);
    let mut receive = std::pin::pin!(receive);
    let mut sent = false;
    let result = loop {
        tokio::select! {
            r = &mut send, if !sent => match r {
                Ok(()) => sent = true,
                Err(e) => break Err(e),
            },
            r = &mut receive => break r,
        }
    };
    result.map_err(|e| opts.failed(e))
}

/// `GET /tunnel/ROUTE` upgraded to a WebSocket, then binary messages.
async fn websocket<S, R, W>(stream: S, opts: &Options, input: R, output: W) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let url = format!("ws://{}{WEBSOCKET_PATH}{}", opts.gateway, opts.route);
    let mut request = url.into_client_request().map_err(|e| opts.failed(e))?;
    if let Some(token) = &opts.token {
        let bearer = Zeroizing::new(format!("Bearer {}", token.as_str()));
        let mut value = HeaderValue::from_str(&bearer)
            .map_err(|_| Error::Invalid("the token cannot go into a header".into()))?;
        value.set_sensitive(true);
        request.headers_mut().insert(header::AUTHORIZATION, value);
    }
    let handshake =
        tokio_tungstenite::client_async_with_config(request, stream, Some(bridge::config()));
    let ws = match tokio::time::timeout(GATEWAY_TIMEOUT, handshake).await {
        Ok(Ok((ws, _response))) => ws,
        Ok(Err(tungstenite::Error::Http(response))) => {
            let body = response.body().as_deref().unwrap_or_default();
            return Err(refusal(response.status().as_u16(), body));
        }
        Ok(Err(e)) => return Err(opts.failed(e)),
        Err(_) => return Err(opts.failed("no answer to the WebSocket upgrade")),
    };
    bridge::bridge(ws, input, output, Until::PeerEnded, Meter(None)).await;
    Ok(())
}

/// The gateway's answer to CONNECT.
enum Answer {
    /// 2xx; `early` is tunnel payload read along with the head.
    Open { status: u16, early: Vec<u8> },
    /// Anything else, with (the start of) its body.
    Refused { status: u16, body: Vec<u8> },
}

/// Reads the response head (at most [`MAX_HEAD`] bytes) and, for a
/// refusal, up to [`MAX_BODY`] bytes of body.
async fn read_response<S: AsyncRead + Unpin>(stream: &mut S) -> std::io::Result<Answer> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    let mut buf = vec![0u8; MAX_HEAD];
    let mut filled = 0;
    let (status, len, content_length) = loop {
        let n = stream.read(&mut buf[filled..]).await?;
        if n == 0 {
            return Err(bad("the gateway closed without answering"));
        }
        filled += n;
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(&buf[..filled]) {
            Ok(httparse::Status::Complete(len)) => {
                let status = response.code.ok_or_else(|| bad("no status"))?;
                let content_length = response
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                    .and_then(|h| std::str::from_utf8(h.value).ok())
                    .and_then(|v| v.trim().parse::<usize>().ok());
                break (status, len, content_length);
            }
            Ok(httparse::Status::Partial) if filled < MAX_HEAD => {}
            Ok(httparse::Status::Partial) => return Err(bad("answer head too large")),
            Err(e) => return Err(bad(&format!("not an HTTP answer ({e})"))),
        }
    };
    buf.truncate(filled);
    let mut rest = buf.split_off(len);
    if (200..300).contains(&status) {
        return Ok(Answer::Open {
            status,
            early: rest,
        });
    }
    let want = content_length.unwrap_or(MAX_BODY).min(MAX_BODY);
    rest.truncate(want);
    let mut chunk = [0u8; 1024];
    while rest.len() < want {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => rest.extend_from_slice(&chunk[..n.min(want - rest.len())]),
        }
    }
    Ok(Answer::Refused { status, body: rest })
}

/// The message for a refusal: the gateway's own line (without its
/// `switchboard: ` prefix, which `main` adds back), else the status.
fn refusal(status: u16, body: &[u8]) -> Error {
    let text = String::from_utf8_lossy(body);
    let line = text.lines().next().unwrap_or("").trim();
    let line = line.strip_prefix("switchboard: ").unwrap_or(line);
    // Whatever answered may not be the gateway: no terminal control codes.
    let line: String = line.chars().filter(|c| !c.is_control()).collect();
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    if line.is_empty() {
        Error::Refused(format!("the gateway answered {status} {reason}"))
    } else {
        Error::Refused(format!("{line} ({status} {reason})"))
    }
}
