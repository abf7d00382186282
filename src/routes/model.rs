//! The route model: one route is one box the gateway can reach.
//!
//! Sources (the routes file, Kubernetes) produce `Route`s; the gateway only
//! reads them, through a [`super::RouteTable`] snapshot.

use std::fmt;
use std::sync::Arc;

use russh::keys::ssh_key::public::KeyData;
use russh::keys::{PrivateKey, PublicKey};
use serde::Deserialize;

/// One box behind the gateway.
///
/// Equality is field by field (derived), so a source can tell whether a
/// rebuild changed anything. Keys compare with their comments; the identity
/// compares with `ssh-key`'s own equality (constant-time on the private
/// half, and including the public half), never through its text.
#[derive(Clone, PartialEq)]
pub struct Route {
    /// Unique name; what users type as the target (`user@<name>@gw`).
    pub name: String,
    /// `host:port` of the box's sshd.
    pub address: String,
    /// Login user on the box; when set it overrides the SSH username.
    pub user: Option<String>,
    /// Client keys that may use this route (key mode, jump mode).
    pub authorized_keys: Vec<PublicKey>,
    /// Key the gateway logs in to the box with (key mode).
    pub identity: Option<Arc<PrivateKey>>,
    /// Pin of the box's host key; checked on every upstream connection.
    pub host_key: Option<PublicKey>,
    /// Whether the box is running.
    pub state: RouteState,
    /// Per-route forwarding switches, enforced at the gateway.
    pub forwarding: Forwarding,
    /// SHA-256 of the HTTP tunnel token for this route (SPEC §11,
    /// `auth = "token"`); the token itself is never stored. Sources read it
    /// with [`parse_token_sha256`].
    pub token_sha256: Option<[u8; 32]>,
    /// Sealos sshgate's behaviours, for its drop-in (`sealos-devbox`
    /// routes): in key mode the typed username is the login user (`user`
    /// only when it names none), and the sshgate jump form (`ssh -J
    /// x@nsid-box@gw anything`) reaches this box's sshd.
    pub sshgate_compat: bool,
    /// How the gateway starts this box when it is stopped and an authorized
    /// key connects (`None`: it is never woken).
    pub wake: Option<WakeTarget>,
    /// How key mode logs in to the box: the route's `identity`, or a
    /// certificate minted per login by the gateway's user CA.
    pub login: LoginMethod,
    /// Host CAs whose host certificates this box may present (replacing
    /// `[upstream] trusted_host_cas` for this route); empty: the global list
    /// applies, unless `host_key` pins the box.
    pub trusted_host_cas: Vec<PublicKey>,
    /// Who may use this route with an OpenSSH user certificate.
    pub user_certs: UserCerts,
}

/// How the gateway logs in to a box in key mode (`login` in a route).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LoginMethod {
    /// The route's identity key (`identity_file`, `identitySecretRef`).
    #[default]
    Key,
    /// A fresh key and a certificate valid for minutes, signed by the
    /// gateway's user CA (`upstream.user_ca_key_file`); the box trusts the
    /// CA (`TrustedUserCAKeys`), and no per-box key exists.
    Certificate,
}

impl LoginMethod {
    /// `key` or `certificate`, as routes write it.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "key" => Ok(LoginMethod::Key),
            "certificate" => Ok(LoginMethod::Certificate),
            other => Err(format!(
                "unknown login `{other}`, expected `key` or `certificate`"
            )),
        }
    }
}

/// Which OpenSSH user certificates a route accepts (README "User
/// certificates"): one whose principals include one of `principals` and
/// that is signed by a CA the gateway trusts (`trusted_user_ca_keys`), or
/// by one of the route's own `authorities` with a principal that CA's line
/// allows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UserCerts {
    /// `principals = [...]` (`spec.principals`).
    pub principals: Vec<String>,
    /// `cert-authority` lines of the route's `authorized_keys`.
    pub authorities: Vec<CertAuthority>,
}

/// A CA trusted for one route: an `authorized_keys` line
/// `cert-authority[,principals="a,b"] <CA public key>`.
#[derive(Clone, Debug, PartialEq)]
pub struct CertAuthority {
    pub key: PublicKey,
    /// `principals="…"`: the certificate principals this CA may use here;
    /// `None`: the route's [`UserCerts::principals`].
    pub principals: Option<Vec<String>>,
}

impl UserCerts {
    /// The principals a certificate signed by `ca` must name one of, or
    /// `None` when the route does not trust `ca` itself (only the gateway's
    /// CAs, through [`UserCerts::principals`], may then apply).
    pub fn authority_principals(&self, ca: &KeyData) -> Option<&[String]> {
        let authority = self.authorities.iter().find(|a| a.key.key_data() == ca)?;
        Some(authority.principals.as_deref().unwrap_or(&self.principals))
    }
}

/// What to ask the Kubernetes API to start a stopped box.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WakeTarget {
    /// Sealos: merge-patch the `Devbox` (`devbox.sealos.io/v1alpha2`)
    /// `spec.state` to `Running`.
    Devbox { namespace: String, name: String },
    /// Scale a workload to one replica through its `scale` subresource.
    Scale {
        namespace: String,
        kind: ScaleKind,
        name: String,
    },
}

/// The workloads a [`WakeTarget::Scale`] can scale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScaleKind {
    Deployment,
    StatefulSet,
}

/// Reads [`Route::token_sha256`] as every source writes it: 64 hex digits
/// (what `sha256sum` prints), either case. Surrounding whitespace is ignored
/// for every source, since it cannot be part of a digest and a pasted value
/// often carries some; in practice this matters for the routes file only, as
/// the `SSHRoute` schema's pattern already refuses it at the API server.
pub(crate) fn parse_token_sha256(text: &str) -> Result<[u8; 32], String> {
    let mut digest = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut digest).map_err(|_| {
        "expected the token's SHA-256 as 64 hex digits (printf %s TOKEN | sha256sum)".to_owned()
    })?;
    Ok(digest)
}

