//! Pre-authentication fairness (issue 13, item 3): one source cannot hold
//! the unauthenticated table, whether it comes straight from another
//! loopback address or through a PROXY header; random early drop as the
//! table fills; an end without authentication counts (lightly) towards the
//! per-source penalty; exempt sources have neither share nor penalty.
//!
//! The hostile source is 127.0.0.2 (or an address in a PROXY header), the
//! legitimate one 127.0.0.3 (`ssh -b`): loopback has every 127/8 address.

mod common;

use std::io::Read;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::*;

const HOSTILE: &str = "127.0.0.2";
const LEGITIMATE: &str = "127.0.0.3";

/// `n` TCP connections from `source` to 127.0.0.1:`port`, opened at once.
fn connect_from(source: &str, port: u16, n: usize) -> Vec<TcpStream> {
    let source: IpAddr = source.parse().expect("source address");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut streams = Vec::with_capacity(n);
        for _ in 0..n {
            let socket = tokio::net::TcpSocket::new_v4().expect("socket");
            socket
                .bind(SocketAddr::new(source, 0))
                .expect("bind the source address");
            let stream = socket
                .connect(SocketAddr::from(([127, 0, 0, 1], port)))
                .await
                .expect("connect");
            let stream = stream.into_std().expect("std stream");
            stream.set_nonblocking(false).expect("blocking");
            streams.push(stream);
        }
        streams
    })
}

/// Whether the gateway let `conn` in: it sends its version line and keeps
/// the connection open; a refused one is closed without a word.
fn admitted(conn: &mut TcpStream) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    while !seen.starts_with(b"SSH-") {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let _ = conn.set_read_timeout(Some(left));
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return false,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    true
}

/// How many of `conns` were let in.
fn count_admitted(conns: &mut [TcpStream]) -> usize {
    conns.iter_mut().map(admitted).filter(|&ok| ok).count()
}

/// `ssh` from `source` (`-b`) to the gateway, printing `$BOX`.
fn ssh_from(gw: &Gateway, key: &Key, source: &str) -> Output {
    run(
        gw.ssh_cmd(key)
            .args(["-b", source, "anyone@127.0.0.1", "echo $BOX"]),
        Input::Null,
        SSH_TIMEOUT,
    )
}

/// `/metrics` once the harness's own banner probe has gone.
fn wait_idle(gw: &Gateway) {
    assert!(eventually(Duration::from_secs(5), || gw
        .admin_get("/metrics")
        .1
        .contains("switchboard_connections_active 0\n")));
}

#[test]
fn one_source_holding_its_share_does_not_lock_out_another_source() {
    let dir = temp_dir();
    let alice = Key::generate(dir.path(), "alice");
    let ws = SshdBox::start("alice-ws");
    // The default limits: 200 unauthenticated, 20 per source.
    let gw = Gateway::start(&routes_toml(&[ws.route(&[&alice])]));

    // Enough silent connections to fill the whole table, from one source.
    let mut hostile = connect_from(HOSTILE, gw.port, 250);
    assert_eq!(
        count_admitted(&mut hostile),
        20,
        "one source holds exactly its share of max_unauthenticated"
    );
    // The hostile source itself gets no more, not even with a valid key…
    let more = ssh_from(&gw, &alice, HOSTILE);
    assert_eq!(more.code, Some(255), "{more:?}");
    // …while another source logs in at once.
    let started = Instant::now();
    let out = ssh_from(&gw, &alice, LEGITIMATE);
    assert_eq!(out.assert_ok().stdout, "alice-ws\n", "{out:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "login took {:?}",
        started.elapsed()
    );
    // The held connections are still there: the share was not freed by
    // accident.
    let mut again = connect_from(HOSTILE, gw.port, 1);
    assert!(!admitted(&mut again[0]), "a 21st connection got a slot");
    drop(hostile);
}

