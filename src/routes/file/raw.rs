//! One `[[route]]` table as written, and its checked conversion into a
//! [`Route`]: every field problem is collected, not just the first.

use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use russh::keys::PublicKey;
use serde::de::DeserializeOwned;

use super::{Position, RouteError, keys};
use crate::config::text::{check_login_user, check_text, dotted, quote};
use crate::routes::keys::{
    AuthorizedLine, check_principal, parse_authorized_line, parse_public_key,
};
use crate::routes::{Forwarding, LoginMethod, Route, RouteState, UserCerts, parse_token_sha256};

/// Longest route name (a DNS name's limit; Kubernetes names fit).
const MAX_NAME_LEN: usize = 253;
/// Longest `message` for a stopped route; it is shown on one terminal line.
const MAX_MESSAGE_LEN: usize = 1024;

/// Every key a `[[route]]` table may have (SPEC §4), in the order its
/// problems are reported.
const FIELDS: &[&str] = &[
    "name",
    "address",
    "user",
    "authorized_keys",
    "authorized_keys_file",
    "identity_file",
    "host_key",
    "state",
    // Shown to users of a stopped route; ignored while running, so flipping
    // `state` back and forth needs no other edit.
    "message",
    "forwarding",
    // SHA-256 (hex) of this route's HTTP tunnel token (SPEC §11).
    "token_sha256",
    // "key" (default: identity_file) or "certificate" (the user CA mints one).
    "login",
    // Host CAs whose certificates the box may present instead of a pin.
    "trusted_host_cas",
    // Certificate principals that may use this route (README "User certificates").
    "principals",
];

/// `state`: read as a string first, so a value of the wrong type says so
/// ("invalid type: integer `1`, expected a string") rather than what serde's
/// enum path makes of it.
#[derive(Default)]
enum RawState {
    #[default]
    Running,
    Stopped,
}

impl RawState {
    fn parse(text: &str) -> Result<Self, String> {
        match text {
            "running" => Ok(RawState::Running),
            "stopped" => Ok(RawState::Stopped),
            other => Err(format!(
                "unknown variant `{other}`, expected `running` or `stopped`"
            )),
        }
    }
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
/// Every field is read and checked on its own, so a value of the wrong type
/// (`state = 1`) is one error among the others, not the only one reported.
pub(super) fn convert(
    value: toml::Value,
    name: Option<&str>,
    ctx: &Context<'_>,
) -> Result<Route, Vec<RouteError>> {
    let toml::Value::Table(table) = value else {
        return Err(vec![ctx.error(
            name,
            None,
            format!("expected a table, found {}", value.type_str()),
        )]);
    };
    let mut errors = Vec::new();
    let mut fields = Fields {
        table,
        prefix: "",
        fail: |field: &str, message: String| errors.push(ctx.error(name, Some(field), message)),
    };
    let route = read(&mut fields, ctx);
    fields.finish(FIELDS);
    match route {
        Some(route) if errors.is_empty() => Ok(route),
        // Not reached: a route is only missing when a field was reported.
        None if errors.is_empty() => Err(vec![ctx.error(name, None, "cannot be read".to_owned())]),
        _ => Err(errors),
    }
}

/// A route's table, taken apart one key at a time; each problem goes to
/// `fail` with the field it is about.
struct Fields<F> {
    table: toml::Table,
    /// Before every field name: `""`, or `"forwarding."` for that table.
    prefix: &'static str,
    fail: F,
}

impl<F: FnMut(&str, String)> Fields<F> {
    /// The value of `key` as a `T`, if it is set and is one. The field named
    /// in an error is a structural path (`forwarding.local`) from
    /// `serde_path_to_error`, never parsed out of the message.
    fn take<T: DeserializeOwned>(&mut self, key: &str) -> Option<T> {
        let value = self.table.remove(key)?;
        match serde_path_to_error::deserialize::<_, T>(value) {
            Ok(value) => Some(value),
            Err(e) => {
                let full = dotted(&format!("{}{key}", self.prefix), e.path());
                let message = e.inner().message().trim().replace('\n', "; ");
                // A list's items are reported at the list (`authorized_keys`),
                // the item in the message.
                match full.split_once('[') {
                    Some((list, _)) => (self.fail)(list, format!("{message} (in {full})")),
                    None => (self.fail)(&full, message),
                }
                None
            }
        }
    }

    /// [`Fields::take`] for a key every route must have.
    fn require<T: DeserializeOwned>(&mut self, key: &str) -> Option<T> {
        if !self.table.contains_key(key) {
            (self.fail)(
                &format!("{}{key}", self.prefix),
                format!("missing field `{key}`"),
            );
            return None;
        }
        self.take(key)
    }

    /// The value of a field's check (`None` when the field is not set), or
    /// `None` after reporting its problem.
    fn checked<T>(&mut self, field: &str, result: Option<Result<T, String>>) -> Option<T> {
        match result? {
            Ok(value) => Some(value),
            Err(message) => {
                (self.fail)(field, message);
                None
            }
        }
    }

