//! What a hostile client cannot cost the gateway (SPEC §12, issue 13): flood
//! its memory before it is authorized, or open channels without bound. Real
//! OpenSSH clients (and a Paramiko client where OpenSSH plays by the rules)
//! against real sshd boxes on loopback.
//!
//! Each test says what the code before issue 13 (496627e) does instead;
//! run on f302a54 (the fix's parent, this harness) every one of them fails:
//! the flood took the gateway from 32 to 413 MiB (96 MiB now), 1,024
//! oversized packets were taken without a cut (233 MiB), and a third
//! session ran.
//!
//! What a hostile party can learn or reach (routes, boxes, agents) is in
//! `security_reach.rs`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::agent::*;
use common::attack::*;
use common::*;

/// KiB (what `/proc/PID/status` counts in) per MiB.
const MIB: u64 = 1024;

// ---------------------------------------------------------------------------
// 1. Memory: a provisional client holds a bounded amount of input
// ---------------------------------------------------------------------------

/// An OpenSSH ControlMaster (`-N`, not daemonized: killed with the test) on
/// `ctl`, connecting from `source`; returns once its socket is up.
fn master(mut ssh: Command, ctl: &Path, source: &str, dest: &str) -> Bg {
    let mut bg = Bg::spawn(
        ssh.args(["-A", "-N", "-b", source])
            .args(["-o", "ControlMaster=yes", "-o"])
            .arg(format!("ControlPath={}", ctl.display()))
            .arg(dest),
    );
    let up = eventually(Duration::from_secs(15), || !bg.is_running() || ctl.exists());
    assert!(
        up && bg.is_running(),
        "master for {dest} from {source} did not come up: {}",
        bg.stderr()
    );
    bg
}

/// `head -c 200M /dev/zero | ssh -S ctl -A dest 'cat >/dev/null'`: a session
/// over the master whose stdin is a flood.
fn flood_session(ctl: &Path, dest: &str) -> Bg {
    let ssh = format!(
        "head -c 200M /dev/zero | ssh {} -o ControlPath={} -A {dest} 'cat >/dev/null'",
        client_opts().join(" "),
        ctl.display()
    );
    Bg::spawn(Command::new("sh").args(["-c", &ssh]))
}

