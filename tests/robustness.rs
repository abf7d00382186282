//! The gateway survives bad input: garbage on the socket, silent clients,
//! bursts of connections; bad configuration is refused with every problem
//! named (SPEC §2 `check`, §3, §8).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::Duration;

use common::*;

struct OneBox {
    dir: tempfile::TempDir,
    key: Key,
    gw: Gateway,
    _ws: SshdBox,
}

fn one_box() -> OneBox {
    let dir = temp_dir();
    let key = Key::generate(dir.path(), "alice");
    let ws = SshdBox::start("alice-ws");
    let gw = Gateway::start(&routes_toml(&[ws.route(&[&key])]));
    OneBox {
        dir,
        key,
        gw,
        _ws: ws,
    }
}

/// Sends `bytes`, then expects the gateway to close the connection.
fn send_garbage(port: u16, bytes: &[u8]) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let _ = s.write_all(bytes); // the gateway may close before reading it all
    let mut sink = Vec::new();
    match s.read_to_end(&mut sink) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!(
            "connection not closed after garbage ({e}); got {} bytes",
            sink.len()
        ),
    }
}

#[test]
fn garbage_is_dropped_and_the_gateway_keeps_serving() {
    let mut t = one_box();
    send_garbage(t.gw.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut noise = vec![0u8; 4096];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut noise)
        .unwrap();
    send_garbage(t.gw.port, &noise);
    // A bogus SSH version line, then noise.
    let mut bad_ssh = b"SSH-2.0-evil\r\n".to_vec();
    bad_ssh.extend_from_slice(&noise);
    send_garbage(t.gw.port, &bad_ssh);

    assert!(t.gw.is_alive(), "the gateway died on garbage");
    let out = t.gw.ssh(&t.key, &["anyone@127.0.0.1", "echo $BOX"]);
    assert_eq!(out.assert_ok().stdout, "alice-ws\n", "{out:?}");
}

#[test]
fn silent_clients_do_not_block_others() {
    let t = one_box();
    // Connections that say nothing, or stop after the version line.
    let mut idle: Vec<TcpStream> = (0..5)
        .map(|_| TcpStream::connect(("127.0.0.1", t.gw.port)).unwrap())
        .collect();
    for _ in 0..3 {
        let mut s = TcpStream::connect(("127.0.0.1", t.gw.port)).unwrap();
        s.write_all(b"SSH-2.0-OpenSSH_9.2p1\r\n").unwrap();
        idle.push(s);
    }
    let out = t.gw.ssh(&t.key, &["anyone@127.0.0.1", "echo $BOX"]);
    assert_eq!(out.assert_ok().stdout, "alice-ws\n", "{out:?}");
    drop(idle);
}

#[test]
fn many_connections_at_once() {
    let t = one_box();
    let handles: Vec<_> = (0..12)
        .map(|i| {
            let mut cmd = t.gw.ssh_cmd(&t.key);
            cmd.args(["anyone@127.0.0.1", &format!("echo $BOX-{i}")]);
            thread::spawn(move || run(&mut cmd, Input::Null, SSH_TIMEOUT))
        })
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        let out = h.join().unwrap();
        assert_eq!(out.assert_ok().stdout, format!("alice-ws-{i}\n"), "{out:?}");
    }
    let _ = &t.dir;
}

/// A config + routes pair in a temp dir, for `check` and failed `serve`s.
fn write_config(dir: &std::path::Path, cfg: &GatewayConfig, routes: &str) -> std::path::PathBuf {
    let routes_path = dir.join("routes.toml");
    std::fs::write(&routes_path, routes).unwrap();
    let config = dir.join("switchboard.toml");
    std::fs::write(
        &config,
        cfg.render("127.0.0.1:2233", "127.0.0.1:0", &routes_path),
    )
    .unwrap();
    config
}

