//! Operating the gateway (SPEC §9): PROXY protocol, the admin endpoint and
//! its metrics, the audit event per session, graceful drain on SIGTERM, and
//! the limits (login grace, max_unauthenticated, per-source penalty, idle).
//!
//! Tests that read the log or the audit events, `/metrics` (process-wide) or
//! send signals run the binary ([`Gateway::spawn_with`]); the rest run the
//! gateway in process.

mod common;

use std::io::Read;
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use common::*;

/// The binary, logging JSON (audit events are read from its log).
fn json_gateway(extra: &str, routes: &str) -> Gateway {
    let cfg = GatewayConfig {
        log_format: "json".into(),
        extra: extra.into(),
        ..Default::default()
    };
    Gateway::spawn_with(&cfg, routes)
}

const TRUST_LOOPBACK: &str =
    "[proxy_protocol]\nenabled = true\ntrusted_cidrs = [\"127.0.0.0/8\"]\n";

#[test]
fn proxy_v1_and_v2_from_a_trusted_peer_declare_the_client_in_logs_and_audit() {
    let dir = temp_dir();
    let alice = Key::generate(dir.path(), "alice");
    let ws = SshdBox::start("alice-ws");
    let gw = json_gateway(TRUST_LOOPBACK, &routes_toml(&[ws.route(&[&alice])]));

    for (header, address, port) in [
        (proxy_v1("203.0.113.7:50001"), "203.0.113.7", 50001),
        (proxy_v2("198.51.100.9:50002"), "198.51.100.9", 50002),
    ] {
        let lb = proxy_forwarder(gw.port, header);
        let out = ssh(lb, &alice, &["anyone@127.0.0.1", "echo $BOX"]);
        assert_eq!(out.assert_ok().stdout, "alice-ws\n", "{out:?}");
        assert!(
            eventually(Duration::from_secs(5), || gw.audit_events().iter().any(
                |e| {
                    e["event.action"] == "session_end"
                        && e["client.address"] == address
                        && e["client.port"] == port
                }
            )),
            "no audit event with client {address}:{port}:\n{}",
            gw.log()
        );
        let spans_show_client = gw.json_log().iter().any(|line| {
            line["target"] != "audit"
                && line["span"]["client.address"] == address
                && line["span"]["client.port"] == port
        });
        assert!(
            spans_show_client,
            "no log line in a span with client {address}:{port}"
        );
    }
    // A direct connection (no header) from a trusted peer is the peer itself.
    gw.ssh(&alice, &["anyone@127.0.0.1", "true"]).assert_ok();
    assert!(eventually(Duration::from_secs(5), || gw
        .audit_events()
        .iter()
        .any(
            |e| e["event.action"] == "session_end" && e["client.address"] == "127.0.0.1"
        )));

    let (status, metrics) = gw.admin_get("/metrics");
    assert_eq!(status, 200);
    for address in ["203.0.113.7", "198.51.100.9", "127.0.0.1"] {
        assert!(
            !metrics.contains(address),
            "/metrics shows a client address {address}:\n{metrics}"
        );
    }
}

#[test]
fn a_proxy_header_from_an_untrusted_peer_is_refused() {
    let dir = temp_dir();
    let alice = Key::generate(dir.path(), "alice");
    let ws = SshdBox::start("alice-ws");
    let gw = json_gateway(
        "[proxy_protocol]\nenabled = true\ntrusted_cidrs = [\"10.0.0.0/8\"]\n",
        &routes_toml(&[ws.route(&[&alice])]),
    );
    let lb = proxy_forwarder(gw.port, proxy_v1("203.0.113.7:50001"));
    let out = ssh(lb, &alice, &["anyone@127.0.0.1", "echo $BOX"]);
    assert_eq!(out.code, Some(255), "{out:?}");
    assert!(!out.stdout.contains("alice-ws"));
    assert!(
        gw.log().contains("not in proxy_protocol.trusted_cidrs"),
        "{}",
        gw.log()
    );
    // Without a header the same peer is served as itself.
    gw.ssh(&alice, &["anyone@127.0.0.1", "true"]).assert_ok();
    let (_, metrics) = gw.admin_get("/metrics");
    assert!(
        metrics.contains("switchboard_connections_rejected_total{reason=\"proxy_untrusted\"} 1"),
        "{metrics}"
    );
}

