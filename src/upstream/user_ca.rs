//! The gateway's user CA, for routes with `login = "certificate"`: at each
//! box login a fresh Ed25519 key and an OpenSSH user certificate for it,
//! valid for `upstream.certificate_validity`, principal the login user,
//! extensions the route's forwarding policy. Boxes trust the CA
//! (`TrustedUserCAKeys`), so no per-box private key exists anywhere.
//!
//! The CA key is read once at start from `upstream.user_ca_key_file` and
//! refused when every user may read it; it is never logged, and neither is
//! a minted private key (the certificate itself is public).

use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::RngCore;
use russh::keys::ssh_key::certificate::{Builder, CertType};
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::{Certificate, HashAlg, PrivateKey};
use zeroize::Zeroizing;

use crate::config::UpstreamConfig;
use crate::hostkey::unprotected_key_file;
use crate::routes::Forwarding;
use crate::routes::file::read_bounded;
use crate::routes::keys::decode_identity;

/// The setting named in every error.
const FIELD: &str = "upstream.user_ca_key_file";

/// How far a certificate's start is backdated, for boxes whose clock is
/// behind the gateway's.
const CLOCK_SKEW: Duration = Duration::from_secs(60);

/// The user CA's private key and the lifetime of what it signs.
pub struct UserCa {
    key: PrivateKey,
    validity: Duration,
}

/// Why the user CA cannot be used: refused at start.
#[derive(Debug, thiserror::Error)]
pub enum UserCaError {
    #[error("{FIELD}: cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error(
        "{FIELD}: {path} is readable by every user (mode {mode:04o}); run `chmod 600 {path}` \
         (Kubernetes Secret volume: defaultMode: 0440 with the pod's securityContext.fsGroup)"
    )]
    WorldReadable { path: String, mode: u32 },
    #[error("{FIELD}: {0}")]
    Key(String),
}

/// A login credential: the fresh key and its certificate.
pub struct Minted {
    pub key: Arc<PrivateKey>,
    pub cert: Certificate,
}

/// What a certificate is minted for.
/// The prefix of a minted certificate's route principal.
pub const ROUTE_PRINCIPAL_PREFIX: &str = "switchboard-route:";

pub struct MintFor<'a> {
    /// The login user on the box: the certificate's first principal.
    pub user: &'a str,
    /// The route: the second principal, `switchboard-route:<route>`, so a
    /// box's `AuthorizedPrincipalsFile` can name the routes that may log
    /// in as each user (README "Certificates towards boxes").
    pub route: &'a str,
    /// The certificate's key ID, shown in the box's sshd log.
    pub key_id: String,
    /// The route's switches, turned into the certificate's extensions.
    pub forwarding: Forwarding,
}

impl fmt::Debug for UserCa {
    // A private key: never print it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserCa")
            .field("key", &"<redacted>")
            .field("fingerprint", &self.fingerprint())
            .field("validity", &self.validity)
            .finish()
    }
}

impl UserCa {
    /// Reads `upstream.user_ca_key_file` when it is set. A key its group
    /// may read is warned about (`warn`), one every user may read refused.
    pub fn load(
        config: &UpstreamConfig,
        mut warn: impl FnMut(String),
    ) -> Result<Option<UserCa>, UserCaError> {
        let Some(path) = &config.user_ca_key_file else {
            return Ok(None);
        };
        let key = read_key(path, &mut warn)?;
        if key.algorithm().is_rsa() {
            warn(format!(
                "{FIELD}: {} is an RSA key; its signatures use the `rsa` crate, whose private-key \
                 operations are not constant-time (RUSTSEC-2023-0071): prefer an Ed25519 CA \
                 (ssh-keygen -t ed25519)",
                path.display()
            ));
        }
        let ca = UserCa {
            key,
            validity: config.certificate_validity,
        };
        // A key that cannot sign fails now, not at a user's login.
        let trial = MintFor {
            user: "switchboard-trial",
            route: "trial",
            key_id: String::new(),
            forwarding: Forwarding::default(),
        };
        if let Err(e) = ca.mint(trial) {
            return Err(UserCaError::Key(format!(
                "{}: cannot sign certificates with this key ({e})",
                path.display()
            )));
        }
        Ok(Some(ca))
    }

    /// The CA's public line (`ssh-ed25519 AAAA… comment`), for the boxes'
    /// `TrustedUserCAKeys` file.
    pub fn public_line(&self) -> Result<String, UserCaError> {
        let mut public = self.key.public_key().clone();
        if public.comment().is_empty() {
            public.set_comment("switchboard-user-ca");
        }
        public
            .to_openssh()
            .map(|l| l.trim_end().to_owned())
            .map_err(|e| UserCaError::Key(format!("encoding the public key: {e}")))
    }

    /// `SHA256:…` of the CA's public key.
    pub fn fingerprint(&self) -> String {
        self.key
            .public_key()
            .fingerprint(HashAlg::Sha256)
            .to_string()
    }

