//! Unit tests for loading, overriding and validating the configuration.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

fn env(vars: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
    vars.iter()
        .map(|(k, v)| (OsString::from(k), OsString::from(v)))
        .collect()
}

fn write(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("switchboard.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

fn load(text: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigErrors> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(dir.path(), text);
    Config::load_with_env(Some(&path), env(vars))
}

fn errors(text: &str, vars: &[(&str, &str)]) -> Vec<String> {
    match load(text, vars) {
        Ok(_) => panic!("expected errors"),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

const SPEC_FILE: &str = r#"
[server]
listen = "0.0.0.0:2233"
host_key_seed_file = "/etc/switchboard/seed"
login_grace = "20s"
max_auth_tries = 6
max_connections = 10000
max_unauthenticated = 200
keepalive_interval = "30s"
idle_timeout = "0s"
shutdown_grace = "30s"
banner = ""

[routing]
target_separator = "@"
username_grammar = "default"
agent_login = true
jump = "authenticated"

[upstream]
connect_timeout = "5s"
handshake_timeout = "10s"
host_key_policy = "pinned-or-accept"

[sources.file]
path = "routes.toml"
watch = true

[sources.kubernetes]
enabled = false

[proxy_protocol]
enabled = false
trusted_cidrs = []

[admin]
listen = "127.0.0.1:9102"

[log]
format = "text"
level = "info"

[http_tunnel]
enabled = false
auth = "none"
host_suffix = ""
"#;

#[test]
fn spec_shaped_file_parses_without_warnings() {
    let config = load(SPEC_FILE, &[]).expect("SPEC file loads");
    assert_eq!(
        config.server.listen,
        vec![SocketAddr::from(([0, 0, 0, 0], 2233))]
    );
    assert_eq!(config.server.login_grace, Duration::from_secs(20));
    assert_eq!(config.routing.jump, JumpPolicy::Authenticated);
    assert!(
        config.warnings.is_empty(),
        "every SPEC section is implemented: {:?}",
        config.warnings
    );
}

#[test]
fn trusted_cidrs_are_validated_and_bare_addresses_accepted() {
    let config = load(
        "[proxy_protocol]\nenabled = true\ntrusted_cidrs = [\"10.0.0.0/8\", \"127.0.0.1\", \"::1\"]\n",
        &[],
    )
    .expect("loads");
    assert_eq!(config.proxy_protocol.trusted().len(), 3);
    let errors = load(
        "[proxy_protocol]\nenabled = true\ntrusted_cidrs = [\"10.0.0.0/33\", \"lb\"]\n",
        &[],
    )
    .expect_err("bad CIDRs refused");
    let text = errors.to_string();
    assert!(text.contains("proxy_protocol.trusted_cidrs[0]"), "{text}");
    assert!(text.contains("proxy_protocol.trusted_cidrs[1]"), "{text}");
    let errors = load("[proxy_protocol]\nenabled = true\n", &[]).expect_err("empty list refused");
    assert!(errors.to_string().contains("trusted_cidrs"), "{errors}");
}

#[test]
fn no_file_means_defaults_and_no_warnings() {
    let config = Config::load_with_env(None, env(&[])).expect("defaults");
    assert_eq!(config.routing.target_separator, "@");
    assert!(config.sources.file.watch);
    assert!(config.warnings.is_empty());
}

#[test]
fn listen_accepts_one_or_many() {
    let config = load("[server]\nlisten = [\"127.0.0.1:1\", \"[::1]:2\"]\n", &[]).expect("loads");
    assert_eq!(config.server.listen.len(), 2);
}

#[test]
fn every_problem_is_reported_at_once_with_file_and_field() {
    let text = "[server]\nlisten = []\nlistn = \"x\"\nlogin_grace = \"soon\"\n\
                [routing]\ntarget_separator = \"\"\njump = \"sometimes\"\n[typo]\n";
    let errs = errors(text, &[]);
    let has = |field: &str| {
        errs.iter()
            .any(|e| e.contains("switchboard.toml: ") && e.contains(field))
    };
    // Field-level problems come first; cross-field validation needs them fixed.
    assert!(has("server.listn: unknown field `listn`"), "{errs:?}");
    assert!(has("server.login_grace: "), "{errs:?}");
    assert!(has("routing.jump: unknown variant `sometimes`"), "{errs:?}");
    assert!(has("typo: unknown field `typo`"), "{errs:?}");
    assert_eq!(errs.len(), 4, "{errs:?}");
}

#[test]
fn cross_field_validation_collects_everything() {
    let text = "[server]\nlisten = []\nmax_auth_tries = 0\n[routing]\ntarget_separator = \"\"\n\
                [log]\nlevel = \"=== nope\"\n";
    let errs = errors(text, &[]);
    for field in [
        "server.listen",
        "server.max_auth_tries",
        "routing.target_separator",
        "log.level",
    ] {
        assert!(
            errs.iter()
                .any(|e| e.contains(&format!("switchboard.toml: {field}: "))),
            "{field}: {errs:?}"
        );
    }
}

#[test]
fn bad_listen_address_is_named() {
    let errs = errors("[server]\nlisten = [\"0.0.0.0:2233\", \"nowhere\"]\n", &[]);
    assert!(
        errs[0].contains("server.listen: invalid address `nowhere`"),
        "{errs:?}"
    );
}

#[test]
fn syntax_error_gives_position_not_snippet() {
    let errs = errors("[server]\nhost_key_seed = topsecretvalue1234\n", &[]);
    assert_eq!(errs.len(), 1);
    assert!(errs[0].contains("line 2"), "{errs:?}");
    assert!(!errs[0].contains("topsecret"), "{errs:?}");
}

#[test]
fn inline_seed_of_wrong_type_is_not_echoed() {
    let errs = errors("[server]\nhost_key_seed = 12345678901234567\n", &[]);
    assert!(!errs[0].contains("12345678901234567"), "{errs:?}");
}

#[test]
fn env_overrides_apply_on_top_of_the_file_with_typed_values() {
    let config = load(
        "[server]\nmax_auth_tries = 3\nbanner = \"file\"\n",
        &[
            ("SWITCHBOARD_SERVER_LISTEN", "127.0.0.1:2022"),
            ("SWITCHBOARD_SERVER_MAX_AUTH_TRIES", "9"),
            ("SWITCHBOARD_SERVER_LOGIN_GRACE", "1m"),
            ("SWITCHBOARD_SERVER_BANNER", "42"),
            ("SWITCHBOARD_LOG_LEVEL", "debug"),
            ("SWITCHBOARD_LOG_FORMAT", "json"),
            ("SWITCHBOARD_SOURCES_FILE_PATH", "/srv/routes.toml"),
            ("SWITCHBOARD_SOURCES_FILE_WATCH", "false"),
            ("SWITCHBOARD_ROUTING_AGENT_LOGIN", "false"),
        ],
    )
    .expect("loads");
    assert_eq!(
        config.server.listen,
        vec![SocketAddr::from(([127, 0, 0, 1], 2022))]
    );
    assert_eq!(config.server.max_auth_tries, 9);
    assert_eq!(config.server.login_grace, Duration::from_secs(60));
    assert_eq!(config.server.banner, "42");
    assert_eq!(config.log.level, "debug");
    assert_eq!(config.log.format, LogFormat::Json);
    assert_eq!(config.sources.file.path, PathBuf::from("/srv/routes.toml"));
    assert!(!config.sources.file.watch);
    assert!(!config.routing.agent_login);
}

#[test]
fn env_list_value() {
    let vars = [(
        "SWITCHBOARD_SERVER_LISTEN",
        "[\"127.0.0.1:1\", \"127.0.0.1:2\"]",
    )];
    let config = Config::load_with_env(None, env(&vars)).expect("loads");
    assert_eq!(config.server.listen.len(), 2);
}

#[test]
fn env_errors_name_the_variable() {
    let errs = errors(
        "",
        &[
            ("SWITCHBOARD_SERVER_LISTN", "1"),
            ("SWITCHBOARD_SERVER_MAX_AUTH_TRIES", "many"),
            ("SWITCHBOARD_SOURCES_PATH", "x"),
        ],
    );
    assert_eq!(errs.len(), 3, "{errs:?}");
    assert!(
        errs.iter()
            .any(|e| e.starts_with("environment variable SWITCHBOARD_SERVER_LISTN: server.listn:"))
    );
    assert!(
        errs.iter()
            .any(|e| e.starts_with("environment variable SWITCHBOARD_SERVER_MAX_AUTH_TRIES:"))
    );
    assert!(
        errs.iter()
            .any(|e| e.starts_with("environment variable SWITCHBOARD_SOURCES_PATH:"))
    );
}

#[test]
fn unrelated_and_seed_variables_are_not_overrides() {
    let vars = [
        ("SWITCHBOARD_SEED", "whatever"),
        ("SWITCHBOARD_CONFIG", "/etc/switchboard.toml"),
        ("SWITCHBOARD_SERVER_SECRET", "0123456789abcdef0123"),
        ("HOME", "/root"),
    ];
    let config = load(
        "[server]\nhost_key_seed_env = \"SWITCHBOARD_SERVER_SECRET\"\n",
        &vars,
    )
    .expect("loads");
    assert_eq!(
        config.server.host_key_seed_env.as_deref(),
        Some("SWITCHBOARD_SERVER_SECRET")
    );
}

#[test]
fn relative_paths_are_relative_to_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(
        dir.path(),
        "[server]\nhost_key_seed_file = \"seed\"\n[sources.file]\npath = \"r.toml\"\n",
    );
    let config = Config::load_with_env(Some(&path), env(&[])).expect("loads");
    assert_eq!(config.sources.file.path, dir.path().join("r.toml"));
    assert_eq!(
        config.server.host_key_seed_file,
        Some(dir.path().join("seed"))
    );
}

#[test]
fn validation_error_names_the_variable_that_set_the_field() {
    let errs = errors("", &[("SWITCHBOARD_ROUTING_TARGET_SEPARATOR", "\"\"")]);
    assert_eq!(
        errs,
        vec![
            "environment variable SWITCHBOARD_ROUTING_TARGET_SEPARATOR: routing.target_separator: \
             must not be empty (the default is \"@\")"
        ]
    );
}

#[test]
fn two_seed_sources_are_refused() {
    let errs = errors(
        "[server]\nhost_key_seed_file = \"/s\"\nhost_key_seed_env = \"S\"\n",
        &[],
    );
    assert!(errs[0].contains("set only one of"), "{errs:?}");
}

#[test]
fn missing_explicit_file_is_an_error() {
    let err = Config::load_with_env(Some(Path::new("/nonexistent/switchboard.toml")), env(&[]))
        .expect_err("missing file");
    assert!(
        err.to_string()
            .contains("/nonexistent/switchboard.toml: cannot read"),
        "{err}"
    );
}

#[test]
fn kubernetes_section_is_typed_validated_and_its_path_resolved() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(
        dir.path(),
        "[routing]\nusername_grammar = \"sealos\"\n\
         [sources.kubernetes]\nenabled = true\nmode = \"sealos-devbox\"\n\
         namespaces = [\"ns-a\", \"ns-b\"]\nkubeconfig = \"kc.yaml\"\ndevbox_port = 2222\n",
    );
    let config = Config::load_with_env(Some(&path), env(&[])).expect("loads");
    let k = &config.sources.kubernetes;
    assert!(k.enabled);
    assert_eq!(k.mode, crate::config::KubernetesMode::SealosDevbox);
    assert_eq!(k.namespaces, ["ns-a", "ns-b"]);
    assert_eq!(k.kubeconfig, Some(dir.path().join("kc.yaml")));
    assert_eq!((k.devbox_port, k.devbox_user.as_str()), (2222, "devbox"));
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);

    let errs = errors(
        "[sources.kubernetes]\nnamespaces = [\"Bad_NS\", \"a\", \"a\"]\ndevbox_port = 0\n\
         devbox_user = \"\"\nkubeconfig = \"\"\n",
        &[],
    );
    for want in [
        "namespaces: \"Bad_NS\" is not a namespace name",
        "namespaces: \"a\" is listed twice",
        "devbox_port: must be 1 to 65535",
        "devbox_user: must be a user name",
        "kubeconfig: must not be empty",
    ] {
        assert!(errs.iter().any(|e| e.contains(want)), "{want}: {errs:?}");
    }
    let errs = errors("[sources.kubernetes]\nnamspaces = []\n", &[]);
    assert!(errs[0].contains("namspaces"), "{errs:?}");
}

#[test]
fn sealos_mode_without_sealos_usernames_is_warned_about() {
    let config = load(
        "[sources.kubernetes]\nenabled = true\nmode = \"sealos-devbox\"\n",
        &[("SWITCHBOARD_SOURCES_KUBERNETES_NAMESPACES", "[\"x\"]")],
    )
    .expect("loads");
    assert_eq!(config.sources.kubernetes.namespaces, ["x"]);
    assert!(
        config
            .warnings
            .iter()
            .any(|w| w.contains("username_grammar")),
        "{:?}",
        config.warnings
    );
}

#[test]
fn pre_auth_fairness_keys_have_openssh_like_defaults() {
    let s = Config::load_with_env(None, env(&[]))
        .expect("defaults")
        .server;
    assert_eq!(s.max_unauthenticated, 200);
    assert_eq!(s.max_unauthenticated_start, 100);
    assert_eq!(s.max_unauthenticated_rate, 30);
    assert_eq!(s.per_source_max_unauthenticated, 20);
    assert!(s.per_source_exempt.is_empty());
}

#[test]
fn pre_auth_fairness_keys_are_validated() {
    let config = load(
        "[server]\nmax_unauthenticated = 50\nmax_unauthenticated_start = 10\n\
         max_unauthenticated_rate = 100\nper_source_max_unauthenticated = 0\n\
         per_source_exempt = [\"10.0.0.0/8\", \"192.0.2.7\", \"2001:db8::/64\"]\n",
        &[],
    )
    .expect("loads");
    assert_eq!(config.server.per_source_exempt().len(), 3);
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);

    let errs = errors(
        "[server]\nmax_unauthenticated = 50\nmax_unauthenticated_start = 51\n\
         max_unauthenticated_rate = 101\nper_source_exempt = [\"10.0.0.0/8\", \"health\"]\n",
        &[],
    );
    for want in [
        "server.max_unauthenticated_start: is above server.max_unauthenticated (50)",
        "server.max_unauthenticated_rate: is a percentage",
        "server.per_source_exempt[1]: `health` is not a CIDR",
    ] {
        assert!(errs.iter().any(|e| e.contains(want)), "{want}: {errs:?}");
    }
    assert_eq!(errs.len(), 3, "{errs:?}");
}

