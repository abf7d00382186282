//! `switchboard check`: load and validate the configuration, the host-key seed
//! and every route once; print a summary, or every problem (exit 2).
//!
//! Configuration errors never get here: `main` prints them all and exits 2
//! before any subcommand runs.

use anyhow::anyhow;

use super::{ConfigArg, Error, fingerprint, host_identity};
use crate::config::Config;
use russh::keys::HashAlg;

use crate::hostkey::{SeedOrigin, timestamp, unprotected_key_file};
use crate::routes::{LoginMethod, NO_USER_CA, UserTrust, file};
use crate::server::admin::auth::AdminAuth;
use crate::upstream::UserCa;

/// `check` flags.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Check as `serve --dev` would run (a missing seed is then allowed).
    #[arg(long)]
    pub dev: bool,
}

/// Prints the summary on stdout and each problem on stderr.
pub fn run(args: &Args, config: &Config) -> Result<(), Error> {
    let mut problems = Vec::new();
    let mut warnings = config.warnings.clone();
    let listen: Vec<String> = config
        .server
        .listen
        .iter()
        .map(ToString::to_string)
        .collect();
    println!("config:   {}", args.config.describe());
    println!("listen:   {}", listen.join(", "));
    match host_identity(config, args.dev) {
        Ok((identity, origin)) => {
            println!(
                "host key: {} (seed: {origin})",
                fingerprint(identity.primary())
            );
            for k in identity.keys.iter().skip(1) {
                println!(
                    "          {} {} ({})",
                    fingerprint(&k.key),
                    k.key.algorithm(),
                    k.source
                );
            }
            for c in &identity.certificates {
                println!(
                    "host cert: {} from {}, valid until {}",
                    c.path.display(),
                    c.certificate.signature_key().fingerprint(HashAlg::Sha256),
                    timestamp(c.certificate.valid_before())
                );
            }
            warnings.extend(identity.warnings);
            match origin {
                SeedOrigin::Inline => warnings.push(
                    "server.host_key_seed: the seed is inline in the configuration; \
                     use host_key_seed_file or host_key_seed_env outside development"
                        .into(),
                ),
                SeedOrigin::Dev => warnings.push(
                    "--dev: the built-in development seed is public; anyone can impersonate this gateway".into(),
                ),
                SeedOrigin::File(path) => warnings.extend(unprotected_key_file(
                    &path,
                    "server.host_key_seed_file",
                )),
                SeedOrigin::Env(_) => {}
            }
        }
        Err(e) => problems.extend(
            e.iter()
                .map(|problem| format!("{}: {problem}", args.config.origin())),
        ),
    }
    let user_ca = match UserCa::load(&config.upstream, |w| warnings.push(w)) {
        Ok(Some(ca)) => {
            println!("user CA:  {} (certificate logins)", ca.fingerprint());
            true
        }
        Ok(None) => false,
        Err(e) => {
            problems.push(format!("{}: {e}", args.config.origin()));
            // Reported once: its routes are not also each a problem.
            true
        }
    };
    let path = &config.sources.file.path;
    let watch = if config.sources.file.watch {
        "reloaded on change"
    } else {
        "not watched"
    };
    match file::load(path) {
        Ok(load) => {
            println!(
                "routes:   {} from {} ({watch})",
                load.routes.len(),
                path.display()
            );
            if load.routes.is_empty()
                && load.errors.is_empty()
                && !config.sources.kubernetes.enabled
            {
                warnings.push(format!(
                    "{}: no routes: nobody can log in yet",
                    path.display()
                ));
            }
            problems.extend(load.errors.iter().map(ToString::to_string));
            if !user_ca {
                problems.extend(
                    load.routes
                        .iter()
                        .filter(|r| r.login == LoginMethod::Certificate)
                        .map(|r| format!("{}: route \"{}\": {NO_USER_CA}", path.display(), r.name)),
                );
            }
            warnings.extend(unused_principals(config, &load.routes));
        }
        Err(e) => problems.push(e.to_string()),
    }
    if config.sources.kubernetes.enabled {
        check_kubernetes(config, user_ca, &mut problems, &mut warnings);
    }
    check_user_trust(config, &mut problems);
    check_admin(config, &mut problems, &mut warnings);
    for w in &warnings {
        println!("warning:  {w}");
    }
    if problems.is_empty() {
        println!("ok");
        return Ok(());
    }
    for p in &problems {
        eprintln!("error: {p}");
    }
    Err(Error::Invalid(anyhow!(
        "{}",
        super::problem_summary(problems.len())
    )))
}

