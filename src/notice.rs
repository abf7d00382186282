//! Every line the gateway says to a user (SPEC §10 and §11), in one place.
//!
//! A line starts with `switchboard:`, names the route when there is one, and
//! says what to do. The fronts only render a [`Notice`]: the SSH front as a
//! session's stderr line with exit status 1, as a channel-open failure text
//! (`-W`/`-J`) or as a disconnect reason; the HTTP front as a response body.
//! This module is a leaf: it knows strings, not routes or connections.
//! (The command line's own errors to the operator, in `main.rs`, are not
//! user-facing lines of the gateway and stay there.)

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// Largest in-band input the agent-mode queue holds before the login through
/// the client's agent has finished (see `relay::session`), as told to users.
pub const AGENT_PENDING_LIMIT: &str = "1 MiB";

/// A message for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    // --- Reaching and logging in to the box (SSH sessions, jumps, tunnels) ---
    /// The route is stopped (optional operator note).
    Stopped { route: String, note: Option<String> },
    /// TCP to the box failed (refused, timed out, unreachable).
    Unreachable {
        route: String,
        address: String,
        reason: String,
    },
    /// The box answered but did not complete the SSH handshake in time.
    HandshakeTimeout { route: String, address: String },
    /// The box refused the gateway's login.
    LoginRefused { route: String, user: String },
    /// The box's host key does not match the pin (or none is pinned and the
    /// policy requires one).
    HostKeyMismatch { route: String },
    /// No pin, and the box presented a different host key than it did
    /// before (since the gateway started).
    HostKeyChanged { route: String },
    /// Host CAs are trusted for the box, and it presented a plain key or a
    /// host certificate none of them vouches for (now, for this box).
    HostKeyUntrusted { route: String },
    /// The route has no identity for the gateway to log in with.
    NoIdentity { route: String },
    /// The target names no login user and the route has none.
    NoUser { route: String },
    /// The box is logged in to but refused to open a session channel.
    SessionRefused { route: String },
    /// The box's connection ended under a session (a dead box is noticed by
    /// the keepalives on the box leg).
    LostBox { route: String },

    /// Waiting for a stopped or starting box (wake on connect, start-wait):
    /// progress lines on stderr and how the wait ended.
    Wait(Wait),

    // --- Admission over SSH ---
    /// Agent mode without a forwarded agent.
    NeedAgent { route: String },
    /// Agent mode: stdin outran the queue before the login through the
    /// client's agent finished; nothing reached the box.
    InputOverflow { route: String },
    /// The key opens no box; it may only jump (`jump = "any-key"`).
    JumpOnly,
    /// The key is authorized for several routes and no target was named:
    /// one ready command per route (see [`ssh_command`]).
    ChooseRoute { commands: Vec<String> },

    /// A channel beyond a per-connection cap (`limit` names the setting).
    TooManyChannels {
        what: &'static str,
        limit: &'static str,
        max: usize,
    },

    // --- The connection as a whole (SSH disconnect reasons) ---
    /// The gateway drained for `shutdown_grace` and now closes.
    Restarting,
    /// Nothing was relayed for `idle_timeout`.
    Idle { after: Duration },
    /// An operator ended the session through the sessions API.
    EndedByOperator,

    // --- HTTP tunnels (§11): response bodies ---
    /// The request head is larger than the gateway reads.
    HeadTooLarge { max: usize },
    /// Not an HTTP request this port serves.
    NotUnderstood,
    /// An HTTP request of a kind the port does not serve (`what` says which).
    Unsupported { what: &'static str },
    /// A WebSocket upgrade with a version other than `version`.
    WebSocketVersion { version: &'static str },
    /// `[http_tunnel] enabled = false`.
    TunnelsDisabled,
    /// The CONNECT host or WebSocket path names no route.
    NoSuchRoute { name: String },
    /// The tunnel token for `route` is missing or wrong; `header` is the
    /// request header to send it in.
    NeedToken { route: String, header: &'static str },
}

/// The lines of a wait for a box to start (wake on connect, start-wait).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wait {
    /// Progress: the wait for `route` entered `phase` (one line per change).
    Entered { route: String, phase: WaitPhase },
    /// Progress: the heartbeat while `phase` lasts, `waited` so far.
    Still {
        route: String,
        phase: WaitPhase,
        waited: Duration,
    },
    /// The box did not come up within `after`; `phase` is where it stuck.
    TimedOut {
        route: String,
        phase: WaitPhase,
        after: Duration,
    },
    /// The box is stopped and was started less than `cooldown` ago, so it
    /// is not started again before `retry_in`.
    Cooldown {
        route: String,
        cooldown: Duration,
        retry_in: Duration,
    },
    /// The box is stopped and the request to start it failed.
    WakeFailed { route: String },
}

/// Where a wait for a box is (see [`Wait`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitPhase {
    /// Asking the cluster to start the stopped box.
    Starting,
    /// The cluster refuses to start it while it saves a commit (Sealos).
    Committing,
    /// Started: waiting for a Ready pod.
    Booting,
    /// Running, but its sshd does not answer yet.
    Reaching,
}

