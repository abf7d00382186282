//! Operators see and act (issue 18): the sessions API on the admin endpoint
//! and `switchboard sessions`, with real OpenSSH clients — a live session
//! listed with its fields and gone after it ends, `kill` telling the user
//! and ending ssh with 255, the tokens required as the README says — and
//! the audit trail those leave: one `auth_failure` per refused key, a
//! `channel_open` per channel, and one `session.id` joining a session's
//! start, channels, kill and end.
//!
//! Tests that read audit events run the binary ([`Gateway::spawn_with`]);
//! the token rules run in process.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::Duration;

use common::*;
use serde_json::Value;

/// The binary, logging JSON, with `admin` added to `[admin]`.
fn json_gateway(admin: &str, routes: &str) -> Gateway {
    let cfg = GatewayConfig {
        log_format: "json".into(),
        admin: admin.into(),
        ..Default::default()
    };
    Gateway::spawn_with(&cfg, routes)
}

/// `SHA256:…` of `key`, as `ssh-keygen -l` prints it.
fn fingerprint(key: &Key) -> String {
    let out = run(
        Command::new("ssh-keygen").arg("-lf").arg(&key.path),
        Input::Null,
        Duration::from_secs(10),
    );
    out.assert_ok();
    out.stdout
        .split_whitespace()
        .nth(1)
        .expect("fingerprint")
        .to_owned()
}

/// `GET /sessions` (with a token): the parsed list.
fn sessions(gw: &Gateway, token: Option<&str>) -> Value {
    let (status, body) = http_request(gw.admin_port, "GET", "/sessions", token);
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// Waits for a session of `gw` for which `ready` holds; returns it.
fn wait_for_session(gw: &Gateway, token: Option<&str>, ready: impl Fn(&Value) -> bool) -> Value {
    let mut found = None;
    let ok = eventually(Duration::from_secs(15), || {
        found = sessions(gw, token)["sessions"]
            .as_array()
            .and_then(|list| list.iter().find(|s| ready(s)).cloned());
        found.is_some()
    });
    assert!(ok, "no such session in {}", sessions(gw, token));
    found.unwrap_or_default()
}

/// `switchboard sessions ARGS --config <gw's config>`.
fn cli(gw: &Gateway, args: &[&str]) -> Output {
    let mut all: Vec<&std::ffi::OsStr> = vec!["sessions".as_ref()];
    all.extend(args.iter().map(std::ffi::OsStr::new));
    all.extend(["--config".as_ref(), gw.config_path.as_os_str()]);
    run_switchboard(gw.dir.path(), &all)
}

fn write_token(dir: &Path, name: &str, token: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, format!("{token}\n")).expect("token file");
    path.display().to_string()
}

