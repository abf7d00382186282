//! Jump mode (SPEC §5 C) with the real OpenSSH client and real sshd boxes on
//! loopback: `ssh -J` through the gateway, end to end with the box's own host
//! key, only for routes the key is authorized for, and never with
//! `jump = "off"`.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// alice-ws and bob-ws; each key is authorized for its own route only, but
/// both boxes accept both keys for the inner, end-to-end login (so a refused
/// jump is the gateway's doing). `kh` holds only the boxes' host keys.
struct Jump {
    dir: tempfile::TempDir,
    alice: Key,
    bob: Key,
    alice_ws: SshdBox,
    bob_ws: SshdBox,
    kh: PathBuf,
}

fn jump_setup() -> Jump {
    let dir = temp_dir();
    let alice = Key::generate(dir.path(), "alice");
    let bob = Key::generate(dir.path(), "bob");
    // Both boxes accept both keys: only the gateway's policy stands in the way.
    let boxed = |name: &str| {
        SshdBox::start_with(
            name,
            BoxOptions {
                extra_authorized: vec![alice.public.clone(), bob.public.clone()],
                ..BoxOptions::default()
            },
        )
    };
    let alice_ws = boxed("alice-ws");
    let bob_ws = boxed("bob-ws");
    let kh = dir.path().join("known_hosts");
    fs::write(
        &kh,
        format!(
            "[127.0.0.1]:{} {}\n[127.0.0.1]:{} {}\n",
            alice_ws.port,
            alice_ws.host_key(),
            bob_ws.port,
            bob_ws.host_key()
        ),
    )
    .unwrap();
    Jump {
        dir,
        alice,
        bob,
        alice_ws,
        bob_ws,
        kh,
    }
}

impl Jump {
    fn routes(&self) -> String {
        routes_toml(&[
            self.alice_ws.route(&[&self.alice]),
            self.bob_ws.route(&[&self.bob]),
        ])
    }
}

/// `ssh root@TARGET` through the gateway on `gw_port` as a jump host
/// (ProxyCommand `ssh -W %h:%p`), checking the box's host key strictly (known
/// as `alias`, e.g. `[127.0.0.1]:BOXPORT`, in `kh`); the remote command is
/// appended by the caller.
fn jump_ssh(gw_port: u16, key: &Key, target: &str, alias: &str, kh: &Path) -> Command {
    let proxy = format!(
        "ssh {} -p {gw_port} -i {} -W %h:%p x@127.0.0.1",
        client_opts().join(" "),
        key.path.display()
    );
    let mut cmd = Command::new("ssh");
    cmd.args(["-F", "/dev/null"])
        .args(["-o", "StrictHostKeyChecking=yes"])
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", kh.display()))
        .arg("-o")
        .arg(format!("HostKeyAlias={alias}"))
        .args(["-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes"])
        .args(["-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR"])
        .arg("-o")
        .arg(format!("ProxyCommand={proxy}"))
        .arg("-i")
        .arg(&key.path)
        .env_remove("SSH_AUTH_SOCK")
        .arg(format!("root@{target}"));
    cmd
}

/// `echo $BOX` on `target` through the gateway as a jump host ([`jump_ssh`]).
fn jump(gw_port: u16, key: &Key, target: &str, alias: &str, kh: &Path) -> Output {
    run(
        jump_ssh(gw_port, key, target, alias, kh).arg("echo $BOX"),
        Input::Null,
        SSH_TIMEOUT,
    )
}

fn alias(b: &SshdBox) -> String {
    format!("[127.0.0.1]:{}", b.port)
}

/// 10 MB both ways through a jump (the stream is spliced without buffers
/// while idle): byte-identical.
#[test]
fn jump_cat_10mb_is_byte_identical() {
    let t = jump_setup();
    let gw = Gateway::start(&t.routes());
    let src = t.dir.path().join("10mb.bin");
    let back = t.dir.path().join("back.bin");
    random_file(&src, 10 * 1024 * 1024);
    assert_cat_round_trip(
        jump_ssh(gw.port, &t.alice, "alice-ws", &alias(&t.alice_ws), &t.kh).arg("cat"),
        &src,
        &back,
    );
}

