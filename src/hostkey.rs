//! The gateway's Ed25519 host key, derived from a shared seed with HKDF-SHA256
//! (SPEC §8), so every replica presents the same key; and loading that seed.
//! `server.host_key_derivation = "sshgate"` derives it as Sealos sshgate does
//! instead ([`derive_sshgate`]), so a gateway replacing it keeps its key.
//! Beside it, an ECDSA P-256 key from the same seed ([`derive_ecdsa`], its own
//! HKDF label, also under `"sshgate"`), and everything else presented as the
//! host's identity: extra key files and host certificates ([`HostIdentity`]).
//!
//! The seed is the trimmed bytes of its file, variable or inline string, used
//! as-is (not hex-decoded). It never reaches a log or an error message. A seed
//! or identity key file that others may read is warned about
//! ([`unprotected_key_file`]).

use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use hkdf::Hkdf;
use rand::RngCore;
use russh::keys::PrivateKey;
use russh::keys::ssh_key::private::Ed25519Keypair;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::config::{HostKeyDerivation, ServerConfig};

mod ecdsa;
mod expiry;
mod identity;

pub use ecdsa::derive_ecdsa;
pub use expiry::watch_expiry;
pub use identity::{HostCertificate, HostIdentity, HostKey, KeySource, timestamp};

/// HKDF salt: names the product and the derivation scheme's version.
const SALT: &[u8] = b"switchboard/v1";

/// HKDF info: names the key's purpose, so one seed can derive other keys later.
const INFO: &[u8] = b"switchboard host key ed25519";

/// Shorter seeds are refused: 16 bytes is the least that resists guessing.
pub const MIN_SEED_LEN: usize = 16;

/// The seed `--dev` uses when none is configured. Public, so never secure.
const DEV_SEED: &[u8] = b"switchboard insecure development seed";

/// Where the seed came from (for summaries; never the seed itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeedOrigin {
    File(PathBuf),
    Env(String),
    /// `host_key_seed` in the configuration: development only.
    Inline,
    /// `--dev` with no seed configured: a fixed, public seed.
    Dev,
}

impl fmt::Display for SeedOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SeedOrigin::File(p) => write!(f, "file {}", p.display()),
            SeedOrigin::Env(var) => write!(f, "environment variable {var}"),
            SeedOrigin::Inline => f.write_str("inline server.host_key_seed (development only)"),
            SeedOrigin::Dev => f.write_str("built-in development seed (--dev, insecure)"),
        }
    }
}

/// Secret seed bytes: `Debug` prints `<redacted>`, memory is zeroed on drop.
pub struct Seed {
    bytes: Zeroizing<Vec<u8>>,
    origin: SeedOrigin,
}

impl Seed {
    /// The seed bytes; feed them to [`derive`] and nowhere else.
    pub fn expose(&self) -> &[u8] {
        &self.bytes
    }

    /// Where the seed came from.
    pub fn origin(&self) -> &SeedOrigin {
        &self.origin
    }
}

impl fmt::Debug for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Seed")
            .field("bytes", &"<redacted>")
            .field("origin", &self.origin)
            .finish()
    }
}

/// Why no seed could be loaded. Messages name the source, never the value.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error(
        "server.host_key_seed_file / host_key_seed_env: no host-key seed configured; \
         create one with `switchboard seed > FILE` and set host_key_seed_file \
         (or run with --dev for a throw-away setup)"
    )]
    NotConfigured,
    #[error("server: set only one of host_key_seed_file, host_key_seed_env, host_key_seed")]
    Ambiguous,
    #[error("server.host_key_seed_file: cannot read {}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("server.host_key_seed_env: environment variable {var} is not set")]
    EnvMissing { var: String },
    #[error(
        "the host-key seed from {origin} is shorter than {MIN_SEED_LEN} bytes; use `switchboard seed`"
    )]
    TooShort { origin: SeedOrigin },
}

