//! The harness itself, without the gateway: if these fail, the machine (sshd,
//! ssh, ssh-keygen, /run/sshd) is the problem, not Switchboard.

mod common;

use common::*;

#[test]
fn box_is_reachable_directly_with_the_identity_key() {
    let ws = SshdBox::start("alice-ws");
    let out = ssh(
        ws.port,
        &ws.identity,
        &["root@127.0.0.1", "echo $BOX; id -un"],
    );
    assert_eq!(out.assert_ok().stdout, "alice-ws\nroot\n", "{out:?}");
}

#[test]
fn box_without_identity_refuses_it() {
    let ws = SshdBox::start_with(
        "alice-ws",
        BoxOptions {
            authorize_identity: false,
            ..Default::default()
        },
    );
    let out = ssh(ws.port, &ws.identity, &["root@127.0.0.1", "true"]);
    assert_eq!(out.code, Some(255), "{out:?}");
}

#[test]
fn deadline_kills_a_hanging_command() {
    let out = run(
        std::process::Command::new("sleep").arg("30"),
        Input::Null,
        std::time::Duration::from_millis(300),
    );
    assert!(out.timed_out, "{out:?}");
}

#[test]
fn ports_are_not_handed_out_twice() {
    let mut ports: Vec<u16> = (0..200).map(|_| free_port()).collect();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), 200);
}