/// Four hostile agent-mode connections (four sources, so neither the
/// per-source cap on agent logins nor anything per address stops them early)
/// with three flooding sessions each, aimed at a box that never finishes its
/// handshake: the agent login stays pending for `handshake_timeout` (6 s)
/// while 12 × 200 MiB of stdin wait to be sent. No session is granted any
/// window before its box channel exists (relay::flow), so the clients cannot
/// send a byte of it and the gateway holds none: its peak RSS (VmHWM) may
/// grow only by the connections' own state, bound 16 MiB. (On 496627e each
/// session queued 1,024 packets of up to 32 KiB, 384 MiB here; with the
/// byte allowance of a18a6be, up to 64 MiB.)
#[test]
fn a_flood_of_pending_input_costs_bounded_memory() {
    let dir = temp_dir();
    let owner = Key::generate(dir.path(), "owner");
    let stranger = Key::generate(dir.path(), "stranger");
    let ws = SshdBox::start("alice-ws");
    let mut slow = Route::new("slow-ws", &format!("127.0.0.1:{}", black_hole()));
    slow.user = Some("root".into());
    let cfg = GatewayConfig {
        agent_login: true,
        handshake_timeout: "6s".into(),
        // "input outran the agent login" is a debug line of the relay.
        log_level: "info,switchboard::relay::session=debug".into(),
        ..GatewayConfig::default()
    };
    let mut gw = Gateway::spawn_with(&cfg, &routes_toml(&[ws.route(&[&owner]), slow]));
    let pid = gw.pid();
    // Warm up the paths a legitimate login takes, then measure.
    let out = gw.ssh(&owner, &["anyone@127.0.0.1", "echo $BOX"]);
    assert_eq!(out.assert_ok().stdout, "alice-ws\n", "{out:?}");
    thread::sleep(Duration::from_millis(300));
    let before = proc_status_kib(pid, "VmRSS");

    let agent = Agent::start(&[&stranger]);
    let dest = "root@slow-ws@127.0.0.1";
    let mut masters = Vec::new();
    let mut floods = Vec::new();
    let ctls: Vec<PathBuf> = (0..4).map(|i| dir.path().join(format!("c{i}"))).collect();
    for (i, ctl) in ctls.iter().enumerate() {
        let source = format!("127.0.0.{}", i + 2);
        masters.push(master(
            ssh_with_agent(gw.port, &stranger, &agent),
            ctl,
            &source,
            dest,
        ));
    }
    let started = Instant::now();
    for ctl in &ctls {
        for _ in 0..3 {
            floods.push(flood_session(ctl, dest));
        }
    }
    let (mut peak, mut peak_at) = (before, Duration::ZERO);
    while floods.iter_mut().any(Bg::is_running) && started.elapsed() < Duration::from_secs(20) {
        let rss = proc_status_kib(pid, "VmRSS");
        if rss > peak {
            (peak, peak_at) = (rss, started.elapsed());
        }
        thread::sleep(Duration::from_millis(50));
    }
    let hwm = proc_status_kib(pid, "VmHWM");
    let outs: Vec<Output> = floods
        .into_iter()
        .map(|f| f.wait(Duration::from_secs(5)))
        .collect();
    let took = started.elapsed();
    let after = proc_status_kib(pid, "VmRSS");
    eprintln!(
        "gateway RSS: before {} MiB, sampled peak {} MiB ({peak_at:.1?} in), VmHWM {} MiB, \
         after {} MiB; 12 flooding sessions over 4 connections ended after {took:.1?}",
        before / MIB,
        peak / MIB,
        hwm / MIB,
        after / MIB
    );

    // Every flood ended with the one refusal (once the login fails, that is
    // what a session is told, overflowed or not) …
    for out in &outs {
        assert_eq!(out.code, Some(1), "{out:?}");
        assert!(
            out.stderr
                .contains("switchboard: slow-ws refused login as root"),
            "{out:?}"
        );
    }
    // … and none had anything to queue: the window held the data back.
    let outran = gw
        .log()
        .lines()
        .filter(|l| l.contains("outran the agent login"))
        .count();
    assert_eq!(outran, 0, "a session queued input before its box channel");
    let growth = hwm.saturating_sub(before);
    assert!(
        growth < 16 * MIB,
        "the gateway grew by {} MiB (VmHWM {} MiB, before {} MiB)",
        growth / MIB,
        hwm / MIB,
        before / MIB
    );

    // And it still serves a legitimate key-mode user, at once.
    drop(masters);
    let out = gw.ssh(&owner, &["anyone@127.0.0.1", "echo $BOX"]);
    assert_eq!(out.assert_ok().stdout, "alice-ws\n", "{out:?}");
    assert!(out.elapsed < Duration::from_secs(5), "{out:?}");
}

/// A client that ignores the window the gateway granted (Paramiko writing
/// raw CHANNEL_DATA of the allowed 32 KiB, 32 MiB in all, to a session whose
/// box runs nothing that reads) is disconnected once it is past the window:
/// the gateway holds at most one window for the channel, not what was sent.
#[test]
fn a_client_sending_past_its_window_is_disconnected() {
    let dir = temp_dir();
    let owner = Key::generate(dir.path(), "owner");
    let ws = SshdBox::start("alice-ws");
    let mut gw = Gateway::spawn(&routes_toml(&[ws.route(&[&owner])]));
    let pid = gw.pid();
    gw.ssh(&owner, &["anyone@127.0.0.1", "true"]).assert_ok();
    let before = proc_status_kib(pid, "VmRSS");

    let verdict = oversize(gw.port, &owner, "anyone", 32 * 1024, 1024);
    let hwm = proc_status_kib(pid, "VmHWM");
    eprintln!("past the window: {verdict}; RSS before {before} KiB, VmHWM after {hwm} KiB");
    assert_eq!(verdict["authenticated"], true, "{verdict}");
    assert_eq!(verdict["cut"], true, "{verdict}");
    let sent = verdict["sent"].as_u64().unwrap_or(u64::MAX);
    assert!(sent < 1024, "all {sent} packets were taken: {verdict}");
    assert!(
        hwm < before + 16 * MIB,
        "grew from {before} KiB to {hwm} KiB"
    );
    let (_, metrics) = gw.admin_get("/metrics");
    assert!(
        metrics
            .lines()
            .any(|l| l.contains("limit=\"window\"") && !l.ends_with(" 0")),
        "no window limit counted:\n{metrics}"
    );
    assert!(
        gw.log()
            .contains("sent past its channel window; disconnected"),
        "{}",
        gw.log()
    );
}

