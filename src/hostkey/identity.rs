//! Everything the gateway presents as its host identity: the keys derived
//! from the seed (Ed25519, ECDSA P-256), the keys of `server.extra_host_keys`
//! (an RSA key for clients that need `rsa-sha2-*`), and the OpenSSH host
//! certificates of `server.host_certificates`, each checked at start against
//! those keys so a certificate the gateway could not present is refused.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use russh::keys::ssh_key::certificate::CertType;
use russh::keys::{Algorithm, Certificate, HashAlg, PrivateKey, PublicKey};

use super::{derive_ecdsa, derive_with, unprotected_key_file};
use crate::config::ServerConfig;
use crate::routes::decode_identity;

/// A certificate that expires sooner than this after start is warned about.
pub const EXPIRY_WARNING: Duration = Duration::from_secs(7 * 24 * 3600);

/// Where a host key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// Derived from the host-key seed.
    Seed,
    /// A file of `server.extra_host_keys`.
    File(PathBuf),
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Seed => f.write_str("derived from the seed"),
            KeySource::File(p) => write!(f, "server.extra_host_keys {}", p.display()),
        }
    }
}

/// One host key and where it came from.
pub struct HostKey {
    pub key: PrivateKey,
    pub source: KeySource,
}

/// One host certificate and its file.
pub struct HostCertificate {
    pub certificate: Certificate,
    pub path: PathBuf,
}

/// The host keys (derived first: Ed25519, ECDSA P-256; then the extra keys
/// in their configured order) and certificates, all checked; and warnings
/// worth logging (open key files, certificates near expiry).
pub struct HostIdentity {
    pub keys: Vec<HostKey>,
    pub certificates: Vec<HostCertificate>,
    pub warnings: Vec<String>,
}

impl HostIdentity {
    /// Derives the seed's keys, loads and checks every extra key and
    /// certificate: every problem is reported, each naming the setting and
    /// the file (never a key's contents).
    pub fn load(server: &ServerConfig, seed: &[u8]) -> Result<HostIdentity, Vec<String>> {
        Self::load_at(server, seed, SystemTime::now())
    }

    /// [`HostIdentity::load`] as if it were `now` (certificate validity).
    pub fn load_at(
        server: &ServerConfig,
        seed: &[u8],
        now: SystemTime,
    ) -> Result<HostIdentity, Vec<String>> {
        let mut identity = HostIdentity {
            keys: vec![
                HostKey {
                    key: derive_with(server.host_key_derivation, seed),
                    source: KeySource::Seed,
                },
                HostKey {
                    key: derive_ecdsa(seed),
                    source: KeySource::Seed,
                },
            ],
            certificates: Vec::new(),
            warnings: Vec::new(),
        };
        let mut problems = Vec::new();
        for path in &server.extra_host_keys {
            match identity.extra_key(path) {
                Ok(key) => identity.keys.push(key),
                Err(e) => problems.push(format!("server.extra_host_keys: {e}")),
            }
        }
        for path in &server.host_certificates {
            match identity.certificate(path, now) {
                Ok(cert) => identity.certificates.push(cert),
                Err(e) => problems.push(format!("server.host_certificates: {e}")),
            }
        }
        if problems.is_empty() {
            Ok(identity)
        } else {
            Err(problems)
        }
    }

    /// The private keys, in order, for russh's `server::Config::keys`.
    pub fn private_keys(&self) -> Vec<PrivateKey> {
        self.keys.iter().map(|k| k.key.clone()).collect()
    }

    /// The certificates, in order, for russh's `server::Config::certificates`.
    pub fn certificates(&self) -> Vec<Certificate> {
        self.certificates
            .iter()
            .map(|c| c.certificate.clone())
            .collect()
    }

    /// The primary (Ed25519) key: what summaries and logs name first.
    pub fn primary(&self) -> &PrivateKey {
        &self.keys[0].key
    }

