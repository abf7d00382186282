//! From a request to an open TCP stream to a route's box: which route the
//! request names, whether its token opens that route, whether the box runs,
//! and the connection to the route's `address` — the only place a tunnel
//! ever connects to.

use std::sync::Arc;

use tokio::net::TcpStream;

use super::head::{Credential, Kind};
use super::response::Refusal;
use super::token;
use crate::config::{HttpTunnelConfig, TunnelAuth};
use crate::routes::{Route, RouteState, RouteTable};
use crate::ssh::Context;
use crate::ssh::messages::Notice;
use crate::ssh::upstream::describe_io;

/// `host` without the configured suffix (matched case-insensitively, with or
/// without its leading dot), when it ends with it. The bare route name is
/// accepted too, so `CONNECT alice-ws:22` and
/// `CONNECT alice-ws.ssh.example.com:22` reach the same box.
pub fn strip_suffix<'h>(host: &'h str, suffix: &str) -> &'h str {
    let suffix = suffix.trim_start_matches('.');
    if suffix.is_empty() || host.len() <= suffix.len() + 1 {
        return host;
    }
    let split = host.len() - suffix.len() - 1;
    // `get` also refuses a split inside a multi-byte character.
    match (host.get(..split), host.get(split..)) {
        (Some(name), Some(tail))
            if tail
                .strip_prefix('.')
                .is_some_and(|t| t.eq_ignore_ascii_case(suffix)) =>
        {
            name
        }
        _ => host,
    }
}

/// Finds the route a request names (the CONNECT host or the WebSocket
/// path's last segment): tried without the suffix first, then as is, so a
/// `Host *.ssh.example.com` stanza works with either transport.
pub fn lookup(table: &RouteTable, config: &HttpTunnelConfig, name: &str) -> Option<Arc<Route>> {
    let stripped = strip_suffix(name, &config.host_suffix);
    table.get(stripped).or_else(|| table.get(name)).cloned()
}

/// Checks the request against the route: token (when `auth = "token"`),
/// then state. Everything here happens before any connection is made.
pub fn authorize(
    route: &Route,
    auth: TunnelAuth,
    kind: Kind,
    credentials: &[Credential],
) -> Result<(), Refusal> {
    match auth {
        TunnelAuth::None => {}
        TunnelAuth::Token => {
            if !token::verify(credentials, route.token_sha256.as_ref()) {
                let route = route.name.clone();
                return Err(match kind {
                    Kind::Connect | Kind::Other => Refusal::ProxyAuth { route },
                    Kind::WebSocket => Refusal::Unauthorized { route },
                });
            }
        }
    }
    match &route.state {
        RouteState::Running => Ok(()),
        RouteState::Stopped { message } => Err(Refusal::Stopped(Notice::Stopped {
            route: route.name.clone(),
            note: message.clone(),
        })),
    }
}

/// Opens TCP to the route's `address` within `upstream.connect_timeout`.
pub async fn connect(route: &Route, ctx: &Context) -> Result<TcpStream, Refusal> {
    let timeout = ctx.config.upstream.connect_timeout;
    let reason = match tokio::time::timeout(timeout, TcpStream::connect(&route.address)).await {
        Ok(Ok(tcp)) => {
            let _ = tcp.set_nodelay(true);
            return Ok(tcp);
        }
        Ok(Err(e)) => describe_io(&e),
        Err(_) => "connection timed out".to_owned(),
    };
    Err(Refusal::Unreachable(Notice::Unreachable {
        route: route.name.clone(),
        address: route.address.clone(),
        reason,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffix_is_stripped_only_as_a_whole_label_suffix() {
        let s = ".ssh.example.com";
        assert_eq!(strip_suffix("alice-ws.ssh.example.com", s), "alice-ws");
        assert_eq!(strip_suffix("alice-ws.SSH.Example.COM", s), "alice-ws");
        assert_eq!(strip_suffix("box.ns.ssh.example.com", s), "box.ns");
        // Configured without the leading dot: same meaning.
        assert_eq!(
            strip_suffix("alice-ws.ssh.example.com", "ssh.example.com"),
            "alice-ws"
        );
        // Not a label boundary, nothing before it, or no suffix configured.
        assert_eq!(
            strip_suffix("alicessh.example.com", s),
            "alicessh.example.com"
        );
        assert_eq!(strip_suffix(".ssh.example.com", s), ".ssh.example.com");
        assert_eq!(strip_suffix("alice-ws", s), "alice-ws");
        assert_eq!(
            strip_suffix("alice-ws.ssh.example.com", ""),
            "alice-ws.ssh.example.com"
        );
        // Multi-byte characters never split mid-character.
        assert_eq!(strip_suffix("é.ssh.example.com", s), "é");
        assert_eq!(strip_suffix("ééééééééééééééééé", s), "ééééééééééééééééé");
    }
}
