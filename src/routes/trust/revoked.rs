//! `revoked_keys_file`: the text specification `ssh-keygen -k` compiles
//! into a binary KRL, read as is (the binary KRL is not read). One entry a
//! line; blank lines and `#` comments are skipped:
//!
//! - `serial: N` or `serial: N-M`: certificates with that serial (decimal,
//!   `0x` hex or `0` octal, as ssh-keygen reads them; not 0);
//! - `id: KEY_ID`: certificates with that key ID (the rest of the line);
//! - `key: <public key or certificate line>`, `sha1: …`, `sha256: …`: that
//!   key, as a client key, as the key a certificate certifies, or as a CA
//!   (every certificate it signed);
//! - `hash: SHA256:…`: the key with that fingerprint, likewise.
//!
//! Unlike a KRL compiled with `ssh-keygen -k -s ca.pub`, `serial:` and
//! `id:` here apply to certificates of every trusted CA.

use std::collections::HashSet;
use std::ops::RangeInclusive;

use russh::keys::ssh_key::public::KeyData;
use russh::keys::ssh_key::{Certificate, HashAlg};

use crate::routes::keys::parse_public_key;

/// What `revoked_keys_file` revokes.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Revoked {
    serials: Vec<RangeInclusive<u64>>,
    ids: HashSet<String>,
    keys: HashSet<KeyData>,
    /// `SHA256:…` fingerprints.
    fingerprints: HashSet<String>,
}

impl Revoked {
    /// Parses the text; every bad line is reported as `line N: <why>`.
    pub fn parse(text: &str) -> Result<Self, Vec<String>> {
        let mut revoked = Self::default();
        let mut problems = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Err(e) = revoked.add(line) {
                problems.push(format!("line {}: {e}", n + 1));
            }
        }
        if problems.is_empty() {
            Ok(revoked)
        } else {
            Err(problems)
        }
    }

    fn add(&mut self, line: &str) -> Result<(), String> {
        let Some((kind, value)) = line.split_once(':') else {
            return Err(
                "expected \"serial:\", \"id:\", \"key:\", \"sha1:\", \"sha256:\" or \"hash:\""
                    .into(),
            );
        };
        let value = value.trim();
        match kind.trim().to_ascii_lowercase().as_str() {
            "serial" => self.serials.push(parse_serials(value)?),
            "id" if !value.is_empty() => {
                self.ids.insert(value.to_owned());
            }
            "id" => return Err("id: needs a key ID".into()),
            "key" | "sha1" | "sha256" => {
                self.keys.insert(parse_key_or_certificate(value)?);
            }
            "hash" => {
                let Some(digest) = value.strip_prefix("SHA256:").filter(|d| !d.is_empty()) else {
                    return Err("hash: takes a SHA256:… fingerprint (ssh-keygen -l)".into());
                };
                self.fingerprints.insert(format!("SHA256:{digest}"));
            }
            other => return Err(format!("unknown entry {other:?}")),
        }
        Ok(())
    }

    /// Whether `key` is revoked (by key or fingerprint).
    pub fn key(&self, key: &KeyData) -> bool {
        self.keys.contains(key)
            || (!self.fingerprints.is_empty()
                && self
                    .fingerprints
                    .contains(&key.fingerprint(HashAlg::Sha256).to_string()))
    }

    /// Whether `cert` is revoked: its serial, its key ID, the key it
    /// certifies, or the CA that signed it.
    pub fn certificate(&self, cert: &Certificate) -> bool {
        let serial = cert.serial();
        self.serials.iter().any(|r| r.contains(&serial))
            || self.ids.contains(cert.key_id())
            || self.key(cert.public_key())
            || self.key(cert.signature_key())
    }

    /// True when nothing is revoked.
    pub fn is_empty(&self) -> bool {
        self.serials.is_empty()
            && self.ids.is_empty()
            && self.keys.is_empty()
            && self.fingerprints.is_empty()
    }
}

/// `N` or `N-M`.
fn parse_serials(text: &str) -> Result<RangeInclusive<u64>, String> {
    let (low, high) = match text.split_once('-') {
        Some((low, high)) => (parse_serial(low)?, parse_serial(high)?),
        None => {
            let n = parse_serial(text)?;
            (n, n)
        }
    };
    if low > high {
        return Err(format!("serial range {text:?} is empty"));
    }
    Ok(low..=high)
}

/// A serial as ssh-keygen reads it (`strtoull` base 0); never 0.
fn parse_serial(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let parsed = if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        u64::from_str_radix(hex, 16)
    } else if text.len() > 1 && text.starts_with('0') {
        u64::from_str_radix(&text[1..], 8)
    } else {
        text.parse()
    };
    match parsed {
        Ok(0) => Err("serial 0 cannot be revoked (it is every unnumbered certificate)".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{text:?} is not a serial number")),
    }
}

/// A public key line, or a certificate line (its certified key).
fn parse_key_or_certificate(text: &str) -> Result<KeyData, String> {
    if text
        .split_whitespace()
        .next()
        .is_some_and(|t| t.contains("-cert-v01@openssh.com"))
    {
        return Certificate::from_openssh(text)
            .map(|c| c.public_key().clone())
            .map_err(|e| format!("not a valid certificate: {e}"));
    }
    parse_public_key(text).map(|k| k.key_data().clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPy79bNUuWn+Hzm/i/zTG1Hj9xvS6X51TAd4Et/u9VRb";

    #[test]
    fn the_ssh_keygen_text_specification() {
        let key = parse_public_key(KEY).expect("key");
        let fp = key.fingerprint(HashAlg::Sha256).to_string();
        let text = format!(
            "# revoked\n\nserial: 7\nserial: 0x10-0x12\nserial: 010\nid: alice laptop\nkey: {KEY} c\n"
        );
        let revoked = Revoked::parse(&text).expect("parses");
        assert!(revoked.serials.iter().any(|r| r.contains(&7)));
        assert!(revoked.serials.iter().any(|r| r.contains(&17)));
        assert!(revoked.serials.iter().any(|r| r.contains(&8)), "octal");
        assert!(!revoked.serials.iter().any(|r| r.contains(&9)));
        assert!(revoked.ids.contains("alice laptop"));
        assert!(revoked.key(key.key_data()));
        let by_hash = Revoked::parse(&format!("hash: {fp}")).expect("hash");
        assert!(by_hash.key(key.key_data()));
        assert!(Revoked::parse("").expect("empty").is_empty());
    }

    #[test]
    fn bad_lines_are_numbered() {
        let err =
            Revoked::parse("serial: 0\nid:\nfoo: bar\nserial: 5-3\nkey: nope\nhash: MD5:x\nwhat")
                .expect_err("bad");
        assert_eq!(err.len(), 7, "{err:?}");
        assert!(err[0].starts_with("line 1: serial 0"), "{err:?}");
        assert!(err[2].contains("unknown entry"), "{err:?}");
    }
}
