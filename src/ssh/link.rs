//! One client connection's way to its box, per mode: key mode logs in with
//! the route's identity on first use; agent mode logs in through the
//! client's forwarded agent once it asks for agent forwarding; jump-only and
//! choose have no box and answer sessions with a notice.
//!
//! An agent-mode client is provisional until the box accepts its agent's
//! keys: it stays unauthenticated for every limit (its pre-auth slot,
//! `login_grace`, the per-source penalty), and whatever goes wrong — no such
//! route, a stopped or unreachable box, a refusal — it is told the one
//! answer of a box that refuses its keys, no sooner than
//! [`AGENT_REFUSAL_FLOOR`] after the login started. The real reason is
//! logged for the operator.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use russh::server;
use tokio::sync::watch;
use tracing::{Instrument, Span, debug, info, warn};

use crate::access::{Mode, Principal};
use crate::notice::{self, Notice, Wait, WaitPhase};
use crate::ops::audit::{self, AuthFailure};
use crate::ops::{Conn, metrics};
use crate::relay::session::{BoxChannel, PendingBudget, PendingPool};
use crate::routes::Route;
use crate::upstream::{
    AgentFailure, AgentLogin as AgentRequest, BoxLeg, BoxSession, ClientLink, Login,
};
use crate::wake::Wakes;

use super::waiting::{self, KeyWait, KeyWaiting, Stderr, WaitFor};

/// An agent-mode refusal is told no sooner than this after the login began,
/// so that a target that does not exist, or a box that is stopped or down,
/// answers no faster than a box that refuses the keys.
pub const AGENT_REFUSAL_FLOOR: Duration = Duration::from_millis(1000);

/// The box connection a channel waits for, off the event loop.
pub type BoxFuture =
    std::pin::Pin<Box<dyn Future<Output = Result<Arc<BoxSession>, Notice>> + Send>>;

/// The connection's box, once admitted.
pub struct BoxLink {
    boxes: Arc<BoxLeg>,
    wakes: Arc<Wakes>,
    /// The gateway's pool that waiting sessions' input draws on.
    pool: Arc<PendingPool>,
    conn: Arc<Conn>,
    span: Span,
    /// Key mode: set when the client asks for agent forwarding (`ssh -A`);
    /// the box's agent channels are relayed back only then. Never set in
    /// agent mode.
    agent_forwarding: Arc<AtomicBool>,
    state: State,
}

enum State {
    /// `login` is the outcome of the login to the box, done on first use.
    Key {
        route: Arc<Route>,
        user: Option<String>,
        login: Option<Result<Arc<BoxSession>, Notice>>,
        /// The wait for a stopped or starting box, while it lasts.
        waiting: Option<KeyWaiting>,
    },
    /// `pending` is the input the sessions may hold until the login is done.
    Agent {
        target: String,
        route: Option<Arc<Route>>,
        user: Option<String>,
        login: Arc<watch::Sender<AgentLogin>>,
        pending: Arc<PendingBudget>,
    },
    /// No box (jump-only, choose): sessions are told this.
    Told(Notice),
}

/// Progress of an agent-mode login, shared with the channels waiting for it.
#[derive(Clone)]
enum AgentLogin {
    /// The client has not (yet) forwarded its agent.
    NotRequested,
    Connecting,
    Done(Result<Arc<BoxSession>, Notice>),
}

impl BoxLink {
    /// `local` and `separator` spell the commands a choosing client is
    /// shown; agent mode's pending input draws on `pool`.
    pub fn new(
        principal: &Principal,
        (boxes, wakes): (Arc<BoxLeg>, Arc<Wakes>),
        conn: Arc<Conn>,
        span: Span,
        (local, separator): (SocketAddr, &str),
        pool: &Arc<PendingPool>,
    ) -> Self {
        let state = match principal.mode().clone() {
            Mode::Key { route, user } => State::Key {
                route,
                user,
                login: None,
                waiting: None,
            },
            Mode::Agent {
                target,
                route,
                user,
            } => State::Agent {
                target,
                route,
                user,
                login: Arc::new(watch::channel(AgentLogin::NotRequested).0),
                pending: PendingBudget::new(pool.clone()),
            },
            Mode::JumpOnly => State::Told(Notice::JumpOnly),
            Mode::Choose { routes, login_name } => {
                let commands = routes
                    .iter()
                    .map(|r| {
                        let user = r
                            .key_mode_user(Some(&login_name))
                            .unwrap_or_else(|| login_name.clone());
                        notice::ssh_command(&user, &r.name, separator, local)
                    })
                    .collect();
                State::Told(Notice::ChooseRoute { commands })
            }
        };
        Self {
            boxes,
            wakes,
            pool: pool.clone(),
            conn,
            span,
            agent_forwarding: Arc::default(),
            state,
        }
    }