#[test]
fn a_table_lowered_under_the_default_early_drop_start_is_warned_about() {
    let config = load("[server]\nmax_unauthenticated = 64\n", &[]).expect("loads");
    assert!(
        config
            .warnings
            .iter()
            .any(|w| w.contains("server.max_unauthenticated: 64")
                && w.contains("no random early drop")),
        "{:?}",
        config.warnings
    );
    // Saying so (0: no early drop) silences it.
    let config = load(
        "[server]\nmax_unauthenticated = 64\nmax_unauthenticated_start = 0\n",
        &[],
    )
    .expect("loads");
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
}

#[test]
fn per_source_exempt_can_come_from_the_environment() {
    let vars = [(
        "SWITCHBOARD_SERVER_PER_SOURCE_EXEMPT",
        "[\"10.0.0.0/8\", \"::1\"]",
    )];
    let config = Config::load_with_env(None, env(&vars)).expect("loads");
    assert_eq!(config.server.per_source_exempt, ["10.0.0.0/8", "::1"]);
    let errs = errors(
        "",
        &[("SWITCHBOARD_SERVER_PER_SOURCE_EXEMPT", "[\"nope\"]")],
    );
    assert!(
        errs[0].starts_with(
            "environment variable SWITCHBOARD_SERVER_PER_SOURCE_EXEMPT: server.per_source_exempt[0]:"
        ),
        "{errs:?}"
    );
}

