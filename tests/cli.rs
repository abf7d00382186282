//! The command line as a newcomer meets it, with the real binary: `version`,
//! `completion`, `host-key --host`, `ssh-config` of a route that does not
//! exist, misspelt environment overrides, every error of a broken route, and
//! one wording for the closing summary.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

/// `switchboard ARGS` in `dir` with extra environment variables.
fn run_env(dir: &Path, args: &[&str], vars: &[(&str, &str)]) -> Output {
    let mut cmd = switchboard(dir);
    cmd.args(args).env_remove("RUST_LOG");
    for (k, v) in vars {
        cmd.env(k, v);
    }
    run(&mut cmd, Input::Null, SSH_TIMEOUT)
}

const DEMO_ROUTE: &str = "[[route]]\nname = \"demo-box\"\naddress = \"127.0.0.1:2222\"\n";

#[test]
fn version_names_the_version_and_the_build() {
    let dir = temp_dir();
    let out = run_switchboard(dir.path(), &["version"]);
    out.assert_ok();
    assert!(
        out.stdout
            .starts_with(&format!("switchboard {}\n", env!("CARGO_PKG_VERSION"))),
        "{out:?}"
    );
    for field in ["commit:", "target:", "profile:", "features:"] {
        assert!(out.stdout.contains(field), "{field}: {out:?}");
    }
    let flag = run_switchboard(dir.path(), &["--version"]);
    flag.assert_ok();
    assert!(flag.stdout.contains(env!("CARGO_PKG_VERSION")), "{flag:?}");
}

#[test]
fn completion_scripts_for_each_shell_know_the_subcommands() {
    let dir = temp_dir();
    for shell in ["bash", "zsh", "fish"] {
        let out = run_switchboard(dir.path(), &["completion", shell]);
        out.assert_ok();
        assert!(out.stdout.len() > 500, "{shell}: {out:?}");
        for sub in [
            "serve",
            "check",
            "host-key",
            "ssh-config",
            "completion",
            "version",
        ] {
            assert!(out.stdout.contains(sub), "{shell} lacks {sub}: {out:?}");
        }
    }
    let bad = run_switchboard(dir.path(), &["completion", "tcsh"]);
    assert_eq!(bad.code, Some(2), "{bad:?}");
}

/// The known_hosts lines of `host-key --dev --known-hosts ARGS`, checked to be
/// only such lines.
fn known_hosts_lines(dir: &Path, args: &[&str]) -> Vec<String> {
    let mut all = vec!["host-key", "--dev", "--known-hosts"];
    all.extend(args);
    let out = run_switchboard(dir, &all);
    out.assert_ok();
    out.stdout.lines().map(str::to_owned).collect()
}

/// What OpenSSH's `ssh-keygen -F HOST` finds for `host` in `file`.
fn keygen_finds(file: &Path, host: &str) -> bool {
    let out = run(
        Command::new("ssh-keygen")
            .arg("-F")
            .arg(host)
            .arg("-f")
            .arg(file),
        Input::Null,
        SSH_TIMEOUT,
    );
    out.success() && out.stdout.contains("ssh-ed25519")
}

