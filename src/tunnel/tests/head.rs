//! The request-head parser and reader: classification, bounds, early bytes.

use tokio::io::AsyncWriteExt;

use crate::tunnel::head::{
    Kind, MAX_HEAD, MAX_HEADERS, ReadError, Rejection, Request, parse, read_head,
};

const WS_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

fn ws_request(path: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\
         Sec-WebSocket-Key: {WS_KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

fn parsed(text: &str) -> (Request, usize) {
    match parse(text.as_bytes()) {
        Ok(Some(done)) => done,
        other => panic!("{text:?}: {other:?}"),
    }
}

fn rejected(text: &str) -> Rejection {
    match parse(text.as_bytes()) {
        Err(rejection) => rejection,
        other => panic!("{text:?}: {other:?}"),
    }
}

#[test]
fn connect_names_host_and_port() {
    let head = "CONNECT alice-ws.ssh.example.com:2233 HTTP/1.1\r\nHost: x\r\n\r\n";
    let (request, len) = parsed(&format!("{head}SSH-2.0-early"));
    assert_eq!(len, head.len());
    let Request::Connect {
        host,
        port,
        credentials,
    } = request
    else {
        panic!("{request:?}")
    };
    assert_eq!((host.as_str(), port), ("alice-ws.ssh.example.com", 2233));
    assert!(credentials.is_empty());
    // HTTP/1.0 and bare LF line ends are accepted too.
    assert!(matches!(
        parsed("CONNECT a:22 HTTP/1.0\n\n").0,
        Request::Connect { .. }
    ));
}

#[test]
fn connect_without_a_port_is_refused() {
    for target in [
        "alice-ws",
        "alice-ws:",
        ":22",
        "alice-ws:+22",
        "alice-ws:65536",
        "a:x",
    ] {
        let rejection = rejected(&format!("CONNECT {target} HTTP/1.1\r\n\r\n"));
        assert!(
            matches!(
                rejection,
                Rejection::Unsupported {
                    kind: Kind::Connect,
                    ..
                }
            ),
            "{target}: {rejection:?}"
        );
    }
}

#[test]
fn credentials_are_collected_and_never_printed() {
    let (request, _) = parsed(
        "CONNECT a:22 HTTP/1.1\r\nAuthorization: Bearer two\r\nProxy-Authorization: Bearer one\r\n\r\n",
    );
    let tokens: Vec<Vec<u8>> = request
        .credentials()
        .iter()
        .filter_map(|c| c.token().map(|t| t.to_vec()))
        .collect();
    assert_eq!(tokens, [b"one".to_vec(), b"two".to_vec()]);
    let debug = format!("{request:?}");
    assert!(
        !debug.contains("one") && debug.contains("<redacted>"),
        "{debug}"
    );
}

#[test]
fn websocket_upgrade_names_the_route() {
    let (request, _) = parsed(&ws_request("/tunnel/alice-ws?ignored=1", ""));
    let Request::WebSocket { route, key, .. } = request else {
        panic!("{request:?}")
    };
    assert_eq!((route.as_str(), key.as_str()), ("alice-ws", WS_KEY));
}

#[test]
fn websocket_upgrades_must_be_complete() {
    let no_upgrade = "GET /tunnel/alice-ws HTTP/1.1\r\nHost: gw\r\n\r\n";
    assert!(matches!(
        rejected(no_upgrade),
        Rejection::Unsupported {
            kind: Kind::Other,
            ..
        }
    ));
    let old = ws_request("/tunnel/a", "").replace("HTTP/1.1", "HTTP/1.0");
    assert!(matches!(rejected(&old), Rejection::Unsupported { .. }));
    let v12 = ws_request("/tunnel/a", "").replace("Version: 13", "Version: 12");
    assert_eq!(rejected(&v12), Rejection::WebSocketVersion);
    let bad_key = ws_request("/tunnel/a", "").replace(WS_KEY, "short");
    assert!(matches!(
        rejected(&bad_key),
        Rejection::Unsupported {
            kind: Kind::WebSocket,
            ..
        }
    ));
    for path in ["/tunnel/", "/tunnel/a/b", "/", "/tunnelx/a"] {
        assert!(
            matches!(
                rejected(&ws_request(path, "")),
                Rejection::Unsupported { .. }
            ),
            "{path}"
        );
    }
}

#[test]
fn other_requests_and_garbage_are_refused() {
    assert!(matches!(
        rejected("POST /tunnel/a HTTP/1.1\r\n\r\n"),
        Rejection::Unsupported {
            kind: Kind::Other,
            ..
        }
    ));
    assert!(matches!(
        rejected("GET / HTTP/1.1\r\n\r\n"),
        Rejection::Unsupported { .. }
    ));
    for garbage in [
        "\x16\x03\x01\x02\x00",
        "CONNECT a:22 HTTX/1.1\r\n\r\n",
        "\0\0\0\0",
    ] {
        assert_eq!(rejected(garbage), Rejection::Malformed, "{garbage:?}");
    }
}

#[test]
fn heads_are_bounded() {
    assert!(matches!(parse(b"CONNECT a:22 HTTP/1.1\r\nHost:"), Ok(None)));
    let many: String = (0..=MAX_HEADERS).map(|i| format!("X-{i}: y\r\n")).collect();
    assert_eq!(
        rejected(&format!("CONNECT a:22 HTTP/1.1\r\n{many}\r\n")),
        Rejection::TooLarge
    );
    let long = format!("CONNECT a:22 HTTP/1.1\r\nX: {}", "y".repeat(MAX_HEAD));
    assert_eq!(rejected(&long), Rejection::TooLarge);
    let complete_but_long = format!(
        "CONNECT a:22 HTTP/1.1\r\nX: {}\r\n\r\n",
        "y".repeat(MAX_HEAD)
    );
    assert_eq!(rejected(&complete_but_long), Rejection::TooLarge);
}

#[tokio::test]
async fn read_head_keeps_bytes_after_the_head() {
    let (mut client, mut server) = tokio::io::duplex(64);
    let writer = tokio::spawn(async move {
        // One byte at a time: the reader must reassemble.
        for b in b"CONNECT a:22 HTTP/1.1\r\n\r\nSSH-2.0-x" {
            client.write_all(&[*b]).await.expect("write");
        }
        client
    });
    let head = read_head(&mut server).await.expect("head");
    assert!(matches!(head.request, Request::Connect { .. }));
    let _client = writer.await.expect("writer");
    // Whatever arrived after the blank line is kept, in order.
    assert!(b"SSH-2.0-x".starts_with(&head.early), "{:?}", head.early);
}

#[tokio::test]
async fn read_head_refuses_endless_heads_and_reports_eof() {
    let (mut client, mut server) = tokio::io::duplex(MAX_HEAD * 2);
    client
        .write_all(format!("CONNECT a:22 HTTP/1.1\r\nX: {}", "y".repeat(MAX_HEAD)).as_bytes())
        .await
        .expect("write");
    assert!(matches!(
        read_head(&mut server).await,
        Err(ReadError::Rejected(Rejection::TooLarge))
    ));

    let (mut client, mut server) = tokio::io::duplex(1024);
    client.write_all(b"CONNECT a:2").await.expect("write");
    drop(client);
    assert!(matches!(
        read_head(&mut server).await,
        Err(ReadError::Rejected(Rejection::Malformed))
    ));

    let (client, mut server) = tokio::io::duplex(1024);
    drop(client);
    assert!(matches!(read_head(&mut server).await, Err(ReadError::Gone)));
}
