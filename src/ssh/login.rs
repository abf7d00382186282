//! Authentication and the choice of route (SPEC §5): the offered key and the
//! username become a [`State`]. The box login happens when the client first
//! needs the box (a session or a forward), so a jump-only connection never
//! logs in to a box.

use std::sync::Arc;

use russh::keys::{HashAlg, PublicKey};
use russh::server::{self, Auth};
use tokio::sync::watch;
use tracing::info;

use super::box_handler::ClientLink;
use super::handler::ClientHandler;
use super::messages::Notice;
use super::upstream::{self, Login, Upstream};
use crate::auth::principal::{self, Decision};
use crate::auth::username;
use crate::config::JumpPolicy;
use crate::ops::metrics;
use crate::routes::{Route, RouteState};

/// Where an authenticated connection goes.
pub enum State {
    Unauthenticated,
    /// Key mode: sessions and forwards go to this route's box.
    Relay {
        route: Arc<Route>,
        user: String,
        upstream: UpstreamSlot,
    },
    /// Agent mode (bring your own key): the box is logged in to with the
    /// client's forwarded agent once the client asks for agent forwarding.
    /// `route` is `None` when the target does not exist, which must look
    /// exactly like a box that refuses the agent's keys.
    Agent {
        target: String,
        route: Option<Arc<Route>>,
        user: Option<String>,
        login: Arc<watch::Sender<AgentLogin>>,
    },
    /// Sessions are answered by the gateway with this notice; jumps to the
    /// routes the key is authorized for still work.
    Notice(Notice),
}

/// Progress of an agent-mode login, shared with the channels waiting for it.
#[derive(Clone)]
pub enum AgentLogin {
    /// The client has not (yet) forwarded its agent.
    NotRequested,
    Connecting,
    Done(Result<Arc<Upstream>, Notice>),
}

/// The login to the box.
pub enum UpstreamSlot {
    NotYet,
    Ready(Arc<Upstream>),
    Failed(Notice),
}

impl ClientHandler {
    fn decide(&self, user: &str, key: &PublicKey) -> Decision {
        let routing = &self.ctx.config.routing;
        match username::parse(user, &routing.target_separator, routing.username_grammar) {
            Ok(target) => principal::decide(&self.ctx.routes.load(), &target, user, key),
            Err(e) => {
                self.span
                    .in_scope(|| tracing::debug!(error = %e, "malformed username"));
                Decision::Deny
            }
        }
    }

    /// With `jump = "any-key"`, a key that opens no box may still jump.
    fn jump_only(&self, user: &str) -> bool {
        let routing = &self.ctx.config.routing;
        routing.jump == JumpPolicy::AnyKey
            && username::parse(user, &routing.target_separator, routing.username_grammar)
                .is_ok_and(|t| t.route.is_none())
    }

    /// With `agent_login`, a named target lets any key in provisionally:
    /// returns the target and the named user.
    fn agent_target(&self, user: &str) -> Option<(String, Option<String>)> {
        let routing = &self.ctx.config.routing;
        if !routing.agent_login {
            return None;
        }
        let target =
            username::parse(user, &routing.target_separator, routing.username_grammar).ok()?;
        Some((target.route?, target.user))
    }

    /// A key is offered (signature not checked yet): only say whether it could work.
    pub(super) fn offered(&self, user: &str, key: &PublicKey) -> Auth {
        match self.decide(user, key) {
            Decision::Deny if self.agent_target(user).is_none() && !self.jump_only(user) => {
                self.conn.note_auth_failure();
                metrics::get().auth("none", "rejected");
                Auth::reject()
            }
            _ => Auth::Accept,
        }
    }