#[test]
fn host_key_prints_valid_known_hosts_lines_for_the_port_users_dial() {
    let dir = temp_dir();
    fs::write(
        dir.path().join("switchboard.toml"),
        "[server]\nlisten = \"127.0.0.1:2233\"\n",
    )
    .expect("config");
    let full = run_switchboard(dir.path(), &["host-key", "--dev"]);
    full.assert_ok();
    let key_line = |ty: &str| {
        full.stdout
            .lines()
            .find(|l| l.starts_with(ty))
            .unwrap_or_else(|| panic!("no {ty}public key line: {full:?}"))
            .to_owned()
    };
    // Every host key, derived from the seed: Ed25519 first, then ECDSA P-256.
    let (key, ecdsa) = (key_line("ssh-ed25519 "), key_line("ecdsa-sha2-nistp256 "));
    for k in [&key, &ecdsa] {
        assert!(
            full.stdout.contains(&format!("\n[127.0.0.1]:2233 {k}\n")),
            "{full:?}"
        );
    }
    let both = |host: &str| [format!("{host} {key}"), format!("{host} {ecdsa}")];

    // A Service on 22 in front of the container's 2233: bare host.
    let lines = known_hosts_lines(dir.path(), &["--host", "gw.example.com:22"]);
    assert_eq!(lines, both("gw.example.com"));
    // No port: the listen port.
    let lines = known_hosts_lines(dir.path(), &["--host", "gw.example.com"]);
    assert_eq!(lines, both("[gw.example.com]:2233"));
    // Another dialled port, IPv6, and several names at once.
    let lines = known_hosts_lines(
        dir.path(),
        &[
            "--host",
            "gw:2222",
            "--host",
            "[::1]:22",
            "--host",
            "[fd00::1]:2200",
        ],
    );
    assert_eq!(
        lines,
        [both("[gw]:2222"), both("::1"), both("[fd00::1]:2200")].concat()
    );

    // OpenSSH itself reads the lines as the hosts users dial.
    let file = dir.path().join("known_hosts");
    let mut text = String::new();
    for args in [["--host", "gw.example.com:22"], ["--host", "gw:2222"]] {
        text += &known_hosts_lines(dir.path(), &args).join("\n");
        text += "\n";
    }
    fs::write(&file, text).expect("known_hosts");
    assert!(keygen_finds(&file, "gw.example.com"));
    assert!(keygen_finds(&file, "[gw]:2222"));
    assert!(!keygen_finds(&file, "[gw.example.com]:2233"));

    for bad in ["gw:22:33", "gw:port", "a,b", "*.example.com", "[gw]:22"] {
        let out = run_switchboard(dir.path(), &["host-key", "--dev", "--host", bad]);
        assert_eq!(out.code, Some(2), "{bad}: {out:?}");
        assert!(out.stderr.contains("--host"), "{bad}: {out:?}");
    }
}

#[test]
fn host_key_with_a_wildcard_listen_address_says_what_to_replace() {
    let dir = temp_dir();
    let out = run_switchboard(dir.path(), &["host-key", "--dev", "--known-hosts"]);
    out.assert_ok();
    // stdout stays a valid known_hosts file; the note goes to stderr.
    assert!(
        out.stdout
            .starts_with("[gateway.example.com]:2233 ssh-ed25519 "),
        "{out:?}"
    );
    assert!(out.stderr.contains("--host"), "{out:?}");
}

