//! High availability under a real load balancer: HAProxy (Debian's) in front
//! of three gateway replicas, sending PROXY v2 and health-checking `/readyz`,
//! with `retries 0` so HAProxy hides no refused connection. A rolling restart
//! (SIGTERM one replica, start its successor on the same ports once it is
//! gone, next) runs while clients connect in a loop and long sessions run:
//! no new connection fails, every session that ends within `shutdown_grace`
//! completes, and every client sees the one host key (strict known_hosts).
//!
//! What makes it true is `server.accept_after_unready`: on SIGTERM `/readyz`
//! turns 503 at once while the listener keeps accepting, so HAProxy (like
//! Endpoints and cloud load balancers) stops sending before anything is refused.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::*;

const REPLICAS: usize = 3;
/// The replicas' rollout settings (what the chart sets, scaled down).
const SERVER: &str = "accept_after_unready = \"2s\"\nshutdown_grace = \"10s\"\n\
                      per_source_exempt = [\"127.0.0.0/8\"]";
/// A long session: ends well within shutdown_grace.
const LONG: &str = "sleep 3; echo done";

/// One replica: the binary on fixed ports, so its successor takes its place.
struct Replica {
    port: u16,
    admin: u16,
    config: PathBuf,
    log: PathBuf,
    child: Child,
}

impl Replica {
    fn start(dir: &Path, index: usize, generation: usize, port: u16, admin: u16) -> Replica {
        let routes = dir.join("routes.toml");
        let config = dir.join(format!("replica-{index}.toml"));
        let text = GatewayConfig::proxied(SERVER).render(
            &format!("127.0.0.1:{port}"),
            &format!("127.0.0.1:{admin}"),
            &routes,
        );
        fs::write(&config, text).expect("config");
        let log = dir.join(format!("replica-{index}-{generation}.log"));
        let out = fs::File::create(&log).expect("log");
        let child = switchboard(dir)
            .args(["serve", "--config"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log fd"))
            .stderr(out)
            .spawn()
            .expect("spawn switchboard");
        let mut r = Replica {
            port,
            admin,
            config,
            log,
            child,
        };
        let ready = eventually(Duration::from_secs(20), || {
            matches!(r.child.try_wait(), Ok(None)) && readyz(r.admin) == 200
        });
        assert!(ready, "replica {index} did not become ready:\n{}", r.log());
        r
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn terminate(&mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits for the process to exit: its exit code.
    fn wait(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        None
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = &self.config;
    }
}

/// The status code of `GET /readyz` on `admin`, 0 when nothing answers.
fn readyz(admin: u16) -> u16 {
    http_get(admin, "/readyz").0
}

/// HAProxy's view of each server: `(name, status)` from `show stat`.
fn haproxy_servers(socket: &Path) -> Vec<(String, String)> {
    let Ok(mut s) = UnixStream::connect(socket) else {
        return Vec::new();
    };
    let _ = s.write_all(b"show stat\n");
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    text.lines()
        .filter(|l| l.starts_with("gw,") && !l.contains("BACKEND"))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            Some((f.get(1)?.to_string(), f.get(17)?.to_string()))
        })
        .collect()
}

fn haproxy_config(dir: &Path, front: u16, replicas: &[(u16, u16)]) -> String {
    let servers: String = replicas
        .iter()
        .enumerate()
        .map(|(i, (port, admin))| {
            format!("  server g{i} 127.0.0.1:{port} send-proxy-v2 check port {admin}\n")
        })
        .collect();
    format!(
        "global\n  stats socket {sock} mode 600 level admin\n\n\
         defaults\n  mode tcp\n  timeout connect 2s\n  timeout client 60s\n  \
         timeout server 60s\n  retries 0\n\n\
         frontend ssh\n  bind 127.0.0.1:{front}\n  default_backend gw\n\n\
         backend gw\n  balance roundrobin\n  option httpchk GET /readyz\n  \
         http-check expect status 200\n  default-server inter 200ms fall 1 rise 2\n{servers}",
        sock = dir.join("haproxy.sock").display(),
    )
}

/// What the client loops saw.
#[derive(Default)]
struct Tally {
    ok: usize,
    failures: Vec<String>,
}

/// Runs `attempt` in a loop on a thread until `stop`; each `Err` is a failure.
fn client_loop(
    stop: &Arc<AtomicBool>,
    tally: &Arc<Mutex<Tally>>,
    attempt: impl Fn() -> Result<(), String> + Send + 'static,
) -> thread::JoinHandle<()> {
    let (stop, tally) = (stop.clone(), tally.clone());
    thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            let result = attempt();
            let mut t = tally.lock().unwrap_or_else(|e| e.into_inner());
            match result {
                Ok(()) => t.ok += 1,
                Err(e) => t.failures.push(e),
            }
            drop(t);
            thread::sleep(Duration::from_millis(20));
        }
    })
}

/// A new TCP connection through HAProxy that gets the gateway's SSH banner.
fn banner(front: u16) -> Result<(), String> {
    let mut tcp = TcpStream::connect(("127.0.0.1", front)).map_err(|e| format!("connect: {e}"))?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let mut buf = [0u8; 64];
    let n = tcp.read(&mut buf).map_err(|e| format!("banner: {e}"))?;
    let text = String::from_utf8_lossy(&buf[..n]);
    if text.starts_with("SSH-2.0-") {
        Ok(())
    } else {
        Err(format!("banner: {text:?}"))
    }
}

