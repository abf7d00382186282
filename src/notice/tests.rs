//! Walks every [`Notice`]: one line (but the route list), the `switchboard:`
//! prefix, and the route named wherever there is one (SPEC §10).

use std::collections::BTreeSet;
use std::time::Duration;

use super::*;

/// Every variant, in declaration order, with the route it must name. The
/// match has no `_` arm: a new variant does not compile until it is listed
/// here, and [`every_variant_is_sampled`] fails until it is sampled.
fn expectation(n: &Notice) -> (usize, Option<&str>) {
    match n {
        Notice::Stopped { route, .. } => (0, Some(route)),
        Notice::Unreachable { route, .. } => (1, Some(route)),
        Notice::HandshakeTimeout { route, .. } => (2, Some(route)),
        Notice::LoginRefused { route, .. } => (3, Some(route)),
        Notice::HostKeyMismatch { route } => (4, Some(route)),
        Notice::HostKeyChanged { route } => (5, Some(route)),
        Notice::NoIdentity { route } => (6, Some(route)),
        Notice::NoUser { route } => (7, Some(route)),
        Notice::SessionRefused { route } => (8, Some(route)),
        Notice::LostBox { route } => (9, Some(route)),
        Notice::NeedAgent { route } => (10, Some(route)),
        Notice::Wait(wait) => (25, Some(wait.route())),
        Notice::InputOverflow { route } => (11, Some(route)),
        Notice::JumpOnly => (12, None),
        Notice::ChooseRoute { .. } => (13, None),
        Notice::TooManyChannels { .. } => (14, None),
        Notice::Restarting => (15, None),
        Notice::Idle { .. } => (16, None),
        Notice::EndedByOperator => (17, None),
        Notice::HeadTooLarge { .. } => (18, None),
        Notice::NotUnderstood => (19, None),
        Notice::Unsupported { .. } => (20, None),
        Notice::WebSocketVersion { .. } => (21, None),
        Notice::TunnelsDisabled => (22, None),
        Notice::NoSuchRoute { name } => (23, Some(name)),
        Notice::NeedToken { route, .. } => (24, Some(route)),
        Notice::HostKeyUntrusted { route } => (26, Some(route)),
    }
}

const VARIANTS: usize = 27;

fn r() -> String {
    "alice-ws".to_owned()
}

fn samples() -> Vec<Notice> {
    vec![
        Notice::Stopped {
            route: r(),
            note: None,
        },
        Notice::Stopped {
            route: r(),
            note: Some("quota".into()),
        },
        Notice::Unreachable {
            route: r(),
            address: "10.0.3.7:22".into(),
            reason: "connection refused".into(),
        },
        Notice::HandshakeTimeout {
            route: r(),
            address: "10.0.3.7:22".into(),
        },
        Notice::LoginRefused {
            route: r(),
            user: "devbox".into(),
        },
        Notice::HostKeyMismatch { route: r() },
        Notice::HostKeyChanged { route: r() },
        Notice::HostKeyUntrusted { route: r() },
        Notice::NoIdentity { route: r() },
        Notice::NoUser { route: r() },
        Notice::SessionRefused { route: r() },
        Notice::LostBox { route: r() },
        Notice::NeedAgent { route: r() },
        Notice::InputOverflow { route: r() },
        Notice::Wait(Wait::Entered {
            route: r(),
            phase: WaitPhase::Starting,
        }),
        Notice::Wait(Wait::Entered {
            route: r(),
            phase: WaitPhase::Committing,
        }),
        Notice::Wait(Wait::Entered {
            route: r(),
            phase: WaitPhase::Booting,
        }),
        Notice::Wait(Wait::Entered {
            route: r(),
            phase: WaitPhase::Reaching,
        }),
        Notice::Wait(Wait::Still {
            route: r(),
            phase: WaitPhase::Booting,
            waited: Duration::from_millis(20_400),
        }),
        Notice::Wait(Wait::TimedOut {
            route: r(),
            phase: WaitPhase::Committing,
            after: Duration::from_secs(300),
        }),
        Notice::Wait(Wait::Cooldown {
            route: r(),
            cooldown: Duration::from_secs(600),
            retry_in: Duration::from_secs(61),
        }),
        Notice::Wait(Wait::WakeFailed { route: r() }),
        Notice::JumpOnly,
        Notice::ChooseRoute {
            commands: vec![
                "ssh -p 2233 u@alice-ws@127.0.0.1".into(),
                "ssh -p 2233 u@bob-ws@127.0.0.1".into(),
            ],
        },
        Notice::TooManyChannels {
            what: "sessions",
            limit: "server.max_sessions",
            max: 10,
        },
        Notice::Restarting,
        Notice::Idle {
            after: Duration::from_secs(90),
        },
        Notice::EndedByOperator,
        Notice::HeadTooLarge { max: 8192 },
        Notice::NotUnderstood,
        Notice::Unsupported {
            what: "method PUT is not served",
        },
        Notice::WebSocketVersion { version: "13" },
        Notice::TunnelsDisabled,
        Notice::NoSuchRoute { name: r() },
        Notice::NeedToken {
            route: r(),
            header: "Proxy-Authorization",
        },
    ]
}

