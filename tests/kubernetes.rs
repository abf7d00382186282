//! The Kubernetes route source end to end: the gateway (in process, or the
//! binary where its log is read) watches an in-process fake API server (real
//! list/watch wire protocol), and the real `ssh` reaches a real `sshd` whose
//! "pod IP" is loopback.
#![cfg(feature = "kubernetes")]

mod common;
mod kube_fake;

use std::fs;
use std::io::Read;
use std::net::TcpStream;
use std::time::Duration;

use common::*;
use kube_fake::FakeApi;
use kube_fake::fixtures::*;
use serde::Deserialize as _;
use serde_json::json;

/// Deadline for the gateway to notice a change (debounce, backoff after a
/// 410 or an outage, all on a loaded 2-core machine).
const NOTICE: Duration = Duration::from_secs(20);

fn works(out: &Output, box_name: &str) -> bool {
    out.success() && out.stdout == format!("{box_name}\n")
}

const STOPPED: &str = "switchboard: box1.ns-abc is stopped; start it, then reconnect";

/// A Devbox `box1` in namespace `ns-abc` with a Ready pod, its sshd `b`.
struct Devbox {
    api: FakeApi,
    b: SshdBox,
    user: Key,
    registered: Key,
    _dir: tempfile::TempDir,
    gw: Gateway,
    admin: u16,
}

/// A Devbox `box1` in namespace `ns-abc` with a Ready pod, behind a gateway
/// started by `start` (in process, or the binary).
fn devbox_with(start: fn(&GatewayConfig, &str) -> Gateway) -> Devbox {
    let api = FakeApi::start();
    let b = SshdBox::start("devbox1");
    let dir = temp_dir();
    let user = Key::generate(dir.path(), "user");
    let registered = Key::generate(dir.path(), "registered");
    let identity = fs::read_to_string(&b.identity.path).expect("identity");
    api.put(
        "secrets",
        devbox_secret(
            "ns-abc",
            "box1",
            &user.public,
            &identity,
            &registered.public,
        ),
    );
    api.put("pods", devbox_pod("ns-abc", "box1-0", "box1", true));
    let kube = format!(
        "mode = \"sealos-devbox\"\ndevbox_port = {}\ndevbox_user = \"root\"\n",
        b.port
    );
    let (gw, admin) = gateway(&api, dir.path(), "sealos", &kube, start);
    Devbox {
        api,
        b,
        user,
        registered,
        _dir: dir,
        gw,
        admin,
    }
}

/// [`devbox_with`] an in-process gateway.
fn devbox() -> Devbox {
    devbox_with(Gateway::start_with)
}

impl Devbox {
    fn ssh_sealos(&self, key: &Key) -> Output {
        self.gw.ssh(key, &["root@abc-box1@127.0.0.1", "echo $BOX"])
    }
}

#[test]
fn sealos_devbox_follows_its_pod_live() {
    // The binary: its log is checked for the Secret's key.
    let d = devbox_with(Gateway::spawn_with);
    // Key mode with the Devbox key, box named the Sealos way.
    let out = d.ssh_sealos(&d.user);
    assert!(works(&out, "devbox1"), "{out:?}");
    // A key from SEALOS_DEVBOX_AUTHORIZED_KEYS, no target: its box, as the
    // typed user (sshgate's rule; devbox_user only when none is typed).
    let out =
        d.gw.ssh(&d.registered, &["root@127.0.0.1", "echo $BOX; id -un"]);
    assert_eq!(out.stdout, "devbox1\nroot\n", "{out:?}");

    // The pod stops being Ready: the box is stopped, and the user is told.
    d.api
        .put("pods", devbox_pod("ns-abc", "box1-0", "box1", false));
    let told = eventually(NOTICE, || {
        let out = d.ssh_sealos(&d.user);
        out.code == Some(1) && out.stderr.contains(STOPPED)
    });
    assert!(told, "never stopped: {:?}", d.ssh_sealos(&d.user));

    // The pod is deleted and a new one comes up: back, no gateway restart.
    d.api.delete("pods", "ns-abc", "box1-0");
    d.api
        .put("pods", devbox_pod("ns-abc", "box1-1", "box1", true));
    assert!(eventually(NOTICE, || works(
        &d.ssh_sealos(&d.user),
        "devbox1"
    )));

    // A terminating pod (deletionTimestamp set, still Ready) takes no new logins.
    let mut going = devbox_pod("ns-abc", "box1-1", "box1", true);
    going["metadata"]["deletionTimestamp"] = json!("2025-01-01T00:00:00Z");
    d.api.put("pods", going);
    assert!(eventually(NOTICE, || d
        .ssh_sealos(&d.user)
        .stderr
        .contains(STOPPED)));

    // Nothing from the Secret was logged.
    let log = d.gw.log();
    for line in d.b.identity.private_lines() {
        if line.len() > 20 && !line.starts_with("-----") {
            assert!(!log.contains(&line), "private key material in the log");
        }
    }
    assert!(!log.contains("not-for-the-gateway"));
}

