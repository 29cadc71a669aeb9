//! The byte layout of an immutable share, as Tahoe-LAFS writes it.
//!
//! ```text
//! header     version, block size, data size, six section offsets
//!            (v1: 4-byte fields, 0x24 bytes; v2: 8-byte fields, 0x44 bytes)
//! data       the blocks, one per segment, back to back
//! (unused)   plaintext hash tree: zeros, kept for compatibility
//! crypttext hash tree    every node, root first
//! block hash tree        every node of this share's tree, root first
//! share hashes           (u16 node index, 32-byte hash) pairs: the nodes of
//!                        the share hash tree needed to check this share
//! UEB                    length (4 or 8 bytes) then the URI extension block
//! ```
//!
//! We write v1 when every value fits its 4-byte fields and v2 (no 4 GiB
//! limits) only when not, as Tahoe does, and read both. A header comes from a
//! server and is checked before any offset is used: every section must lie
//! inside the share, in order, with exactly the size the verified UEB
//! implies.

use crate::error::{Error, Result};
use crate::format::chk::ueb::MAX_UEB_LEN;
use crate::format::hash::HASH_LEN;
use crate::format::hashtree::{SHARE_HASH_ENTRY, node_count};

/// Bytes of a v1 header.
const V1_HEADER: u64 = 0x24;
/// Bytes of a v2 header.
pub const V2_HEADER: u64 = 0x44;
/// Most share-hash entries a share may carry (a tree of 256 leaves needs 9).
const MAX_SHARE_HASHES: u64 = 32;

/// Where each section of a share starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShareLayout {
    /// 1 or 2.
    pub version: u32,
    /// Bytes of a full block (informational in Tahoe's readers).
    pub block_size: u64,
    /// Bytes of all blocks together (informational).
    pub data_size: u64,
    /// Start of the blocks.
    pub data: u64,
    /// Start of the unused plaintext hash tree.
    pub plaintext_hash_tree: u64,
    /// Start of the crypttext hash tree.
    pub crypttext_hash_tree: u64,
    /// Start of the block hash tree.
    pub block_hashes: u64,
    /// Start of the share hash chain.
    pub share_hashes: u64,
    /// Start of the UEB length field.
    pub uri_extension: u64,
}

impl ShareLayout {
    /// The layout for a new share: v1 when it fits, else v2.
    ///
    /// The arguments come from a [`crate::format::chk::plan::SharePlan`],
    /// which bounds them (at most `MAX_SEGMENTS` segments of at most
    /// `MAX_SEGMENT_SIZE` bytes), so no offset can overflow.
    pub fn for_upload(
        block_size: u64,
        data_size: u64,
        num_segments: u64,
        num_share_hashes: u64,
    ) -> ShareLayout {
        let v1 = Self::with_header(1, block_size, data_size, num_segments, num_share_hashes);
        // Tahoe writes v1 whenever its 4-byte fields can hold every value
        // (sizes and offsets up to the UEB's), v2 only beyond: so do we,
        // and our shares are Tahoe's bytes.
        let fits = |v: u64| v < 1 << 32;
        if fits(block_size) && fits(data_size) && fits(v1.uri_extension) {
            v1
        } else {
            Self::with_header(2, block_size, data_size, num_segments, num_share_hashes)
        }
    }

    fn with_header(
        version: u32,
        block_size: u64,
        data_size: u64,
        num_segments: u64,
        num_share_hashes: u64,
    ) -> ShareLayout {
        let tree = node_count(num_segments as usize) as u64 * HASH_LEN as u64;
        let data = if version == 1 { V1_HEADER } else { V2_HEADER };
        let plaintext_hash_tree = data + data_size;
        let crypttext_hash_tree = plaintext_hash_tree + tree;
        let block_hashes = crypttext_hash_tree + tree;
        let share_hashes = block_hashes + tree;
        let uri_extension = share_hashes + num_share_hashes * SHARE_HASH_ENTRY;
        ShareLayout {
            version,
            block_size,
            data_size,
            data,
            plaintext_hash_tree,
            crypttext_hash_tree,
            block_hashes,
            share_hashes,
            uri_extension,
        }
    }

