//! One `[[route]]` table as written, and its checked conversion into a
//! [`Route`]: every field problem is collected, not just the first.

use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use super::{Position, RouteError, keys};
use crate::routes::{Forwarding, Route, RouteState};

/// Longest route name (a DNS name's limit; Kubernetes names fit).
const MAX_NAME_LEN: usize = 253;
/// Longest login user accepted for a route.
const MAX_USER_LEN: usize = 255;
/// Longest `message` for a stopped route; it is shown on one terminal line.
const MAX_MESSAGE_LEN: usize = 1024;
/// How much of a bad value an error message quotes.
const QUOTE_LEN: usize = 64;

/// A route as written in the file (SPEC §4).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    name: String,
    address: String,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    authorized_keys: Vec<String>,
    #[serde(default)]
    authorized_keys_file: Option<String>,
    #[serde(default)]
    identity_file: Option<String>,
    #[serde(default)]
    host_key: Option<String>,
    #[serde(default)]
    state: RawState,
    /// Shown to users of a stopped route; ignored while running, so flipping
    /// `state` back and forth needs no other edit.
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    forwarding: RawForwarding,
    /// SHA-256 (hex) of this route's HTTP tunnel token (SPEC §11).
    #[serde(default)]
    token_sha256: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "lowercase")]
enum RawState {
    #[default]
    Running,
    Stopped,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawForwarding {
    #[serde(default = "yes")]
    local: bool,
    #[serde(default = "yes")]
    remote: bool,
    #[serde(default = "yes")]
    agent: bool,
}

impl Default for RawForwarding {
    fn default() -> Self {
        Self {
            local: true,
            remote: true,
            agent: true,
        }
    }
}

fn yes() -> bool {
    true
}

/// Where a route comes from: everything an error needs to name it.
pub(super) struct Context<'a> {
    pub file: &'a str,
    pub at: Position,
    pub base_dir: &'a Path,
}

impl Context<'_> {
    pub fn error(&self, route: Option<&str>, field: Option<&str>, message: String) -> RouteError {
        RouteError {
            file: self.file.to_owned(),
            index: self.at.index,
            line: self.at.line,
            route: route.map(str::to_owned),
            field: field.map(str::to_owned),
            message,
        }
    }

    fn resolve(&self, path: &str) -> PathBuf {
        self.base_dir.join(path)
    }
}

/// The route's `name` if it is present and valid; it names the route in errors
/// and matches it to its previous version on reload.
pub(super) fn valid_name(value: &toml::Value) -> Option<String> {
    let name = value.get("name")?.as_str()?;
    check_name(name).is_ok().then(|| name.to_owned())
}

/// Converts one raw `[[route]]` value; `name` is [`valid_name`] of it.
pub(super) fn convert(
    value: toml::Value,
    name: Option<&str>,
    ctx: &Context<'_>,
) -> Result<Route, Vec<RouteError>> {
    if !value.is_table() {
        return Err(vec![ctx.error(
            name,
            None,
            format!("expected a table, found {}", value.type_str()),
        )]);
    }
    let raw: RawRoute = value
        .try_into()
        .map_err(|e| vec![serde_error(&e, name, ctx)])?;
    let mut errors = Vec::new();
    let mut fail =
        |field: &str, message: String| errors.push(ctx.error(name, Some(field), message));

    if let Err(message) = check_name(&raw.name) {
        fail("name", message);
    }
    if let Err(message) = check_address(&raw.address) {
        fail("address", message);
    }
    if let Some(Err(message)) = raw
        .user
        .as_deref()
        .map(|u| check_text(u, MAX_USER_LEN, false))
    {
        fail("user", message);
    }
    let mut authorized_keys = Vec::new();
    for (i, line) in raw.authorized_keys.iter().enumerate() {
        match keys::parse_public_key(line) {
            Ok(key) => authorized_keys.push(key),
            Err(message) => fail(&format!("authorized_keys[{i}]"), message),
        }
    }
    if let Some(path) = &raw.authorized_keys_file {
        match non_empty_path(path).and_then(|p| keys::read_authorized_keys(&ctx.resolve(p))) {
            Ok(keys) => authorized_keys.extend(keys),
            Err(message) => fail("authorized_keys_file", message),
        }
    }
    let identity = match &raw.identity_file {
        None => None,
        Some(path) => match non_empty_path(path).and_then(|p| keys::load_identity(&ctx.resolve(p)))
        {
            Ok(key) => Some(Arc::new(key)),
            Err(message) => {
                fail("identity_file", message);
                None
            }
        },
    };
    let host_key = match &raw.host_key {
        None => None,
        Some(line) => match keys::parse_public_key(line) {
            Ok(key) => Some(key),
            Err(message) => {
                fail("host_key", message);
                None
            }
        },
    };
    let state = match raw.state {
        RawState::Running => RouteState::Running,
        RawState::Stopped => RouteState::Stopped {
            message: raw.message.clone(),
        },
    };
    if let Some(Err(problem)) = raw
        .message
        .as_deref()
        .map(|m| check_text(m, MAX_MESSAGE_LEN, true))
    {
        fail("message", problem);
    }
    let token_sha256 = match raw.token_sha256.as_deref().map(parse_sha256) {
        None => None,
        Some(Ok(digest)) => Some(digest),
        Some(Err(message)) => {
            fail("token_sha256", message);
            None
        }
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    let RawForwarding {
        local,
        remote,
        agent,
    } = raw.forwarding;
    Ok(Route {
        name: raw.name,
        address: raw.address,
        user: raw.user,
        authorized_keys,
        identity,
        host_key,
        state,
        forwarding: Forwarding {
            local,
            remote,
            agent,
        },
        token_sha256,
    })
}

/// A SHA-256 digest written as 64 hex digits (what `sha256sum` prints).
fn parse_sha256(text: &str) -> Result<[u8; 32], String> {
    let mut digest = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut digest).map_err(|_| {
        "expected the token's SHA-256 as 64 hex digits (printf %s TOKEN | sha256sum)".to_owned()
    })?;
    Ok(digest)
}