    /// Agent mode: sessions wait for the login through the client's agent.
    pub fn is_agent_mode(&self) -> bool {
        matches!(self.state, State::Agent { .. })
    }

    /// The route name for notices (as named, in agent mode).
    pub fn route_name(&self) -> Option<&str> {
        match &self.state {
            State::Key { route, .. } => Some(&route.name),
            State::Agent { target, .. } => Some(target),
            State::Told(_) => None,
        }
    }

    /// The box connection, logging in on first use (key mode); in agent
    /// mode, the login's outcome once it is done.
    pub async fn session_box(&mut self, client: server::Handle) -> Result<Arc<BoxSession>, Notice> {
        let link = self.client_link(client);
        let span = &self.span;
        match &mut self.state {
            State::Told(notice) => Err(notice.clone()),
            State::Agent { login, target, .. } => match &*login.borrow() {
                AgentLogin::Done(result) => result.clone(),
                AgentLogin::NotRequested | AgentLogin::Connecting => Err(Notice::NeedAgent {
                    route: target.clone(),
                }),
            },
            State::Key {
                route,
                user,
                login,
                waiting,
            } => {
                if let Some(wait) = waiting.take() {
                    let state = wait.status.borrow().clone();
                    match state {
                        KeyWait::Done(result) => *login = Some(result),
                        KeyWait::Waiting(phase) => {
                            *waiting = Some(wait);
                            let phase = phase.unwrap_or(WaitPhase::Starting);
                            let route = route.name.clone();
                            return Err(Notice::Wait(Wait::Entered { route, phase }));
                        }
                    }
                }
                // A box connection that died (keepalives, a restarted box) is
                // logged in to again for the next channel.
                let gone = matches!(login, Some(Ok(up)) if up.is_closed());
                match login {
                    Some(result) if !gone => return result.clone(),
                    Some(_) | None => {}
                }
                // Boxed: the login is large and done once; it must not
                // size the connection's future for its whole life.
                let logging_in =
                    self.boxes
                        .login(route, user.as_deref(), Some(link), Login::Identity);
                let result = Box::pin(logging_in).await.map(Arc::new);
                if let Err(notice) = &result {
                    if self.wakes.retries(notice) {
                        // Not kept: the channel waits for the box instead
                        // (start-wait, see `key_waiting`).
                        debug!(parent: span, notice = %notice, "box not up yet");
                        return result;
                    }
                    warn!(parent: span, notice = %notice, "box login failed");
                }
                login.insert(result).clone()
            }
        }
    }

    /// Agent mode, while the login through the client's agent runs: the box
    /// connection once it is done. It needs this connection's event loop,
    /// so it must be awaited off it (in a channel's own task).
    /// In key mode, the same while the box is waited for (see
    /// [`BoxLink::key_waiting`]).
    fn box_when_logged_in(&mut self, client: server::Handle) -> Option<BoxFuture> {
        if let Some((status, _)) = self.key_waiting(client, false) {
            let route = self.route_name().unwrap_or_default().to_owned();
            return Some(Box::pin(waiting::silently(status, route)));
        }
        let State::Agent { login, target, .. } = &self.state else {
            return None;
        };
        matches!(*login.borrow(), AgentLogin::Connecting)
            .then(|| Box::pin(agent_box(login.subscribe(), target.clone())) as _)
    }

    /// The box connection a forward (`-L`/`-W` through the box) uses: while
    /// a login (agent mode) or a wait (key mode) runs, a future that waits
    /// for it silently; otherwise the login, done now, and waited for when
    /// the box does not answer yet and `wake.start_wait` is set.
    pub async fn box_for_forward(&mut self, client: server::Handle) -> BoxFuture {
        if let Some(later) = self.box_when_logged_in(client.clone()) {
            return later;
        }
        let now = self.session_box(client.clone()).await;
        if let Err(notice) = &now
            && self.wakes.retries(notice)
            && let Some((status, _)) = self.key_waiting(client, true)
        {
            let route = self.route_name().unwrap_or_default().to_owned();
            return Box::pin(waiting::silently(status, route));
        }
        Box::pin(std::future::ready(now))
    }

