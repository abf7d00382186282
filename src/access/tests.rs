//! The admission decision over a small table: key mode, agent mode,
//! jump-only, choose and refused, and what each principal may then do.

use std::sync::Arc;

use russh::keys::{PrivateKey, PublicKey, ssh_key::private::Ed25519Keypair};

use super::*;
use crate::config::Config;
use crate::routes::shared;

fn key(n: u8) -> PublicKey {
    PrivateKey::from(Ed25519Keypair::from_seed(&[n; 32]))
        .public_key()
        .clone()
}

fn route(name: &str, user: Option<&str>, keys: &[PublicKey]) -> Route {
    Route {
        user: user.map(str::to_owned),
        authorized_keys: keys.to_vec(),
        ..Route::for_test(name, "127.0.0.1:22")
    }
}

/// alice-ws (user devbox) opens to keys 1 and 3; bob-ws (no user) to 2 and 3.
fn access(configure: impl FnOnce(&mut Config)) -> Access {
    let mut config = Config::default();
    configure(&mut config);
    let mut bob = route("bob-ws", None, &[key(2), key(3)]);
    bob.forwarding.remote = false;
    let table = RouteTable::new([route("alice-ws", Some("devbox"), &[key(1), key(3)]), bob]);
    Access::new(Arc::new(config), shared(table))
}

fn admitted(access: &Access, user: &str, key: &PublicKey) -> Principal {
    match access.ssh(user, key) {
        Admission::Admitted(p) => *p,
        Admission::Refused(why) => panic!("{user} refused: {why:?}"),
    }
}

fn key_mode(p: &Principal) -> (&str, Option<&str>) {
    match p.mode() {
        Mode::Key { route, user } => (route.name.as_str(), user.as_deref()),
        other => panic!("not key mode: {other:?}"),
    }
}

#[test]
fn key_picks_its_only_route_and_route_user_wins() {
    let p = admitted(&access(|_| {}), "whoever", &key(1));
    assert_eq!(key_mode(&p), ("alice-ws", Some("devbox")));
    assert_eq!(p.label(), "key");
    assert_eq!(p.route_name(), Some("alice-ws"));
    assert_eq!(p.login_user(), Some("devbox"));
}

#[test]
fn without_route_user_the_ssh_username_is_used() {
    let p = admitted(&access(|_| {}), "ubuntu", &key(2));
    assert_eq!(key_mode(&p), ("bob-ws", Some("ubuntu")));
}

