//! Secrets never reach the logs (SPEC §8, §9): not the seed, not a line of a
//! route's identity private key, not an admin token, even at `level = "debug"`.

mod common;

use std::thread;
use std::time::Duration;

use common::*;

#[test]
fn debug_log_holds_no_seed_and_no_private_key() {
    for format in ["text", "json"] {
        no_secret_in_log(format);
    }
}

fn no_secret_in_log(format: &str) {
    let dir = temp_dir();
    let alice = Key::generate(dir.path(), "alice");
    let stranger = Key::generate(dir.path(), "stranger");
    let ws = SshdBox::start("alice-ws");
    let (read, write) = ("r3ad-t0ken-never-logged", "wr1te-t0ken-never-logged");
    let token_file = |name: &str, token: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, token).expect("token file");
        toml_str(&path.display().to_string())
    };
    let cfg = GatewayConfig {
        log_level: "debug".into(),
        log_format: format.into(),
        admin: format!(
            "read_token_file = {}\nwrite_token_file = {}\n",
            token_file("read-token", read),
            token_file("write-token", write)
        ),
        ..Default::default()
    };
    // The binary: its log, with `main`'s subscriber, is what is checked.
    let gw = Gateway::spawn_with(&cfg, &routes_toml(&[ws.route(&[&alice])]));

    // A session, a subsystem, a refused key and a reload: plenty to log.
    let out = gw.ssh(&alice, &["anyone@127.0.0.1", "echo $BOX"]);
    assert_eq!(out.assert_ok().stdout, "alice-ws\n", "{out:?}");
    run(
        sftp_command(gw.port, &alice.path).args(["-b", "-", "anyone@127.0.0.1"]),
        Input::Bytes(b"pwd\n".to_vec()),
        SSH_TIMEOUT,
    )
    .assert_ok();
    let denied = gw.ssh(&stranger, &["anyone@127.0.0.1", "true"]);
    assert_eq!(denied.code, Some(255), "{denied:?}");
    // The sessions API, with each token, a wrong one and none.
    for token in [Some(read), Some(write), Some("wrong"), None] {
        http_request(gw.admin_port, "GET", "/sessions", token);
        http_request(
            gw.admin_port,
            "POST",
            "/sessions/0123456789abcdef/kill",
            token,
        );
    }
    gw.append_routes("\n");
    thread::sleep(Duration::from_secs(1));

    let log = gw.log();
    assert!(!log.trim().is_empty(), "expected a debug log");
    assert!(!log.contains(SEED), "the seed appears in the log");
    assert!(
        !log.contains(&SEED.bytes().map(|b| format!("{b:02x}")).collect::<String>()),
        "the seed appears hex-encoded in the log"
    );
    for token in [read, write] {
        assert!(!log.contains(token), "an admin token appears in the log");
    }
    for key in [&ws.identity, &alice, &stranger] {
        for line in key.private_lines() {
            if line.starts_with("-----") || line.len() < 16 {
                continue;
            }
            assert!(
                !log.contains(&line),
                "a line of private key {:?} appears in the log",
                key.path
            );
        }
    }
}
