//! The CPU work of an upload: per segment, then once at the end.
//!
//! [`encode_segment`] is pure and runs on worker threads, several segments
//! at once. [`HashCollector`] gathers the per-segment hashes in order and,
//! when the last segment is in, builds the trees, the UEB, the cap, and the
//! tail of every share.

use crate::error::{Error, Result};
use crate::format::cap::ChkCap;
use crate::format::chk::plan::SharePlan;
use crate::format::chk::ueb::Ueb;
use crate::format::hash::{Hash, block_hashes};
use crate::format::hashtree::HashTree;
use crate::format::hashtree::pack_share_hashes;
use crate::kinds::codec::Codec;

/// One segment, encrypted and encoded.
pub struct EncodedSegment {
    /// The segment number.
    pub index: u64,
    /// Hash of the segment's ciphertext (unpadded).
    pub crypttext_hash: Hash,
    /// One block per share.
    pub blocks: Vec<Vec<u8>>,
    /// The hash of each block.
    pub block_hashes: Vec<Hash>,
}

/// Pad and erasure-code one segment of ciphertext, whose hash
/// (`crypttext_hash`, tagged as a ciphertext segment) the caller computed
/// as it read the segment, and hash the blocks.
pub fn encode_segment(
    plan: &SharePlan,
    codec: &dyn Codec,
    index: u64,
    mut crypttext: Vec<u8>,
    crypttext_hash: Hash,
) -> Result<EncodedSegment> {
    let unpadded = crypttext.len();
    let padded = plan.padded_segment_len(index) as usize;
    if unpadded > padded {
        return Err(Error::internal("segment longer than planned"));
    }
    crypttext.resize(padded, 0);
    let blocks = codec.encode(&crypttext)?;
    let want = plan.block_len(index) as usize;
    if blocks.len() != usize::from(plan.n) || blocks.iter().any(|b| b.len() != want) {
        return Err(Error::internal(format!(
            "codec {} returned blocks of the wrong shape",
            codec.name()
        )));
    }
    // The N block hashes are independent streams of one length: hash them
    // side by side.
    let block_hashes = block_hashes(&blocks.iter().map(|b| &b[..]).collect::<Vec<_>>());
    Ok(EncodedSegment {
        index,
        crypttext_hash,
        blocks,
        block_hashes,
    })
}

/// Collects hashes as segments complete (in order).
pub struct HashCollector {
    plan: SharePlan,
    crypttext_hashes: Vec<Hash>,
    /// `block_hashes[share][segment]`.
    block_hashes: Vec<Vec<Hash>>,
}

/// What the end of an upload produces.
pub struct Finished {
    /// The file's cap.
    pub cap: ChkCap,
    /// The serialized UEB.
    pub ueb: Vec<u8>,
    /// Per share: the bytes from the plaintext-hash-tree offset to the end
    /// of the share (hash trees, share hash chain, UEB).
    pub tails: Vec<Vec<u8>>,
}

impl HashCollector {
    /// Start collecting for `plan`.
    pub fn new(plan: &SharePlan) -> Self {
        let segments = plan.seg.num_segments as usize;
        HashCollector {
            plan: plan.clone(),
            crypttext_hashes: Vec::with_capacity(segments),
            block_hashes: vec![Vec::with_capacity(segments); usize::from(plan.n)],
        }
    }

    /// Record segment `seg`, which must be the next one.
    pub fn add(&mut self, seg: &EncodedSegment) -> Result<()> {
        if seg.index != self.crypttext_hashes.len() as u64 {
            return Err(Error::internal("segments recorded out of order"));
        }
        self.crypttext_hashes.push(seg.crypttext_hash);
        for (share, h) in self.block_hashes.iter_mut().zip(&seg.block_hashes) {
            share.push(*h);
        }
        Ok(())
    }

    /// Build the trees, the UEB and the cap.
    pub fn finish(self, key: [u8; 16], crypttext_hash: Hash) -> Result<Finished> {
        let plan = &self.plan;
        if self.crypttext_hashes.len() as u64 != plan.seg.num_segments {
            return Err(Error::internal("finish before every segment was recorded"));
        }
        let ct_tree = HashTree::new(&self.crypttext_hashes);
        let block_trees: Vec<HashTree> =
            self.block_hashes.iter().map(|h| HashTree::new(h)).collect();
        let share_tree = HashTree::new(&block_trees.iter().map(|t| t.root()).collect::<Vec<_>>());
        let ueb = Ueb {
            codec_name: plan.codec_name.clone(),
            size: plan.seg.size,
            segment_size: plan.seg.segment_size,
            num_segments: plan.seg.num_segments,
            tail_padded_size: plan.seg.tail_padded_size,
            needed_shares: plan.k,
            total_shares: plan.n,
            crypttext_hash,
            crypttext_root_hash: ct_tree.root(),
            share_root_hash: share_tree.root(),
        };
        let packed = ueb.pack();
        if packed.len() as u64 != plan.ueb_len {
            return Err(Error::internal("UEB length differs from the plan"));
        }
        let ct_nodes: Vec<u8> = ct_tree.nodes().concat();
        let tree_len = ct_nodes.len();
        let tails = block_trees
            .iter()
            .enumerate()
            .map(|(shnum, bt)| {
                let chain: Vec<(u16, Hash)> = share_tree
                    .tahoe_chain_order(shnum)
                    .into_iter()
                    .map(|i| (i as u16, share_tree.nodes()[i]))
                    .collect();
                let mut tail = Vec::with_capacity(3 * tree_len + 400 + packed.len());
                tail.resize(tree_len, 0); // the unused plaintext hash tree
                tail.extend_from_slice(&ct_nodes);
                tail.extend_from_slice(&bt.nodes().concat());
                tail.extend_from_slice(&pack_share_hashes(&chain));
                let len = (packed.len() as u64).to_be_bytes();
                tail.extend_from_slice(&len[8 - plan.layout.field_size() as usize..]);
                tail.extend_from_slice(&packed);
                tail
            })
            .collect::<Vec<_>>();
        for t in &tails {
            if plan.layout.plaintext_hash_tree + t.len() as u64 != plan.share_size {
                return Err(Error::internal("share tail does not end the share"));
            }
        }
        Ok(Finished {
            cap: ChkCap {
                key,
                ueb_hash: ueb.hash(),
                k: plan.k,
                n: plan.n,
                size: plan.seg.size,
            },
            ueb: packed,
            tails,
        })
    }
}
