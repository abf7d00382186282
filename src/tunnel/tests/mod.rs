//! `serve` end to end over `tokio::io::duplex`, with boxes played by
//! loopback listeners: every refusal's status and body, token checks,
//! CONNECT and WebSocket relays, and the `switchboard tunnel` client
//! against the real server side.

mod client;
mod head;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::net::TcpListener;

use crate::access::Access;
use crate::config::{Config, HttpTunnelConfig, TunnelAuth};
use crate::ops::Conn;
use crate::routes::{Route, RouteState, RouteTable, shared};
use crate::tunnel::Shared;
use crate::upstream::BoxLeg;

/// Room in each direction of a test pipe.
const PIPE: usize = 64 * 1024;
/// Deadline for anything a test waits on.
const WAIT: Duration = Duration::from_secs(10);

pub(super) fn route(name: &str, address: &str) -> Route {
    Route::for_test(name, address)
}

pub(super) fn with_token(mut route: Route, token: &str) -> Route {
    route.token_sha256 = Some(Sha256::digest(token.as_bytes()).into());
    route
}

pub(super) fn tunnels(auth: TunnelAuth, host_suffix: &str) -> HttpTunnelConfig {
    HttpTunnelConfig {
        enabled: true,
        auth,
        host_suffix: host_suffix.into(),
    }
}

pub(super) fn context(http_tunnel: HttpTunnelConfig, routes: Vec<Route>) -> Arc<Shared> {
    let mut config = Config {
        http_tunnel,
        ..Config::default()
    };
    config.upstream.connect_timeout = Duration::from_secs(2);
    let config = Arc::new(config);
    Arc::new(Shared {
        boxes: Arc::new(BoxLeg::new(&config, None)),
        access: Arc::new(Access::new(config, shared(RouteTable::new(routes)))),
    })
}

pub(super) fn conn() -> Arc<Conn> {
    let addr = SocketAddr::from(([127, 0, 0, 1], 40000));
    Arc::new(Conn::new(addr, "http", None))
}

/// Starts `serve` on one end of a pipe; returns the client's end.
pub(super) fn start(ctx: &Arc<Shared>, conn: &Arc<Conn>) -> DuplexStream {
    let (client, server) = tokio::io::duplex(PIPE);
    tokio::spawn(super::serve(server, conn.clone(), ctx.clone()));
    client
}

/// Sends `request`, returns everything the gateway answers until it closes.
async fn exchange(ctx: &Arc<Shared>, conn: &Arc<Conn>, request: &[u8]) -> String {
    let mut client = start(ctx, conn);
    client.write_all(request).await.expect("send request");
    let mut answer = Vec::new();
    tokio::time::timeout(WAIT, client.read_to_end(&mut answer))
        .await
        .expect("the gateway closes after a refusal")
        .expect("read answer");
    String::from_utf8(answer).expect("text answer")
}

/// A box stand-in: accepts connections, reads each to EOF, then answers
/// `got N: <bytes>` and closes (so half-close must work both ways).
pub(super) async fn box_listener() -> (String, tokio::sync::mpsc::UnboundedReceiver<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let (accepted, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let _ = accepted.send(());
            tokio::spawn(async move {
                let mut got = Vec::new();
                if tcp.read_to_end(&mut got).await.is_ok() {
                    let mut reply = format!("got {}: ", got.len()).into_bytes();
                    reply.extend_from_slice(&got);
                    let _ = tcp.write_all(&reply).await;
                }
            });
        }
    });
    (addr, rx)
}

/// An address where nothing listens.
async fn closed_port() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("addr").to_string()
}

fn status_of(answer: &str) -> &str {
    answer.lines().next().unwrap_or("")
}

fn body_of(answer: &str) -> &str {
    answer.split_once("\r\n\r\n").map_or("", |(_, body)| body)
}

#[track_caller]
fn assert_refusal(answer: &str, status: &str, body_has: &str) {
    assert!(
        status_of(answer).starts_with(&format!("HTTP/1.1 {status} ")),
        "{answer}"
    );
    assert!(answer.contains("\r\nConnection: close\r\n"), "{answer}");
    let body = body_of(answer);
    assert!(
        body.starts_with("switchboard: ") && body.ends_with('\n') && body.lines().count() == 1,
        "{answer}"
    );
    assert!(body.contains(body_has), "{answer}");
}

