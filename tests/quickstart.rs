//! The README's quickstart, run the way a newcomer runs it: `examples/quickstart.sh`,
//! then the README's own `ssh` line, from a shell whose `ssh-agent` holds
//! several unrelated keys (without `IdentitiesOnly=yes`, OpenSSH offers those
//! first and the gateway's `max_auth_tries` ends the login before the
//! quickstart's key gets its turn).
//!
//! The script runs the binary under test (`SWITCHBOARD_BIN`) instead of
//! `cargo run --release`, on free ports (`GW_PORT`, `BOX_PORT`, `ADMIN_PORT`)
//! and in a temp dir (`WORK`); its process group (the script, the box's sshd,
//! the gateway) is killed at the end.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::agent::Agent;
use common::*;

/// Defaults the README's commands are written with; the test substitutes its own.
const README_PORT: &str = "2233";
const README_WORK: &str = "/tmp/switchboard-quickstart";
/// A debug gateway on a loaded 2-core machine: generous.
const START: Duration = Duration::from_secs(90);

/// The README's first quickstart `ssh` line (the one that echoes from the box).
fn readme_ssh_line() -> String {
    let readme = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let quickstart = readme
        .split("\n## Quickstart")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("a Quickstart section in README.md");
    quickstart
        .lines()
        .find(|l| l.starts_with("ssh ") && l.contains("echo hello"))
        .expect("an `ssh … 'echo hello …'` line in the Quickstart")
        .to_owned()
}

/// The quickstart script, started as the README says, on the given ports.
fn start_quickstart(work: &Path, gw: u16, boxp: u16, admin: u16) -> Bg {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart.sh");
    let mut cmd = Command::new("bash");
    cmd.arg(&script)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("WORK", work)
        .env("GW_PORT", gw.to_string())
        .env("BOX_PORT", boxp.to_string())
        .env("ADMIN_PORT", admin.to_string())
        .env("SWITCHBOARD_BIN", env!("CARGO_BIN_EXE_switchboard"))
        .env_remove("RUST_LOG");
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("SWITCHBOARD_") {
            cmd.env_remove(k);
        }
    }
    Bg::spawn(&mut cmd)
}

#[test]
fn readme_quickstart_reaches_the_box_with_a_loaded_agent() {
    let line = readme_ssh_line();
    assert!(
        line.contains("-o IdentitiesOnly=yes"),
        "the README's ssh line must offer only the quickstart key: {line}"
    );
    let dir = temp_dir();
    let work = dir.path().join("quickstart");
    let (gw, boxp, admin) = (free_port(), free_port(), free_port());
    let mut script = start_quickstart(&work, gw, boxp, admin);
    let up = eventually(START, || {
        !script.is_running() || script.stderr().contains("listening on")
    });
    assert!(
        up && script.is_running(),
        "the quickstart did not come up:\nstdout: {}\nstderr: {}",
        script.stdout(),
        script.stderr()
    );
    let printed = script.stdout();
    assert!(
        printed.contains(&format!("-p {gw} -o IdentitiesOnly=yes")),
        "{printed}"
    );

    // The known_hosts line the script printed (from `switchboard host-key`):
    // the first connection trusts exactly that, no prompt.
    let known = fs::read_to_string(work.join("gateway_known_hosts")).expect("known_hosts line");
    assert!(
        known.starts_with(&format!("[127.0.0.1]:{gw} ssh-ed25519 ")),
        "{known}"
    );
    assert!(printed.contains(known.trim()), "{printed}");
    // The fingerprint the README tells newcomers to expect at the prompt.
    let fingerprint = printed
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("SHA256:"))
        .unwrap_or_else(|| panic!("no fingerprint printed: {printed}"));
    let readme = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    assert!(readme.contains(fingerprint), "README lacks {fingerprint}");
    let known_hosts = dir.path().join("known_hosts");
    fs::write(&known_hosts, &known).expect("write known_hosts");

    // A newcomer's agent: several keys, none of them the quickstart's.
    let keys: Vec<Key> = (0..8)
        .map(|i| Key::generate(dir.path(), &format!("unrelated-{i}")))
        .collect();
    let agent = Agent::start(&keys.iter().collect::<Vec<_>>());

    let as_typed = line
        .replace(&format!("-p {README_PORT}"), &format!("-p {gw}"))
        .replace(README_WORK, &work.display().to_string());
    assert_ne!(
        as_typed, line,
        "the README line names port 2233 and the work dir"
    );
    // The README's line, plus where this test keeps known_hosts (a newcomer
    // appends the printed line to ~/.ssh/known_hosts, or answers the prompt).
    let trusted = |line: &str| {
        let opts = format!(
            "ssh -o UserKnownHostsFile={} -o StrictHostKeyChecking=yes -o BatchMode=yes ",
            known_hosts.display()
        );
        line.replacen("ssh ", &opts, 1)
    };
    let out = run(
        Command::new("sh")
            .args(["-c", &trusted(&as_typed)])
            .env("SSH_AUTH_SOCK", &agent.sock),
        Input::Null,
        SSH_TIMEOUT,
    );
    assert!(
        out.success() && out.stdout.contains("hello from demo-box"),
        "{out:?}\ngateway: {}",
        script.stderr()
    );

    // "Edit routes.toml live" (README, First ten minutes): stop the route, and
    // the same line says so, without a restart.
    let routes = work.join("routes.toml");
    let text = fs::read_to_string(&routes).expect("routes.toml");
    fs::write(
        &routes,
        format!("{text}state = \"stopped\"\nmessage = \"back soon\"\n"),
    )
    .expect("edit routes.toml");
    let stopped = "switchboard: demo-box is stopped (back soon); start it, then reconnect";
    let said = eventually(Duration::from_secs(20), || {
        let out = run(
            Command::new("sh")
                .args(["-c", &trusted(&as_typed)])
                .env("SSH_AUTH_SOCK", &agent.sock),
            Input::Null,
            SSH_TIMEOUT,
        );
        out.stderr.contains(stopped)
    });
    assert!(said, "no stopped notice; gateway: {}", script.stderr());

    // The stumble the option fixes: without it, the agent's keys use up the tries.
    let without = as_typed.replace("-o IdentitiesOnly=yes ", "");
    let out = run(
        Command::new("sh")
            .args(["-c", &trusted(&without)])
            .env("SSH_AUTH_SOCK", &agent.sock),
        Input::Null,
        SSH_TIMEOUT,
    );
    assert!(!out.success(), "{out:?}");
    assert!(out.stderr.contains("Too many authentication"), "{out:?}");
    drop(script);
}

#[test]
fn quickstart_refuses_a_busy_admin_port() {
    let dir = temp_dir();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let admin = busy.local_addr().expect("addr").port();
    let script = start_quickstart(&dir.path().join("q"), free_port(), free_port(), admin);
    let out = script.wait(Duration::from_secs(30));
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains(&format!("port {admin}")), "{out:?}");
    assert!(out.stderr.contains("ADMIN_PORT"), "{out:?}");
}
