//! Key material as text, shared by every route source: OpenSSH public key
//! lines, `authorized_keys` text, and the gateway's private identity.
//!
//! Error messages here describe the problem and never include private key
//! material: private-key decoding errors are mapped to fixed texts.

use std::str::FromStr;

use russh::keys::ssh_key::Algorithm;
use russh::keys::{PrivateKey, PublicKey};

use crate::config::text::quote;

/// Parses `<algorithm> <base64> [comment]`. An `authorized_keys` options
/// prefix (`restrict,from="…" ssh-ed25519 …`) is refused rather than ignored:
/// the gateway cannot enforce `from=`, `command=` or `restrict`, and dropping
/// them silently would let the key do more than the line says.
pub(crate) fn parse_public_key(line: &str) -> Result<PublicKey, String> {
    let line = line.trim();
    let mut fields = line.split_whitespace();
    let Some(first) = fields.next() else {
        return Err("empty; expected \"<algorithm> <base64> [comment]\"".to_owned());
    };
    if first.contains("-cert-v01@openssh.com") {
        return Err("certificates are not accepted here; give the plain public key".to_owned());
    }
    if Algorithm::from_str(first).is_err() {
        return Err(if starts_with_options(line) {
            "authorized_keys options (restrict, from=, command=, …) are not supported by the gateway; \
             remove them and use the route's [route.forwarding] switches"
                .to_owned()
        } else {
            format!(
                "unknown key type {}; expected \"<algorithm> <base64> [comment]\"",
                quote(first)
            )
        });
    }
    let Some(base64) = fields.next() else {
        return Err(format!("{} key has no base64 data", quote(first)));
    };
    // Normalise the separators to single spaces, which the parser requires;
    // the comment keeps its inner spacing.
    let comment = line[first.len()..].trim_start()[base64.len()..].trim();
    let normalised = if comment.is_empty() {
        format!("{first} {base64}")
    } else {
        format!("{first} {base64} {comment}")
    };
    PublicKey::from_openssh(&normalised).map_err(|e| format!("not a valid {first} public key: {e}"))
}

/// True when the line's first field is an options list followed by a key type.
fn starts_with_options(line: &str) -> bool {
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            c if c.is_whitespace() && !in_quotes => {
                let rest = line[i..].trim_start();
                let next = rest.split_whitespace().next().unwrap_or_default();
                return Algorithm::from_str(next).is_ok();
            }
            _ => {}
        }
    }
    false
}

/// Keys parsed from `authorized_keys` text, and a description of each bad
/// line (by line number; never the line itself).
#[derive(Debug, Default)]
pub(crate) struct AuthorizedKeys {
    pub keys: Vec<PublicKey>,
    pub problems: Vec<String>,
}

/// Parses `authorized_keys` text: one key per line ([`parse_public_key`]);
/// blank lines and `#` comments are skipped; every bad line is reported as
/// `line N: <why>`, and the good ones are kept.
pub(crate) fn parse_authorized_keys(text: &str) -> AuthorizedKeys {
    let mut out = AuthorizedKeys::default();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match parse_public_key(line) {
            Ok(key) => out.keys.push(key),
            Err(e) => out.problems.push(format!("line {}: {e}", n + 1)),
        }
    }
    out
}

/// Decodes an unencrypted private key from its text; `what` names where it
/// came from in the error, which never quotes the text.
pub(crate) fn decode_identity(text: &str, what: &str) -> Result<PrivateKey, String> {
    match russh::keys::decode_secret_key(text, None) {
        Ok(key) => Ok(key),
        Err(russh::keys::Error::KeyIsEncrypted) => Err(format!(
            "{what} is encrypted with a passphrase; the gateway needs an unencrypted key \
             (ssh-keygen -p -N '' -f FILE on a copy)"
        )),
        // The decoder's messages could echo parts of the file: say only what kind of failure.
        Err(russh::keys::Error::UnsupportedKeyType { .. }) => Err(format!(
            "{what} holds a key type the gateway does not support"
        )),
        Err(_) => Err(format!(
            "{what} is not a private key the gateway can read (OpenSSH, PKCS#8 or PEM expected)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPy79bNUuWn+Hzm/i/zTG1Hj9xvS6X51TAd4Et/u9VRb";

    #[test]
    fn public_key_lines() {
        assert!(parse_public_key(KEY).is_ok());
        let key =
            parse_public_key(&format!("  {KEY}\tbob at laptop  ")).expect("comment with spaces");
        assert_eq!(key.comment().as_str_lossy(), "bob at laptop");
        assert!(parse_public_key(&format!("{KEY} c")).is_ok());
    }

    #[test]
    fn bad_public_key_lines() {
        let cases = [
            ("", "empty"),
            ("ssh-ed25519", "no base64"),
            ("ssh-ed25519 AAAA", "not a valid"),
            (
                "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIPy79bNUuWn+Hzm/i/zTG1Hj9xvS6X51TAd4Et/u9VRb",
                "not a valid",
            ),
            ("hello world", "unknown key type"),
            ("ssh-ed25519-cert-v01@openssh.com AAAA", "certificates"),
        ];
        for (line, want) in cases {
            let err = parse_public_key(line).expect_err(line);
            assert!(err.contains(want), "{line:?}: {err}");
        }
    }

    #[test]
    fn authorized_keys_text_skips_comments_and_numbers_bad_lines() {
        let text = format!("# team\n\n  {KEY} a\n\tgarbage here\n#{KEY}\n{KEY} b\n");
        let parsed = parse_authorized_keys(&text);
        assert_eq!(parsed.keys.len(), 2);
        assert_eq!(parsed.problems.len(), 1, "{:?}", parsed.problems);
        assert!(
            parsed.problems[0].starts_with("line 4: unknown key type"),
            "{:?}",
            parsed.problems
        );
        assert!(parse_authorized_keys("").keys.is_empty());
    }

    #[test]
    fn options_are_refused_clearly() {
        for prefix in [
            "restrict",
            "from=\"10.0.0.0/8\"",
            "command=\"echo a b\",no-pty",
            "no-pty",
        ] {
            let err = parse_public_key(&format!("{prefix} {KEY} c")).expect_err(prefix);
            assert!(err.contains("options"), "{prefix}: {err}");
        }
    }
}
