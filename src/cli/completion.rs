//! `switchboard completion SHELL`: the shell completion script for every
//! subcommand and flag, generated from the same definitions clap parses with.
//!
//! ```sh
//! source <(switchboard completion bash)                     # bash, this shell
//! switchboard completion zsh > "${fpath[1]}/_switchboard"   # zsh
//! switchboard completion fish > ~/.config/fish/completions/switchboard.fish
//! ```

use clap::CommandFactory as _;
use clap_complete::Shell;

use super::{Cli, Error};

/// `completion` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Prints the script on stdout.
pub fn run(args: &Args) -> Result<(), Error> {
    let mut command = Cli::command();
    clap_complete::generate(
        args.shell,
        &mut command,
        "switchboard",
        &mut std::io::stdout(),
    );
    Ok(())
}
