//! `switchboard host-key`: the gateway's public host keys (Ed25519 and ECDSA
//! derived from the seed, and `server.extra_host_keys`) as OpenSSH lines,
//! their `SHA256:` fingerprints, its host certificates, and ready
//! `known_hosts` lines (every key, and `@cert-authority` for the
//! certificates' CA when there are certificates) for the address users dial (`--host gw.example.com:22` when a Service or load balancer on
//! port 22 stands in front of a gateway listening on 2233).

use std::path::{Path, PathBuf};

use anyhow::anyhow;
use russh::keys::{Algorithm, EcdsaCurve, HashAlg, PublicKey};

use super::{ConfigArg, Error, fingerprint, host_key, host_port};
use crate::config::Config;
use crate::hostkey::{HostIdentity, SeedOrigin, timestamp};

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
    /// Also write each public key to DIR/ssh_host_<type>_key.pub (as sshd
    /// names them), ready for `ssh-keygen -s CA -h … DIR/ssh_host_ed25519_key.pub`.
    #[arg(long, value_name = "DIR")]
    pub write_pub: Option<PathBuf>,
}

/// One name users dial, and the port when they said it.
struct Dialed {
    host: String,
    port: Option<u16>,
}

/// Prints the keys, their fingerprints, the certificates and the
/// known_hosts lines on stdout.
pub fn run(args: &Args, config: &Config) -> Result<(), Error> {
    let dialed = args
        .host
        .iter()
        .map(|h| parse_host(h))
        .collect::<Result<Vec<_>, _>>()?;
    let (identity, origin) = host_key(config, args.dev)?;
    let lines = identity
        .keys
        .iter()
        .map(|k| super::public_line(&k.key))
        .collect::<Result<Vec<_>, _>>()?;
    let cas = certificate_authorities(&identity)?;
    if let Some(dir) = &args.write_pub {
        write_public_keys(dir, &identity, &lines)?;
    }
    if !args.known_hosts {
        print_keys(&identity, &origin, &lines)?;
    }
    // Notes go to stderr with --known-hosts, so stdout stays a known_hosts file.
    let note = |text: String| {
        if args.known_hosts {
            eprintln!("{text}");
        } else {
            println!("{text}");
        }
    };
    let entries = known_hosts_entries(&dialed, config, &note);
    for entry in &entries {
        for line in &lines {
            println!("{entry} {line}");
        }
    }
    if !cas.is_empty() && !entries.is_empty() {
        note("# or trust the certificates' CA instead of the keys (survives key rotation)".into());
        for entry in &entries {
            for ca in &cas {
                println!("@cert-authority {entry} {ca}");
            }
        }
    }
    Ok(())
}

/// The keys, their fingerprints and the certificates, before the
/// known_hosts lines (without `--known-hosts`).
fn print_keys(identity: &HostIdentity, origin: &SeedOrigin, lines: &[String]) -> Result<(), Error> {
    println!("# host keys (seed: {origin}), one per algorithm");
    for line in lines {
        println!("{line}");
    }
    println!("# fingerprints");
    for k in &identity.keys {
        println!(
            "{} {} ({})",
            fingerprint(&k.key),
            k.key.algorithm(),
            k.source
        );
    }
    print_certificates(identity)?;
    println!("# known_hosts (append to ~/.ssh/known_hosts)");
    Ok(())
}

/// The known_hosts host field of each name users dial (`--host`, else
/// each listen address), without repeats; `note` says what is left out.
fn known_hosts_entries(dialed: &[Dialed], config: &Config, note: &dyn Fn(String)) -> Vec<String> {
    let mut entries = Vec::new();
    let mut add = |entry: String| {
        if !entries.contains(&entry) {
            entries.push(entry);
        }
    };
    for (host, port) in dialed.iter().filter_map(|d| Some((&d.host, d.port?))) {
        add(known_hosts_host(host, port));
    }
    let by_listen_port: Vec<&Dialed> = dialed.iter().filter(|d| d.port.is_none()).collect();
    if !dialed.is_empty() && by_listen_port.is_empty() {
        return entries;
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
                add(known_hosts_host(&d.host, addr.port()));
            }
        } else if addr.ip().is_unspecified() {
            note(format!(
                "# {addr} listens on every address: replace {PLACEHOLDER_HOST} with the name \
                 users dial, or pass --host HOST[:PORT]"
            ));
            add(known_hosts_host(PLACEHOLDER_HOST, addr.port()));
        } else {
            add(known_hosts_host(&addr.ip().to_string(), addr.port()));
        }
    }
    entries
}

/// The host certificates, each line with its key ID, principals, validity
/// and CA as comments.
fn print_certificates(identity: &HostIdentity) -> Result<(), Error> {
    if identity.certificates.is_empty() {
        return Ok(());
    }
    println!("# host certificates (presented with their key)");
    for c in &identity.certificates {
        let mut cert = c.certificate.clone();
        cert.set_comment("");
        let line = cert
            .to_openssh()
            .map_err(|e| Error::Runtime(anyhow!("encoding a host certificate: {e}")))?;
        println!("{}", line.trim_end());
        println!(
            "#   {}: key ID {:?}, principals {}, valid {} to {}, CA {}",
            c.path.display(),
            cert.key_id(),
            cert.valid_principals().join(","),
            timestamp(cert.valid_after()),
            timestamp(cert.valid_before()),
            cert.signature_key().fingerprint(HashAlg::Sha256),
        );
    }
    Ok(())
}

/// Writes each key's public line to `dir/ssh_host_<type>_key.pub`; says
/// which on stderr (stdout may be a known_hosts file).
fn write_public_keys(dir: &Path, identity: &HostIdentity, lines: &[String]) -> Result<(), Error> {
    for (k, line) in identity.keys.iter().zip(lines) {
        let name = match k.key.algorithm() {
            Algorithm::Ed25519 => "ed25519".to_owned(),
            Algorithm::Ecdsa {
                curve: EcdsaCurve::NistP256,
            } => "ecdsa".to_owned(),
            Algorithm::Ecdsa { curve } => format!("ecdsa_{curve}"),
            Algorithm::Rsa { .. } => "rsa".to_owned(),
            other => other.as_str().replace(['@', '.', '-'], "_"),
        };
        let path = dir.join(format!("ssh_host_{name}_key.pub"));
        std::fs::write(&path, format!("{line}\n")).map_err(|e| {
            Error::Runtime(anyhow!("--write-pub: cannot write {}: {e}", path.display()))
        })?;
        eprintln!("# wrote {}", path.display());
    }
    Ok(())
}

/// The distinct CA public keys that signed the host certificates, as
/// OpenSSH lines (for `@cert-authority` known_hosts lines).
fn certificate_authorities(identity: &HostIdentity) -> Result<Vec<String>, Error> {
    let mut cas = Vec::new();
    for c in &identity.certificates {
        let ca = PublicKey::from(c.certificate.signature_key().clone());
        let line = super::public_key_line(&ca)?;
        if !cas.contains(&line) {
            cas.push(line);
        }
    }
    Ok(cas)
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
