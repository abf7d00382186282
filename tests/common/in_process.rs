//! The gateway inside the test process: [`switchboard::cli::serve_on`] (what
//! `serve` runs, minus the signal handlers) on a thread and a multi-threaded
//! runtime of its own, on listeners the harness bound to `127.0.0.1:0`.
//!
//! Tests run in parallel threads of one process, so nothing here is global:
//! each gateway has its own runtime, listeners, temp dir and diagnostic log (a
//! tracing subscriber made current on its threads only). Stopping drops the
//! runtime with every task in it, as killing the process would.
//!
//! What stays process-wide even so is the gateway's own: `ops::metrics` (one
//! registry per process) and whatever the binary's `main` sets up (the global
//! subscriber of `[log]`). Tests that read either run the binary.

use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::Dispatch;
use tracing::dispatcher::{self, DefaultGuard};
use tracing_subscriber::EnvFilter;

/// How long the runtime's threads get to finish once its tasks are dropped.
const STOP_TIMEOUT: Duration = Duration::from_secs(2);

thread_local! {
    /// The diagnostic log of the gateway whose runtime owns this thread.
    static SCOPED_LOG: RefCell<Option<DefaultGuard>> = const { RefCell::new(None) };
}

/// A listener on a port of loopback the kernel picked (no race with other
/// tests: the port is ours from now on), ready for tokio.
pub fn bind_loopback() -> TcpListener {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener
        .set_nonblocking(true)
        .expect("nonblocking listener");
    listener
}

/// A gateway running on its own thread; stopped on drop.
pub struct InProcess {
    kill: CancellationToken,
    thread: Option<JoinHandle<()>>,
}

impl InProcess {
    /// Starts `serve_on(config)` on `listener` and `admin`; the gateway's
    /// events at `log_level` go to `log` (and a failure to start, as
    /// `switchboard: …`, the way `main` reports it).
    pub fn start(
        config: &Path,
        listener: TcpListener,
        admin: TcpListener,
        log: &Path,
        log_level: &str,
    ) -> InProcess {
        let port = listener.local_addr().expect("addr").port();
        let log_file = OpenOptions::new()
            .append(true)
            .create(true)
            .open(log)
            .expect("gateway.log");
        let dispatch = diagnostic_log(log_level, log_file.try_clone().expect("log fd"));
        let kill = CancellationToken::new();
        let config: PathBuf = config.to_owned();
        let stop = kill.clone();
        let thread = thread::Builder::new()
            .name(format!("gateway-{port}"))
            .spawn(move || {
                serve_until_killed(config, listener, admin, dispatch, stop, log_file, port)
            })
            .expect("spawn the gateway thread");
        InProcess {
            kill,
            thread: Some(thread),
        }
    }

    /// True until the gateway has stopped (or failed to start).
    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Drops every task of the gateway at once and waits for its thread.
    pub fn stop(&mut self) {
        self.kill.cancel();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The gateway thread: a runtime whose every thread logs to `dispatch`,
/// running `serve_on` until it returns or `kill` is cancelled.
fn serve_until_killed(
    config: PathBuf,
    listener: TcpListener,
    admin: TcpListener,
    dispatch: Dispatch,
    kill: CancellationToken,
    mut log: File,
    port: u16,
) {
    let _log = dispatcher::set_default(&dispatch);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name(format!("gateway-{port}-rt"))
        .on_thread_start(move || {
            let guard = dispatcher::set_default(&dispatch);
            SCOPED_LOG.with(|slot| *slot.borrow_mut() = Some(guard));
        })
        .on_thread_stop(|| {
            SCOPED_LOG.with(|slot| slot.borrow_mut().take());
        })
        .build()
        .expect("the gateway's runtime");
    let outcome = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
        let admin = tokio::net::TcpListener::from_std(admin).expect("tokio listener");
        // Never cancelled: a test that wants a drain runs the binary and signals it.
        let shutdown = CancellationToken::new();
        tokio::select! {
            result = switchboard::cli::serve_on(&config, listener, admin, shutdown) => Some(result),
            () = kill.cancelled() => None,
        }
    });
    runtime.shutdown_timeout(STOP_TIMEOUT);
    match outcome {
        Some(Err(e)) => {
            let _ = writeln!(log, "switchboard: {e}");
        }
        Some(Ok(())) => {
            let _ = writeln!(log, "[harness: serve_on returned]");
        }
        None => {}
    }
}

/// Text at `level`, as the binary logs to a non-terminal, into `file`. For
/// reading when a test fails; tests assert on the binary's log only.
fn diagnostic_log(level: &str, file: File) -> Dispatch {
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(level))
        .with_writer(Mutex::new(file))
        .with_ansi(false)
        .finish();
    Dispatch::new(subscriber)
}
