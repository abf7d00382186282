//! How long a connection may live: `login_grace` before authentication and
//! `idle_timeout` after it, for both fronts; and how a connection ended, for
//! the per-source penalty.

use std::time::{Duration, Instant};

use super::limits::Failure;
use crate::ops::Conn;

/// How often the idle timer looks at a connection.
const IDLE_CHECK_MAX: Duration = Duration::from_secs(1);

/// How a connection ended, for the penalty bookkeeping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    Ended,
    LoginGraceExpired,
}

/// What an ended connection counts as in the per-source penalty: nothing
/// once authenticated; a failure after a rejected attempt or when
/// `login_grace` ran out; half of one when it just ended (OpenSSH `noauth`).
pub(super) fn failure(conn: &Conn, served: Served) -> Option<Failure> {
    if conn.is_authenticated() {
        return None;
    }
    match served {
        Served::LoginGraceExpired => Some(Failure::Rejected),
        Served::Ended if conn.auth_failures() > 0 => Some(Failure::Rejected),
        Served::Ended => Some(Failure::NoAuth),
    }
}

/// Resolves at `deadline` if `conn` has not authenticated by then; never otherwise.
pub(super) async fn login_grace_expired(conn: &Conn, deadline: Instant) {
    tokio::time::sleep_until(deadline.into()).await;
    if conn.is_authenticated() {
        std::future::pending::<()>().await;
    }
}

/// Resolves once an authenticated `conn` has relayed nothing for `idle`;
/// never when `idle` is zero (no idle timeout).
pub(super) async fn idle_expired(conn: &Conn, idle: Duration) {
    if idle.is_zero() {
        return std::future::pending::<()>().await;
    }
    loop {
        tokio::time::sleep(idle.min(IDLE_CHECK_MAX)).await;
        if conn.is_authenticated() && conn.idle_for() >= idle {
            return;
        }
    }
}
