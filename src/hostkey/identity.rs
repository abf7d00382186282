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

/// Smaller RSA host keys are refused (NIST SP 800-131A; OpenSSH refuses
/// under 1024 bits).
const MIN_RSA_BITS: u32 = 2048;

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
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
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
        if let Some(rsa) = key.key_data().rsa()
            && rsa.key_size() < MIN_RSA_BITS
        {
            return Err(format!(
                "{shown} is a {}-bit RSA key; use at least {MIN_RSA_BITS} bits \
                 (ssh-keygen -t rsa -b 3072)",
                rsa.key_size()
            ));
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

    /// Reads one certificate ([`read_certificate`]) for one of the host
    /// keys, and the only one for that key.
    fn certificate(&mut self, path: &Path, now: SystemTime) -> Result<HostCertificate, String> {
        let shown = path.display();
        let now_secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let certificate = read_certificate(path, now_secs)?;
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

/// Reads `path` as a host certificate whose CA signature verifies and that
/// is valid at `now` (Unix seconds).
fn read_certificate(path: &Path, now: u64) -> Result<Certificate, String> {
    let shown = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let certificate = Certificate::from_openssh(text.trim()).map_err(|_| {
        format!(
            "{shown} is not an OpenSSH certificate (a `…-cert-v01@openssh.com` line, \
             as `ssh-keygen -s CA -h …` writes it)"
        )
    })?;
    if now < certificate.valid_after() {
        return Err(format!(
            "{shown} is not valid before {}",
            timestamp(certificate.valid_after())
        ));
    }
    if now >= certificate.valid_before() {
        return Err(format!(
            "{shown} expired at {}; issue a new one",
            timestamp(certificate.valid_before())
        ));
    }
    // Within its validity now, so this checks the CA's signature.
    let ca = certificate.signature_key().fingerprint(HashAlg::Sha256);
    if certificate.validate_at(now, [&ca]).is_err() {
        return Err(format!("{shown}: its signature by CA {ca} does not verify"));
    }
    if certificate.cert_type() != CertType::Host {
        return Err(format!(
            "{shown} is a user certificate; a host certificate is signed with \
             `ssh-keygen -s CA -h`"
        ));
    }
    Ok(certificate)
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

/// The first second after 9999-12-31: later times are shown as "forever"
/// (RFC 3339 has four-digit years; `ssh-keygen -V +…w` can go beyond).
const YEAR_10000: u64 = 253_402_300_800;

/// A certificate time as RFC 3339 in UTC, or "forever" for OpenSSH's
/// "forever" (the largest value) and anything past the year 9999.
pub fn timestamp(secs: u64) -> String {
    if secs >= YEAR_10000 {
        return "forever".into();
    }
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs)).to_string()
}

#[cfg(test)]
mod tests {
    use russh::keys::ssh_key::certificate::Builder;
    use russh::keys::ssh_key::private::Ed25519Keypair;

    use super::*;
    use crate::config::HostKeyDerivation;

    const SEED: &[u8] = b"0123456789abcdef0123456789abcdef";
    /// 2026-01-01T00:00:00Z.
    const NOW: u64 = 1_767_225_600;
    const DAY: u64 = 24 * 3600;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn ca() -> PrivateKey {
        PrivateKey::from(Ed25519Keypair::from_seed(&[7; 32]))
    }

    /// A certificate of `subject`, signed by [`ca`], written to `dir/name`.
    fn cert_file(
        dir: &Path,
        name: &str,
        subject: &PublicKey,
        kind: CertType,
        valid: (u64, u64),
    ) -> PathBuf {
        let mut b =
            Builder::new([1u8; 32], subject.key_data().clone(), valid.0, valid.1).expect("builder");
        b.cert_type(kind).expect("type");
        b.key_id(name).expect("key id");
        b.valid_principal("gw.example.com").expect("principal");
        let cert = b.sign(&ca()).expect("signs");
        let path = dir.join(name);
        std::fs::write(&path, cert.to_openssh().expect("encodes")).expect("write");
        path
    }

    fn server(certs: Vec<PathBuf>) -> ServerConfig {
        ServerConfig {
            host_certificates: certs,
            ..ServerConfig::default()
        }
    }

    #[test]
    fn derived_keys_come_first_and_ecdsa_ignores_the_sshgate_setting() {
        let hkdf = HostIdentity::load(&server(Vec::new()), SEED).expect("loads");
        let algorithms: Vec<String> = hkdf
            .keys
            .iter()
            .map(|k| k.key.algorithm().to_string())
            .collect();
        assert_eq!(algorithms, ["ssh-ed25519", "ecdsa-sha2-nistp256"]);
        let sshgate = HostIdentity::load(
            &ServerConfig {
                host_key_derivation: HostKeyDerivation::Sshgate,
                ..ServerConfig::default()
            },
            SEED,
        )
        .expect("loads");
        assert_ne!(hkdf.primary().public_key(), sshgate.primary().public_key());
        // sshgate had no ECDSA key: ours is the HKDF one either way.
        assert_eq!(
            hkdf.keys[1].key.public_key(),
            sshgate.keys[1].key.public_key()
        );
    }

    #[test]
    fn a_host_certificate_for_a_derived_key_is_kept_and_checked_for_dates() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ecdsa = super::super::derive_ecdsa(SEED).public_key().clone();
        let good = cert_file(
            dir.path(),
            "good",
            &ecdsa,
            CertType::Host,
            (NOW - DAY, NOW + 90 * DAY),
        );
        let identity =
            HostIdentity::load_at(&server(vec![good.clone()]), SEED, at(NOW)).expect("accepted");
        assert_eq!(identity.certificates.len(), 1);
        assert!(identity.warnings.is_empty(), "{:?}", identity.warnings);
        // Within a week of its end: kept, warned about.
        let soon = HostIdentity::load_at(&server(vec![good.clone()]), SEED, at(NOW + 85 * DAY))
            .expect("accepted");
        assert!(
            soon.warnings[0].contains("expires at 2026-04-01T00:00:00Z"),
            "{:?}",
            soon.warnings
        );
        let err = HostIdentity::load_at(&server(vec![good.clone()]), SEED, at(NOW + 90 * DAY))
            .err()
            .expect("expired");
        assert!(
            err[0].contains("expired at 2026-04-01T00:00:00Z"),
            "{err:?}"
        );
        let err = HostIdentity::load_at(&server(vec![good.clone()]), SEED, at(NOW - 2 * DAY))
            .err()
            .expect("not yet valid");
        assert!(err[0].contains("is not valid before 2025-12-31"), "{err:?}");
        // The same key twice.
        let again = cert_file(dir.path(), "again", &ecdsa, CertType::Host, (0, u64::MAX));
        let err = HostIdentity::load_at(&server(vec![good, again]), SEED, at(NOW))
            .err()
            .expect("two for one key");
        assert!(err[0].contains("both certify"), "{err:?}");
    }

    #[test]
    fn user_certificates_and_certificates_of_other_keys_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ed = super::super::derive(SEED).public_key().clone();
        let user = cert_file(dir.path(), "user", &ed, CertType::User, (0, u64::MAX));
        let stranger = PrivateKey::from(Ed25519Keypair::from_seed(&[9; 32]));
        let other = cert_file(
            dir.path(),
            "other",
            stranger.public_key(),
            CertType::Host,
            (0, u64::MAX),
        );
        let not_a_cert = dir.path().join("not-a-cert");
        std::fs::write(&not_a_cert, ed.to_openssh().expect("encodes")).expect("write");
        let err = HostIdentity::load_at(&server(vec![user, other, not_a_cert]), SEED, at(NOW))
            .err()
            .expect("refused");
        assert_eq!(err.len(), 3, "{err:?}");
        assert!(err[0].contains("is a user certificate"), "{err:?}");
        assert!(
            err[1].contains("none of the gateway's host keys"),
            "{err:?}"
        );
        assert!(err[2].contains("is not an OpenSSH certificate"), "{err:?}");
        assert!(
            err.iter()
                .all(|e| e.starts_with("server.host_certificates: "))
        );
    }

    #[test]
    fn timestamps_read_like_ssh_keygen() {
        assert_eq!(timestamp(NOW), "2026-01-01T00:00:00Z");
        assert_eq!(timestamp(u64::MAX), "forever");
        assert_eq!(timestamp(YEAR_10000 - 1), "9999-12-31T23:59:59Z");
        assert_eq!(timestamp(YEAR_10000), "forever");
    }
}