/// `ssh` through HAProxy, checking the host key against `known_hosts` strictly.
fn strict_ssh(front: u16, key: &Path, known_hosts: &Path, command: &str) -> Output {
    run(
        Command::new("ssh")
            .args(["-F", "/dev/null", "-o", "StrictHostKeyChecking=yes", "-o"])
            .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
            .args(["-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes"])
            .args(["-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR"])
            .args(["-p", &front.to_string(), "-i"])
            .arg(key)
            .args(["anyone@127.0.0.1", command]),
        Input::Null,
        SSH_TIMEOUT,
    )
}

#[test]
fn rolling_restart_behind_haproxy_drops_no_one() {
    let dir = temp_dir();
    let alice = Key::generate(dir.path(), "alice");
    let ws = SshdBox::start("alice-ws");
    fs::write(
        dir.path().join("routes.toml"),
        routes_toml(&[ws.route(&[&alice])]),
    )
    .expect("routes");
    let ports: Vec<(u16, u16)> = (0..REPLICAS).map(|_| (free_port(), free_port())).collect();
    let mut replicas: Vec<Replica> = ports
        .iter()
        .enumerate()
        .map(|(i, (p, a))| Replica::start(dir.path(), i, 0, *p, *a))
        .collect();
    let front = free_port();
    let cfg = dir.path().join("haproxy.cfg");
    fs::write(&cfg, haproxy_config(dir.path(), front, &ports)).expect("haproxy.cfg");
    let socket = dir.path().join("haproxy.sock");
    let haproxy = Bg::spawn(Command::new("haproxy").arg("-db").arg("-f").arg(&cfg));
    let all_up = |want: usize| {
        eventually(Duration::from_secs(10), || {
            haproxy_servers(&socket)
                .iter()
                .filter(|(_, s)| s == "UP")
                .count()
                == want
        })
    };
    assert!(
        all_up(REPLICAS),
        "HAProxy: {:?}\n{}",
        haproxy_servers(&socket),
        haproxy.stderr()
    );

    // The host key every client must see, pinned strictly.
    let out = strict_ssh(front, &alice.path, Path::new("/dev/null"), "true");
    assert!(
        !out.success(),
        "strict checking against an empty known_hosts must fail"
    );
    let (kind, key) = keyscan(front);
    let known_hosts = dir.path().join("known_hosts");
    fs::write(&known_hosts, format!("[127.0.0.1]:{front} {kind} {key}\n")).expect("known_hosts");
    let out = strict_ssh(front, &alice.path, &known_hosts, "echo $BOX");
    assert_eq!(out.stdout, "alice-ws\n", "{out:?}");

    let stop = Arc::new(AtomicBool::new(false));
    let (connects, logins, sessions) = (
        Arc::new(Mutex::new(Tally::default())),
        Arc::new(Mutex::new(Tally::default())),
        Arc::new(Mutex::new(Tally::default())),
    );
    let mut loops = vec![client_loop(&stop, &connects, move || banner(front))];
    for (tally, command, want) in [
        (&logins, "true", ""),
        (&logins, "true", ""),
        (&sessions, LONG, "done\n"),
        (&sessions, LONG, "done\n"),
    ] {
        let (key, kh) = (alice.path.clone(), known_hosts.clone());
        loops.push(client_loop(&stop, tally, move || {
            let out = strict_ssh(front, &key, &kh, command);
            if out.success() && out.stdout == want {
                Ok(())
            } else {
                Err(format!("{command}: {out:?}"))
            }
        }));
    }

    // The rolling restart: one replica at a time, its successor on its ports.
    thread::sleep(Duration::from_secs(2));
    let mut drained = 0;
    for i in 0..REPLICAS {
        let old = &mut replicas[i];
        old.terminate();
        // Unready at once, still accepting during the window.
        assert!(eventually(Duration::from_secs(1), || readyz(old.admin) == 503));
        assert!(
            TcpStream::connect(("127.0.0.1", old.port)).is_ok(),
            "refused inside the window"
        );
        let code = old.wait(Duration::from_secs(20));
        let log = old.log();
        assert_eq!(code, Some(0), "replica {i}:\n{log}");
        assert!(
            !log.contains("shutdown_grace over"),
            "a session was cut:\n{log}"
        );
        if log.contains("draining ") {
            drained += 1;
        }
        let (port, admin) = ports[i];
        replicas[i] = Replica::start(dir.path(), i, 1, port, admin);
        assert!(all_up(REPLICAS), "HAProxy: {:?}", haproxy_servers(&socket));
    }
    thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    for l in loops {
        l.join().expect("client loop");
    }

    let lock = |t: &Arc<Mutex<Tally>>| {
        let t = t.lock().unwrap_or_else(|e| e.into_inner());
        (t.ok, t.failures.clone())
    };
    let (connects, logins, sessions) = (lock(&connects), lock(&logins), lock(&sessions));
    for (what, (ok, failures), at_least) in [
        ("new connections", &connects, 50),
        ("logins", &logins, 10),
        ("long sessions", &sessions, 4),
    ] {
        assert!(
            failures.is_empty(),
            "{} {what} failed ({ok} ok): {failures:#?}",
            failures.len()
        );
        assert!(*ok >= at_least, "only {ok} {what}");
    }
    assert!(
        drained > 0,
        "no replica had a session to drain: the test proved nothing about them"
    );
}
