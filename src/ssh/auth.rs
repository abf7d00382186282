//! SSH authentication: the offered key and the username go to the access
//! layer; a refusal is counted towards the per-source penalty, an admission
//! is recorded on the connection (span fields for logs, the record for the
//! audit event).

use russh::keys::{HashAlg, PublicKey};
use russh::server::Auth;
use tracing::{Span, info};

use crate::access::{Access, Admission, Principal};
use crate::ops::{Conn, metrics};

/// A key is offered (signature not checked yet): only say whether it could work.
pub fn offered(access: &Access, conn: &Conn, user: &str, key: &PublicKey) -> Auth {
    match access.ssh(user, key) {
        Admission::Admitted(_) => Auth::Accept,
        Admission::Refused => refuse(conn),
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
    let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
    span.record("key_fp", fingerprint.as_str());
    let principal = match access.ssh(user, key) {
        Admission::Admitted(principal) => principal,
        Admission::Refused => {
            span.in_scope(|| info!(key_fp = %fingerprint, "authentication refused"));
            return (refuse(conn), None);
        }
    };
    span.record("mode", principal.label());
    if let Some(route) = principal.route_name() {
        span.record("route", route);
    }
    if let Some(user) = principal.login_user() {
        span.record("user", user);
    }
    conn.identify(|id| {
        id.route = principal.route_name().map(str::to_owned);
        id.user = principal.login_user().map(str::to_owned);
        id.key_fp = Some(fingerprint);
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

fn refuse(conn: &Conn) -> Auth {
    conn.note_auth_failure();
    metrics::get().auth("none", "rejected");
    Auth::reject()
}