/// A client that sends CHANNEL_DATA packets of 200 KiB (the gateway
/// advertises 32 KiB; russh's transport would take up to 256 KiB) on a
/// provisional agent-mode session is cut off at the first one: the
/// connection ends, the gateway's RSS stays flat and `/metrics` counts the
/// limit. On 496627e nothing checked the size: 1,024 such packets were
/// queued on the pending session (200 MiB; the issue saw 218 MB).
#[test]
fn packets_over_the_advertised_maximum_end_the_connection() {
    let dir = temp_dir();
    let owner = Key::generate(dir.path(), "owner");
    let stranger = Key::generate(dir.path(), "stranger");
    let ws = SshdBox::start("alice-ws");
    let cfg = GatewayConfig {
        agent_login: true,
        ..GatewayConfig::default()
    };
    let mut gw = Gateway::spawn_with(&cfg, &routes_toml(&[ws.route(&[&owner])]));
    let pid = gw.pid();
    gw.ssh(&owner, &["anyone@127.0.0.1", "true"]).assert_ok();
    let before = proc_status_kib(pid, "VmRSS");

    let verdict = oversize(gw.port, &stranger, "root@alice-ws", 200 * 1024, 1024);
    let hwm = proc_status_kib(pid, "VmHWM");
    eprintln!(
        "oversized packets: {verdict}; gateway RSS before {} MiB, VmHWM after {} MiB",
        before / MIB,
        hwm / MIB
    );
    assert_eq!(verdict["authenticated"], true, "{verdict}");
    assert_eq!(verdict["cut"], true, "{verdict}");
    // The client writes into its socket buffers before it sees the cut; the
    // gateway read one packet of them.
    let sent = verdict["sent"].as_u64().unwrap_or(u64::MAX);
    assert!(sent < 1024, "all {sent} packets were taken: {verdict}");
    let growth = hwm.saturating_sub(before);
    assert!(growth < 16 * MIB, "grew by {} MiB", growth / MIB);

    // A session still waiting for its agent login has no window yet, so the
    // first packet is past the window before it is too large: either limit.
    let (_, metrics) = gw.admin_get("/metrics");
    assert!(
        metrics
            .lines()
            .any(|l| (l.contains("max_packet") || l.contains("\"window\""))
                && !l.starts_with('#')
                && !l.ends_with(" 0")),
        "no max_packet or window limit counted:\n{metrics}"
    );
    let out = gw.ssh(&owner, &["anyone@127.0.0.1", "echo $BOX"]);
    assert_eq!(out.assert_ok().stdout, "alice-ws\n", "{out:?}");
}

// ---------------------------------------------------------------------------
// 2. Channel caps
// ---------------------------------------------------------------------------

/// A key-mode OpenSSH ControlMaster (`-N`, not daemonized: killed with the
/// test) at LogLevel INFO, where OpenSSH logs a refused channel open with
/// its text; its sessions are `ssh -o ControlPath=…` mux clients.
struct Master {
    bg: Bg,
    ctl: PathBuf,
    port: u16,
    key: Key,
}

impl Master {
    fn start(gw: &Gateway, key: &Key, dir: &Path) -> Master {
        let ctl = dir.join("ctl");
        let mut bg = Bg::spawn(
            ssh_at("INFO", gw.port, key)
                .args(["-N", "-o", "ControlMaster=yes", "-o"])
                .arg(format!("ControlPath={}", ctl.display()))
                .arg(MASTER_DEST),
        );
        let up = eventually(Duration::from_secs(15), || !bg.is_running() || ctl.exists());
        assert!(
            up && bg.is_running(),
            "master did not come up: {}",
            bg.stderr()
        );
        Master {
            bg,
            ctl,
            port: gw.port,
            key: key.clone(),
        }
    }