#[test]
fn jump_is_end_to_end_with_the_box_host_key() {
    let t = jump_setup();
    let gw = Gateway::start(&t.routes());
    let out = jump(gw.port, &t.alice, "alice-ws", &alias(&t.alice_ws), &t.kh);
    assert_eq!(out.assert_ok().stdout, "alice-ws\n", "{out:?}");

    // The host key really is checked: under bob-ws's alias, alice-ws's key is wrong.
    let out = jump(gw.port, &t.alice, "alice-ws", &alias(&t.bob_ws), &t.kh);
    assert_ne!(out.code, Some(0), "{out:?}");
    assert!(
        out.stderr.contains("Host key verification failed")
            || out.stderr.contains("HOST IDENTIFICATION HAS CHANGED"),
        "{out:?}"
    );
    assert!(!out.stdout.contains("alice-ws"), "{out:?}");
}

#[test]
fn real_dash_j_with_a_config_file() {
    let t = jump_setup();
    let gw = Gateway::start(&t.routes());
    let cfg = t.dir.path().join("ssh_config");
    fs::write(
        &cfg,
        format!(
            "Host gw\n  HostName 127.0.0.1\n  Port {gw_port}\n  User x\n  IdentityFile {key}\n  \
             IdentitiesOnly yes\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  \
             BatchMode yes\n  ConnectTimeout 10\n  LogLevel ERROR\n\
             Host alice-ws\n  HostKeyAlias {alias}\n  UserKnownHostsFile {kh}\n  \
             StrictHostKeyChecking yes\n  IdentityFile {key}\n  IdentitiesOnly yes\n  \
             BatchMode yes\n  ConnectTimeout 10\n  LogLevel ERROR\n",
            gw_port = gw.port,
            key = t.alice.path.display(),
            alias = alias(&t.alice_ws),
            kh = t.kh.display(),
        ),
    )
    .unwrap();
    let out = run(
        Command::new("ssh")
            .arg("-F")
            .arg(&cfg)
            .env_remove("SSH_AUTH_SOCK")
            .args(["-J", "gw", "root@alice-ws", "echo $BOX"]),
        Input::Null,
        SSH_TIMEOUT,
    );
    assert_eq!(out.assert_ok().stdout, "alice-ws\n", "{out:?}");
}

#[test]
fn jump_only_to_routes_the_key_is_authorized_for() {
    let t = jump_setup();
    let gw = Gateway::start(&t.routes());
    // bob's key is authorized for bob-ws only (route and box).
    let out = jump(gw.port, &t.bob, "alice-ws", &alias(&t.alice_ws), &t.kh);
    assert_ne!(out.code, Some(0), "{out:?}");
    // Refused at the jump hop (the gateway), not by the box.
    assert!(out.stderr.contains("stdio forwarding failed"), "{out:?}");
    assert!(!out.stdout.contains("alice-ws"), "{out:?}");

    let out = jump(gw.port, &t.bob, "bob-ws", &alias(&t.bob_ws), &t.kh);
    assert_eq!(out.assert_ok().stdout, "bob-ws\n", "{out:?}");
}

#[test]
fn jump_off_refuses_every_jump() {
    let t = jump_setup();
    let cfg = GatewayConfig {
        jump: "off".into(),
        ..GatewayConfig::default()
    };
    let gw = Gateway::start_with(&cfg, &t.routes());
    for (key, target, b) in [
        (&t.alice, "alice-ws", &t.alice_ws),
        (&t.bob, "bob-ws", &t.bob_ws),
    ] {
        let out = jump(gw.port, key, target, &alias(b), &t.kh);
        assert_ne!(out.code, Some(0), "{out:?}");
        assert!(out.stderr.contains("stdio forwarding failed"), "{out:?}");
        assert!(!out.stdout.contains(target), "{out:?}");
    }
    // The gateway itself still works in key mode.
    let out = ssh(gw.port, &t.alice, &["anyone@127.0.0.1", "echo $BOX"]);
    assert_eq!(out.assert_ok().stdout, "alice-ws\n", "{out:?}");
}
