//! The Helm chart rendered with the real Helm library (helm-python-sdk, Helm
//! v4 through its C bindings) for every value set in
//! `deploy/helm/switchboard/ci/`, and every manifest, chart and raw
//! `deploy/`, validated with `kubernetes-validate --strict` against several
//! Kubernetes versions. The tools are installed by `.ci/run` into a venv
//! (`CHART_TOOLS`, default `/opt/switchboard-chart`); a missing tool fails
//! these tests, it never skips them.
#![cfg(feature = "kubernetes")]

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde::Deserialize as _;
use serde_yaml::Value;

const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/helm/switchboard");
/// Kubernetes versions every manifest must validate against.
const KUBE_VERSIONS: &[&str] = &["1.29.0", "1.32.0", "1.35.0"];
const NAMESPACE: &str = "gateway";

/// The venv holding helm-python-sdk and kubernetes-validate.
fn tools() -> PathBuf {
    let dir = PathBuf::from(
        std::env::var_os("CHART_TOOLS").unwrap_or_else(|| "/opt/switchboard-chart".into()),
    );
    for tool in ["python", "kubernetes-validate"] {
        assert!(
            dir.join("bin").join(tool).exists(),
            "{} is missing: .ci/run installs helm-python-sdk and kubernetes-validate there \
             (or set CHART_TOOLS to such a venv)",
            dir.join("bin").join(tool).display()
        );
    }
    dir
}

/// `tests/support/chart.py`: Helm renders the chart with `values`.
fn helm_render(values: &Path) -> Output {
    run(
        Command::new(tools().join("bin/python")).args([
            concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/chart.py").as_ref(),
            CHART.as_ref(),
            values.as_os_str(),
            "sb".as_ref(),
            NAMESPACE.as_ref(),
        ]),
        Input::Null,
        SSH_TIMEOUT,
    )
}

/// Every document of the chart rendered with `values` (a file of ci/).
fn render(values: &Path) -> BTreeMap<String, String> {
    let out = helm_render(values);
    assert!(out.success(), "{}: {out:?}", values.display());
    serde_json::from_str(&out.stdout).expect("render output")
}

/// The YAML documents of `text`, empty ones left out.
fn documents(text: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|d| Value::deserialize(d).expect("YAML"))
        .filter(|d| !d.is_null())
        .collect()
}

/// Runs kubernetes-validate --strict on `files` for every version; the
/// Prometheus Operator kinds (no schema there) are checked by the callers.
fn validate(files: &[PathBuf]) {
    for version in KUBE_VERSIONS {
        let out = run(
            Command::new(tools().join("bin/kubernetes-validate"))
                .args(["--strict", "--quiet", "-k", version])
                .args(files),
            Input::Null,
            SSH_TIMEOUT,
        );
        let all = out.all();
        let unexpected: Vec<&str> = all
            .lines()
            .filter(|l| {
                !l.contains("Couldn't find schema for kind") || !l.contains("monitoring.coreos.com")
            })
            .filter(|l| !l.trim().is_empty())
            .collect();
        assert!(
            out.success() && unexpected.is_empty(),
            "kubernetes {version}: {out:?}"
        );
    }
}

fn value_sets() -> Vec<PathBuf> {
    let mut sets: Vec<PathBuf> = fs::read_dir(Path::new(CHART).join("ci"))
        .expect("ci/")
        .map(|e| e.expect("entry").path())
        .collect();
    sets.sort();
    sets
}

/// The rendered objects of one value set, by kind.
struct Rendered {
    objects: Vec<Value>,
}

impl Rendered {
    fn of_kind(&self, kind: &str) -> Vec<&Value> {
        self.objects.iter().filter(|o| o["kind"] == kind).collect()
    }

    fn one(&self, kind: &str) -> &Value {
        let all = self.of_kind(kind);
        assert_eq!(all.len(), 1, "one {kind}");
        all[0]
    }
}

fn render_and_validate(set: &Path, dir: &Path) -> Rendered {
    let rendered = render(set);
    let mut files = Vec::new();
    let mut objects = Vec::new();
    for (template, text) in &rendered {
        if !template.ends_with(".yaml") {
            continue;
        }
        let docs = documents(text);
        if docs.is_empty() {
            continue;
        }
        let file = dir.join(template.replace('/', "_"));
        fs::write(&file, text).expect("manifest");
        files.push(file);
        objects.extend(docs);
    }
    validate(&files);
    Rendered { objects }
}

