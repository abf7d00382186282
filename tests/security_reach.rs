//! What a hostile party cannot learn or reach through the gateway (SPEC §12,
//! issue 13): which routes exist and what state they are in (byte-identical
//! answers), a login or the client's agent by posing as a box (a scripted
//! Paramiko server at a box's address), or a box's pre-auth slots
//! (`MaxStartups`) by agents that never answer.
//!
//! Each test says what the code before issue 13 (496627e) does instead;
//! run on f302a54 (the fix's parent, this harness) every one of them fails:
//! `-W` to a route name was "administratively prohibited" (any other name:
//! "connect failed"); the agent-mode refusal of a real box came after
//! 0.16 s (under the 1 s floor); the impostor with a new key got the
//! key-mode login ("impostor" on stdout); the first-use impostor opened the
//! agent channel and listed the victim's key; 5 hostile logins held box
//! connections for 10.4 s and the legitimate login was reset by the full
//! box.
//!
//! What a client can cost the gateway itself is in `security.rs`.

mod common;

use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::agent::*;
use common::attack::*;
use common::*;

// ---------------------------------------------------------------------------
// 1. No existence oracle
// ---------------------------------------------------------------------------

/// `prober` is authorized for mine-ws only; alice-ws exists (a real box),
/// nope-ws does not. A `direct-tcpip` (`-W`, `-J`) to either name is an
/// ordinary destination that mine-ws's box fails to resolve: the client sees
/// the same text and exit code. An agent-mode principal (a key no route
/// knows, a target named) gets its session notice for both. On 496627e a
/// route name was refused "administratively prohibited" by the gateway
/// while any other name was forwarded and failed "connect failed".
#[test]
fn direct_tcpip_to_a_route_name_answers_like_any_other_name() {
    let dir = temp_dir();
    let prober = Key::generate(dir.path(), "prober");
    let stranger = Key::generate(dir.path(), "stranger");
    let alice = Key::generate(dir.path(), "alice");
    let mine = SshdBox::start("mine-ws");
    let alice_ws = SshdBox::start("alice-ws");
    let cfg = GatewayConfig {
        agent_login: true,
        ..GatewayConfig::default()
    };
    let routes = routes_toml(&[mine.route(&[&prober]), alice_ws.route(&[&alice])]);
    let gw = Gateway::start_with(&cfg, &routes);

    let probe = |key: &Key, user: &str, target: &str| {
        run(
            ssh_at("INFO", gw.port, key)
                .arg("-W")
                .arg(format!("{target}:22"))
                .arg(format!("{user}@127.0.0.1")),
            Input::Null,
            SSH_TIMEOUT,
        )
    };
    let jump = |target: &str| {
        let config = dir.path().join("ssh_config");
        std::fs::write(
            &config,
            format!(
                "Host gw\n  HostName 127.0.0.1\n  Port {}\n  User x\n  IdentityFile {}\n  \
                 IdentitiesOnly yes\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  \
                 BatchMode yes\n  LogLevel INFO\n\
                 Host *\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  \
                 BatchMode yes\n  LogLevel INFO\n",
                gw.port,
                prober.path.display()
            ),
        )
        .expect("ssh_config");
        run(
            Command::new("ssh")
                .arg("-F")
                .arg(&config)
                .env_remove("SSH_AUTH_SOCK")
                .args(["-J", "gw", &format!("root@{target}"), "true"]),
            Input::Null,
            SSH_TIMEOUT,
        )
    };

    type Attempt<'a> = Box<dyn Fn(&str) -> Output + 'a>;
    let cases: [(&str, Attempt); 3] = [
        ("-W, key mode", Box::new(|t| probe(&prober, "x", t))),
        (
            "-W, agent mode",
            Box::new(|t| probe(&stranger, "root@mine-ws", t)),
        ),
        ("-J, key mode", Box::new(|t| jump(t))),
    ];
    let need_agent = "switchboard: your key is not registered for mine-ws";
    for (what, attempt) in cases {
        let existing = attempt("alice-ws");
        let missing = attempt("nope-ws");
        assert_ne!(existing.code, Some(0), "{what}: {existing:?}");
        assert_eq!(
            existing.code, missing.code,
            "{what}: {existing:?}\n{missing:?}"
        );
        assert_eq!(
            existing.stderr.replace("alice-ws", "NAME"),
            missing.stderr.replace("nope-ws", "NAME"),
            "{what}: {existing:?}\n{missing:?}"
        );
        // Refused as a destination would be (by the box, or with the
        // session's notice), not as a route.
        assert!(
            existing.stderr.contains("open failed: connect failed: "),
            "{what}: {existing:?}"
        );
        assert!(
            !existing.stderr.contains("prohibited"),
            "{what}: {existing:?}"
        );
        let told = existing.stderr.contains(need_agent);
        assert_eq!(told, what.contains("agent mode"), "{what}: {existing:?}");
    }
}

