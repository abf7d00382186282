//! One watch stream of the fake API: the events after the client's
//! resourceVersion, then new ones as they happen, a BOOKMARK when idle, until
//! `timeoutSeconds`, a cut, or the API going down.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde_json::json;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::{BOOKMARK_EVERY, State, api_version, kind, selected};

pub(super) struct Spec {
    pub resource: String,
    pub ns: Option<String>,
    pub selector: Option<String>,
    pub from: u64,
    pub cut: u64,
    pub timeout: Duration,
    pub bookmarks: bool,
}

pub(super) async fn run(
    spec: Spec,
    state: Arc<Mutex<State>>,
    mut changed: watch::Receiver<u64>,
    tx: mpsc::Sender<Bytes>,
) {
    let deadline = Instant::now() + spec.timeout;
    let mut sent = spec.from;
    loop {
        let lines: Vec<Bytes> = {
            let s = state.lock().unwrap_or_else(|e| e.into_inner());
            if s.down || s.cut != spec.cut {
                return; // dropping `tx` ends the chunked body
            }
            let lines = s
                .log
                .iter()
                .filter(|(rv, r, _, o)| {
                    *rv > sent
                        && *r == spec.resource
                        && selected(o, spec.ns.as_deref(), spec.selector.as_deref())
                })
                .map(|(_, _, t, o)| Bytes::from(format!("{}\n", json!({"type": t, "object": o}))))
                .collect();
            sent = s.rv;
            lines
        };
        for line in lines {
            if tx.send(line).await.is_err() {
                return;
            }
        }
        tokio::select! {
            r = changed.changed() => if r.is_err() { return },
            () = tokio::time::sleep(BOOKMARK_EVERY) => {
                if spec.bookmarks {
                    let bookmark = json!({"type": "BOOKMARK", "object": {
                        "kind": kind(&spec.resource), "apiVersion": api_version(&spec.resource),
                        "metadata": {"resourceVersion": sent.to_string()}}});
                    if tx.send(Bytes::from(format!("{bookmark}\n"))).await.is_err() {
                        return;
                    }
                }
            }
            () = tokio::time::sleep_until(deadline) => return,
        }
    }
}
