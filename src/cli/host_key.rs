//! `switchboard host-key`: the gateway's public host key as an OpenSSH line,
//! its `SHA256:` fingerprint, and ready `known_hosts` lines for the address
//! users dial (`--host gw.example.com:22` when a Service or load balancer on
//! port 22 stands in front of a gateway listening on 2233).

use anyhow::anyhow;

use super::{ConfigArg, Error, fingerprint, host_key, host_port};
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
    /// The name users dial, for the known_hosts lines; repeat for several
    /// names. With :PORT, the port users dial (a Service on 22 in front of
    /// the container's 2233: --host gw.example.com:22); without, each listen
    /// port [default: the listen IP, or a placeholder for 0.0.0.0 / [::]].
    #[arg(long, value_name = "HOST[:PORT]")]
    pub host: Vec<String>,
    /// Print only the known_hosts lines, ready for `>> ~/.ssh/known_hosts`.
    #[arg(long)]
    pub known_hosts: bool,
}

/// One name users dial, and the port when they said it.
struct Dialed {
    host: String,
    port: Option<u16>,
}

/// Prints the key, the fingerprint and the known_hosts lines on stdout.
pub fn run(args: &Args, config: &Config) -> Result<(), Error> {
    let dialed = args
        .host
        .iter()
        .map(|h| parse_host(h))
        .collect::<Result<Vec<_>, _>>()?;
    let (key, origin) = host_key(config, args.dev)?;
    let line = super::public_line(&key)?;
    if !args.known_hosts {
        println!("# host key (seed: {origin})");
        println!("{line}");
        println!("# fingerprint");
        println!("{}", fingerprint(&key));
        println!("# known_hosts (append to ~/.ssh/known_hosts)");
    }
    // Notes go to stderr with --known-hosts, so stdout stays a known_hosts file.
    let note = |text: String| {
        if args.known_hosts {
            eprintln!("{text}");
        } else {
            println!("{text}");
        }
    };
    let mut printed = Vec::new();
    let mut emit = |entry: String| {
        if !printed.contains(&entry) {
            println!("{entry} {line}");
            printed.push(entry);
        }
    };
    for (host, port) in dialed.iter().filter_map(|d| Some((&d.host, d.port?))) {
        emit(known_hosts_host(host, port));
    }
    let by_listen_port: Vec<&Dialed> = dialed.iter().filter(|d| d.port.is_none()).collect();
    if !dialed.is_empty() && by_listen_port.is_empty() {
        return Ok(());
    }
    for addr in &config.server.listen {
        if addr.port() == 0 {
            note(format!(
                "# {addr}: the port is chosen at start; pass --host HOST:PORT for a known_hosts line"
            ));
            continue;
        }
        if !by_listen_port.is_empty() {
            for d in &by_listen_port {
                emit(known_hosts_host(&d.host, addr.port()));
            }
        } else if addr.ip().is_unspecified() {
            note(format!(
                "# {addr} listens on every address: replace {PLACEHOLDER_HOST} with the name \
                 users dial, or pass --host HOST[:PORT]"
            ));
            emit(known_hosts_host(PLACEHOLDER_HOST, addr.port()));
        } else {
            emit(known_hosts_host(&addr.ip().to_string(), addr.port()));
        }
    }
    Ok(())
}

/// `--host HOST[:PORT]`, refusing what would not be one known_hosts host
/// (patterns, lists, comments, spaces).
fn parse_host(text: &str) -> Result<Dialed, Error> {
    let bad = || {
        Error::Invalid(anyhow!(
            "--host `{text}`: expected HOST or HOST:PORT, e.g. gw.example.com or \
             gw.example.com:22 ([::1]:2233 for IPv6)"
        ))
    };
    let (host, port) = host_port::split(text).ok_or_else(bad)?;
    if host.chars().any(|c| ",*?!#[]|\"'".contains(c)) {
        return Err(bad());
    }
    Ok(Dialed {
        host: host.to_owned(),
        port,
    })
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

    #[test]
    fn host_flag_forms() {
        let d = parse_host("gw:22").expect("ok");
        assert_eq!((d.host.as_str(), d.port), ("gw", Some(22)));
        let d = parse_host("[::1]:2233").expect("ok");
        assert_eq!((d.host.as_str(), d.port), ("::1", Some(2233)));
        let d = parse_host("gw").expect("ok");
        assert_eq!((d.host.as_str(), d.port), ("gw", None));
        for bad in ["gw:22:33x", "a,b", "*.example.com", "gw:", "", "a b"] {
            assert!(parse_host(bad).is_err(), "{bad}");
        }
    }
}