/// Agent mode, a key no box accepts: a stopped route (with an operator's
/// message), a route whose box is down, a box that refuses the key and a
/// name that is no route all answer the same bytes (modulo the name), exit
/// code 1, no sooner than 1 s, and never show an address, a state or the
/// message. The client's agent is asked the same (one channel, one key
/// listing) in every case. On 496627e the stopped route said "is stopped
/// (message)", the dead one "cannot reach … (127.0.0.1:PORT)", and the agent
/// channel was opened only for routes that exist.
#[test]
fn agent_mode_failures_look_alike_whatever_the_route_is() {
    let dir = temp_dir();
    let owner = Key::generate(dir.path(), "owner");
    let stranger = Key::generate(dir.path(), "stranger");
    let refusing = SshdBox::start("refusing-ws");
    let dead_port = free_port();
    let dead_address = format!("127.0.0.1:{dead_port}");
    let mut dead = refusing.route(&[&owner]);
    dead.name = "dead-ws".into();
    dead.address = dead_address.clone();
    let mut stopped = refusing.route(&[&owner]);
    stopped.name = "stopped-ws".into();
    stopped.state = Some("stopped".into());
    let note = "maintenance until 5pm, ask Bob on #ops";
    let routes = format!(
        "{}{}{}",
        refusing.route(&[&owner]).to_toml(),
        dead.to_toml(),
        stopped.to_toml().replace(
            "state = \"stopped\"\n",
            &format!("state = \"stopped\"\nmessage = {}\n", toml_str(note))
        ),
    );
    let cfg = GatewayConfig {
        agent_login: true,
        ..GatewayConfig::default()
    };
    let gw = Gateway::start_with(&cfg, &routes);
    let agent = Agent::start(&[&stranger]);
    let tap = FakeAgent::tap(&agent);
    let own = Agent::start(&[]);

    let names = ["refusing-ws", "dead-ws", "stopped-ws", "nope-ws"];
    let mut answers = Vec::new();
    for name in names {
        let seen_before = tap.tap_log().len();
        let out = run(
            ssh_forwarding(gw.port, &stranger, &own, &tap.sock)
                .arg(format!("root@{name}@127.0.0.1"))
                .arg("echo $BOX"),
            Input::Null,
            SSH_TIMEOUT,
        );
        // "conn N" / "req N TYPE", without the connection numbers.
        let asked: Vec<String> = tap.tap_log()[seen_before..]
            .iter()
            .map(|l| {
                let words: Vec<&str> = l.split_whitespace().collect();
                match words[..] {
                    ["req", _, kind] => format!("req {kind}"),
                    [what, ..] => what.to_owned(),
                    [] => String::new(),
                }
            })
            .collect();
        answers.push((name, out, asked));
    }
    let (_, first, first_asked) = &answers[0];
    for (name, out, asked) in &answers {
        assert_eq!(out.code, Some(1), "{name}: {out:?}");
        assert_eq!(out.stdout, "", "{name}: {out:?}");
        assert!(
            out.stderr
                .contains(&format!("switchboard: {name} refused login as root")),
            "{name}: {out:?}"
        );
        assert_eq!(
            out.stderr.replace(name, "NAME"),
            first.stderr.replace(answers[0].0, "NAME"),
            "{name} vs {}",
            answers[0].0
        );
        for secret in [
            dead_address.as_str(),
            &dead_port.to_string(),
            &refusing.port.to_string(),
            note,
            "stopped;",
            "is stopped",
            "cannot reach",
            "host key",
        ] {
            assert!(
                !out.stderr.contains(secret),
                "{name} shows {secret:?}: {out:?}"
            );
        }
        assert!(
            out.elapsed >= Duration::from_secs(1),
            "{name} answered after {:?}",
            out.elapsed
        );
        // One agent channel (OpenSSH binds it to the session: 27), one key
        // listing (11) — whatever the target.
        assert_eq!(
            asked,
            &["conn", "req 27", "req 11"],
            "{name}: the agent saw {asked:?}"
        );
        assert_eq!(asked, first_asked, "{name}");
    }
    let times: Vec<Duration> = answers.iter().map(|(_, o, _)| o.elapsed).collect();
    let spread = *times.iter().max().unwrap() - *times.iter().min().unwrap();
    eprintln!("agent-mode refusals took {times:?} (spread {spread:?})");
    assert!(spread < Duration::from_secs(1), "timings {times:?}");
}