#[tokio::test]
async fn garbage_gets_400_and_oversized_heads_431() {
    let ctx = context(tunnels(TunnelAuth::None, ""), vec![]);
    let answer = exchange(&ctx, &conn(), b"\x16\x03\x01\x00\xa5garbage\r\n\r\n").await;
    assert_refusal(&answer, "400", "this port speaks SSH");
    let answer = exchange(&ctx, &conn(), b"DELETE /x HTTP/1.1\r\n\r\n").await;
    assert_refusal(&answer, "400", "only CONNECT");
    let huge = format!("CONNECT a:22 HTTP/1.1\r\nX: {}\r\n\r\n", "y".repeat(9000));
    let answer = exchange(&ctx, &conn(), huge.as_bytes()).await;
    assert_refusal(&answer, "431", "request head over");
}

#[tokio::test]
async fn a_host_that_is_no_route_gets_404_and_no_connection() {
    let (addr, mut accepted) = box_listener().await;
    let ctx = context(
        tunnels(TunnelAuth::None, ""),
        vec![route("alice-ws", &addr)],
    );
    let c = conn();
    // The box's own address, and a host that merely resembles the route.
    for host in [addr.as_str(), "127.0.0.1:22", "alice-ws.example.com:22"] {
        let answer = exchange(
            &ctx,
            &c,
            format!("CONNECT {host} HTTP/1.1\r\n\r\n").as_bytes(),
        )
        .await;
        assert_refusal(&answer, "404", "no route named");
    }
    let ws = format!(
        "GET /tunnel/bob HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\n\r\n",
        "dGhlIHNhbXBsZSBub25jZQ=="
    );
    assert_refusal(
        &exchange(&ctx, &c, ws.as_bytes()).await,
        "404",
        "no route named bob",
    );
    assert!(
        accepted.try_recv().is_err(),
        "the gateway connected somewhere"
    );
    assert!(!c.is_authenticated());
}

#[tokio::test]
async fn tokens_are_checked_per_route() {
    let (addr, _accepted) = box_listener().await;
    let ctx = context(
        tunnels(TunnelAuth::Token, ""),
        vec![
            with_token(route("alice-ws", &addr), "s3cret"),
            route("no-token", &addr),
        ],
    );
    let c = conn();
    for auth in [
        "",
        "Proxy-Authorization: Bearer wrong\r\n",
        "Proxy-Authorization: Basic eDp3cm9uZw==\r\n",
    ] {
        let answer = exchange(
            &ctx,
            &c,
            format!("CONNECT alice-ws:22 HTTP/1.1\r\n{auth}\r\n").as_bytes(),
        )
        .await;
        assert_refusal(&answer, "407", "alice-ws needs its tunnel token");
        assert!(
            answer.contains("\r\nProxy-Authenticate: Basic realm=\"switchboard\"\r\n"),
            "{answer}"
        );
    }
    assert_eq!(c.auth_failures(), 3);
    // A route without a stored token cannot be opened under auth = "token".
    let answer = exchange(
        &ctx,
        &c,
        b"CONNECT no-token:22 HTTP/1.1\r\nProxy-Authorization: Bearer s3cret\r\n\r\n",
    )
    .await;
    assert_refusal(&answer, "407", "no-token");
    assert!(!c.is_authenticated());

    // Right token, as Bearer and as Basic's password ("x:s3cret").
    for auth in [
        "Proxy-Authorization: Bearer s3cret",
        "Proxy-Authorization: Basic eDpzM2NyZXQ=",
    ] {
        let c = conn();
        let mut client = start(&ctx, &c);
        let request = format!("CONNECT alice-ws:22 HTTP/1.1\r\n{auth}\r\n\r\n");
        client.write_all(request.as_bytes()).await.expect("send");
        client.shutdown().await.expect("eof");
        let mut answer = String::new();
        tokio::time::timeout(WAIT, client.read_to_string(&mut answer))
            .await
            .expect("deadline")
            .expect("read");
        assert_eq!(
            answer, "HTTP/1.1 200 Connection established\r\n\r\ngot 0: ",
            "{auth}"
        );
        assert!(c.is_authenticated());
        let id = c.identity();
        assert_eq!(
            (id.route.as_deref(), c.mode()),
            (Some("alice-ws"), Some("connect"))
        );
    }
}

