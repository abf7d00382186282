//! `SWITCHBOARD_<SECTION>_<KEY>` environment overrides, applied on top of the
//! file: `SWITCHBOARD_SERVER_LISTEN` sets `[server] listen`, and nested
//! sections join with `_` (`SWITCHBOARD_SOURCES_FILE_PATH` is `[sources.file] path`).
//!
//! A name that starts with a known section but names no key is an error. One
//! that starts with no known section (`SWITCHBOARD_SERVR_LISTEN`) is a
//! warning, so a typo is never silent, except for the names that are not
//! overrides: `SWITCHBOARD_CONFIG` (`--config`), the seed variable named by
//! `host_key_seed_env`, and the service links Kubernetes injects for a
//! Service whose name starts with `switchboard` (`SWITCHBOARD_SERVICE_HOST`,
//! `SWITCHBOARD_PORT_2233_TCP`, …), also when the Service's name continues
//! with a section (`switchboard-admin` → `SWITCHBOARD_ADMIN_PORT`): a name of
//! that shape that names no setting is ignored, not an error.

use std::ffi::OsString;

use toml::{Table, Value};

use super::origin::{ConfigError, LeafError, Origin, Provenance, check_leaf};
use super::text::closest;

/// Prefix of environment overrides.
pub const ENV_PREFIX: &str = "SWITCHBOARD_";

/// Every section, dotted; an override's name is matched against the longest one.
const SECTIONS: &[&str] = &[
    "server",
    "routing",
    "upstream",
    "sources.file",
    "sources.kubernetes",
    "admin",
    "log",
    "proxy_protocol",
    "http_tunnel",
    "wake",
];

/// Variables with the prefix that are read elsewhere, never overrides.
const NOT_OVERRIDES: &[&str] = &["SWITCHBOARD_CONFIG"];

/// Applies the overrides in `env` to `table`; each problem is an error, each
/// variable that looks like a misspelt override a warning.
pub(super) fn apply_env(
    table: &mut Table,
    env: impl IntoIterator<Item = (OsString, OsString)>,
    provenance: &mut Provenance,
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<String>,
) {
    let mut vars: Vec<(String, OsString)> = env
        .into_iter()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v)))
        .filter(|(k, _)| k.starts_with(ENV_PREFIX))
        .collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    let seed_var = vars
        .iter()
        .find(|(k, _)| k == "SWITCHBOARD_SERVER_HOST_KEY_SEED_ENV")
        .and_then(|(_, v)| v.to_str().map(str::to_owned))
        .or_else(|| {
            table
                .get("server")?
                .get("host_key_seed_env")?
                .as_str()
                .map(str::to_owned)
        });
    for (name, raw) in vars {
        if seed_var.as_deref() == Some(name.as_str()) {
            continue;
        }
        let origin = Origin::Env(name.clone());
        let error = |field: String, message: String| ConfigError {
            origin: origin.clone(),
            field,
            message,
        };
        let path = match env_path(&name) {
            EnvName::NotOurs => {
                warnings.extend(not_an_override(&name));
                continue;
            }
            EnvName::Unknown if is_service_link(&name) => continue,
            EnvName::Unknown => {
                let message = "names no setting: use SWITCHBOARD_<SECTION>_<KEY>, e.g. \
                               SWITCHBOARD_SERVER_LISTEN or SWITCHBOARD_SOURCES_FILE_PATH";
                errors.push(error(String::new(), message.into()));
                continue;
            }
            EnvName::Setting(path) => path,
        };
        let field = path.join(".");
        let Some(raw) = raw.to_str() else {
            errors.push(error(field, "value is not valid UTF-8".into()));
            continue;
        };
        match env_value(&path, raw) {
            Ok(value) => {
                insert(table, &path, value);
                provenance.insert(field, origin);
            }
            // `SWITCHBOARD_ADMIN_PORT=tcp://…` is the link of a Service named
            // `switchboard-admin`, not a setting `[admin] port`: ignored, while
            // a real key (`…_DEVBOX_PORT`) with a bad value is still an error.
            Err(e) if is_service_link(&name) && e.message.starts_with("unknown field") => {}
            Err(e) => errors.push(error(e.field, e.message)),
        }
    }
}

enum EnvName {
    /// Not an override (no known section): left alone.
    NotOurs,
    /// Starts with a known section but names no setting.
    Unknown,
    Setting(Vec<String>),
}

