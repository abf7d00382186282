//! One `[[route]]` table as written, and its checked conversion into a
//! [`Route`]: every field problem is collected, not just the first.

use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use super::{Position, RouteError, keys};
use crate::config::text::{check_login_user, check_text, quote};
use crate::routes::keys::parse_public_key;
use crate::routes::{Forwarding, Route, RouteState, parse_token_sha256};

/// Longest route name (a DNS name's limit; Kubernetes names fit).
const MAX_NAME_LEN: usize = 253;
/// Longest `message` for a stopped route; it is shown on one terminal line.
const MAX_MESSAGE_LEN: usize = 1024;

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
    forwarding: Forwarding,
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
    let route = check(raw, ctx, &mut |field: &str, message: String| {
        errors.push(ctx.error(name, Some(field), message));
    });
    if errors.is_empty() {
        Ok(route)
    } else {
        Err(errors)
    }
}

/// Checks every field of `raw`, reporting each problem to `fail` in field
/// order; the route returned is only used when nothing was reported.
fn check(raw: RawRoute, ctx: &Context<'_>, fail: &mut impl FnMut(&str, String)) -> Route {
    checked(Some(check_name(&raw.name)), "name", fail);
    checked(Some(check_address(&raw.address)), "address", fail);
    checked(raw.user.as_deref().map(check_login_user), "user", fail);
    let mut authorized_keys = Vec::new();
    for (i, line) in raw.authorized_keys.iter().enumerate() {
        let field = format!("authorized_keys[{i}]");
        authorized_keys.extend(checked(Some(parse_public_key(line)), &field, fail));
    }
    let key_file = raw
        .authorized_keys_file
        .as_deref()
        .map(|path| non_empty_path(path).and_then(|p| keys::read_authorized_keys(&ctx.resolve(p))));
    authorized_keys.extend(
        checked(key_file, "authorized_keys_file", fail)
            .into_iter()
            .flatten(),
    );
    let identity = raw
        .identity_file
        .as_deref()
        .map(|path| non_empty_path(path).and_then(|p| keys::load_identity(&ctx.resolve(p))));
    let identity = checked(identity, "identity_file", fail).map(Arc::new);
    let host_key = checked(
        raw.host_key.as_deref().map(parse_public_key),
        "host_key",
        fail,
    );
    let message = raw.message.as_deref();
    checked(
        message.map(|m| check_text(m, MAX_MESSAGE_LEN, true)),
        "message",
        fail,
    );
    let token = raw.token_sha256.as_deref().map(parse_token_sha256);
    let token_sha256 = checked(token, "token_sha256", fail);
    let state = match raw.state {
        RawState::Running => RouteState::Running,
        RawState::Stopped => RouteState::Stopped {
            message: raw.message,
        },
    };
    Route {
        name: raw.name,
        address: raw.address,
        user: raw.user,
        authorized_keys,
        identity,
        host_key,
        state,
        forwarding: raw.forwarding,
        token_sha256,
    }
}

/// The value of a field's check (`None` when the field is not set), or
/// `None` after reporting its problem to `fail`.
fn checked<T>(
    result: Option<Result<T, String>>,
    field: &str,
    fail: &mut impl FnMut(&str, String),
) -> Option<T> {
    match result? {
        Ok(value) => Some(value),
        Err(message) => {
            fail(field, message);
            None
        }
    }
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

fn non_empty_path(path: &str) -> Result<&str, String> {
    if path.is_empty() {
        Err("the path is empty".to_owned())
    } else {
        Ok(path)
    }
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
}
