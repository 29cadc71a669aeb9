//! Tahoe's hashes: SHA-256d with tagged inputs.
//!
//! Every hash in the formats is `SHA256(SHA256(netstring(tag) || data))`
//! (SHA-256d, immune to length extension), with a distinct tag per purpose
//! so that a value hashed for one purpose can never stand in for another.
//! The tags are part of the format: changing one changes every cap.

use tahoe_sha256x::Sha256;

/// The length of every hash in the formats.
pub const HASH_LEN: usize = 32;

/// A 32-byte hash value.
pub type Hash = [u8; HASH_LEN];

/// Tags, exactly as Tahoe-LAFS spells them.
pub mod tags {
    /// Encryption key → storage index (immutable files).
    pub const STORAGE_INDEX: &[u8] = b"allmydata_immutable_key_to_storage_index_v1";
    /// An erasure-coded block.
    pub const BLOCK: &[u8] = b"allmydata_encoded_subshare_v1";
    /// The URI extension block.
    pub const UEB: &[u8] = b"allmydata_uri_extension_v1";
    /// The whole ciphertext.
    pub const CIPHERTEXT: &[u8] = b"allmydata_crypttext_v1";
    /// One ciphertext segment.
    pub const CIPHERTEXT_SEGMENT: &[u8] = b"allmydata_crypttext_segment_v1";
    /// Prefix of the convergent-encryption tag.
    pub(super) const CONVERGENT_ENCRYPTION: &[u8] =
        b"allmydata_immutable_content_to_key_with_added_secret_v1+";
    /// Padding leaves of Merkle trees.
    pub const MERKLE_EMPTY_LEAF: &[u8] = b"Merkle tree empty leaf";
    /// Interior nodes of Merkle trees.
    pub const MERKLE_INTERNAL: &[u8] = b"Merkle tree internal node";
}

/// `len:data,` — Tahoe's netstring.
pub fn netstring(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 12);
    out.extend_from_slice(data.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(data);
    out.push(b',');
    out
}

/// An incremental tagged SHA-256d hasher.
#[derive(Clone)]
pub struct TaggedHasher {
    inner: Sha256,
}

impl TaggedHasher {
    /// Start a hash under `tag`.
    pub fn new(tag: &[u8]) -> Self {
        let mut inner = Sha256::new();
        inner.update(&netstring(tag));
        TaggedHasher { inner }
    }

    /// Feed data.
    pub fn update(&mut self, data: &[u8]) {
        self.inner.update(data);
    }

    /// Feed `data[i]` to `hashers[i]`, side by side where the CPU allows.
    pub fn update_many(hashers: &mut [&mut TaggedHasher], data: &[&[u8]]) {
        let mut inner: Vec<&mut Sha256> = hashers.iter_mut().map(|h| &mut h.inner).collect();
        tahoe_sha256x::update_many(&mut inner, data);
    }

    /// The SHA-256d digest.
    pub fn finalize(self) -> Hash {
        tahoe_sha256x::digest(&self.inner.finalize())
    }
}

/// `SHA256d(netstring(tag) || data)`.
pub fn tagged_hash(tag: &[u8], data: &[u8]) -> Hash {
    let mut h = TaggedHasher::new(tag);
    h.update(data);
    h.finalize()
}

/// `SHA256d(netstring(tag) || netstring(a) || netstring(b))`.
pub fn tagged_pair_hash(tag: &[u8], a: &[u8], b: &[u8]) -> Hash {
    let mut h = TaggedHasher::new(tag);
    h.update(&netstring(a));
    h.update(&netstring(b));
    h.finalize()
}

/// `tagged_hash(tag, data)` of every `(tag, data)`, in order, several
/// streams side by side where the CPU allows (see `tahoe-sha256x`): the same
/// values as one by one, faster.
fn tagged_hashes(items: &[(&[u8], &[u8])]) -> Vec<Hash> {
    let mut hashers: Vec<TaggedHasher> = items
        .iter()
        .map(|(tag, _)| TaggedHasher::new(tag))
        .collect();
    let mut inner: Vec<&mut Sha256> = hashers.iter_mut().map(|h| &mut h.inner).collect();
    let data: Vec<&[u8]> = items.iter().map(|(_, d)| *d).collect();
    tahoe_sha256x::update_many(&mut inner, &data);
    hashers.into_iter().map(TaggedHasher::finalize).collect()
}

/// The hashes of several blocks, computed side by side.
pub fn block_hashes(blocks: &[&[u8]]) -> Vec<Hash> {
    let items: Vec<(&[u8], &[u8])> = blocks.iter().map(|b| (tags::BLOCK, *b)).collect();
    tagged_hashes(&items)
}

/// The storage index of an immutable file with encryption key `key`.
pub fn storage_index(key: &[u8]) -> [u8; 16] {
    let h = tagged_hash(tags::STORAGE_INDEX, key);
    let mut si = [0u8; 16];
    si.copy_from_slice(&h[..16]);
    si
}

/// The hasher that turns a plaintext into its convergent encryption key:
/// tagged with the convergence secret and the encoding parameters, so the
/// same file uploaded with other parameters (or by a node with another
/// secret) gets another key. Take the first 16 bytes of the digest.
pub fn convergence_hasher(k: u16, n: u16, segment_size: u64, secret: &[u8]) -> TaggedHasher {
    let mut tag = tags::CONVERGENT_ENCRYPTION.to_vec();
    tag.extend_from_slice(&netstring(secret));
    tag.extend_from_slice(&netstring(format!("{k},{n},{segment_size}").as_bytes()));
    TaggedHasher::new(&tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netstrings() {
        assert_eq!(netstring(b""), b"0:,");
        assert_eq!(netstring(b"abc"), b"3:abc,");
    }

    #[test]
    fn sha256d_is_double() {
        use sha2::{Digest, Sha256};
        let direct: Hash = Sha256::digest(Sha256::digest(b"3:tag,data")).into();
        assert_eq!(tagged_hash(b"tag", b"data"), direct);
        let mut h = TaggedHasher::new(b"tag");
        h.update(b"da");
        h.update(b"ta");
        assert_eq!(h.finalize(), direct);
        let pair: Hash = Sha256::digest(Sha256::digest(b"3:tag,1:a,2:bc,")).into();
        assert_eq!(tagged_pair_hash(b"tag", b"a", b"bc"), pair);
    }

    #[test]
    fn many_at_once_equals_one_by_one() {
        let blocks: Vec<Vec<u8>> = (0..11u8).map(|i| vec![i; 1000 + usize::from(i)]).collect();
        let items: Vec<(&[u8], &[u8])> = blocks
            .iter()
            .enumerate()
            .map(|(i, b)| {
                (
                    if i == 0 {
                        tags::CIPHERTEXT_SEGMENT
                    } else {
                        tags::BLOCK
                    },
                    &b[..],
                )
            })
            .collect();
        let many = tagged_hashes(&items);
        assert_eq!(many.len(), items.len());
        for ((tag, data), h) in items.iter().zip(many) {
            assert_eq!(h, tagged_hash(tag, data));
        }
    }
}