/// Loads the seed named by `[server]`: exactly one of `host_key_seed_file`,
/// `host_key_seed_env`, `host_key_seed` (inline, warned about). With `dev` and
/// none configured, a fixed public seed is used, loudly.
pub fn load_seed(server: &ServerConfig, dev: bool) -> Result<Seed, SeedError> {
    let (raw, origin) = match (
        &server.host_key_seed_file,
        &server.host_key_seed_env,
        &server.host_key_seed,
    ) {
        (Some(path), None, None) => {
            let raw = std::fs::read(path).map_err(|source| SeedError::Read {
                path: path.clone(),
                source,
            })?;
            if let Some(warning) = unprotected_key_file(path, "server.host_key_seed_file") {
                tracing::warn!("{warning}");
            }
            (Zeroizing::new(raw), SeedOrigin::File(path.clone()))
        }
        (None, Some(var), None) => {
            let value =
                std::env::var_os(var).ok_or_else(|| SeedError::EnvMissing { var: var.clone() })?;
            (
                Zeroizing::new(value.into_encoded_bytes()),
                SeedOrigin::Env(var.clone()),
            )
        }
        (None, None, Some(inline)) => {
            tracing::warn!(
                "the host-key seed is inline in the configuration (server.host_key_seed): \
                 development only; use host_key_seed_file or host_key_seed_env"
            );
            (
                Zeroizing::new(inline.as_bytes().to_vec()),
                SeedOrigin::Inline,
            )
        }
        (None, None, None) if dev => {
            tracing::warn!(
                "--dev: no host-key seed configured, using the built-in PUBLIC development seed; \
                 anyone can impersonate this gateway"
            );
            (Zeroizing::new(DEV_SEED.to_vec()), SeedOrigin::Dev)
        }
        (None, None, None) => return Err(SeedError::NotConfigured),
        _ => return Err(SeedError::Ambiguous),
    };
    let bytes = Zeroizing::new(raw.trim_ascii().to_vec());
    if bytes.len() < MIN_SEED_LEN {
        return Err(SeedError::TooShort { origin });
    }
    Ok(Seed { bytes, origin })
}

/// The warning for a secret file (the seed, an identity key) whose group or
/// others have any access to it, which OpenSSH refuses in a private key
/// ("UNPROTECTED PRIVATE KEY FILE"); `None` when it is private enough or cannot
/// be examined (its read reports that). `field` names the setting. The warning
/// names the file and its mode, never its contents: a warning, not a refusal,
/// because Kubernetes mounts Secrets `0644` unless told otherwise.
pub fn unprotected_key_file(path: &Path, field: &str) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    let mode = meta.mode() & 0o777;
    if !too_open(mode, meta.uid(), rustix::process::geteuid().as_raw()) {
        return None;
    }
    let path = path.display();
    Some(format!(
        "{field}: UNPROTECTED KEY FILE {path}: mode {mode:04o} gives its group or others \
         access; run `chmod 600 {path}` (Kubernetes Secret volume: defaultMode: 0440 with the \
         pod's securityContext.fsGroup, or 0400 when the gateway runs as root)"
    ))
}

/// Whether a key file with permission bits `mode`, owned by `owner`, is too
/// open for a gateway running as `euid`: any group or other bit, except that a
/// root-owned file may be group-readable for a non-root gateway, which reads it
/// through its group (a Secret volume with `fsGroup` is `root:<fsGroup> 0440`);
/// PostgreSQL has the same rule for its TLS key.
fn too_open(mode: u32, owner: u32, euid: u32) -> bool {
    let forbidden = if owner == 0 && euid != 0 {
        0o037
    } else {
        0o077
    };
    mode & forbidden != 0
}

/// Derives the host key from `seed`: HKDF-SHA256 (salt [`SALT`], info
/// [`INFO`]) → 32 bytes → Ed25519. Same seed, same key, on every replica.
pub fn derive(seed: &[u8]) -> PrivateKey {
    let hkdf = Hkdf::<Sha256>::new(Some(SALT), seed);
    let mut okm = Zeroizing::new([0u8; 32]);
    // Infallible: HKDF-SHA256 can expand up to 255 * 32 bytes; we ask for 32.
    hkdf.expand(INFO, okm.as_mut())
        .expect("32 bytes is a valid HKDF-SHA256 length");
    let mut key = PrivateKey::from(Ed25519Keypair::from_seed(&okm));
    key.set_comment("switchboard");
    key
}