    /// A fresh key and a certificate for it, valid from a minute ago (clock
    /// skew) for `certificate_validity`, with a random serial.
    pub fn mint(&self, what: MintFor<'_>) -> Result<Minted, russh::keys::ssh_key::Error> {
        let mut seed = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(seed.as_mut());
        let key = PrivateKey::from(Ed25519Keypair::from_seed(&seed));
        let mut nonce = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let after = now.saturating_sub(CLOCK_SKEW).as_secs();
        let before = (now + self.validity).as_secs();
        let mut builder = Builder::new(
            nonce.to_vec(),
            key.public_key().key_data().clone(),
            after,
            before,
        )?;
        builder
            .serial(rand::rngs::OsRng.next_u64())?
            .cert_type(CertType::User)?
            .key_id(what.key_id)?
            .valid_principal(what.user)?
            .valid_principal(format!("{ROUTE_PRINCIPAL_PREFIX}{}", what.route))?;
        for name in extensions(what.forwarding) {
            builder.extension(name, "")?;
        }
        let cert = builder.sign(&self.key)?;
        Ok(Minted {
            key: Arc::new(key),
            cert,
        })
    }
}

/// The certificate extensions for a route's forwarding switches:
/// `permit-pty` always; `permit-user-rc` always (the box user's own
/// `~/.ssh/rc`, as with a key login); port forwarding when `-L` or `-R` is
/// allowed; agent forwarding when `ssh -A` into the box is. No X11: the
/// gateway does not relay it.
pub fn extensions(forwarding: Forwarding) -> Vec<&'static str> {
    let mut names = vec!["permit-pty", "permit-user-rc"];
    if forwarding.local || forwarding.remote {
        names.push("permit-port-forwarding");
    }
    if forwarding.agent {
        names.push("permit-agent-forwarding");
    }
    names
}

/// Reads and decodes the CA key; the text is wiped once decoded.
fn read_key(path: &Path, warn: &mut impl FnMut(String)) -> Result<PrivateKey, UserCaError> {
    let shown = path.display().to_string();
    let read_error = |e: std::io::Error| UserCaError::Read {
        path: shown.clone(),
        reason: e.to_string(),
    };
    let meta = std::fs::metadata(path).map_err(read_error)?;
    let mode = meta.mode() & 0o777;
    if mode & 0o007 != 0 {
        return Err(UserCaError::WorldReadable { path: shown, mode });
    }
    if let Some(warning) = unprotected_key_file(path, FIELD) {
        warn(warning);
    }
    let bytes = Zeroizing::new(read_bounded(path).map_err(read_error)?);
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| UserCaError::Key(format!("{shown} is not a private key file")))?;
    decode_identity(text, &shown).map_err(UserCaError::Key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca() -> UserCa {
        UserCa {
            key: PrivateKey::from(Ed25519Keypair::from_seed(&[7; 32])),
            validity: Duration::from_secs(300),
        }
    }

    #[test]
    fn minted_certificates_name_the_user_and_follow_the_route() {
        let ca = ca();
        let closed = Forwarding {
            local: false,
            remote: false,
            agent: false,
        };
        let minted = ca
            .mint(MintFor {
                user: "devbox",
                route: "a",
                key_id: "switchboard route=a".into(),
                forwarding: closed,
            })
            .expect("mints");
        let cert = &minted.cert;
        assert_eq!(cert.cert_type(), CertType::User);
        assert_eq!(cert.valid_principals(), ["devbox", "switchboard-route:a"]);
        assert_eq!(cert.key_id(), "switchboard route=a");
        assert_eq!(cert.public_key(), minted.key.public_key().key_data());
        let names: Vec<&str> = cert.extensions().keys().map(String::as_str).collect();
        assert_eq!(names, ["permit-pty", "permit-user-rc"]);
        assert_eq!(cert.valid_before() - cert.valid_after(), 360);
        let ca_fp = ca.key.public_key().fingerprint(HashAlg::Sha256);
        cert.validate([&ca_fp])
            .expect("valid now, signed by the CA");
        let open = ca
            .mint(MintFor {
                user: "root",
                route: "r",
                key_id: String::new(),
                forwarding: Forwarding::default(),
            })
            .expect("mints");
        assert!(
            open.cert
                .extensions()
                .contains_key("permit-port-forwarding")
        );
        assert!(
            open.cert
                .extensions()
                .contains_key("permit-agent-forwarding")
        );
        assert_ne!(open.cert.serial(), cert.serial());
        assert_ne!(open.key.public_key(), minted.key.public_key());
    }

    #[test]
    fn debug_hides_the_key() {
        let shown = format!("{:?}", ca());
        assert!(
            shown.contains("<redacted>") && shown.contains("SHA256:"),
            "{shown}"
        );
    }
}
