//! OpenSSH user certificates (README "User certificates"): whether a
//! certificate may be used at all, which routes it opens, and what its
//! extensions allow.
//!
//! russh hands the certificate over with its dates and its signature by its
//! own CA checked, nothing else; every check that matters is here, and
//! repeated (dates, signature) so this is complete on its own:
//!
//! - [`check`]: type user, at least one principal, `valid_after <= now <
//!   valid_before`, signature valid, not revoked (serial, key ID, certified
//!   key, signing CA), critical options: `source-address` must list the real
//!   client address (after any PROXY header); `force-command` and every
//!   other critical option refuse the certificate (the gateway relays to a
//!   box and cannot impose a command there; OpenSSH refuses options it does
//!   not know, too).
//! - [`admits`]: a route accepts a checked certificate when its CA is one of
//!   the gateway's (`trusted_user_ca_keys`) and one of its principals is in
//!   the route's `principals`, or its CA is one of the route's
//!   `cert-authority` lines and one of its principals is in that line's
//!   `principals="…"` (the route's `principals` when the line has none).
//! - [`Grant`]: an admitted certificate, kept by the principal: later
//!   decisions (jumps, forwardings, a PTY) ask it about routes and
//!   extensions (`permit-port-forwarding`, `permit-agent-forwarding`,
//!   `permit-pty`).
//!
//! A certificate that fails is never an error the client sees: the access
//! layer then treats the connection exactly as its certified key offered
//! bare, which is what an unknown key gets.

use std::net::IpAddr;
use std::sync::Arc;

use russh::keys::HashAlg;
use russh::keys::ssh_key::Certificate;
use russh::keys::ssh_key::certificate::CertType;

use crate::config::parse_cidr;
use crate::routes::{Route, RouteTable, UserTrust};

/// Extension allowing `-L`/`-D`/`-W`/`-R` and jumps.
pub const PERMIT_PORT_FORWARDING: &str = "permit-port-forwarding";
/// Extension allowing `ssh -A` into the box.
pub const PERMIT_AGENT_FORWARDING: &str = "permit-agent-forwarding";
/// Extension allowing a PTY.
pub const PERMIT_PTY: &str = "permit-pty";

/// Why a certificate is not used (for the operator's log only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertRefusal {
    /// A host certificate, or an unknown type.
    NotUser,
    /// It lists no principal (OpenSSH refuses those for users too).
    NoPrincipals,
    Expired,
    NotYetValid,
    BadSignature,
    Revoked,
    /// `source-address` does not list the client.
    SourceAddress,
    /// `force-command`: not honoured by the gateway, so refused.
    ForceCommand,
    /// A critical option the gateway does not know (or a malformed one).
    CriticalOption,
    /// Valid, but no route (of the named target) accepts its CA and principals.
    NoRoute,
}

impl CertRefusal {
    /// The audit reason (`auth_failure`), when the bare key is refused too.
    pub fn label(self) -> &'static str {
        match self {
            CertRefusal::NotUser => "certificate_not_user",
            CertRefusal::NoPrincipals => "certificate_no_principals",
            CertRefusal::Expired => "certificate_expired",
            CertRefusal::NotYetValid => "certificate_not_yet_valid",
            CertRefusal::BadSignature => "certificate_bad_signature",
            CertRefusal::Revoked => "certificate_revoked",
            CertRefusal::SourceAddress => "certificate_source_address",
            CertRefusal::ForceCommand => "certificate_force_command",
            CertRefusal::CriticalOption => "certificate_critical_option",
            CertRefusal::NoRoute => "certificate_no_route",
        }
    }
}

/// The checks that do not depend on a route.
pub fn check(
    cert: &Certificate,
    trust: &UserTrust,
    client: IpAddr,
    now: u64,
) -> Result<(), CertRefusal> {
    if cert.cert_type() != CertType::User {
        return Err(CertRefusal::NotUser);
    }
    if cert.valid_principals().is_empty() {
        return Err(CertRefusal::NoPrincipals);
    }
    if now < cert.valid_after() {
        return Err(CertRefusal::NotYetValid);
    }
    if now >= cert.valid_before() {
        return Err(CertRefusal::Expired);
    }
    // The signature against the CA key the certificate names; whether that
    // CA is trusted is `admits`' question.
    let own_ca = cert.signature_key().fingerprint(HashAlg::Sha256);
    // SHA-1 RSA CA signatures (`ssh-rsa`) are refused, as OpenSSH's
    // default `CASignatureAlgorithms` has done since 8.2.
    if cert.validate_at(now, [&own_ca]).is_err() || crate::routes::trust::sha1_signed(cert) {
        return Err(CertRefusal::BadSignature);
    }
    if trust.revoked.certificate(cert) {
        return Err(CertRefusal::Revoked);
    }
    for (name, value) in cert.critical_options().iter() {
        match name.as_str() {
            "source-address" => {
                if !source_address_allows(value, client)? {
                    return Err(CertRefusal::SourceAddress);
                }
            }
            "force-command" => return Err(CertRefusal::ForceCommand),
            _ => return Err(CertRefusal::CriticalOption),
        }
    }
    Ok(())
}

/// `source-address`: a comma-separated list of addresses and CIDRs; a
/// malformed list refuses the certificate.
fn source_address_allows(list: &str, client: IpAddr) -> Result<bool, CertRefusal> {
    let client = match client {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(client, IpAddr::V4),
        v4 => v4,
    };
    let mut allowed = false;
    for entry in list.split(',') {
        let net = parse_cidr(entry).map_err(|_| CertRefusal::CriticalOption)?;
        allowed |= net.contains(&client);
    }
    Ok(allowed)
}

/// Whether `route` accepts `cert` (already [`check`]ed) under `trust`.
pub fn admits(cert: &Certificate, trust: &UserTrust, route: &Route) -> bool {
    let ca = cert.signature_key();
    let names = cert.valid_principals();
    let any_of = |allowed: &[String]| names.iter().any(|p| allowed.contains(p));
    (trust.is_ca(ca) && any_of(&route.user_certs.principals))
        || route
            .user_certs
            .authority_principals(ca)
            .is_some_and(any_of)
}

/// Every route of `table` that accepts `cert` (already checked), by name.
pub fn routes(cert: &Certificate, table: &RouteTable) -> Vec<Arc<Route>> {
    let trust = table.trust();
    table
        .routes_for_certificate(cert.signature_key(), cert.valid_principals())
        .into_iter()
        .filter(|r| admits(cert, trust, r))
        .collect()
}

/// An admitted certificate, with the trust it was admitted under (a later
/// reload does not change what an open connection may do, as with sshd).
#[derive(Debug, Clone)]
pub struct Grant {
    cert: Certificate,
    trust: Arc<UserTrust>,
}

impl Grant {
    pub fn new(cert: Certificate, trust: Arc<UserTrust>) -> Self {
        Self { cert, trust }
    }

    /// Whether this certificate opens `route`.
    pub fn admits(&self, route: &Route) -> bool {
        admits(&self.cert, &self.trust, route)
    }

    /// Whether the certificate carries `extension` (`permit-…`).
    pub fn permits(&self, extension: &str) -> bool {
        self.cert.extensions().contains_key(extension)
    }

    /// The key ID (as signed by the CA; for logs).
    pub fn key_id(&self) -> &str {
        self.cert.key_id()
    }

    pub fn serial(&self) -> u64 {
        self.cert.serial()
    }

    /// `SHA256:…` of the signing CA.
    pub fn ca_fingerprint(&self) -> String {
        self.cert
            .signature_key()
            .fingerprint(HashAlg::Sha256)
            .to_string()
    }
}