#[test]
fn a_live_session_is_listed_with_its_fields_and_gone_after_it_ends() {
    let dir = temp_dir();
    let alice = Key::generate(dir.path(), "alice");
    let ws = SshdBox::start("alice-ws");
    let gw = json_gateway("", &routes_toml(&[ws.route(&[&alice])]));
    let session = Bg::spawn(
        gw.ssh_cmd(&alice)
            .args(["anyone@127.0.0.1", "echo started; sleep 3"]),
    );
    let s = wait_for_session(&gw, None, |s| {
        s["channels"][0]["session_type"] == "exec" && s["bytes_down"].as_u64() > Some(0)
    });
    assert_eq!(s["authenticated"], true, "{s}");
    assert_eq!(s["protocol"], "ssh");
    assert_eq!(s["mode"], "key");
    assert_eq!(s["route"], "alice-ws");
    assert_eq!(s["user"], ws.route(&[]).user.unwrap_or_default().as_str());
    assert_eq!(s["client_address"], "127.0.0.1");
    assert!(s["client_port"].as_u64().is_some_and(|p| p > 0), "{s}");
    assert_eq!(s["key_fingerprint"], fingerprint(&alice).as_str());
    let started = s["started"].as_str().unwrap_or_default();
    assert!(
        started.len() == 20 && started.ends_with('Z') && started.contains('T'),
        "not RFC 3339: {started}"
    );
    assert_eq!(s["channels"][0]["kind"], "session");
    assert_eq!(s["channel_count"], 1);
    let id = s["id"].as_str().expect("id").to_owned();
    assert_eq!(id.len(), 16);
    let body = serde_json::to_string(&s).unwrap_or_default();
    assert!(!body.contains("sleep"), "the command is listed: {body}");

    // The CLI: a table with the session, and the same JSON.
    let table = cli(&gw, &[]);
    table.assert_ok();
    let row = table.stdout.lines().find(|l| l.starts_with(&id));
    let row = row.unwrap_or_else(|| panic!("{id} not in\n{}", table.stdout));
    for cell in ["127.0.0.1:", " key ", " alice-ws ", " exec"] {
        assert!(row.contains(cell), "{cell:?} not in {row:?}");
    }
    let json = cli(&gw, &["list", "--json"]);
    let listed: Value = serde_json::from_str(&json.assert_ok().stdout).expect("JSON");
    assert_eq!(listed["sessions"][0]["id"], id.as_str());

    let out = session.wait(SSH_TIMEOUT);
    assert_eq!(out.assert_ok().stdout, "started\n");
    assert!(
        eventually(Duration::from_secs(5), || sessions(&gw, None)["count"] == 0),
        "still listed: {}",
        sessions(&gw, None)
    );
    assert_eq!(cli(&gw, &[]).assert_ok().stdout, "no sessions\n");

    audit_trail_is_joined_by_the_session_id(&gw, &id, &fingerprint(&alice));
}

/// The audit trail of session `id` (an exec with exit 0, by key `fp`):
/// one start, one channel open, one end, all with its id; no command text.
fn audit_trail_is_joined_by_the_session_id(gw: &Gateway, id: &str, fp: &str) {
    assert!(eventually(Duration::from_secs(5), || !gw
        .audit("session_end")
        .is_empty()));
    let of_session = |action: &str| -> Vec<Value> {
        gw.audit(action)
            .into_iter()
            .filter(|e| e["session.id"] == id)
            .collect()
    };
    let start = of_session("session_start");
    assert_eq!(start.len(), 1, "{:#?}", gw.audit_events());
    assert_eq!(start[0]["auth.mode"], "key");
    assert_eq!(start[0]["key.fingerprint"], fp);
    let opens = of_session("channel_open");
    assert_eq!(opens.len(), 1, "{opens:#?}");
    assert_eq!(opens[0]["channel.kind"], "session");
    assert_eq!(opens[0]["session.type"], "exec");
    assert_eq!(opens[0]["event.outcome"], "success");
    let end = of_session("session_end");
    assert_eq!(end.len(), 1);
    assert_eq!(end[0]["process.exit_code"], 0);
    assert!(!gw.log().contains("sleep 3"), "the exec command is logged");
}

#[test]
fn kill_tells_the_user_and_ends_ssh_with_255() {
    let dir = temp_dir();
    let alice = Key::generate(dir.path(), "alice");
    let ws = SshdBox::start("alice-ws");
    let write = write_token(dir.path(), "write-token", "kill-s3cret");
    let gw = json_gateway(
        &format!("write_token_file = {}\n", toml_str(&write)),
        &routes_toml(&[ws.route(&[&alice])]),
    );
    let session = Bg::spawn(
        gw.ssh_cmd(&alice)
            .args(["anyone@127.0.0.1", "sleep 30; echo never"]),
    );
    let s = wait_for_session(&gw, None, |s| s["authenticated"] == true);
    let id = s["id"].as_str().expect("id").to_owned();

    // The configured write token is the CLI's default for `kill`.
    let killed = cli(&gw, &["kill", &id]);
    assert!(
        killed
            .assert_ok()
            .stdout
            .contains(&format!("ended session {id}")),
        "{killed:?}"
    );
    let out = session.wait(SSH_TIMEOUT);
    assert_eq!(out.code, Some(255), "{out:?}");
    assert!(!out.stdout.contains("never"));
    assert!(
        out.stderr
            .contains("switchboard: your session was ended by an operator"),
        "{out:?}"
    );
    // Gone, and a second kill finds nothing.
    assert!(eventually(
        Duration::from_secs(5),
        || sessions(&gw, None)["count"] == 0
    ));
    let again = cli(&gw, &["kill", &id]);
    assert_eq!(again.code, Some(1), "{again:?}");
    assert!(again.stderr.contains("404"), "{again:?}");

    assert!(eventually(Duration::from_secs(5), || !gw
        .audit("session_end")
        .is_empty()));
    let kill = gw.audit("operator_kill");
    assert_eq!(kill.len(), 1, "{:#?}", gw.audit_events());
    assert_eq!(kill[0]["session.id"], id.as_str());
    assert_eq!(kill[0]["source.address"], "127.0.0.1");
    let end = gw.audit("session_end");
    assert_eq!(end[0]["session.id"], id.as_str());
    assert_eq!(end[0]["event.reason"], "operator_kill");
    assert!(!gw.log().contains("kill-s3cret"), "the token is logged");
}