#[test]
fn admin_endpoint_serves_health_readiness_and_metrics() {
    let dir = temp_dir();
    let alice = Key::generate(dir.path(), "alice");
    let stranger = Key::generate(dir.path(), "stranger");
    let ws = SshdBox::start("alice-ws");
    let gw = Gateway::spawn(&routes_toml(&[ws.route(&[&alice])]));
    assert_eq!(gw.admin_get("/healthz").0, 200);
    assert_eq!(gw.admin_get("/readyz").0, 200);
    assert_eq!(gw.admin_get("/nope").0, 404);

    let out = gw.ssh(&alice, &["anyone@127.0.0.1", "head -c 100000 /dev/zero"]);
    assert_eq!(out.assert_ok().stdout.len(), 100_000);
    let denied = gw.ssh(&stranger, &["anyone@127.0.0.1", "true"]);
    assert_eq!(denied.code, Some(255));

    let (status, m) = gw.admin_get("/metrics");
    assert_eq!(status, 200);
    for family in [
        "switchboard_connections_accepted_total{protocol=\"ssh\"}",
        "switchboard_connections_active",
        "switchboard_authentications_total{mode=\"key\",outcome=\"accepted\"}",
        "switchboard_authentications_total{mode=\"none\",outcome=\"rejected\"}",
        "switchboard_upstream_connect_seconds_bucket",
        "switchboard_routes{source=\"file\"} 1",
        "switchboard_route_reloads_total{source=\"file\"}",
    ] {
        assert!(m.contains(family), "missing {family} in:\n{m}");
    }
    let down: f64 = m
        .lines()
        .find_map(|l| l.strip_prefix("switchboard_relayed_bytes_total{direction=\"down\"} "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    assert!(down >= 100_000.0, "relayed bytes down = {down}\n{m}");
    assert!(
        !m.contains("alice") && !m.contains("SHA256:"),
        "a route or key in labels:\n{m}"
    );
}

#[test]
fn every_session_end_is_one_json_audit_event() {
    let dir = temp_dir();
    let alice = Key::generate(dir.path(), "alice");
    let ws = SshdBox::start("alice-ws");
    let gw = json_gateway("", &routes_toml(&[ws.route(&[&alice])]));
    let out = gw.ssh(
        &alice,
        &["anyone@127.0.0.1", "head -c 1234 /dev/zero; exit 7"],
    );
    assert_eq!(out.code, Some(7), "{out:?}");
    gw.ssh(&alice, &["anyone@127.0.0.1", "true"]).assert_ok();
    let ends = || {
        gw.audit_events()
            .into_iter()
            .filter(|e| e["event.action"] == "session_end")
            .collect::<Vec<_>>()
    };
    assert!(eventually(Duration::from_secs(5), || ends().len() == 2));
    thread::sleep(Duration::from_millis(300));
    let events = ends();
    assert_eq!(events.len(), 2, "{events:#?}");
    let first = &events[0];
    // Flat: the message and the fields at the top level, no span list.
    assert_eq!(first["message"], "session ended");
    assert!(
        first.get("fields").is_none() && first.get("spans").is_none(),
        "{first}"
    );
    assert_eq!(first["route"], "alice-ws");
    assert_eq!(
        first["user.name"],
        ws.route(&[]).user.clone().unwrap_or_default()
    );
    assert_eq!(first["auth.mode"], "key");
    assert_eq!(first["process.exit_code"], 7);
    assert!(
        first["bytes.down"].as_u64().is_some_and(|b| b >= 1234),
        "{first}"
    );
    assert!(
        first["key.fingerprint"]
            .as_str()
            .is_some_and(|f| f.starts_with("SHA256:"))
    );
    assert!(first["event.duration"].is_u64());
    assert!(
        first["session.id"]
            .as_str()
            .is_some_and(|id| id.len() == 16)
    );
    assert_eq!(events[1]["process.exit_code"], 0);
    assert_ne!(events[0]["session.id"], events[1]["session.id"]);
}

#[test]
fn sigterm_drains_running_sessions_and_refuses_new_ones() {
    let dir = temp_dir();
    let alice = Key::generate(dir.path(), "alice");
    let ws = SshdBox::start("alice-ws");
    let mut gw = Gateway::spawn(&routes_toml(&[ws.route(&[&alice])]));
    let session = Bg::spawn(
        gw.ssh_cmd(&alice)
            .args(["anyone@127.0.0.1", "sleep 4; echo done"]),
    );
    thread::sleep(Duration::from_secs(1));
    gw.signal("TERM");
    // New connections are refused at once.
    assert!(
        eventually(Duration::from_secs(2), || TcpStream::connect((
            "127.0.0.1",
            gw.port
        ))
        .is_err()),
        "the listener still accepts after SIGTERM"
    );
    let (status, _) = gw.admin_get("/readyz");
    assert_eq!(status, 503, "/readyz while draining");
    let out = session.wait(SSH_TIMEOUT);
    assert_eq!(out.assert_ok().stdout, "done\n", "{out:?}");
    assert_eq!(
        gw.wait_exit(Duration::from_secs(10)),
        Some(Some(0)),
        "{}",
        gw.log()
    );
}

#[test]
fn sessions_still_open_after_shutdown_grace_are_told_and_closed() {
    let dir = temp_dir();
    let alice = Key::generate(dir.path(), "alice");
    let ws = SshdBox::start("alice-ws");
    let mut gw = Gateway::spawn_with(
        &GatewayConfig::proxied("shutdown_grace = \"1s\""),
        &routes_toml(&[ws.route(&[&alice])]),
    );
    let started = Instant::now();
    let session = Bg::spawn(
        gw.ssh_cmd(&alice)
            .args(["anyone@127.0.0.1", "sleep 30; echo never"]),
    );
    thread::sleep(Duration::from_secs(1));
    gw.signal("TERM");
    let out = session.wait(SSH_TIMEOUT);
    assert!(!out.stdout.contains("never"));
    assert!(out.stderr.contains("gateway is restarting"), "{out:?}");
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_eq!(
        gw.wait_exit(Duration::from_secs(10)),
        Some(Some(0)),
        "{}",
        gw.log()
    );
}

/// True when the server closes `conn` within `within` (EOF or reset).
fn closed_within(conn: &mut TcpStream, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 256];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let _ = conn.set_read_timeout(Some(left));
        match conn.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue, // the server's version line
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false;
            }
            Err(_) => return true,
        }
    }
}