// ---------------------------------------------------------------------------
// 2. Box impostors and starvation
// ---------------------------------------------------------------------------

/// Lines of the impostor's log that show a login attempt, a channel, a
/// request or the agent: anything beyond the handshake.
fn beyond_handshake(log: &[String]) -> Vec<&String> {
    log.iter()
        .filter(|l| !l.starts_with("conn") && !l.starts_with("kex-failed"))
        .collect()
}

/// A box whose host key the gateway has seen is replaced by an impostor at
/// the same address with another key (the box was stopped, someone else
/// took its port). The key-mode user is told the key changed; the
/// agent-mode victim (`ssh -A`) gets the one refusal of agent mode; the
/// impostor sees TCP connections and a handshake the gateway abandons, and
/// never a login attempt or a channel. On 496627e `pinned-or-accept`
/// accepted any key every time: the impostor got the gateway's identity
/// login, and the victim's agent signed a login to it.
#[test]
fn an_impostor_with_another_host_key_is_refused_before_any_login() {
    let dir = temp_dir();
    let owner = Key::generate(dir.path(), "owner");
    let victim = Key::generate(dir.path(), "victim");
    let ws = SshdBox::start_with(
        "alice-ws",
        BoxOptions {
            extra_authorized: vec![victim.public.clone()],
            ..BoxOptions::default()
        },
    );
    let cfg = GatewayConfig {
        agent_login: true,
        ..GatewayConfig::default()
    };
    let gw = Gateway::start_with(&cfg, &routes_toml(&[ws.route(&[&owner])]));
    let agent = Agent::start(&[&victim]);
    let key_mode = || gw.ssh(&owner, &["anyone@127.0.0.1", "echo $BOX"]);
    let agent_mode = || {
        run(
            ssh_with_agent(gw.port, &victim, &agent).args([
                "-A",
                "root@alice-ws@127.0.0.1",
                "echo $BOX",
            ]),
            Input::Null,
            SSH_TIMEOUT,
        )
    };
    // The real box, in both modes: its key is remembered.
    assert_eq!(key_mode().assert_ok().stdout, "alice-ws\n");
    assert_eq!(agent_mode().assert_ok().stdout, "alice-ws\n");

    let port = ws.port;
    drop(ws);
    let impostor = Impostor::start(port, &["--accept-any", "--open-agent"]);

    let out = key_mode();
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains(
            "switchboard: alice-ws presented a different host key than before; \
             refusing to connect, ask the operator"
        ),
        "{out:?}"
    );
    let out = agent_mode();
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr
            .contains("switchboard: alice-ws refused login as root"),
        "{out:?}"
    );
    assert!(!out.stderr.contains("host key"), "{out:?}");
    for out in [key_mode(), agent_mode()] {
        assert!(!out.stdout.contains("impostor"), "{out:?}");
    }

    let log = impostor.log();
    let dialled = log.iter().filter(|l| *l == "conn").count();
    assert!(
        dialled >= 4,
        "the gateway should have dialled the impostor 4 times: {log:?}\n{}",
        impostor.stderr()
    );
    assert!(
        beyond_handshake(&log).is_empty(),
        "the impostor got further than the handshake: {log:?}"
    );
}

