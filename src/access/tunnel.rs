//! HTTP tunnel admission (SPEC §11): which route a CONNECT host or WebSocket
//! path names, and whether the presented token opens it.
//!
//! The deliberate exception to "no existence oracle" lives here and is
//! documented in the README: a name that is no route is refused before any
//! token is looked at (`404`), a route without the right token after (`407`).

use std::sync::Arc;

use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};
use zeroize::Zeroizing;

use super::Access;
use crate::config::{HttpTunnelConfig, TunnelAuth};
use crate::routes::{Route, RouteTable};

/// Why a tunnel request is not admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// `[http_tunnel] enabled = false`.
    Disabled,
    /// No route by that name. Nothing is dialled.
    NotFound { name: String },
    /// `auth = "token"` and no presented token matches the route's digest
    /// (or the route has none).
    Token { route: String },
}

impl Access {
    /// Admits a tunnel to the route `name` names (with or without the
    /// configured host suffix) when `tokens` hold its token, or when
    /// `auth = "none"`. Every token is hashed and compared in constant time.
    pub fn tunnel(&self, name: &str, tokens: &[Zeroizing<Vec<u8>>]) -> Result<Arc<Route>, Denied> {
        let config = &self.config.http_tunnel;
        if !config.enabled {
            return Err(Denied::Disabled);
        }
        let route = lookup(&self.table(), config, name).ok_or_else(|| Denied::NotFound {
            name: name.to_owned(),
        })?;
        match config.auth {
            TunnelAuth::None => Ok(route),
            TunnelAuth::Token if verify(tokens, route.token_sha256.as_ref()) => Ok(route),
            TunnelAuth::Token => Err(Denied::Token {
                route: route.name.clone(),
            }),
        }
    }
}

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

/// The route a request names: tried without the suffix first, then as is,
/// so a `Host *.ssh.example.com` stanza works with either transport.
fn lookup(table: &RouteTable, config: &HttpTunnelConfig, name: &str) -> Option<Arc<Route>> {
    let stripped = strip_suffix(name, &config.host_suffix);
    table.get(stripped).or_else(|| table.get(name)).cloned()
}

/// True when one of `tokens` hashes to `expected`; a route without a stored
/// digest accepts nothing.
fn verify(tokens: &[Zeroizing<Vec<u8>>], expected: Option<&[u8; 32]>) -> bool {
    let Some(expected) = expected else {
        return false;
    };
    let mut ok = Choice::from(0);
    for token in tokens {
        let digest: [u8; 32] = Sha256::digest(token.as_slice()).into();
        ok |= digest.ct_eq(expected);
    }
    ok.into()
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

    #[test]
    fn verify_needs_a_matching_digest() {
        let tokens = |v: &[&str]| -> Vec<Zeroizing<Vec<u8>>> {
            v.iter()
                .map(|s| Zeroizing::new(s.as_bytes().to_vec()))
                .collect()
        };
        let good: [u8; 32] = Sha256::digest(b"s3cret").into();
        assert!(verify(&tokens(&["s3cret"]), Some(&good)));
        // Any one of several tokens may match.
        assert!(verify(&tokens(&["wrong", "s3cret"]), Some(&good)));
        assert!(!verify(&tokens(&["wrong"]), Some(&good)));
        assert!(!verify(&tokens(&["s3cre"]), Some(&good)));
        assert!(!verify(&tokens(&[]), Some(&good)));
        // No digest stored: nothing is accepted.
        assert!(!verify(&tokens(&["s3cret"]), None));
    }
}
