//! Who may go where, and in which mode (SPEC §5, §11): the one admission
//! decision every front asks.
//!
//! - SSH: [`Access::ssh`] takes the username and the offered key, parses the
//!   username once ([`username`]) and returns an [`Admission`]: refused, or a
//!   [`Principal`] — the key and what it may do ([`Mode`]: key mode, agent
//!   mode, jump-only, choose). Jumps ([`Principal::jump`]) and forwarding
//!   ([`Principal::allows`]) are then asked of the principal. A route the
//!   principal may not jump to is an ordinary destination (forwarded by its
//!   box), so a `direct-tcpip` answer never tells which names are routes.
//! - SSH with an OpenSSH user certificate: [`Access::ssh_certificate`]
//!   ([`certificate`]). A certificate the checks refuse, or that opens no
//!   route (of the named target), is decided exactly as its certified key
//!   offered bare — the outcome an unknown key gets, agent-mode fallback
//!   included — so a refused certificate tells nothing an unknown key does
//!   not. An admitted certificate stands on its own: its principal may use
//!   the routes the certificate opens, within its extensions.
//! - Revoked keys (`revoked_keys_file`) are authorized for nothing, like
//!   unknown keys.
//! - HTTP tunnels: [`Access::tunnel`] takes the route name and the presented
//!   tokens ([`tunnel`]).
//!
//! Pure logic over one route-table snapshot: nothing here dials, logs in or
//! talks to a client. Unknown key, unknown target and unauthorized key are
//! one outcome, so an answer cannot tell which routes exist.

pub mod certificate;
pub mod tunnel;
pub mod username;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_certificate;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::Guard;
use russh::keys::PublicKey;
use russh::keys::ssh_key::Certificate;

use crate::config::{Config, JumpPolicy, RoutingConfig};
use crate::routes::{Route, RouteTable, SharedRoutes};
use certificate::{
    CertRefusal, Grant, PERMIT_AGENT_FORWARDING, PERMIT_PORT_FORWARDING, PERMIT_PTY,
};
use username::Target;

/// The destination port of the sshgate jump form (`ssh -J` to an inner host
/// on the default SSH port); other ports stay ordinary forwards.
const SSHGATE_JUMP_PORT: u32 = 22;

/// The admission layer: the configuration and the live route table.
pub struct Access {
    config: Arc<Config>,
    routes: SharedRoutes,
}

/// The outcome of offering a key (SPEC §5).
#[derive(Debug)]
pub enum Admission {
    /// `Permission denied (publickey)`: unknown key, unknown target, key not
    /// authorized for the target (without `agent_login`), or a username that
    /// cannot be parsed — all alike to the client; the [`Refusal`] is for
    /// the operator's log only.
    Refused(Refusal),
    /// Boxed: a principal holds a public key, far larger than a refusal.
    Admitted(Box<Principal>),
}

/// Why a key was refused: logged (the audit `auth_failure`), never told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The username does not parse under the configured grammar.
    MalformedUsername,
    /// The key is authorized for no route (whatever target was named).
    UnknownKey,
    /// The key opens some route, but the named target is none.
    UnknownTarget,
    /// The named route exists and the key is not authorized for it.
    NotAuthorized,
    /// A certificate was not used (why), and its bare key is refused too.
    Certificate(CertRefusal),
}

impl Refusal {
    /// The reason class in the audit event.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::MalformedUsername => "malformed_username",
            Refusal::UnknownKey => "unknown_key",
            Refusal::UnknownTarget => "unknown_target",
            Refusal::NotAuthorized => "not_authorized",
            Refusal::Certificate(why) => why.label(),
        }
    }
}

/// An admitted client: its key and what it may do with it.
#[derive(Debug)]
pub struct Principal {
    key: PublicKey,
    /// The certificate that admitted it, if one did.
    cert: Option<Arc<Grant>>,
    /// The key is in `revoked_keys_file` (admitted only as an unknown key is).
    key_revoked: bool,
    mode: Mode,
    jump: JumpPolicy,
    /// The route the username named, if any (for the sshgate jump form).
    named: Option<String>,
}