#[tokio::test]
async fn websocket_token_refusal_is_401() {
    let ctx = context(
        tunnels(TunnelAuth::Token, ""),
        vec![with_token(route("alice-ws", "127.0.0.1:9"), "s3cret")],
    );
    let ws = "GET /tunnel/alice-ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
              Authorization: Bearer nope\r\n\r\n";
    let answer = exchange(&ctx, &conn(), ws.as_bytes()).await;
    assert_refusal(&answer, "401", "alice-ws needs its tunnel token");
    assert!(
        answer.contains("\r\nWWW-Authenticate: Basic realm=\"switchboard\"\r\n"),
        "{answer}"
    );
}

#[tokio::test]
async fn stopped_and_unreachable_routes_say_so() {
    let mut stopped = route("alice-ws", "127.0.0.1:9");
    stopped.state = RouteState::Stopped { message: None };
    let dead = closed_port().await;
    let ctx = context(
        tunnels(TunnelAuth::None, ""),
        vec![stopped, route("bob-ws", &dead)],
    );
    let answer = exchange(&ctx, &conn(), b"CONNECT alice-ws:22 HTTP/1.1\r\n\r\n").await;
    assert_refusal(
        &answer,
        "503",
        "alice-ws is stopped; start it, then reconnect",
    );
    let answer = exchange(&ctx, &conn(), b"CONNECT bob-ws:22 HTTP/1.1\r\n\r\n").await;
    assert_refusal(
        &answer,
        "502",
        &format!("switchboard: cannot reach bob-ws ({dead}): connection refused"),
    );
}

#[tokio::test]
async fn disabled_tunnels_are_refused() {
    let mut config = tunnels(TunnelAuth::None, "");
    config.enabled = false;
    let ctx = context(config, vec![route("alice-ws", "127.0.0.1:9")]);
    let answer = exchange(&ctx, &conn(), b"CONNECT alice-ws:22 HTTP/1.1\r\n\r\n").await;
    assert_refusal(&answer, "400", "not enabled");
}

#[tokio::test]
async fn connect_relays_early_bytes_and_half_close_with_the_suffix_or_without() {
    let (addr, _accepted) = box_listener().await;
    let ctx = context(
        tunnels(TunnelAuth::None, ".ssh.example.com"),
        vec![route("alice-ws", &addr)],
    );
    // The port is ignored: the route's address is the only destination.
    for host in [
        "alice-ws.ssh.example.com:22",
        "alice-ws.SSH.Example.com:22",
        "alice-ws:2222",
    ] {
        let c = conn();
        let mut client = start(&ctx, &c);
        // Payload right behind the head, before the 200: it must reach the box.
        let request = format!("CONNECT {host} HTTP/1.1\r\nHost: {host}\r\n\r\nearly+");
        client.write_all(request.as_bytes()).await.expect("send");
        let mut status = vec![0u8; b"HTTP/1.1 200 Connection established\r\n\r\n".len()];
        client.read_exact(&mut status).await.expect("status");
        client.write_all(b"late").await.expect("send");
        client.shutdown().await.expect("half-close");
        let mut rest = String::new();
        tokio::time::timeout(WAIT, client.read_to_string(&mut rest))
            .await
            .expect("deadline")
            .expect("read");
        assert_eq!(rest, "got 10: early+late", "{host}");
        assert!(c.is_authenticated());
    }
}

#[tokio::test]
async fn websocket_text_messages_are_refused_with_1003() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

    let (addr, _accepted) = box_listener().await;
    let ctx = context(
        tunnels(TunnelAuth::None, ""),
        vec![route("alice-ws", &addr)],
    );
    let c = conn();
    let stream = start(&ctx, &c);
    let (mut ws, response) = tokio_tungstenite::client_async("ws://gw/tunnel/alice-ws", stream)
        .await
        .expect("upgrade");
    assert_eq!(response.status(), 101);
    assert_eq!(c.mode(), Some("websocket"));
    ws.send(Message::text("not bytes")).await.expect("send");
    let closed = tokio::time::timeout(WAIT, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| f.code),
                Some(Ok(_)) => continue,
                other => panic!("{other:?}"),
            }
        }
    })
    .await
    .expect("deadline");
    assert_eq!(closed, Some(CloseCode::Unsupported));
}
