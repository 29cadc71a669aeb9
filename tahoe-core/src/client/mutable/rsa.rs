//! A mutable file's RSA keys: the signing key (its write authority) and
//! the verifying key every share carries.
//!
//! Signatures are RSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt, as
//! Tahoe signs (`allmydata/crypto/rsa.py`, kept from pycryptopp); a
//! signature with any other salt length is refused, as Tahoe refuses it.
//!
//! Two audited libraries share the work. `ring` (BoringSSL's constant-time
//! RSA, already our TLS and Ed25519 library) signs and verifies: its
//! RSA-PSS-SHA256 uses a salt of the digest's length, which is exactly
//! Tahoe's 32 bytes, and it is several times faster than the alternatives.
//! ring cannot generate RSA keys or re-encode one, so the `rsa` crate (the
//! RustCrypto implementation, publicly audited) generates keys and writes
//! their canonical PKCS#8 and SubjectPublicKeyInfo DER, which the write key
//! and fingerprint hash. The rsa crate's known weakness (RUSTSEC-2023-0071,
//! timing of its private-key operation) does not arise: it never signs or
//! decrypts here. Key generation is slow (hundreds of milliseconds), hence
//! [`KeyPool`](super::key_pool::KeyPool).

use ring::rand::SystemRandom;
use ring::signature::{RSA_PSS_2048_8192_SHA256, RSA_PSS_SHA256, RsaKeyPair, UnparsedPublicKey};
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPublicKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format::cap::SskWriteCap;
use crate::format::hash::Hash;
use crate::format::ssk::MutableFormat;
use crate::format::ssk::keys::{fingerprint, write_key};

/// The size of keys Tahoe-LAFS makes, and we make.
const KEY_BITS: usize = 2048;
/// Verification keys outside this range are refused (they come from
/// shares; a huge one would only cost time to check).
const MIN_KEY_BITS: usize = 2048;
/// See [`MIN_KEY_BITS`].
const MAX_KEY_BITS: usize = 4096;

/// Tahoe's PSS salt length (pycryptopp's, which Tahoe keeps): SHA-256's
/// length, which is what ring's RSA-PSS-SHA256 uses (a test checks it).
#[cfg(test)]
const PSS_SALT_LEN: usize = 32;

/// Refuse keys outside [`MIN_KEY_BITS`]..=[`MAX_KEY_BITS`].
fn check_bits(which: &str, bits: usize) -> Result<()> {
    if !(MIN_KEY_BITS..=MAX_KEY_BITS).contains(&bits) {
        return Err(Error::invalid_input(format!(
            "{which} key has {bits} bits; {MIN_KEY_BITS} to {MAX_KEY_BITS} are accepted"
        )));
    }
    Ok(())
}

/// A verification key, as carried in every share.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifyingKey {
    key: RsaPublicKey,
    der: Vec<u8>,
    /// The PKCS#1 RSAPublicKey, as ring verifies with it.
    pkcs1: Vec<u8>,
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VerifyingKey({} bits)", self.key.n().bits())
    }
}

impl VerifyingKey {
    /// Parse a SubjectPublicKeyInfo DER. The bytes must be the canonical
    /// encoding of the key they hold (so that the fingerprint of what was
    /// parsed is the fingerprint of these bytes).
    pub fn from_der(der: &[u8]) -> Result<Self> {
        let key = RsaPublicKey::from_public_key_der(der)
            .map_err(|e| Error::corrupt(format!("verification key does not parse: {e}")))?;
        check_bits("verification", key.n().bits()).map_err(|e| Error::corrupt(e.message()))?;
        let canonical = key
            .to_public_key_der()
            .map_err(|e| Error::corrupt(format!("verification key: {e}")))?;
        if canonical.as_bytes() != der {
            return Err(Error::corrupt(
                "verification key is not in canonical DER".to_string(),
            ));
        }
        Self::with_der(key, der.to_vec())
    }

    fn with_der(key: RsaPublicKey, der: Vec<u8>) -> Result<Self> {
        let pkcs1 = key
            .to_pkcs1_der()
            .map_err(|e| Error::internal(format!("encoding a public key: {e}")))?
            .as_bytes()
            .to_vec();
        Ok(VerifyingKey { key, der, pkcs1 })
    }

    /// The SubjectPublicKeyInfo DER.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The fingerprint caps carry.
    pub fn fingerprint(&self) -> Hash {
        fingerprint(&self.der)
    }

    /// Check a Tahoe signature (RSA-PSS-SHA256, 32-byte salt) of `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<()> {
        UnparsedPublicKey::new(&RSA_PSS_2048_8192_SHA256, &self.pkcs1)
            .verify(message, signature)
            .map_err(|_| Error::corrupt("signature does not verify".to_string()))
    }
}

/// The signing key of a mutable file (the whole write authority).
#[derive(Clone)]
pub struct SigningKey {
    key: RsaPrivateKey,
    der: Arc<Vec<u8>>,
    public: VerifyingKey,
    signer: Arc<RsaKeyPair>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({} bits, <secret>)", self.key.n().bits())
    }
}

