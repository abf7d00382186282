//! `switchboard host-key`: the gateway's public host key as an OpenSSH line,
//! its `SHA256:` fingerprint, and ready `known_hosts` lines per listen address.

use super::{ConfigArg, Error, fingerprint, host_key, public_line};
use crate::config::Config;

/// Shown for a wildcard listen address when `--host` is not given.
const PLACEHOLDER_HOST: &str = "gateway.example.com";

/// `host-key` flags.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Use the built-in development seed when none is configured (insecure).
    #[arg(long)]
    pub dev: bool,
    /// The name users connect to, for the known_hosts lines [default: the
    /// listen IP, or a placeholder for 0.0.0.0 / [::]].
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
}

/// Prints the key, the fingerprint and the known_hosts lines on stdout.
pub fn run(args: &Args, config: &Config) -> Result<(), Error> {
    let (key, origin) = host_key(config, args.dev)?;
    let line = public_line(&key)?;
    println!("# host key (seed: {origin})");
    println!("{line}");
    println!("# fingerprint");
    println!("{}", fingerprint(&key));
    println!("# known_hosts (append to ~/.ssh/known_hosts)");
    let mut printed = Vec::new();
    for addr in &config.server.listen {
        if addr.port() == 0 {
            println!("# {addr}: the port is chosen at start; no fixed known_hosts line");
            continue;
        }
        let (host, placeholder) = match (&args.host, addr.ip().is_unspecified()) {
            (Some(host), _) => (host.clone(), false),
            (None, true) => (PLACEHOLDER_HOST.to_owned(), true),
            (None, false) => (addr.ip().to_string(), false),
        };
        let entry = known_hosts_host(&host, addr.port());
        if printed.contains(&entry) {
            continue;
        }
        if placeholder {
            println!(
                "# {addr} listens on every address: replace {PLACEHOLDER_HOST} with the name \
                 users connect to, or pass --host"
            );
        }
        println!("{entry} {line}");
        printed.push(entry);
    }
    Ok(())
}

/// `host` for port 22, `[host]:port` otherwise (OpenSSH's known_hosts form).
fn known_hosts_host(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_owned()
    } else {
        format!("[{host}]:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_hosts_form() {
        assert_eq!(known_hosts_host("gw.example.com", 22), "gw.example.com");
        assert_eq!(known_hosts_host("127.0.0.1", 2233), "[127.0.0.1]:2233");
        assert_eq!(known_hosts_host("::1", 2233), "[::1]:2233");
    }
}
