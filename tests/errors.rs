//! What users see when something is wrong (SPEC §10): unknown key and unknown
//! target look the same; stopped, unreachable, refusing and silent boxes get a
//! one-line `switchboard:` message naming the route, and exit 1, not a hang.

mod common;

use common::*;

#[test]
fn unknown_key_and_unknown_target_look_the_same() {
    let dir = temp_dir();
    let alice = Key::generate(dir.path(), "alice");
    let stranger = Key::generate(dir.path(), "stranger");
    let ws = SshdBox::start("alice-ws");
    let gw = Gateway::start(&routes_toml(&[ws.route(&[&alice])]));

    let unknown_key = gw.ssh(&stranger, &["anyone@127.0.0.1", "echo $BOX"]);
    assert_eq!(unknown_key.code, Some(255), "{unknown_key:?}");
    assert!(
        unknown_key.stderr.contains("Permission denied (publickey)"),
        "{unknown_key:?}"
    );
    assert_eq!(unknown_key.stdout, "", "{unknown_key:?}");

    let unknown_target = gw.ssh(&alice, &["root@nope@127.0.0.1", "echo $BOX"]);
    assert_eq!(unknown_target.code, Some(255), "{unknown_target:?}");
    assert!(
        unknown_target
            .stderr
            .contains("Permission denied (publickey)"),
        "{unknown_target:?}"
    );

    // Same username, known vs unknown key: byte-identical client output.
    let stranger_named = gw.ssh(&stranger, &["root@nope@127.0.0.1", "echo $BOX"]);
    assert_eq!(stranger_named.code, unknown_target.code);
    assert_eq!(stranger_named.stdout, unknown_target.stdout);
    assert_eq!(stranger_named.stderr, unknown_target.stderr);
    // An existing route the key may not use looks the same too.
    let stranger_existing = gw.ssh(&stranger, &["root@alice-ws@127.0.0.1", "echo $BOX"]);
    assert_eq!(stranger_existing.code, Some(255), "{stranger_existing:?}");
    assert_eq!(
        stranger_existing.stderr.replace("alice-ws", "nope"),
        unknown_target.stderr,
        "an existing box must not be distinguishable"
    );
}

#[test]
fn stopped_box_says_so() {
    let dir = temp_dir();
    let alice = Key::generate(dir.path(), "alice");
    let mut route = Route::new("alice-ws", &format!("127.0.0.1:{}", free_port()));
    route.user = Some("root".into());
    route.keys = vec![alice.public.clone()];
    route.identity_file = Some(Key::generate(dir.path(), "identity").path);
    route.state = Some("stopped".into());
    let gw = Gateway::start(&routes_toml(&[route]));
    let out = gw.ssh(&alice, &["anyone@127.0.0.1", "echo $BOX"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr
            .contains("switchboard: alice-ws is stopped; start it, then reconnect"),
        "{out:?}"
    );
    assert_eq!(out.stdout, "", "{out:?}");
}

#[test]
fn unreachable_box_names_route_and_address() {
    let dir = temp_dir();
    let alice = Key::generate(dir.path(), "alice");
    let address = format!("127.0.0.1:{}", free_port()); // nobody listens here
    let mut route = Route::new("alice-ws", &address);
    route.user = Some("root".into());
    route.keys = vec![alice.public.clone()];
    route.identity_file = Some(Key::generate(dir.path(), "identity").path);
    let gw = Gateway::start(&routes_toml(&[route]));
    let out = gw.ssh(&alice, &["anyone@127.0.0.1", "echo $BOX"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    let want = format!(
        "switchboard: cannot reach alice-ws ({address}): connection refused; it may still be starting"
    );
    assert!(out.stderr.contains(&want), "want {want:?} in {out:?}");
}

#[test]
fn box_refusing_the_gateway_login_is_reported() {
    let dir = temp_dir();
    let alice = Key::generate(dir.path(), "alice");
    // The box does not know the gateway's identity key.
    let ws = SshdBox::start_with(
        "alice-ws",
        BoxOptions {
            authorize_identity: false,
            ..Default::default()
        },
    );
    let gw = Gateway::start(&routes_toml(&[ws.route(&[&alice])]));
    let out = gw.ssh(&alice, &["anyone@127.0.0.1", "echo $BOX"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr
            .contains("switchboard: alice-ws refused login as root"),
        "{out:?}"
    );
}

#[test]
fn silent_box_times_out_with_a_message() {
    // A box that accepts TCP and never speaks: the handshake timeout (3 s here)
    // must end it with a message, not a hang.
    let dir = temp_dir();
    let alice = Key::generate(dir.path(), "alice");
    let address = format!("127.0.0.1:{}", black_hole());
    let mut route = Route::new("alice-ws", &address);
    route.user = Some("root".into());
    route.keys = vec![alice.public.clone()];
    route.identity_file = Some(Key::generate(dir.path(), "identity").path);
    let cfg = GatewayConfig {
        handshake_timeout: "3s".into(),
        ..Default::default()
    };
    let gw = Gateway::start_with(&cfg, &routes_toml(&[route]));
    let out = run(
        gw.ssh_cmd(&alice).args(["anyone@127.0.0.1", "echo $BOX"]),
        Input::Null,
        std::time::Duration::from_secs(25),
    );
    assert!(!out.timed_out, "the gateway hung on a silent box: {out:?}");
    assert_eq!(out.code, Some(1), "{out:?}");
    let line = out
        .stderr
        .lines()
        .find(|l| l.starts_with("switchboard:"))
        .unwrap_or_default();
    assert!(
        line.contains("alice-ws"),
        "want a `switchboard: … alice-ws …` line: {out:?}"
    );
}

#[test]
fn pinned_host_key_is_checked() {
    let dir = temp_dir();
    let alice = Key::generate(dir.path(), "alice");
    let bob = Key::generate(dir.path(), "bob");
    let other = Key::generate(dir.path(), "not-the-host-key");
    let ws = SshdBox::start("alice-ws");
    // alice's route pins the box's real host key; bob's route (same box) pins a wrong one.
    let mut good = ws.route(&[&alice]);
    good.host_key = Some(ws.host_key());
    let mut bad = ws.route(&[&bob]);
    bad.name = "bob-ws".into();
    bad.host_key = Some(other.public.clone());
    let gw = Gateway::start(&routes_toml(&[good, bad]));

    let out = gw.ssh(&alice, &["anyone@127.0.0.1", "echo $BOX"]);
    assert_eq!(out.assert_ok().stdout, "alice-ws\n", "{out:?}");

    let out = gw.ssh(&bob, &["anyone@127.0.0.1", "echo $BOX"]);
    assert_eq!(
        out.code,
        Some(1),
        "a wrong pin must not be accepted: {out:?}"
    );
    assert!(!out.stdout.contains("alice-ws"), "{out:?}");
    let line = out
        .stderr
        .lines()
        .find(|l| l.starts_with("switchboard:"))
        .unwrap_or_default();
    assert!(
        line.contains("bob-ws"),
        "want a `switchboard: … bob-ws …` line: {out:?}"
    );
}
