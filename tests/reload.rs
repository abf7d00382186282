//! Route reload (SPEC §3 `watch`, §10): changes to the routes file apply
//! without a restart, open sessions survive, a broken file keeps the last good
//! table, and a broken route is skipped with an error that names it.

mod common;

use std::thread;
use std::time::Duration;

use common::*;

/// How long a change to the routes file may take to apply.
const RELOAD: Duration = Duration::from_secs(10);

fn reaches(gw: &Gateway, key: &Key, box_name: &str) -> bool {
    let out = gw.ssh(key, &["anyone@127.0.0.1", "echo $BOX"]);
    out.success() && out.stdout == format!("{box_name}\n")
}

#[test]
fn added_route_applies_and_open_sessions_survive() {
    let dir = temp_dir();
    let alice = Key::generate(dir.path(), "alice");
    let bob = Key::generate(dir.path(), "bob");
    let alice_box = SshdBox::start("alice-ws");
    let bob_box = SshdBox::start("bob-ws");
    let gw = Gateway::start(&routes_toml(&[alice_box.route(&[&alice])]));
    assert!(
        !reaches(&gw, &bob, "bob-ws"),
        "bob-ws is not configured yet"
    );

    let long = Bg::spawn(
        gw.ssh_cmd(&alice)
            .args(["anyone@127.0.0.1", "sleep 4; echo done"]),
    );
    thread::sleep(Duration::from_millis(500));
    gw.append_routes(&routes_toml(&[bob_box.route(&[&bob])]));
    assert!(
        eventually(RELOAD, || reaches(&gw, &bob, "bob-ws")),
        "bob-ws never became usable after the append"
    );
    assert!(reaches(&gw, &alice, "alice-ws"));

    let out = long.wait(SSH_TIMEOUT);
    assert_eq!(
        out.code,
        Some(0),
        "the open session must survive the reload: {out:?}"
    );
    assert_eq!(out.stdout, "done\n", "{out:?}");
}

#[test]
fn broken_file_keeps_last_good_routes_and_removal_applies() {
    let dir = temp_dir();
    let alice = Key::generate(dir.path(), "alice");
    let bob = Key::generate(dir.path(), "bob");
    let alice_box = SshdBox::start("alice-ws");
    let bob_box = SshdBox::start("bob-ws");
    let good = routes_toml(&[alice_box.route(&[&alice]), bob_box.route(&[&bob])]);
    let gw = Gateway::start(&good);
    assert!(reaches(&gw, &bob, "bob-ws"));

    // A TOML syntax error: nothing changes.
    gw.write_routes("[[route]\nname = \"alice-ws\"\naddress = \n");
    thread::sleep(Duration::from_secs(2));
    assert!(
        reaches(&gw, &alice, "alice-ws"),
        "alice-ws must keep working after a broken file"
    );
    assert!(
        reaches(&gw, &bob, "bob-ws"),
        "bob-ws must keep working after a broken file"
    );

    // Removing bob-ws applies.
    gw.write_routes(&routes_toml(&[alice_box.route(&[&alice])]));
    assert!(
        eventually(RELOAD, || {
            let out = gw.ssh(&bob, &["anyone@127.0.0.1", "echo $BOX"]);
            out.code == Some(255) && out.stderr.contains("Permission denied")
        }),
        "bob-ws was never removed"
    );
    assert!(reaches(&gw, &alice, "alice-ws"));
}

#[test]
fn broken_route_is_skipped_and_named_good_routes_apply() {
    let dir = temp_dir();
    let alice = Key::generate(dir.path(), "alice");
    let carol = Key::generate(dir.path(), "carol");
    let alice_box = SshdBox::start("alice-ws");
    let carol_box = SshdBox::start("carol-ws");
    // The binary: the error naming the broken route is read from its log.
    let gw = Gateway::spawn(&routes_toml(&[alice_box.route(&[&alice])]));

    let mut broken = Route::new("broken-ws", &alice_box.address());
    broken.user = Some("root".into());
    broken.identity_file = Some(alice_box.identity.path.clone());
    broken.keys = vec!["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA-this-is-not-a-key".into()];
    gw.write_routes(&routes_toml(&[
        alice_box.route(&[&alice]),
        broken,
        carol_box.route(&[&carol]),
    ]));

    assert!(
        eventually(RELOAD, || reaches(&gw, &carol, "carol-ws")),
        "the good new route never became usable"
    );
    assert!(
        reaches(&gw, &alice, "alice-ws"),
        "alice-ws must keep working"
    );
    assert!(
        eventually(Duration::from_secs(3), || gw.log().contains("broken-ws")),
        "the gateway must log an error naming the broken route"
    );
}
