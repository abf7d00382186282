//! What the attack tests (`tests/security*.rs`) play with: hostile agents, a
//! box impostor and a client that breaks the packet-size rule (Python and
//! Paramiko scripts in `tests/support/`), and the measurements (a process's
//! memory, TCP connections to a port).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::agent::Agent;
use super::{Bg, Input, Key, eventually, run, temp_dir};

/// Deadline for a support script to come up.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// The Python that has Debian's `python3-paramiko` (CI: `.ci/run`); a
/// pyenv or venv `python3` earlier in `PATH` would not.
pub fn python() -> Command {
    let debian = Path::new("/usr/bin/python3");
    Command::new(if debian.exists() {
        debian.as_os_str()
    } else {
        "python3".as_ref()
    })
}

/// A script of `tests/support/`.
pub fn support_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/support")
        .join(name)
}

/// `ssh` as an agent-mode client: `key` logs in to the gateway, and with
/// `-A` the agent at `forwarded` is forwarded — whatever reaches that socket
/// came through the gateway. (OpenSSH forwards an agent only while it has one
/// of its own: `own`, an empty one, serves its own login.)
pub fn ssh_forwarding(port: u16, key: &Key, own: &Agent, forwarded: &Path) -> Command {
    let mut c = super::ssh_at("ERROR", port, key);
    c.env("SSH_AUTH_SOCK", &own.sock)
        .arg("-o")
        .arg(format!("ForwardAgent={}", forwarded.display()));
    c
}

/// `/proc/PID/status` field `field` (`"VmRSS"`, `"VmHWM"`) in KiB.
#[track_caller]
pub fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/status: {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// Established IPv4 TCP connections whose remote end is 127.0.0.1:`port`
/// (on loopback each connection is listed from both ends: this counts the
/// connecting side only).
pub fn established_to(port: u16) -> usize {
    let table = fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let remote = format!("0100007F:{port:04X}");
    table
        .lines()
        .skip(1)
        .filter(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            cols.len() > 3 && cols[2] == remote && cols[3] == "01"
        })
        .count()
}

/// An agent socket served by `tests/support/fake_agent.py`; killed on drop.
pub struct FakeAgent {
    pub sock: PathBuf,
    log: PathBuf,
    _proc: Bg,
    _dir: tempfile::TempDir,
}

impl FakeAgent {
    /// Accepts and never answers.
    pub fn silent() -> FakeAgent {
        Self::start(&["silent"], |_| Vec::new())
    }

    /// Lists `key`'s public half, never answers a signing request.
    pub fn hang_on_sign(key: &Key) -> FakeAgent {
        Self::start(&["hang-on-sign"], |_| {
            vec![format!("{}.pub", key.path.display())]
        })
    }

    /// `agent` behind a tap that logs every connection and request.
    pub fn tap(agent: &Agent) -> FakeAgent {
        Self::start(&["tap"], |dir| {
            vec![
                agent.sock.display().to_string(),
                dir.join("tap.log").display().to_string(),
            ]
        })
    }

    fn start(mode: &[&str], more: impl FnOnce(&Path) -> Vec<String>) -> FakeAgent {
        let dir = temp_dir();
        let sock = dir.path().join("agent.sock");
        let log = dir.path().join("tap.log");
        let mut proc = Bg::spawn(
            python()
                .arg(support_script("fake_agent.py"))
                .args(mode)
                .arg(&sock)
                .args(more(dir.path())),
        );
        let up = eventually(READY_TIMEOUT, || !proc.is_running() || sock.exists());
        assert!(
            up && proc.is_running(),
            "fake agent did not start: {}",
            proc.stderr()
        );
        FakeAgent {
            sock,
            log,
            _proc: proc,
            _dir: dir,
        }
    }

    /// The tap's log: `conn N` and `req N TYPE` lines.
    pub fn tap_log(&self) -> Vec<String> {
        fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// `tests/support/impostor.py`: a Paramiko SSH server with a host key of its
/// own on 127.0.0.1:`port`, logging what it sees; killed on drop.
pub struct Impostor {
    pub port: u16,
    log: PathBuf,
    proc: Bg,
    _dir: tempfile::TempDir,
}

impl Impostor {
    /// `flags`: `--accept-any`, `--open-agent` (see the script).
    pub fn start(port: u16, flags: &[&str]) -> Impostor {
        let dir = temp_dir();
        let host_key = dir.path().join("impostor_host_key");
        run(
            Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(&host_key),
            Input::Null,
            Duration::from_secs(20),
        )
        .assert_ok();
        let log = dir.path().join("impostor.log");
        let mut proc = Bg::spawn(
            python()
                .arg(support_script("impostor.py"))
                .arg(port.to_string())
                .arg(&host_key)
                .arg(&log)
                .args(flags),
        );
        // It says so once listening (a probe connection would show in its log).
        let up = eventually(READY_TIMEOUT, || {
            !proc.is_running() || proc.stdout().contains("listening")
        });
        assert!(
            up && proc.is_running(),
            "impostor did not start on port {port}: {}",
            proc.stderr()
        );
        Impostor {
            port,
            log,
            proc,
            _dir: dir,
        }
    }

    /// What the impostor saw, one event a line.
    pub fn log(&self) -> Vec<String> {
        fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The script's stderr (a Python traceback, if any).
    pub fn stderr(&self) -> String {
        self.proc.stderr()
    }
}

/// Runs `tests/support/oversize.py` against the gateway on `port`: logs in
/// as `user` with `key`, opens a session and sends `count` CHANNEL_DATA
/// packets of `size` bytes. Its JSON verdict.
pub fn oversize(port: u16, key: &Key, user: &str, size: usize, count: usize) -> serde_json::Value {
    let out = run(
        python()
            .arg(support_script("oversize.py"))
            .arg(port.to_string())
            .arg(&key.path)
            .arg(user)
            .arg(size.to_string())
            .arg(count.to_string()),
        Input::Null,
        Duration::from_secs(60),
    );
    out.assert_ok();
    serde_json::from_str(out.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {out:?}"))
}
