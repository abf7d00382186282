//! Agent mode (SPEC §5 B, §10) with the real OpenSSH client, `ssh-agent` and
//! `ssh-add`, and a real sshd box on loopback: a key known only to the box
//! logs in through the client's forwarded agent (exec, PTY, ControlMaster,
//! bulk data), is told what to do without `-A`, input outrunning the login is
//! refused at once, and an unknown target looks exactly like a refusing box.

mod common;

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::thread;
use std::time::Duration;

use common::agent::*;
use common::*;

/// alice-ws behind a gateway with `agent_login = true`. `byok` is in the box's
/// own authorized_keys and in no route's; `route_key` is the route's only key.
struct AgentMode {
    dir: tempfile::TempDir,
    byok: Key,
    gw: Gateway,
    ws: SshdBox,
}

fn agent_mode() -> AgentMode {
    agent_mode_with_box_delay(Duration::ZERO)
}

/// [`agent_mode`] with the box reached through a forwarder that waits
/// `delay` before connecting (a box slow to answer; zero: direct).
fn agent_mode_with_box_delay(delay: Duration) -> AgentMode {
    let dir = temp_dir();
    let byok = Key::generate(dir.path(), "byok");
    let route_key = Key::generate(dir.path(), "route-key");
    let ws = SshdBox::start_with(
        "alice-ws",
        BoxOptions {
            extra_authorized: vec![byok.public.clone()],
            ..BoxOptions::default()
        },
    );
    let cfg = GatewayConfig {
        agent_login: true,
        ..GatewayConfig::default()
    };
    let mut route = ws.route(&[&route_key]);
    if !delay.is_zero() {
        route.address = format!("127.0.0.1:{}", slow_forwarder(ws.port, delay));
    }
    let gw = Gateway::start_with(&cfg, &routes_toml(&[route]));
    AgentMode { dir, byok, gw, ws }
}

const NOT_REGISTERED: &str = "switchboard: your key is not registered for alice-ws; \
     reconnect with ssh -A (agent forwarding) or ssh -J";

#[test]
fn agent_mode_exec_and_tty_through_the_forwarded_agent() {
    let t = agent_mode();
    let agent = Agent::start(&[&t.byok]);
    let port = t.gw.port;

    let out = run(
        ssh_with_agent(port, &t.byok, &agent).args(["-A", "root@alice-ws@127.0.0.1", "echo $BOX"]),
        Input::Null,
        SSH_TIMEOUT,
    );
    assert_eq!(out.assert_ok().stdout, "alice-ws\n", "{out:?}");

    let out = run(
        ssh_with_agent(port, &t.byok, &agent).args([
            "-A",
            "-tt",
            "root@alice-ws@127.0.0.1",
            "tty; id -un",
        ]),
        Input::Null,
        SSH_TIMEOUT,
    );
    out.assert_ok();
    assert!(out.stdout.contains("/dev/pts/"), "{out:?}");
    assert!(out.stdout.lines().any(|l| l.trim() == "root"), "{out:?}");
    assert!(t.ws.port > 0);
}

#[test]
fn agent_mode_without_agent_forwarding_is_told_what_to_do() {
    let t = agent_mode();
    let agent = Agent::start(&[&t.byok]);
    let out = run(
        ssh_with_agent(t.gw.port, &t.byok, &agent).args([
            "-a",
            "root@alice-ws@127.0.0.1",
            "echo $BOX",
        ]),
        Input::Null,
        SSH_TIMEOUT,
    );
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains(NOT_REGISTERED), "{out:?}");
    assert!(!out.stdout.contains("alice-ws"), "{out:?}");
    assert!(
        out.elapsed < Duration::from_secs(15),
        "took {:?}: {out:?}",
        out.elapsed
    );
}

#[test]
fn agent_mode_without_agent_forwarding_unknown_target_looks_the_same() {
    // SPEC §5: unknown target and unauthorized key must look the same.
    let t = agent_mode();
    let agent = Agent::start(&[&t.byok]);
    let known = run(
        ssh_with_agent(t.gw.port, &t.byok, &agent).args(["-a", "root@alice-ws@127.0.0.1", "true"]),
        Input::Null,
        SSH_TIMEOUT,
    );
    let unknown = run(
        ssh_with_agent(t.gw.port, &t.byok, &agent).args(["-a", "root@nope-ws@127.0.0.1", "true"]),
        Input::Null,
        SSH_TIMEOUT,
    );
    assert_eq!(known.code, Some(1), "{known:?}");
    assert_eq!(unknown.code, known.code, "{unknown:?}\n{known:?}");
    assert_eq!(
        unknown.stderr.replace("nope-ws", "TARGET"),
        known.stderr.replace("alice-ws", "TARGET"),
        "{unknown:?}\n{known:?}"
    );
}