#[test]
fn an_override_naming_no_section_is_a_warning_with_the_likely_name() {
    let config = load(
        "",
        &[
            ("SWITCHBOARD_SERVR_LISTEN", "127.0.0.1:1"),
            ("SWITCHBOARD_CONFIG", "/etc/switchboard.toml"),
        ],
    )
    .expect("a typo there is no error");
    assert_eq!(config.warnings.len(), 1, "{:?}", config.warnings);
    let w = &config.warnings[0];
    assert!(
        w.starts_with("environment variable SWITCHBOARD_SERVR_LISTEN: ignored"),
        "{w}"
    );
    assert!(w.contains("did you mean SWITCHBOARD_SERVER_LISTEN?"), "{w}");
    assert_eq!(
        config.server.listen,
        [SocketAddr::from(([0, 0, 0, 0], 2233))]
    );
}

#[test]
fn kubernetes_service_links_are_not_warned_about() {
    let links = [
        "SWITCHBOARD_SERVICE_HOST",
        "SWITCHBOARD_SERVICE_PORT",
        "SWITCHBOARD_SERVICE_PORT_SSH_ALT",
        "SWITCHBOARD_PORT",
        "SWITCHBOARD_PORT_2233_TCP",
        "SWITCHBOARD_PORT_2233_TCP_PROTO",
        "SWITCHBOARD_PORT_2233_TCP_PORT",
        "SWITCHBOARD_PORT_2233_TCP_ADDR",
        "SWITCHBOARD_PORT_53_UDP_ADDR",
        "SWITCHBOARD_METRICS_SERVICE_HOST",
        "SWITCHBOARD_METRICS_PORT_9102_TCP",
    ];
    let vars: Vec<(&str, &str)> = links.iter().map(|l| (*l, "10.96.0.1")).collect();
    let config = load("", &vars).expect("loads");
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    // Near misses of the pattern are still warned about.
    for name in [
        "SWITCHBOARD_PORT_2233_TCPX",
        "SWITCHBOARD_PORT_X_TCP",
        "SWITCHBOARD_SERVICE_HOSTS",
    ] {
        let config = load("", &[(name, "x")]).expect("loads");
        assert_eq!(config.warnings.len(), 1, "{name}: {:?}", config.warnings);
    }
}

