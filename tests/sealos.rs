//! Switchboard as a drop-in for Sealos sshgate: each test is one behaviour
//! of sshgate (its source: github.com/zijiren233/sshgate, the gateway Sealos
//! ships on port 2233) that an sshgate user's commands rely on, driven with
//! the real `ssh` against a real `sshd` Devbox behind the fake API server.
#![cfg(feature = "kubernetes")]

mod common;
mod kube_fake;

use std::fs;
use std::process::Command;

use common::agent::{Agent, ssh_with_agent};
use common::*;
use kube_fake::FakeApi;
use kube_fake::fixtures::*;

/// A seed as an sshgate deployment sets `SSH_HOST_KEY_SEED`.
const SSHGATE_SEED: &str = "sealos-devbox-migration-seed-2026";
/// The host key sshgate presents for [`SSHGATE_SEED`], computed independently
/// (Python `cryptography`: Ed25519 from `hashlib.sha256(seed).digest()`).
const SSHGATE_HOST_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBcJcklsaYMRBGYLuVYVI+OAGjq2Mw/ESMdHKYw3DAQW";

/// A Devbox `box1` in `ns-abc` (sshd `b`, Ready pod), `devbox_user` left
/// at its default `devbox` (no such user on the test box), behind an
/// in-process gateway configured the way an sshgate migration is.
struct Devbox {
    _api: FakeApi,
    b: SshdBox,
    /// `SEALOS_DEVBOX_PUBLIC_KEY`.
    user: Key,
    /// A key only the box's own `authorized_keys` knows (agent mode).
    own: Key,
    dir: tempfile::TempDir,
    gw: Gateway,
}

fn devbox(jump: &str) -> Devbox {
    let api = FakeApi::start();
    let dir = temp_dir();
    let user = Key::generate(dir.path(), "user");
    let own = Key::generate(dir.path(), "own");
    let b = SshdBox::start_with(
        "devbox1",
        BoxOptions {
            extra_authorized: vec![own.public.clone()],
            ..Default::default()
        },
    );
    let identity = fs::read_to_string(&b.identity.path).expect("identity");
    let registered = Key::generate(dir.path(), "registered");
    let secret = devbox_secret(
        "ns-abc",
        "box1",
        &user.public,
        &identity,
        &registered.public,
    );
    api.put("secrets", secret);
    api.put("pods", devbox_pod("ns-abc", "box1-0", "box1", true));
    let kube = format!("mode = \"sealos-devbox\"\ndevbox_port = {}\n", b.port);
    let raw = raw_config(&api, dir.path(), "sealos", &kube)
        .replace(
            &format!("host_key_seed = {}", toml_str(SEED)),
            &format!(
                "host_key_seed = {}\nhost_key_derivation = \"sshgate\"",
                toml_str(SSHGATE_SEED)
            ),
        )
        .replace(
            "agent_login = false",
            &format!("agent_login = true\njump = \"{jump}\""),
        );
    let cfg = GatewayConfig {
        raw: Some(raw),
        ..Default::default()
    };
    let gw = Gateway::start_with(&cfg, "");
    Devbox {
        _api: api,
        b,
        user,
        own,
        dir,
        gw,
    }
}

