//! Per-channel flow control (SPEC §6: "a slow reader on one channel never
//! stalls the other channels"), with real OpenSSH multiplexing many channels
//! over one ControlMaster connection through the gateway, in key, agent and
//! jump modes: a channel whose consumer never reads — its output, its stdin,
//! or a `-L` forward — leaves the others answering. And agent mode takes
//! input piped in before its login is done, byte for byte.

mod common;

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::thread;
use std::time::Duration;

use common::agent::*;
use common::attack::proc_status_kib;
use common::*;

/// How a test reaches the box over the master connection `ctl`.
enum Mode {
    Key,
    Agent,
    Jump,
}

struct Mux {
    dir: tempfile::TempDir,
    key: Key,
    gw: Gateway,
    _ws: SshdBox,
    _agent: Option<Agent>,
    ctl: PathBuf,
    mode: Mode,
    box_port: u16,
    master: Bg,
}

impl Mux {
    fn start(mode: Mode, master_args: &[&str]) -> Mux {
        let dir = temp_dir();
        let key = Key::generate(dir.path(), "alice");
        let route_key = Key::generate(dir.path(), "route-key");
        let (ws, gw, agent) = match mode {
            Mode::Key | Mode::Jump => {
                // The box also takes the user's own key: the inner login of a jump.
                let ws = SshdBox::start_with(
                    "alice-ws",
                    BoxOptions {
                        extra_authorized: vec![key.public.clone()],
                        ..BoxOptions::default()
                    },
                );
                let gw = Gateway::spawn(&routes_toml(&[ws.route(&[&key])]));
                (ws, gw, None)
            }
            Mode::Agent => {
                let ws = SshdBox::start_with(
                    "alice-ws",
                    BoxOptions {
                        extra_authorized: vec![key.public.clone()],
                        ..BoxOptions::default()
                    },
                );
                let cfg = GatewayConfig {
                    agent_login: true,
                    ..GatewayConfig::default()
                };
                let gw = Gateway::spawn_with(&cfg, &routes_toml(&[ws.route(&[&route_key])]));
                (ws, gw, Some(Agent::start(&[&key])))
            }
        };
        let ctl = dir.path().join("ctl");
        let mut master = match &agent {
            Some(agent) => {
                let mut c = ssh_with_agent(gw.port, &key, agent);
                c.arg("-A");
                c
            }
            None => gw.ssh_cmd(&key),
        };
        master
            .args(["-M", "-N", "-S"])
            .arg(&ctl)
            .args(master_args)
            .arg(target(&mode));
        let master = Bg::spawn(&mut master);
        let box_port = ws.port;
        let mux = Mux {
            dir,
            key,
            gw,
            _ws: ws,
            _agent: agent,
            ctl,
            mode,
            box_port,
            master,
        };
        let up = eventually(Duration::from_secs(20), || {
            run(&mut mux.control("check"), Input::Null, SSH_TIMEOUT).success()
        });
        assert!(up, "ControlMaster did not come up: {}", mux.master.stderr());
        mux
    }

    fn control(&self, op: &str) -> Command {
        let mut c = Command::new("ssh");
        c.args(client_opts())
            .arg("-S")
            .arg(&self.ctl)
            .args(["-O", op, "-p", &self.gw.port.to_string()])
            .arg(target(&self.mode));
        c
    }

    /// `remote_cmd` on the box over the master connection: a session
    /// channel of it (key, agent), or in jump mode a new inner session
    /// whose `-W` channel is one of it.
    fn session(&self, remote_cmd: &str) -> Command {
        let mut c = Command::new("ssh");
        match self.mode {
            Mode::Agent => {
                // Each session asks for the agent itself, as in agent_mode.rs.
                let agent = self._agent.as_ref().expect("agent mode has an agent");
                c = ssh_with_agent(self.gw.port, &self.key, agent);
                c.arg("-A")
                    .arg("-S")
                    .arg(&self.ctl)
                    .args(["-o", "ControlMaster=no"])
                    .arg(target(&self.mode));
            }
            Mode::Key => {
                c.args(client_opts())
                    .arg("-S")
                    .arg(&self.ctl)
                    .args(["-o", "ControlMaster=no", "-p", &self.gw.port.to_string()])
                    .arg(target(&self.mode));
            }
            Mode::Jump => {
                let proxy = format!(
                    "ssh {} -S {} -o ControlMaster=no -p {} -W %h:%p {}",
                    client_opts().join(" "),
                    self.ctl.display(),
                    self.gw.port,
                    target(&self.mode)
                );
                c.args(client_opts())
                    .arg("-o")
                    .arg(format!("ProxyCommand={proxy}"))
                    .arg("-i")
                    .arg(&self.key.path)
                    .args(["-p", &self.box_port.to_string(), "root@127.0.0.1"]);
            }
        }
        c.arg(remote_cmd);
        c
    }

