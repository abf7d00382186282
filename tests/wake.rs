//! Wake on connect, end to end: a stopped Sealos Devbox behind the fake API
//! server; the real `ssh`/`sftp` connect; the test plays the Devbox
//! controller — once the gateway's PATCH arrives it starts the box's sshd
//! and adds a Ready pod — and checks what the user saw and what the API got.
#![cfg(feature = "kubernetes")]

mod common;
mod kube_fake;

use std::fs;
use std::process::Command;
use std::thread;
use std::time::Duration;

use common::agent::{Agent, ssh_with_agent};
use common::*;
use kube_fake::FakeApi;
use kube_fake::fixtures::*;
use serde_json::json;

const DEVBOX_PATH: &str = "/apis/devbox.sealos.io/v1alpha2/namespaces/ns-abc/devboxes/box1";
/// How long the "controller" takes from the PATCH to a Ready pod: long
/// enough for a heartbeat (`wake.heartbeat = "1s"`).
const BOOT: Duration = Duration::from_millis(2500);

/// A stopped Devbox `box1` in `ns-abc` (its Secret and `Devbox`, no pod)
/// that the gateway may wake; its sshd is started by [`controller`].
struct Stopped {
    api: FakeApi,
    /// The port its sshd will listen on (`devbox_port`).
    port: u16,
    /// The gateway's login key for the box (`SEALOS_DEVBOX_PRIVATE_KEY`).
    identity: Key,
    /// `SEALOS_DEVBOX_PUBLIC_KEY`.
    user: Key,
    /// A key the gateway does not know (the box's sshd accepts it).
    stranger: Key,
    dir: tempfile::TempDir,
    gw: Gateway,
}

fn stopped(wake: &str) -> Stopped {
    let api = FakeApi::start();
    let dir = temp_dir();
    let identity = Key::generate(dir.path(), "identity");
    let user = Key::generate(dir.path(), "user");
    let stranger = Key::generate(dir.path(), "stranger");
    let private = fs::read_to_string(&identity.path).expect("identity");
    let registered = Key::generate(dir.path(), "registered");
    api.put(
        "secrets",
        devbox_secret("ns-abc", "box1", &user.public, &private, &registered.public),
    );
    api.put(
        "devboxes",
        json!({"metadata": {"name": "box1", "namespace": "ns-abc"}, "spec": {"state": "Stopped"}}),
    );
    let port = free_port();
    let kube = format!(
        "mode = \"sealos-devbox\"\ndevbox_port = {port}\nwake = true\n\n\
         [wake]\nheartbeat = \"1s\"\n{wake}\n"
    );
    let raw = raw_config(&api, dir.path(), "sealos", &kube).replace(
        "agent_login = false",
        "agent_login = true\njump = \"any-key\"",
    );
    let cfg = GatewayConfig {
        raw: Some(raw),
        ..Default::default()
    };
    let gw = Gateway::start_with(&cfg, "");
    Stopped {
        api,
        port,
        identity,
        user,
        stranger,
        dir,
        gw,
    }
}

impl Stopped {
    /// The PATCHes of the Devbox received so far.
    fn devbox_patches(&self) -> Vec<(String, String, serde_json::Value)> {
        let patches = self.api.patches();
        patches.into_iter().filter(|p| p.0 == DEVBOX_PATH).collect()
    }
}

/// The Devbox controller: once `spec.state` is patched to `Running`, boots
/// the box (its sshd, then a Ready pod). `None` if no PATCH came in time.
fn controller(s: &Stopped) -> Option<SshdBox> {
    let patched = eventually(Duration::from_secs(60), || {
        s.api
            .get("devboxes", "ns-abc", "box1")
            .is_some_and(|d| d["spec"]["state"] == "Running")
    });
    if !patched {
        return None;
    }
    thread::sleep(BOOT);
    let b = SshdBox::start_with(
        "devbox1",
        BoxOptions {
            authorize_identity: false,
            extra_authorized: vec![s.identity.public.clone(), s.stranger.public.clone()],
            port: Some(s.port),
            ..Default::default()
        },
    );
    s.api
        .put("pods", devbox_pod("ns-abc", "box1-0", "box1", true));
    Some(b)
}

/// Runs `client` while the controller plays its part; returns what the
/// client saw and the box it booted (running until dropped).
fn with_controller(s: &Stopped, client: impl FnOnce() -> Output) -> (Output, Option<SshdBox>) {
    thread::scope(|scope| {
        let booted = scope.spawn(|| controller(s));
        let out = client();
        (out, booted.join().expect("controller"))
    })
}

