//! Sealing a child's write cap: encrypted and MACed under the directory's
//! write key, so that a read-only holder of the directory sees names, read
//! caps and metadata but no write cap.

use crate::format::dirnode::ChildCap;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format::hash::{tagged_hash, tagged_pair_hash};
use crate::kinds::cipher::Cipher;

/// Hash tags of the encrypted write caps.
mod tags {
    /// Salt, writekey → the key of one child's write cap.
    pub(super) const CHILD_WRITECAP: &[u8] =
        b"allmydata_mutable_writekey_and_salt_to_dirnode_child_capkey_v1";
    /// Write cap → its salt.
    pub(super) const CHILD_SALT: &[u8] = b"allmydata_dirnode_child_rwcap_to_salt_v1";
}

pub(super) const SALT_LEN: usize = 16;
pub(super) const MAC_LEN: usize = 32;

/// The key that seals and unseals the children's write caps: the
/// directory's write key (which only its write cap yields) and AES-CTR.
#[derive(Clone)]
pub struct WriteKey {
    /// The directory file's write key.
    pub key: [u8; 16],
    /// AES-128-CTR.
    pub cipher: Arc<dyn Cipher>,
}

impl WriteKey {
    pub(super) fn child_key(&self, salt: &[u8]) -> [u8; 16] {
        truncate16(tagged_pair_hash(tags::CHILD_WRITECAP, salt, &self.key))
    }

    /// `salt || AES-CTR(key, cap) || mac`, deterministic in the cap.
    pub(super) fn seal(&self, cap: &str) -> Result<Vec<u8>> {
        let salt = truncate16(tagged_hash(tags::CHILD_SALT, cap.as_bytes()));
        let key = self.child_key(&salt);
        let mut out = Vec::with_capacity(SALT_LEN + cap.len() + MAC_LEN);
        out.extend_from_slice(&salt);
        out.extend_from_slice(cap.as_bytes());
        self.cipher.apply_keystream(&key, 0, &mut out[SALT_LEN..])?;
        let mac = tahoe_hmac(&key, &out);
        out.extend_from_slice(&mac);
        Ok(out)
    }

    /// The write cap in a sealed field, its MAC checked.
    pub(super) fn unseal(&self, sealed: &[u8]) -> Result<Option<ChildCap>> {
        let (salt, rest) = sealed.split_at(SALT_LEN);
        let (crypt, mac) = rest.split_at(rest.len() - MAC_LEN);
        let key = self.child_key(salt);
        if tahoe_hmac(&key, &sealed[..sealed.len() - MAC_LEN]) != mac {
            return Err(Error::corrupt(
                "its write cap's MAC does not match: the entry was damaged or forged",
            ));
        }
        let mut plain = crypt.to_vec();
        self.cipher.apply_keystream(&key, 0, &mut plain)?;
        let text = String::from_utf8(plain)
            .map_err(|_| Error::corrupt("its write cap decrypts to something other than text"))?;
        ChildCap::parse(&text).map_err(|e| e.context("its write cap"))
    }
}

/// The first 16 bytes of a hash.
pub(super) fn truncate16(h: [u8; 32]) -> [u8; 16] {
    let mut out = [0u8; 16];
    out.copy_from_slice(&h[..16]);
    out
}

/// Tahoe-LAFS's `hashutil.hmac`: HMAC-SHA256's two nested hashes, with
/// the key XORed with the pads as it is (not padded to a block first).
pub(super) fn tahoe_hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let pad = |b: u8| key.iter().map(|k| k ^ b).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(data)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}
