//! `switchboard tunnel ROUTE --gateway HOST:PORT [--websocket] [--token-env VAR]`:
//! a `ProxyCommand` that reaches ROUTE through the gateway's HTTP CONNECT or
//! WebSocket front (SPEC §11), for users without proxytunnel or behind a
//! front that only passes WebSockets. The protocol lives in
//! [`crate::tunnel::client`]; this file is arguments and exit codes.

use anyhow::{Context as _, anyhow};
use zeroize::Zeroizing;

use super::Error;
use crate::tunnel::client::{self, Options};

/// `tunnel` flags.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The route (box) to reach, e.g. alice-ws (`%h` in ~/.ssh/config).
    pub route: String,
    /// The gateway's SSH port as this machine reaches it.
    #[arg(long, value_name = "HOST:PORT")]
    pub gateway: String,
    /// Tunnel over a WebSocket (GET /tunnel/ROUTE) instead of HTTP CONNECT.
    #[arg(long)]
    pub websocket: bool,
    /// Environment variable holding the route's tunnel token (never on the
    /// command line, where other users can read it).
    #[arg(long, value_name = "VAR")]
    pub token_env: Option<String>,
}

/// Runs the tunnel on stdin/stdout until the gateway's side ends.
pub fn run(args: Args) -> Result<(), Error> {
    let token = match &args.token_env {
        None => None,
        Some(var) => {
            let value = std::env::var(var)
                .map_err(|_| Error::Invalid(anyhow!("--token-env {var}: {var} is not set")))?;
            Some(Zeroizing::new(value))
        }
    };
    let opts = Options {
        route: args.route,
        gateway: args.gateway,
        websocket: args.websocket,
        token,
    };
    opts.validate().map_err(|e| Error::Invalid(e.into()))?;
    // One thread is plenty for one stream; stdin is read on tokio's blocking
    // pool, which `shutdown_background` leaves behind instead of waiting on.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
        .map_err(Error::Runtime)?;
    let result = runtime.block_on(client::run(&opts, tokio::io::stdin(), tokio::io::stdout()));
    runtime.shutdown_background();
    result.map_err(|e| match e {
        client::Error::Invalid(_) => Error::Invalid(e.into()),
        client::Error::Unreachable { .. }
        | client::Error::Refused(_)
        | client::Error::Failed { .. } => Error::Runtime(e.into()),
    })
}
