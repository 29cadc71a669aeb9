//! The shape of an immutable file's shares, computed before any data moves.
//!
//! Servers are asked for exact share sizes at allocation, so everything
//! about the layout must follow from the file size, the parameters and the
//! codec: block sizes, section offsets and the UEB length (hash values have
//! fixed sizes, so a UEB with placeholder hashes has the final length).

use crate::error::{Error, Result};
use crate::format::chk::layout::ShareLayout;
use crate::format::chk::ueb::{Segmentation, Ueb};
use crate::format::hashtree::HashTree;
use crate::kinds::codec::Codec;

/// The largest segment size accepted (64 MiB): segments are held in memory
/// several at a time, so this bounds a node's memory.
pub const MAX_SEGMENT_SIZE: u64 = 64 << 20;

/// The most segments a file may have (2^20: 1 TiB in 1 MiB segments, 64 TiB
/// in the largest). Downloads read each hash tree whole, so this bounds
/// them to 64 MiB; uploads keep every block hash until the end (32 bytes
/// per share per segment). The same limit applies both ways, so nothing is
/// stored that could not be read back, and a hostile cap cannot make a
/// downloader plan trees beyond memory or overflow an offset.
pub const MAX_SEGMENTS: u64 = 1 << 20;

/// Everything the encoder and the servers need to know about the shares.
#[derive(Debug, Clone)]
pub struct SharePlan {
    /// Segment sizes.
    pub seg: Segmentation,
    /// k.
    pub k: u16,
    /// n.
    pub n: u16,
    /// The codec's name (goes into the UEB).
    pub codec_name: String,
    /// Bytes of each block of a full segment.
    pub block_size: u64,
    /// Bytes of each block of the last segment.
    pub tail_block_size: u64,
    /// Where the sections of every share start.
    pub layout: ShareLayout,
    /// Bytes of the serialized UEB.
    pub ueb_len: u64,
    /// Bytes of each share.
    pub share_size: u64,
}

/// How many share-hash-tree nodes each share carries.
pub fn share_hash_count(n: u16) -> u64 {
    let tree = HashTree::new(&vec![[0u8; 32]; usize::from(n)]);
    tree.needed_for(0, true).len() as u64
}

impl SharePlan {
    /// Plan the shares of a file of `size` bytes (at least 1).
    pub fn new(size: u64, max_segment_size: u64, codec: &dyn Codec) -> Result<SharePlan> {
        let p = codec.params();
        let seg = Segmentation::for_file(size, max_segment_size, p.k)?;
        Self::from_segmentation(seg, codec)
    }

    /// Plan from a known segmentation (downloads take it from the UEB).
    pub fn from_segmentation(seg: Segmentation, codec: &dyn Codec) -> Result<SharePlan> {
        let p = codec.params();
        if seg.segment_size > MAX_SEGMENT_SIZE {
            return Err(Error::invalid_input(format!(
                "segments of {} bytes are over the {MAX_SEGMENT_SIZE}-byte limit",
                seg.segment_size
            )));
        }
        if seg.num_segments > MAX_SEGMENTS {
            return Err(Error::invalid_input(format!(
                "a file of {} bytes in segments of {} bytes has {} segments, over the \
                 {MAX_SEGMENTS} supported: use a larger segment size \
                 (encoding.max_segment_size)",
                seg.size, seg.segment_size, seg.num_segments
            )));
        }
        if seg.num_segments == 0 {
            return Err(Error::invalid_input("a file has at least one segment"));
        }
        let to_usize = |v: u64| {
            usize::try_from(v).map_err(|_| Error::invalid_input(format!("segment of {v} bytes")))
        };
        let block_size = codec.block_len(to_usize(seg.segment_size)?) as u64;
        let tail_block_size = codec.block_len(to_usize(seg.tail_padded_size)?) as u64;
        let data_size = block_size
            .checked_mul(seg.num_segments - 1)
            .and_then(|d| d.checked_add(tail_block_size))
            .ok_or_else(|| Error::invalid_input("file too large"))?;
        let layout = ShareLayout::for_upload(
            block_size,
            data_size,
            seg.num_segments,
            share_hash_count(p.n),
        );
        let placeholder = Ueb {
            codec_name: codec.name().to_string(),
            size: seg.size,
            segment_size: seg.segment_size,
            num_segments: seg.num_segments,
            tail_padded_size: seg.tail_padded_size,
            needed_shares: p.k,
            total_shares: p.n,
            crypttext_hash: [0; 32],
            crypttext_root_hash: [0; 32],
            share_root_hash: [0; 32],
        };
        let ueb_len = placeholder.pack().len() as u64;
        Ok(SharePlan {
            seg,
            k: p.k,
            n: p.n,
            codec_name: codec.name().to_string(),
            block_size,
            tail_block_size,
            share_size: layout.share_size(ueb_len),
            layout,
            ueb_len,
        })
    }

    /// Where block `segment` starts in every share.
    pub fn block_offset(&self, segment: u64) -> u64 {
        self.layout.data + segment * self.block_size
    }

    /// The block length of segment `segment`.
    pub fn block_len(&self, segment: u64) -> u64 {
        if segment + 1 == self.seg.num_segments {
            self.tail_block_size
        } else {
            self.block_size
        }
    }

    /// The codec input length of segment `segment` (padded to k).
    pub fn padded_segment_len(&self, segment: u64) -> u64 {
        if segment + 1 == self.seg.num_segments {
            self.seg.tail_padded_size
        } else {
            self.seg.segment_size
        }
    }
}
