//! Authentication and the choice of route (SPEC §5): the offered key and the
//! username become a [`State`]; key mode starts the upstream login at once so
//! the box is ready by the time the client opens its first channel.

use std::sync::Arc;

use russh::keys::{HashAlg, PublicKey};
use russh::server::Auth;
use tokio::task::JoinHandle;
use tracing::{Instrument, info};

use super::handler::ClientHandler;
use super::messages::Notice;
use super::upstream::{self, Upstream};
use crate::auth::principal::{self, Decision};
use crate::auth::username;
use crate::routes::{Route, RouteState};

/// Where an authenticated connection goes.
pub enum State {
    Unauthenticated,
    /// Key mode: channels are relayed to this route's box.
    Relay { route: Arc<Route>, upstream: UpstreamSlot },
    /// The gateway answers every session itself with this notice.
    Notice(Notice),
}

/// The login to the box: started at authentication, awaited by the first channel.
pub enum UpstreamSlot {
    Connecting(JoinHandle<Result<Upstream, Notice>>),
    Ready(Arc<Upstream>),
    Failed(Notice),
}

impl ClientHandler {
    fn decide(&self, user: &str, key: &PublicKey) -> Decision {
        let routing = &self.ctx.config.routing;
        match username::parse(user, &routing.target_separator, routing.username_grammar) {
            Ok(target) => principal::decide(&self.ctx.routes.load(), &target, user, key),
            Err(e) => {
                self.span.in_scope(|| tracing::debug!(error = %e, "malformed username"));
                Decision::Deny
            }
        }
    }

    /// A key is offered (signature not checked yet): only say whether it could work.
    pub(super) fn offered(&self, user: &str, key: &PublicKey) -> Auth {
        match self.decide(user, key) {
            Decision::Deny => Auth::reject(),
            Decision::Route { .. } | Decision::Choose { .. } => Auth::Accept,
        }
    }

    /// The key's signature is verified: decide for real and start the upstream.
    pub(super) fn verified(&mut self, user: &str, key: &PublicKey) -> Auth {
        let decision = self.decide(user, key);
        let fingerprint = key.fingerprint(HashAlg::Sha256);
        self.span.record("key_fp", tracing::field::display(&fingerprint));
        self.state = match decision {
            Decision::Deny => {
                self.span.in_scope(|| info!(key_fp = %fingerprint, "authentication refused"));
                return Auth::reject();
            }
            Decision::Choose { routes } => {
                let commands = routes.iter().map(|r| self.command_for(r, user)).collect();
                self.span.record("mode", "choose");
                State::Notice(Notice::ChooseRoute { commands })
            }
            Decision::Route { route, user } => self.start(route, user),
        };
        Auth::Accept
    }

    fn start(&self, route: Arc<Route>, user: Option<String>) -> State {
        self.span.record("route", route.name.as_str());
        self.span.record("mode", "key");
        if let RouteState::Stopped { message } = &route.state {
            return State::Notice(Notice::Stopped { route: route.name.clone(), note: message.clone() });
        }
        let Some(user) = user else {
            return State::Notice(Notice::NoUser { route: route.name.clone() });
        };
        self.span.record("user", user.as_str());
        self.span.in_scope(|| info!("authenticated"));
        let ctx = self.ctx.clone();
        let target = route.clone();
        let connecting = tokio::spawn(
            async move { upstream::connect(&ctx.client_settings, &ctx.config.upstream, &target, &user).await }
                .instrument(self.span.clone()),
        );
        State::Relay { route, upstream: UpstreamSlot::Connecting(connecting) }
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

    /// The box connection, waiting for the login started at authentication.
    pub(super) async fn upstream(&mut self) -> Result<Arc<Upstream>, Notice> {
        let State::Relay { upstream: slot, .. } = &mut self.state else {
            return Err(match &self.state {
                State::Notice(n) => n.clone(),
                _ => Notice::NoUser { route: String::new() },
            });
        };
        if let UpstreamSlot::Connecting(task) = slot {
            *slot = match task.await {
                Ok(Ok(up)) => UpstreamSlot::Ready(Arc::new(up)),
                Ok(Err(notice)) => {
                    self.span.in_scope(|| tracing::warn!(notice = %notice, "box login failed"));
                    UpstreamSlot::Failed(notice)
                }
                Err(join) => UpstreamSlot::Failed(Notice::Unreachable {
                    route: String::new(),
                    address: String::new(),
                    reason: format!("internal error ({join})"),
                }),
            };
        }
        match slot {
            UpstreamSlot::Ready(up) => Ok(up.clone()),
            UpstreamSlot::Failed(notice) => Err(notice.clone()),
            UpstreamSlot::Connecting(_) => unreachable!("replaced above"),
        }
    }
}
