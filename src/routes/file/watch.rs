//! Hot reload of the routes file: poll, detect a change, reload, merge with the
//! current table, swap it in (see the parent module doc for the semantics).
//!
//! Change detection hashes the *content* of the routes file and of every key
//! file it names, on every poll. Metadata alone is not enough: mtimes have a
//! one-second granularity on some filesystems and are preserved by `cp -p` and
//! by some ConfigMap projections, and a Kubernetes ConfigMap update swaps a
//! symlink rather than writing the file. Reading a few KiB every few seconds
//! costs microseconds. Following the path on every poll also handles editors
//! that write a new file and rename it over the old one. A rotated
//! `identity_file` (a Secret update) therefore reloads its route too.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;
use tracing::{debug, error, info};

use super::{FileLoad, keys, parse_str, referenced_files};
use crate::ops::metrics::{self, Source};
use crate::routes::{Route, RouteSources, RouteTable};

/// This source's name in [`RouteSources`], logs and metrics.
pub const SOURCE: &str = "file";

/// Shortest poll interval honoured; a zero interval would spin.
const MIN_INTERVAL: Duration = Duration::from_millis(10);
/// Longest wait for a file that is being written to settle before it is read
/// again and compared (non-atomic writers: `cat new > routes.toml`).
const MAX_SETTLE: Duration = Duration::from_millis(250);

/// The outcome of merging a new load into the current table.
#[derive(Debug, Default)]
pub struct Merged {
    /// The routes of the new table.
    pub routes: Vec<Route>,
    /// Names new in this table, sorted.
    pub added: Vec<String>,
    /// Names gone from this table, sorted.
    pub removed: Vec<String>,
    /// Broken in the file but kept in their previous version, sorted.
    pub kept_previous: Vec<String>,
}

/// Merges a fresh load with the routes currently served: every valid route of
/// `load`, plus the previous version of each route that is broken in `load`
/// (by name) and not otherwise present. Pure, so it can be tested alone.
pub fn merge(previous: &RouteTable, load: FileLoad) -> Merged {
    let mut routes = load.routes;
    let mut names: HashSet<String> = routes.iter().map(|r| r.name.clone()).collect();
    let mut kept_previous = Vec::new();
    for error in &load.errors {
        let Some(name) = &error.route else { continue };
        if names.contains(name) {
            continue;
        }
        if let Some(old) = previous.get(name) {
            routes.push(Route::clone(old));
            names.insert(name.clone());
            kept_previous.push(name.clone());
        }
    }
    let old_names: HashSet<&str> = previous.names().into_iter().collect();
    let mut added: Vec<String> = names
        .iter()
        .filter(|n| !old_names.contains(n.as_str()))
        .cloned()
        .collect();
    let mut removed: Vec<String> = old_names
        .iter()
        .filter(|n| !names.contains(**n))
        .map(|n| (*n).to_owned())
        .collect();
    added.sort_unstable();
    removed.sort_unstable();
    kept_previous.sort_unstable();
    Merged {
        routes,
        added,
        removed,
        kept_previous,
    }
}

/// Polls `path` every `interval` and publishes the file's routes to `routes`
/// when the file (or a key file it names) changes. Call it right after the initial
/// [`super::load`]: the file as it is at this call is taken as already loaded.
/// Must be called inside a Tokio runtime.
pub fn spawn_watcher(
    path: PathBuf,
    routes: Arc<RouteSources>,
    interval: Duration,
) -> JoinHandle<()> {
    let interval = interval.max(MIN_INTERVAL);
    let settle = (interval / 2).min(MAX_SETTLE);
    // The baseline is taken now, not in the task, so that a change made right
    // after this call is never mistaken for the baseline. (A small blocking read.)
    let mut last = take_snapshot(&path);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(interval).await;
            let seen = snapshot(&path).await;
            if seen.fingerprint == last.fingerprint {
                continue;
            }
            tokio::time::sleep(settle).await;
            let settled = snapshot(&path).await;
            if settled.fingerprint != seen.fingerprint {
                debug!(file = %path.display(), "routes file still changing; waiting");
                continue;
            }
            apply(&path, &settled, &routes).await;
            last = settled;
        }
    })
}

/// What a poll saw: a hash of everything the routes depend on, and the routes
/// file's text (or why it could not be read).
struct Snapshot {
    fingerprint: [u8; 32],
    text: Result<String, String>,
}

async fn snapshot(path: &Path) -> Snapshot {
    let owned = path.to_path_buf();
    match tokio::task::spawn_blocking(move || take_snapshot(&owned)).await {
        Ok(snapshot) => snapshot,
        Err(e) => Snapshot {
            fingerprint: [0; 32],
            text: Err(format!("snapshot task failed: {e}")),
        },
    }
}

fn take_snapshot(path: &Path) -> Snapshot {
    let mut hash = Sha256::new();
    let text = match keys::read_bounded(path) {
        Ok(bytes) => String::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_owned()),
        Err(e) => Err(e.to_string()),
    };
    match &text {
        Ok(text) => {
            hash.update(b"ok\0");
            hash.update(text.as_bytes());
            for file in referenced_files(text, path) {
                hash.update(b"\0file\0");
                hash.update(file.as_os_str().as_encoded_bytes());
                match keys::read_bounded(&file) {
                    Ok(bytes) => hash.update(Sha256::digest(&bytes)),
                    Err(e) => hash.update(format!("\0error\0{:?}", e.kind()).as_bytes()),
                }
            }
        }
        Err(e) => {
            hash.update(b"error\0");
            hash.update(e.as_bytes());
        }
    }
    Snapshot {
        fingerprint: hash.finalize().into(),
        text,
    }
}

/// Reloads from a settled snapshot and stores the merged table; on a file that
/// cannot be used at all, keeps the current table.
async fn apply(path: &Path, snapshot: &Snapshot, routes: &RouteSources) {
    let current = routes.routes_of(SOURCE);
    let reload_error = || {
        metrics::get()
            .route_reload_errors
            .get_or_create(&Source { source: SOURCE })
            .inc()
    };
    let text = match &snapshot.text {
        Ok(text) => text.clone(),
        Err(e) => {
            error!(file = %path.display(), error = %e, "routes file unreadable; keeping the current {} routes", current.len());
            reload_error();
            return;
        }
    };
    let owned = path.to_path_buf();
    let load = match tokio::task::spawn_blocking(move || parse_str(&text, &owned)).await {
        Ok(Ok(load)) => load,
        Ok(Err(e)) => {
            error!(error = %e, "routes file not reloaded; keeping the current {} routes", current.len());
            reload_error();
            return;
        }
        Err(e) => {
            error!(error = %e, "routes reload task failed; keeping the current routes");
            return;
        }
    };
    let errors = load.errors.clone();
    let merged = merge(&current, load);
    for e in &errors {
        reload_error();
        match &e.route {
            Some(name) if merged.kept_previous.contains(name) => {
                error!(route = %name, "{e}; keeping the previous version of this route")
            }
            Some(name) => error!(route = %name, "{e}; route skipped"),
            None => error!("{e}; route skipped"),
        }
    }
    let (added, removed) = (merged.added.len(), merged.removed.len());
    let count = merged.routes.len();
    routes.publish(SOURCE, merged.routes);
    info!("routes reloaded: {count} routes (+{added} -{removed})");
}