    /// A session over the master. When the master refuses it, OpenSSH would
    /// fall back to a connection of its own: this one cannot connect.
    fn mux(&self, cmd: &str) -> Command {
        let mut c = ssh_at("ERROR", self.port, &self.key);
        c.arg("-o")
            .arg(format!("ControlPath={}", self.ctl.display()))
            .args(["-o", "ProxyCommand=false", MASTER_DEST, cmd]);
        c
    }

    fn log(&self) -> String {
        self.bg.stderr()
    }
}

const MASTER_DEST: &str = "anyone@127.0.0.1";

/// alice-ws for `owner`, behind an in-process gateway with
/// `server.max_sessions = 2`.
fn two_sessions_each() -> (tempfile::TempDir, Key, SshdBox, Gateway) {
    let dir = temp_dir();
    let owner = Key::generate(dir.path(), "owner");
    let ws = SshdBox::start("alice-ws");
    let cfg = GatewayConfig {
        server_extra: "max_sessions = 2".into(),
        ..GatewayConfig::default()
    };
    let gw = Gateway::start_with(&cfg, &routes_toml(&[ws.route(&[&owner])]));
    (dir, owner, ws, gw)
}

/// An authorized key's ControlMaster with `server.max_sessions = 2`: two
/// sessions run, a third is refused with the reason (OpenSSH logs the
/// channel-open failure text in the master; the mux client says "Session
/// open refused by peer"). On 496627e there was no cap: the third ran.
#[test]
fn sessions_beyond_max_sessions_are_refused_with_the_reason() {
    let (dir, owner, ws, gw) = two_sessions_each();
    let master = Master::start(&gw, &owner, dir.path());
    // Each session leaves a mark on the box (same filesystem) once it runs.
    let session = |name: &str| {
        let mark = ws.path(name);
        Bg::spawn(&mut master.mux(&format!("touch {}; sleep 3; echo {name}", mark.display())))
    };
    let one = session("one");
    let two = session("two");
    assert!(
        eventually(Duration::from_secs(10), || ws.path("one").exists()
            && ws.path("two").exists()),
        "two sessions did not start"
    );
    let third = run(&mut master.mux("echo three"), Input::Null, SSH_TIMEOUT);
    assert_ne!(third.code, Some(0), "{third:?}");
    assert!(!third.stdout.contains("three"), "{third:?}");
    assert!(
        third.stderr.contains("Session open refused by peer"),
        "{third:?}"
    );
    let text = "open failed: administratively prohibited: switchboard: too many \
                sessions on this connection (server.max_sessions = 2); close one, or open \
                another connection";
    assert!(
        eventually(Duration::from_secs(5), || master.log().contains(text)),
        "master log: {}\nthird: {third:?}",
        master.log()
    );
    assert_eq!(one.wait(SSH_TIMEOUT).assert_ok().stdout, "one\n");
    assert_eq!(two.wait(SSH_TIMEOUT).assert_ok().stdout, "two\n");
}

/// The cap counts sessions open now: sessions that ended give their slot
/// back, so one master runs any number of sessions one after another (what
/// ControlMaster users and IDEs do all day).
///
/// The gateway sends CHANNEL_CLOSE first when the box ends a session; russh
/// removes the channel at once and then drops the client's answering CLOSE
/// without calling `Handler::channel_close` (russh server/encrypted.rs,
/// `is_established_channel`), so the relay itself says when it has ended.
#[test]
fn ended_sessions_give_their_slot_back() {
    let (dir, owner, _ws, gw) = two_sessions_each();
    let master = Master::start(&gw, &owner, dir.path());
    for i in 0..5 {
        let out = run(
            &mut master.mux(&format!("echo {i}")),
            Input::Null,
            SSH_TIMEOUT,
        );
        assert_eq!(
            out.stdout,
            format!("{i}\n"),
            "session {i} after {i} ended: {out:?}\nmaster log: {}",
            master.log()
        );
    }
}