/// An impostor that is first at its address (no key seen before: trusted on
/// first use, as designed) accepts any login and then opens an
/// `auth-agent@openssh.com` channel back, to use the victim's forwarded
/// agent. In agent mode the gateway refuses every agent channel a box
/// opens: the impostor's open fails, and the victim's agent sees exactly one
/// connection — the gateway's own, which listed the keys and signed the
/// login the victim asked for. On 496627e the box's agent channel was
/// relayed to the client in agent mode: the impostor listed the victim's
/// keys (the issue: "got a signature over data it chose").
#[test]
fn an_impostor_never_reaches_the_agent_of_an_agent_mode_client() {
    let dir = temp_dir();
    let victim = Key::generate(dir.path(), "victim");
    let impostor = Impostor::start(free_port(), &["--accept-any", "--open-agent"]);
    let mut route = Route::new("evil-ws", &format!("127.0.0.1:{}", impostor.port));
    route.user = Some("root".into());
    let cfg = GatewayConfig {
        agent_login: true,
        ..GatewayConfig::default()
    };
    let gw = Gateway::start_with(&cfg, &routes_toml(&[route]));
    let agent = Agent::start(&[&victim]);
    let tap = FakeAgent::tap(&agent);
    let own = Agent::start(&[]);

    let out = run(
        ssh_forwarding(gw.port, &victim, &own, &tap.sock).args(["root@evil-ws@127.0.0.1", "true"]),
        Input::Null,
        SSH_TIMEOUT,
    );
    let log = impostor.log();
    // The login went through (the victim named this box), so the impostor
    // had its chance …
    assert_eq!(out.stdout, "impostor\n", "{out:?}\nimpostor: {log:?}");
    let victim_blob = victim.public.split_whitespace().nth(1).expect("blob");
    assert!(
        log.iter()
            .any(|l| l.starts_with("auth publickey root ") && l.ends_with(victim_blob)),
        "{log:?}\n{}",
        impostor.stderr()
    );
    // … and its agent channel was refused.
    assert!(
        log.iter().any(|l| l.starts_with("agent-channel refused")),
        "{log:?}\n{}",
        impostor.stderr()
    );
    assert!(
        !log.iter()
            .any(|l| l.starts_with("agent-channel opened") || l.starts_with("agent-keys")),
        "the impostor reached the agent: {log:?}"
    );
    let conns = tap
        .tap_log()
        .iter()
        .filter(|l| l.starts_with("conn "))
        .count();
    assert_eq!(
        conns,
        1,
        "the victim's agent was reached more than once: {:?}",
        tap.tap_log()
    );
}

