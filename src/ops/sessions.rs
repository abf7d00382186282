//! The live connections of one gateway (not of the process: tests run
//! several gateways in one), for the sessions API: each connection is
//! registered while it lives; the API lists them ([`SessionList`], the JSON
//! shape the CLI reads back) and ends one by id.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::audit;
use super::channel::clip;
use super::conn::{Conn, lock};
use super::source::canonical;

/// Most sessions one list holds; beyond it the list says `truncated`.
pub const MAX_LISTED: usize = 10_000;

/// Most channels listed per session (`channel_count` has them all): channels
/// the box opens (`-R`) are not capped by `server.max_channels`.
pub const MAX_CHANNELS_LISTED: usize = 100;

/// The live connections.
#[derive(Default)]
pub struct Sessions {
    live: Mutex<HashMap<String, Arc<Conn>>>,
}

/// A connection's place in [`Sessions`]; it leaves the list when dropped.
pub struct Registered {
    sessions: Arc<Sessions>,
    conn: Arc<Conn>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        let mut live = lock(&self.sessions.live);
        // Only its own entry (ids are random: a clash is not impossible).
        if live
            .get(self.conn.id())
            .is_some_and(|c| Arc::ptr_eq(c, &self.conn))
        {
            live.remove(self.conn.id());
        }
    }
}

/// `GET /sessions`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionList {
    /// Oldest first, at most [`MAX_LISTED`].
    pub sessions: Vec<SessionInfo>,
    /// Live connections in all.
    pub count: usize,
    /// True when `sessions` holds fewer than `count`.
    pub truncated: bool,
}

/// One live connection. No secrets: the key fingerprint is public.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionInfo {
    pub id: String,
    /// `ssh` or `http`.
    pub protocol: String,
    pub client_address: String,
    pub client_port: u16,
    pub authenticated: bool,
    /// `key`, `agent`, `jump`, `choose`, `connect`, `websocket`.
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    pub route: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub key_fingerprint: Option<String>,
    /// RFC 3339, UTC.
    pub started: String,
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub channel_count: usize,
    /// At most [`MAX_CHANNELS_LISTED`], oldest first.
    #[serde(default)]
    pub channels: Vec<ChannelInfo>,
    /// The key ID of the user certificate it authenticated with.
    #[serde(default)]
    pub cert_key_id: Option<String>,
    /// That certificate's serial.
    #[serde(default)]
    pub cert_serial: Option<u64>,
}

/// One open channel of a session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChannelInfo {
    /// `session`, `direct-tcpip`, `jump`, `forwarded-tcpip`, `agent`.
    pub kind: String,
    /// `host:port` of a forward or jump.
    #[serde(default)]
    pub destination: Option<String>,
    /// `shell`, `exec` or `subsystem`, once a session channel asked.
    #[serde(default)]
    pub session_type: Option<String>,
    #[serde(default)]
    pub subsystem: Option<String>,
    /// RFC 3339, UTC.
    pub started: String,
}

impl Sessions {
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// Lists `conn` until the returned guard is dropped.
    pub fn register(self: &Arc<Self>, conn: Arc<Conn>) -> Registered {
        lock(&self.live)
            .entry(conn.id().to_owned())
            .or_insert_with(|| conn.clone());
        Registered {
            sessions: self.clone(),
            conn,
        }
    }

    /// The live connections, oldest first, at most `max`.
    pub fn list(&self, max: usize) -> SessionList {
        let mut conns: Vec<Arc<Conn>> = lock(&self.live).values().cloned().collect();
        let count = conns.len();
        conns.sort_by_key(|c| c.started_at());
        conns.truncate(max);
        SessionList {
            sessions: conns.iter().map(|c| info(c)).collect(),
            count,
            truncated: count > max,
        }
    }

    /// The connection `id`, when it is live.
    pub fn get(&self, id: &str) -> Option<SessionInfo> {
        let conn = lock(&self.live).get(id).cloned()?;
        Some(info(&conn))
    }

