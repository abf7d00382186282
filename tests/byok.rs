//! Bring your own key (SPEC §5 B, C; §6; §10) with the real OpenSSH client,
//! `ssh-agent` and `ssh-add`, and real sshd boxes on loopback:
//!
//! - agent mode: a key known only to the box logs in through the client's
//!   forwarded agent (exec, PTY, ControlMaster, bulk data), is told what to do
//!   without `-A`, and an unknown target looks exactly like a refusing box;
//! - jump mode: `ssh -J` through the gateway, end to end with the box's own host
//!   key, only for routes the key is authorized for, and never with `jump = "off"`;
//! - `-R` and agent forwarding into the box in key mode;
//! - the per-route forwarding switches.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::Duration;

use common::*;

// ---------------------------------------------------------------------------
// Helpers this file needs that the harness lacks
// ---------------------------------------------------------------------------

/// A real `ssh-agent -D -a SOCK`, holding `keys`; killed on drop.
struct Agent {
    sock: PathBuf,
    _proc: Bg,
    _dir: tempfile::TempDir,
}

impl Agent {
    fn start(keys: &[&Key]) -> Agent {
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

/// `ssh` with the test options at `level`, `-p PORT -i KEY`.
fn ssh_at(level: &str, port: u16, key: &Key) -> Command {
    let mut c = Command::new("ssh");
    c.args(client_opts_with_log_level(level))
        .arg("-p")
        .arg(port.to_string())
        .arg("-i")
        .arg(&key.path)
        .env_remove("SSH_AUTH_SOCK");
    c
}

/// `ssh -p PORT -i KEY` (test options) with `SSH_AUTH_SOCK` pointing at `agent`.
fn ssh_with_agent(port: u16, key: &Key, agent: &Agent) -> Command {
    let mut c = ssh_at("ERROR", port, key);
    c.env("SSH_AUTH_SOCK", &agent.sock);
    c
}

/// The `SHA256:…` fingerprint of a key, from the real `ssh-keygen -lf`.
fn fingerprint(key: &Key) -> String {
    let out = run(
        Command::new("ssh-keygen")
            .arg("-lf")
            .arg(format!("{}.pub", key.path.display())),
        Input::Null,
        Duration::from_secs(20),
    );
    out.assert_ok();
    out.stdout
        .split_whitespace()
        .nth(1)
        .expect("fingerprint field")
        .to_owned()
}

/// A tiny HTTP server on 127.0.0.1 that answers every request with `body`.
fn http_server(body: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind http");
    let port = listener.local_addr().expect("addr").port();
    thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            thread::spawn(move || {
                let mut conn = conn;
                let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = write!(
                    conn,
                    "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                    body.len(),
                    body
                );
            });
        }
    });
    port
}

/// A shell loop (run inside the box) that fetches `http://127.0.0.1:PORT/`,
/// retrying for a few seconds while a remote forward is being set up.
fn curl_retry(port: u16) -> String {
    format!(
        "for i in $(seq 50); do curl -s --max-time 5 http://127.0.0.1:{port}/ && exit 0; sleep 0.2; done; exit 1"
    )
}

// ---------------------------------------------------------------------------
// 1. Agent mode
// ---------------------------------------------------------------------------

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

/// Stdin that outruns the queue while the box login through the agent is
/// still going (a slow box) fails the session at once with a notice; it
/// neither hangs until the handshake timeout nor reaches the box in part.
#[test]
fn agent_mode_input_outrunning_the_login_is_refused_not_hung() {
    let t = agent_mode_with_box_delay(Duration::from_secs(3));
    let agent = Agent::start(&[&t.byok]);
    let src = t.dir.path().join("64mb.bin");
    fs::write(&src, vec![0u8; 64 * 1024 * 1024]).expect("write input");

    let out = run(
        ssh_with_agent(t.gw.port, &t.byok, &agent).args(["-A", "root@alice-ws@127.0.0.1", "wc -c"]),
        Input::File(src),
        SSH_TIMEOUT,
    );
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains(
            "switchboard: more input arrived than the gateway holds (32 MiB) before the login \
             to the box through your agent finished; nothing was sent to the box."
        ),
        "{out:?}"
    );
    assert_eq!(out.stdout, "", "nothing reached the box: {out:?}");
    // Not after upstream.handshake_timeout (10 s): at once when the box answers.
    assert!(
        out.elapsed < Duration::from_secs(9),
        "told only after {:?}",
        out.elapsed
    );
}