    /// Reports every key left over: none of them is in `expected`.
    fn finish(mut self, expected: &[&str]) {
        let expected = expected
            .iter()
            .map(|f| format!("`{f}`"))
            .collect::<Vec<_>>()
            .join(", ");
        for key in self.table.keys() {
            (self.fail)(
                &format!("{}{key}", self.prefix),
                format!("unknown field `{key}`, expected one of {expected}"),
            );
        }
    }
}

/// Reads and checks every field in [`FIELDS`] order; the route returned is
/// only used when nothing was reported.
fn read(f: &mut Fields<impl FnMut(&str, String)>, ctx: &Context<'_>) -> Option<Route> {
    let name: Option<String> = f.require("name");
    f.checked("name", name.as_deref().map(check_name));
    let address: Option<String> = f.require("address");
    f.checked("address", address.as_deref().map(check_address));
    let user: Option<String> = f.take("user");
    f.checked("user", user.as_deref().map(check_login_user));
    let mut authorized_keys = Vec::new();
    let mut user_certs = UserCerts::default();
    let lines: Vec<String> = f.take("authorized_keys").unwrap_or_default();
    for (i, line) in lines.iter().enumerate() {
        let field = format!("authorized_keys[{i}]");
        match f.checked(&field, Some(parse_authorized_line(line))) {
            Some(AuthorizedLine::Key(key)) => authorized_keys.push(key),
            Some(AuthorizedLine::Authority(ca)) => user_certs.authorities.push(ca),
            None => {}
        }
    }
    let key_file: Option<String> = f.take("authorized_keys_file");
    let key_file = key_file
        .as_deref()
        .map(|path| non_empty_path(path).and_then(|p| keys::read_authorized_keys(&ctx.resolve(p))));
    if let Some(parsed) = f.checked("authorized_keys_file", key_file) {
        authorized_keys.extend(parsed.keys);
        user_certs.authorities.extend(parsed.authorities);
    }
    let identity: Option<String> = f.take("identity_file");
    let identity = identity
        .as_deref()
        .map(|path| non_empty_path(path).and_then(|p| keys::load_identity(&ctx.resolve(p))));
    let identity = f.checked("identity_file", identity).map(Arc::new);
    let host_key: Option<String> = f.take("host_key");
    let host_key = f.checked("host_key", host_key.as_deref().map(parse_public_key));
    let state: Option<String> = f.take("state");
    let state = f
        .checked("state", state.as_deref().map(RawState::parse))
        .unwrap_or_default();
    let message: Option<String> = f.take("message");
    f.checked(
        "message",
        message
            .as_deref()
            .map(|m| check_text(m, MAX_MESSAGE_LEN, true)),
    );
    let forwarding = f
        .take::<toml::Table>("forwarding")
        .map(|table| read_forwarding(table, &mut f.fail))
        .unwrap_or_default();
    let token: Option<String> = f.take("token_sha256");
    let token_sha256 = f.checked("token_sha256", token.as_deref().map(parse_token_sha256));
    let principals: Vec<String> = f.take("principals").unwrap_or_default();
    for (i, principal) in principals.iter().enumerate() {
        f.checked(
            &format!("principals[{i}]"),
            Some(check_principal(principal)),
        );
    }
    user_certs.principals = principals;
    let state = match state {
        RawState::Running => RouteState::Running,
        RawState::Stopped => RouteState::Stopped { message },
    };
    let (login, trusted_host_cas) = read_certificates(f, identity.is_some(), host_key.is_some());
    Some(Route {
        name: name?,
        address: address?,
        user,
        authorized_keys,
        identity,
        host_key,
        state,
        forwarding,
        token_sha256,
        sshgate_compat: false,
        wake: None,
        login,
        trusted_host_cas,
        user_certs,
    })
}

/// `login` and `trusted_host_cas`, and what they exclude: an identity the
/// certificate login would never use, a pin beside host CAs.
fn read_certificates(
    f: &mut Fields<impl FnMut(&str, String)>,
    has_identity: bool,
    has_pin: bool,
) -> (LoginMethod, Vec<PublicKey>) {
    let login: Option<String> = f.take("login");
    let login = f
        .checked("login", login.as_deref().map(LoginMethod::parse))
        .unwrap_or_default();
    if login == LoginMethod::Certificate && has_identity {
        (f.fail)(
            "identity_file",
            "is not used with login = \"certificate\" (the gateway's user CA signs each \
             login); remove one of them"
                .to_owned(),
        );
    }
    let mut cas = Vec::new();
    let lines: Vec<String> = f.take("trusted_host_cas").unwrap_or_default();
    for (i, line) in lines.iter().enumerate() {
        let field = format!("trusted_host_cas[{i}]");
        cas.extend(f.checked(&field, Some(parse_public_key(line))));
    }
    if has_pin && !lines.is_empty() {
        (f.fail)(
            "trusted_host_cas",
            "is set together with host_key: pin the box's key or trust its host CAs, not both"
                .to_owned(),
        );
    }
    (login, cas)
}

/// `[route.forwarding]`, one switch at a time like the route's own fields;
/// a switch left out keeps its [`Forwarding::default`].
fn read_forwarding(table: toml::Table, fail: &mut impl FnMut(&str, String)) -> Forwarding {
    let mut f = Fields {
        table,
        prefix: "forwarding.",
        fail,
    };
    let default = Forwarding::default();
    let forwarding = Forwarding {
        local: f.take("local").unwrap_or(default.local),
        remote: f.take("remote").unwrap_or(default.remote),
        agent: f.take("agent").unwrap_or(default.agent),
    };
    f.finish(&["local", "remote", "agent"]);
    forwarding
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
