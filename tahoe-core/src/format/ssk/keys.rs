//! The keys of a mutable file and how every other secret follows from them:
//! the derivations, pure hashing (the RSA keys are `client::mutable::rsa`).
//!
//! ```text
//! RSA-2048 signing key ──DER (PKCS#8)──▶ write key = H(WRITEKEY, der)[..16]
//!        │                                   │
//!        │                                   ├─▶ read key = H(READKEY, write key)[..16]
//!        │                                   │      ├─▶ storage index = H(SI, read key)[..16]
//!        │                                   │      └─▶ data key = H(DATAKEY, salt, read key)[..16]
//!        │                                   ├─▶ write enabler per server (secrets::write_enabler)
//!        │                                   └─▶ encrypted private key = AES-CTR(write key, der)
//!        └─▶ verification key ──DER (SPKI)──▶ fingerprint = H(PUBKEY, der)
//! ```
//!
//! `H` is Tahoe's tagged SHA-256d with its own tags, so the caps made here
//! are the ones Tahoe-LAFS makes from the same key (the test vectors check
//! it). Signatures are RSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte
//! salt, as Tahoe signs (`allmydata/crypto/rsa.py`, kept from pycryptopp);
//! a signature with any other salt length is refused, as Tahoe refuses it.
//!

use crate::error::Result;
use crate::format::hash::{Hash, tagged_hash, tagged_pair_hash};
use crate::kinds::cipher::Cipher;
use crate::kinds::storage::StorageIndex;

/// Tahoe-LAFS's tags for mutable-file keys (`allmydata/util/hashutil.py`).
mod tags {
    /// Private key → write key.
    pub(super) const WRITEKEY: &[u8] = b"allmydata_mutable_privkey_to_writekey_v1";
    /// Verification key → fingerprint.
    pub(super) const PUBKEY: &[u8] = b"allmydata_mutable_pubkey_to_fingerprint_v1";
    /// Write key → read key.
    pub(super) const READKEY: &[u8] = b"allmydata_mutable_writekey_to_readkey_v1";
    /// Salt and read key → data key.
    pub(super) const DATAKEY: &[u8] = b"allmydata_mutable_readkey_to_datakey_v1";
    /// Read key → storage index.
    pub const STORAGE_INDEX: &[u8] = b"allmydata_mutable_readkey_to_storage_index_v1";
}

fn truncated16(h: Hash) -> [u8; 16] {
    let mut out = [0u8; 16];
    out.copy_from_slice(&h[..16]);
    out
}

/// The write key of the private key whose PKCS#8 DER is `private_der`.
pub fn write_key(private_der: &[u8]) -> [u8; 16] {
    truncated16(tagged_hash(tags::WRITEKEY, private_der))
}

/// The read key that goes with a write key.
pub fn read_key(write_key: &[u8; 16]) -> [u8; 16] {
    truncated16(tagged_hash(tags::READKEY, write_key))
}

/// The storage index that goes with a read key.
pub fn storage_index(read_key: &[u8; 16]) -> StorageIndex {
    StorageIndex(truncated16(tagged_hash(tags::STORAGE_INDEX, read_key)))
}

/// The fingerprint of a verification key (SubjectPublicKeyInfo DER).
pub fn fingerprint(public_der: &[u8]) -> Hash {
    tagged_hash(tags::PUBKEY, public_der)
}

/// The AES key of the data encrypted under `salt` (the SDMF IV, or one
/// MDMF segment's salt).
pub fn data_key(salt: &[u8; 16], read_key: &[u8; 16]) -> [u8; 16] {
    truncated16(tagged_pair_hash(tags::DATAKEY, salt, read_key))
}

/// AES-128-CTR from counter 0 under `key`, in place (encrypts and decrypts).
pub fn apply_ctr(cipher: &dyn Cipher, key: &[u8; 16], data: &mut [u8]) -> Result<()> {
    cipher.apply_keystream(key, 0, data)
}