#[test]
fn ssh_to_a_stopped_box_wakes_it_with_progress_on_stderr_only() {
    let s = stopped("");
    let (out, _box) = with_controller(&s, || s.gw.ssh(&s.user, &["root@127.0.0.1", "echo hi"]));
    assert_eq!(out.stdout, "hi\n", "{out:?}");
    assert_eq!(out.code, Some(0), "{out:?}");
    for line in [
        "switchboard: box1.ns-abc is stopped; starting it",
        "switchboard: box1.ns-abc is starting; waiting for it to be ready",
        "switchboard: still waiting for it to be ready (box1.ns-abc, ",
    ] {
        assert!(out.stderr.contains(line), "no {line:?} in {out:?}");
    }
    // Exactly one PATCH: a JSON merge patch of spec.state.
    let patches = s.devbox_patches();
    assert_eq!(patches.len(), 1, "{patches:?}");
    let (_, content_type, body) = &patches[0];
    assert_eq!(content_type, "application/merge-patch+json");
    assert_eq!(body, &json!({"spec": {"state": "Running"}}));
    // Up now: the next login is direct, with nothing told and no PATCH.
    let again = s.gw.ssh(&s.user, &["root@127.0.0.1", "echo again"]);
    assert_eq!(
        (again.stdout.as_str(), again.stderr.as_str()),
        ("again\n", "")
    );
    assert_eq!(s.devbox_patches().len(), 1);
    // Metrics are process-wide (other tests' gateways count too).
    let (_, metrics) = admin_get(s.gw.admin_port, "/metrics");
    for name in [
        "switchboard_wakes_total{outcome=\"started\"}",
        "switchboard_wakes_total{outcome=\"ready\"}",
        "switchboard_wake_seconds_count",
    ] {
        assert!(metrics.contains(name), "no {name} in {metrics}");
    }
}

#[test]
fn a_commit_in_progress_is_waited_out() {
    let s = stopped("");
    s.api.set_committing(2);
    let (out, _box) = with_controller(&s, || s.gw.ssh(&s.user, &["root@127.0.0.1", "echo hi"]));
    assert_eq!(out.stdout, "hi\n", "{out:?}");
    assert!(
        out.stderr.contains(
            "switchboard: box1.ns-abc is saving a commit; it is started once that is done"
        ),
        "{out:?}"
    );
    // Two answered 422, the third went through.
    assert_eq!(s.devbox_patches().len(), 3);
}

#[test]
fn sftp_to_a_waking_box_works() {
    let s = stopped("");
    let local = s.dir.path().join("up.bin");
    random_file(&local, 300_000);
    let back = s.dir.path().join("back.bin");
    let batch = format!(
        "put {} /tmp/wake-sftp.bin\nget /tmp/wake-sftp.bin {}\n",
        local.display(),
        back.display()
    );
    let (out, _box) = with_controller(&s, || {
        run(
            sftp_command(s.gw.port, &s.user.path).args(["-b", "-", "root@127.0.0.1"]),
            Input::Bytes(batch.into_bytes()),
            SSH_TIMEOUT,
        )
    });
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_same_file(&local, &back);
    assert!(out.stderr.contains("is stopped; starting it"), "{out:?}");
}

#[test]
fn a_jump_to_a_waking_box_is_held_silently() {
    let s = stopped("");
    let config = s.dir.path().join("ssh_config");
    fs::write(
        &config,
        format!(
            "Host gw\n  HostName 127.0.0.1\n  Port {}\n  User x@abc-box1\n  IdentityFile {key}\n  \
             IdentitiesOnly yes\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  \
             BatchMode yes\n  LogLevel ERROR\n\
             Host anything\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  \
             IdentityFile {stranger}\n  IdentitiesOnly yes\n  BatchMode yes\n  LogLevel ERROR\n",
            s.gw.port,
            key = s.user.path.display(),
            stranger = s.stranger.path.display(),
        ),
    )
    .expect("ssh_config");
    let (out, _box) = with_controller(&s, || {
        run(
            Command::new("ssh")
                .arg("-F")
                .arg(&config)
                .env_remove("SSH_AUTH_SOCK")
                .args(["-J", "gw", "root@anything", "echo hi"]),
            Input::Null,
            SSH_TIMEOUT,
        )
    });
    assert_eq!(out.stdout, "hi\n", "{out:?}");
    assert!(!out.stderr.contains("switchboard:"), "{out:?}");
    assert_eq!(s.devbox_patches().len(), 1);
}

#[test]
fn unauthorized_keys_never_wake_a_box() {
    let s = stopped("");
    // Unknown key, no target: refused before anything.
    let out = s.gw.ssh(&s.stranger, &["root@127.0.0.1", "echo hi"]);
    assert_ne!(out.code, Some(0), "{out:?}");
    // Agent mode (the box would accept the stranger's key): provisional
    // until the box accepts it, so it never wakes the box.
    let agent = Agent::start(&[&s.stranger]);
    let out = run(
        ssh_with_agent(s.gw.port, &s.stranger, &agent).args([
            "-A",
            "root@abc-box1@127.0.0.1",
            "echo hi",
        ]),
        Input::Null,
        SSH_TIMEOUT,
    );
    assert_ne!(out.stdout, "hi\n", "{out:?}");
    assert!(!out.stderr.contains("starting"), "{out:?}");
    // `jump = "any-key"` lets any key jump, but only an authorized key wakes.
    let out = run(
        ssh_at("ERROR", s.gw.port, &s.stranger).args(["-W", "anything:22", "x@abc-box1@127.0.0.1"]),
        Input::Null,
        SSH_TIMEOUT,
    );
    assert_ne!(out.code, Some(0), "{out:?}");
    thread::sleep(Duration::from_secs(1));
    assert!(s.devbox_patches().is_empty(), "{:?}", s.devbox_patches());
}