    /// Ends the connection `id` (logging `operator_kill`, with the admin
    /// client `by`); its entry as it was, or `None` when there is none.
    pub fn kill(&self, id: &str, by: SocketAddr) -> Option<SessionInfo> {
        let conn = lock(&self.live).get(id).cloned()?;
        let entry = info(&conn);
        audit::operator_kill(&conn, by);
        conn.kill();
        Some(entry)
    }
}

/// What the API shows of `conn`.
pub fn info(conn: &Conn) -> SessionInfo {
    let id = conn.identity();
    let (bytes_up, bytes_down) = conn.bytes();
    let channels = conn.channels();
    SessionInfo {
        id: conn.id().to_owned(),
        protocol: conn.protocol.to_owned(),
        client_address: canonical(conn.client.ip()).to_string(),
        client_port: conn.client.port(),
        authenticated: conn.is_authenticated(),
        mode: conn.mode().map(str::to_owned),
        cert_key_id: id.cert.as_ref().map(|c| clip(&c.key_id).to_owned()),
        cert_serial: id.cert.as_ref().map(|c| c.serial),
        route: id.route,
        user: id.user,
        key_fingerprint: id.key_fp,
        started: rfc3339(conn.started_at()),
        bytes_up,
        bytes_down,
        channel_count: channels.len(),
        channels: channels
            .iter()
            .take(MAX_CHANNELS_LISTED)
            .map(|c| ChannelInfo {
                kind: c.kind.label().to_owned(),
                destination: c.destination.clone(),
                session_type: c.session_type.as_ref().map(|t| t.label().to_owned()),
                subsystem: c
                    .session_type
                    .as_ref()
                    .and_then(|t| t.subsystem())
                    .map(str::to_owned),
                started: rfc3339(c.started_at),
            })
            .collect(),
    }
}

/// `2025-01-31T12:00:00Z`.
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::super::channel::{ChannelKind, SessionType};
    use super::super::conn::OpenChannel;
    use super::*;

    fn conn(port: u16) -> Arc<Conn> {
        let addr = SocketAddr::from(([203, 0, 113, 7], port));
        Arc::new(Conn::new(addr, "ssh", None))
    }

    #[test]
    fn registered_connections_are_listed_until_dropped() {
        let sessions = Sessions::new();
        let (a, b) = (conn(1), conn(2));
        let ra = sessions.register(a.clone());
        let _rb = sessions.register(b.clone());
        a.identify(|id| id.route = Some("alice-ws".into()));
        let sftp = OpenChannel::new(&a, ChannelKind::Session, None);
        sftp.set_session_type(SessionType::Subsystem("sftp".into()));
        let list = sessions.list(MAX_LISTED);
        assert_eq!((list.count, list.truncated), (2, false));
        let first = list.sessions.iter().find(|s| s.id == a.id()).expect("a");
        assert_eq!(first.client_address, "203.0.113.7");
        assert_eq!(first.route.as_deref(), Some("alice-ws"));
        assert!(!first.authenticated);
        assert_eq!(first.channels[0].kind, "session");
        assert_eq!(first.channels[0].subsystem.as_deref(), Some("sftp"));
        assert!(first.started.ends_with('Z'), "{}", first.started);
        drop(ra);
        let list = sessions.list(MAX_LISTED);
        assert_eq!(list.count, 1);
        assert_eq!(list.sessions[0].id, b.id());
    }

    #[test]
    fn a_long_list_is_truncated_and_says_so() {
        let sessions = Sessions::new();
        let held: Vec<_> = (0..5).map(|p| sessions.register(conn(p))).collect();
        let list = sessions.list(3);
        assert_eq!(
            (list.sessions.len(), list.count, list.truncated),
            (3, 5, true)
        );
        drop(held);
    }

    #[test]
    fn kill_ends_a_listed_connection_only() {
        let sessions = Sessions::new();
        let a = conn(1);
        let _r = sessions.register(a.clone());
        let by = SocketAddr::from(([127, 0, 0, 1], 40000));
        assert!(sessions.kill("0000000000000000", by).is_none());
        let killed = sessions.kill(a.id(), by).expect("listed");
        assert_eq!(killed.id, a.id());
        assert_eq!(a.end_reason(), Some("operator_kill"));
        let waiting = a.killed();
        futures_util::FutureExt::now_or_never(waiting).expect("killed at once");
    }
}
