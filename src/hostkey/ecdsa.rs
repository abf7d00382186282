//! The gateway's ECDSA P-256 host key, derived from the same seed as the
//! Ed25519 one with its own HKDF label, for clients restricted to
//! `ecdsa-sha2-nistp256` (older embedded clients, Java libraries,
//! `HostKeyAlgorithms` policies). Same seed, same key, on every replica.

use hkdf::Hkdf;
use russh::keys::PrivateKey;
use russh::keys::ssh_key::private::{EcdsaKeypair, KeypairData};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::SALT;

/// HKDF info for the ECDSA key: names the product and the key's purpose, so
/// it is independent of the Ed25519 key ([`super::INFO`]) and of any other
/// key the seed derives. Attempt `i` appends the byte `i` (see [`derive_ecdsa`]).
const INFO: &[u8] = b"switchboard ecdsa-p256 host key";

/// Derives the ECDSA P-256 host key from `seed`: HKDF-SHA256 (salt
/// [`SALT`], info [`INFO`] followed by one counter byte, 0 first) → 32
/// bytes, read big-endian as the secret scalar; a value that is zero or not
/// below the group order n (probability about 2⁻³²) is rejected and the
/// next counter tried. Rejection sampling, not reduction modulo n, so the
/// scalar is uniform; anyone can recompute the key from the seed with any
/// HKDF and P-256 library.
pub fn derive_ecdsa(seed: &[u8]) -> PrivateKey {
    let hkdf = Hkdf::<Sha256>::new(Some(SALT), seed);
    for counter in 0..=u8::MAX {
        let mut info = INFO.to_vec();
        info.push(counter);
        let mut okm = Zeroizing::new([0u8; 32]);
        // Infallible: HKDF-SHA256 can expand up to 255 * 32 bytes; we ask for 32.
        hkdf.expand(&info, okm.as_mut())
            .expect("32 bytes is a valid HKDF-SHA256 length");
        if let Ok(secret) = p256::SecretKey::from_slice(okm.as_ref()) {
            let public = secret.public_key();
            let keypair = EcdsaKeypair::NistP256 {
                public: public.into(),
                private: secret.into(),
            };
            // Infallible: the public key was computed from this private key.
            let mut key = PrivateKey::new(KeypairData::Ecdsa(keypair), "switchboard")
                .expect("a P-256 keypair is a valid private key");
            key.set_comment("switchboard");
            return key;
        }
    }
    // 256 rejections in a row: probability about 2^(-32*256), i.e. never.
    unreachable!("HKDF produced 256 invalid P-256 scalars in a row")
}

#[cfg(test)]
mod tests {
    use russh::keys::{Algorithm, EcdsaCurve, HashAlg};

    use super::*;

    const SEED: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn same_seed_same_key_other_seed_other_key() {
        let a = derive_ecdsa(SEED);
        assert_eq!(
            a.algorithm(),
            Algorithm::Ecdsa {
                curve: EcdsaCurve::NistP256
            }
        );
        assert_eq!(a.public_key(), derive_ecdsa(SEED).public_key());
        let b = derive_ecdsa(b"0123456789abcdef0123456789abcdeF");
        assert_ne!(a.public_key(), b.public_key());
    }

    #[test]
    fn independent_of_the_ed25519_key() {
        // Not the same secret bytes under another curve: another HKDF label.
        let ed = super::super::derive(SEED);
        let ec = derive_ecdsa(SEED);
        let (KeypairData::Ed25519(ed), KeypairData::Ecdsa(ec)) = (ed.key_data(), ec.key_data())
        else {
            panic!("unexpected key types");
        };
        assert_ne!(ed.private.as_ref(), ec.private_key_bytes());
    }

    #[test]
    fn known_public_key_is_stable() {
        // Changing SALT, INFO or the derivation changes every deployed ECDSA
        // host key. Computed independently with Python: RFC 5869 HKDF
        // (hmac, hashlib) with info b"switchboard ecdsa-p256 host key\x00",
        // then `cryptography`'s derive_private_key(int(okm), SECP256R1()).
        let key = derive_ecdsa(SEED);
        let mut public = key.public_key().clone();
        public.set_comment("");
        assert_eq!(
            public.to_openssh().expect("encodes"),
            "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBI8+vEAOww0shHPw1bwGXvF9\
             rPYNphRGvWswN2VeU/Dt+MYzq3DcrRjC7UzJOFN3dj5sUd3erCah/7XwXGPJ6dw="
        );
        assert_eq!(
            key.public_key().fingerprint(HashAlg::Sha256).to_string(),
            "SHA256:JIDKDWq2amndGS17PucKxvRmuvoqYSkd0c+N94Sb8Wo"
        );
    }
}