#[test]
fn a_missed_delete_is_gone_after_the_410_relist() {
    let d = devbox();
    assert!(works(&d.ssh_sealos(&d.user), "devbox1"));
    // The Secret goes while the gateway is not told (a missed DELETED event).
    d.api.delete_silently("secrets", "ns-abc", "box1");
    // History is compacted and the watch cut: the resume gets 410 Gone, the
    // client relists, and the route must not survive the relist.
    d.api.compact_and_cut();
    let gone = eventually(NOTICE, || {
        let out = d.ssh_sealos(&d.user);
        out.code == Some(255) && out.stderr.contains("Permission denied")
    });
    assert!(gone, "stale route: {:?}", d.ssh_sealos(&d.user));
    let lists = d
        .api
        .requests()
        .iter()
        .filter(|r| r.starts_with("GET /api/v1/secrets?") && !r.contains("watch="))
        .count();
    assert!(lists >= 2, "no relist: {:?}", d.api.requests());
    assert!(
        d.api
            .requests()
            .iter()
            .any(|r| r.contains("allowWatchBookmarks=true")),
        "watches without bookmarks"
    );
}

#[test]
fn an_api_outage_keeps_the_last_routes_and_recovers() {
    let d = devbox();
    assert!(works(&d.ssh_sealos(&d.user), "devbox1"));
    assert_eq!(admin_get(d.admin, "/readyz"), (200, "ready\n".into()));

    d.api.set_down(true);
    // Watches fail and retry; the routes keep serving, /readyz says they are stale.
    let stale = eventually(NOTICE, || {
        let (code, body) = admin_get(d.admin, "/readyz");
        code == 200 && body.contains("stale: kubernetes")
    });
    assert!(stale, "{:?}", admin_get(d.admin, "/readyz"));
    assert!(works(&d.ssh_sealos(&d.user), "devbox1"));

    // The API comes back: changes flow again and the staleness clears.
    d.api.set_down(false);
    d.api
        .put("pods", devbox_pod("ns-abc", "box1-0", "box1", false));
    assert!(eventually(Duration::from_secs(40), || d
        .ssh_sealos(&d.user)
        .stderr
        .contains(STOPPED)));
    assert!(eventually(NOTICE, || admin_get(d.admin, "/readyz")
        == (200, "ready\n".into())));
}

#[test]
fn no_client_is_served_before_the_first_full_sync() {
    let api = FakeApi::start();
    api.set_down(true);
    let b = SshdBox::start("devbox1");
    let dir = temp_dir();
    let user = Key::generate(dir.path(), "user");
    let identity = fs::read_to_string(&b.identity.path).expect("identity");
    api.put(
        "secrets",
        devbox_secret("ns-abc", "box1", &user.public, &identity, &user.public),
    );
    api.put("pods", devbox_pod("ns-abc", "box1-0", "box1", true));
    let (port, admin) = (free_port(), free_port());
    let kube = format!(
        "mode = \"sealos-devbox\"\ndevbox_port = {}\ndevbox_user = \"root\"\n",
        b.port
    );
    let config = raw_config(&api, dir.path(), "sealos", &kube)
        .replace("@LISTEN@", &toml_str(&format!("127.0.0.1:{port}")))
        .replace("@ADMIN@", &toml_str(&format!("127.0.0.1:{admin}")))
        .replace(
            "@ROUTES@",
            &toml_str(&dir.path().join("routes.toml").display().to_string()),
        );
    fs::write(dir.path().join("routes.toml"), "").expect("routes");
    fs::write(dir.path().join("switchboard.toml"), config).expect("config");
    let mut gw = Bg::spawn(switchboard(dir.path()).args(["serve", "--config", "switchboard.toml"]));

    assert!(
        eventually(NOTICE, || admin_get(admin, "/readyz").0 == 503),
        "{:?}",
        admin_get(admin, "/readyz")
    );
    assert!(gw.is_running());
    assert!(
        banner(port).is_none(),
        "served a client before the first sync"
    );

    api.set_down(false);
    assert!(eventually(Duration::from_secs(40), || admin_get(
        admin, "/readyz"
    )
    .0 == 200));
    let out = ssh(port, &user, &["root@abc-box1@127.0.0.1", "echo $BOX"]);
    assert!(works(&out, "devbox1"), "{out:?}\n{}", gw.stderr());
}

