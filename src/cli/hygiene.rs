//! Process hygiene (SPEC §12: secrets never reach core dumps or logs): the
//! process is made undumpable before anything is read, and the log filter
//! caps the dependencies that would print Kubernetes API responses.

use rustix::process::{Resource, Rlimit, setrlimit};
use tracing_subscriber::filter::{LevelFilter, Targets};

/// Log targets capped whatever `log.level` or `RUST_LOG` asks for (a target
/// caps every target it is a prefix of: `hyper` covers `hyper_util`). From
/// kube-rs 5.0's source: `kube_client` logs whole API responses — a Secret
/// list — at WARN when one fails to parse, and error bodies at DEBUG, response
/// headers at TRACE; its ERROR lines carry only a status. `kube_runtime` logs
/// watcher errors (with those error bodies) at DEBUG and RBAC refusals at WARN.
/// The HTTP and TLS stack below it has nothing at DEBUG or TRACE an operator
/// of the gateway needs.
pub const LOG_CAPS: &[(&str, LevelFilter)] = &[
    ("kube_client", LevelFilter::ERROR),
    ("kube_runtime", LevelFilter::WARN),
    ("kube", LevelFilter::WARN),
    ("hyper", LevelFilter::WARN),
    ("tower", LevelFilter::WARN),
    ("rustls", LevelFilter::WARN),
];

/// A filter that lets everything through but [`LOG_CAPS`]; combined with the
/// user's filter, no directive of theirs (however specific) lifts a cap.
pub fn log_caps() -> Targets {
    Targets::new()
        .with_default(LevelFilter::TRACE)
        .with_targets(LOG_CAPS.iter().copied())
}

/// Turns core dumps off (`RLIMIT_CORE` 0, soft and hard) and, on Linux, makes
/// the process non-dumpable (`PR_SET_DUMPABLE` 0: no ptrace, no
/// `/proc/<pid>/mem` for processes of the same user), so neither exposes the
/// host-key seed or an identity key. Returns a warning per step that failed;
/// the process runs on without it.
pub fn harden_process() -> Vec<String> {
    let mut warnings = Vec::new();
    let none = Rlimit {
        current: Some(0),
        maximum: Some(0),
    };
    if let Err(e) = setrlimit(Resource::Core, none) {
        warnings.push(format!(
            "cannot turn core dumps off (RLIMIT_CORE): {e}; a crash may write the \
             host-key seed and identity keys to disk"
        ));
    }
    #[cfg(target_os = "linux")]
    if let Err(e) =
        rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
    {
        warnings.push(format!(
            "cannot make the process non-dumpable (PR_SET_DUMPABLE): {e}; processes of \
             the same user may read its memory"
        ));
    }
    warnings
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    /// A log sink for one test.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().expect("sink").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn caps_hold_against_the_most_verbose_filter() {
        let sink = Sink::default();
        let writer = sink.clone();
        let filter = EnvFilter::new("trace,kube_client::client=trace,hyper_util=trace");
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish()
            .with(log_caps());
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(target: "kube_client::client", "BODY-kube-client-warn");
            tracing::debug!(target: "kube_client", "BODY-kube-client-debug");
            tracing::error!(target: "kube_client::client::builder", "kube-client-error");
            tracing::debug!(target: "kube_runtime::watcher", "BODY-watcher-debug");
            tracing::warn!(target: "kube_runtime::watcher", "watcher-warn");
            tracing::debug!(target: "hyper_util::client", "BODY-hyper-debug");
            tracing::trace!(target: "rustls::client", "BODY-rustls-trace");
            tracing::debug!(target: "tower_http::trace", "BODY-tower-debug");
            tracing::trace!(target: "switchboard::routes::kube", "own-trace");
        });
        let log = String::from_utf8(sink.0.lock().expect("sink").clone()).expect("utf-8");
        assert!(!log.contains("BODY"), "{log}");
        for kept in ["kube-client-error", "watcher-warn", "own-trace"] {
            assert!(log.contains(kept), "{kept} missing: {log}");
        }
    }
}