/// Where an admitted SSH client's sessions go.
#[derive(Debug, Clone)]
pub enum Mode {
    /// Key mode: the key is authorized for `route`; the gateway logs in as
    /// `user` with the route's identity. `None`: neither the username nor
    /// the route names a user.
    Key {
        route: Arc<Route>,
        user: Option<String>,
    },
    /// Agent mode (bring your own key): a target is named, the key is not
    /// authorized for it, and `agent_login` is on. The box is logged in to
    /// through the client's forwarded agent. `route` is `None` when the
    /// target does not exist, which must look exactly like a box that
    /// refuses the agent's keys. `user` is the user as typed, never the
    /// route's default (which would tell the route exists); the login uses
    /// [`Principal::login_user`].
    Agent {
        target: String,
        route: Option<Arc<Route>>,
        user: Option<String>,
    },
    /// `jump = "any-key"` and no target named: the key opens no box but may
    /// jump (`ssh -J`).
    JumpOnly,
    /// No target named and the key opens several routes: the client is told
    /// how to name each. `login_name` is the SSH username, for those commands.
    Choose {
        routes: Vec<Arc<Route>>,
        login_name: String,
    },
}

/// A forwarding a client asks for, checked against the route's switches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forward {
    /// `-L`/`-D`/`-W` to a destination that is not a route (the box connects).
    Local,
    /// `-R` (the box listens).
    Remote,
    /// `ssh -A` into the box (key mode).
    Agent,
    /// A terminal (`pty-req`): not a forwarding, but a certificate without
    /// `permit-pty` may not have one.
    Pty,
}

impl Access {
    pub fn new(config: Arc<Config>, routes: SharedRoutes) -> Self {
        Self { config, routes }
    }

    /// The current route table.
    pub fn table(&self) -> Guard<Arc<RouteTable>> {
        self.routes.load()
    }

    /// The routing configuration (separator, grammar, policies).
    pub fn routing(&self) -> &RoutingConfig {
        &self.config.routing
    }

    /// Decides what `key`, offered with SSH username `username`, may do.
    /// Called when the key is offered (signature not checked yet) and again
    /// once its signature is verified; both see the same answer for the same
    /// table.
    pub fn ssh(&self, username: &str, key: &PublicKey) -> Admission {
        match self.target(username) {
            Ok(target) => self.bare(&self.table(), target, username, key),
            Err(refusal) => Admission::Refused(refusal),
        }
    }

    /// Decides what the OpenSSH certificate `cert`, offered with SSH
    /// username `username` from `client` (the real address, after PROXY),
    /// may do; like [`Access::ssh`], asked at the offer and once verified.
    /// A certificate that is not used decides as its bare key (module doc).
    pub fn ssh_certificate(&self, username: &str, cert: &Certificate, client: IpAddr) -> Admission {
        let target = match self.target(username) {
            Ok(target) => target,
            Err(refusal) => return Admission::Refused(refusal),
        };
        let table = self.table();
        let checked = certificate::check(cert, table.trust(), client, unix_now());
        let why = match checked.map(|()| certificate_mode(&table, &target, username, cert)) {
            Ok(Some(mode)) => {
                let grant = Grant::new(cert.clone(), table.trust().clone());
                return Admission::Admitted(Box::new(Principal {
                    key: PublicKey::new(cert.public_key().clone(), ""),
                    cert: Some(Arc::new(grant)),
                    key_revoked: false,
                    mode,
                    jump: self.config.routing.jump,
                    named: target.route,
                }));
            }
            Ok(None) => CertRefusal::NoRoute,
            Err(why) => why,
        };
        tracing::debug!(
            reason = why.label(),
            // Unauthenticated input: clipped like every such field.
            key_id = crate::ops::channel::clip(cert.key_id()),
            serial = cert.serial(),
            "certificate not used; deciding as its bare key"
        );
        let key = PublicKey::new(cert.public_key().clone(), "");
        match self.bare(&table, target, username, &key) {
            Admission::Refused(_) => Admission::Refused(Refusal::Certificate(why)),
            admitted @ Admission::Admitted(_) => admitted,
        }
    }

    /// The username, parsed once under the configured grammar.
    fn target(&self, username: &str) -> Result<Target, Refusal> {
        let routing = &self.config.routing;
        username::parse(
            username,
            &routing.target_separator,
            routing.username_grammar,
        )
        .map_err(|e| {
            tracing::debug!(error = %e, "malformed username");
            Refusal::MalformedUsername
        })
    }