/// The server's SSH banner, if it sends one within a second.
fn banner(port: u16) -> Option<String> {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).ok()?;
    tcp.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    let mut buf = [0u8; 64];
    let n = tcp.read(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
    text.starts_with("SSH-").then_some(text)
}

#[test]
fn crd_routes_follow_pods_and_write_their_status() {
    let api = FakeApi::start();
    let b = SshdBox::start("web");
    let dir = temp_dir();
    let user = Key::generate(dir.path(), "user");
    let identity = fs::read_to_string(&b.identity.path).expect("identity");
    let secret = |name: &str| {
        json!({"metadata": {"name": name, "namespace": "team", "labels": route_secret()},
               "data": {"ssh-privatekey": b64(&identity)}})
    };
    let route = |name: &str, app: &str, id: &str| {
        json!({"metadata": {"name": name, "namespace": "team"},
               "spec": {"backend": {"podSelector": {"matchLabels": {"app": app}}, "port": b.port},
                        "user": "root", "authorizedKeys": [user.public],
                        "identitySecretRef": {"name": id, "key": "ssh-privatekey"}}})
    };
    api.put("secrets", secret("web-id"));
    api.put(
        "secrets",
        json!({"metadata": {"name": "unrelated", "namespace": "team"}, "data": {"x": b64("y")}}),
    );
    api.put("sshroutes", route("web", "web", "web-id"));
    let gw = crd_gateway_with_web_pod(&api, dir.path());

    let out = gw.ssh(&user, &["root@web.team@127.0.0.1", "echo $BOX"]);
    assert!(works(&out, "web"), "{out:?}");
    let status_of = |reason: &str| {
        api.patches()
            .into_iter()
            .filter(|(path, ..)| {
                path == "/apis/switchboard.dev/v1alpha1/namespaces/team/sshroutes/web/status"
            })
            .filter(|(_, _, body)| body["status"]["conditions"][0]["reason"] == reason)
            .collect::<Vec<_>>()
    };
    assert!(eventually(NOTICE, || !status_of("Resolved").is_empty()));
    let (_, content_type, body) = &status_of("Resolved")[0];
    assert_eq!(content_type, "application/merge-patch+json");
    let condition = &body["status"]["conditions"][0];
    assert_eq!(
        (condition["type"].as_str(), condition["status"].as_str()),
        (Some("Ready"), Some("True"))
    );
    assert_eq!(body["status"]["observedGeneration"], 1);

    // The pod goes: stopped, and the status says why.
    api.delete("pods", "team", "web-0");
    let stopped = "switchboard: web.team is stopped; start it, then reconnect";
    assert!(eventually(NOTICE, || gw
        .ssh(&user, &["root@web.team@127.0.0.1", "true"])
        .stderr
        .contains(stopped)));
    assert!(eventually(NOTICE, || !status_of("NoReadyPod").is_empty()));
    assert_eq!(
        status_of("NoReadyPod")[0].2["status"]["conditions"][0]["status"],
        "False"
    );
    // Written once per change, not on every rebuild.
    assert_eq!(status_of("Resolved").len(), 1);
    // A new pod: back, with no restart, and Ready again.
    api.put(
        "pods",
        pod("team", "web-1", json!({"app": "web"}), None, true),
    );
    assert!(eventually(NOTICE, || works(
        &gw.ssh(&user, &["root@web.team@127.0.0.1", "echo $BOX"]),
        "web"
    )));
    assert!(eventually(NOTICE, || status_of("Resolved").len() == 2));

    // A second route referring to a Secret created before it: the Secrets
    // are relisted to keep the newly referenced one, and the route logs in.
    api.put("secrets", secret("api-id"));
    api.put(
        "pods",
        pod("team", "api-0", json!({"app": "api"}), None, true),
    );
    api.put("sshroutes", route("api", "api", "api-id"));
    assert!(eventually(NOTICE, || works(
        &gw.ssh(&user, &["root@api.team@127.0.0.1", "echo $BOX"]),
        "web"
    )));
}

