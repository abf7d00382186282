//! The `switchboard tunnel` client against the real server side: both
//! transports carry bytes and half-close, refusals become one-line errors.

use zeroize::Zeroizing;

use super::{WAIT, box_listener, conn, context, route, start, tunnels, with_token};
use crate::config::TunnelAuth;
use crate::tunnel::client::{Error, Options, tunnel};

fn options(route: &str, websocket: bool, token: Option<&str>) -> Options {
    Options {
        route: route.into(),
        gateway: "127.0.0.1:2233".into(),
        websocket,
        token: token.map(|t| Zeroizing::new(t.to_owned())),
    }
}

/// Runs the client with `input` as stdin; returns what it wrote to stdout.
async fn run_client(
    ctx: &std::sync::Arc<crate::tunnel::Shared>,
    opts: &Options,
    input: &[u8],
) -> Result<String, Error> {
    let stream = start(ctx, &conn());
    let mut output = Vec::new();
    tokio::time::timeout(WAIT, tunnel(stream, opts, input, &mut output))
        .await
        .expect("the tunnel ends when the box closes")?;
    Ok(String::from_utf8(output).expect("text"))
}

#[tokio::test]
async fn both_transports_carry_bytes_and_eof_both_ways() {
    let (addr, _accepted) = box_listener().await;
    let ctx = context(
        tunnels(TunnelAuth::Token, ""),
        vec![with_token(route("alice-ws", &addr), "s3cret")],
    );
    for websocket in [false, true] {
        let opts = options("alice-ws", websocket, Some("s3cret"));
        // The box answers only after our EOF: half-close travelled.
        let out = run_client(&ctx, &opts, b"hello").await.expect("tunnel");
        assert_eq!(out, "got 5: hello", "websocket={websocket}");
    }
}

#[tokio::test]
async fn big_streams_cross_the_websocket_in_bounded_messages() {
    let (addr, _accepted) = box_listener().await;
    let ctx = context(
        tunnels(TunnelAuth::None, ""),
        vec![route("alice-ws", &addr)],
    );
    let input: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let stream = start(&ctx, &conn());
    let mut output = Vec::new();
    let opts = options("alice-ws", true, None);
    tokio::time::timeout(WAIT, tunnel(stream, &opts, &input[..], &mut output))
        .await
        .expect("deadline")
        .expect("tunnel");
    let prefix = format!("got {}: ", input.len());
    assert!(output.starts_with(prefix.as_bytes()));
    assert!(output[prefix.len()..] == input[..], "payload differs");
}

#[tokio::test]
async fn refusals_become_one_line_errors() {
    let (addr, _accepted) = box_listener().await;
    let ctx = context(
        tunnels(TunnelAuth::Token, ""),
        vec![with_token(route("alice-ws", &addr), "s3cret")],
    );
    let cases = [
        (
            options("nope", false, None),
            "no route named nope",
            "(404 Not Found)",
        ),
        (
            options("nope", true, None),
            "no route named nope",
            "(404 Not Found)",
        ),
        (
            options("alice-ws", false, Some("wrong")),
            "alice-ws needs its tunnel token",
            "(407 Proxy Authentication Required)",
        ),
        (
            options("alice-ws", true, None),
            "alice-ws needs its tunnel token",
            "(401 Unauthorized)",
        ),
    ];
    for (opts, says, status) in cases {
        match run_client(&ctx, &opts, b"").await {
            Err(Error::Refused(message)) => {
                assert!(message.starts_with(says), "{message}");
                assert!(message.ends_with(status), "{message}");
                assert!(!message.contains('\n'), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn options_that_cannot_go_into_a_request_are_refused() {
    let mut bad = vec![
        options("alice ws", false, None),
        options("alice-ws\r\nX: y", false, None),
        options("", false, None),
        options("a/b", true, None),
        options("alice-ws", false, Some("two words")),
        options("alice-ws", false, Some("")),
    ];
    for gateway in ["gw.example.com", "gw:port", ":2233", "gw :22"] {
        let mut o = options("alice-ws", false, None);
        o.gateway = gateway.into();
        bad.push(o);
    }
    for o in bad {
        assert!(
            matches!(o.validate(), Err(Error::Invalid(_))),
            "{}",
            o.route
        );
    }
    for gateway in ["gw.example.com:2233", "[::1]:2233", "10.0.0.1:22"] {
        let mut o = options("box.ns", true, Some("tok-en_1"));
        o.gateway = gateway.into();
        assert!(o.validate().is_ok(), "{gateway}");
    }
}

#[tokio::test]
async fn the_host_suffix_works_with_both_transports() {
    let (addr, _accepted) = box_listener().await;
    let ctx = context(
        tunnels(TunnelAuth::None, ".ssh.example.com"),
        vec![route("alice-ws", &addr)],
    );
    for websocket in [false, true] {
        let opts = options("alice-ws.ssh.example.com", websocket, None);
        let out = run_client(&ctx, &opts, b"hi").await.expect("tunnel");
        assert_eq!(out, "got 2: hi", "websocket={websocket}");
    }
}