#[test]
fn agent_mode_unknown_target_looks_like_a_refusing_box() {
    let t = agent_mode();
    let agent = Agent::start(&[&t.byok]);
    let stranger = Key::generate(t.dir.path(), "stranger");
    let stranger_agent = Agent::start(&[&stranger]);
    let port = t.gw.port;
    let attempt = |key: &Key, agent: &Agent, dest: &str| {
        run(
            ssh_with_agent(port, key, agent).args(["-A", dest, "echo $BOX"]),
            Input::Null,
            SSH_TIMEOUT,
        )
    };

    // A target that does not exist.
    let nope = attempt(&t.byok, &agent, "root@nope-ws@127.0.0.1");
    // A real box refusing: no such user there.
    let no_user = attempt(&t.byok, &agent, "nobodyxyz@alice-ws@127.0.0.1");
    // A real box refusing: the agent's key is not in its authorized_keys.
    let no_key = attempt(&stranger, &stranger_agent, "root@alice-ws@127.0.0.1");

    assert!(
        nope.stderr
            .contains("switchboard: nope-ws refused login as root"),
        "{nope:?}"
    );
    assert!(
        no_user
            .stderr
            .contains("switchboard: alice-ws refused login as nobodyxyz"),
        "{no_user:?}"
    );
    assert!(
        no_key
            .stderr
            .contains("switchboard: alice-ws refused login as root"),
        "{no_key:?}"
    );
    for out in [&nope, &no_user, &no_key] {
        assert_ne!(out.code, Some(0), "{out:?}");
        assert_eq!(out.code, nope.code, "{out:?}\n{nope:?}");
        assert_eq!(out.stdout, "", "{out:?}");
    }
    // Identical shapes modulo the names.
    let shape = |s: &str| {
        s.replace("nope-ws", "TARGET")
            .replace("alice-ws", "TARGET")
            .replace("nobodyxyz", "USER")
            .replace("as root", "as USER")
    };
    assert_eq!(
        shape(&nope.stderr),
        shape(&no_user.stderr),
        "{nope:?}\n{no_user:?}"
    );
    assert_eq!(
        shape(&nope.stderr),
        shape(&no_key.stderr),
        "{nope:?}\n{no_key:?}"
    );
}

/// Runs `ssh -O exit` for a ControlMaster on drop (the master daemonized itself
/// out of our process group).
struct MasterGuard {
    ctl: PathBuf,
    port: u16,
}

impl Drop for MasterGuard {
    fn drop(&mut self) {
        let _ = run(
            Command::new("ssh")
                .args(client_opts())
                .arg("-o")
                .arg(format!("ControlPath={}", self.ctl.display()))
                .args([
                    "-p",
                    &self.port.to_string(),
                    "-O",
                    "exit",
                    "root@alice-ws@127.0.0.1",
                ]),
            Input::Null,
            Duration::from_secs(10),
        );
    }
}

#[test]
fn agent_mode_two_sessions_at_once_over_a_controlmaster() {
    let t = agent_mode();
    let agent = Agent::start(&[&t.byok]);
    let port = t.gw.port;
    let ctl = t.dir.path().join("ctl");
    let ctl_opt = format!("ControlPath={}", ctl.display());
    let dest = "root@alice-ws@127.0.0.1";

    let master = Bg::spawn(ssh_with_agent(port, &t.byok, &agent).args([
        "-A",
        "-o",
        "ControlMaster=yes",
        "-o",
        &ctl_opt,
        "-o",
        "ControlPersist=30",
        "-fN",
        dest,
    ]));
    let _guard = MasterGuard {
        ctl: ctl.clone(),
        port,
    };
    let master = master.wait(SSH_TIMEOUT);
    master.assert_ok();
    let check = run(
        ssh_with_agent(port, &t.byok, &agent).args(["-o", &ctl_opt, "-O", "check", dest]),
        Input::Null,
        SSH_TIMEOUT,
    );
    check.assert_ok();

    let mux = |cmd: &str| {
        let mut c = ssh_with_agent(port, &t.byok, &agent);
        c.args(["-A", "-o", &ctl_opt, dest, cmd]);
        c
    };
    let mut slow = Bg::spawn(&mut mux("sleep 3; echo a"));
    thread::sleep(Duration::from_millis(300));
    let fast = run(&mut mux("echo b"), Input::Null, SSH_TIMEOUT);
    assert_eq!(fast.assert_ok().stdout, "b\n", "{fast:?}");
    assert!(
        slow.is_running(),
        "session 2 should finish while session 1 still sleeps"
    );
    let slow = slow.wait(SSH_TIMEOUT);
    assert_eq!(slow.assert_ok().stdout, "a\n", "{slow:?}");

    let exit = run(
        ssh_with_agent(port, &t.byok, &agent).args(["-o", &ctl_opt, "-O", "exit", dest]),
        Input::Null,
        SSH_TIMEOUT,
    );
    exit.assert_ok();
    assert!(
        eventually(Duration::from_secs(10), || !ctl.exists()),
        "the master's socket is still there after -O exit"
    );
}

#[test]
fn agent_mode_cat_10mb_is_byte_identical() {
    let t = agent_mode();
    let agent = Agent::start(&[&t.byok]);
    let src = t.dir.path().join("10mb.bin");
    let back = t.dir.path().join("back.bin");
    random_file(&src, 10 * 1024 * 1024);
    assert_cat_round_trip(
        ssh_with_agent(t.gw.port, &t.byok, &agent).args(["-A", "root@alice-ws@127.0.0.1", "cat"]),
        &src,
        &back,
    );
}

/// Stdin piped in at once while the box login through the agent is still
/// going (a slow box) waits in the client: no window is granted to the
/// session before its box channel exists, so the gateway holds none of it,
/// and all of it reaches the box once the login is done.
#[test]
fn agent_mode_input_piped_before_a_slow_login_arrives_whole() {
    let t = agent_mode_with_box_delay(Duration::from_secs(3));
    let agent = Agent::start(&[&t.byok]);
    let src = t.dir.path().join("64mb.bin");
    fs::write(&src, vec![0u8; 64 * 1024 * 1024]).expect("write input");

    let out = run(
        ssh_with_agent(t.gw.port, &t.byok, &agent).args(["-A", "root@alice-ws@127.0.0.1", "wc -c"]),
        Input::File(src),
        SSH_TIMEOUT,
    );
    assert_eq!(out.assert_ok().stdout.trim(), "67108864", "{out:?}");
}