// ---------------------------------------------------------------------------
// 2. Jump mode
// ---------------------------------------------------------------------------

/// alice-ws and bob-ws; each key is authorized for its own route only, but
/// both boxes accept both keys for the inner, end-to-end login (so a refused
/// jump is the gateway's doing). `kh` holds only the boxes' host keys.
struct Jump {
    dir: tempfile::TempDir,
    alice: Key,
    bob: Key,
    alice_ws: SshdBox,
    bob_ws: SshdBox,
    kh: PathBuf,
}

fn jump_setup() -> Jump {
    let dir = temp_dir();
    let alice = Key::generate(dir.path(), "alice");
    let bob = Key::generate(dir.path(), "bob");
    // Both boxes accept both keys: only the gateway's policy stands in the way.
    let boxed = |name: &str| {
        SshdBox::start_with(
            name,
            BoxOptions {
                extra_authorized: vec![alice.public.clone(), bob.public.clone()],
                ..BoxOptions::default()
            },
        )
    };
    let alice_ws = boxed("alice-ws");
    let bob_ws = boxed("bob-ws");
    let kh = dir.path().join("known_hosts");
    fs::write(
        &kh,
        format!(
            "[127.0.0.1]:{} {}\n[127.0.0.1]:{} {}\n",
            alice_ws.port,
            alice_ws.host_key(),
            bob_ws.port,
            bob_ws.host_key()
        ),
    )
    .unwrap();
    Jump {
        dir,
        alice,
        bob,
        alice_ws,
        bob_ws,
        kh,
    }
}

impl Jump {
    fn routes(&self) -> String {
        routes_toml(&[
            self.alice_ws.route(&[&self.alice]),
            self.bob_ws.route(&[&self.bob]),
        ])
    }
}

/// `ssh root@TARGET 'echo $BOX'` through the gateway on `gw_port` as a jump
/// host (ProxyCommand `ssh -W %h:%p`), checking the box's host key strictly
/// (known as `alias`, e.g. `[127.0.0.1]:BOXPORT`, in `kh`).
/// `ssh` to `root@target` through the gateway as a jump host (`-W`), checking
/// the box's host key under `alias`; the remote command is appended by the caller.
fn jump_ssh(gw_port: u16, key: &Key, target: &str, alias: &str, kh: &Path) -> Command {
    let proxy = format!(
        "ssh {} -p {gw_port} -i {} -W %h:%p x@127.0.0.1",
        client_opts().join(" "),
        key.path.display()
    );
    let mut cmd = Command::new("ssh");
    cmd.args(["-F", "/dev/null"])
        .args(["-o", "StrictHostKeyChecking=yes"])
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", kh.display()))
        .arg("-o")
        .arg(format!("HostKeyAlias={alias}"))
        .args(["-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes"])
        .args(["-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR"])
        .arg("-o")
        .arg(format!("ProxyCommand={proxy}"))
        .arg("-i")
        .arg(&key.path)
        .env_remove("SSH_AUTH_SOCK")
        .arg(format!("root@{target}"));
    cmd
}

fn jump(gw_port: u16, key: &Key, target: &str, alias: &str, kh: &Path) -> Output {
    run(
        jump_ssh(gw_port, key, target, alias, kh).arg("echo $BOX"),
        Input::Null,
        SSH_TIMEOUT,
    )
}