#[test]
fn every_variant_is_sampled() {
    let seen: BTreeSet<usize> = samples().iter().map(|n| expectation(n).0).collect();
    assert_eq!(seen, (0..VARIANTS).collect::<BTreeSet<_>>());
}

#[test]
fn every_notice_is_one_switchboard_line_naming_its_route() {
    for notice in samples() {
        let text = notice.to_string();
        assert!(text.starts_with("switchboard: "), "{text}");
        assert!(!text.ends_with('\n'), "{text:?}");
        match &notice {
            Notice::ChooseRoute { commands } => {
                assert_eq!(text.lines().count(), 1 + commands.len(), "{text}");
                for c in commands {
                    assert!(text.contains(c), "{text}");
                }
            }
            _ => assert_eq!(text.lines().count(), 1, "{text:?}"),
        }
        if let (_, Some(route)) = expectation(&notice) {
            assert!(text.contains(route), "{text} names no {route}");
        }
    }
}

#[test]
fn texts_that_users_and_tests_rely_on() {
    let cases = [
        (
            Notice::Stopped {
                route: r(),
                note: None,
            },
            "switchboard: alice-ws is stopped; start it, then reconnect",
        ),
        (
            Notice::Unreachable {
                route: r(),
                address: "10.0.3.7:22".into(),
                reason: "connection refused".into(),
            },
            "switchboard: cannot reach alice-ws (10.0.3.7:22): connection refused; it may still be starting",
        ),
        (
            Notice::LoginRefused {
                route: r(),
                user: "devbox".into(),
            },
            "switchboard: alice-ws refused login as devbox",
        ),
        (
            Notice::NeedAgent { route: r() },
            "switchboard: your key is not registered for alice-ws; reconnect with ssh -A (agent forwarding) or ssh -J",
        ),
        (
            Notice::Idle {
                after: Duration::from_secs(90),
            },
            "switchboard: idle for 1m 30s; disconnected",
        ),
        (
            Notice::Wait(Wait::Entered {
                route: r(),
                phase: WaitPhase::Starting,
            }),
            "switchboard: alice-ws is stopped; starting it",
        ),
        (
            Notice::Wait(Wait::Still {
                route: r(),
                phase: WaitPhase::Booting,
                waited: Duration::from_millis(20_400),
            }),
            "switchboard: still waiting for it to be ready (alice-ws, 20s)",
        ),
        (
            Notice::Wait(Wait::TimedOut {
                route: r(),
                phase: WaitPhase::Booting,
                after: Duration::from_secs(300),
            }),
            "switchboard: alice-ws did not come up within 5m (gave up waiting for it to be ready); \
             try again later, or ask the operator",
        ),
        (
            Notice::Wait(Wait::Cooldown {
                route: r(),
                cooldown: Duration::from_secs(600),
                retry_in: Duration::from_secs(61),
            }),
            "switchboard: alice-ws is stopped; it was started less than 10m ago, so it is not \
             started again yet; retry in 1m 1s, or start it yourself",
        ),
        (
            Notice::EndedByOperator,
            "switchboard: your session was ended by an operator",
        ),
        (
            Notice::NeedToken {
                route: r(),
                header: "Authorization",
            },
            "switchboard: alice-ws needs its tunnel token; send Authorization: Bearer TOKEN",
        ),
    ];
    for (notice, want) in cases {
        assert_eq!(notice.to_string(), want);
    }
}

#[test]
fn ssh_command_uses_the_address_the_client_used() {
    let v4: SocketAddr = "127.0.0.1:2233".parse().unwrap();
    let v6: SocketAddr = "[::1]:22".parse().unwrap();
    assert_eq!(
        ssh_command("u", "alice-ws", "@", v4),
        "ssh -p 2233 u@alice-ws@127.0.0.1"
    );
    assert_eq!(
        ssh_command("u", "alice-ws", "+", v6),
        "ssh u+alice-ws+[::1]"
    );
}