impl SigningKey {
    fn from_key(key: RsaPrivateKey) -> Result<Self> {
        check_bits("signing", key.n().bits())?;
        let der = key
            .to_pkcs8_der()
            .map_err(|e| Error::internal(format!("encoding a private key: {e}")))?;
        let public_der = key
            .to_public_key()
            .to_public_key_der()
            .map_err(|e| Error::internal(format!("encoding a public key: {e}")))?;
        let signer = RsaKeyPair::from_pkcs8(der.as_bytes())
            .map_err(|e| Error::invalid_input(format!("RSA key refused for signing: {e}")))?;
        Ok(SigningKey {
            public: VerifyingKey::with_der(key.to_public_key(), public_der.as_bytes().to_vec())?,
            der: Arc::new(der.as_bytes().to_vec()),
            signer: Arc::new(signer),
            key,
        })
    }

    /// A fresh 2048-bit key (slow: use a [`KeyPool`](super::key_pool::KeyPool)).
    pub fn generate() -> Result<Self> {
        let key = RsaPrivateKey::new(&mut rand_core::OsRng, KEY_BITS)
            .map_err(|e| Error::internal(format!("generating an RSA key: {e}")))?;
        Self::from_key(key)
    }

    /// Parse a PEM private key, PKCS#8 (`BEGIN PRIVATE KEY`) or PKCS#1
    /// (`BEGIN RSA PRIVATE KEY`).
    pub fn from_pem(pem: &str) -> Result<Self> {
        let key = if pem.contains("BEGIN RSA PRIVATE KEY") {
            RsaPrivateKey::from_pkcs1_pem(pem)
                .map_err(|e| Error::invalid_input(format!("PKCS#1 private key: {e}")))?
        } else {
            RsaPrivateKey::from_pkcs8_pem(pem)
                .map_err(|e| Error::invalid_input(format!("PKCS#8 private key: {e}")))?
        };
        Self::from_key(key)
    }

    /// Parse a PKCS#8 DER private key (as decrypted from a share). The
    /// bytes must be the canonical encoding, so that their write key is the
    /// key's.
    pub fn from_der(der: &[u8]) -> Result<Self> {
        let key = RsaPrivateKey::from_pkcs8_der(der)
            .map_err(|e| Error::corrupt(format!("private key does not parse: {e}")))?;
        let me = Self::from_key(key)?;
        if me.der.as_slice() != der {
            return Err(Error::corrupt(
                "private key is not in canonical DER".to_string(),
            ));
        }
        Ok(me)
    }

    /// The PKCS#8 DER Tahoe hashes and stores (encrypted) in shares.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The PKCS#8 PEM, for `tahoe debug` and key files.
    pub fn to_pem(&self) -> Result<String> {
        let pem = self
            .key
            .to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)
            .map_err(|e| Error::internal(format!("encoding a private key: {e}")))?;
        Ok(pem.as_str().to_string())
    }

    /// The verification key.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.public
    }

    /// The write key.
    pub fn write_key(&self) -> [u8; 16] {
        write_key(&self.der)
    }

    /// The write cap of the file this key signs, in `format`.
    pub fn write_cap(&self, format: MutableFormat) -> SskWriteCap {
        SskWriteCap::from_key(format, &self.der, self.public.der())
    }

    /// The length of this key's signatures (its modulus in bytes).
    pub fn signature_len(&self) -> usize {
        self.key.size()
    }

    /// Sign `message` as Tahoe does (RSA-PSS-SHA256, 32-byte salt).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        let mut sig = vec![0u8; self.signer.public().modulus_len()];
        self.signer
            .sign(&RSA_PSS_SHA256, &SystemRandom::new(), message, &mut sig)
            .map_err(|e| Error::internal(format!("signing: {e}")))?;
        Ok(sig)
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_and_tampering_is_caught() {
        let key = SigningKey::generate().expect("keygen");
        let sig = key.sign(b"prefix").expect("sign");
        assert_eq!(sig.len(), 256);
        let vk = VerifyingKey::from_der(key.verifying_key().der()).expect("vk");
        vk.verify(b"prefix", &sig).expect("verifies");
        assert!(vk.verify(b"prefiy", &sig).is_err());
        let mut bad = sig.clone();
        bad[10] ^= 1;
        assert!(vk.verify(b"prefix", &bad).is_err());
        // A PSS signature with another salt length (not Tahoe's) is
        // refused, and one with Tahoe's from another implementation passes.
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(b"prefix");
        let sign_with = |salt: usize| {
            key.key
                .sign_with_rng(
                    &mut rand_core::OsRng,
                    rsa::Pss::new_with_salt::<Sha256>(salt),
                    &digest,
                )
                .expect("sign")
        };
        assert!(vk.verify(b"prefix", &sign_with(222)).is_err());
        assert!(vk.verify(b"prefix", &sign_with(20)).is_err());
        vk.verify(b"prefix", &sign_with(PSS_SALT_LEN))
            .expect("Tahoe's salt length");
        // The DER round trips and gives the same write key.
        let again = SigningKey::from_der(key.der()).expect("der");
        assert_eq!(again.write_key(), key.write_key());
        let pem = key.to_pem().expect("pem");
        assert_eq!(
            SigningKey::from_pem(&pem).expect("pem").write_key(),
            key.write_key()
        );
        assert!(!format!("{key:?}").contains(&crate::base32::encode(&key.write_key())));
    }
}
