//! A real `ssh-agent` for the tests that forward one (agent mode, `-A` into
//! a box), and `ssh` pointed at it.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use super::{Bg, Input, Key, eventually, run, ssh_at, temp_dir};

/// A real `ssh-agent -D -a SOCK`, holding `keys`; killed on drop.
pub struct Agent {
    pub sock: PathBuf,
    _proc: Bg,
    _dir: tempfile::TempDir,
}

impl Agent {
    pub fn start(keys: &[&Key]) -> Agent {
        let dir = temp_dir();
        let sock = dir.path().join("agent.sock");
        let mut proc = Bg::spawn(Command::new("ssh-agent").arg("-D").arg("-a").arg(&sock));
        let up = eventually(Duration::from_secs(10), || {
            !proc.is_running() || sock.exists()
        });
        assert!(
            up && proc.is_running(),
            "ssh-agent did not start: {}",
            proc.stderr()
        );
        for k in keys {
            run(
                Command::new("ssh-add")
                    .arg(&k.path)
                    .env("SSH_AUTH_SOCK", &sock),
                Input::Null,
                Duration::from_secs(20),
            )
            .assert_ok();
        }
        Agent {
            sock,
            _proc: proc,
            _dir: dir,
        }
    }
}

/// `ssh -p PORT -i KEY` (test options) with `SSH_AUTH_SOCK` pointing at `agent`.
pub fn ssh_with_agent(port: u16, key: &Key, agent: &Agent) -> Command {
    let mut c = ssh_at("ERROR", port, key);
    c.env("SSH_AUTH_SOCK", &agent.sock);
    c
}
