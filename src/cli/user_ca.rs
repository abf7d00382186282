//! `switchboard user-ca`: the public line of the gateway's user CA
//! (`upstream.user_ca_key_file`), for the boxes' `TrustedUserCAKeys` file:
//! `switchboard user-ca > /etc/ssh/switchboard_user_ca.pub` on a box.

use anyhow::anyhow;

use super::{ConfigArg, Error};
use crate::config::Config;
use crate::upstream::UserCa;

/// `user-ca` flags.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub config: ConfigArg,
}

/// Prints the CA's public line on stdout (warnings on stderr).
pub fn run(args: &Args, config: &Config) -> Result<(), Error> {
    let origin = args.config.origin();
    let ca = UserCa::load(&config.upstream, |w| eprintln!("warning: {w}"))
        .map_err(|e| Error::Invalid(anyhow!("{origin}: {e}")))?
        .ok_or_else(|| {
            Error::Invalid(anyhow!(
                "{origin}: upstream.user_ca_key_file is not set: create a CA with \
                 `ssh-keygen -t ed25519 -N '' -C switchboard-user-ca -f user_ca` and name it there"
            ))
        })?;
    let line = ca
        .public_line()
        .map_err(|e| Error::Runtime(anyhow!("{e}")))?;
    println!("{line}");
    Ok(())
}