    /// A bare key (or a certificate's key, when the certificate is not used).
    fn bare(
        &self,
        table: &RouteTable,
        target: Target,
        username: &str,
        key: &PublicKey,
    ) -> Admission {
        let routing = &self.config.routing;
        let key_revoked = table.trust().revoked.key(key.key_data());
        match decide(table, routing, &target, username, key, key_revoked) {
            Ok(mode) => Admission::Admitted(Box::new(Principal {
                key: key.clone(),
                cert: None,
                key_revoked,
                mode,
                jump: routing.jump,
                named: target.route,
            })),
            Err(refusal) => Admission::Refused(refusal),
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A checked certificate + parsed username → key mode (or choose), or
/// `None` when it opens no route (of the named target).
fn certificate_mode(
    table: &RouteTable,
    target: &Target,
    login_name: &str,
    cert: &Certificate,
) -> Option<Mode> {
    let routes = certificate::routes(cert, table);
    let Some(name) = &target.route else {
        return match routes.as_slice() {
            [] => None,
            [route] => Some(Mode::Key {
                route: route.clone(),
                user: route.key_mode_user(Some(login_name)),
            }),
            many => Some(Mode::Choose {
                routes: many.to_vec(),
                login_name: login_name.to_owned(),
            }),
        };
    };
    let route = routes.into_iter().find(|r| &r.name == name)?;
    Some(Mode::Key {
        user: target.user.clone().or_else(|| route.user.clone()),
        route,
    })
}

/// Key + parsed username → mode (SPEC §5), or why it is refused.
fn decide(
    table: &RouteTable,
    routing: &RoutingConfig,
    target: &Target,
    login_name: &str,
    key: &PublicKey,
    revoked: bool,
) -> Result<Mode, Refusal> {
    let routes_for_key = if revoked {
        &[]
    } else {
        table.routes_for_key(key)
    };
    let Some(name) = &target.route else {
        return match routes_for_key {
            [] if routing.jump == JumpPolicy::AnyKey => Ok(Mode::JumpOnly),
            [] => Err(Refusal::UnknownKey),
            [route] => Ok(Mode::Key {
                route: route.clone(),
                user: route.key_mode_user(Some(login_name)),
            }),
            many => Ok(Mode::Choose {
                routes: many.to_vec(),
                login_name: login_name.to_owned(),
            }),
        };
    };
    let route = table.get(name);
    match route {
        Some(route) if !revoked && route.authorizes(key) => Ok(Mode::Key {
            route: route.clone(),
            user: target.user.clone().or_else(|| route.user.clone()),
        }),
        _ if routing.agent_login => Ok(Mode::Agent {
            target: name.clone(),
            route: route.cloned(),
            user: target.user.clone(),
        }),
        _ if routes_for_key.is_empty() => Err(Refusal::UnknownKey),
        None => Err(Refusal::UnknownTarget),
        Some(_) => Err(Refusal::NotAuthorized),
    }
}

impl Principal {
    pub fn mode(&self) -> &Mode {
        &self.mode
    }

    /// The mode's name in logs, metrics and the audit event.
    pub fn label(&self) -> &'static str {
        match self.mode {
            Mode::Key { .. } => "key",
            Mode::Agent { .. } => "agent",
            Mode::JumpOnly => "jump",
            Mode::Choose { .. } => "choose",
        }
    }

    /// Agent mode is provisional: the client is not authorized until the box
    /// accepts its agent's keys, and counts as unauthenticated for every
    /// limit until then (SPEC §12).
    pub fn is_provisional(&self) -> bool {
        matches!(self.mode, Mode::Agent { .. })
    }

    /// The route name sessions go to, as named or chosen (in agent mode,
    /// whether or not it exists).
    pub fn route_name(&self) -> Option<&str> {
        match &self.mode {
            Mode::Key { route, .. } => Some(&route.name),
            Mode::Agent { target, .. } => Some(target),
            Mode::JumpOnly | Mode::Choose { .. } => None,
        }
    }

    /// The login user on the box, when known: as named, else the route's.
    pub fn login_user(&self) -> Option<&str> {
        match &self.mode {
            Mode::Key { user, .. } => user.as_deref(),
            Mode::Agent { user, route, .. } => user
                .as_deref()
                .or_else(|| route.as_ref().and_then(|r| r.user.as_deref())),
            Mode::JumpOnly | Mode::Choose { .. } => None,
        }
    }

    /// The route a `direct-tcpip` to `host:port` jumps to (SPEC §5 C, per
    /// `routing.jump`): raw TCP to its address. `None` — not a route, or a
    /// route this principal may not jump to, alike — is an ordinary forward.
    ///
    /// The sshgate jump form: when the username named an sshgate-compatible
    /// route (`ssh -J x@nsid-box@gw devbox@anything`), a `-W`/`-J` to port 22
    /// of any host that is not a route this principal may jump to goes to
    /// the named box instead, under the same policy.
    pub fn jump(&self, table: &RouteTable, host: &str, port: u32) -> Option<Arc<Route>> {
        let direct = table.get(host).filter(|r| self.may_jump(r));
        let sshgate_form = || {
            let named = table.get(self.named.as_deref()?)?;
            (port == SSHGATE_JUMP_PORT && named.sshgate_compat && self.may_jump(named))
                .then_some(named)
        };
        direct.or_else(sshgate_form).cloned()
    }

    /// Whether this principal may have `route` woken (or waited for): only
    /// a key authorized for it, never an agent-mode client before its box
    /// accepted it, nor any key a `jump = "any-key"` lets through.
    pub fn may_wake(&self, route: &Route) -> bool {
        !self.is_provisional() && self.authorizes(route)
    }

    /// Whether this principal's key (or certificate) is authorized for
    /// `route`.
    fn authorizes(&self, route: &Route) -> bool {
        match &self.cert {
            Some(grant) => grant.admits(route),
            None => !self.key_revoked && route.authorizes(&self.key),
        }
    }

    /// The certificate that admitted this principal, if one did.
    pub fn certificate(&self) -> Option<&Grant> {
        self.cert.as_deref()
    }

    /// Whether the certificate, if any, carries `extension`.
    fn permits(&self, extension: &str) -> bool {
        self.cert.as_ref().is_none_or(|g| g.permits(extension))
    }

    /// A jump is a TCP forward: a certificate needs `permit-port-forwarding`.
    fn may_jump(&self, route: &Route) -> bool {
        let allowed = match self.jump {
            JumpPolicy::Off => false,
            JumpPolicy::AnyKey => true,
            JumpPolicy::Authenticated => self.authorizes(route),
        };
        allowed && self.permits(PERMIT_PORT_FORWARDING)
    }

    /// Whether the route's `forwarding` switches allow `forward`, asked
    /// before the box is reached.
    ///
    /// `-R` and `-A` into the box exist only in key mode (in agent mode the
    /// client's agent is what logs in, and OpenSSH asks for `-R` before it
    /// forwards its agent). A local forward without a box to open it
    /// (jump-only, choose) is allowed here and then refused with the
    /// session's notice. In agent mode the route's switch is asked only once
    /// the box has accepted the client ([`Principal::allows_once_in`]): before
    /// that, a route that forbids `-L` must answer like one that does not
    /// exist.
    ///
    /// A certificate's extensions narrow the switches: without
    /// `permit-port-forwarding` no `-L`/`-D`/`-W`/`-R`, without
    /// `permit-agent-forwarding` no `-A`, without `permit-pty` no PTY.
    pub fn allows(&self, forward: Forward) -> bool {
        match (&self.mode, forward) {
            (Mode::Key { route, .. }, Forward::Local) => {
                route.forwarding.local && self.permits(PERMIT_PORT_FORWARDING)
            }
            (Mode::Key { route, .. }, Forward::Remote) => {
                route.forwarding.remote && self.permits(PERMIT_PORT_FORWARDING)
            }
            (Mode::Key { route, .. }, Forward::Agent) => {
                route.forwarding.agent && self.permits(PERMIT_AGENT_FORWARDING)
            }
            (_, Forward::Pty) => self.permits(PERMIT_PTY),
            (Mode::Agent { .. } | Mode::JumpOnly | Mode::Choose { .. }, Forward::Local) => {
                self.permits(PERMIT_PORT_FORWARDING)
            }
            (Mode::Agent { .. } | Mode::JumpOnly | Mode::Choose { .. }, Forward::Remote)
            | (Mode::Agent { .. } | Mode::JumpOnly | Mode::Choose { .. }, Forward::Agent) => false,
        }
    }

    /// Agent mode, once the box has accepted the client: whether the
    /// route's switch allows a local forward. Always true in other modes
    /// (asked of [`Principal::allows`] before).
    pub fn allows_once_in(&self) -> bool {
        match &self.mode {
            Mode::Agent { route, .. } => route.as_ref().is_none_or(|r| r.forwarding.local),
            Mode::Key { .. } | Mode::JumpOnly | Mode::Choose { .. } => true,
        }
    }
}