fn alias(b: &SshdBox) -> String {
    format!("[127.0.0.1]:{}", b.port)
}

/// 10 MB both ways through a jump (the stream is spliced without buffers
/// while idle): byte-identical.
#[test]
fn jump_cat_10mb_is_byte_identical() {
    let t = jump_setup();
    let gw = Gateway::start(&t.routes());
    let src = t.dir.path().join("10mb.bin");
    let back = t.dir.path().join("back.bin");
    random_file(&src, 10 * 1024 * 1024);
    assert_cat_round_trip(
        jump_ssh(gw.port, &t.alice, "alice-ws", &alias(&t.alice_ws), &t.kh).arg("cat"),
        &src,
        &back,
    );
}

#[test]
fn jump_is_end_to_end_with_the_box_host_key() {
    let t = jump_setup();
    let gw = Gateway::start(&t.routes());
    let out = jump(gw.port, &t.alice, "alice-ws", &alias(&t.alice_ws), &t.kh);
    assert_eq!(out.assert_ok().stdout, "alice-ws\n", "{out:?}");

    // The host key really is checked: under bob-ws's alias, alice-ws's key is wrong.
    let out = jump(gw.port, &t.alice, "alice-ws", &alias(&t.bob_ws), &t.kh);
    assert_ne!(out.code, Some(0), "{out:?}");
    assert!(
        out.stderr.contains("Host key verification failed")
            || out.stderr.contains("HOST IDENTIFICATION HAS CHANGED"),
        "{out:?}"
    );
    assert!(!out.stdout.contains("alice-ws"), "{out:?}");
}

#[test]
fn real_dash_j_with_a_config_file() {
    let t = jump_setup();
    let gw = Gateway::start(&t.routes());
    let cfg = t.dir.path().join("ssh_config");
    fs::write(
        &cfg,
        format!(
            "Host gw\n  HostName 127.0.0.1\n  Port {gw_port}\n  User x\n  IdentityFile {key}\n  \
             IdentitiesOnly yes\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  \
             BatchMode yes\n  ConnectTimeout 10\n  LogLevel ERROR\n\
             Host alice-ws\n  HostKeyAlias {alias}\n  UserKnownHostsFile {kh}\n  \
             StrictHostKeyChecking yes\n  IdentityFile {key}\n  IdentitiesOnly yes\n  \
             BatchMode yes\n  ConnectTimeout 10\n  LogLevel ERROR\n",
            gw_port = gw.port,
            key = t.alice.path.display(),
            alias = alias(&t.alice_ws),
            kh = t.kh.display(),
        ),
    )
    .unwrap();
    let out = run(
        Command::new("ssh")
            .arg("-F")
            .arg(&cfg)
            .env_remove("SSH_AUTH_SOCK")
            .args(["-J", "gw", "root@alice-ws", "echo $BOX"]),
        Input::Null,
        SSH_TIMEOUT,
    );
    assert_eq!(out.assert_ok().stdout, "alice-ws\n", "{out:?}");
}

#[test]
fn jump_only_to_routes_the_key_is_authorized_for() {
    let t = jump_setup();
    let gw = Gateway::start(&t.routes());
    // bob's key is authorized for bob-ws only (route and box).
    let out = jump(gw.port, &t.bob, "alice-ws", &alias(&t.alice_ws), &t.kh);
    assert_ne!(out.code, Some(0), "{out:?}");
    // Refused at the jump hop (the gateway), not by the box.
    assert!(out.stderr.contains("stdio forwarding failed"), "{out:?}");
    assert!(!out.stdout.contains("alice-ws"), "{out:?}");

    let out = jump(gw.port, &t.bob, "bob-ws", &alias(&t.bob_ws), &t.kh);
    assert_eq!(out.assert_ok().stdout, "bob-ws\n", "{out:?}");
}

