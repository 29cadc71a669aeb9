//! Turning plaintext into the shares of one signed version.
//!
//! Each segment is encrypted under its own data key (SDMF: the one IV;
//! MDMF: a fresh salt per segment), padded to a multiple of k and
//! erasure-coded into n blocks; each block's hash (MDMF: of salt and block)
//! is a leaf of its share's block hash tree. The roots of those n trees are
//! the leaves of the share hash tree, whose root goes into the signed
//! prefix. [`sign`] builds the trees and the signature once every
//! segment's leaves are known; [`SignedVersion`] then gives each share's
//! bytes outside its blocks.

use crate::error::{Error, Result};
use crate::format::hash::{Hash, TaggedHasher, block_hashes, tags};
use crate::format::hashtree::HashTree;
use crate::format::ssk::MutableFormat;
use crate::format::ssk::keys::{apply_ctr, data_key};
use crate::format::ssk::layout::{
    Geometry, Offsets, Prefix, RegionLens, SALT_LEN, encode_chain, header,
};
use crate::kinds::cipher::Cipher;
use crate::kinds::codec::Codec;

/// One segment, encrypted and encoded.
pub struct EncodedSegment {
    /// Segment number.
    pub segnum: u64,
    /// Its salt (SDMF: the file's IV).
    pub salt: [u8; SALT_LEN],
    /// One block per share.
    pub blocks: Vec<Vec<u8>>,
    /// Each share's leaf hash for this segment.
    pub leaves: Vec<Hash>,
}

/// Encrypt and encode segment `segnum` (`plaintext` is exactly its bytes).
pub fn encode_segment(
    geo: &Geometry,
    codec: &dyn Codec,
    cipher: &dyn Cipher,
    read_key: &[u8; 16],
    segnum: u64,
    salt: [u8; SALT_LEN],
    plaintext: &[u8],
) -> Result<EncodedSegment> {
    if plaintext.len() as u64 != geo.segment_len(segnum) {
        return Err(Error::internal(format!(
            "segment {segnum} has {} bytes, expected {}",
            plaintext.len(),
            geo.segment_len(segnum)
        )));
    }
    let padded = geo.padded_segment_len(segnum) as usize;
    let mut data = Vec::with_capacity(padded);
    data.extend_from_slice(plaintext);
    apply_ctr(cipher, &data_key(&salt, read_key), &mut data)?;
    data.resize(padded, 0);
    let blocks = codec.encode(&data)?;
    if blocks
        .iter()
        .any(|b| b.len() as u64 != geo.block_len(segnum))
    {
        return Err(Error::config_invalid(format!(
            "codec {} pads blocks; mutable files need zfec's exact block sizes",
            codec.name()
        )));
    }
    let leaves = block_leaves(geo.format, &salt, &blocks);
    Ok(EncodedSegment {
        segnum,
        salt,
        blocks,
        leaves,
    })
}

/// The block hash tree leaves of one segment's blocks: SDMF hashes the
/// block, MDMF the salt and the block; several blocks side by side.
pub fn block_leaves(format: MutableFormat, salt: &[u8; SALT_LEN], blocks: &[Vec<u8>]) -> Vec<Hash> {
    let refs: Vec<&[u8]> = blocks.iter().map(|b| &b[..]).collect();
    match format {
        MutableFormat::Sdmf => block_hashes(&refs),
        MutableFormat::Mdmf => {
            let mut hashers: Vec<TaggedHasher> = blocks
                .iter()
                .map(|_| {
                    let mut h = TaggedHasher::new(tags::BLOCK);
                    h.update(salt);
                    h
                })
                .collect();
            let mut lanes: Vec<&mut TaggedHasher> = hashers.iter_mut().collect();
            TaggedHasher::update_many(&mut lanes, &refs);
            hashers.into_iter().map(TaggedHasher::finalize).collect()
        }
    }
}

/// Everything but the blocks of a signed version.
#[derive(Clone)]
pub struct SignedVersion {
    /// The signed prefix.
    pub prefix: Prefix,
    /// Where each region is (the same in every share).
    pub offsets: Offsets,
    /// The signature of the prefix.
    pub signature: Vec<u8>,
    /// Verification key DER.
    pub verification_key: Vec<u8>,
    /// The private key DER, encrypted under the write key.
    pub enc_privkey: Vec<u8>,
    /// Each share's block hash tree.
    pub block_trees: Vec<HashTree>,
    /// The share hash tree.
    pub share_tree: HashTree,
}

/// Build the trees and sign. `leaves[shnum][segnum]` are the block hash
/// tree leaves; `sign` signs the prefix bytes.
#[allow(clippy::too_many_arguments)]
pub fn sign(
    geo: &Geometry,
    seqnum: u64,
    n: u8,
    iv: Option<[u8; SALT_LEN]>,
    leaves: &[Vec<Hash>],
    verification_key: Vec<u8>,
    enc_privkey: Vec<u8>,
    sign: &dyn Fn(&[u8]) -> Result<Vec<u8>>,
) -> Result<SignedVersion> {
    if leaves.len() != usize::from(n) {
        return Err(Error::internal(
            "one leaf list per share is needed".to_string(),
        ));
    }
    let block_trees: Vec<HashTree> = leaves.iter().map(|l| HashTree::new(l)).collect();
    let share_tree = HashTree::new(&block_trees.iter().map(|t| t.root()).collect::<Vec<_>>());
    let prefix = Prefix {
        format: geo.format,
        seqnum,
        root_hash: share_tree.root(),
        iv,
        k: geo.k as u8,
        n,
        segment_size: geo.segment_size,
        data_length: geo.data_length,
    };
    let signature = sign(&prefix.signed_bytes())?;
    let lens = RegionLens {
        verification_key: verification_key.len() as u64,
        signature: signature.len() as u64,
        chain_entries: share_tree.needed_for(0, false).len() as u64,
        enc_privkey: enc_privkey.len() as u64,
    };
    let offsets = Offsets::compute(geo, lens)?;
    Ok(SignedVersion {
        prefix,
        offsets,
        signature,
        verification_key,
        enc_privkey,
        block_trees,
        share_tree,
    })
}