    /// Reads one extra key: an unencrypted private key of an algorithm no
    /// other host key has (russh signs with the first key of an algorithm,
    /// so a second one would never be presented).
    fn extra_key(&mut self, path: &Path) -> Result<HostKey, String> {
        let shown = path.display();
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
        let key = decode_identity(&text, &shown.to_string())?;
        let algorithm = key.algorithm();
        match &algorithm {
            Algorithm::Rsa { .. } | Algorithm::Ecdsa { .. } | Algorithm::Ed25519 => {}
            other => {
                return Err(format!(
                    "{shown} is a {other} key; host keys are RSA, ECDSA or Ed25519"
                ));
            }
        }
        if let Some(same) = self
            .keys
            .iter()
            .find(|k| same_family(&k.key.algorithm(), &algorithm))
        {
            return Err(format!(
                "{shown} is a {} key, and the gateway already has one ({}): a host \
                 presents one key per algorithm",
                family(&algorithm),
                same.source
            ));
        }
        if let Some(warning) = unprotected_key_file(path, "server.extra_host_keys") {
            self.warnings.push(warning);
        }
        Ok(HostKey {
            key,
            source: KeySource::File(path.to_path_buf()),
        })
    }

    /// Reads one certificate: a host certificate whose CA signature verifies,
    /// valid `now`, for one of the host keys, and the only one for that key.
    fn certificate(&mut self, path: &Path, now: SystemTime) -> Result<HostCertificate, String> {
        let shown = path.display();
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
        let certificate = Certificate::from_openssh(text.trim()).map_err(|_| {
            format!(
                "{shown} is not an OpenSSH certificate (a `…-cert-v01@openssh.com` line, \
                 as `ssh-keygen -s CA -h …` writes it)"
            )
        })?;
        let now_secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if now_secs < certificate.valid_after() {
            return Err(format!(
                "{shown} is not valid before {}",
                timestamp(certificate.valid_after())
            ));
        }
        if now_secs >= certificate.valid_before() {
            return Err(format!(
                "{shown} expired at {}; issue a new one",
                timestamp(certificate.valid_before())
            ));
        }
        // Within its validity now, so this checks the CA's signature.
        let ca = certificate.signature_key().fingerprint(HashAlg::Sha256);
        if certificate.validate_at(now_secs, [&ca]).is_err() {
            return Err(format!("{shown}: its signature by CA {ca} does not verify"));
        }
        if certificate.cert_type() != CertType::Host {
            return Err(format!(
                "{shown} is a user certificate; a host certificate is signed with \
                 `ssh-keygen -s CA -h`"
            ));
        }
        let certified = PublicKey::from(certificate.public_key().clone());
        let fp = certified.fingerprint(HashAlg::Sha256);
        if !self
            .keys
            .iter()
            .any(|k| k.key.public_key().key_data() == certificate.public_key())
        {
            return Err(format!(
                "{shown} certifies {fp} ({}), which is none of the gateway's host keys \
                 (`switchboard host-key` lists them); sign one of those",
                certified.algorithm()
            ));
        }
        if let Some(other) = self
            .certificates
            .iter()
            .find(|c| c.certificate.public_key() == certificate.public_key())
        {
            return Err(format!(
                "{shown} and {} both certify {fp}: a host key is presented with one \
                 certificate",
                other.path.display()
            ));
        }
        if certificate.valid_before() - now_secs < EXPIRY_WARNING.as_secs() {
            self.warnings.push(format!(
                "server.host_certificates: {shown} expires at {}; issue a new one and \
                 restart the gateway before then",
                timestamp(certificate.valid_before())
            ));
        }
        Ok(HostCertificate {
            certificate,
            path: path.to_path_buf(),
        })
    }
}

/// Whether two algorithms would compete for the same host-key algorithm
/// names (every RSA key serves every `rsa-sha2-*`; ECDSA per curve).
fn same_family(a: &Algorithm, b: &Algorithm) -> bool {
    match (a, b) {
        (Algorithm::Rsa { .. }, Algorithm::Rsa { .. }) => true,
        (a, b) => a == b,
    }
}

/// The name of an algorithm's family, for messages.
fn family(a: &Algorithm) -> String {
    match a {
        Algorithm::Rsa { .. } => "RSA".into(),
        other => other.to_string(),
    }
}

/// A certificate time as OpenSSH's `ssh-keygen -L` shows it (UTC), or
/// "forever" for the largest value.
pub fn timestamp(secs: u64) -> String {
    if secs == u64::MAX {
        return "forever".into();
    }
    let t = UNIX_EPOCH + Duration::from_secs(secs.min(i64::MAX as u64 / 2));
    humantime::format_rfc3339_seconds(t).to_string()
}