#[test]
fn jump_off_refuses_every_jump() {
    let t = jump_setup();
    let cfg = GatewayConfig {
        jump: "off".into(),
        ..GatewayConfig::default()
    };
    let gw = Gateway::start_with(&cfg, &t.routes());
    for (key, target, b) in [
        (&t.alice, "alice-ws", &t.alice_ws),
        (&t.bob, "bob-ws", &t.bob_ws),
    ] {
        let out = jump(gw.port, key, target, &alias(b), &t.kh);
        assert_ne!(out.code, Some(0), "{out:?}");
        assert!(out.stderr.contains("stdio forwarding failed"), "{out:?}");
        assert!(!out.stdout.contains(target), "{out:?}");
    }
    // The gateway itself still works in key mode.
    let out = ssh(gw.port, &t.alice, &["anyone@127.0.0.1", "echo $BOX"]);
    assert_eq!(out.assert_ok().stdout, "alice-ws\n", "{out:?}");
}

// ---------------------------------------------------------------------------
// 3. -R and 4. agent forwarding into the box, key mode
// ---------------------------------------------------------------------------

/// alice-ws behind a gateway, alice's key authorized for the route.
struct KeyMode {
    _dir: tempfile::TempDir,
    key: Key,
    gw: Gateway,
    ws: SshdBox,
}

fn key_mode(forwarding: Option<[bool; 3]>) -> KeyMode {
    let dir = temp_dir();
    let key = Key::generate(dir.path(), "alice");
    let ws = SshdBox::start("alice-ws");
    let mut route = ws.route(&[&key]);
    route.forwarding = forwarding;
    let gw = Gateway::start(&routes_toml(&[route]));
    KeyMode {
        _dir: dir,
        key,
        gw,
        ws,
    }
}

const BODY: &str = "hello-from-the-test-side\n";

#[test]
fn remote_forward_serves_a_test_side_port() {
    let t = key_mode(None);
    let w = http_server(BODY);
    let p = free_port();
    let out = run(
        ssh_at("ERROR", t.gw.port, &t.key)
            .args(["-o", "ExitOnForwardFailure=yes", "-R"])
            .arg(format!("127.0.0.1:{p}:127.0.0.1:{w}"))
            .args(["anyone@127.0.0.1", &curl_retry(p)]),
        Input::Null,
        SSH_TIMEOUT,
    );
    assert_eq!(out.assert_ok().stdout, BODY, "{out:?}");
}

#[test]
fn remote_forward_port_zero_is_allocated_and_served() {
    let t = key_mode(None);
    let w = http_server(BODY);
    // Short form: exit 0 and "Allocated port N" at INFO.
    let out = run(
        ssh_at("INFO", t.gw.port, &t.key)
            .args(["-o", "ExitOnForwardFailure=yes", "-R"])
            .arg(format!("0:127.0.0.1:{w}"))
            .args(["anyone@127.0.0.1", "sleep 1; echo done"]),
        Input::Null,
        SSH_TIMEOUT,
    );
    out.assert_ok();
    assert!(out.stderr.contains("Allocated port "), "{out:?}");

    // And the allocated port really serves: keep the forward up, fetch through it.
    let fwd = Bg::spawn(
        ssh_at("INFO", t.gw.port, &t.key)
            .args(["-N", "-o", "ExitOnForwardFailure=yes", "-R"])
            .arg(format!("0:127.0.0.1:{w}"))
            .arg("anyone@127.0.0.1"),
    );
    let mut allocated = None;
    let seen = eventually(Duration::from_secs(20), || {
        allocated = fwd
            .stderr()
            .split("Allocated port ")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|n| n.parse::<u16>().ok());
        allocated.is_some()
    });
    assert!(seen, "no \"Allocated port\": {}", fwd.stderr());
    let n = allocated.unwrap();
    let out = ssh(t.gw.port, &t.key, &["anyone@127.0.0.1", &curl_retry(n)]);
    assert_eq!(out.assert_ok().stdout, BODY, "{out:?}");
    assert!(t.ws.port > 0);
}