#[test]
fn list_item_errors_name_the_item() {
    let errs = errors(
        "[proxy_protocol]\ntrusted_cidrs = [\"10.0.0.0/8\", 5]\n",
        &[],
    );
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].contains("proxy_protocol.trusted_cidrs[1]: invalid type: integer `5`"),
        "{errs:?}"
    );
}

#[test]
fn wake_section_and_sshgate_derivation_parse_with_their_warnings() {
    let config = load(
        "[server]\nhost_key_derivation = \"sshgate\"\n\n\
         [sources.kubernetes]\nwake = true\n\n\
         [wake]\ntimeout = \"2m\"\ncooldown = \"0s\"\nstart_wait = \"45s\"\n",
        &[("SWITCHBOARD_WAKE_HEARTBEAT", "3s")],
    )
    .expect("loads");
    assert_eq!(
        config.server.host_key_derivation,
        HostKeyDerivation::Sshgate
    );
    assert!(config.sources.kubernetes.wake);
    let w = &config.wake;
    assert_eq!(
        (w.timeout, w.cooldown, w.heartbeat, w.start_wait),
        (
            Duration::from_secs(120),
            Duration::ZERO,
            Duration::from_secs(3),
            Duration::from_secs(45)
        )
    );
    let warnings = config.warnings.join("\n");
    assert!(
        warnings.contains("host_key_derivation = \"sshgate\""),
        "{warnings}"
    );
    assert!(warnings.contains("no domain separation"), "{warnings}");
    assert!(warnings.contains("wake = true has no effect"), "{warnings}");
    let errs = errors("[wake]\ntimeout = \"0s\"\nheartbeat = \"0s\"\n", &[]);
    assert!(errs.iter().any(|e| e.contains("wake.timeout")), "{errs:?}");
    assert!(
        errs.iter().any(|e| e.contains("wake.heartbeat")),
        "{errs:?}"
    );
    let errs = errors("[server]\nhost_key_derivation = \"sha256\"\n", &[]);
    assert!(
        errs.iter().any(|e| e.contains("host_key_derivation")),
        "{errs:?}"
    );
}

