//! The channels open on one connection, as the sessions API lists them:
//! kind, forward destination, session type. Each open channel holds a
//! `conn::OpenChannel` that registers it on its connection and removes it
//! when dropped.

use std::time::SystemTime;

/// Longest client-supplied text (a forward's host, a subsystem name, a
/// typed username) kept for logs and the sessions API; longer is cut.
pub const MAX_CLIENT_TEXT: usize = 256;

/// What a channel carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelKind {
    /// A shell, a command or a subsystem (sftp), relayed to the box.
    Session,
    /// `-L`/`-D`/`-W` to a destination the box connects to.
    DirectTcpip,
    /// `ssh -J`: raw TCP to a route's sshd.
    Jump,
    /// A connection to a port the box listens on for the client (`-R`).
    ForwardedTcpip,
    /// The box reaching the client's agent (`ssh -A`, key mode).
    Agent,
}

impl ChannelKind {
    /// The name in logs and the sessions API.
    pub fn label(self) -> &'static str {
        match self {
            ChannelKind::Session => "session",
            ChannelKind::DirectTcpip => "direct-tcpip",
            ChannelKind::Jump => "jump",
            ChannelKind::ForwardedTcpip => "forwarded-tcpip",
            ChannelKind::Agent => "agent",
        }
    }
}

/// What a session channel runs, once it asked. The exec command itself is
/// never kept: it may hold anything the user typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionType {
    Shell,
    Exec,
    /// The subsystem's name (`sftp`), clipped to [`MAX_CLIENT_TEXT`].
    Subsystem(String),
}

impl SessionType {
    /// `shell`, `exec` or `subsystem`.
    pub fn label(&self) -> &'static str {
        match self {
            SessionType::Shell => "shell",
            SessionType::Exec => "exec",
            SessionType::Subsystem(_) => "subsystem",
        }
    }

    /// The subsystem's name, for a subsystem.
    pub fn subsystem(&self) -> Option<&str> {
        match self {
            SessionType::Subsystem(name) => Some(name),
            SessionType::Shell | SessionType::Exec => None,
        }
    }
}

/// One open channel.
#[derive(Debug, Clone)]
pub struct ChannelEntry {
    pub kind: ChannelKind,
    /// `host:port` of a forward or jump, as the client or box named it.
    pub destination: Option<String>,
    pub session_type: Option<SessionType>,
    pub started_at: SystemTime,
}

/// The open channels of one connection, keyed by the order they opened in.
/// A vector in key order: a connection has a handful of channels (its caps
/// bound them), and a map's first node would cost every connection ~1 KiB.
#[derive(Debug, Default)]
pub(super) struct ChannelTable {
    next: u64,
    open: Vec<(u64, ChannelEntry)>,
}

impl ChannelTable {
    pub(super) fn entries(&self) -> impl Iterator<Item = &ChannelEntry> {
        self.open.iter().map(|(_, entry)| entry)
    }

    /// Lists `entry`; its key, to unlist it with.
    pub(super) fn insert(&mut self, entry: ChannelEntry) -> u64 {
        let key = self.next;
        self.next += 1;
        self.open.push((key, entry));
        key
    }

    pub(super) fn get_mut(&mut self, key: u64) -> Option<&mut ChannelEntry> {
        self.open
            .iter_mut()
            .find_map(|(k, entry)| (*k == key).then_some(entry))
    }

    pub(super) fn remove(&mut self, key: u64) {
        self.open.retain(|(k, _)| *k != key);
    }

    pub(super) fn len(&self) -> usize {
        self.open.len()
    }
}

/// `text` cut to at most [`MAX_CLIENT_TEXT`] bytes, on a character boundary.
pub fn clip(text: &str) -> &str {
    if text.len() <= MAX_CLIENT_TEXT {
        return text;
    }
    let mut end = MAX_CLIENT_TEXT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// `host:port`, bracketing an IPv6 host, clipped.
pub fn destination(host: &str, port: u32) -> String {
    let host = clip(host);
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::ops::conn::{Conn, OpenChannel};

    fn conn() -> Arc<Conn> {
        Arc::new(Conn::new(
            "127.0.0.1:5000".parse().expect("addr"),
            "ssh",
            None,
        ))
    }

    #[test]
    fn channels_are_listed_while_open() {
        let conn = conn();
        let a = OpenChannel::new(&conn, ChannelKind::Session, None);
        let b = OpenChannel::new(&conn, ChannelKind::DirectTcpip, Some("db:5432".into()));
        assert!(a.set_session_type(SessionType::Shell));
        assert!(!a.set_session_type(SessionType::Exec), "set once");
        let kinds: Vec<_> = conn.channels().iter().map(|c| c.kind).collect();
        assert_eq!(kinds, [ChannelKind::Session, ChannelKind::DirectTcpip]);
        assert_eq!(conn.channels()[0].session_type, Some(SessionType::Shell));
        drop(a);
        let left = conn.channels();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].destination.as_deref(), Some("db:5432"));
        drop(b);
        assert!(conn.channels().is_empty());
    }

    #[test]
    fn client_text_is_clipped_on_a_character_boundary() {
        assert_eq!(clip("short"), "short");
        let long = "é".repeat(MAX_CLIENT_TEXT);
        let clipped = clip(&long);
        assert!(clipped.len() <= MAX_CLIENT_TEXT);
        assert!(clipped.chars().all(|c| c == 'é'));
        assert_eq!(destination("::1", 80), "[::1]:80");
        assert_eq!(destination("db", 5432), "db:5432");
    }
}
