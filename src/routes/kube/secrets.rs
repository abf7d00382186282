//! Secrets as key material: only the Secrets (and, of those, only the data
//! keys) that routes use are kept in memory; their text is parsed into keys
//! once per Secret version; nothing read from a Secret is ever logged.
//!
//! Key text is taken as OpenSSH text (`ssh-ed25519 AAAA…`, `-----BEGIN …`),
//! or, failing that, as base64 of such text: some tools store keys
//! base64-encoded once more inside the Secret's (already base64) data. That
//! unwrapping is the only Kubernetes-specific step; the text is then parsed
//! by the shared [`crate::routes::keys`], like the routes file's.

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use russh::keys::{PrivateKey, PublicKey};
use zeroize::Zeroizing;

use crate::routes::keys::{AuthorizedKeys, decode_identity, parse_authorized_keys};

/// Secrets routes refer to: `(namespace, name)` → the data keys used.
pub(super) type Wanted = HashMap<(String, String), BTreeSet<String>>;

/// A copy of `secret` holding only what `wanted` lists, or `None` when no
/// route uses it. Annotations are dropped on purpose:
/// `kubectl.kubernetes.io/last-applied-configuration` holds the data in clear.
pub(super) fn keep_wanted(secret: &Secret, wanted: &Wanted) -> Option<Secret> {
    let key = (
        secret.metadata.namespace.clone()?,
        secret.metadata.name.clone()?,
    );
    let keys = wanted.get(&key)?;
    Some(keep_keys(secret, |k| keys.contains(k)))
}

/// A copy of `secret` with only its identity and the data keys `keep` accepts.
pub(super) fn keep_keys(secret: &Secret, keep: impl Fn(&str) -> bool) -> Secret {
    let m = &secret.metadata;
    let data = secret.data.as_ref().map(|d| {
        d.iter()
            .filter(|(k, _)| keep(k))
            .map(|(k, v)| (k.clone(), ByteString(v.0.clone())))
            .collect()
    });
    Secret {
        metadata: ObjectMeta {
            name: m.name.clone(),
            namespace: m.namespace.clone(),
            uid: m.uid.clone(),
            resource_version: m.resource_version.clone(),
            owner_references: m.owner_references.clone(),
            creation_timestamp: m.creation_timestamp.clone(),
            ..Default::default()
        },
        data,
        ..Default::default()
    }
}

/// Identifies one version of one data key of one Secret (for [`Memo`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct Version {
    uid: String,
    resource_version: String,
    key: String,
}

impl Version {
    pub(super) fn of(secret: &Secret, key: &str) -> Self {
        let m = &secret.metadata;
        Self {
            uid: m.uid.clone().unwrap_or_default(),
            resource_version: m.resource_version.clone().unwrap_or_default(),
            key: key.to_owned(),
        }
    }
}

/// Parses a Secret's `authorized_keys` entry: [`key_text`] unwraps it, then
/// [`parse_authorized_keys`] reads it; the good keys are kept.
pub(super) fn authorized_keys(bytes: &[u8]) -> AuthorizedKeys {
    match key_text(bytes) {
        Some(text) => parse_authorized_keys(&text),
        None => AuthorizedKeys {
            problems: vec!["is not UTF-8 text".into()],
            ..AuthorizedKeys::default()
        },
    }
}

/// Appends the keys of `more` that `keys` does not hold yet (comments
/// ignored), so a key listed in two places is authorized once.
pub(super) fn add_new_keys(keys: &mut Vec<PublicKey>, more: &[PublicKey]) {
    for k in more {
        if !keys.iter().any(|a| a.key_data() == k.key_data()) {
            keys.push(k.clone());
        }
    }
}

/// Parses an unencrypted private key; the error never quotes the text.
pub(super) fn identity(bytes: &[u8], what: &str) -> Result<Arc<PrivateKey>, String> {
    let text = key_text(bytes).ok_or_else(|| format!("{what} is not a private key"))?;
    decode_identity(&text, what).map(Arc::new)
}

/// The key text in `bytes`, unwrapping one extra layer of base64 when the
/// bytes are not key text themselves but decode to it.
fn key_text(bytes: &[u8]) -> Option<Zeroizing<String>> {
    let text = Zeroizing::new(String::from_utf8(bytes.to_vec()).ok()?);
    if looks_like_key(&text) {
        return Some(text);
    }
    let compact: Zeroizing<String> =
        Zeroizing::new(text.chars().filter(|c| !c.is_whitespace()).collect());
    let decoded = Zeroizing::new(STANDARD.decode(compact.as_bytes()).ok()?);
    let inner = Zeroizing::new(String::from_utf8(decoded.to_vec()).ok()?);
    if looks_like_key(&inner) {
        Some(inner)
    } else {
        Some(text)
    }
}