    /// Bytes of the UEB length field.
    pub fn field_size(&self) -> u64 {
        if self.version == 1 { 4 } else { 8 }
    }

    /// The share's total size with a UEB of `ueb_len` bytes.
    pub fn share_size(&self, ueb_len: u64) -> u64 {
        self.uri_extension + self.field_size() + ueb_len
    }

    /// The serialized header.
    pub fn header(&self) -> Vec<u8> {
        let fields = [
            self.block_size,
            self.data_size,
            self.data,
            self.plaintext_hash_tree,
            self.crypttext_hash_tree,
            self.block_hashes,
            self.share_hashes,
            self.uri_extension,
        ];
        let mut out = Vec::with_capacity(V2_HEADER as usize);
        out.extend_from_slice(&self.version.to_be_bytes());
        for f in fields {
            if self.version == 1 {
                out.extend_from_slice(&(f as u32).to_be_bytes());
            } else {
                out.extend_from_slice(&f.to_be_bytes());
            }
        }
        out
    }

    /// Parse a header read from the start of a share of `share_size` bytes
    /// (`bytes` may be longer than the header).
    pub fn parse(bytes: &[u8], share_size: u64) -> Result<ShareLayout> {
        let bad = |m: String| Error::corrupt(format!("share header: {m}"));
        if bytes.len() < 4 {
            return Err(bad("shorter than its version field".into()));
        }
        let version = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        let (width, header) = match version {
            1 => (4usize, V1_HEADER),
            2 => (8usize, V2_HEADER),
            v => return Err(bad(format!("unknown share version {v}"))),
        };
        if (bytes.len() as u64) < header {
            return Err(bad(format!(
                "{} bytes, a v{version} header needs {header}",
                bytes.len()
            )));
        }
        let field = |i: usize| -> u64 {
            let at = 4 + i * width;
            let mut v = 0u64;
            for b in &bytes[at..at + width] {
                v = (v << 8) | u64::from(*b);
            }
            v
        };
        let l = ShareLayout {
            version,
            block_size: field(0),
            data_size: field(1),
            data: field(2),
            plaintext_hash_tree: field(3),
            crypttext_hash_tree: field(4),
            block_hashes: field(5),
            share_hashes: field(6),
            uri_extension: field(7),
        };
        let order = [
            header,
            l.data,
            l.plaintext_hash_tree,
            l.crypttext_hash_tree,
            l.block_hashes,
            l.share_hashes,
            l.uri_extension,
        ];
        if l.data != header {
            return Err(bad(format!(
                "data starts at {}, not after the header",
                l.data
            )));
        }
        if order.windows(2).any(|w| w[0] > w[1]) {
            return Err(bad("section offsets are out of order".into()));
        }
        if l.uri_extension
            .checked_add(l.field_size())
            .is_none_or(|end| end > share_size)
        {
            return Err(bad(format!(
                "UEB offset {} is past the share's end {share_size}",
                l.uri_extension
            )));
        }
        let chain = l.uri_extension - l.share_hashes;
        if !chain.is_multiple_of(SHARE_HASH_ENTRY) || chain / SHARE_HASH_ENTRY > MAX_SHARE_HASHES {
            return Err(bad(format!("share hash section of {chain} bytes")));
        }
        Ok(l)
    }

    /// Check the sections against what the (verified) UEB implies: the
    /// hash trees have one node per tree position and the blocks fit.
    pub fn check(&self, data_size: u64, num_segments: u64) -> Result<()> {
        let tree = (node_count(num_segments as usize) * HASH_LEN) as u64;
        // Tahoe's writers (and ours) place every section exactly: the
        // blocks, then three trees of the same size. Anything else is not
        // a share of this file.
        let ok = self.data.checked_add(data_size) == Some(self.plaintext_hash_tree)
            && self.plaintext_hash_tree.checked_add(tree) == Some(self.crypttext_hash_tree)
            && self.crypttext_hash_tree.checked_add(tree) == Some(self.block_hashes)
            && self.block_hashes.checked_add(tree) == Some(self.share_hashes);
        if !ok {
            return Err(Error::corrupt(format!(
                "share sections do not fit a file of {num_segments} segments and {data_size} bytes of blocks"
            )));
        }
        Ok(())
    }