#[test]
fn each_refused_key_is_one_auth_failure_with_its_reason() {
    let dir = temp_dir();
    let alice = Key::generate(dir.path(), "alice");
    let stranger = Key::generate(dir.path(), "stranger");
    let bob = Key::generate(dir.path(), "bob");
    let ws = SshdBox::start("alice-ws");
    let bob_ws = Route {
        keys: vec![bob.public.clone()],
        ..Route::new("bob-ws", "127.0.0.1:1")
    };
    let gw = json_gateway("", &routes_toml(&[ws.route(&[&alice]), bob_ws]));
    for (key, user, reason) in [
        (&stranger, "anyone", "unknown_key"),
        (&alice, "root@nope", "unknown_target"),
        (&alice, "root@bob-ws", "not_authorized"),
    ] {
        let before = gw.audit("auth_failure").len();
        let out = gw.ssh(key, &[&format!("{user}@127.0.0.1"), "true"]);
        assert_eq!(out.code, Some(255), "{out:?}");
        // The client sees the one answer, whatever the reason.
        assert!(
            out.stderr.contains("Permission denied (publickey)"),
            "{out:?}"
        );
        assert!(!out.stderr.contains(reason), "{out:?}");
        assert!(eventually(Duration::from_secs(5), || gw
            .audit("auth_failure")
            .len()
            > before));
        thread::sleep(Duration::from_millis(300));
        let failures = gw.audit("auth_failure");
        assert_eq!(failures.len(), before + 1, "{failures:#?}");
        let f = &failures[before];
        assert_eq!(f["event.reason"], reason, "{f}");
        assert_eq!(f["event.outcome"], "failure");
        assert_eq!(f["key.fingerprint"], fingerprint(key).as_str());
        assert_eq!(f["requested"], user);
        assert_eq!(f["client.address"], "127.0.0.1");
        assert!(f["session.id"].as_str().is_some_and(|id| id.len() == 16));
    }
    assert!(
        gw.audit("session_start").is_empty(),
        "{:#?}",
        gw.audit_events()
    );
}