#[test]
fn a_silent_connection_is_closed_after_login_grace() {
    let gw = Gateway::start_with(&GatewayConfig::proxied("login_grace = \"2s\""), "");
    let mut conn = TcpStream::connect(("127.0.0.1", gw.port)).expect("connect");
    let started = Instant::now();
    assert!(
        closed_within(&mut conn, Duration::from_secs(10)),
        "still open"
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1500),
        "closed too early: {took:?}"
    );
}

#[test]
fn the_connection_past_max_unauthenticated_is_refused_while_the_others_wait() {
    // The binary: `switchboard_connections_active` is process-wide.
    let gw = Gateway::spawn_with(
        &GatewayConfig::proxied("max_unauthenticated = 2\nlogin_grace = \"20s\""),
        "",
    );
    // The harness's own probe for the banner must be gone first.
    assert!(eventually(Duration::from_secs(5), || gw
        .admin_get("/metrics")
        .1
        .contains("switchboard_connections_active 0\n")));
    let mut pending: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(("127.0.0.1", gw.port)).expect("connect"))
        .collect();
    thread::sleep(Duration::from_millis(300));
    let mut third = TcpStream::connect(("127.0.0.1", gw.port)).expect("connect");
    assert!(
        closed_within(&mut third, Duration::from_secs(3)),
        "third connection not refused"
    );
    for conn in &mut pending {
        assert!(
            !closed_within(conn, Duration::from_millis(500)),
            "a waiting connection was closed"
        );
    }
    // Once one leaves, a new one is let in.
    drop(pending.pop());
    let mut admitted = Vec::new();
    let let_in = eventually(Duration::from_secs(10), || {
        let Ok(mut next) = TcpStream::connect(("127.0.0.1", gw.port)) else {
            return false;
        };
        let open = !closed_within(&mut next, Duration::from_millis(700));
        admitted.push(next);
        open
    });
    assert!(let_in, "still refused after a slot freed");
}

