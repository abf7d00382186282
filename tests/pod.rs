//! The binary as the shipped Deployment runs it: as the pod's uid/gid with
//! the pod's `fsGroup`, reading the seed from a Secret volume laid out the way
//! kubelet lays it out (`..<timestamp>/` data dir, `..data` symlink, one
//! symlink per key, owner root, group `fsGroup`, `defaultMode`), with the
//! shipped ConfigMap and the Kubernetes source watching a fake API server.
//! Also: the service-link variables Kubernetes injects for Services named
//! `switchboard…` are ignored.
#![cfg(feature = "kubernetes")]

mod common;
mod kube_fake;

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use kube_fake::FakeApi;
use kube_fake::fixtures::admin_get;
use serde_yaml::Value;

const DEPLOYMENT: &str = include_str!("../deploy/30-deployment.yaml");
const CONFIG_MAP: &str = include_str!("../deploy/20-config.yaml");

/// What of the pod spec decides whether the process can read its seed.
#[derive(Clone, Debug)]
struct PodSecurity {
    run_as_user: u32,
    run_as_group: u32,
    fs_group: Option<u32>,
    /// The seed volume's `defaultMode`.
    seed_mode: u32,
}

fn uint(v: &Value) -> Option<u32> {
    v.as_u64().and_then(|n| u32::try_from(n).ok())
}

/// The shipped Deployment's pod security and seed volume mode.
fn shipped() -> (PodSecurity, Value) {
    let d: Value = serde_yaml::from_str(DEPLOYMENT).expect("deployment YAML");
    let pod = d["spec"]["template"]["spec"].clone();
    let ctx = &pod["securityContext"];
    let seed = pod["volumes"]
        .as_sequence()
        .and_then(|vs| vs.iter().find(|v| v["name"] == "seed"))
        .expect("a seed volume");
    let security = PodSecurity {
        run_as_user: uint(&ctx["runAsUser"]).expect("runAsUser"),
        run_as_group: uint(&ctx["runAsGroup"]).expect("runAsGroup"),
        fs_group: uint(&ctx["fsGroup"]),
        // Kubernetes' default for a Secret volume is 0644; a mode must be a
        // number every YAML parser reads alike (not `0440`).
        seed_mode: match &seed["secret"]["defaultMode"] {
            Value::Null => 0o644,
            mode => uint(mode).unwrap_or_else(|| panic!("defaultMode {mode:?}")),
        },
    };
    (security, pod)
}

