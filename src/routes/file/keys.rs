//! Keys a route refers to: OpenSSH public key lines, `authorized_keys` files,
//! and the gateway's private identity for the box.
//!
//! Error messages here describe the problem and never include private key
//! material: private-key decoding errors are mapped to fixed texts.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::str::FromStr;

use russh::keys::ssh_key::Algorithm;
use russh::keys::{PrivateKey, PublicKey};
use zeroize::Zeroizing;

use super::MAX_FILE_LEN;
use super::raw::quote;

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

/// Reads an `authorized_keys`-style file: one key per line; blank lines and
/// `#` comments are skipped. Every bad line is reported, by line number.
pub(super) fn read_authorized_keys(path: &Path) -> Result<Vec<PublicKey>, String> {
    let bytes = read_bounded(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let text =
        String::from_utf8(bytes).map_err(|_| format!("{} is not UTF-8 text", path.display()))?;
    let mut keys = Vec::new();
    let mut problems = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match parse_public_key(line) {
            Ok(key) => keys.push(key),
            Err(e) => problems.push(format!("line {}: {e}", n + 1)),
        }
    }
    if problems.is_empty() {
        Ok(keys)
    } else {
        Err(format!("{}: {}", path.display(), problems.join("; ")))
    }
}

/// Loads the unencrypted private key the gateway logs in to the box with.
/// (`russh::keys::load_secret_key` minus the unbounded read; the text is wiped
/// from memory once decoded.)
pub(super) fn load_identity(path: &Path) -> Result<PrivateKey, String> {
    let bytes = Zeroizing::new(
        read_bounded(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?,
    );
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| format!("{} is not a private key file", path.display()))?;
    decode_identity(text, &path.display().to_string())
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

/// Reads a regular file of at most [`MAX_FILE_LEN`] bytes. Devices, FIFOs and
/// directories are refused so a wrong path cannot block or exhaust the loader.
pub(crate) fn read_bounded(path: &Path) -> io::Result<Vec<u8>> {
    let file = File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    if meta.len() > MAX_FILE_LEN {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_LEN + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_LEN {
        return Err(too_large());
    }
    Ok(bytes)
}

fn too_large() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("larger than {MAX_FILE_LEN} bytes"),
    )
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
