//! Start-wait (`wake.start_wait`): a box that runs but does not answer yet
//! (just created, restarting) is waited for with progress on stderr, instead
//! of failing at once; without it the failure is told at once, as before.

mod common;

use std::thread;
use std::time::Duration;

use common::*;

/// A route to a box whose sshd is not up yet, on a port chosen now.
struct Late {
    _dir: tempfile::TempDir,
    port: u16,
    identity: Key,
    user: Key,
    routes: String,
}

fn late() -> Late {
    let dir = temp_dir();
    let identity = Key::generate(dir.path(), "identity");
    let user = Key::generate(dir.path(), "user");
    let port = free_port();
    let mut route = Route::new("late-ws", &format!("127.0.0.1:{port}"));
    route.keys = vec![user.public.clone()];
    route.identity_file = Some(identity.path.clone());
    route.user = Some("root".into());
    let routes = routes_toml(&[route]);
    Late {
        _dir: dir,
        port,
        identity,
        user,
        routes,
    }
}

fn gateway(late: &Late, wake: &str) -> Gateway {
    let raw = format!(
        "[server]\nlisten = @LISTEN@\nhost_key_seed = {seed}\n\n\
         [sources.file]\npath = @ROUTES@\nwatch = false\n\n[admin]\nlisten = @ADMIN@\n\n\
         [upstream]\nconnect_timeout = \"2s\"\n\n[wake]\nheartbeat = \"1s\"\n{wake}\n",
        seed = toml_str(SEED),
    );
    let cfg = GatewayConfig {
        raw: Some(raw),
        ..Default::default()
    };
    Gateway::start_with(&cfg, &late.routes)
}

/// The box's sshd, started after `after`.
fn boot(late: &Late, after: Duration) -> SshdBox {
    thread::sleep(after);
    SshdBox::start_with(
        "late-ws",
        BoxOptions {
            authorize_identity: false,
            extra_authorized: vec![late.identity.public.clone()],
            port: Some(late.port),
            ..Default::default()
        },
    )
}

#[test]
fn a_starting_box_is_waited_for_up_to_start_wait() {
    let l = late();
    let gw = gateway(&l, "start_wait = \"30s\"");
    let (out, _box) = thread::scope(|scope| {
        let booted = scope.spawn(|| boot(&l, Duration::from_millis(2500)));
        let out = gw.ssh(&l.user, &["x@127.0.0.1", "echo hi"]);
        (out, booted.join().expect("boot"))
    });
    assert_eq!(out.stdout, "hi\n", "{out:?}");
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stderr
            .contains("switchboard: late-ws does not answer yet; waiting for it to start"),
        "{out:?}"
    );
    assert!(
        out.stderr
            .contains("switchboard: still waiting for its sshd to answer (late-ws, "),
        "{out:?}"
    );
}

#[test]
fn start_wait_ends_with_a_timeout_naming_the_phase() {
    let l = late();
    let gw = gateway(&l, "start_wait = \"2s\"");
    let out = gw.ssh(&l.user, &["x@127.0.0.1", "echo hi"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains(
            "switchboard: late-ws did not come up within 2s (gave up waiting for its sshd to answer)"
        ),
        "{out:?}"
    );
}

#[test]
fn without_start_wait_an_unreachable_box_is_told_at_once() {
    let l = late();
    let gw = gateway(&l, "");
    let out = gw.ssh(&l.user, &["x@127.0.0.1", "echo hi"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr
            .contains("switchboard: cannot reach late-ws (127.0.0.1:")
            && out
                .stderr
                .contains("connection refused; it may still be starting"),
        "{out:?}"
    );
    assert!(!out.stderr.contains("waiting"), "{out:?}");
}

#[test]
fn with_start_wait_a_box_that_answers_is_reached_as_usual() {
    // The first login is done at once, as without start-wait: the box
    // answers the session's requests itself, nothing is told.
    let l = late();
    let gw = gateway(&l, "start_wait = \"30s\"");
    let _box = boot(&l, Duration::ZERO);
    let out = gw.ssh(&l.user, &["x@127.0.0.1", "echo out; echo err >&2; exit 7"]);
    assert_eq!(out.code, Some(7), "{out:?}");
    assert_eq!(
        (out.stdout.as_str(), out.stderr.as_str()),
        ("out\n", "err\n")
    );
}
