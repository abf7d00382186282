//! Back-channels in key mode (SPEC §6) with the real OpenSSH client and a real
//! sshd box on loopback: `-R` (a fixed port and port 0), agent forwarding into
//! the box, and the per-route forwarding switches refusing `-W`, `-L`, `-R`
//! and `-A`.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::thread;
use std::time::Duration;

use common::agent::*;
use common::*;

/// The `SHA256:…` fingerprint of a key, from the real `ssh-keygen -lf`.
fn fingerprint(key: &Key) -> String {
    let out = run(
        Command::new("ssh-keygen")
            .arg("-lf")
            .arg(format!("{}.pub", key.path.display())),
        Input::Null,
        Duration::from_secs(20),
    );
    out.assert_ok();
    out.stdout
        .split_whitespace()
        .nth(1)
        .expect("fingerprint field")
        .to_owned()
}

/// A tiny HTTP server on 127.0.0.1 that answers every request with `body`.
fn http_server(body: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind http");
    let port = listener.local_addr().expect("addr").port();
    thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            thread::spawn(move || {
                let mut conn = conn;
                let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = write!(
                    conn,
                    "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                    body.len(),
                    body
                );
            });
        }
    });
    port
}

/// A shell loop (run inside the box) that fetches `http://127.0.0.1:PORT/`,
/// retrying for a few seconds while a remote forward is being set up.
fn curl_retry(port: u16) -> String {
    format!(
        "for i in $(seq 50); do curl -s --max-time 5 http://127.0.0.1:{port}/ && exit 0; sleep 0.2; done; exit 1"
    )
}

// ---------------------------------------------------------------------------
// -R and agent forwarding into the box
// ---------------------------------------------------------------------------

/// alice-ws behind a gateway, alice's key authorized for the route.
struct KeyMode {
    _dir: tempfile::TempDir,
    key: Key,
    gw: Gateway,
    ws: SshdBox,
}

fn key_mode(forwarding: Option<[bool; 3]>) -> KeyMode {
    let dir = temp_dir();
    let key = Key::generate(dir.path(), "alice");
    let ws = SshdBox::start("alice-ws");
    let mut route = ws.route(&[&key]);
    route.forwarding = forwarding;
    let gw = Gateway::start(&routes_toml(&[route]));
    KeyMode {
        _dir: dir,
        key,
        gw,
        ws,
    }
}

const BODY: &str = "hello-from-the-test-side\n";

#[test]
fn remote_forward_serves_a_test_side_port() {
    let t = key_mode(None);
    let w = http_server(BODY);
    let p = free_port();
    let out = run(
        ssh_at("ERROR", t.gw.port, &t.key)
            .args(["-o", "ExitOnForwardFailure=yes", "-R"])
            .arg(format!("127.0.0.1:{p}:127.0.0.1:{w}"))
            .args(["anyone@127.0.0.1", &curl_retry(p)]),
        Input::Null,
        SSH_TIMEOUT,
    );
    assert_eq!(out.assert_ok().stdout, BODY, "{out:?}");
}

#[test]
fn remote_forward_port_zero_is_allocated_and_served() {
    let t = key_mode(None);
    let w = http_server(BODY);
    // Short form: exit 0 and "Allocated port N" at INFO.
    let out = run(
        ssh_at("INFO", t.gw.port, &t.key)
            .args(["-o", "ExitOnForwardFailure=yes", "-R"])
            .arg(format!("0:127.0.0.1:{w}"))
            .args(["anyone@127.0.0.1", "sleep 1; echo done"]),
        Input::Null,
        SSH_TIMEOUT,
    );
    out.assert_ok();
    assert!(out.stderr.contains("Allocated port "), "{out:?}");

    // And the allocated port really serves: keep the forward up, fetch through it.
    let fwd = Bg::spawn(
        ssh_at("INFO", t.gw.port, &t.key)
            .args(["-N", "-o", "ExitOnForwardFailure=yes", "-R"])
            .arg(format!("0:127.0.0.1:{w}"))
            .arg("anyone@127.0.0.1"),
    );
    let mut allocated = None;
    let seen = eventually(Duration::from_secs(20), || {
        allocated = fwd
            .stderr()
            .split("Allocated port ")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|n| n.parse::<u16>().ok());
        allocated.is_some()
    });
    assert!(seen, "no \"Allocated port\": {}", fwd.stderr());
    let n = allocated.unwrap();
    let out = ssh(t.gw.port, &t.key, &["anyone@127.0.0.1", &curl_retry(n)]);
    assert_eq!(out.assert_ok().stdout, BODY, "{out:?}");
    assert!(t.ws.port > 0);
}

