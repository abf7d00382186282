//! Key material as text, shared by every route source: OpenSSH public key
//! lines, `authorized_keys` text, and the gateway's private identity.
//!
//! Error messages here describe the problem and never include private key
//! material: private-key decoding errors are mapped to fixed texts.

use std::str::FromStr;

use russh::keys::ssh_key::Algorithm;
use russh::keys::{PrivateKey, PublicKey};

use super::CertAuthority;
use crate::config::text::quote;

/// Longest principal name accepted in a route (OpenSSH has no limit; a
/// login name is far shorter).
const MAX_PRINCIPAL_LEN: usize = 256;

/// One `authorized_keys` line: a client key, or a CA whose user
/// certificates the route accepts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum AuthorizedLine {
    Key(PublicKey),
    Authority(CertAuthority),
}

/// Parses an `authorized_keys` line: a public key ([`parse_public_key`]),
/// or `cert-authority[,principals="a,b"] <CA key>` (the only options the
/// gateway enforces; any other option is refused, as for a key).
pub(crate) fn parse_authorized_line(line: &str) -> Result<AuthorizedLine, String> {
    let line = line.trim();
    if !starts_with_options(line) {
        return parse_public_key(line).map(AuthorizedLine::Key);
    }
    let (options, key) = split_options(line);
    let mut cert_authority = false;
    let mut principals = None;
    for option in split_unquoted(options, ',') {
        if option.eq_ignore_ascii_case("cert-authority") {
            cert_authority = true;
        } else if let Some(value) = option
            .strip_prefix("principals=")
            .or_else(|| option.strip_prefix("PRINCIPALS="))
        {
            principals = Some(parse_principals_option(value)?);
        } else {
            return Err(unsupported_options());
        }
    }
    if !cert_authority {
        return Err(unsupported_options());
    }
    let key = parse_public_key(key).map_err(|e| format!("cert-authority key: {e}"))?;
    Ok(AuthorizedLine::Authority(CertAuthority { key, principals }))
}

/// `principals="a,b"`: a quoted, comma-separated list of principal names.
fn parse_principals_option(value: &str) -> Result<Vec<String>, String> {
    let Some(inner) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) else {
        return Err("principals= takes a quoted list: principals=\"alice,bob\"".to_owned());
    };
    let inner = inner.replace("\\\"", "\"");
    inner
        .split(',')
        .map(|p| check_principal(p.trim()).map(|()| p.trim().to_owned()))
        .collect()
}

/// A certificate principal as a route names it: not empty, no commas,
/// whitespace, quotes or control characters, at most
/// [`MAX_PRINCIPAL_LEN`] bytes.
pub(crate) fn check_principal(principal: &str) -> Result<(), String> {
    let bad = principal.is_empty()
        || principal.len() > MAX_PRINCIPAL_LEN
        || principal
            .chars()
            .any(|c| c == ',' || c == '"' || c.is_whitespace() || c.is_control());
    if bad {
        return Err(format!(
            "{} is not a certificate principal (a non-empty name without commas, quotes, \
             spaces or control characters, at most {MAX_PRINCIPAL_LEN} bytes)",
            quote(principal)
        ));
    }
    Ok(())
}

fn unsupported_options() -> String {
    "authorized_keys options (restrict, from=, command=, …) are not supported by the gateway; \
     remove them and use the route's [route.forwarding] switches (only \
     cert-authority[,principals=\"…\"] is accepted)"
        .to_owned()
}

/// Splits an options line at the first whitespace outside quotes: (the
/// options, the key that follows).
fn split_options(line: &str) -> (&str, &str) {
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            c if c.is_whitespace() && !in_quotes => return (&line[..i], line[i..].trim_start()),
            _ => {}
        }
    }
    (line, "")
}

/// Splits `text` at every `sep` outside double quotes.
fn split_unquoted(text: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut in_quotes, mut escaped) = (0, false, false);
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            c if c == sep && !in_quotes => {
                parts.push(&text[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

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
    let (_, rest) = split_options(line);
    rest.split_whitespace()
        .next()
        .is_some_and(|next| Algorithm::from_str(next).is_ok())
}

/// Keys parsed from `authorized_keys` text, and a description of each bad
/// line (by line number; never the line itself).
#[derive(Debug, Default)]
pub(crate) struct AuthorizedKeys {
    pub keys: Vec<PublicKey>,
    /// `cert-authority` lines.
    pub authorities: Vec<CertAuthority>,
    pub problems: Vec<String>,
}

/// Parses `authorized_keys` text: one key or `cert-authority` line per
/// line ([`parse_authorized_line`]);
/// blank lines and `#` comments are skipped; every bad line is reported as
/// `line N: <why>`, and the good ones are kept.
pub(crate) fn parse_authorized_keys(text: &str) -> AuthorizedKeys {
    let mut out = AuthorizedKeys::default();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match parse_authorized_line(line) {
            Ok(AuthorizedLine::Key(key)) => out.keys.push(key),
            Ok(AuthorizedLine::Authority(ca)) => out.authorities.push(ca),
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
    fn cert_authority_lines() {
        let plain = parse_authorized_line(&format!("cert-authority {KEY} ca")).expect("plain");
        let AuthorizedLine::Authority(ca) = plain else {
            panic!("not an authority")
        };
        assert_eq!(ca.principals, None);
        let listed = parse_authorized_line(&format!(
            "cert-authority,principals=\"alice, bob\" {KEY} ca"
        ))
        .expect("principals");
        let AuthorizedLine::Authority(ca) = listed else {
            panic!("not an authority")
        };
        assert_eq!(ca.principals, Some(vec!["alice".into(), "bob".into()]));
        let text = format!("{KEY} a\ncert-authority {KEY} b\n");
        let parsed = parse_authorized_keys(&text);
        assert_eq!((parsed.keys.len(), parsed.authorities.len()), (1, 1));
        for (bad, want) in [
            (format!("principals=\"a\" {KEY}"), "options"),
            (format!("cert-authority,no-pty {KEY}"), "options"),
            (format!("cert-authority,principals=a {KEY}"), "quoted"),
            (
                format!("cert-authority,principals=\"a,,b\" {KEY}"),
                "principal",
            ),
            (
                "cert-authority ssh-ed25519 AAAA".to_owned(),
                "cert-authority key",
            ),
        ] {
            let err = parse_authorized_line(&bad).expect_err(&bad);
            assert!(err.contains(want), "{bad}: {err}");
        }
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
