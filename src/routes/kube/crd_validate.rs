//! Checks on an `SSHRoute` spec beyond what the CRD schema enforces (the API
//! server may run without CEL, and objects may predate a schema change): the
//! parts that must be right for a route to exist at all.

use russh::keys::PublicKey;

use super::crd::{LoginSpec, SSHRouteSpec};
use crate::config::text::check_login_user;
use crate::routes::keys::parse_public_key;
use crate::routes::{LoginMethod, parse_token_sha256};

/// The parts of a spec that must be right for the route to exist.
pub(super) struct Valid {
    pub port: u16,
    pub host_key: Option<PublicKey>,
    pub token_sha256: Option<[u8; 32]>,
    pub login: LoginMethod,
    pub trusted_host_cas: Vec<PublicKey>,
}

/// The validated parts of `spec`, or every problem found.
pub(super) fn validate(spec: &SSHRouteSpec) -> Result<Valid, Vec<String>> {
    let mut errors = Vec::new();
    let b = &spec.backend;
    match (&b.service, &b.pod_selector) {
        (Some(_), Some(_)) | (None, None) => {
            errors.push("backend: set exactly one of service and podSelector".into())
        }
        (Some(s), None) if s.is_empty() => errors.push("backend.service: must not be empty".into()),
        (None, Some(sel)) if sel.match_labels.is_empty() => errors.push(
            "backend.podSelector.matchLabels: must not be empty (it would match every pod)".into(),
        ),
        _ => {}
    }
    let port = u16::try_from(b.port).ok().filter(|p| *p != 0);
    if port.is_none() {
        errors.push(format!("backend.port: {} is not 1 to 65535", b.port));
    }
    if let Some(Err(problem)) = spec.user.as_deref().map(check_login_user) {
        errors.push(format!("user: {problem}"));
    }
    let host_key = match spec.host_key.as_deref().map(parse_public_key).transpose() {
        Ok(k) => k,
        Err(e) => {
            errors.push(format!("hostKey: {e}"));
            None
        }
    };
    let token_sha256 = match spec
        .token_sha256
        .as_deref()
        .map(parse_token_sha256)
        .transpose()
    {
        Ok(t) => t,
        Err(e) => {
            errors.push(format!("tokenSha256: {e}"));
            None
        }
    };
    let login = match spec.login {
        None | Some(LoginSpec::Key) => LoginMethod::Key,
        Some(LoginSpec::Certificate) => LoginMethod::Certificate,
    };
    if login == LoginMethod::Certificate && spec.identity_secret_ref.is_some() {
        errors.push(
            "identitySecretRef: not used with login: certificate (the gateway's user CA signs \
             each login); remove one of them"
                .into(),
        );
    }
    let mut trusted_host_cas = Vec::new();
    for (i, line) in spec.trusted_host_cas.iter().enumerate() {
        match parse_public_key(line) {
            Ok(k) => trusted_host_cas.push(k),
            Err(e) => errors.push(format!("trustedHostCAs[{i}]: {e}")),
        }
    }
    if spec.host_key.is_some() && !spec.trusted_host_cas.is_empty() {
        errors.push(
            "trustedHostCAs: set together with hostKey; pin the box's key or trust its host \
             CAs, not both"
                .into(),
        );
    }
    match (port, errors.is_empty()) {
        (Some(port), true) => Ok(Valid {
            port,
            host_key,
            token_sha256,
            login,
            trusted_host_cas,
        }),
        _ => Err(errors),
    }
}