impl SignedVersion {
    /// The segmentation.
    pub fn geometry(&self) -> Geometry {
        self.prefix.geometry()
    }

    /// Share `shnum`'s hash chain (the share hash tree nodes needed to
    /// check its block hash tree's root), sorted by node index.
    pub fn chain(&self, shnum: usize) -> Vec<(u16, Hash)> {
        self.share_tree
            .needed_for(shnum, false)
            .into_iter()
            .map(|i| (i as u16, self.share_tree.nodes()[i]))
            .collect()
    }

    /// The bytes of share `shnum` that are not blocks, as (offset, bytes)
    /// writes: the header and everything before the share data, and the
    /// region after it.
    pub fn share_extras(&self, shnum: usize) -> Vec<(u64, Vec<u8>)> {
        let o = &self.offsets;
        let bht: Vec<u8> = self.block_trees[shnum].nodes().concat();
        let chain = encode_chain(&self.chain(shnum));
        let mut head = header(&self.prefix, o);
        match self.prefix.format {
            MutableFormat::Sdmf => {
                for part in [&self.verification_key, &self.signature, &chain, &bht] {
                    head.extend_from_slice(part);
                }
                vec![(0, head), (o.enc_privkey.start, self.enc_privkey.clone())]
            }
            MutableFormat::Mdmf => {
                for part in [
                    &self.enc_privkey,
                    &chain,
                    &self.signature,
                    &self.verification_key,
                ] {
                    head.extend_from_slice(part);
                }
                vec![(0, head), (o.block_hash_tree.start, bht)]
            }
        }
    }

    /// The writes that turn share `shnum` of the version this one replaces
    /// into this version, when only segments `touched` changed and the
    /// layout did not: the header, the share hash chain, the signature,
    /// and the block hash tree nodes on the paths of the touched leaves.
    pub fn share_update(&self, shnum: usize, touched: std::ops::Range<u64>) -> Vec<(u64, Vec<u8>)> {
        let o = &self.offsets;
        let tree = &self.block_trees[shnum];
        let mut nodes = std::collections::BTreeSet::new();
        for seg in touched {
            let mut i = tree.leaf_index(seg as usize);
            nodes.insert(i);
            while i > 0 {
                i = (i - 1) / 2;
                nodes.insert(i);
            }
        }
        let mut out = vec![
            (0, header(&self.prefix, o)),
            (o.share_hash_chain.start, encode_chain(&self.chain(shnum))),
            (o.signature.start, self.signature.clone()),
        ];
        // Runs of adjacent nodes go as one write.
        let mut run: Option<(usize, Vec<u8>)> = None;
        for i in nodes {
            match &mut run {
                Some((start, bytes)) if *start + bytes.len() / 32 == i => {
                    bytes.extend_from_slice(&tree.nodes()[i])
                }
                _ => {
                    if let Some((start, bytes)) = run.take() {
                        out.push((o.block_hash_tree.start + 32 * start as u64, bytes));
                    }
                    run = Some((i, tree.nodes()[i].to_vec()));
                }
            }
        }
        if let Some((start, bytes)) = run {
            out.push((o.block_hash_tree.start + 32 * start as u64, bytes));
        }
        out
    }

    /// Where segment `segnum`'s block goes in every share, and its bytes
    /// as written (MDMF: salt then block).
    fn block_write(&self, seg: &EncodedSegment, shnum: usize) -> (u64, Vec<u8>) {
        let geo = self.geometry();
        let at = self.offsets.share_data.start + geo.block_offset(seg.segnum);
        (at, block_bytes(self.prefix.format, seg, shnum))
    }
}

/// Share `shnum`'s bytes for a segment as stored (MDMF: salt then block).
pub fn block_bytes(format: MutableFormat, seg: &EncodedSegment, shnum: usize) -> Vec<u8> {
    let block = &seg.blocks[shnum];
    match format {
        MutableFormat::Sdmf => block.clone(),
        MutableFormat::Mdmf => {
            let mut v = Vec::with_capacity(SALT_LEN + block.len());
            v.extend_from_slice(&seg.salt);
            v.extend_from_slice(block);
            v
        }
    }
}

/// Assemble whole shares in memory (for small files and tests): applies
/// every write of `version` and `segments` to zeroed buffers.
pub fn whole_shares(version: &SignedVersion, segments: &[EncodedSegment]) -> Vec<Vec<u8>> {
    (0..usize::from(version.prefix.n))
        .map(|shnum| {
            let mut share = vec![0u8; version.offsets.eof as usize];
            let mut put = |at: u64, bytes: &[u8]| {
                share[at as usize..at as usize + bytes.len()].copy_from_slice(bytes);
            };
            for seg in segments {
                let (at, bytes) = version.block_write(seg, shnum);
                put(at, &bytes);
            }
            for (at, bytes) in version.share_extras(shnum) {
                put(at, &bytes);
            }
            share
        })
        .collect()
}
