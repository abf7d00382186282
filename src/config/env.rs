//! `SWITCHBOARD_<SECTION>_<KEY>` environment overrides, applied on top of the
//! file: `SWITCHBOARD_SERVER_LISTEN` sets `[server] listen`, and nested
//! sections join with `_` (`SWITCHBOARD_SOURCES_FILE_PATH` is `[sources.file] path`).

use std::ffi::OsString;

use toml::{Table, Value};

use super::origin::{ConfigError, Origin, Provenance, check_leaf};

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
];

pub(super) fn apply_env(
    table: &mut Table,
    env: impl IntoIterator<Item = (OsString, OsString)>,
    provenance: &mut Provenance,
    errors: &mut Vec<ConfigError>,
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
            EnvName::NotOurs => continue,
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
            Err(message) => errors.push(error(field, message)),
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

/// The variable's text as a TOML value if it is one and fits (`6`, `true`,
/// `["a", "b"]`, `""`), else as the plain string.
fn env_value(path: &[String], raw: &str) -> Result<Value, String> {
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
