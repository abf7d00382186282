//! The routes-file source (SPEC §4): reads `routes.toml` into [`Route`]s and
//! watches it for changes.
//!
//! **Loading.** The file must be valid TOML whose only top-level key is
//! `route` (an array of tables); anything else is a [`FileError`] and nothing
//! is loaded. Each `[[route]]` is then read on its own: a broken route becomes
//! a [`RouteError`] naming the file, the route and the field, and every other
//! route is kept. When two routes share a name the first one is kept and the
//! later one is an error. Relative `authorized_keys_file` and `identity_file`
//! paths are resolved against the directory of the routes file as it was named
//! (not the target of a symlink), which is what a Kubernetes ConfigMap mount
//! expects.
//!
//! **Reloading** ([`spawn_watcher`]). A file that cannot be read or parsed at
//! all leaves the current table untouched. A route that is broken in the new
//! file but existed before keeps its previous version, so a typo in an edit
//! never takes a working box offline; the error is logged until it is fixed.
//! A route whose *name* is broken (or missing) cannot be matched to its
//! previous version and disappears, as does any route deleted from the file.
//! The trade-off: an edit meant to *narrow* a route (drop a key, stop it) that
//! also breaks it leaves the previous, wider version in service until the error
//! is fixed; the error says so. The merge is the pure function [`merge`].

pub(crate) mod keys;
mod raw;
mod watch;

#[cfg(test)]
mod fixture;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod watch_tests;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

use super::Route;
use crate::config::text::line_col;

pub(crate) use keys::read_bounded;
pub use watch::{Merged, SOURCE, merge, spawn_watcher};

/// Largest routes file (and key file) read, in bytes: far above any real
/// file, low enough that a wrong path (a log file, `/dev/zero`) cannot eat memory.
pub const MAX_FILE_LEN: u64 = 16 * 1024 * 1024;

/// The result of reading a routes file: the good routes, and one error per
/// problem found in the others.
#[derive(Debug, Default)]
pub struct FileLoad {
    /// Valid routes, in file order, names unique.
    pub routes: Vec<Route>,
    /// Problems, in file order; the routes they name are not in `routes`.
    pub errors: Vec<RouteError>,
}

/// The whole file could not be used: nothing was loaded from it.
#[derive(Debug, Error)]
pub enum FileError {
    /// The file could not be read (missing, not a regular file, too large, not UTF-8).
    #[error("{file}: cannot read: {error}")]
    Read { file: String, error: std::io::Error },
    /// The file is not TOML, or its top level is not `[[route]]` tables.
    #[error("{file}:{line}:{column}: {message}")]
    Toml {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
}

/// One problem with one route; the route is skipped (or, on reload, keeps its
/// previous version). Displays as `routes.toml: route "alice-ws": address: …`,
/// or `routes.toml: [[route]] #3 (line 12): name: …` when the route has no
/// usable name.
#[derive(Debug, Clone, Error)]
#[error("{}", self.render())]
pub struct RouteError {
    /// The routes file, as named by the operator.
    pub file: String,
    /// 1-based position of the route among the `[[route]]` tables.
    pub index: usize,
    /// 1-based line of the route's `[[route]]` header, when known.
    pub line: Option<usize>,
    /// The route's name, when it has a valid one.
    pub route: Option<String>,
    /// The field at fault (`address`, `authorized_keys[2]`, `forwarding.local`),
    /// or `None` when the problem is the route as a whole.
    pub field: Option<String>,
    /// What is wrong and, where it helps, what to do. Never contains key material.
    pub message: String,
}

impl RouteError {
    fn render(&self) -> String {
        let mut out = format!("{}: {}: ", self.file, self.position());
        if let Some(field) = &self.field {
            out.push_str(field);
            out.push_str(": ");
        }
        out.push_str(&self.message);
        out
    }

    /// `route "alice-ws"`, or `[[route]] #3 (line 12)` when unnamed.
    fn position(&self) -> String {
        match &self.route {
            Some(name) => format!("route {name:?}"),
            None => Position {
                index: self.index,
                line: self.line,
            }
            .to_string(),
        }
    }
}

/// Where a `[[route]]` table sits in the file.
#[derive(Clone, Copy, Debug)]
struct Position {
    index: usize,
    line: Option<usize>,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[[route]] #{}", self.index)?;
        if let Some(line) = self.line {
            write!(f, " (line {line})")?;
        }
        Ok(())
    }
}

/// The file's top level: only `[[route]]`; each route is kept as a raw value so
/// that one bad route does not fail the others.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    route: Vec<toml::Spanned<toml::Value>>,
}

/// Reads and validates the routes file at `path`.
pub fn load(path: &Path) -> Result<FileLoad, FileError> {
    let text = read_text(path).map_err(|error| FileError::Read {
        file: display(path),
        error,
    })?;
    parse_str(&text, path)
}

/// Parses routes-file text as if it had been read from `path`: `path` names the
/// file in errors and its directory anchors relative key paths; it is not read.
/// Key files the routes refer to are read.
pub fn parse_str(text: &str, path: &Path) -> Result<FileLoad, FileError> {
    let file = display(path);
    let raw: RawFile = toml::from_str(text).map_err(|e| toml_error(&file, text, &e))?;
    let base_dir = base_dir(path);
    let mut load = FileLoad::default();
    let mut seen: HashMap<String, Position> = HashMap::new();
    for (i, spanned) in raw.route.into_iter().enumerate() {
        let at = Position {
            index: i + 1,
            line: Some(line_col(text, spanned.span().start).0),
        };
        let ctx = raw::Context {
            file: &file,
            at,
            base_dir: &base_dir,
        };
        let value = spanned.into_inner();
        let name = raw::valid_name(&value);
        if let Some(name) = &name {
            if let Some(first) = seen.get(name) {
                load.errors.push(ctx.error(
                    Some(name),
                    Some("name"),
                    format!("duplicate of {first}; this one ({at}) is skipped"),
                ));
                continue;
            }
            seen.insert(name.clone(), at);
        }
        match raw::convert(value, name.as_deref(), &ctx) {
            Ok(route) => load.routes.push(route),
            Err(errors) => load.errors.extend(errors),
        }
    }
    Ok(load)
}

/// Paths that `text` refers to (`authorized_keys_file`, `identity_file`),
/// resolved like [`parse_str`] does; for change detection. Unparsable text
/// refers to nothing.
pub(crate) fn referenced_files(text: &str, path: &Path) -> Vec<PathBuf> {
    let Ok(raw) = toml::from_str::<RawFile>(text) else {
        return Vec::new();
    };
    let base_dir = base_dir(path);
    let mut files = Vec::new();
    for value in raw.route {
        for key in ["authorized_keys_file", "identity_file"] {
            if let Some(p) = value
                .get_ref()
                .get(key)
                .and_then(toml::Value::as_str)
                .filter(|p| !p.is_empty())
            {
                files.push(base_dir.join(p));
            }
        }
    }
    files
}

/// Reads a regular file of at most [`MAX_FILE_LEN`] bytes as UTF-8.
fn read_text(path: &Path) -> std::io::Result<String> {
    let bytes = keys::read_bounded(path)?;
    String::from_utf8(bytes)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"))
}

/// The directory relative paths are resolved against.
fn base_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

fn toml_error(file: &str, text: &str, error: &toml::de::Error) -> FileError {
    let (line, column) = error
        .span()
        .map_or((1, 1), |span| line_col(text, span.start));
    let message = error.message().trim().replace('\n', "; ");
    FileError::Toml {
        file: file.to_owned(),
        line,
        column,
        message,
    }
}