#[test]
fn crd_command_prints_the_checked_in_crd() {
    let dir = temp_dir();
    let out = run_switchboard(dir.path(), &["crd"]);
    let checked_in = include_str!("../deploy/crd.yaml");
    assert!(out.success(), "{out:?}");
    assert!(
        out.stdout == checked_in,
        "deploy/crd.yaml drifted: run `switchboard crd > deploy/crd.yaml`"
    );
}

#[test]
fn check_lists_the_cluster_or_fails_clearly() {
    let api = FakeApi::start();
    api.put(
        "sshroutes",
        json!({"metadata": {"name": "a", "namespace": "n"},
                                "spec": {"backend": {"service": "missing"}}}),
    );
    let dir = temp_dir();
    fs::write(dir.path().join("routes.toml"), "").expect("routes");
    let config = raw_config(&api, dir.path(), "default", "mode = \"crd\"\n")
        .replace("@LISTEN@", "\"127.0.0.1:2233\"")
        .replace("@ADMIN@", &toml_str(&format!("127.0.0.1:{}", free_port())))
        .replace("@ROUTES@", "\"routes.toml\"");
    fs::write(dir.path().join("switchboard.toml"), &config).expect("config");
    let out = run_switchboard(dir.path(), &["check", "--config", "switchboard.toml"]);
    assert!(out.success(), "{out:?}");
    assert!(
        out.stdout.contains(&format!(
            "routes:   1 from Kubernetes at http://127.0.0.1:{}/",
            api.port
        )),
        "{out:?}"
    );
    assert!(
        out.stdout.contains("SSHRoute n/a: ServiceMissing"),
        "{out:?}"
    );

    api.set_down(true);
    let out = run_switchboard(dir.path(), &["check", "--config", "switchboard.toml"]);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(
        out.stderr
            .contains("sources.kubernetes: cannot reach the Kubernetes API at"),
        "{out:?}"
    );
}

#[test]
fn deploy_manifests_hold_a_valid_config_and_route() {
    let config_map: serde_yaml::Value =
        serde_yaml::from_str(include_str!("../deploy/20-config.yaml")).expect("ConfigMap YAML");
    let toml = config_map["data"]["switchboard.toml"]
        .as_str()
        .expect("switchboard.toml");
    let dir = temp_dir();
    let path = dir.path().join("switchboard.toml");
    fs::write(&path, toml).expect("write");
    let config = switchboard::config::Config::load_with_env(Some(&path), Vec::new())
        .unwrap_or_else(|e| panic!("deploy/20-config.yaml: {e}"));
    assert!(config.sources.kubernetes.enabled);
    assert_eq!(config.admin.listen.to_string(), "0.0.0.0:9102");
    assert!(
        config.warnings.iter().all(|w| !w.contains("kubernetes")),
        "{:?}",
        config.warnings
    );

    let examples = include_str!("../deploy/examples/sshroute.yaml");
    let route = serde_yaml::Deserializer::from_str(examples)
        .map(|d| serde_yaml::Value::deserialize(d).expect("YAML"))
        .find(|d| d["kind"] == "SSHRoute")
        .expect("an SSHRoute");
    let route: switchboard::routes::kube::crd::SSHRoute =
        serde_yaml::from_value(route).expect("the example matches the CRD types");
    assert!(route.spec.backend.pod_selector.is_some());
}