impl WaitPhase {
    /// What the wait is doing in this phase, for the heartbeat and timeout.
    fn doing(self) -> &'static str {
        match self {
            WaitPhase::Starting => "asking the cluster to start it",
            WaitPhase::Committing => "waiting for its commit to finish before starting it",
            WaitPhase::Booting => "waiting for it to be ready",
            WaitPhase::Reaching => "waiting for its sshd to answer",
        }
    }
}

impl Wait {
    /// The route the wait is for.
    pub fn route(&self) -> &str {
        match self {
            Wait::Entered { route, .. }
            | Wait::Still { route, .. }
            | Wait::TimedOut { route, .. }
            | Wait::Cooldown { route, .. }
            | Wait::WakeFailed { route } => route,
        }
    }
}

impl fmt::Display for Wait {
    // Without the `switchboard: ` prefix, which `Notice` writes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = |d: &Duration| humantime::format_duration(Duration::from_secs(d.as_secs()));
        match self {
            Wait::Entered { route, phase } => match phase {
                WaitPhase::Starting => write!(f, "{route} is stopped; starting it"),
                WaitPhase::Committing => write!(
                    f,
                    "{route} is saving a commit; it is started once that is done"
                ),
                WaitPhase::Booting => {
                    write!(f, "{route} is starting; waiting for it to be ready")
                }
                WaitPhase::Reaching => {
                    write!(f, "{route} does not answer yet; waiting for it to start")
                }
            },
            Wait::Still {
                route,
                phase,
                waited,
            } => write!(f, "still {} ({route}, {})", phase.doing(), secs(waited)),
            Wait::TimedOut {
                route,
                phase,
                after,
            } => write!(
                f,
                "{route} did not come up within {} (gave up {}); try again later, or ask the operator",
                secs(after),
                phase.doing()
            ),
            Wait::Cooldown {
                route,
                cooldown,
                retry_in,
            } => write!(
                f,
                "{route} is stopped; it was started less than {} ago, so it is not started \
                 again yet; retry in {}, or start it yourself",
                secs(cooldown),
                secs(retry_in)
            ),
            Wait::WakeFailed { route } => write!(
                f,
                "{route} is stopped and the gateway could not start it; start it, then reconnect"
            ),
        }
    }
}

/// What the port serves, appended to "not served" answers.
const SERVED: &str =
    "this port speaks SSH, HTTP CONNECT ROUTE:22 and a WebSocket GET /tunnel/ROUTE";