#[test]
fn key_for_several_routes_must_choose() {
    let p = admitted(&access(|_| {}), "x", &key(3));
    match p.mode() {
        Mode::Choose { routes, login_name } => {
            let names: Vec<_> = routes.iter().map(|r| r.name.as_str()).collect();
            assert_eq!(names, ["alice-ws", "bob-ws"]);
            assert_eq!(login_name, "x");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(p.label(), "choose");
}

#[test]
fn named_target_with_explicit_user_and_percent_40() {
    let a = access(|_| {});
    assert_eq!(
        key_mode(&admitted(&a, "root@bob-ws", &key(3))),
        ("bob-ws", Some("root"))
    );
    assert_eq!(
        key_mode(&admitted(&a, "root%40alice-ws", &key(3))),
        ("alice-ws", Some("root"))
    );
}

#[test]
fn empty_user_means_route_user() {
    let a = access(|_| {});
    assert_eq!(
        key_mode(&admitted(&a, "@alice-ws", &key(1))),
        ("alice-ws", Some("devbox"))
    );
    assert_eq!(
        key_mode(&admitted(&a, "@bob-ws", &key(2))),
        ("bob-ws", None)
    );
}

#[test]
fn unknown_key_unknown_target_and_unauthorized_key_are_all_refused() {
    let a = access(|c| c.routing.agent_login = false);
    for (user, k, why) in [
        ("x", key(9), Refusal::UnknownKey),
        ("r@alice-ws", key(9), Refusal::UnknownKey),
        ("r@nope", key(9), Refusal::UnknownKey),
        ("r@nope", key(1), Refusal::UnknownTarget),
        ("r@bob-ws", key(1), Refusal::NotAuthorized),
        ("bad\nname", key(1), Refusal::MalformedUsername),
        ("r@", key(1), Refusal::MalformedUsername),
    ] {
        match a.ssh(user, &k) {
            Admission::Refused(refusal) => assert_eq!(refusal, why, "{user:?}"),
            Admission::Admitted(p) => panic!("{user:?} admitted: {p:?}"),
        }
    }
}

#[test]
fn agent_mode_for_a_named_target_whether_or_not_it_exists() {
    let a = access(|_| {});
    let p = admitted(&a, "root@bob-ws", &key(9));
    match p.mode() {
        Mode::Agent {
            target,
            route,
            user,
        } => {
            assert_eq!(target, "bob-ws");
            assert!(route.is_some());
            assert_eq!(user.as_deref(), Some("root"));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(p.label(), "agent");
    // A target that does not exist: still agent mode, with no route.
    let p = admitted(&a, "root@nope", &key(9));
    assert!(matches!(p.mode(), Mode::Agent { route: None, .. }));
    assert_eq!(p.route_name(), Some("nope"));
    // The route's user when none is named.
    assert_eq!(
        admitted(&a, "@alice-ws", &key(9)).login_user(),
        Some("devbox")
    );
    // No target named: nothing to log in to.
    assert!(matches!(
        a.ssh("root", &key(9)),
        Admission::Refused(Refusal::UnknownKey)
    ));
}

#[test]
fn any_key_jump_policy_admits_unknown_keys_only_to_jump() {
    let a = access(|c| {
        c.routing.jump = JumpPolicy::AnyKey;
        c.routing.agent_login = false;
    });
    let p = admitted(&a, "x", &key(9));
    assert!(matches!(p.mode(), Mode::JumpOnly));
    assert_eq!(p.label(), "jump");
    assert!(p.jump(&a.table(), "alice-ws", 22).is_some());
    // A named target is not a jump: refused as before.
    assert!(matches!(
        a.ssh("x@alice-ws", &key(9)),
        Admission::Refused(Refusal::UnknownKey)
    ));
}

#[test]
fn jumps_follow_the_policy() {
    let a = access(|_| {});
    let p = admitted(&a, "x", &key(1));
    let t = a.table();
    assert!(
        p.jump(&t, "alice-ws", 22)
            .is_some_and(|r| r.name == "alice-ws")
    );
    // A route the key may not use is an ordinary destination, as any name.
    assert!(p.jump(&t, "bob-ws", 22).is_none());
    assert!(p.jump(&t, "localhost", 22).is_none());
    // A key for several routes may jump to each.
    let p = admitted(&a, "x", &key(3));
    assert!(p.jump(&t, "alice-ws", 22).is_some());
    assert!(p.jump(&t, "bob-ws", 22).is_some());

    let off = access(|c| c.routing.jump = JumpPolicy::Off);
    let p = admitted(&off, "x", &key(1));
    assert!(p.jump(&off.table(), "alice-ws", 22).is_none());
}

#[test]
fn forwarding_follows_the_route_switches() {
    let a = access(|_| {});
    let alice = admitted(&a, "x", &key(1));
    let bob = admitted(&a, "x", &key(2));
    for f in [Forward::Local, Forward::Remote, Forward::Agent] {
        assert!(alice.allows(f), "{f:?}");
    }
    assert!(!bob.allows(Forward::Remote));
    // Agent mode: no -R and no -A into the box; local forwards per route,
    // asked only once the box has accepted (before, any target alike).
    let agent = admitted(&a, "root@bob-ws", &key(9));
    assert!(agent.allows(Forward::Local));
    assert!(!agent.allows(Forward::Remote));
    assert!(!agent.allows(Forward::Agent));
    assert!(agent.allows_once_in());
    let mut no_local = access(|_| {});
    let mut bob = route("bob-ws", None, &[]);
    bob.forwarding.local = false;
    no_local.routes = shared(RouteTable::new([bob]));
    let agent = admitted(&no_local, "root@bob-ws", &key(9));
    assert!(agent.allows(Forward::Local), "not before the box accepted");
    assert!(!agent.allows_once_in());
    // Without a box, a local forward is told the session's notice later.
    let choose = admitted(&a, "x", &key(3));
    assert!(choose.allows(Forward::Local));
    assert!(!choose.allows(Forward::Remote));
}

/// A table of one sshgate-compatible route `box1.ns-abc` (user `devbox`,
/// key 1), as the `sealos-devbox` source builds it.
fn sealos(configure: impl FnOnce(&mut Config)) -> Access {
    let mut config = Config::default();
    config.routing.username_grammar = crate::config::UsernameGrammar::Sealos;
    configure(&mut config);
    let mut devbox = route("box1.ns-abc", Some("devbox"), &[key(1)]);
    devbox.sshgate_compat = true;
    let table = RouteTable::new([devbox, route("bob-ws", None, &[key(2)])]);
    Access::new(Arc::new(config), shared(table))
}

#[test]
fn sshgate_key_mode_logs_in_as_the_typed_user() {
    // sshgate (gateway/publickey.go): the backend login user is the SSH
    // username as typed; `devbox_user` only when it names none.
    let a = sealos(|_| {});
    assert_eq!(
        key_mode(&admitted(&a, "root", &key(1))),
        ("box1.ns-abc", Some("root"))
    );
    assert_eq!(
        key_mode(&admitted(&a, "", &key(1))),
        ("box1.ns-abc", Some("devbox"))
    );
    // Naming the box: the user part as typed, or devbox_user when empty.
    let named = admitted(&a, "ubuntu@abc-box1", &key(1));
    assert_eq!(key_mode(&named), ("box1.ns-abc", Some("ubuntu")));
    let named = admitted(&a, "@abc-box1", &key(1));
    assert_eq!(key_mode(&named), ("box1.ns-abc", Some("devbox")));
}

#[test]
fn sshgate_jump_form_goes_to_the_named_box_under_the_jump_policy() {
    // sshgate (gateway/proxyjump.go): a direct-tcpip of a connection whose
    // username names the box reaches that box's sshd, whatever the host.
    let a = sealos(|_| {});
    let t = a.table();
    let p = admitted(&a, "x@abc-box1", &key(1));
    let to = |host, port| p.jump(&t, host, port).map(|r| r.name.clone());
    assert_eq!(to("anything", 22).as_deref(), Some("box1.ns-abc"));
    // Another port is an ordinary forward through the box (-L).
    assert_eq!(to("anything", 5432), None);
    // Without a named box there is no jump form.
    let p = admitted(&a, "x", &key(1));
    assert!(p.jump(&t, "anything", 22).is_none());
    // A key not authorized for the box (agent mode) may not, unless any-key.
    let p = admitted(&a, "x@abc-box1", &key(9));
    assert!(p.jump(&t, "anything", 22).is_none());
    let any = sealos(|c| c.routing.jump = JumpPolicy::AnyKey);
    let p = admitted(&any, "x@abc-box1", &key(9));
    assert!(p.jump(&any.table(), "anything", 22).is_some());
    let off = sealos(|c| c.routing.jump = JumpPolicy::Off);
    let p = admitted(&off, "x@abc-box1", &key(1));
    assert!(p.jump(&off.table(), "anything", 22).is_none());
}

#[test]
fn routes_without_sshgate_compat_keep_the_route_user_and_no_jump_form() {
    let a = access(|_| {});
    let p = admitted(&a, "root@alice-ws", &key(1));
    assert!(p.jump(&a.table(), "anything", 22).is_none());
    assert_eq!(
        key_mode(&admitted(&a, "root", &key(1))),
        ("alice-ws", Some("devbox"))
    );
}