impl fmt::Debug for Route {
    // The identity is a private key: never print it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Route")
            .field("name", &self.name)
            .field("address", &self.address)
            .field("user", &self.user)
            .field("authorized_keys", &self.authorized_keys.len())
            .field("identity", &self.identity.as_ref().map(|_| "<redacted>"))
            .field(
                "host_key",
                &self
                    .host_key
                    .as_ref()
                    .map(|k| k.fingerprint(Default::default()).to_string()),
            )
            .field("state", &self.state)
            .field("forwarding", &self.forwarding)
            .field("token_sha256", &self.token_sha256.map(|_| "<set>"))
            .field("sshgate_compat", &self.sshgate_compat)
            .field("wake", &self.wake)
            .field("login", &self.login)
            .field("trusted_host_cas", &self.trusted_host_cas.len())
            .field("user_certs", &self.user_certs)
            .finish()
    }
}

impl Route {
    /// True when `key` (comments ignored) is in this route's `authorized_keys`.
    pub fn authorizes(&self, key: &PublicKey) -> bool {
        self.authorized_keys
            .iter()
            .any(|k| k.key_data() == key.key_data())
    }

    /// The key-mode login user when the client named no target: the route's
    /// `user` overrides the SSH username (SPEC §5), except on an
    /// sshgate-compatible route, where the typed username wins and `user`
    /// is used only when the username names none.
    pub fn key_mode_user(&self, typed: Option<&str>) -> Option<String> {
        let typed = typed.filter(|u| !u.is_empty()).map(str::to_owned);
        if self.sshgate_compat {
            typed.or_else(|| self.user.clone())
        } else {
            self.user.clone().or(typed)
        }
    }
}

/// Whether a box can be reached now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteState {
    Running,
    /// The box is stopped; `message` is an optional operator note shown to the user.
    Stopped {
        message: Option<String>,
    },
}

/// Which forwardings a route allows. [`Forwarding::default`] (everything
/// allowed) is the one default: the routes file reads `[route.forwarding]`
/// straight into this type, a switch left out taking its default, and the
/// Kubernetes sources start from it too.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Forwarding {
    /// `-L`, `-D`, `-W` (direct-tcpip channels forwarded by the box).
    pub local: bool,
    /// `-R` (tcpip-forward and forwarded-tcpip channels).
    pub remote: bool,
    /// `ssh -A` into the box.
    pub agent: bool,
}

impl Default for Forwarding {
    fn default() -> Self {
        Self {
            local: true,
            remote: true,
            agent: true,
        }
    }
}

#[cfg(test)]
impl Route {
    /// A running route with nothing set but its name and address: tests
    /// change what they need with `Route { field, ..Route::for_test(..) }`.
    pub(crate) fn for_test(name: &str, address: &str) -> Route {
        Route {
            name: name.into(),
            address: address.into(),
            user: None,
            authorized_keys: Vec::new(),
            identity: None,
            host_key: None,
            state: RouteState::Running,
            forwarding: Forwarding::default(),
            token_sha256: None,
            sshgate_compat: false,
            wake: None,
            login: LoginMethod::Key,
            trusted_host_cas: Vec::new(),
            user_certs: UserCerts::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use russh::keys::ssh_key::LineEnding;
    use russh::keys::ssh_key::private::Ed25519Keypair;

    use super::*;

    fn key(n: u8) -> PrivateKey {
        PrivateKey::from(Ed25519Keypair::from_seed(&[n; 32]))
    }

    fn route(identity: Option<PrivateKey>) -> Route {
        Route {
            authorized_keys: vec![key(9).public_key().clone()],
            identity: identity.map(Arc::new),
            ..Route::for_test("a", "10.0.0.1:22")
        }
    }

    #[test]
    fn routes_compare_identities_by_key_not_by_allocation() {
        let text = key(1).to_openssh(LineEnding::LF).expect("encodes");
        let reparsed = PrivateKey::from_openssh(&*text).expect("decodes");
        assert_eq!(route(Some(key(1))), route(Some(reparsed)));
        assert_ne!(route(Some(key(1))), route(Some(key(2))));
        assert_ne!(route(Some(key(1))), route(None));
        let mut other = route(None);
        other.forwarding.agent = false;
        assert_ne!(route(None), other);
    }

    #[test]
    fn debug_shows_no_key_material() {
        let r = route(Some(key(1)));
        let shown = format!("{r:?}");
        let private = key(1).to_openssh(LineEnding::LF).expect("encodes");
        let body: String = private.lines().nth(1).unwrap_or_default().into();
        assert!(shown.contains("<redacted>"), "{shown}");
        assert!(!shown.contains(&body), "{shown}");
        assert!(!shown.contains("PRIVATE"), "{shown}");
    }

    #[test]
    fn token_digests_are_64_hex_digits_trimmed() {
        let hex = "ab".repeat(32);
        assert_eq!(parse_token_sha256(&hex), Ok([0xab; 32]));
        assert_eq!(parse_token_sha256(&format!(" {hex}\n")), Ok([0xab; 32]));
        assert_eq!(parse_token_sha256(&hex.to_uppercase()), Ok([0xab; 32]));
        for bad in [
            "",
            "abc",
            &"ab".repeat(33),
            &"zz".repeat(32),
            &format!("{hex} x"),
        ] {
            let err = parse_token_sha256(bad).expect_err(bad);
            assert!(err.contains("64 hex digits"), "{err}");
        }
    }
}