#[test]
fn service_links_of_services_named_after_a_section_are_ignored() {
    // Services `switchboard-admin`, `switchboard-server`,
    // `switchboard-sources` and `switchboard-proxy-protocol` in the namespace.
    let links = [
        ("SWITCHBOARD_ADMIN_PORT", "tcp://10.96.0.12:9102"),
        ("SWITCHBOARD_ADMIN_SERVICE_HOST", "10.96.0.12"),
        ("SWITCHBOARD_ADMIN_SERVICE_PORT", "9102"),
        ("SWITCHBOARD_ADMIN_SERVICE_PORT_METRICS", "9102"),
        ("SWITCHBOARD_ADMIN_PORT_9102_TCP", "tcp://10.96.0.12:9102"),
        ("SWITCHBOARD_ADMIN_PORT_9102_TCP_ADDR", "10.96.0.12"),
        ("SWITCHBOARD_SERVER_PORT", "tcp://10.96.0.13:22"),
        ("SWITCHBOARD_SOURCES_SERVICE_HOST", "10.96.0.14"),
        ("SWITCHBOARD_SOURCES_PORT", "tcp://10.96.0.14:80"),
        ("SWITCHBOARD_PROXY_PROTOCOL_PORT_80_TCP_PORT", "80"),
    ];
    let config = load("", &links).expect("service links are not settings");
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    // A real key of that shape is still read, and a bad value still fails.
    let config = load(
        "",
        &[("SWITCHBOARD_SOURCES_KUBERNETES_DEVBOX_PORT", "2222")],
    )
    .expect("a setting");
    assert_eq!(config.sources.kubernetes.devbox_port, 2222);
    let errs = errors(
        "",
        &[(
            "SWITCHBOARD_SOURCES_KUBERNETES_DEVBOX_PORT",
            "tcp://10.96.0.1:22",
        )],
    );
    assert_eq!(errs.len(), 1, "{errs:?}");
    // Other unknown keys of a known section stay errors; typos stay warnings.
    assert_eq!(errors("", &[("SWITCHBOARD_ADMIN_LISTN", "x")]).len(), 1);
    assert_eq!(errors("", &[("SWITCHBOARD_ADMIN_PORTS", "x")]).len(), 1);
}