    /// Key mode, when the box must be waited for — stopped and wakeable, or
    /// (`start`) it did not answer a first login — and no login is done:
    /// the wait, started on first use.
    fn key_waiting(
        &mut self,
        client: server::Handle,
        start: bool,
    ) -> Option<(watch::Receiver<KeyWait>, Arc<PendingBudget>)> {
        let link = self.client_link(client);
        let State::Key {
            route,
            user,
            login,
            waiting,
        } = &mut self.state
        else {
            return None;
        };
        if let Some(wait) = waiting {
            return wait
                .is_waiting()
                .then(|| (wait.status.subscribe(), wait.pending.clone()));
        }
        let usable = matches!(login, Some(Ok(up)) if !up.is_closed());
        if usable || !(start || self.wakes.waits_for(&route.name)) {
            return None;
        }
        let wait_for = WaitFor {
            route: route.name.clone(),
            user: user.clone(),
            client: link,
        };
        let (wakes, boxes) = (self.wakes.clone(), self.boxes.clone());
        let wait = KeyWaiting::start(wakes, boxes, &self.pool, wait_for, &self.span);
        let handed = (wait.status.subscribe(), wait.pending.clone());
        *waiting = Some(wait);
        Some(handed)
    }

    /// A session channel's box side: opened at once in key mode; in agent
    /// mode a future that waits for the agent login (it needs this
    /// connection's event loop, so it must not be awaited here).
    pub async fn open_session(&mut self, client: server::Handle, stderr: Stderr) -> SessionOpening {
        if let Some(waiting) = self.key_waiting(client.clone(), false) {
            return self.told_wait(waiting, stderr);
        }
        if let State::Agent {
            login,
            target,
            pending,
            ..
        } = &self.state
        {
            let opening = agent_box_channel(login.subscribe(), target.clone());
            return SessionOpening::Later(Box::pin(opening), pending.clone());
        }
        let route = self.route_name().unwrap_or_default().to_owned();
        let opened = match self.session_box(client.clone()).await {
            Ok(up) => up.open_session().await.map_err(|e| {
                debug!(parent: &self.span, error = %e, "box refused a session channel");
                refused_session(&up, route)
            }),
            Err(notice) => {
                // Start-wait: a box that does not answer yet is waited for.
                if self.wakes.retries(&notice)
                    && let Some(waiting) = self.key_waiting(client, true)
                {
                    return self.told_wait(waiting, stderr);
                }
                Err(notice)
            }
        };
        SessionOpening::Now(opened)
    }

    /// A session channel that waits for the box, told the progress.
    fn told_wait(
        &self,
        (status, pending): (watch::Receiver<KeyWait>, Arc<PendingBudget>),
        stderr: Stderr,
    ) -> SessionOpening {
        let route = self.route_name().unwrap_or_default().to_owned();
        let heartbeat = self.wakes.heartbeat();
        let opening = waiting::session(status, (stderr, self.conn.clone()), route, heartbeat);
        SessionOpening::Later(Box::pin(opening), pending)
    }

    /// `ssh -A`: in key mode the box's agent channels are relayed from now
    /// on; in agent mode this starts the login through the client's agent.
    pub fn agent_requested(&mut self, client: server::Handle) {
        match &self.state {
            State::Key { .. } => self.agent_forwarding.store(true, Ordering::Release),
            State::Agent { .. } => self.start_agent_login(client),
            State::Told(_) => {}
        }
    }

    /// Agent mode: a session started without `-A`; it never will be
    /// forwarded now, so waiting sessions are told.
    pub fn session_started(&self) {
        let State::Agent { login, target, .. } = &self.state else {
            return;
        };
        login.send_if_modified(|state| match state {
            AgentLogin::NotRequested => {
                *state = AgentLogin::Done(Err(Notice::NeedAgent {
                    route: target.clone(),
                }));
                true
            }
            AgentLogin::Connecting | AgentLogin::Done(_) => false,
        });
    }

    fn client_link(&self, handle: server::Handle) -> ClientLink {
        ClientLink {
            handle,
            agent_forwarding: self.agent_forwarding.clone(),
            conn: self.conn.clone(),
            span: self.span.clone(),
        }
    }