/// True when the first meaningful line starts like an OpenSSH public key
/// line, a `cert-authority` line or a PEM block.
fn looks_like_key(text: &str) -> bool {
    let Some(first) = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
    else {
        return true; // empty: nothing to unwrap
    };
    first.starts_with("-----BEGIN ")
        || ["ssh-", "ecdsa-", "sk-", "cert-authority"]
            .iter()
            .any(|p| first.starts_with(p))
}

/// Remembers values computed during one build for the next one, and forgets
/// whatever a build did not ask for: so a Secret's keys are parsed (and any
/// problem logged) once per Secret version, not on every rebuild.
pub(super) struct Memo<K, V> {
    prev: HashMap<K, V>,
    next: HashMap<K, V>,
}

impl<K, V> Default for Memo<K, V> {
    fn default() -> Self {
        Self {
            prev: HashMap::new(),
            next: HashMap::new(),
        }
    }
}

impl<K: Eq + Hash, V: Clone> Memo<K, V> {
    /// The value for `key`, computed by `f` the first time.
    pub(super) fn get(&mut self, key: K, f: impl FnOnce() -> V) -> V {
        if let Some(v) = self.next.get(&key) {
            return v.clone();
        }
        let v = match self.prev.remove(&key) {
            Some(v) => v,
            None => f(),
        };
        self.next.insert(key, v.clone());
        v
    }

    /// Ends a build: what it did not ask for is dropped.
    pub(super) fn finish(&mut self) {
        self.prev = std::mem::take(&mut self.next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPy79bNUuWn+Hzm/i/zTG1Hj9xvS6X51TAd4Et/u9VRb";

    #[test]
    fn authorized_keys_plain_and_double_base64() {
        let text = format!("# team\n{KEY} a\n\nnot a key\n");
        let parsed = authorized_keys(text.as_bytes());
        assert_eq!(parsed.keys.len(), 1);
        assert_eq!(parsed.problems.len(), 1);
        assert!(
            parsed.problems[0].starts_with("line 4: "),
            "{:?}",
            parsed.problems
        );
        assert!(!parsed.problems[0].contains("not a key"));
        let wrapped = STANDARD.encode(format!("{KEY} a\n"));
        assert_eq!(authorized_keys(wrapped.as_bytes()).keys.len(), 1);
        assert!(authorized_keys(&[0xff, 0xfe]).problems[0].contains("UTF-8"));
    }

    #[test]
    fn identity_errors_never_quote_the_text() {
        let err = identity(
            b"-----BEGIN OPENSSH PRIVATE KEY-----\nc2VjcmV0\n",
            "secret a/b key k",
        )
        .expect_err("garbage");
        assert!(err.contains("secret a/b key k"), "{err}");
        assert!(!err.contains("c2VjcmV0"), "{err}");
    }

    #[test]
    fn only_wanted_secrets_and_keys_are_kept() {
        let mut secret = Secret::default();
        secret.metadata.name = Some("s".into());
        secret.metadata.namespace = Some("ns".into());
        secret.metadata.annotations = Some(
            [(
                "kubectl.kubernetes.io/last-applied-configuration".to_owned(),
                "{…}".to_owned(),
            )]
            .into(),
        );
        secret.data = Some(
            [
                ("id".to_owned(), ByteString(b"x".to_vec())),
                ("other".to_owned(), ByteString(b"y".to_vec())),
            ]
            .into(),
        );
        let mut wanted = Wanted::new();
        assert!(keep_wanted(&secret, &wanted).is_none());
        wanted.insert(("ns".into(), "s".into()), ["id".to_owned()].into());
        let kept = keep_wanted(&secret, &wanted).expect("wanted");
        let keys: Vec<_> = kept
            .data
            .iter()
            .flatten()
            .map(|(k, _)| k.as_str())
            .collect();
        assert_eq!(keys, ["id"]);
        assert!(kept.metadata.annotations.is_none());
    }

    #[test]
    fn memo_computes_once_and_forgets_unused() {
        let mut memo: Memo<u8, u32> = Memo::default();
        let mut calls = 0;
        for _ in 0..2 {
            memo.get(1, || {
                calls += 1;
                10
            });
            memo.finish();
        }
        assert_eq!(calls, 1);
        memo.finish(); // a build that did not ask for 1
        memo.get(1, || {
            calls += 1;
            10
        });
        assert_eq!(calls, 2);
    }
}
