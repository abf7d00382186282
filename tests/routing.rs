//! Choosing the box (SPEC §5): by key, by `user@route` in the username (and
//! `%40`), the route's `user` override, and the in-band list for a key that
//! opens several boxes.

mod common;

use common::*;

/// alice-ws and bob-ws, each with its own client key, behind one gateway.
struct TwoBoxes {
    _keys: tempfile::TempDir,
    alice: Key,
    bob: Key,
    gw: Gateway,
    _alice_box: SshdBox,
    _bob_box: SshdBox,
}

fn two_boxes() -> TwoBoxes {
    let keys = temp_dir();
    let alice = Key::generate(keys.path(), "alice");
    let bob = Key::generate(keys.path(), "bob");
    let alice_box = SshdBox::start("alice-ws");
    let bob_box = SshdBox::start("bob-ws");
    let gw = Gateway::start(&routes_toml(&[
        alice_box.route(&[&alice]),
        bob_box.route(&[&bob]),
    ]));
    TwoBoxes {
        _keys: keys,
        alice,
        bob,
        gw,
        _alice_box: alice_box,
        _bob_box: bob_box,
    }
}

#[test]
fn exec_relays_stdout_stderr_and_exit_code() {
    let t = two_boxes();
    let out = t.gw.ssh(
        &t.alice,
        &["anyone@127.0.0.1", "echo out; echo err >&2; exit 7"],
    );
    assert_eq!(out.code, Some(7), "{out:?}");
    assert_eq!(out.stdout, "out\n", "{out:?}");
    assert_eq!(out.stderr, "err\n", "{out:?}");
}

#[test]
fn each_key_reaches_its_own_box_through_one_port() {
    let t = two_boxes();
    let out = t.gw.ssh(&t.alice, &["anyone@127.0.0.1", "echo $BOX"]);
    assert_eq!(out.assert_ok().stdout, "alice-ws\n", "{out:?}");
    let out = t.gw.ssh(&t.bob, &["anyone@127.0.0.1", "echo $BOX"]);
    assert_eq!(out.assert_ok().stdout, "bob-ws\n", "{out:?}");
}

#[test]
fn route_user_overrides_the_ssh_username() {
    let t = two_boxes();
    let out = t.gw.ssh(&t.alice, &["whoever@127.0.0.1", "id -un"]);
    assert_eq!(out.assert_ok().stdout, "root\n", "{out:?}");
}

#[test]
fn key_without_access_to_named_route_is_denied() {
    // alice's key names bob's box: not authorized there.
    let t = two_boxes();
    let out = t.gw.ssh(&t.alice, &["root@bob-ws@127.0.0.1", "echo $BOX"]);
    assert_eq!(out.code, Some(255), "{out:?}");
    assert!(out.stderr.contains("Permission denied"), "{out:?}");
    assert!(!out.stdout.contains("bob-ws"), "{out:?}");
}

/// carol's key is authorized for both boxes; the routes set no `user`, so the
/// login user comes from the username.
struct SharedKey {
    _keys: tempfile::TempDir,
    carol: Key,
    gw: Gateway,
    _alice_box: SshdBox,
    _bob_box: SshdBox,
}

fn shared_key() -> SharedKey {
    let keys = temp_dir();
    let carol = Key::generate(keys.path(), "carol");
    let alice_box = SshdBox::start("alice-ws");
    let bob_box = SshdBox::start("bob-ws");
    let mut a = alice_box.route(&[&carol]);
    let mut b = bob_box.route(&[&carol]);
    a.user = None;
    b.user = None;
    let gw = Gateway::start(&routes_toml(&[a, b]));
    SharedKey {
        _keys: keys,
        carol,
        gw,
        _alice_box: alice_box,
        _bob_box: bob_box,
    }
}

#[test]
fn target_in_username_picks_the_box() {
    let t = shared_key();
    let out =
        t.gw.ssh(&t.carol, &["root@bob-ws@127.0.0.1", "echo $BOX; id -un"]);
    assert_eq!(out.assert_ok().stdout, "bob-ws\nroot\n", "{out:?}");
    let out =
        t.gw.ssh(&t.carol, &["root@alice-ws@127.0.0.1", "echo $BOX"]);
    assert_eq!(out.assert_ok().stdout, "alice-ws\n", "{out:?}");
    // `-l` form, same thing.
    let out =
        t.gw.ssh(&t.carol, &["-l", "root@bob-ws", "127.0.0.1", "echo $BOX"]);
    assert_eq!(out.assert_ok().stdout, "bob-ws\n", "{out:?}");
}

#[test]
fn percent_40_is_accepted_for_at() {
    let t = shared_key();
    let out =
        t.gw.ssh(&t.carol, &["root%40bob-ws@127.0.0.1", "echo $BOX"]);
    assert_eq!(out.assert_ok().stdout, "bob-ws\n", "{out:?}");
}

#[test]
fn key_for_several_boxes_without_target_gets_the_list() {
    let t = shared_key();
    let out = t.gw.ssh(&t.carol, &["root@127.0.0.1", "echo $BOX"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    let text = out.all();
    assert!(
        !text.lines().any(|l| l == "alice-ws" || l == "bob-ws"),
        "must not pick a box: {out:?}"
    );
    for route in ["alice-ws", "bob-ws"] {
        assert!(
            text.lines()
                .any(|l| l.contains("ssh ") && l.contains(route)),
            "no `ssh …{route}…` command in the list: {out:?}"
        );
    }
}

#[test]
fn empty_user_before_target_means_route_user() {
    // alice-ws sets user = "root"; `@alice-ws` names only the target.
    let keys = temp_dir();
    let carol = Key::generate(keys.path(), "carol");
    let alice_box = SshdBox::start("alice-ws");
    let gw = Gateway::start(&routes_toml(&[alice_box.route(&[&carol])]));
    let out = gw.ssh(
        &carol,
        &["-l", "@alice-ws", "127.0.0.1", "echo $BOX; id -un"],
    );
    assert_eq!(out.assert_ok().stdout, "alice-ws\nroot\n", "{out:?}");
}
