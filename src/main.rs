//! `switchboard`: harden the process, parse the command line, load the
//! configuration, start logging, run the subcommand, and map the outcome to an
//! exit code (0 ok, 1 runtime failure, 2 usage or invalid configuration).

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use switchboard::cli::{self, Cli};
use switchboard::config::{LogConfig, LogFormat};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

fn main() -> ExitCode {
    // Before anything that may hold a secret (the command line, the
    // configuration, the seed, identity keys) is read; warned about once
    // logging runs.
    let hardening = cli::harden_process();
    // clap exits 2 on a usage error, 0 on --help/--version.
    let cli = Cli::parse();
    let config = match cli.command.load_config() {
        Ok(config) => config,
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("error: {e}");
            }
            eprintln!("switchboard: {}", cli::problem_summary(errors.0.len()));
            return ExitCode::from(2);
        }
    };
    init_tracing(&config.log);
    for warning in hardening {
        tracing::warn!("{warning}");
    }
    match cli::run(cli.command, config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("switchboard: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Logs to stderr, text or JSON per `[log] format` (JSON: one flat object
/// per line, see the README's "Logs"); the filter is `RUST_LOG`
/// when set, else `[log] level` (already validated), under the caps of
/// [`cli::log_caps`] that neither can lift.
fn init_tracing(log: &LogConfig) {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) => EnvFilter::try_new(&directives).unwrap_or_else(|e| {
            eprintln!(
                "switchboard: ignoring RUST_LOG ({e}); using log.level = {:?}",
                log.level
            );
            EnvFilter::new(&log.level)
        }),
        Err(_) => EnvFilter::new(&log.level),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match log.format {
        LogFormat::Text => builder.finish().with(cli::log_caps()).init(),
        // One flat object per line: `message` and the event's fields at the
        // top level, the connection's span once (`span`), no span list.
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .finish()
            .with(cli::log_caps())
            .init(),
    }
}
