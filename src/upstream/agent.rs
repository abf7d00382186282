//! Agent mode's box login: the client's forwarded agent, reached over a
//! channel to the client, lists its keys and signs for the gateway's login
//! to the box; the box's own `authorized_keys` decides.
//!
//! Whether or not the target exists, the client sees the same: the agent
//! channel opened and its keys listed. Then, for a real box only, a slot
//! (capped per route and per source, [`super::agent_slots`]) and the login.
//! The listing, and all signing answers together, are each bounded by
//! `upstream.agent_timeout`, so an agent that stalls cannot hold a box
//! connection for the whole handshake timeout.
//!
//! One thing a client learns here that SSH itself tells anyone who can reach
//! a box: russh asks the agent to sign only after the box said the key is
//! acceptable, so an agent listing someone else's public key learns whether
//! the box accepts it (see README, Security model).

use std::time::Duration;

use russh::keys::HashAlg;
use russh::keys::agent::AgentIdentity;
use russh::keys::agent::client::AgentClient;
use russh::server;
use russh::{AgentAuthError, Signer};
use tracing::debug;

use crate::relay::flow::{self, Granter};

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
    /// time, or there is no route or user.
    NotLoggedIn(&'static str),
    /// `agent_logins_per_route` or `_per_source` logins are in progress:
    /// the client is refused, but this is no failed login of its own.
    Capped,
    /// The box leg's own failure (the box refused the keys, or could not be
    /// reached, …).
    Box(Notice),
}

impl BoxLeg {
    /// Logs in to the box through the client's agent (see the module docs).
    pub async fn agent_login(&self, login: AgentLogin<'_>) -> Result<BoxSession, AgentFailure> {
        let config = &self.config;
        let keys = open_agent(&login.client.handle, config.agent_timeout).await?;
        let (Some(route), Some(user)) = (login.route, login.user) else {
            return Err(AgentFailure::NotLoggedIn("no such route, or no user"));
        };
        // Taken only now, for a box about to be dialled: a slow agent holds
        // no slot, and a name that is no route takes none.
        let source = login.client.conn.client.ip();
        let Some(_slot) = self.agent_slots.acquire(
            &route.name,
            source,
            config.agent_logins_per_route,
            config.agent_logins_per_source,
        ) else {
            return Err(AgentFailure::Capped);
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
    let mut agent = AgentClient::connect(flow::stream(channel, Granter::ClientHalf));
    match tokio::time::timeout(timeout, agent.request_identities()).await {
        Ok(Ok(identities)) => Ok(AgentKeys {
            agent,
            identities: distinct(identities),
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

/// Keys offered to a box at most: OpenSSH's `MaxAuthTries` default. A box
/// disconnects after that many anyway, and an agent listing one key many
/// times must not stretch the login.
const MAX_AGENT_KEYS: usize = 6;

/// The agent's keys, each once, at most [`MAX_AGENT_KEYS`].
fn distinct(identities: Vec<AgentIdentity>) -> Vec<AgentIdentity> {
    let mut seen = Vec::new();
    let mut kept = Vec::new();
    for identity in identities {
        let key = identity.public_key().key_data().clone();
        if seen.contains(&key) {
            continue;
        }
        seen.push(key);
        kept.push(identity);
        if kept.len() == MAX_AGENT_KEYS {
            break;
        }
    }
    kept
}

/// The client's agent as a signer: all its answers together must come
/// within `timeout` of the first signing request, so a stalling agent
/// cannot hold the box connection for the whole handshake timeout.
pub(super) struct TimedAgent<'a> {
    pub agent: &'a mut ClientAgent,
    pub timeout: Duration,
    pub deadline: Option<tokio::time::Instant>,
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
        let deadline = *self
            .deadline
            .get_or_insert_with(|| tokio::time::Instant::now() + self.timeout);
        let signing = self.agent.auth_sign(key, hash_alg, to_sign);
        async move {
            match tokio::time::timeout_at(deadline, signing).await {
                Ok(result) => result.map_err(SignError::Agent),
                Err(_) => Err(SignError::Timeout),
            }
        }
    }
}
