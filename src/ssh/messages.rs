//! What users see when something is wrong (SPEC §10): one line, starting with
//! `switchboard:`, naming the route and saying what to do.

use std::fmt;

/// A failure the client is told about in-band (stderr + exit 1, or the
/// channel-open failure text for `-W`/`-J`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
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
    /// The route has no identity for the gateway to log in with.
    NoIdentity { route: String },
    /// The target names no login user and the route has none.
    NoUser { route: String },
    /// Agent mode without a forwarded agent.
    NeedAgent { route: String },
    /// The key opens no box; it may only jump (`jump = "any-key"`).
    JumpOnly,
    /// The key is authorized for several routes and no target was named.
    ChooseRoute { commands: Vec<String> },
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Notice::Stopped { route, note: None } => {
                write!(
                    f,
                    "switchboard: {route} is stopped; start it, then reconnect"
                )
            }
            Notice::Stopped {
                route,
                note: Some(note),
            } => {
                write!(
                    f,
                    "switchboard: {route} is stopped ({note}); start it, then reconnect"
                )
            }
            Notice::Unreachable {
                route,
                address,
                reason,
            } => write!(
                f,
                "switchboard: cannot reach {route} ({address}): {reason}; it may still be starting"
            ),
            Notice::HandshakeTimeout { route, address } => write!(
                f,
                "switchboard: cannot reach {route} ({address}): the SSH handshake timed out; it may still be starting"
            ),
            Notice::LoginRefused { route, user } => {
                write!(f, "switchboard: {route} refused login as {user}")
            }
            Notice::HostKeyMismatch { route } => write!(
                f,
                "switchboard: {route} presented a host key that does not match its pin; refusing to connect, ask the operator"
            ),
            Notice::NoIdentity { route } => write!(
                f,
                "switchboard: {route} has no login key configured at the gateway; ask the operator"
            ),
            Notice::NoUser { route } => write!(
                f,
                "switchboard: {route} has no default user; reconnect as ssh USER@{route}@<gateway>"
            ),
            Notice::NeedAgent { route } => write!(
                f,
                "switchboard: your key is not registered for {route}; reconnect with ssh -A (agent forwarding) or ssh -J"
            ),
            Notice::JumpOnly => write!(
                f,
                "switchboard: this key opens no box here; use it as a jump host: ssh -J <gateway> USER@ROUTE"
            ),
            Notice::ChooseRoute { commands } => {
                write!(f, "switchboard: your key opens several boxes; pick one:")?;
                for c in commands {
                    write!(f, "\n  {c}")?;
                }
                Ok(())
            }
        }
    }
}