    /// Agent mode: open the agent channel back to the client and log in to
    /// the box with its keys, off the event loop (the agent's answers arrive
    /// through it).
    fn start_agent_login(&mut self, client: server::Handle) {
        let link = self.client_link(client);
        let State::Agent {
            target,
            route,
            user,
            login,
            pending,
        } = &self.state
        else {
            return;
        };
        if !matches!(*login.borrow(), AgentLogin::NotRequested) {
            return;
        }
        login.send_replace(AgentLogin::Connecting);
        // Named from what the client typed only: the route's default user
        // would tell that the route exists.
        let refused = Notice::LoginRefused {
            route: target.clone(),
            user: user.clone().unwrap_or_else(|| "the default user".into()),
        };
        let user = user
            .clone()
            .or_else(|| route.as_ref().and_then(|r| r.user.clone()));
        let (boxes, conn, login) = (self.boxes.clone(), self.conn.clone(), login.clone());
        let pending = pending.clone();
        let (target, route) = (target.clone(), route.clone());
        let task = async move {
            let started = tokio::time::Instant::now();
            let request = AgentRequest {
                target: &target,
                route: route.as_deref(),
                user: user.as_deref(),
                client: link,
            };
            let result = match boxes.agent_login(request).await {
                Ok(session) => {
                    audit::authenticated(&conn, "agent");
                    metrics::get().auth("agent", "accepted");
                    Ok(Arc::new(session))
                }
                Err(failure) => {
                    match &failure {
                        AgentFailure::NotLoggedIn(why) => {
                            info!(reason = why, "agent-mode login failed")
                        }
                        AgentFailure::Capped => {
                            info!("agent-mode login refused: agent logins capped")
                        }
                        AgentFailure::Box(notice) => {
                            info!(notice = %notice, "agent-mode login failed")
                        }
                    }
                    // A cap reached is no failed login of this client's.
                    agent_login_failed(
                        &conn,
                        &target,
                        route.is_none(),
                        !matches!(failure, AgentFailure::Capped),
                    );
                    tokio::time::sleep_until(started + AGENT_REFUSAL_FLOOR).await;
                    Err(refused)
                }
            };
            // From now on the sessions drain into the box (or fail): what
            // they held goes back to the gateway's pool.
            pending.settle();
            login.send_replace(AgentLogin::Done(result));
        };
        tokio::spawn(task.instrument(self.span.clone()));
    }
}

/// Counts and logs a refused agent-mode login (the audit `auth_failure`:
/// `unknown_target` when no route has that name, else `agent_login_refused`).
fn agent_login_failed(conn: &Conn, target: &str, no_route: bool, counts: bool) {
    if counts {
        conn.note_auth_failure();
    }
    metrics::get().auth("agent", "rejected");
    let key_fp = conn.identity().key_fp;
    let failure = AuthFailure {
        reason: if no_route {
            "unknown_target"
        } else {
            "agent_login_refused"
        },
        key_fingerprint: key_fp.as_deref(),
        requested: Some(target),
    };
    audit::auth_failure(conn, &failure);
}

/// The box side of a new session channel: now, or (agent mode) once the
/// login is done, with the connection's allowance for input meanwhile.
pub enum SessionOpening {
    Now(BoxChannel),
    Later(
        std::pin::Pin<Box<dyn Future<Output = BoxChannel> + Send>>,
        Arc<PendingBudget>,
    ),
}

/// Agent mode: the box connection, once the agent login is done.
async fn agent_box(
    mut login: watch::Receiver<AgentLogin>,
    route: String,
) -> Result<Arc<BoxSession>, Notice> {
    loop {
        if let AgentLogin::Done(result) = &*login.borrow_and_update() {
            return result.clone();
        }
        if login.changed().await.is_err() {
            return Err(Notice::LostBox { route });
        }
    }
}

/// Agent mode: the box channel, once the agent login is done.
async fn agent_box_channel(login: watch::Receiver<AgentLogin>, route: String) -> BoxChannel {
    let up = agent_box(login, route.clone()).await?;
    up.open_session().await.map_err(|e| {
        debug!(error = %e, "box refused a session channel");
        refused_session(&up, route)
    })
}

/// Why the box gave no session channel: its connection is gone, or it said no.
fn refused_session(up: &BoxSession, route: String) -> Notice {
    if up.is_closed() {
        Notice::LostBox { route }
    } else {
        Notice::SessionRefused { route }
    }
}