    /// Three sessions on the same connection answer while `stuck` is stuck,
    /// and the gateway (its own process) holds no more than a few windows
    /// for it: its resident set grows by less than 16 MiB.
    fn assert_others_answer(&mut self, stuck: &mut Bg) {
        let pid = self.gw.pid();
        thread::sleep(Duration::from_millis(500));
        let before = proc_status_kib(pid, "VmRSS");
        thread::sleep(Duration::from_secs(1));
        for i in 0..3 {
            let out = run(
                &mut self.session(&format!("echo still-{i}")),
                Input::Null,
                SSH_TIMEOUT,
            );
            assert_eq!(out.assert_ok().stdout, format!("still-{i}\n"), "{out:?}");
        }
        assert!(
            stuck.is_running(),
            "the stuck channel should still be stuck: {}",
            stuck.stderr()
        );
        assert!(
            self.master.is_running(),
            "master died: {}",
            self.master.stderr()
        );
        let after = proc_status_kib(pid, "VmRSS");
        assert!(
            after < before + 16 * 1024,
            "the gateway grew from {before} KiB to {after} KiB while a channel was stuck"
        );
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn target(mode: &Mode) -> &'static str {
    match mode {
        Mode::Key | Mode::Jump => "anyone@127.0.0.1",
        Mode::Agent => "root@alice-ws@127.0.0.1",
    }
}

/// A box whose output nobody reads, then one that never reads its stdin.
fn stuck_both_ways(mode: Mode) {
    let mut t = Mux::start(mode, &[]);
    let mut unread = Bg::spawn_unread(&mut t.session("head -c 1073741824 /dev/zero"));
    t.assert_others_answer(&mut unread);
    let mut unfed = Bg::spawn_fed(&mut t.session("sleep 600"));
    t.assert_others_answer(&mut unfed);
}

#[test]
fn key_mode_a_stuck_channel_stalls_no_other() {
    stuck_both_ways(Mode::Key);
}

#[test]
fn agent_mode_a_stuck_channel_stalls_no_other() {
    stuck_both_ways(Mode::Agent);
}

#[test]
fn jump_mode_a_stuck_channel_stalls_no_other() {
    stuck_both_ways(Mode::Jump);
}

/// A `-L` whose local consumer connected and stopped reading while the far
/// end keeps writing.
#[test]
fn a_forward_whose_consumer_stopped_reading_stalls_no_other() {
    let source = TcpListener::bind("127.0.0.1:0").expect("bind");
    let source_port = source.local_addr().expect("addr").port();
    thread::spawn(move || {
        for stream in source.incoming() {
            let Ok(mut stream) = stream else { return };
            thread::spawn(move || {
                let chunk = vec![0u8; 64 * 1024];
                while stream.write_all(&chunk).is_ok() {}
            });
        }
    });
    let local = free_port();
    let forward = format!("{local}:127.0.0.1:{source_port}");
    let mut t = Mux::start(Mode::Key, &["-L", &forward]);
    let consumer = eventually(Duration::from_secs(10), || {
        TcpStream::connect(("127.0.0.1", local)).is_ok()
    });
    assert!(consumer, "the -L forward did not come up");
    // Held open, never read.
    let _stuck = TcpStream::connect(("127.0.0.1", local)).expect("connect -L");
    let mut probe = Bg::spawn(&mut t.session("sleep 30"));
    t.assert_others_answer(&mut probe);
}

/// Agent mode: stdin piped in at once, while the login through the agent
/// is still running, arrives whole (the session is granted window only
/// once its box channel exists).
#[test]
fn agent_mode_input_piped_at_once_arrives_byte_for_byte() {
    let t = Mux::start(Mode::Agent, &[]);
    let src = t.path("up.bin");
    random_file(&src, 64 << 20);
    let back = t.path("back.bin");
    let agent = t._agent.as_ref().expect("agent");
    let mut cmd = ssh_with_agent(t.gw.port, &t.key, agent);
    cmd.args(["-A", "root@alice-ws@127.0.0.1", "cat"]);
    assert_cat_round_trip(&mut cmd, &src, &back);
}