    /// How many entries the share hash chain has.
    pub fn share_hash_count(&self) -> u64 {
        (self.uri_extension - self.share_hashes) / SHARE_HASH_ENTRY
    }
}

/// Parse a UEB length field, bounded by [`MAX_UEB_LEN`] and the share's end.
pub fn parse_ueb_len(layout: &ShareLayout, field: &[u8], share_size: u64) -> Result<u64> {
    let width = layout.field_size() as usize;
    if field.len() < width {
        return Err(Error::corrupt("UEB length field is truncated"));
    }
    let len = field[..width]
        .iter()
        .fold(0u64, |v, b| (v << 8) | u64::from(*b));
    let start = layout.uri_extension + layout.field_size();
    if len > MAX_UEB_LEN as u64 || start + len > share_size {
        return Err(Error::corrupt(format!("UEB length {len} is out of bounds")));
    }
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_when_it_fits_v2_beyond() {
        let small = ShareLayout::for_upload(1000, 2500, 3, 5);
        assert_eq!((small.version, small.data), (1, V1_HEADER));
        assert_eq!(small.header().len() as u64, V1_HEADER);
        let big = ShareLayout::for_upload(1 << 31, 5 << 30, 3, 5);
        assert_eq!((big.version, big.data), (2, V2_HEADER));
        let parsed = ShareLayout::parse(&big.header(), big.share_size(400)).unwrap();
        assert_eq!(parsed, big);
    }

    #[test]
    fn v2_round_trip_and_sizes() {
        let l = ShareLayout::with_header(2, 1000, 2500, 3, 5);
        let size = l.share_size(400);
        let parsed = ShareLayout::parse(&l.header(), size).unwrap();
        assert_eq!(parsed, l);
        assert_eq!(l.data, 0x44);
        assert_eq!(l.crypttext_hash_tree - l.plaintext_hash_tree, 7 * 32);
        l.check(2500, 3).unwrap();
        assert!(l.check(2500, 5).is_err());
        assert_eq!(l.share_hash_count(), 5);
    }

    #[test]
    fn v1_is_read() {
        let l = ShareLayout::for_upload(10, 10, 1, 1);
        let h = l.header();
        assert_eq!(h.len() as u64, V1_HEADER);
        assert_eq!(ShareLayout::parse(&h, l.share_size(10)).unwrap(), l);
    }

    #[test]
    fn hostile_headers() {
        let l = ShareLayout::with_header(2, 1000, 2500, 3, 5);
        let size = l.share_size(400);
        let h = l.header();
        assert!(ShareLayout::parse(&h[..10], size).is_err());
        assert!(
            ShareLayout::parse(&h, l.uri_extension).is_err(),
            "UEB past the end"
        );
        let mut v = h.clone();
        v[3] = 3;
        assert!(ShareLayout::parse(&v, size).is_err(), "unknown version");
        let mut o = h.clone();
        o[4 + 8 * 5..4 + 8 * 6].copy_from_slice(&u64::MAX.to_be_bytes());
        assert!(ShareLayout::parse(&o, size).is_err(), "offset overflow");
        let mut d = h.clone();
        d[4 + 8 * 2 + 7] = 0x45;
        assert!(
            ShareLayout::parse(&d, size).is_err(),
            "data not after header"
        );
        assert!(parse_ueb_len(&l, &u64::MAX.to_be_bytes(), size).is_err());
        assert!(crate::format::hashtree::parse_share_hashes(&[0u8; 35]).is_err());
    }
}