#[test]
fn chart_renders_and_validates_for_every_value_set() {
    let dir = temp_dir();
    let sets = value_sets();
    let names: Vec<String> = sets
        .iter()
        .map(|s| {
            s.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    for expected in [
        "default",
        "per-namespace",
        "sealos-devbox",
        "cert-login",
        "host-identity",
        "user-ca",
    ] {
        assert!(
            names.contains(&format!("{expected}-values.yaml")),
            "{names:?}"
        );
    }
    for set in &sets {
        let name = set
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let r = render_and_validate(set, dir.path());
        check_pod(&r, &name);
        check_rbac(&r, &name);
        check_secret_access(&r, &name);
        check_disruption_budget(&r, &name);
        check_config(&r, &name);
        for rule in r.of_kind("PrometheusRule") {
            let groups = rule["spec"]["groups"].as_sequence().expect("groups");
            assert!(
                groups
                    .iter()
                    .all(|g| g["rules"].as_sequence().is_some_and(|r| !r.is_empty()))
            );
        }
    }
}

/// Pod Security "restricted", the seed readable by the pod's group, no
/// service links, and a grace period above the unready window plus drain.
fn check_pod(r: &Rendered, set: &str) {
    let pod = &r.one("Deployment")["spec"]["template"]["spec"];
    let ctx = &pod["securityContext"];
    assert_eq!(ctx["runAsNonRoot"], Value::Bool(true), "{set}");
    assert_eq!(ctx["runAsUser"].as_u64(), Some(65532), "{set}");
    assert_eq!(ctx["runAsGroup"].as_u64(), Some(65532), "{set}");
    assert_eq!(ctx["fsGroup"].as_u64(), Some(65532), "{set}");
    assert_eq!(ctx["seccompProfile"]["type"], "RuntimeDefault", "{set}");
    assert_eq!(pod["enableServiceLinks"], Value::Bool(false), "{set}");
    let c = &pod["containers"][0];
    assert_eq!(
        c["securityContext"]["allowPrivilegeEscalation"],
        Value::Bool(false)
    );
    assert_eq!(c["securityContext"]["capabilities"]["drop"][0], "ALL");
    let seed = pod["volumes"]
        .as_sequence()
        .and_then(|v| v.iter().find(|v| v["name"] == "seed"))
        .expect("seed volume");
    assert_eq!(seed["secret"]["defaultMode"].as_u64(), Some(0o440), "{set}");
    let grace = pod["terminationGracePeriodSeconds"]
        .as_u64()
        .expect("grace");
    assert!(grace > 40, "{set}: {grace}");
}

fn check_rbac(r: &Rendered, set: &str) {
    let cluster_roles = r.of_kind("ClusterRole").len();
    let roles: Vec<&str> = r
        .of_kind("Role")
        .iter()
        .filter_map(|o| o["metadata"]["namespace"].as_str())
        .collect();
    match set {
        "sealos-devbox-values.yaml" => assert_eq!((cluster_roles, roles.len()), (1, 0)),
        "per-namespace-values.yaml" => {
            assert_eq!(cluster_roles, 0);
            assert_eq!(roles, ["team-a", "team-b"]);
        }
        _ => {
            assert_eq!(cluster_roles, 0, "{set}: per-namespace Roles by default");
            assert_eq!(roles, [NAMESPACE], "{set}");
        }
    }
}

/// Secrets are listed and watched unless `kubernetes.readSecrets: false`,
/// which leaves no Secret rule at all; a `userCA` Secret is mounted 0440
/// where `upstream.user_ca_key_file` points.
fn check_secret_access(r: &Rendered, set: &str) {
    let secret_rules = r
        .of_kind("Role")
        .into_iter()
        .chain(r.of_kind("ClusterRole"))
        .flat_map(|role| role["rules"].as_sequence().cloned().unwrap_or_default())
        .filter(|rule| {
            rule["resources"]
                .as_sequence()
                .is_some_and(|res| res.iter().any(|x| x == "secrets"))
        })
        .count();
    let pod = &r.one("Deployment")["spec"]["template"]["spec"];
    let user_ca = pod["volumes"]
        .as_sequence()
        .and_then(|v| v.iter().find(|v| v["name"] == "user-ca"));
    if set == "user-ca-values.yaml" {
        assert_eq!(secret_rules, 0, "{set}: no Secret permission");
        let user_ca = user_ca.expect("user-ca volume");
        assert_eq!(user_ca["secret"]["secretName"], "switchboard-user-ca");
        assert_eq!(user_ca["secret"]["defaultMode"].as_u64(), Some(0o440));
        let mounts = pod["containers"][0]["volumeMounts"]
            .as_sequence()
            .expect("mounts");
        assert!(
            mounts
                .iter()
                .any(|m| m["name"] == "user-ca" && m["mountPath"] == "/etc/switchboard/user-ca"),
            "{mounts:?}"
        );
    } else {
        assert!(secret_rules > 0, "{set}");
        assert!(user_ca.is_none(), "{set}");
    }
}

fn check_disruption_budget(r: &Rendered, set: &str) {
    let replicas = r.one("Deployment")["spec"]["replicas"]
        .as_u64()
        .expect("replicas");
    let pdbs = r.of_kind("PodDisruptionBudget").len();
    assert_eq!(
        pdbs,
        usize::from(replicas >= 2),
        "{set}: {replicas} replicas"
    );
}

/// The rendered switchboard.toml loads, as the chart set it.
fn check_config(r: &Rendered, set: &str) {
    let cm = r.one("ConfigMap");
    let toml = cm["data"]["switchboard.toml"]
        .as_str()
        .expect("switchboard.toml");
    let dir = temp_dir();
    let path = dir.path().join("switchboard.toml");
    fs::write(&path, toml).expect("write");
    let config = switchboard::config::Config::load_with_env(Some(&path), Vec::new())
        .unwrap_or_else(|e| panic!("{set}: {e}\n{toml}"));
    let k = &config.sources.kubernetes;
    assert!(k.enabled);
    assert_eq!(config.server.accept_after_unready.as_secs(), 10);
    assert_eq!(k.secret_selector, "switchboard.dev/route-secret=true");
    if set == "host-identity-values.yaml" {
        let dir = Path::new("/etc/switchboard/host-identity");
        assert_eq!(
            config.server.extra_host_keys,
            [dir.join("ssh_host_rsa_key")],
            "{toml}"
        );
        assert_eq!(
            config.server.host_certificates,
            [
                dir.join("ssh_host_ed25519_key-cert.pub"),
                dir.join("ssh_host_ecdsa_key-cert.pub")
            ],
            "{toml}"
        );
        let pod = &r.one("Deployment")["spec"]["template"]["spec"];
        let volume = pod["volumes"]
            .as_sequence()
            .and_then(|v| v.iter().find(|v| v["name"] == "host-identity"))
            .expect("host-identity volume");
        assert_eq!(volume["secret"]["secretName"], "switchboard-host-identity");
        assert_eq!(volume["secret"]["defaultMode"].as_u64(), Some(0o440));
        assert_eq!(
            volume["secret"]["items"].as_sequence().map(Vec::len),
            Some(3)
        );
        let mount = pod["containers"][0]["volumeMounts"]
            .as_sequence()
            .and_then(|v| v.iter().find(|m| m["name"] == "host-identity"))
            .expect("host-identity mount");
        assert_eq!(mount["mountPath"], "/etc/switchboard/host-identity");
    } else {
        assert!(config.server.extra_host_keys.is_empty(), "{set}");
    }
    assert_eq!(k.read_secrets, set != "user-ca-values.yaml", "{set}");
    if set == "user-ca-values.yaml" {
        let u = &config.upstream;
        assert_eq!(
            u.user_ca_key_file.as_deref(),
            Some(Path::new("/etc/switchboard/user-ca/user_ca"))
        );
        assert_eq!(u.certificate_validity.as_secs(), 300);
        assert_eq!(u.trusted_host_cas.len(), 1);
    }
    if set == "cert-login-values.yaml" {
        assert_eq!(config.server.trusted_user_ca_keys.len(), 1, "{toml}");
    }
    if set == "per-namespace-values.yaml" {
        assert_eq!(k.namespaces, ["team-a", "team-b"]);
        assert!(config.proxy_protocol.enabled);
        assert_eq!(config.server.max_connections, 1500);
    }
}

#[test]
fn offline_renders_with_an_existing_or_given_seed_are_stable() {
    for set in value_sets() {
        let text = fs::read_to_string(&set).expect("values");
        if !text.contains("existingSecret:") && !text.contains("value:") {
            continue;
        }
        assert_eq!(render(&set), render(&set), "{}", set.display());
    }
}

#[test]
fn sealos_devbox_without_reading_secrets_is_refused() {
    let dir = temp_dir();
    let values = dir.path().join("values.yaml");
    fs::write(
        &values,
        "kubernetes:\n  mode: sealos-devbox\n  readSecrets: false\n",
    )
    .expect("values");
    let out = helm_render(&values);
    assert!(!out.success(), "{out:?}");
    assert!(
        out.stderr
            .contains("kubernetes.readSecrets: false does not work with mode sealos-devbox"),
        "{out:?}"
    );
}

#[test]
fn a_memory_limit_too_small_for_max_connections_is_refused() {
    let dir = temp_dir();
    let values = dir.path().join("values.yaml");
    fs::write(
        &values,
        "config:\n  server:\n    max_connections: 10000\nresources:\n  limits:\n    memory: 512Mi\n",
    )
    .expect("values");
    let out = helm_render(&values);
    assert!(!out.success(), "{out:?}");
    assert!(
        out.stderr
            .contains("max_connections (10000) does not fit resources.limits.memory (512Mi)"),
        "{out:?}"
    );
}

#[test]
fn raw_manifests_validate() {
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy");
    let mut files: Vec<PathBuf> = fs::read_dir(&deploy)
        .expect("deploy/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.push(deploy.join("examples/seed-secret.yaml"));
    files.push(deploy.join("examples/rbac-wake.yaml"));
    files.sort();
    validate(&files);
}

/// The `switchboard_…` and `process_…` metric names in `text`.
fn metric_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    let next = |t: &str| {
        [t.find("switchboard_"), t.find("process_")]
            .into_iter()
            .flatten()
            .min()
    };
    while let Some(i) = next(rest) {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.push(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

#[test]
fn alert_rules_and_dashboard_name_only_series_present_at_start_up() {
    let mut gw = Gateway::spawn("");
    let metrics = fetch_metrics(gw.admin_port);
    let present: Vec<&str> = metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    for family in [
        "switchboard_build_info",
        "switchboard_ready",
        "switchboard_route_source_stale_seconds",
        "switchboard_limit_hits_total",
        "switchboard_connections_rejected_total",
    ] {
        assert!(
            present.contains(&family),
            "{family} missing at start-up:\n{metrics}"
        );
    }
    assert!(metrics.contains("switchboard_limit_hits_total{limit=\"max_connections\"} 0"));
    let set = Path::new(CHART).join("ci/sealos-devbox-values.yaml");
    let r = Rendered {
        objects: render(&set)
            .iter()
            .filter(|(template, _)| template.ends_with(".yaml"))
            .flat_map(|(_, text)| documents(text))
            .collect(),
    };
    let rule = r.one("PrometheusRule");
    let exprs = serde_yaml::to_string(&rule["spec"]).expect("spec");
    for name in metric_names(&exprs) {
        assert!(
            present.iter().any(|p| *p == name),
            "the alert rules name {name}, which /metrics does not have:\n{metrics}"
        );
    }
    let dashboard: serde_json::Value =
        serde_json::from_str(include_str!("../deploy/grafana/switchboard-dashboard.json"))
            .expect("dashboard JSON");
    let mut queries = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            queries.push(target["expr"].as_str().expect("expr").to_owned());
        }
    }
    for variable in dashboard["templating"]["list"]
        .as_array()
        .expect("variables")
    {
        queries.extend(variable["query"].as_str().map(str::to_owned));
    }
    assert!(queries.len() > 20, "{queries:?}");
    for query in &queries {
        let names = metric_names(query);
        assert!(!names.is_empty() || !query.contains('('), "{query}");
        for name in names {
            assert!(
                present.iter().any(|p| *p == name),
                "the dashboard's {query:?} names {name}, which /metrics does not have:\n{metrics}"
            );
        }
    }
    for family in [
        "switchboard_session_duration_seconds_bucket",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
    ] {
        assert!(present.contains(&family), "{family} missing:\n{metrics}");
    }
    assert!(gw.is_alive());
}

fn fetch_metrics(port: u16) -> String {
    let (status, body) = http_get(port, "/metrics");
    assert_eq!(status, 200, "{body}");
    body
}