/// Turns a serde error into a field error. toml appends the key path to the
/// error's text as "\nin `forwarding.local`"; it is the only place it is kept.
fn serde_error(error: &toml::de::Error, name: Option<&str>, ctx: &Context<'_>) -> RouteError {
    let text = error.to_string();
    let path = text
        .rsplit_once("\nin `")
        .and_then(|(_, rest)| rest.split_once('`'))
        .map(|(path, _)| path);
    let message = error.message().trim().replace('\n', "; ");
    let field = match (path, quoted_after(&message, "unknown field `")) {
        (Some(path), Some(unknown)) => Some(format!("{path}.{unknown}")),
        (None, Some(unknown)) => Some(unknown.to_owned()),
        (Some(path), None) => Some(path.to_owned()),
        (None, None) => quoted_after(&message, "missing field `").map(str::to_owned),
    };
    ctx.error(name, field.as_deref(), message)
}

/// `unknown field `adress`, …` with prefix "unknown field `" → `adress`.
fn quoted_after<'m>(message: &'m str, prefix: &str) -> Option<&'m str> {
    message
        .strip_prefix(prefix)?
        .split_once('`')
        .map(|(field, _)| field)
}

/// `[A-Za-z0-9][A-Za-z0-9._-]*`, at most [`MAX_NAME_LEN`] bytes.
fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if first_ok && rest_ok && name.len() <= MAX_NAME_LEN {
        return Ok(());
    }
    Err(format!(
        "{} is not a valid route name (letters, digits, '.', '_' and '-', starting with a letter or digit, \
         at most {MAX_NAME_LEN} characters)",
        quote(name)
    ))
}

/// `host:port` or `[ipv6]:port`, port 1–65535.
fn check_address(address: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("{} is not host:port ({why})", quote(address)));
    let (host, port) = if let Some(rest) = address.strip_prefix('[') {
        let Some((v6, port)) = rest.split_once("]:") else {
            return bad("expected [ipv6]:port");
        };
        if v6.parse::<Ipv6Addr>().is_err() {
            return bad("not an IPv6 address inside the brackets");
        }
        (None, port)
    } else {
        let Some((host, port)) = address.rsplit_once(':') else {
            return bad("missing :port");
        };
        (Some(host), port)
    };
    if let Some(host) = host {
        if host.is_empty() {
            return bad("empty host");
        }
        if host.contains(':') {
            return bad("write an IPv6 address in brackets: [addr]:port");
        }
        if host.len() > MAX_NAME_LEN
            || !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        {
            return bad("the host is not a DNS name or IPv4 address");
        }
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 && port.bytes().all(|b| b.is_ascii_digit()) => Ok(()),
        _ => bad("the port must be a number from 1 to 65535"),
    }
}

/// Non-empty, at most `max` bytes, no control characters; whitespace only when
/// `spaces` (a message may have spaces, a user name may not).
fn check_text(text: &str, max: usize, spaces: bool) -> Result<(), String> {
    if text.is_empty() {
        return Err("must not be empty; leave it out instead".to_owned());
    }
    if text.len() > max {
        return Err(format!("longer than {max} bytes"));
    }
    if text.chars().any(char::is_control) {
        return Err(format!("{} contains a control character", quote(text)));
    }
    if !spaces && text.chars().any(char::is_whitespace) {
        return Err(format!("{} contains whitespace", quote(text)));
    }
    Ok(())
}

fn non_empty_path(path: &str) -> Result<&str, String> {
    if path.is_empty() {
        Err("the path is empty".to_owned())
    } else {
        Ok(path)
    }
}

/// A value for an error message: debug-escaped, cut at [`QUOTE_LEN`] characters.
pub(super) fn quote(value: &str) -> String {
    if value.chars().count() <= QUOTE_LEN {
        return format!("{value:?}");
    }
    let head: String = value.chars().take(QUOTE_LEN).collect();
    format!("{head:?}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["a", "alice-ws", "box.ns-abc", "A_1.b-c", &"a".repeat(253)] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-a",
            ".a",
            "_a",
            "a b",
            "a/b",
            "a@b",
            "é",
            &"a".repeat(254),
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn addresses() {
        for ok in [
            "10.0.3.7:22",
            "box.example.com:2222",
            "[::1]:22",
            "[fe80::1]:65535",
            "svc_x:1",
        ] {
            assert!(check_address(ok).is_ok(), "{ok}");
        }
        for bad in [
            "x",
            ":22",
            "host:",
            "host:0",
            "host:65536",
            "host:+22",
            "::1:22",
            "[::1]22",
            "[zz]:22",
            "a b:22",
            "host:22x",
            "[::1]:",
        ] {
            let err = check_address(bad).expect_err(bad);
            assert!(err.contains("is not host:port"), "{err}");
        }
    }

    #[test]
    fn text() {
        assert!(check_text("devbox", 255, false).is_ok());
        assert!(check_text("", 255, false).is_err());
        assert!(check_text("a b", 255, false).is_err());
        assert!(check_text("a b", 255, true).is_ok());
        assert!(check_text("a\u{1b}[2J", 255, true).is_err());
        assert!(check_text(&"a".repeat(256), 255, true).is_err());
    }

    #[test]
    fn quotes_are_short_and_escaped() {
        assert_eq!(quote("a\nb"), "\"a\\nb\"");
        assert!(quote(&"x".repeat(1000)).len() < 80);
    }
}