#[test]
fn agent_forwarding_into_the_box_in_key_mode() {
    let t = key_mode(None);
    let agent = Agent::start(&[&t.key]);
    let out = run(
        ssh_with_agent(t.gw.port, &t.key, &agent).args(["-A", "anyone@127.0.0.1", "ssh-add -l"]),
        Input::Null,
        SSH_TIMEOUT,
    );
    out.assert_ok();
    let fp = fingerprint(&t.key);
    assert!(out.stdout.contains(&fp), "expected {fp}: {out:?}");
}

// ---------------------------------------------------------------------------
// Per-route forwarding switches
// ---------------------------------------------------------------------------

#[test]
fn forwarding_switches_off_refuse_w_l_r_and_agent() {
    let t = key_mode(Some([false, false, false]));
    let port = t.gw.port;

    // -W
    let out = run(
        ssh_at("INFO", port, &t.key).args([
            "-W",
            &format!("127.0.0.1:{}", t.ws.port),
            "anyone@127.0.0.1",
        ]),
        Input::Null,
        SSH_TIMEOUT,
    );
    assert_ne!(out.code, Some(0), "{out:?}");
    assert!(
        out.stderr.contains("administratively prohibited"),
        "{out:?}"
    );
    assert!(!out.stdout.contains("SSH-2.0"), "{out:?}");

    // -L: the forward listens, but its channel is refused.
    let echo = echo_server();
    let mut done = false;
    for _attempt in 0..5 {
        let lport = free_port();
        let mut fwd = Bg::spawn(ssh_at("INFO", port, &t.key).args([
            "-N",
            "-o",
            "ExitOnForwardFailure=yes",
            "-L",
            &format!("127.0.0.1:{lport}:127.0.0.1:{echo}"),
            "anyone@127.0.0.1",
        ]));
        let listening = eventually(Duration::from_secs(15), || {
            !fwd.is_running() || TcpStream::connect(("127.0.0.1", lport)).is_ok()
        });
        if !fwd.is_running() {
            continue; // the local port was taken under us
        }
        assert!(listening, "ssh -L never listened: {}", fwd.stderr());
        let mut conn = TcpStream::connect(("127.0.0.1", lport)).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let _ = conn.write_all(b"ping\n");
        let mut got = Vec::new();
        let _ = conn.read_to_end(&mut got);
        assert!(
            got.is_empty(),
            "data came back through a refused -L: {got:?}"
        );
        let refused = eventually(Duration::from_secs(10), || {
            fwd.stderr().contains("administratively prohibited")
        });
        assert!(refused, "ssh -L stderr: {}", fwd.stderr());
        done = true;
        break;
    }
    assert!(done, "could not find a free local port for -L");

    // -R
    let p = free_port();
    let out = run(
        ssh_at("ERROR", port, &t.key)
            .args(["-N", "-o", "ExitOnForwardFailure=yes", "-R"])
            .arg(format!("127.0.0.1:{p}:127.0.0.1:{echo}"))
            .arg("anyone@127.0.0.1"),
        Input::Null,
        SSH_TIMEOUT,
    );
    assert_eq!(out.code, Some(255), "{out:?}");
    assert!(
        out.stderr.contains("remote port forwarding failed"),
        "{out:?}"
    );

    // -A: no agent inside the box.
    let agent = Agent::start(&[&t.key]);
    let out = run(
        ssh_with_agent(port, &t.key, &agent).args(["-A", "anyone@127.0.0.1", "ssh-add -l"]),
        Input::Null,
        SSH_TIMEOUT,
    );
    assert!(matches!(out.code, Some(1) | Some(2)), "{out:?}");
    assert!(!out.stdout.contains(&fingerprint(&t.key)), "{out:?}");

    // Sessions still work.
    let out = t.gw.ssh(&t.key, &["anyone@127.0.0.1", "echo $BOX"]);
    assert_eq!(out.assert_ok().stdout, "alice-ws\n", "{out:?}");
}
