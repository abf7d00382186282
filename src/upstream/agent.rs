//! Agent mode's box login: the client's forwarded agent, reached over a
//! channel to the client, lists its keys and signs for the gateway's login
//! to the box; the box's own `authorized_keys` decides.
//!
//! The same steps run whether or not the target exists, so the client sees
//! the same channels whatever it names: a slot (capped per route and per
//! source, [`super::agent_slots`]), the agent channel, the key list — then,
//! for a real box, the login. Every answer of the agent is bounded by
//! `upstream.agent_timeout`, so an agent that never answers cannot hold a
//! box connection for the whole handshake timeout.

use std::time::Duration;

use russh::keys::HashAlg;
use russh::keys::agent::AgentIdentity;
use russh::keys::agent::client::AgentClient;
use russh::server;
use russh::{AgentAuthError, Signer};
use tracing::debug;

use super::back::ClientLink;
use super::{AgentKeys, BoxLeg, BoxSession, ClientAgent, Login};
use crate::notice::Notice;
use crate::routes::Route;

/// What an agent-mode login asks for: the target as named, the route when
/// it exists, the login user when known.
pub struct AgentLogin<'a> {
    pub target: &'a str,
    pub route: Option<&'a Route>,
    pub user: Option<&'a str>,
    pub client: ClientLink,
}

/// Why an agent-mode login failed: the box refused (or there is no box, or
/// no user), or something else went wrong, which only the operator is told.
#[derive(Debug)]
pub enum AgentFailure {
    /// The client refused the agent channel, its agent listed nothing in
    /// time, a cap was reached, or there is no route or user.
    NotLoggedIn(&'static str),
    /// The box leg's own failure (the box refused the keys, or could not be
    /// reached, …).
    Box(Notice),
}

impl BoxLeg {
    /// Logs in to the box through the client's agent (see the module docs).
    pub async fn agent_login(&self, login: AgentLogin<'_>) -> Result<BoxSession, AgentFailure> {
        let source = login.client.conn.client.ip();
        let config = &self.config;
        let Some(_slot) = self.agent_slots.acquire(
            login.target,
            source,
            config.agent_logins_per_route,
            config.agent_logins_per_source,
        ) else {
            return Err(AgentFailure::NotLoggedIn("agent logins capped"));
        };
        let keys = open_agent(&login.client.handle, config.agent_timeout).await?;
        let (Some(route), Some(user)) = (login.route, login.user) else {
            return Err(AgentFailure::NotLoggedIn("no such route, or no user"));
        };
        self.login(
            route,
            Some(user),
            Some(login.client),
            Login::Agent(Box::new(keys)),
        )
        .await
        .map_err(AgentFailure::Box)
    }
}

/// Opens the agent channel to the client and lists its keys.
async fn open_agent(client: &server::Handle, timeout: Duration) -> Result<AgentKeys, AgentFailure> {
    let channel = match client.channel_open_agent().await {
        Ok(channel) => channel,
        Err(e) => {
            debug!(error = %e, "client refused the agent channel");
            return Err(AgentFailure::NotLoggedIn(
                "client refused the agent channel",
            ));
        }
    };
    let mut agent = AgentClient::connect(channel.into_stream());
    match tokio::time::timeout(timeout, agent.request_identities()).await {
        Ok(Ok(identities)) => Ok(AgentKeys {
            agent,
            identities,
            timeout,
        }),
        Ok(Err(e)) => {
            debug!(error = %e, "client agent did not list its keys");
            Err(AgentFailure::NotLoggedIn("agent did not list its keys"))
        }
        Err(_) => Err(AgentFailure::NotLoggedIn(
            "agent timed out listing its keys",
        )),
    }
}

/// The client's agent as a signer whose every answer is bounded by `timeout`.
pub(super) struct TimedAgent<'a> {
    pub agent: &'a mut ClientAgent,
    pub timeout: Duration,
}

/// A signing request the agent failed or did not answer in time.
#[derive(Debug, thiserror::Error)]
pub(super) enum SignError {
    #[error(transparent)]
    Send(#[from] russh::SendError),
    #[error(transparent)]
    Agent(#[from] AgentAuthError),
    #[error("the agent did not answer in time")]
    Timeout,
}

impl Signer for TimedAgent<'_> {
    type Error = SignError;

    fn auth_sign(
        &mut self,
        key: &AgentIdentity,
        hash_alg: Option<HashAlg>,
        to_sign: Vec<u8>,
    ) -> impl Future<Output = Result<Vec<u8>, Self::Error>> + Send {
        let timeout = self.timeout;
        let signing = self.agent.auth_sign(key, hash_alg, to_sign);
        async move {
            match tokio::time::timeout(timeout, signing).await {
                Ok(result) => result.map_err(SignError::Agent),
                Err(_) => Err(SignError::Timeout),
            }
        }
    }
}