fn chown(path: &Path, gid: u32) {
    std::os::unix::fs::lchown(path, Some(0), Some(gid)).expect("chown");
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A Secret volume at `dir` holding `key` = `value`, as kubelet writes it:
/// the atomic writer's timestamped dir and `..data` link, files at
/// `defaultMode` owned by root; with an `fsGroup`, everything is then given
/// that group, files gain group read (0440, the volume is read-only) and
/// dirs the setgid bit.
fn secret_volume(dir: &Path, key: &str, value: &str, security: &PodSecurity) -> PathBuf {
    let data = dir.join("..2026_01_01_00_00_00.000000001");
    fs::create_dir_all(&data).expect("volume");
    fs::write(data.join(key), value).expect("key");
    symlink("..2026_01_01_00_00_00.000000001", dir.join("..data")).expect("..data");
    symlink(format!("..data/{key}"), dir.join(key)).expect("key link");
    let (gid, file_mode, dir_mode) = match security.fs_group {
        Some(g) => (g, security.seed_mode | 0o440, 0o2755),
        None => (0, security.seed_mode, 0o755),
    };
    for d in [dir, data.as_path()] {
        chown(d, gid);
        chmod(d, dir_mode);
    }
    chown(&data.join(key), gid);
    chmod(&data.join(key), file_mode);
    dir.join(key)
}

/// The running pod's process, its ports and the fake API it watches.
struct Pod {
    process: Bg,
    port: u16,
    admin: u16,
    _api: FakeApi,
    _dir: tempfile::TempDir,
}

/// Starts the binary as `security` says with the shipped ConfigMap, the
/// shipped container args and `extra_env` (service links).
fn start_pod(security: &PodSecurity, container: &Value, extra_env: &[(String, String)]) -> Pod {
    let api = FakeApi::start();
    let dir = temp_dir();
    chmod(dir.path(), 0o755);
    let config_dir = dir.path().join("config");
    fs::create_dir(&config_dir).expect("config dir");
    let cm: Value = serde_yaml::from_str(CONFIG_MAP).expect("ConfigMap YAML");
    for file in ["switchboard.toml", "routes.toml"] {
        let text = cm["data"][file].as_str().expect("ConfigMap file");
        fs::write(config_dir.join(file), text).expect("config file");
        chmod(&config_dir.join(file), 0o644);
    }
    let seed_dir = dir.path().join("seed");
    fs::create_dir(&seed_dir).expect("seed dir");
    let seed = secret_volume(&seed_dir, "seed", SEED, security);
    let kubeconfig = api.kubeconfig(dir.path());
    chmod(&kubeconfig, 0o644);
    let (port, admin) = (free_port(), free_port());
    // The container's args, with the mount paths of this test.
    let args: Vec<String> = container["args"]
        .as_sequence()
        .expect("args")
        .iter()
        .map(|a| {
            a.as_str()
                .expect("arg")
                .replace("/etc/switchboard/config", &config_dir.display().to_string())
        })
        .collect();
    let groups = security
        .fs_group
        .map_or("--clear-groups".to_owned(), |g| format!("--groups={g}"));
    let mut cmd = Command::new("setpriv");
    cmd.arg(format!("--reuid={}", security.run_as_user))
        .arg(format!("--regid={}", security.run_as_group))
        .arg(groups)
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_switchboard"))
        .args(&args)
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        // Where this test mounted things, and loopback instead of 0.0.0.0.
        .env("SWITCHBOARD_SERVER_LISTEN", format!("127.0.0.1:{port}"))
        .env("SWITCHBOARD_ADMIN_LISTEN", format!("127.0.0.1:{admin}"))
        .env("SWITCHBOARD_SERVER_HOST_KEY_SEED_FILE", &seed)
        .env(
            "SWITCHBOARD_SOURCES_FILE_PATH",
            config_dir.join("routes.toml"),
        )
        .env("SWITCHBOARD_SOURCES_KUBERNETES_KUBECONFIG", &kubeconfig)
        .envs(extra_env.iter().map(|(k, v)| (k, v)));
    Pod {
        process: Bg::spawn(&mut cmd),
        port,
        admin,
        _api: api,
        _dir: dir,
    }
}

/// The container of the shipped pod spec.
fn container(pod: &Value) -> Value {
    pod["containers"][0].clone()
}

impl Pod {
    /// True once `/readyz` answers 200 and the SSH port sends a banner.
    fn serves(&mut self) -> bool {
        eventually(Duration::from_secs(30), || {
            !self.process.is_running() || admin_get(self.admin, "/readyz").0 == 200
        }) && self.process.is_running()
            && std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
    }
}

#[test]
fn the_pod_reads_its_seed_as_shipped() {
    let (security, pod) = shipped();
    assert_eq!(
        (security.run_as_user, security.run_as_group),
        (65532, 65532),
        "the Dockerfile's USER is 65532:65532"
    );
    assert_eq!(
        pod["enableServiceLinks"].as_bool(),
        Some(false),
        "service links share the override prefix"
    );
    assert_eq!(
        security.seed_mode, 0o440,
        "the seed is for the process only"
    );
    let mut p = start_pod(&security, &container(&pod), &[]);
    assert!(p.serves(), "did not serve: {}", p.process.stderr());
    assert!(!p.process.stderr().contains("Permission denied"));
    assert!(
        !p.process.stderr().contains("UNPROTECTED"),
        "{}",
        p.process.stderr()
    );
}

#[test]
fn without_fs_group_the_seed_is_unreadable() {
    // The defect the shipped fsGroup fixes: no fsGroup, 0400, owner root.
    let (mut security, pod) = shipped();
    security.fs_group = None;
    security.seed_mode = 0o400;
    let p = start_pod(&security, &container(&pod), &[]);
    let out = p.process.wait(Duration::from_secs(20));
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("Permission denied"), "{out:?}");
}

/// The variables kubelet injects for a Service `name` with cluster IP `ip`
/// and `ports` (name, port).
fn service_links(name: &str, ip: &str, ports: &[(&str, u16)]) -> Vec<(String, String)> {
    let n = name.to_ascii_uppercase().replace('-', "_");
    let mut vars = vec![(format!("{n}_SERVICE_HOST"), ip.to_owned())];
    for (i, (port_name, port)) in ports.iter().enumerate() {
        let url = format!("tcp://{ip}:{port}");
        if i == 0 {
            vars.push((format!("{n}_SERVICE_PORT"), port.to_string()));
            vars.push((format!("{n}_PORT"), url.clone()));
        }
        let pn = port_name.to_ascii_uppercase().replace('-', "_");
        vars.push((format!("{n}_SERVICE_PORT_{pn}"), port.to_string()));
        let p = format!("{n}_PORT_{port}_TCP");
        vars.push((format!("{p}_PROTO"), "tcp".into()));
        vars.push((format!("{p}_PORT"), port.to_string()));
        vars.push((format!("{p}_ADDR"), ip.to_owned()));
        vars.push((p, url));
    }
    vars
}

#[test]
fn injected_service_links_are_ignored() {
    let (security, pod) = shipped();
    let mut links = service_links("switchboard", "10.96.0.10", &[("ssh", 2233)]);
    links.extend(service_links(
        "switchboard-admin",
        "10.96.0.11",
        &[("admin", 9102)],
    ));
    links.extend(service_links(
        "switchboard-server",
        "10.96.0.12",
        &[("http", 80), ("https", 443)],
    ));
    links.extend(service_links(
        "switchboard-log",
        "10.96.0.13",
        &[("syslog", 514)],
    ));
    assert!(links.iter().any(|(k, _)| k == "SWITCHBOARD_ADMIN_PORT"));
    let mut p = start_pod(&security, &container(&pod), &links);
    assert!(p.serves(), "did not serve: {}", p.process.stderr());
    let log = p.process.stderr();
    for (name, _) in &links {
        assert!(!log.contains(name.as_str()), "{name} was reported: {log}");
    }
}