#[test]
fn a_local_forward_is_a_listed_channel_and_one_channel_open() {
    let dir = temp_dir();
    let alice = Key::generate(dir.path(), "alice");
    let ws = SshdBox::start("alice-ws");
    let gw = json_gateway("", &routes_toml(&[ws.route(&[&alice])]));
    let echo = echo_server();
    let destination = format!("127.0.0.1:{echo}");
    let lport = free_port();
    let mut fwd = Bg::spawn(gw.ssh_cmd(&alice).args([
        "-N",
        "-o",
        "ExitOnForwardFailure=yes",
        "-L",
        &format!("127.0.0.1:{lport}:{destination}"),
        "anyone@127.0.0.1",
    ]));
    let listening = eventually(Duration::from_secs(15), || {
        !fwd.is_running() || TcpStream::connect(("127.0.0.1", lport)).is_ok()
    });
    assert!(listening && fwd.is_running(), "no -L: {}", fwd.stderr());
    let mut conn = TcpStream::connect(("127.0.0.1", lport)).expect("connect -L");
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    conn.write_all(b"ping").expect("write");
    let mut back = [0u8; 4];
    conn.read_exact(&mut back).expect("echo through -L");
    assert_eq!(&back, b"ping");

    let s = wait_for_session(&gw, None, |s| {
        s["channels"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["kind"] == "direct-tcpip"))
    });
    let channel = s["channels"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["kind"] == "direct-tcpip"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(channel["destination"], destination.as_str(), "{s}");
    let opens = gw.audit("channel_open");
    let forwards: Vec<&Value> = opens
        .iter()
        .filter(|e| e["channel.kind"] == "direct-tcpip")
        .collect();
    // Two connections through the forward: the probe that saw it listen, and ours.
    assert_eq!(forwards.len(), 2, "{opens:#?}");
    for open in forwards {
        assert_eq!(open["channel.destination"], destination.as_str());
        assert_eq!(open["event.outcome"], "success");
        assert_eq!(open["session.id"], s["id"]);
    }
    drop(conn);
    // Closed: no longer listed.
    assert!(eventually(Duration::from_secs(5), || {
        sessions(&gw, None)["sessions"][0]["channel_count"] == 0
    }));
}

#[test]
fn without_tokens_loopback_reads_and_nobody_ends_sessions() {
    let gw = Gateway::start("");
    let (status, body) = http_request(gw.admin_port, "GET", "/sessions", None);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"truncated\":false"), "{body}");
    let kill = "/sessions/0123456789abcdef/kill";
    let (status, body) = http_request(gw.admin_port, "POST", kill, Some("anything"));
    assert_eq!(status, 403, "{body}");
    assert_eq!(body.lines().count(), 1, "{body}");
    assert!(body.contains("write_token_file"), "{body}");
    let out = cli(&gw, &["kill", "0123456789abcdef"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("403") && out.stderr.contains("write_token_file"),
        "{out:?}"
    );
    // Not a session id: a usage error, nothing sent.
    assert_eq!(cli(&gw, &["kill", "nope"]).code, Some(2));
}

#[test]
fn with_tokens_every_request_needs_the_right_one() {
    let dir = temp_dir();
    let read = write_token(dir.path(), "read-token", "r3ad-t0ken");
    let write = write_token(dir.path(), "write-token", "wr1te-t0ken");
    let cfg = GatewayConfig {
        admin: format!(
            "read_token_file = {}\nwrite_token_file = {}\n",
            toml_str(&read),
            toml_str(&write)
        ),
        ..Default::default()
    };
    let gw = Gateway::start_with(&cfg, "");
    let port = gw.admin_port;
    let kill = "/sessions/0123456789abcdef/kill";
    for (method, path, token, want) in [
        ("GET", "/sessions", None, 401),
        ("GET", "/sessions", Some("wrong"), 401),
        ("GET", "/sessions", Some("r3ad-t0ken"), 200),
        ("GET", "/sessions", Some("wr1te-t0ken"), 200),
        ("POST", kill, None, 401),
        ("POST", kill, Some("r3ad-t0ken"), 401),
        ("POST", kill, Some("wr1te-t0ken"), 404),
        (
            "DELETE",
            "/sessions/0123456789abcdef",
            Some("wr1te-t0ken"),
            404,
        ),
        ("GET", "/metrics", None, 200),
        ("GET", "/healthz", None, 200),
    ] {
        let (status, body) = http_request(port, method, path, token);
        assert_eq!(status, want, "{method} {path} with {token:?}: {body}");
    }
    // The CLI reads the configured read token by default…
    cli(&gw, &["list"]).assert_ok();
    // …and says what the gateway said when the token is wrong.
    let wrong = write_token(dir.path(), "wrong-token", "wrong");
    let out = cli(&gw, &["list", "--token-file", &wrong]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("401"), "{out:?}");
    let missing = cli(&gw, &["list", "--token-file", "/nonexistent/token"]);
    assert_eq!(missing.code, Some(2), "{missing:?}");
}