impl fmt::Display for Notice {
    // Over 80 lines: one arm per notice. Keeping every text in one match is
    // the point of this module.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("switchboard: ")?;
        match self {
            Notice::Stopped { route, note: None } => {
                write!(f, "{route} is stopped; start it, then reconnect")
            }
            Notice::Stopped {
                route,
                note: Some(note),
            } => write!(f, "{route} is stopped ({note}); start it, then reconnect"),
            Notice::Unreachable {
                route,
                address,
                reason,
            } => write!(
                f,
                "cannot reach {route} ({address}): {reason}; it may still be starting"
            ),
            Notice::HandshakeTimeout { route, address } => write!(
                f,
                "cannot reach {route} ({address}): the SSH handshake timed out; it may still be starting"
            ),
            Notice::LoginRefused { route, user } => write!(f, "{route} refused login as {user}"),
            Notice::HostKeyMismatch { route } => write!(
                f,
                "{route} presented a host key that does not match its pin; refusing to connect, ask the operator"
            ),
            Notice::HostKeyUntrusted { route } => write!(
                f,
                "{route} presented a host key that no trusted host CA certifies; refusing to connect, ask the operator"
            ),
            Notice::HostKeyChanged { route } => write!(
                f,
                "{route} presented a different host key than before; refusing to connect, ask the operator"
            ),
            Notice::NoIdentity { route } => write!(
                f,
                "{route} has no login key configured at the gateway; ask the operator"
            ),
            Notice::NoUser { route } => write!(
                f,
                "{route} has no default user; reconnect as ssh USER@{route}@<gateway>"
            ),
            Notice::SessionRefused { route } => write!(
                f,
                "{route} refused to open a session; try again, or ask the operator"
            ),
            Notice::LostBox { route } => {
                write!(f, "lost the connection to the box ({route}); reconnect")
            }
            Notice::Wait(wait) => write!(f, "{wait}"),
            Notice::NeedAgent { route } => write!(
                f,
                "your key is not registered for {route}; reconnect with ssh -A (agent forwarding) or ssh -J"
            ),
            Notice::InputOverflow { route } => write!(
                f,
                "more input arrived than the gateway holds ({AGENT_PENDING_LIMIT}) before the login \
                 to the box through your agent finished; nothing was sent to the box. Start sending \
                 once the session on {route} is open, or use a key the gateway knows, or ssh -J"
            ),
            Notice::JumpOnly => write!(
                f,
                "this key opens no box here; use it as a jump host: ssh -J <gateway> USER@ROUTE"
            ),
            Notice::ChooseRoute { commands } => {
                write!(f, "your key opens several boxes; pick one:")?;
                for c in commands {
                    write!(f, "\n  {c}")?;
                }
                Ok(())
            }
            Notice::TooManyChannels { what, limit, max } => write!(
                f,
                "too many {what} on this connection ({limit} = {max}); close one, or open another connection"
            ),
            Notice::Restarting => write!(f, "the gateway is restarting; reconnect in a moment"),
            Notice::Idle { after } => write!(
                f,
                "idle for {}; disconnected",
                humantime::format_duration(*after)
            ),
            Notice::EndedByOperator => write!(f, "your session was ended by an operator"),
            Notice::HeadTooLarge { max } => write!(f, "request head over {max} bytes; refused"),
            Notice::NotUnderstood => write!(f, "not a request this port understands; {SERVED}"),
            Notice::Unsupported { what } => write!(f, "{what}; {SERVED}"),
            Notice::WebSocketVersion { version } => {
                write!(f, "only WebSocket version {version} is served")
            }
            Notice::TunnelsDisabled => write!(
                f,
                "HTTP tunnels are not enabled on this gateway; connect with ssh directly"
            ),
            Notice::NoSuchRoute { name } => {
                write!(
                    f,
                    "no route named {name}; check the name (CONNECT ROUTE:22)"
                )
            }
            Notice::NeedToken { route, header } => write!(
                f,
                "{route} needs its tunnel token; send {header}: Bearer TOKEN"
            ),
        }
    }
}

/// `ssh [-p PORT] USER@ROUTE@HOST`: how to reach `route` through the gateway
/// address `local` the client used (for [`Notice::ChooseRoute`]).
pub fn ssh_command(user: &str, route: &str, separator: &str, local: SocketAddr) -> String {
    let host = match local {
        SocketAddr::V6(a) => format!("[{}]", a.ip()),
        SocketAddr::V4(a) => a.ip().to_string(),
    };
    match local.port() {
        22 => format!("ssh {user}{separator}{route}{separator}{host}"),
        port => format!("ssh -p {port} {user}{separator}{route}{separator}{host}"),
    }
}

#[cfg(test)]
mod tests;
