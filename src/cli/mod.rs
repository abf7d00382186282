//! The subcommands (SPEC §2), one file each; only `main.rs` uses this module
//! (and the integration tests, which run gateways in process with [`serve_on`]).
//! Beside them, the process hygiene `main` applies first ([`harden_process`],
//! [`log_caps`]).
//!
//! Each subcommand gets the already-loaded [`Config`] and returns an [`Error`]
//! that says which exit code it deserves (1 runtime, 2 invalid configuration).

mod check;
mod completion;
mod crd;
mod host_key;
mod host_port;
mod hygiene;
mod seed;
mod serve;
mod sessions;
mod ssh_config;
mod tunnel;
mod user_ca;
mod version;

pub use hygiene::{harden_process, log_caps};
pub use serve::serve_on;

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use russh::keys::{HashAlg, PrivateKey};

use crate::config::{Config, ConfigErrors, DEFAULT_FILE};
use crate::hostkey::{HostIdentity, SeedOrigin, load_seed};

/// `switchboard`: one SSH port for every box.
#[derive(Debug, Parser)]
#[command(name = "switchboard", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway.
    Serve(serve::Args),
    /// Validate the configuration and every route source once, print a summary.
    Check(check::Args),
    /// Print the gateway's public host key, fingerprint and known_hosts lines.
    HostKey(host_key::Args),
    /// Print a fresh random host-key seed (e.g. for a Kubernetes Secret).
    Seed,
    /// Print the SSHRoute CustomResourceDefinition (YAML) for `kubectl apply -f -`.
    Crd,
    /// Print the ~/.ssh/config stanzas that reach ROUTE through the gateway.
    SshConfig(ssh_config::Args),
    /// A ProxyCommand that reaches ROUTE through the gateway's HTTP CONNECT or WebSocket front.
    Tunnel(tunnel::Args),
    /// Print the version, the git commit and the build's features.
    Version,
    /// Print a shell completion script: `source <(switchboard completion bash)`.
    Completion(completion::Args),
    /// List a running gateway's live sessions, or end one (its admin endpoint's sessions API).
    Sessions(sessions::Args),
    /// Print the user CA's public line for the boxes' TrustedUserCAKeys (certificate logins).
    UserCa(user_ca::Args),
}

/// `--config FILE`, shared by the subcommands that read the configuration.
#[derive(Debug, Clone, clap::Args)]
pub struct ConfigArg {
    /// Configuration file [default: ./switchboard.toml if it exists, else
    /// built-in defaults]. SWITCHBOARD_<SECTION>_<KEY> variables override it.
    #[arg(long, short = 'c', value_name = "FILE", env = "SWITCHBOARD_CONFIG")]
    pub config: Option<PathBuf>,
}

impl ConfigArg {
    /// How to name the configuration in a summary.
    fn describe(&self) -> String {
        match &self.config {
            Some(path) => path.display().to_string(),
            None if Path::new(DEFAULT_FILE).is_file() => DEFAULT_FILE.into(),
            None => "built-in defaults (no ./switchboard.toml)".into(),
        }
    }

    /// How to name the configuration at the start of an error line.
    fn origin(&self) -> String {
        match &self.config {
            Some(path) => path.display().to_string(),
            None if Path::new(DEFAULT_FILE).is_file() => DEFAULT_FILE.into(),
            None => "built-in defaults".into(),
        }
    }
}

/// A failed subcommand, classified by exit code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Usage or invalid configuration: exit 2.
    #[error("{0:#}")]
    Invalid(anyhow::Error),
    /// The gateway could not run (bind failure, I/O): exit 1.
    #[error("{0:#}")]
    Runtime(anyhow::Error),
}

impl Error {
    /// The process exit code (SPEC §2).
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Invalid(_) => 2,
            Error::Runtime(_) => 1,
        }
    }
}

impl Command {
    /// Loads the configuration this subcommand reads (`seed` and `crd` read none).
    pub fn load_config(&self) -> Result<Config, ConfigErrors> {
        let arg = match self {
            Command::Serve(a) => &a.config,
            Command::Check(a) => &a.config,
            Command::HostKey(a) => &a.config,
            Command::SshConfig(a) => &a.config,
            Command::Sessions(a) => &a.config,
            Command::UserCa(a) => &a.config,
            Command::Seed
            | Command::Tunnel(_)
            | Command::Crd
            | Command::Version
            | Command::Completion(_) => return Ok(Config::default()),
        };
        Config::load(arg.config.as_deref())
    }
}

/// Runs `command` with its loaded configuration.
pub fn run(command: Command, config: Config) -> Result<(), Error> {
    match command {
        Command::Serve(args) => serve::run(args, config),
        Command::Check(args) => check::run(&args, &config),
        Command::HostKey(args) => host_key::run(&args, &config),
        Command::Seed => seed::run(),
        Command::Crd => crd::run(),
        Command::SshConfig(args) => ssh_config::run(&args, &config),
        Command::Tunnel(args) => tunnel::run(args),
        Command::Version => version::run(),
        Command::Completion(args) => completion::run(&args),
        Command::Sessions(args) => sessions::run(&args, &config),
        Command::UserCa(args) => user_ca::run(&args, &config),
    }
}

/// The one wording of the closing line after a list of problems, for a
/// configuration that does not load (`main`) and for `check`.
pub fn problem_summary(n: usize) -> String {
    format!(
        "invalid configuration: {n} problem{}",
        if n == 1 { "" } else { "s" }
    )
}

/// Loads the seed, derives the host keys and loads the extra keys and host
/// certificates; any problem there is a configuration problem. Several are
/// one per line, each after the first with `switchboard: ` as `main` prints
/// the first ([`host_identity`] has them apart).
fn host_key(config: &Config, dev: bool) -> Result<(HostIdentity, SeedOrigin), Error> {
    host_identity(config, dev)
        .map_err(|problems| Error::Invalid(anyhow::anyhow!("{}", problems.join("\nswitchboard: "))))
}

/// [`host_key`], with every problem on its own.
fn host_identity(config: &Config, dev: bool) -> Result<(HostIdentity, SeedOrigin), Vec<String>> {
    // `{:#}`: the cause too ("…: Permission denied (os error 13)").
    let seed = load_seed(&config.server, dev)
        .map_err(|e| vec![format!("{:#}", anyhow::Error::from(e))])?;
    let identity = HostIdentity::load(&config.server, seed.expose())?;
    Ok((identity, seed.origin().clone()))
}

/// `SHA256:…`, as `ssh-keygen -l` and OpenSSH's prompts print it.
fn fingerprint(key: &PrivateKey) -> String {
    key.public_key().fingerprint(HashAlg::Sha256).to_string()
}

/// `ssh-ed25519 AAAA…` without a comment (the known_hosts form).
fn public_line(key: &PrivateKey) -> Result<String, Error> {
    public_key_line(key.public_key())
}

/// A public key's OpenSSH line without its comment.
fn public_key_line(key: &russh::keys::PublicKey) -> Result<String, Error> {
    let mut public = key.clone();
    public.set_comment("");
    let line = public
        .to_openssh()
        .map_err(|e| Error::Runtime(anyhow::anyhow!("encoding the host key: {e}")))?;
    Ok(line.trim_end().to_owned())
}
