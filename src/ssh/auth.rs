//! SSH authentication: the offered key and the username go to the access
//! layer; a refusal is counted towards the per-source penalty and logged as
//! the audit `auth_failure` (with its reason, which the client never sees);
//! an admission is recorded on the connection (span fields for logs, the
//! record for the audit events; a certificate's key ID and serial too).
//!
//! Certificates: russh tells the offer callback whether the offer is a
//! certificate (our patch, `PublicKeyOffer::certificate`), so a
//! certificate is decided as one from the offer on, and a bare key exactly
//! as before — no key is accepted at the offer that would not be accepted
//! without certificate support.

use russh::keys::ssh_key::Certificate;
use russh::keys::{HashAlg, PublicKey};
use russh::server::Auth;
use tracing::{Span, info};

use crate::access::{Access, Admission, Principal};
use crate::ops::audit::{self, AuthFailure};
use crate::ops::channel::clip;
use crate::ops::conn::CertIdentity;
use crate::ops::{Conn, metrics};

/// A key is offered (signature not checked yet): only say whether it could
/// work. OpenSSH asks this for each key before signing, so a refused key is
/// one `auth_failure` here.
pub fn offered(
    access: &Access,
    conn: &Conn,
    user: &str,
    key: &PublicKey,
    cert: Option<&Certificate>,
) -> Auth {
    let admission = match cert {
        Some(cert) => access.ssh_certificate(user, cert, conn.client.ip()),
        None => access.ssh(user, key),
    };
    match admission {
        Admission::Admitted(_) => Auth::Accept,
        Admission::Refused(why) => refuse(conn, why.label(), user, key),
    }
}

/// The key's signature is verified: decide for real. `Some` is the admitted
/// principal, already recorded on `conn` and `span`.
pub fn verified(
    access: &Access,
    conn: &Conn,
    span: &Span,
    user: &str,
    key: &PublicKey,
) -> (Auth, Option<Principal>) {
    admit(access.ssh(user, key), conn, span, user, key)
}

/// A certificate's signature (by its key) is verified: decide for real, as
/// [`verified`] does for a key.
pub fn certificate(
    access: &Access,
    conn: &Conn,
    span: &Span,
    user: &str,
    cert: &Certificate,
) -> (Auth, Option<Principal>) {
    let key = PublicKey::new(cert.public_key().clone(), "");
    let admission = access.ssh_certificate(user, cert, conn.client.ip());
    admit(admission, conn, span, user, &key)
}

fn admit(
    admission: Admission,
    conn: &Conn,
    span: &Span,
    user: &str,
    key: &PublicKey,
) -> (Auth, Option<Principal>) {
    let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
    span.record("key.fingerprint", fingerprint.as_str());
    let principal = match admission {
        Admission::Admitted(principal) => principal,
        // The table changed since the key was offered.
        Admission::Refused(why) => {
            span.in_scope(|| info!("authentication refused"));
            return (refuse(conn, why.label(), user, key), None);
        }
    };
    span.record("auth.mode", principal.label());
    if let Some(route) = principal.route_name() {
        span.record("route", route);
    }
    if let Some(user) = principal.login_user() {
        span.record("user.name", user);
    }
    let cert = principal.certificate();
    if let Some(cert) = cert {
        span.record("cert.key_id", clip(cert.key_id()));
        span.record("cert.serial", cert.serial());
    }
    conn.identify(|id| {
        id.route = principal.route_name().map(str::to_owned);
        id.user = principal.login_user().map(str::to_owned);
        id.key_fp = Some(fingerprint);
        id.cert = cert.map(|c| CertIdentity {
            key_id: c.key_id().to_owned(),
            serial: c.serial(),
            ca_fp: c.ca_fingerprint(),
        });
    });
    if principal.is_provisional() {
        // Counted once the box has decided (see `link`).
        span.in_scope(|| info!("admitted provisionally; the box decides"));
    } else {
        metrics::get().auth(principal.label(), "accepted");
        span.in_scope(|| info!("authenticated"));
    }
    (Auth::Accept, Some(*principal))
}

fn refuse(conn: &Conn, reason: &'static str, user: &str, key: &PublicKey) -> Auth {
    conn.note_auth_failure();
    metrics::get().auth("none", "rejected");
    let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
    let failure = AuthFailure {
        reason,
        key_fingerprint: Some(&fingerprint),
        requested: Some(user),
    };
    audit::auth_failure(conn, &failure);
    Auth::reject()
}