#[test]
fn the_share_is_per_real_client_behind_a_proxy_and_exempt_sources_have_none() {
    let dir = temp_dir();
    let alice = Key::generate(dir.path(), "alice");
    let ws = SshdBox::start("alice-ws");
    // The binary: `/metrics` is process-wide.
    let gw = Gateway::spawn_with(
        &GatewayConfig::proxied(
            "per_source_max_unauthenticated = 3\nlogin_grace = \"30s\"\n\
             per_source_exempt = [\"198.51.100.0/24\"]",
        ),
        &routes_toml(&[ws.route(&[&alice])]),
    );
    wait_idle(&gw);
    // One balancer, several real clients: the share is the declared one's.
    let attacker = proxy_forwarder(gw.port, proxy_v1("203.0.113.9:40000"));
    let mut held = connect_from("127.0.0.1", attacker, 5);
    assert_eq!(count_admitted(&mut held), 3);
    let neighbour = proxy_forwarder(gw.port, proxy_v2("203.0.113.10:40000"));
    let out = ssh(neighbour, &alice, &["anyone@127.0.0.1", "echo $BOX"]);
    assert_eq!(out.assert_ok().stdout, "alice-ws\n", "{out:?}");
    // A health checker in per_source_exempt is not held to a share.
    let checker = proxy_forwarder(gw.port, proxy_v1("198.51.100.4:40000"));
    let mut checks = connect_from("127.0.0.1", checker, 6);
    assert_eq!(count_admitted(&mut checks), 6);

    let (_, m) = gw.admin_get("/metrics");
    for line in [
        "switchboard_connections_rejected_total{reason=\"per_source_max_unauthenticated\"} 2",
        "switchboard_limit_hits_total{limit=\"per_source_max_unauthenticated\"} 2",
    ] {
        assert!(m.contains(line), "missing {line} in:\n{m}");
    }
    assert!(
        !m.contains("203.0.113"),
        "a client address in /metrics:\n{m}"
    );
    drop((held, checks));
}

#[test]
fn past_the_early_drop_start_new_connections_are_dropped() {
    // rate 100: from `start` on, every new connection is dropped, so the
    // test does not depend on chance.
    let gw = Gateway::spawn_with(
        &GatewayConfig::proxied(
            "max_unauthenticated = 10\nmax_unauthenticated_start = 2\n\
             max_unauthenticated_rate = 100\nlogin_grace = \"30s\"",
        ),
        "",
    );
    wait_idle(&gw);
    let mut held = connect_from(HOSTILE, gw.port, 2);
    assert_eq!(count_admitted(&mut held), 2);
    let mut third = connect_from(LEGITIMATE, gw.port, 1);
    assert!(!admitted(&mut third[0]), "the third was not dropped");
    // Under the start again, connections are let in.
    drop(held.pop());
    let mut next = Vec::new();
    let let_in = eventually(Duration::from_secs(10), || {
        let mut conn = connect_from(LEGITIMATE, gw.port, 1);
        let open = admitted(&mut conn[0]);
        next.append(&mut conn);
        open
    });
    assert!(let_in, "still dropped under the start");
    let (_, m) = gw.admin_get("/metrics");
    for line in [
        "switchboard_connections_rejected_total{reason=\"early_drop\"}",
        "switchboard_limit_hits_total{limit=\"early_drop\"}",
    ] {
        assert!(m.contains(line), "missing {line} in:\n{m}");
    }
}

#[test]
fn connections_that_end_without_authenticating_count_as_half_a_failure() {
    let dir = temp_dir();
    let alice = Key::generate(dir.path(), "alice");
    let ws = SshdBox::start("alice-ws");
    let gw = Gateway::start_with(
        &GatewayConfig::proxied("per_source_max_failures = 2\nper_source_penalty = \"60s\""),
        &routes_toml(&[ws.route(&[&alice])]),
    );
    // Three connections that leave after the version line: one and a half
    // failures, not yet a penalty.
    for mut conn in connect_from(HOSTILE, gw.port, 3) {
        assert!(admitted(&mut conn));
    }
    let out = ssh_from(&gw, &alice, HOSTILE);
    assert_eq!(out.assert_ok().stdout, "alice-ws\n", "{out:?}");
    // The fourth makes two: the source is refused, even with a valid key…
    for mut conn in connect_from(HOSTILE, gw.port, 1) {
        assert!(admitted(&mut conn));
    }
    let refused = eventually(Duration::from_secs(10), || {
        ssh_from(&gw, &alice, HOSTILE).code == Some(255)
    });
    assert!(refused, "an address that kept leaving was not penalized");
    // …and nobody else is.
    let out = ssh_from(&gw, &alice, LEGITIMATE);
    assert_eq!(out.assert_ok().stdout, "alice-ws\n", "{out:?}");
}