#[test]
fn repeated_failures_from_one_address_get_it_refused_even_with_a_valid_key() {
    let dir = temp_dir();
    let alice = Key::generate(dir.path(), "alice");
    let stranger = Key::generate(dir.path(), "stranger");
    let ws = SshdBox::start("alice-ws");
    let gw = Gateway::spawn_with(
        &GatewayConfig::proxied("per_source_max_failures = 3\nper_source_penalty = \"60s\""),
        &routes_toml(&[ws.route(&[&alice])]),
    );
    let attacker = proxy_forwarder(gw.port, proxy_v1("203.0.113.66:40000"));
    let neighbour = proxy_forwarder(gw.port, proxy_v2("203.0.113.67:40000"));
    for _ in 0..3 {
        let out = ssh(attacker, &stranger, &["anyone@127.0.0.1", "true"]);
        assert_eq!(out.code, Some(255), "{out:?}");
    }
    let refused = ssh(attacker, &alice, &["anyone@127.0.0.1", "echo $BOX"]);
    assert_eq!(
        refused.code,
        Some(255),
        "penalized address got in: {refused:?}"
    );
    let other = ssh(neighbour, &alice, &["anyone@127.0.0.1", "echo $BOX"]);
    assert_eq!(other.assert_ok().stdout, "alice-ws\n");
    assert!(gw.log().contains("too many failed logins"), "{}", gw.log());
}

#[test]
fn an_idle_session_is_closed_after_idle_timeout() {
    let dir = temp_dir();
    let alice = Key::generate(dir.path(), "alice");
    let ws = SshdBox::start("alice-ws");
    let gw = Gateway::start_with(
        &GatewayConfig::proxied("idle_timeout = \"2s\""),
        &routes_toml(&[ws.route(&[&alice])]),
    );
    // Output every 500 ms keeps a session alive past the timeout…
    let busy = gw.ssh(
        &alice,
        &[
            "anyone@127.0.0.1",
            "for i in 1 2 3 4 5 6; do echo $i; sleep 0.5; done",
        ],
    );
    assert_eq!(busy.assert_ok().stdout.lines().count(), 6);
    // …silence does not.
    let started = Instant::now();
    let idle = gw.ssh(&alice, &["anyone@127.0.0.1", "sleep 20; echo never"]);
    assert_ne!(idle.code, Some(0), "{idle:?}");
    assert!(!idle.stdout.contains("never"));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_dead_box_is_noticed_by_keepalives_and_the_user_told() {
    let dir = temp_dir();
    let alice = Key::generate(dir.path(), "alice");
    let ws = SshdBox::start("alice-ws");
    let gw = Gateway::start_with(
        &GatewayConfig::proxied("keepalive_interval = \"1s\""),
        &routes_toml(&[ws.route(&[&alice])]),
    );
    let session = Bg::spawn(
        gw.ssh_cmd(&alice)
            .args(["anyone@127.0.0.1", "echo started; sleep 60"]),
    );
    assert!(eventually(Duration::from_secs(10), || session
        .stdout()
        .contains("started")));
    ws.freeze_sessions();
    let started = Instant::now();
    let out = session.wait(Duration::from_secs(30));
    assert!(!out.timed_out, "the session outlived its dead box: {out:?}");
    assert!(
        out.stderr.contains("lost the connection to the box"),
        "{out:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}