/// Routes whose `principals` no CA can use: no gateway CA is configured and
/// every `cert-authority` line of the route lists its own `principals="…"`.
fn unused_principals(config: &Config, routes: &[crate::routes::Route]) -> Vec<String> {
    let s = &config.server;
    if !s.trusted_user_ca_keys.is_empty() || s.trusted_user_ca_keys_file.is_some() {
        return Vec::new();
    }
    routes
        .iter()
        .filter(|r| {
            let certs = &r.user_certs;
            !certs.principals.is_empty() && certs.authorities.iter().all(|a| a.principals.is_some())
        })
        .map(|r| {
            format!(
                "route {:?}: principals has no effect: no server.trusted_user_ca_keys \
                 and no cert-authority line without principals=\"…\"",
                r.name
            )
        })
        .collect()
}

/// The user-certificate CAs and revocations, as `serve` loads them (only
/// printed when any is configured).
fn check_user_trust(config: &Config, problems: &mut Vec<String>) {
    let s = &config.server;
    if s.trusted_user_ca_keys.is_empty()
        && s.trusted_user_ca_keys_file.is_none()
        && s.revoked_keys_file.is_none()
    {
        return;
    }
    match UserTrust::load(s) {
        Ok(trust) => println!(
            "user CAs: {} trusted{}",
            trust.cas.len(),
            if trust.revoked.is_empty() {
                ""
            } else {
                ", revocations loaded"
            }
        ),
        Err(e) => problems.extend(e),
    }
}

/// The admin endpoint and who may use its sessions API; an unreadable or
/// empty token file is a problem (as it stops `serve`), an open one a warning.
fn check_admin(config: &Config, problems: &mut Vec<String>, warnings: &mut Vec<String>) {
    let a = &config.admin;
    let read = match &a.read_token_file {
        Some(_) => "with the read token",
        None => "from loopback",
    };
    let write = match &a.write_token_file {
        Some(_) => "with the write token",
        None => "disabled",
    };
    println!(
        "admin:    http://{} (sessions: listed {read}, ended {write})",
        a.listen
    );
    if let Err(e) = AdminAuth::load(a) {
        problems.push(e.to_string());
    }
    for (path, field) in [
        (&a.read_token_file, "admin.read_token_file"),
        (&a.write_token_file, "admin.write_token_file"),
    ] {
        warnings.extend(path.as_deref().and_then(|p| unprotected_key_file(p, field)));
    }
}

/// How long `check` waits for the Kubernetes API to list everything once.
#[cfg(feature = "kubernetes")]
const KUBERNETES_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// Lists the cluster once, as `serve` would; an unreachable API is a problem,
/// objects that are skipped or degraded are warnings (they are the cluster's
/// state, not this configuration's).
#[cfg(feature = "kubernetes")]
fn check_kubernetes(
    config: &Config,
    user_ca: bool,
    problems: &mut Vec<String>,
    warnings: &mut Vec<String>,
) {
    let k = &config.sources.kubernetes;
    match crate::routes::kube::check(k, KUBERNETES_TIMEOUT, user_ca) {
        Ok(report) => {
            let namespaces = if k.namespaces.is_empty() {
                "all namespaces".to_owned()
            } else {
                k.namespaces.join(", ")
            };
            println!(
                "routes:   {} from Kubernetes at {} ({:?} mode, {namespaces})",
                report.routes, report.api, k.mode
            );
            warnings.extend(
                report
                    .problems
                    .into_iter()
                    .map(|p| format!("sources.kubernetes: {p}")),
            );
        }
        Err(e) => problems.push(format!("sources.kubernetes: {e}")),
    }
}

/// Validation already refused `enabled = true` in a build without the feature.
#[cfg(not(feature = "kubernetes"))]
fn check_kubernetes(_: &Config, _: bool, _: &mut Vec<String>, _: &mut Vec<String>) {}