#[test]
fn key_mode_logs_in_as_the_typed_username() {
    // sshgate gateway/publickey.go: `ClientConfig{User: username}`, the SSH
    // username as typed (the Sealos UI shows `ssh -i key <devbox user>@gw`).
    let d = devbox("authenticated");
    let out = d.gw.ssh(&d.user, &["root@127.0.0.1", "echo $BOX; id -un"]);
    assert_eq!(out.stdout, "devbox1\nroot\n", "{out:?}");
    // Naming the box the Sealos way works too, as the user typed.
    let out = d.gw.ssh(&d.user, &["root@abc-box1@127.0.0.1", "id -un"]);
    assert_eq!(out.stdout, "root\n", "{out:?}");
    // A username that names no user takes devbox_user ("devbox": this box
    // has no such user, so its refusal names it).
    let out = d.gw.ssh(&d.user, &["@abc-box1@127.0.0.1", "id -un"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr
            .contains("switchboard: box1.ns-abc refused login as devbox"),
        "{out:?}"
    );
}

#[test]
fn agent_forwarding_with_the_user_at_nsid_box_grammar() {
    // sshgate gateway/auth.go + agent.go: a key the gateway does not know,
    // `user@nsid-box` naming the box, logs in with the forwarded agent.
    let d = devbox("authenticated");
    let agent = Agent::start(&[&d.own]);
    let out = run(
        ssh_with_agent(d.gw.port, &d.own, &agent).args([
            "-A",
            "root@abc-box1@127.0.0.1",
            "echo $BOX",
        ]),
        Input::Null,
        SSH_TIMEOUT,
    );
    assert_eq!(out.stdout, "devbox1\n", "{out:?}");
}

/// `ssh -J 'x@abc-box1@gw' root@anything`, the form sshgate documents, with
/// the box's host key checked strictly (the SSH inside is end to end).
fn jump_form(d: &Devbox, key: &Key) -> Output {
    let kh = d.dir.path().join("box_known_hosts");
    fs::write(&kh, format!("anything {}\n", d.b.host_key())).expect("known_hosts");
    let gw_config = d.dir.path().join("ssh_config");
    fs::write(
        &gw_config,
        format!(
            "Host gw\n  HostName 127.0.0.1\n  Port {}\n  User x@abc-box1\n  IdentityFile {key}\n  \
             IdentitiesOnly yes\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  \
             BatchMode yes\n  LogLevel ERROR\n\
             Host anything\n  UserKnownHostsFile {kh}\n  StrictHostKeyChecking yes\n  \
             IdentityFile {key}\n  IdentitiesOnly yes\n  BatchMode yes\n  LogLevel ERROR\n",
            d.gw.port,
            key = key.path.display(),
            kh = kh.display(),
        ),
    )
    .expect("ssh_config");
    run(
        Command::new("ssh")
            .arg("-F")
            .arg(&gw_config)
            .env_remove("SSH_AUTH_SOCK")
            .args(["-J", "gw", "root@anything", "echo $BOX"]),
        Input::Null,
        SSH_TIMEOUT,
    )
}

#[test]
fn the_sshgate_jump_form_reaches_the_named_box() {
    // sshgate gateway/proxyjump.go: a direct-tcpip on a connection whose
    // username names the box goes to that box's sshd; the inner host is
    // ignored. Here under `jump = "authenticated"`: the outer key must be
    // authorized for the box; the inner login is the box's own business.
    let d = devbox("authenticated");
    let out = jump_form(&d, &d.own);
    assert_ne!(out.stdout, "devbox1\n", "unauthorized key jumped: {out:?}");
    // The Devbox key is authorized; the box itself accepts `own` only.
    fs::write(
        d.b.dir.path().join("authorized_keys"),
        format!("{}\n{}\n", d.b.identity.public, d.user.public),
    )
    .expect("authorized_keys");
    let out = jump_form(&d, &d.user);
    assert_eq!(out.stdout, "devbox1\n", "{out:?}");
}

#[test]
fn the_jump_form_follows_the_jump_policy() {
    // `jump = "any-key"`: like sshgate, any key may open the tunnel to the
    // named box's sshd, whose authorized_keys then decides.
    let d = devbox("any-key");
    let out = jump_form(&d, &d.own);
    assert_eq!(out.stdout, "devbox1\n", "{out:?}");
    let off = devbox("off");
    let out = jump_form(&off, &off.own);
    assert_ne!(out.stdout, "devbox1\n", "{out:?}");
}

#[test]
fn the_host_key_is_the_one_sshgate_presented_for_the_same_seed() {
    // sshgate hostkey/hostkey.go: ed25519.NewKeyFromSeed(sha256(seed)).
    // A known_hosts line written against sshgate is accepted strictly, so
    // OpenSSH keeps agent and port forwarding on.
    let d = devbox("authenticated");
    let kh = d.dir.path().join("gw_known_hosts");
    fs::write(
        &kh,
        format!("[127.0.0.1]:{} {SSHGATE_HOST_KEY}\n", d.gw.port),
    )
    .expect("kh");
    let out = run(
        Command::new("ssh")
            .env_remove("SSH_AUTH_SOCK")
            .args(["-F", "/dev/null", "-o", "StrictHostKeyChecking=yes"])
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", kh.display()))
            .args(["-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-i"])
            .arg(&d.user.path)
            .args(["-p", &d.gw.port.to_string(), "root@127.0.0.1", "echo $BOX"]),
        Input::Null,
        SSH_TIMEOUT,
    );
    assert_eq!(out.stdout, "devbox1\n", "{out:?}");
    // `switchboard host-key` prints that same key for the operator.
    let printed = d.gw.subcommand("host-key");
    assert!(printed.stdout.contains(SSHGATE_HOST_KEY), "{printed:?}");
}
