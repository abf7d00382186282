//! The gateway's own trust in OpenSSH user certificates (README "User
//! certificates"): the CAs of `server.trusted_user_ca_keys` (inline) and
//! `server.trusted_user_ca_keys_file` (OpenSSH `TrustedUserCAKeys` format),
//! and what `server.revoked_keys_file` revokes ([`revoked`]).
//!
//! Loaded once at start (every problem refuses the start, like bad
//! configuration), then carried in every [`super::RouteTable`] snapshot, so
//! one admission sees one consistent set of routes, CAs and revocations.
//! [`spawn_watcher`] re-reads both files when their content changes; a file
//! that no longer loads keeps the previous trust in service, logged.

pub mod revoked;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use russh::keys::PublicKey;
use russh::keys::ssh_key::public::KeyData;
use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;
use tracing::{error, info};

use super::RouteSources;
use super::file::keys::read_bounded;
use super::keys::parse_public_key;
use crate::config::ServerConfig;
pub use revoked::Revoked;

/// The user CAs the gateway trusts for every route, and the revocations.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct UserTrust {
    /// CA public keys (comments kept for logs).
    pub cas: Vec<PublicKey>,
    pub revoked: Revoked,
}

impl UserTrust {
    /// Reads the inline keys and both files; every problem names its field
    /// (and file line).
    pub fn load(server: &ServerConfig) -> Result<Self, Vec<String>> {
        let mut trust = Self::default();
        let mut problems = Vec::new();
        for (i, line) in server.trusted_user_ca_keys.iter().enumerate() {
            match parse_public_key(line) {
                Ok(key) => trust.cas.push(key),
                Err(e) => problems.push(format!("server.trusted_user_ca_keys[{i}]: {e}")),
            }
        }
        if let Some(path) = &server.trusted_user_ca_keys_file {
            match read(path) {
                Ok(text) => {
                    for (n, line) in text.lines().enumerate() {
                        let line = line.trim();
                        if line.is_empty() || line.starts_with('#') {
                            continue;
                        }
                        match parse_public_key(line) {
                            Ok(key) => trust.cas.push(key),
                            Err(e) => problems.push(format!(
                                "server.trusted_user_ca_keys_file: {}: line {}: {e}",
                                path.display(),
                                n + 1
                            )),
                        }
                    }
                }
                Err(e) => problems.push(format!("server.trusted_user_ca_keys_file: {e}")),
            }
        }
        if let Some(path) = &server.revoked_keys_file {
            match read(path).map(|text| Revoked::parse(&text)) {
                Ok(Ok(revoked)) => trust.revoked = revoked,
                Ok(Err(lines)) => problems.extend(
                    lines
                        .into_iter()
                        .map(|l| format!("server.revoked_keys_file: {}: {l}", path.display())),
                ),
                Err(e) => problems.push(format!("server.revoked_keys_file: {e}")),
            }
        }
        if problems.is_empty() {
            Ok(trust)
        } else {
            Err(problems)
        }
    }

    /// Whether `ca` is one of the gateway's CAs.
    pub fn is_ca(&self, ca: &KeyData) -> bool {
        self.cas.iter().any(|k| k.key_data() == ca)
    }
}

fn read(path: &Path) -> Result<String, String> {
    let bytes = read_bounded(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    String::from_utf8(bytes).map_err(|_| format!("{} is not UTF-8 text", path.display()))
}

/// Polls the trust files every `interval`; when their content changes,
/// reloads [`UserTrust`] and hands it to `sources` (a new table snapshot).
/// Nothing to watch (no file configured): `None`.
pub fn spawn_watcher(
    server: ServerConfig,
    sources: Arc<RouteSources>,
    interval: Duration,
) -> Option<JoinHandle<()>> {
    let files: Vec<_> = [
        server.trusted_user_ca_keys_file.clone(),
        server.revoked_keys_file.clone(),
    ]
    .into_iter()
    .flatten()
    .collect();
    if files.is_empty() {
        return None;
    }
    let fingerprint = move || {
        let mut hash = Sha256::new();
        for file in &files {
            match read_bounded(file) {
                Ok(bytes) => hash.update(Sha256::digest(&bytes)),
                Err(e) => hash.update(format!("error {:?}", e.kind()).as_bytes()),
            }
        }
        <[u8; 32]>::from(hash.finalize())
    };
    let mut last = fingerprint();
    Some(tokio::spawn(async move {
        loop {
            tokio::time::sleep(interval).await;
            let seen = fingerprint();
            if seen == last {
                continue;
            }
            last = seen;
            match UserTrust::load(&server) {
                Ok(trust) => {
                    info!(
                        cas = trust.cas.len(),
                        "user certificate trust reloaded (trusted_user_ca_keys_file, revoked_keys_file)"
                    );
                    sources.set_trust(Arc::new(trust));
                }
                Err(problems) => error!(
                    "user certificate trust not reloaded; keeping the previous one: {}",
                    problems.join("; ")
                ),
            }
        }
    }))
}

/// Whether `cert`'s CA signed it with SHA-1 RSA (`ssh-rsa`).
pub(crate) fn sha1_signed(cert: &russh::keys::ssh_key::Certificate) -> bool {
    matches!(
        cert.signature().algorithm(),
        russh::keys::Algorithm::Rsa { hash: None }
    )
}
