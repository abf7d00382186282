//! Where each setting came from (file, environment variable, defaults), the
//! error that names it, and the check of one leaf value on its own — shared
//! by the file reader and the environment overrides.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use toml::{Table, Value};

use super::Config;
use super::text::dotted;

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

/// Why one value does not fit: the field (dotted, from where deserializing
/// failed: `server.listen`, `proxy_protocol.trusted_cidrs[1]`) and what is wrong.
#[derive(Debug)]
pub(super) struct LeafError {
    pub field: String,
    pub message: String,
}

/// Deserializes a document holding only `path = value`, so its error is its
/// own; the field named is the structural path `serde_path_to_error` tracked.
pub(super) fn check_leaf(path: &[String], value: &Value) -> Result<(), LeafError> {
    let mut doc = value.clone();
    for key in path.iter().rev() {
        doc = Value::Table(Table::from_iter([(key.clone(), doc)]));
    }
    match serde_path_to_error::deserialize::<_, Config>(doc) {
        Ok(_) => Ok(()),
        // The inline seed is a secret: never echo what was written there.
        Err(_) if path.last().is_some_and(|k| k == "host_key_seed") => Err(LeafError {
            field: path.join("."),
            message: "must be a string (value not shown)".into(),
        }),
        Err(e) => Err(LeafError {
            field: structural_field(path, e.path()),
            message: e.inner().message().trim().to_string(),
        }),
    }
}

/// The tracked path, or the leaf's own when nothing was tracked.
pub(super) fn structural_field(leaf: &[String], tracked: &serde_path_to_error::Path) -> String {
    let field = dotted("", tracked);
    if field.is_empty() {
        leaf.join(".")
    } else {
        field
    }
}