/// Derives the host key from `seed` as `derivation` says: [`derive`], or
/// [`derive_sshgate`] for a gateway replacing Sealos sshgate.
pub fn derive_with(derivation: HostKeyDerivation, seed: &[u8]) -> PrivateKey {
    match derivation {
        HostKeyDerivation::Hkdf => derive(seed),
        HostKeyDerivation::Sshgate => derive_sshgate(seed),
    }
}

/// Sealos sshgate's derivation (its `hostkey` package): the Ed25519 seed is
/// SHA-256 of the seed bytes. Weaker than [`derive`]: no salt, no purpose,
/// so the seed cannot safely derive any other key, and a seed reused
/// anywhere else that hashes it the same way yields this very key. Only for
/// migrating users' `known_hosts` unchanged.
pub fn derive_sshgate(seed: &[u8]) -> PrivateKey {
    let digest = Zeroizing::new(<[u8; 32]>::from(Sha256::digest(seed)));
    let mut key = PrivateKey::from(Ed25519Keypair::from_seed(&digest));
    key.set_comment("switchboard");
    key
}

/// A fresh random seed: 32 bytes from the OS, hex-encoded (64 characters).
pub fn generate_seed() -> String {
    let mut bytes = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(bytes.as_mut());
    hex::encode(bytes.as_ref())
}

#[cfg(test)]
mod tests {
    use russh::keys::HashAlg;

    use super::*;

    fn fingerprint(key: &PrivateKey) -> String {
        key.public_key().fingerprint(HashAlg::Sha256).to_string()
    }

    #[test]
    fn same_seed_same_key() {
        let a = derive(b"0123456789abcdef0123456789abcdef");
        let b = derive(b"0123456789abcdef0123456789abcdef");
        assert_eq!(a.public_key(), b.public_key());
    }

    #[test]
    fn different_seed_different_key() {
        let a = derive(b"0123456789abcdef0123456789abcdef");
        let b = derive(b"0123456789abcdef0123456789abcdeF");
        assert_ne!(a.public_key(), b.public_key());
    }

    #[test]
    fn known_fingerprint_is_stable() {
        // Changing SALT, INFO or the derivation changes every deployed host
        // key: every user's known_hosts breaks. This pins it (value checked
        // independently: RFC 5869 HKDF with Python's hmac, then Ed25519).
        let key = derive(b"0123456789abcdef0123456789abcdef");
        assert_eq!(
            fingerprint(&key),
            "SHA256:17trDVQNXLg7wH3mLQgj/Tcw4KSdd77TYLarVvHIED8"
        );
    }

    #[test]
    fn sshgate_derivation_matches_an_independent_computation() {
        // sshgate: ed25519.NewKeyFromSeed(sha256.Sum256([]byte(seed))).
        // Computed independently with Python's `cryptography`:
        // Ed25519PrivateKey.from_private_bytes(hashlib.sha256(seed).digest()).
        let key = derive_sshgate(b"sealos-devbox-migration-seed-2026");
        let mut public = key.public_key().clone();
        public.set_comment("");
        assert_eq!(
            public.to_openssh().expect("encodes"),
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBcJcklsaYMRBGYLuVYVI+OAGjq2Mw/ESMdHKYw3DAQW"
        );
        let key = derive_with(
            HostKeyDerivation::Sshgate,
            b"0123456789abcdef0123456789abcdef",
        );
        assert_eq!(
            fingerprint(&key),
            "SHA256:zMU9iFpQkJC5gEMCBsbsIrFeKHvjKEyE5R2UWvHweRc"
        );
        // The default stays HKDF, a different key for the same seed.
        let hkdf = derive_with(HostKeyDerivation::Hkdf, b"0123456789abcdef0123456789abcdef");
        assert_ne!(hkdf.public_key(), key.public_key());
    }

    #[test]
    fn generated_seeds_are_hex_and_distinct() {
        let (a, b) = (generate_seed(), generate_seed());
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    fn server() -> ServerConfig {
        ServerConfig::default()
    }

    #[test]
    fn seed_file_is_trimmed_and_redacted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("seed");
        std::fs::write(&path, "  0123456789abcdef0123456789abcdef\n").expect("write");
        let seed = load_seed(
            &ServerConfig {
                host_key_seed_file: Some(path),
                ..server()
            },
            false,
        )
        .expect("seed");
        assert_eq!(seed.expose(), b"0123456789abcdef0123456789abcdef");
        assert!(!format!("{seed:?}").contains("0123456789"));
        assert!(format!("{seed:?}").contains("<redacted>"));
    }

