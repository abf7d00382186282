//! Tunnel tokens (`[http_tunnel] auth = "token"`): the token a credential
//! header carries (its check against the route's digest is `access::tunnel`).
//!
//! Accepted forms, in `Proxy-Authorization` or `Authorization`:
//! `Bearer <token>` and `Basic base64(<anything>:<token>)` (the token as the
//! password, so `proxytunnel -P user:TOKEN` and curl's `-U` work).

use russh::keys::ssh_encoding::base64::{Base64, Base64Unpadded, Encoding};
use zeroize::Zeroizing;

/// The token in one credential header value; `None` for another scheme, an
/// empty token, or a `Basic` value that is not base64 of `user:password`.
pub fn token_of(value: &str) -> Option<Zeroizing<Vec<u8>>> {
    let value = value.trim();
    let (scheme, rest) = value.split_once([' ', '\t'])?;
    let rest = rest.trim();
    let token = if scheme.eq_ignore_ascii_case("bearer") {
        Zeroizing::new(rest.as_bytes().to_vec())
    } else if scheme.eq_ignore_ascii_case("basic") {
        let decoded = Zeroizing::new(decode_base64(rest)?);
        let colon = decoded.iter().position(|&b| b == b':')?;
        Zeroizing::new(decoded[colon + 1..].to_vec())
    } else {
        return None;
    };
    (!token.is_empty()).then_some(token)
}

/// Standard base64 (RFC 4648 §4), padded or not: what `Basic` credentials
/// and `Sec-WebSocket-Key` use. Decoded by RustCrypto's constant-time
/// `base64ct`, which russh already depends on.
pub fn decode_base64(text: &str) -> Option<Vec<u8>> {
    Base64::decode_vec(text)
        .or_else(|_| Base64Unpadded::decode_vec(text))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user_pass: &str) -> String {
        format!("Basic {}", Base64::encode_string(user_pass.as_bytes()))
    }

    #[test]
    fn bearer_and_basic_carry_the_token() {
        let t = |v: &str| token_of(v).map(|t| t.to_vec());
        assert_eq!(t("Bearer s3cret"), Some(b"s3cret".to_vec()));
        assert_eq!(t("bearer   s3cret  "), Some(b"s3cret".to_vec()));
        assert_eq!(t(&basic("alice:s3cret")), Some(b"s3cret".to_vec()));
        assert_eq!(t(&basic(":s3cret")), Some(b"s3cret".to_vec()));
        // Only the first colon splits: the password may contain colons.
        assert_eq!(t(&basic("u:a:b")), Some(b"a:b".to_vec()));
        let unpadded = format!("BASIC {}", Base64Unpadded::encode_string(b"u:tok"));
        assert_eq!(t(&unpadded), Some(b"tok".to_vec()));
    }

    #[test]
    fn other_schemes_and_empty_tokens_carry_nothing() {
        for v in [
            "",
            "Bearer",
            "Bearer ",
            "Digest username=x",
            "s3cret",
            "Basic !!!notbase64",
            &basic("no-colon"),
            &basic("user:"),
        ] {
            assert!(token_of(v).is_none(), "{v:?}");
        }
    }
}