    /// The key's signature is verified: decide for real.
    pub(super) fn verified(&mut self, user: &str, key: &PublicKey) -> Auth {
        let decision = self.decide(user, key);
        let fingerprint = key.fingerprint(HashAlg::Sha256);
        self.record("key_fp", &fingerprint.to_string());
        self.state = match decision {
            Decision::Deny if let Some((target, login_user)) = self.agent_target(user) => {
                self.record_mode("agent");
                self.record("route", &target);
                let route = self.ctx.routes.load().get(&target).cloned();
                let user = login_user.or_else(|| route.as_ref().and_then(|r| r.user.clone()));
                if let Some(u) = &user {
                    self.record("user", u);
                }
                let (login, _) = watch::channel(AgentLogin::NotRequested);
                State::Agent {
                    target,
                    route,
                    user,
                    login: Arc::new(login),
                }
            }
            Decision::Deny if self.jump_only(user) => {
                self.record_mode("jump");
                State::Notice(Notice::JumpOnly)
            }
            Decision::Deny => {
                self.span
                    .in_scope(|| info!(key_fp = %fingerprint, "authentication refused"));
                self.conn.note_auth_failure();
                metrics::get().auth("none", "rejected");
                return Auth::reject();
            }
            Decision::Choose { routes } => {
                let commands = routes.iter().map(|r| self.command_for(r, user)).collect();
                self.record_mode("choose");
                State::Notice(Notice::ChooseRoute { commands })
            }
            Decision::Route { route, user } => self.start(route, user),
        };
        self.key = Some(key.clone());
        let mode = self.conn.identity().mode.unwrap_or("key");
        metrics::get().auth(mode, "accepted");
        self.span.in_scope(|| info!("authenticated"));
        Auth::Accept
    }

    /// Records a connection fact in the span (logs) and the record (audit).
    fn record(&self, field: &'static str, value: &str) {
        self.span.record(field, value);
        self.conn.identify(|id| {
            let slot = match field {
                "route" => &mut id.route,
                "user" => &mut id.user,
                "key_fp" => &mut id.key_fp,
                _ => return,
            };
            *slot = Some(value.to_owned());
        });
    }

    fn record_mode(&self, mode: &'static str) {
        self.span.record("mode", mode);
        self.conn.identify(|id| id.mode = Some(mode));
    }

    fn start(&self, route: Arc<Route>, user: Option<String>) -> State {
        self.record("route", &route.name);
        self.record_mode("key");
        if let RouteState::Stopped { message } = &route.state {
            return State::Notice(Notice::Stopped {
                route: route.name.clone(),
                note: message.clone(),
            });
        }
        let Some(user) = user else {
            return State::Notice(Notice::NoUser {
                route: route.name.clone(),
            });
        };
        self.record("user", &user);
        State::Relay {
            route,
            user,
            upstream: UpstreamSlot::NotYet,
        }
    }

    /// `ssh [-p PORT] USER@ROUTE@HOST` for the address this client used.
    fn command_for(&self, route: &Route, login_name: &str) -> String {
        let user = route.user.as_deref().unwrap_or(login_name);
        let sep = &self.ctx.config.routing.target_separator;
        let host = match self.local.ip() {
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        };
        match self.local.port() {
            22 => format!("ssh {user}{sep}{}{sep}{host}", route.name),
            port => format!("ssh -p {port} {user}{sep}{}{sep}{host}", route.name),
        }
    }

    /// The box connection, logging in on first use.
    pub(super) async fn upstream(
        &mut self,
        client: server::Handle,
    ) -> Result<Arc<Upstream>, Notice> {
        let (route, user, slot) = match &mut self.state {
            State::Relay {
                route,
                user,
                upstream,
            } => (route, user, upstream),
            State::Notice(notice) => return Err(notice.clone()),
            State::Agent { login, target, .. } => {
                return match &*login.borrow() {
                    AgentLogin::Done(result) => result.clone(),
                    AgentLogin::NotRequested | AgentLogin::Connecting => Err(Notice::NeedAgent {
                        route: target.clone(),
                    }),
                };
            }
            State::Unauthenticated => return Err(Notice::JumpOnly),
        };
        if let UpstreamSlot::NotYet = slot {
            let link = ClientLink {
                handle: client,
                forwarding: route.forwarding,
                agent: self.agent_requested.clone(),
                conn: self.conn.clone(),
                span: self.span.clone(),
            };
            let ctx = &self.ctx;
            let connecting = upstream::connect(
                &ctx.client_settings,
                &ctx.config.upstream,
                route,
                user,
                Some(link),
                Login::Identity,
            );
            // Boxed: the login is large and done once; it must not size
            // the connection's future for its whole life (see handler.rs).
            *slot = match Box::pin(connecting).await {
                Ok(up) => UpstreamSlot::Ready(Arc::new(up)),
                Err(notice) => {
                    self.span
                        .in_scope(|| tracing::warn!(notice = %notice, "box login failed"));
                    UpstreamSlot::Failed(notice)
                }
            };
        }
        match slot {
            UpstreamSlot::Ready(up) => Ok(up.clone()),
            UpstreamSlot::Failed(notice) => Err(notice.clone()),
            UpstreamSlot::NotYet => Err(Notice::JumpOnly),
        }
    }
}