#[test]
fn certificate_keys_are_read_and_checked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(
        dir.path(),
        "[upstream]\nuser_ca_key_file = \"keys/user_ca\"\ncertificate_validity = \"2m\"\n\
         trusted_host_cas = [\"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPy79bNUuWn+Hzm/i/zTG1Hj9xvS6X51TAd4Et/u9VRb ca\"]\n",
    );
    let config = Config::load_with_env(Some(&path), env(&[])).expect("loads");
    let u = &config.upstream;
    assert_eq!(u.user_ca_key_file, Some(dir.path().join("keys/user_ca")));
    assert_eq!(u.certificate_validity, Duration::from_secs(120));
    assert_eq!(u.trusted_host_cas.len(), 1);
    let defaults = Config::default().upstream;
    assert_eq!(defaults.certificate_validity, Duration::from_secs(300));
    assert!(defaults.user_ca_key_file.is_none() && defaults.trusted_host_cas.is_empty());

    let errs = errors(
        "[upstream]\ncertificate_validity = \"2h\"\ntrusted_host_cas = [\"nope\"]\n\
         [sources.kubernetes]\nmode = \"sealos-devbox\"\nread_secrets = false\n",
        &[],
    );
    let all = errs.join("\n");
    assert!(
        all.contains("upstream.certificate_validity: 2h is outside 30s to 1h"),
        "{all}"
    );
    assert!(all.contains("upstream.trusted_host_cas[0]: "), "{all}");
    assert!(
        all.contains("sources.kubernetes.read_secrets: is false"),
        "{all}"
    );
}
