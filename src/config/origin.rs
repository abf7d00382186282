//! Where each setting came from (file, environment variable, defaults), the
//! error that names it, and the check of one leaf value on its own — shared
//! by the file reader and the environment overrides.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;
use toml::{Table, Value};

use super::Config;

/// Where a setting came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    File(PathBuf),
    Env(String),
    Default,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File(p) => write!(f, "{}", p.display()),
            Origin::Env(var) => write!(f, "environment variable {var}"),
            Origin::Default => f.write_str("built-in defaults"),
        }
    }
}

/// One problem: where, which field, what.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{origin}: {}{message}", if field.is_empty() { String::new() } else { format!("{field}: ") })]
pub struct ConfigError {
    pub origin: Origin,
    /// Dotted path (`server.listen`), a position for a syntax error, or empty
    /// when the problem is the whole file or variable.
    pub field: String,
    pub message: String,
}

/// Every problem found; `Display` prints one per line.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// Which origin set each dotted leaf path.
pub(super) type Provenance = BTreeMap<String, Origin>;

/// Deserializes a document holding only `path = value`, so its error is its own.
pub(super) fn check_leaf(path: &[String], value: &Value) -> Result<(), String> {
    let mut doc = value.clone();
    for key in path.iter().rev() {
        doc = Value::Table(Table::from_iter([(key.clone(), doc)]));
    }
    match Config::deserialize(doc) {
        Ok(_) => Ok(()),
        // The inline seed is a secret: never echo what was written there.
        Err(_) if path.last().is_some_and(|k| k == "host_key_seed") => {
            Err("must be a string (value not shown)".into())
        }
        Err(e) => Err(e.message().trim().to_string()),
    }
}