#[test]
fn check_accepts_a_good_config() {
    let dir = temp_dir();
    let key = Key::generate(dir.path(), "alice");
    let identity = Key::generate(dir.path(), "identity");
    let mut route = Route::new("alice-ws", "127.0.0.1:22");
    route.keys = vec![key.public.clone()];
    route.identity_file = Some(identity.path.clone());
    let config = write_config(
        dir.path(),
        &GatewayConfig::default(),
        &routes_toml(&[route]),
    );
    let out = run_switchboard(
        dir.path(),
        &["check".as_ref(), "--config".as_ref(), config.as_os_str()],
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.all().contains("SHA256:"),
        "the summary shows the host key fingerprint: {out:?}"
    );
    assert!(
        out.all().contains("127.0.0.1:2233"),
        "the summary shows the listen address: {out:?}"
    );
    assert!(
        !out.all().contains(SEED),
        "check must not print the seed: {out:?}"
    );
}

#[test]
fn check_names_every_bad_route_and_field() {
    let dir = temp_dir();
    let key = Key::generate(dir.path(), "alice");
    let identity = Key::generate(dir.path(), "identity");
    let mut good = Route::new("alice-ws", "127.0.0.1:22");
    good.keys = vec![key.public.clone()];
    good.identity_file = Some(identity.path.clone());
    let mut bad_key = good.clone();
    bad_key.name = "broken-ws".into();
    bad_key.keys = vec!["ssh-ed25519 not-a-key".into()];
    let mut bad_state = good.clone();
    bad_state.name = "sleepy-ws".into();
    bad_state.state = Some("sleeping".into());
    let config = write_config(
        dir.path(),
        &GatewayConfig::default(),
        &routes_toml(&[good, bad_key, bad_state]),
    );
    let out = run_switchboard(
        dir.path(),
        &["check".as_ref(), "--config".as_ref(), config.as_os_str()],
    );
    assert_eq!(out.code, Some(2), "{out:?}");
    let text = out.all();
    let line_with = |a: &str, b: &str| text.lines().any(|l| l.contains(a) && l.contains(b));
    assert!(
        line_with("broken-ws", "authorized_keys"),
        "must name broken-ws and authorized_keys: {out:?}"
    );
    assert!(
        line_with("sleepy-ws", "state"),
        "must name sleepy-ws and state: {out:?}"
    );
    assert!(text.contains("routes.toml"), "must name the file: {out:?}");
}

#[test]
fn check_names_an_unknown_config_key() {
    let dir = temp_dir();
    let cfg = GatewayConfig::default();
    let config = write_config(dir.path(), &cfg, "");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("[upstream]\n", "[upstream]\nconect_timeout = \"1s\"\n");
    std::fs::write(&config, text).unwrap();
    let out = run_switchboard(
        dir.path(),
        &["check".as_ref(), "--config".as_ref(), config.as_os_str()],
    );
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(
        out.all().contains("conect_timeout"),
        "must name the unknown key: {out:?}"
    );
}

#[test]
fn serve_without_a_seed_refuses_to_start() {
    let dir = temp_dir();
    let cfg = GatewayConfig {
        seed: None,
        ..Default::default()
    };
    let config = write_config(dir.path(), &cfg, "");
    let out = run(
        switchboard(dir.path())
            .arg("serve")
            .arg("--config")
            .arg(&config),
        Input::Null,
        Duration::from_secs(15),
    );
    assert!(
        !out.timed_out,
        "serve without a seed must refuse to start, not run: {out:?}"
    );
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(
        out.all().to_lowercase().contains("seed"),
        "the message must mention the seed: {out:?}"
    );
}

#[test]
fn serve_dev_without_a_seed_starts_with_a_warning() {
    let dir = temp_dir();
    let key = Key::generate(dir.path(), "alice");
    let ws = SshdBox::start("alice-ws");
    let cfg = GatewayConfig {
        seed: None,
        dev: true,
        ..Default::default()
    };
    let gw = Gateway::spawn_with(&cfg, &routes_toml(&[ws.route(&[&key])]));
    let out = gw.ssh(&key, &["anyone@127.0.0.1", "echo $BOX"]);
    assert_eq!(out.assert_ok().stdout, "alice-ws\n", "{out:?}");
    assert!(
        gw.log().to_lowercase().contains("warn"),
        "--dev must warn loudly:\n{}",
        gw.log()
    );
}