/// The box takes 5 unauthenticated connections at once (`MaxStartups
/// 5:100:5`; the gateway's `agent_logins_per_route` default is 4). Eight
/// hostile agent-mode clients from eight sources name it with `-A` and an
/// agent that never answers: six list the public key of a key the box
/// accepts (public information) and never sign, two never even list. The
/// gateway holds at most 4 box connections for them, each for at most
/// `agent_timeout` (2 s), so a legitimate key-mode login to the same box
/// succeeds at once, and every hostile client is refused within
/// agent_timeout + a margin — far below `handshake_timeout` (10 s here). On
/// 496627e each hostile login opened its box connection first and waited
/// for the agent for the whole handshake timeout, uncapped: the box's
/// MaxStartups filled and the legitimate login was dropped by sshd.
#[test]
fn agents_that_never_answer_cannot_starve_a_box() {
    let dir = temp_dir();
    let owner = Key::generate(dir.path(), "owner");
    let stranger = Key::generate(dir.path(), "stranger");
    let bait = Key::generate(dir.path(), "bait");
    let ws = SshdBox::start_with(
        "alice-ws",
        BoxOptions {
            extra_authorized: vec![bait.public.clone()],
            max_startups: "5:100:5".into(),
            ..BoxOptions::default()
        },
    );
    let cfg = GatewayConfig {
        agent_login: true,
        handshake_timeout: "10s".into(),
        upstream_extra: "agent_timeout = \"2s\"".into(),
        ..GatewayConfig::default()
    };
    let gw = Gateway::start_with(&cfg, &routes_toml(&[ws.route(&[&owner])]));
    let own = Agent::start(&[]);
    let hanging = FakeAgent::hang_on_sign(&bait);
    let silent = FakeAgent::silent();

    let started = Instant::now();
    let mut hostile: Vec<(Bg, Option<Duration>)> = (0..8)
        .map(|i| {
            let agent = if i < 6 { &hanging } else { &silent };
            let ssh = Bg::spawn(
                ssh_forwarding(gw.port, &stranger, &own, &agent.sock)
                    .arg("-b")
                    .arg(format!("127.0.0.{}", i + 2))
                    .args(["root@alice-ws@127.0.0.1", "true"]),
            );
            (ssh, None)
        })
        .collect();
    // While the hostile logins are pending: count the box's connections,
    // note when each hostile client is told, and 1.2 s in, log in for real.
    let mut held = 0;
    let mut legit = None;
    let pending = |hostile: &[(Bg, Option<Duration>)]| hostile.iter().any(|(_, d)| d.is_none());
    while (legit.is_none() || pending(&hostile)) && started.elapsed() < SSH_TIMEOUT {
        if legit.is_none() {
            held = held.max(established_to(ws.port));
        }
        if legit.is_none() && started.elapsed() > Duration::from_millis(1200) {
            let (port, owner) = (gw.port, owner.clone());
            let login = thread::spawn(move || {
                let out = ssh(port, &owner, &["anyone@127.0.0.1", "echo $BOX"]);
                (out, started.elapsed())
            });
            legit = Some(login);
        }
        for (ssh, done) in &mut hostile {
            if done.is_none() && !ssh.is_running() {
                *done = Some(started.elapsed());
            }
        }
        thread::sleep(Duration::from_millis(10));
    }
    let (legit, legit_done) = legit.expect("legit login started").join().expect("join");
    let told: Vec<Duration> = hostile
        .iter()
        .map(|(_, d)| d.unwrap_or(SSH_TIMEOUT))
        .collect();
    let outs: Vec<Output> = hostile
        .into_iter()
        .map(|(h, _)| h.wait(SSH_TIMEOUT))
        .collect();
    eprintln!(
        "box connections held by hostile logins: at most {held}; legitimate login took {:.1?} \
         (done {legit_done:.1?} into the attack); hostile clients told after {told:.1?}",
        legit.elapsed,
    );

    assert_eq!(legit.assert_ok().stdout, "alice-ws\n", "{legit:?}");
    assert!(legit.elapsed < Duration::from_secs(3), "{legit:?}");
    assert!(
        (1..=4).contains(&held),
        "hostile logins held {held} box connections (the cap is 4)"
    );
    for out in &outs {
        assert_eq!(out.code, Some(1), "{out:?}");
        assert!(
            out.stderr
                .contains("switchboard: alice-ws refused login as root"),
            "{out:?}"
        );
    }
    for at in &told {
        assert!(
            *at < Duration::from_secs(4),
            "hostile clients told after {told:?}"
        );
    }
}