#[test]
fn ssh_config_of_an_unknown_route_warns_and_exits_1() {
    let dir = temp_dir();
    fs::write(dir.path().join("routes.toml"), DEMO_ROUTE).expect("routes");
    let out = run_switchboard(dir.path(), &["ssh-config", "nope", "--gateway", "gw:2233"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    assert!(
        out.stderr
            .contains("warning: no route \"nope\" in routes.toml"),
        "{out:?}"
    );
    assert!(out.stderr.contains("demo-box"), "lists the routes: {out:?}");

    let typo = run_switchboard(dir.path(), &["ssh-config", "demo-bx"]);
    assert_eq!(typo.code, Some(1), "{typo:?}");
    assert!(typo.stderr.contains("did you mean demo-box?"), "{typo:?}");
}

#[test]
fn ssh_config_of_a_known_route_prints_its_stanzas() {
    let dir = temp_dir();
    fs::write(dir.path().join("routes.toml"), DEMO_ROUTE).expect("routes");
    let out = run_switchboard(
        dir.path(),
        &["ssh-config", "demo-box", "--gateway", "gw.example.com:2233"],
    );
    out.assert_ok();
    assert!(!out.stderr.contains("warning"), "{out:?}");
    assert!(
        out.stdout.contains(
            "Host demo-box\n    HostName gw.example.com\n    Port 2233\n    User @demo-box\n"
        ),
        "{out:?}"
    );
    assert!(
        out.stdout.contains("ProxyJump gw.example.com:2233"),
        "{out:?}"
    );

    // Without a readable routes file ROUTE cannot be checked: printed, with a warning.
    let elsewhere = temp_dir();
    let out = run_switchboard(elsewhere.path(), &["ssh-config", "demo-box"]);
    out.assert_ok();
    assert!(out.stdout.contains("Host demo-box\n"), "{out:?}");
    assert!(
        out.stderr.contains("warning: demo-box not checked"),
        "{out:?}"
    );
}

/// The Kubernetes service links of Services named `switchboard`,
/// `switchboard-metrics`: never warned about.
const SERVICE_LINKS: &[(&str, &str)] = &[
    ("SWITCHBOARD_SERVICE_HOST", "10.96.0.10"),
    ("SWITCHBOARD_SERVICE_PORT", "22"),
    ("SWITCHBOARD_SERVICE_PORT_SSH", "22"),
    ("SWITCHBOARD_PORT", "tcp://10.96.0.10:22"),
    ("SWITCHBOARD_PORT_22_TCP", "tcp://10.96.0.10:22"),
    ("SWITCHBOARD_PORT_22_TCP_PROTO", "tcp"),
    ("SWITCHBOARD_PORT_22_TCP_PORT", "22"),
    ("SWITCHBOARD_PORT_22_TCP_ADDR", "10.96.0.10"),
    ("SWITCHBOARD_METRICS_SERVICE_HOST", "10.96.0.11"),
    ("SWITCHBOARD_METRICS_PORT_9102_TCP_ADDR", "10.96.0.11"),
];

#[test]
fn check_warns_about_a_misspelt_override_but_not_about_service_links() {
    let dir = temp_dir();
    fs::write(dir.path().join("routes.toml"), DEMO_ROUTE).expect("routes");
    let mut vars = vec![("SWITCHBOARD_SERVR_LISTEN", "127.0.0.1:2233")];
    vars.extend_from_slice(SERVICE_LINKS);
    let out = run_env(dir.path(), &["check", "--dev"], &vars);
    out.assert_ok();
    let warnings: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("warning:"))
        .collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("SWITCHBOARD_SERVR_LISTEN")
                && w.contains("did you mean SWITCHBOARD_SERVER_LISTEN?")),
        "{out:?}"
    );
    for (name, _) in SERVICE_LINKS {
        assert!(
            !warnings.iter().any(|w| w.contains(&format!("{name}:"))),
            "{name} is a service link: {out:?}"
        );
    }
    // The typo changed nothing: the default listen address stands.
    assert!(out.stdout.contains("listen:   0.0.0.0:2233"), "{out:?}");
}

#[test]
fn serve_logs_the_misspelt_override_as_a_warning() {
    let dir = temp_dir();
    fs::write(dir.path().join("routes.toml"), DEMO_ROUTE).expect("routes");
    let listen = format!("127.0.0.1:{}", free_port());
    let admin = format!("127.0.0.1:{}", free_port());
    let mut cmd = switchboard(dir.path());
    cmd.args(["serve", "--dev"])
        .env_remove("RUST_LOG")
        .env("SWITCHBOARD_SERVER_LISTEN", &listen)
        .env("SWITCHBOARD_ADMIN_LISTEN", &admin)
        .env("SWITCHBOARD_ROUTNG_JUMP", "off")
        .env("SWITCHBOARD_SERVICE_HOST", "10.96.0.10");
    let mut gw = Bg::spawn(&mut cmd);
    let up = eventually(Duration::from_secs(30), || {
        !gw.is_running() || gw.stderr().contains("listening on")
    });
    let log = gw.stderr();
    assert!(up && gw.is_running(), "{log}");
    let warned = log
        .lines()
        .find(|l| l.contains("SWITCHBOARD_ROUTNG_JUMP"))
        .unwrap_or_else(|| panic!("no warning for the typo: {log}"));
    assert!(warned.contains("WARN"), "{warned}");
    assert!(warned.contains("SWITCHBOARD_ROUTING_JUMP"), "{warned}");
    assert!(!log.contains("SWITCHBOARD_SERVICE_HOST"), "{log}");
}