#[test]
fn agent_forwarding_into_the_box_in_key_mode() {
    let t = key_mode(None);
    let agent = Agent::start(&[&t.key]);
    let out = run(
        ssh_with_agent(t.gw.port, &t.key, &agent).args(["-A", "anyone@127.0.0.1", "ssh-add -l"]),
        Input::Null,
        SSH_TIMEOUT,
    );
    out.assert_ok();
    let fp = fingerprint(&t.key);
    assert!(out.stdout.contains(&fp), "expected {fp}: {out:?}");
}

// ---------------------------------------------------------------------------
// 5. Per-route forwarding switches
// ---------------------------------------------------------------------------

#[test]
fn forwarding_switches_off_refuse_w_l_r_and_agent() {
    let t = key_mode(Some([false, false, false]));
    let port = t.gw.port;

    // -W
    let out = run(
        ssh_at("INFO", port, &t.key).args([
            "-W",
            &format!("127.0.0.1:{}", t.ws.port),
            "anyone@127.0.0.1",
        ]),
        Input::Null,
        SSH_TIMEOUT,
    );
    assert_ne!(out.code, Some(0), "{out:?}");
    assert!(
        out.stderr.contains("administratively prohibited"),
        "{out:?}"
    );
    assert!(!out.stdout.contains("SSH-2.0"), "{out:?}");

    // -L: the forward listens, but its channel is refused.
    let echo = echo_server();
    let mut done = false;
    for _attempt in 0..5 {
        let lport = free_port();
        let mut fwd = Bg::spawn(ssh_at("INFO", port, &t.key).args([
            "-N",
            "-o",
            "ExitOnForwardFailure=yes",
            "-L",
            &format!("127.0.0.1:{lport}:127.0.0.1:{echo}"),
            "anyone@127.0.0.1",
        ]));
        let listening = eventually(Duration::from_secs(15), || {
            !fwd.is_running() || TcpStream::connect(("127.0.0.1", lport)).is_ok()
        });
        if !fwd.is_running() {
            continue; // the local port was taken under us
        }
        assert!(listening, "ssh -L never listened: {}", fwd.stderr());
        let mut conn = TcpStream::connect(("127.0.0.1", lport)).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let _ = conn.write_all(b"ping\n");
        let mut got = Vec::new();
        let _ = conn.read_to_end(&mut got);
        assert!(
            got.is_empty(),
            "data came back through a refused -L: {got:?}"
        );
        let refused = eventually(Duration::from_secs(10), || {
            fwd.stderr().contains("administratively prohibited")
        });
        assert!(refused, "ssh -L stderr: {}", fwd.stderr());
        done = true;
        break;
    }
    assert!(done, "could not find a free local port for -L");

    // -R
    let p = free_port();
    let out = run(
        ssh_at("ERROR", port, &t.key)
            .args(["-N", "-o", "ExitOnForwardFailure=yes", "-R"])
            .arg(format!("127.0.0.1:{p}:127.0.0.1:{echo}"))
            .arg("anyone@127.0.0.1"),
        Input::Null,
        SSH_TIMEOUT,
    );
    assert_eq!(out.code, Some(255), "{out:?}");
    assert!(
        out.stderr.contains("remote port forwarding failed"),
        "{out:?}"
    );

    // -A: no agent inside the box.
    let agent = Agent::start(&[&t.key]);
    let out = run(
        ssh_with_agent(port, &t.key, &agent).args(["-A", "anyone@127.0.0.1", "ssh-add -l"]),
        Input::Null,
        SSH_TIMEOUT,
    );
    assert!(matches!(out.code, Some(1) | Some(2)), "{out:?}");
    assert!(!out.stdout.contains(&fingerprint(&t.key)), "{out:?}");

    // Sessions still work.
    let out = t.gw.ssh(&t.key, &["anyone@127.0.0.1", "echo $BOX"]);
    assert_eq!(out.assert_ok().stdout, "alice-ws\n", "{out:?}");
}