fn env_path(name: &str) -> EnvName {
    let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
        return EnvName::NotOurs;
    };
    let mut sections: Vec<&str> = SECTIONS.to_vec();
    sections.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for section in sections {
        let prefix = format!("{}_", section.replace('.', "_").to_ascii_uppercase());
        if let Some(key) = rest.strip_prefix(&prefix).filter(|k| !k.is_empty()) {
            let mut path: Vec<String> = section.split('.').map(str::to_owned).collect();
            path.push(key.to_ascii_lowercase());
            return EnvName::Setting(path);
        }
    }
    let top_level = SECTIONS
        .iter()
        .map(|s| s.split('.').next().unwrap_or(s).to_ascii_uppercase());
    let ours = top_level
        .into_iter()
        .any(|t| rest == t || rest.starts_with(&format!("{t}_")));
    if ours {
        EnvName::Unknown
    } else {
        EnvName::NotOurs
    }
}

/// The warning for `SWITCHBOARD_<no section>_…`, with the likely intended
/// name when the section looks misspelt; none for the names that are
/// expected there.
fn not_an_override(name: &str) -> Option<String> {
    if NOT_OVERRIDES.contains(&name) || is_service_link(name) {
        return None;
    }
    let sections: Vec<String> = SECTIONS
        .iter()
        .map(|s| s.replace('.', "_").to_ascii_uppercase())
        .collect();
    let rest = name.strip_prefix(ENV_PREFIX).unwrap_or(name);
    // Try every split of the rest into a section and a key.
    let guess = rest
        .match_indices('_')
        .filter_map(|(i, _)| {
            let (section, key) = (&rest[..i], &rest[i + 1..]);
            let near = closest(section, sections.iter().map(String::as_str))?;
            (!key.is_empty()).then(|| format!("{ENV_PREFIX}{near}_{key}"))
        })
        .next();
    let hint = match guess {
        Some(guess) => format!("did you mean {guess}? "),
        None => String::new(),
    };
    let seed = if rest.contains("SEED") {
        " (a seed variable is read only when server.host_key_seed_env names it)"
    } else {
        ""
    };
    Some(format!(
        "environment variable {name}: ignored: names no section{seed}; {hint}overrides are \
         SWITCHBOARD_<SECTION>_<KEY>, with SECTION one of {}",
        sections.join(", ")
    ))
}

/// A service link Kubernetes injects into every pod of the namespace for a
/// Service named `switchboard…`: `<SVC>_SERVICE_HOST`, `<SVC>_SERVICE_PORT`,
/// `<SVC>_SERVICE_PORT_<NAME>`, `<SVC>_PORT`, `<SVC>_PORT_<N>_<PROTO>` and
/// `<SVC>_PORT_<N>_<PROTO>_{PROTO,PORT,ADDR}`.
fn is_service_link(name: &str) -> bool {
    let shape = |c: char| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_';
    if !name.chars().all(shape) {
        return false;
    }
    if name.ends_with("_SERVICE_HOST") || name.ends_with("_PORT") {
        return true;
    }
    if let Some((_, after)) = name.split_once("_SERVICE_PORT") {
        return after.is_empty() || after.starts_with('_');
    }
    // `…_PORT_2233_TCP`, `…_PORT_2233_TCP_ADDR`: `_PORT_<digits>_<PROTO>[_<SUFFIX>]` at the end.
    name.match_indices("_PORT_").any(|(i, _)| {
        let rest = &name[i + "_PORT_".len()..];
        let Some((number, tail)) = rest.split_once('_') else {
            return false;
        };
        let proto = tail.split_once('_').map_or(tail, |(p, _)| p);
        let suffix = tail.strip_prefix(proto).unwrap_or("");
        !number.is_empty()
            && number.bytes().all(|b| b.is_ascii_digit())
            && matches!(proto, "TCP" | "UDP" | "SCTP")
            && matches!(suffix, "" | "_PROTO" | "_PORT" | "_ADDR")
    })
}

/// The variable's text as a TOML value if it is one and fits (`6`, `true`,
/// `["a", "b"]`, `""`), else as the plain string.
fn env_value(path: &[String], raw: &str) -> Result<Value, LeafError> {
    let as_string = Value::String(raw.to_owned());
    let parsed = format!("v = {raw}")
        .parse::<Table>()
        .ok()
        .and_then(|mut t| t.remove("v"));
    match parsed {
        Some(value) => match check_leaf(path, &value) {
            Ok(()) => Ok(value),
            // A list or table was meant as one; anything else is reported as
            // the text it is (`5` for a duration: "time unit needed").
            Err(typed) => check_leaf(path, &as_string)
                .map(|()| as_string)
                .map_err(|plain| {
                    if value.is_array() || value.is_table() {
                        typed
                    } else {
                        plain
                    }
                }),
        },
        None => check_leaf(path, &as_string).map(|()| as_string),
    }
}

fn insert(table: &mut Table, path: &[String], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut t = table;
    for key in parents {
        let entry = t
            .entry(key.clone())
            .or_insert_with(|| Value::Table(Table::new()));
        if !entry.is_table() {
            *entry = Value::Table(Table::new());
        }
        let Value::Table(inner) = entry else { return };
        t = inner;
    }
    t.insert(last.clone(), value);
}