#[test]
fn a_box_that_never_comes_up_times_out_naming_the_phase() {
    let s = stopped("timeout = \"3s\"");
    // No controller: the PATCH is accepted, no pod ever gets Ready.
    let out = s.gw.ssh(&s.user, &["root@127.0.0.1", "echo hi"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains(
            "switchboard: box1.ns-abc did not come up within 3s (gave up waiting for it to be ready)"
        ),
        "{out:?}"
    );
    assert_eq!(out.stdout, "");
}

#[test]
fn an_sshroute_wakes_by_scaling_its_deployment_to_one() {
    let api = FakeApi::start();
    let dir = temp_dir();
    let identity = Key::generate(dir.path(), "identity");
    let user = Key::generate(dir.path(), "user");
    let private = fs::read_to_string(&identity.path).expect("identity");
    let port = free_port();
    api.put(
        "secrets",
        json!({"metadata": {"name": "web-id", "namespace": "team", "labels": route_secret()},
               "data": {"ssh-privatekey": b64(&private)}}),
    );
    api.put(
        "deployments",
        json!({"metadata": {"name": "web", "namespace": "team"}, "spec": {"replicas": 0}}),
    );
    api.put(
        "sshroutes",
        json!({"metadata": {"name": "web", "namespace": "team"},
               "spec": {"backend": {"podSelector": {"matchLabels": {"app": "web"}}, "port": port},
                        "user": "root", "authorizedKeys": [user.public],
                        "identitySecretRef": {"name": "web-id", "key": "ssh-privatekey"},
                        "wake": {"kind": "Deployment", "name": "web"}}}),
    );
    let kube = format!("{CRD_ON_LOOPBACK}wake = true\n\n[wake]\nheartbeat = \"1s\"\n");
    let (gw, _) = gateway(&api, dir.path(), "default", &kube, Gateway::start_with);
    // The Deployment controller: once scaled to one, a Ready pod.
    let (out, _box) = thread::scope(|scope| {
        let booted = scope.spawn(|| {
            let scaled = eventually(Duration::from_secs(60), || {
                api.get("deployments", "team", "web")
                    .is_some_and(|d| d["spec"]["replicas"] == 1)
            });
            scaled.then(|| {
                thread::sleep(BOOT);
                let b = SshdBox::start_with(
                    "web",
                    BoxOptions {
                        authorize_identity: false,
                        extra_authorized: vec![identity.public.clone()],
                        port: Some(port),
                        ..Default::default()
                    },
                );
                api.put(
                    "pods",
                    pod("team", "web-0", json!({"app": "web"}), None, true),
                );
                b
            })
        });
        let out = gw.ssh(&user, &["root@web.team@127.0.0.1", "echo $BOX"]);
        (out, booted.join().expect("controller"))
    });
    assert_eq!(out.stdout, "web\n", "{out:?}");
    assert!(
        out.stderr
            .contains("switchboard: web.team is stopped; starting it"),
        "{out:?}"
    );
    let scale_path = "/apis/apps/v1/namespaces/team/deployments/web/scale";
    let patches: Vec<_> = api
        .patches()
        .into_iter()
        .filter(|p| p.0 == scale_path)
        .collect();
    assert_eq!(patches.len(), 1, "{patches:?}");
    assert_eq!(patches[0].1, "application/merge-patch+json");
    assert_eq!(patches[0].2, json!({"spec": {"replicas": 1}}));
}

#[test]
fn connections_at_once_share_one_wake() {
    let s = stopped("");
    let (outs, _box) = with_both(&s);
    for out in &outs {
        assert_eq!(out.stdout, "hi\n", "{out:?}");
    }
    assert_eq!(s.devbox_patches().len(), 1, "{:?}", s.devbox_patches());
}

/// Two `ssh box 'echo hi'` at once, while the controller boots the box.
fn with_both(s: &Stopped) -> (Vec<Output>, Option<SshdBox>) {
    thread::scope(|scope| {
        let booted = scope.spawn(|| controller(s));
        let clients: Vec<_> = (0..2)
            .map(|_| scope.spawn(|| s.gw.ssh(&s.user, &["root@127.0.0.1", "echo hi"])))
            .collect();
        let outs = clients
            .into_iter()
            .map(|c| c.join().expect("client"))
            .collect();
        (outs, booted.join().expect("controller"))
    })
}