    #[test]
    fn short_seed_is_refused_without_echoing_it() {
        let config = ServerConfig {
            host_key_seed: Some("  shortsecret \n".into()),
            ..server()
        };
        let err = load_seed(&config, false).expect_err("too short");
        assert!(matches!(err, SeedError::TooShort { .. }));
        assert!(!err.to_string().contains("shortsecret"));
    }

    #[test]
    fn no_seed_is_refused_unless_dev() {
        assert!(matches!(
            load_seed(&server(), false),
            Err(SeedError::NotConfigured)
        ));
        let dev = load_seed(&server(), true).expect("dev seed");
        assert_eq!(dev.origin(), &SeedOrigin::Dev);
    }

    #[test]
    fn missing_file_and_variable_are_named() {
        let config = ServerConfig {
            host_key_seed_file: Some("/nonexistent/seed".into()),
            ..server()
        };
        let err = load_seed(&config, false)
            .expect_err("missing file")
            .to_string();
        assert!(err.contains("/nonexistent/seed"), "{err}");
        let var = "SWITCHBOARD_TEST_SEED_THAT_IS_NEVER_SET";
        let config = ServerConfig {
            host_key_seed_env: Some(var.into()),
            ..server()
        };
        let err = load_seed(&config, false)
            .expect_err("missing variable")
            .to_string();
        assert!(err.contains(var), "{err}");
    }

    #[test]
    fn open_key_files_are_warned_about_by_name_and_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("seed");
        std::fs::write(&path, "0123456789abcdef0123456789abcdef").expect("write");
        let chmod = |mode| {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod")
        };
        chmod(0o644);
        let warning = unprotected_key_file(&path, "identity_file").expect("0644 is too open");
        let shown = path.display().to_string();
        assert!(
            warning.starts_with("identity_file: UNPROTECTED KEY FILE "),
            "{warning}"
        );
        assert!(warning.contains(&shown), "{warning}");
        assert!(warning.contains("mode 0644"), "{warning}");
        assert!(warning.contains(&format!("chmod 600 {shown}")), "{warning}");
        assert!(warning.contains("defaultMode"), "{warning}");
        assert!(!warning.contains("0123456789"), "{warning}");
        for mode in [0o600, 0o400, 0o700] {
            chmod(mode);
            assert_eq!(unprotected_key_file(&path, "f"), None, "{mode:o}");
        }
        for mode in [0o640, 0o604, 0o620, 0o660, 0o601] {
            chmod(mode);
            // Tests may run as root, who owns the file: the strict rule applies either way.
            assert!(unprotected_key_file(&path, "f").is_some(), "{mode:o}");
        }
        assert_eq!(unprotected_key_file(&dir.path().join("missing"), "f"), None);
    }

    #[test]
    fn root_owned_key_files_may_be_group_readable_for_a_non_root_gateway() {
        // Own files: 0600 or stricter.
        assert!(!too_open(0o600, 1000, 1000));
        assert!(too_open(0o640, 1000, 1000));
        assert!(too_open(0o440, 0, 0));
        // Root's file read through the group (Secret volume with fsGroup).
        assert!(!too_open(0o440, 0, 65532));
        assert!(!too_open(0o640, 0, 65532));
        assert!(too_open(0o660, 0, 65532));
        assert!(too_open(0o644, 0, 65532));
        assert!(too_open(0o444, 0, 65532));
        // Someone else's file: the strict rule.
        assert!(too_open(0o440, 1000, 65532));
    }

    #[test]
    fn two_sources_are_ambiguous() {
        let config = ServerConfig {
            host_key_seed: Some("0123456789abcdef0123".into()),
            host_key_seed_env: Some("X".into()),
            ..server()
        };
        assert!(matches!(
            load_seed(&config, false),
            Err(SeedError::Ambiguous)
        ));
    }
}