#[test]
fn a_wrongly_typed_state_does_not_hide_the_routes_other_errors() {
    let dir = temp_dir();
    fs::write(
        dir.path().join("routes.toml"),
        "[[route]]\nname = \"bad name\"\naddress = \"nowhere\"\nstate = 1\nuser = \"\"\n\
         \n[[route]]\nname = \"alice-ws\"\naddress = \"10.0.0.1\"\nstate = true\nadress = \"x\"\n\
         [route.forwarding]\nlocal = \"yes\"\n\
         \n[[route]]\nname = \"ok\"\naddress = \"10.0.0.2:22\"\n",
    )
    .expect("routes");
    let out = run_switchboard(dir.path(), &["check", "--dev"]);
    assert_eq!(out.code, Some(2), "{out:?}");
    let errors: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    for want in [
        "[[route]] #1 (line 1): name: \"bad name\" is not a valid route name",
        "[[route]] #1 (line 1): address: \"nowhere\" is not host:port",
        "[[route]] #1 (line 1): state: invalid type: integer `1`, expected a string",
        "[[route]] #1 (line 1): user: must not be empty",
        "route \"alice-ws\": address: \"10.0.0.1\" is not host:port",
        "route \"alice-ws\": state: invalid type: boolean `true`",
        "route \"alice-ws\": forwarding.local: invalid type",
        "route \"alice-ws\": adress: unknown field `adress`",
    ] {
        assert!(
            errors.iter().any(|e| e.contains(want)),
            "missing {want:?}: {out:?}"
        );
    }
    assert_eq!(errors.len(), 8, "{out:?}");
    assert!(
        out.stderr
            .ends_with("switchboard: invalid configuration: 8 problems\n"),
        "{out:?}"
    );
    assert!(
        out.stdout.contains("routes:   1 from routes.toml"),
        "{out:?}"
    );
}

#[test]
fn one_wording_for_the_problem_count() {
    let dir = temp_dir();
    fs::write(
        dir.path().join("switchboard.toml"),
        "[server]\nlistn = \"127.0.0.1:2233\"\n",
    )
    .expect("config");
    // The configuration does not load: main's summary.
    let out = run_switchboard(dir.path(), &["check", "--dev"]);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(
        out.stderr.contains("server.listn: unknown field `listn`"),
        "{out:?}"
    );
    assert!(
        out.stderr
            .ends_with("switchboard: invalid configuration: 1 problem\n"),
        "{out:?}"
    );
    // It loads, a route is broken: check's summary, the same words.
    fs::write(dir.path().join("switchboard.toml"), "").expect("config");
    fs::write(
        dir.path().join("routes.toml"),
        "[[route]]\nname = \"a\"\naddress = \"x\"\n",
    )
    .expect("routes");
    let out = run_switchboard(dir.path(), &["check", "--dev"]);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(
        out.stderr
            .ends_with("switchboard: invalid configuration: 1 problem\n"),
        "{out:?}"
    );
}

#[test]
fn serve_on_a_busy_admin_port_says_how_to_move_it() {
    let dir = temp_dir();
    fs::write(dir.path().join("routes.toml"), DEMO_ROUTE).expect("routes");
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let admin = busy.local_addr().expect("addr").to_string();
    let listen = format!("127.0.0.1:{}", free_port());
    let out = run_env(
        dir.path(),
        &["serve", "--dev"],
        &[
            ("SWITCHBOARD_SERVER_LISTEN", &listen),
            ("SWITCHBOARD_ADMIN_LISTEN", &admin),
        ],
    );
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr
            .contains(&format!("cannot listen on {admin} (admin.listen;")),
        "{out:?}"
    );
    assert!(out.stderr.contains("SWITCHBOARD_ADMIN_LISTEN"), "{out:?}");
}
