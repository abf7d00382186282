//! Process hygiene (SPEC §12): `check` and `serve` warn about a seed or
//! identity file that others may read, and `serve` runs without core dumps and
//! non-dumpable. Everything here is about the process, so it runs the binary.

mod common;

use std::fs::{self, File};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::thread;
use std::time::Duration;

use common::*;
use tempfile::TempDir;

/// What `check` and `serve` say about a file that is too open.
const UNPROTECTED: &str = "UNPROTECTED KEY FILE";

/// The unprivileged user the gateway runs as when the tests run as root, so
/// that the owner of its `/proc` entries tells whether it is dumpable.
const NOBODY: u32 = 65534;

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A config, a seed file and a routes file whose one route logs in with an
/// identity file, in a temp dir: (dir, config, seed, identity key).
fn setup() -> (TempDir, PathBuf, PathBuf, Key) {
    let dir = temp_dir();
    let seed = dir.path().join("seed");
    fs::write(&seed, format!("{SEED}\n")).expect("seed");
    let key = Key::generate(dir.path(), "box-identity");
    let route = Route {
        keys: vec![key.public.clone()],
        identity_file: Some(key.path.clone()),
        ..Route::new("box", "127.0.0.1:22")
    };
    let routes = dir.path().join("routes.toml");
    fs::write(&routes, routes_toml(&[route])).expect("routes");
    let cfg = GatewayConfig {
        seed: None,
        seed_file: Some(seed.clone()),
        ..Default::default()
    };
    let config = dir.path().join("switchboard.toml");
    fs::write(&config, cfg.render("127.0.0.1:0", "127.0.0.1:0", &routes)).expect("config");
    (dir, config, seed, key)
}

#[test]
fn check_warns_about_a_seed_or_identity_file_others_can_read() {
    let (dir, config, seed, key) = setup();
    let check = || {
        let out = run_switchboard(
            dir.path(),
            &["check".as_ref(), "--config".as_ref(), config.as_os_str()],
        );
        out.assert_ok();
        let secret = key.private_lines();
        assert!(!out.all().contains(SEED), "the seed is printed: {out:?}");
        assert!(
            !out.all().contains(&secret[1]),
            "the key is printed: {out:?}"
        );
        out
    };

    chmod(&seed, 0o600);
    chmod(&key.path, 0o600);
    let out = check();
    assert!(!out.all().contains(UNPROTECTED), "{out:?}");

    chmod(&seed, 0o644);
    let out = check();
    let seed_warning = format!(
        "server.host_key_seed_file: {UNPROTECTED} {}: mode 0644",
        seed.display()
    );
    assert!(
        out.stdout.contains(&format!("warning:  {seed_warning}")),
        "no seed warning in the summary: {out:?}"
    );
    assert!(
        out.stdout
            .contains(&format!("chmod 600 {}", seed.display())),
        "{out:?}"
    );
    assert!(!out.all().contains("identity_file: "), "{out:?}");

    chmod(&seed, 0o400);
    chmod(&key.path, 0o640);
    let out = check();
    let key_warning = format!(
        "identity_file: {UNPROTECTED} {}: mode 0640",
        key.path.display()
    );
    assert!(
        out.all().contains(&key_warning),
        "no identity warning: {out:?}"
    );
    assert!(
        !out.all().contains("server.host_key_seed_file: "),
        "{out:?}"
    );
}

#[test]
fn serve_warns_about_an_open_seed_file() {
    let keys = temp_dir();
    let seed = keys.path().join("seed");
    fs::write(&seed, SEED).expect("seed");
    chmod(&seed, 0o644);
    let cfg = GatewayConfig {
        seed: None,
        seed_file: Some(seed.clone()),
        ..Default::default()
    };
    let gw = Gateway::spawn_with(&cfg, "");
    let warning = format!(
        "server.host_key_seed_file: {UNPROTECTED} {}: mode 0644",
        seed.display()
    );
    let log = gw.log();
    assert!(log.contains(&warning), "no warning in the log:\n{log}");
    assert!(!log.contains(SEED), "the seed is logged:\n{log}");
}

/// `switchboard serve` started by hand (not [`Gateway::spawn`]) to run it as
/// another user and with core dumps allowed; killed on drop.
struct Served {
    child: Child,
    dir: TempDir,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            let log = fs::read_to_string(self.dir.path().join("gateway.log")).unwrap_or_default();
            eprintln!("----- gateway log -----\n{log}");
        }
    }
}

/// The uid owning `path`.
fn owner(path: &str) -> u32 {
    fs::metadata(path)
        .unwrap_or_else(|e| panic!("stat {path}: {e}"))
        .uid()
}

#[test]
fn serve_runs_without_core_dumps_and_non_dumpable() {
    let dir = temp_dir();
    // The gateway may run as another user: it must reach its files.
    chmod(dir.path(), 0o755);
    let routes = dir.path().join("routes.toml");
    fs::write(&routes, "").expect("routes");
    let (port, admin) = (free_port(), free_port());
    let config = dir.path().join("switchboard.toml");
    let text = GatewayConfig::default().render(
        &format!("127.0.0.1:{port}"),
        &format!("127.0.0.1:{admin}"),
        &routes,
    );
    fs::write(&config, text).expect("config");
    let log = File::create(dir.path().join("gateway.log")).expect("log");
    // Core dumps allowed up to the hard limit, as a shell user may have them,
    // then the real binary (exec keeps the pid).
    let mut cmd = std::process::Command::new("sh");
    cmd.current_dir(dir.path())
        .arg("-c")
        .arg(r#"ulimit -c unlimited 2>/dev/null; exec "$0" "$@""#)
        .arg(env!("CARGO_BIN_EXE_switchboard"))
        .args(["serve".as_ref(), "--config".as_ref(), config.as_os_str()])
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log fd"))
        .stderr(log);
    let root = owner("/proc/self") == 0;
    if root {
        cmd.uid(NOBODY).gid(NOBODY);
    }
    let child = cmd.spawn().expect("spawn switchboard");
    let pid = child.id();
    let served = Served { child, dir };
    assert!(
        eventually(Duration::from_secs(30), || http_get(admin, "/healthz").0
            == 200),
        "the gateway did not start"
    );

    // /proc/<pid> itself is owned by the process's user; its files are owned
    // by root once the process is non-dumpable (the kernel's task_dump_owner).
    let proc_dir = format!("/proc/{pid}");
    let euid = owner(&proc_dir);
    assert_ne!(
        euid, 0,
        "the gateway must run as an ordinary user for this test"
    );
    if root {
        assert_eq!(euid, NOBODY);
    }
    for file in ["status", "environ", "fd"] {
        assert_eq!(
            owner(&format!("{proc_dir}/{file}")),
            0,
            "/proc/{pid}/{file} is owned by the gateway's user: it is dumpable"
        );
    }

    let limits = fs::read_to_string(format!("{proc_dir}/limits")).expect("limits");
    let core: Vec<&str> = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max core file size"))
        .expect("core line")
        .split_whitespace()
        .collect();
    assert_eq!(&core[..2], ["0", "0"], "core dumps allowed:\n{limits}");
    drop(served);
}
