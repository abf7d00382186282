//! Key mode, when the box is stopped and wakeable or still starting: the
//! login waits for it ([`crate::wake`]) in a task of its own, off the
//! connection's event loop; session channels are accepted at once and told
//! the wait's progress on stderr (one line per phase, then a heartbeat),
//! while forwards and jumps wait silently.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::task::AbortOnDropHandle;
use tracing::{Instrument, Span, warn};

use crate::notice::{Notice, Wait, WaitPhase};
use crate::ops::Conn;
use crate::relay::session::{BoxChannel, PendingBudget, PendingPool};
use crate::upstream::{BoxLeg, BoxSession, ClientLink, Login};
use crate::wake::Wakes;

/// A session's stderr, for the progress lines.
pub type Stderr = Pin<Box<dyn AsyncWrite + Send>>;

/// How the wait goes, shared with every channel waiting for it.
#[derive(Clone)]
pub enum KeyWait {
    /// Waiting; the phase once one was entered.
    Waiting(Option<WaitPhase>),
    Done(Result<Arc<BoxSession>, Notice>),
}

/// One connection's wait for its box: ended with the connection.
pub struct KeyWaiting {
    pub status: watch::Sender<KeyWait>,
    /// Input the waiting sessions may hold meanwhile.
    pub pending: Arc<PendingBudget>,
    _task: AbortOnDropHandle<()>,
}

/// What the wait's login needs.
pub struct WaitFor {
    pub route: String,
    pub user: Option<String>,
    pub client: ClientLink,
}

impl KeyWaiting {
    /// Starts waiting for the box and logging in to it as `user`.
    pub fn start(
        wakes: Arc<Wakes>,
        boxes: Arc<BoxLeg>,
        pool: &Arc<PendingPool>,
        WaitFor {
            route,
            user,
            client,
        }: WaitFor,
        span: &Span,
    ) -> Self {
        let status = watch::channel(KeyWait::Waiting(None)).0;
        let pending = PendingBudget::new(pool.clone());
        let (tx, budget) = (status.clone(), pending.clone());
        let task = async move {
            let told = |p| {
                tx.send_replace(KeyWait::Waiting(Some(p)));
            };
            let login = |route: Arc<crate::routes::Route>| {
                let (boxes, user, client) = (boxes.clone(), user.clone(), client.clone());
                async move {
                    let logging_in =
                        boxes.login(&route, user.as_deref(), Some(client), Login::Identity);
                    Box::pin(logging_in).await
                }
            };
            let result = wakes.until_up(&route, told, login).await.map(Arc::new);
            if let Err(notice) = &result {
                warn!(notice = %notice, "box login failed");
            }
            budget.settle();
            tx.send_replace(KeyWait::Done(result));
        };
        let task = tokio::spawn(task.instrument(span.clone()));
        Self {
            status,
            pending,
            _task: AbortOnDropHandle::new(task),
        }
    }

    /// Still waiting (not done either way).
    pub fn is_waiting(&self) -> bool {
        matches!(*self.status.borrow(), KeyWait::Waiting(_))
    }
}

/// A session channel's box side once the wait is done, its progress told on
/// `stderr` meanwhile.
pub async fn session(
    status: watch::Receiver<KeyWait>,
    (mut stderr, conn): (Stderr, Arc<Conn>),
    route: String,
    heartbeat: Duration,
) -> BoxChannel {
    let up = told(status, (&mut stderr, &conn), &route, heartbeat).await?;
    up.open_session().await.map_err(|_| {
        if up.is_closed() {
            Notice::LostBox { route }
        } else {
            Notice::SessionRefused { route }
        }
    })
}

/// The box connection once the wait is done, nothing told (forwards).
pub async fn silently(
    mut status: watch::Receiver<KeyWait>,
    route: String,
) -> Result<Arc<BoxSession>, Notice> {
    loop {
        if let KeyWait::Done(result) = &*status.borrow_and_update() {
            return result.clone();
        }
        if status.changed().await.is_err() {
            return Err(Notice::LostBox { route });
        }
    }
}

/// Waits for the outcome, writing a line on each phase change and a
/// heartbeat every `heartbeat` while a phase lasts.
async fn told(
    mut status: watch::Receiver<KeyWait>,
    (stderr, conn): (&mut Stderr, &Conn),
    route: &str,
    heartbeat: Duration,
) -> Result<Arc<BoxSession>, Notice> {
    let started = Instant::now();
    let mut last: Option<(WaitPhase, Instant)> = None;
    loop {
        let state = status.borrow_and_update().clone();
        match state {
            KeyWait::Done(result) => return result,
            KeyWait::Waiting(Some(phase)) if last.map(|l| l.0) != Some(phase) => {
                let entered = Wait::Entered {
                    route: route.to_owned(),
                    phase,
                };
                line(stderr, Notice::Wait(entered)).await;
                last = Some((phase, Instant::now()));
            }
            KeyWait::Waiting(_) => {}
        }
        let beat = async {
            match last {
                Some((_, at)) => tokio::time::sleep_until(at + heartbeat).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            changed = status.changed() => if changed.is_err() {
                return Err(Notice::LostBox { route: route.to_owned() });
            },
            () = beat => if let Some((phase, _)) = last {
                let still = Wait::Still {
                    route: route.to_owned(),
                    phase,
                    waited: started.elapsed(),
                };
                line(stderr, Notice::Wait(still)).await;
                // Waiting is not idling (`server.idle_timeout`).
                conn.touch();
                last = Some((phase, Instant::now()));
            },
        }
    }
}

/// One progress line on the session's stderr (CR LF: the client's terminal
/// may be raw already). A client gone is noticed by the session itself.
async fn line(stderr: &mut Stderr, notice: Notice) {
    let text = format!("{notice}\r\n");
    let _ = stderr.write_all(text.as_bytes()).await;
    let _ = stderr.flush().await;
}
