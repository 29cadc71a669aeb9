//! The erasure-codec plugin kind.
//!
//! A codec turns one segment into N blocks such that any k of them give the
//! segment back. It is synchronous and CPU-bound: the pipelines call it from
//! worker threads, never from inside the async runtime, so an implementation
//! may take milliseconds per call without starving I/O.
//!
//! Every codec is *systematic*: block `i < k` is the `i`-th k-th of the
//! segment (possibly padded, see [`Codec::block_len`]). Downloads rely on it:
//! when the k primary blocks are at hand, decoding is a copy.
//!
//! The codec's name is recorded in each file's URI extension block, so a file
//! says which codec can read it back.

use std::sync::Arc;

use crate::error::{Error, Result};

/// The k-of-N parameters of a codec instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CodecParams {
    /// Blocks needed to rebuild a segment (`1 ..= n`).
    pub k: u16,
    /// Blocks produced per segment (`k ..= 256`).
    pub n: u16,
}

/// The most blocks any codec may produce: share numbers are one byte.
pub const MAX_SHARES: u16 = 256;

impl CodecParams {
    /// Checked constructor: `1 <= k <= n <= 256`.
    pub fn new(k: u16, n: u16) -> Result<Self> {
        if k == 0 || k > n || n > MAX_SHARES {
            return Err(Error::invalid_input(format!(
                "encoding parameters k={k}, n={n} are outside 1 <= k <= n <= {MAX_SHARES}"
            )));
        }
        Ok(CodecParams { k, n })
    }

    /// `k` as a `usize`.
    pub fn k(self) -> usize {
        usize::from(self.k)
    }

    /// `n` as a `usize`.
    pub fn n(self) -> usize {
        usize::from(self.n)
    }
}

/// One block handed to [`Codec::decode`]: its share number and its bytes.
#[derive(Debug, Clone, Copy)]
pub struct Block<'a> {
    /// The share number the block was produced for (`0 .. n`).
    pub index: usize,
    /// The block's bytes, exactly [`Codec::block_len`] long.
    pub data: &'a [u8],
}

/// An erasure codec bound to one set of parameters.
pub trait Codec: Send + Sync {
    /// The registry name of this codec (recorded in the URI extension block).
    fn name(&self) -> &str;

    /// The parameters this instance encodes with.
    fn params(&self) -> CodecParams;

    /// The length of each block for a segment of `data_len` bytes.
    ///
    /// # Contract
    /// `data_len` is a multiple of k. The result is at least `data_len / k`;
    /// a codec that works on aligned sizes (leopard needs multiples of 64)
    /// returns a larger value and zero-pads internally. Pure function of
    /// `data_len` and the parameters.
    fn block_len(&self, data_len: usize) -> usize;

    /// Encode one segment into N blocks.
    ///
    /// # Contract
    /// - `data.len()` must be a non-zero multiple of k, otherwise
    ///   `InvalidInput` (never a panic).
    /// - Returns exactly n blocks, each [`Codec::block_len`]`(data.len())` long.
    /// - Systematic: block `i < k` starts with `data[i*s .. (i+1)*s]` where
    ///   `s = data.len() / k`, followed by zero padding up to the block length.
    /// - Deterministic: the same input gives the same blocks, on every machine
    ///   and with or without SIMD, because blocks are stored and compared.
    fn encode(&self, data: &[u8]) -> Result<Vec<Vec<u8>>>;

    /// Rebuild a segment of `data_len` bytes from blocks.
    ///
    /// # Contract
    /// - Needs at least k blocks with distinct indexes below n, all of the
    ///   length `block_len(data_len)`; uses the first k distinct ones given.
    /// - Fewer than k blocks, an index out of range, a repeated index or a
    ///   block of the wrong length: `InvalidInput` or `NotEnoughShares`,
    ///   never a panic.
    /// - Returns the `data_len` bytes that [`Codec::encode`] was given. The
    ///   codec cannot tell a tampered block from a good one: integrity is the
    ///   hash trees' job.
    fn decode(&self, blocks: &[Block<'_>], data_len: usize) -> Result<Vec<u8>>;
}

/// Shared argument checks for [`Codec::decode`] implementations.
///
/// Returns the first k blocks with distinct indexes, sorted by index, after
/// checking lengths and ranges, so every codec rejects bad input the same way.
pub fn select_decode_blocks<'a>(
    params: CodecParams,
    blocks: &[Block<'a>],
    block_len: usize,
) -> Result<Vec<Block<'a>>> {
    let mut seen = [false; MAX_SHARES as usize];
    let mut chosen = Vec::with_capacity(params.k());
    for b in blocks {
        if b.index >= params.n() {
            return Err(Error::invalid_input(format!(
                "block index {} is out of range for n={}",
                b.index, params.n
            )));
        }
        if seen[b.index] {
            return Err(Error::invalid_input(format!(
                "block index {} given more than once",
                b.index
            )));
        }
        if b.data.len() != block_len {
            return Err(Error::invalid_input(format!(
                "block {} is {} bytes, expected {block_len}",
                b.index,
                b.data.len()
            )));
        }
        seen[b.index] = true;
        if chosen.len() < params.k() {
            chosen.push(*b);
        }
    }
    if chosen.len() < params.k() {
        return Err(Error::not_enough_shares(format!(
            "{} distinct blocks given, {} needed",
            chosen.len(),
            params.k
        )));
    }
    chosen.sort_by_key(|b| b.index);
    Ok(chosen)
}

/// The fast path every systematic codec shares: when `chosen` (as returned
/// by [`select_decode_blocks`]) is exactly the k primary blocks, the segment
/// is their first `per_block` bytes laid end to end; no arithmetic needed.
/// `None` when any parity block is among them.
pub fn concat_primaries(chosen: &[Block<'_>], per_block: usize) -> Option<Vec<u8>> {
    if !chosen.iter().enumerate().all(|(i, b)| b.index == i) {
        return None;
    }
    let mut out = Vec::with_capacity(chosen.len() * per_block);
    for b in chosen {
        out.extend_from_slice(&b.data[..per_block]);
    }
    Some(out)
}

/// Shared argument check for [`Codec::encode`] implementations.
pub fn check_encode_input(params: CodecParams, data: &[u8]) -> Result<()> {
    if data.is_empty() || !data.len().is_multiple_of(params.k()) {
        return Err(Error::invalid_input(format!(
            "segment of {} bytes is not a non-zero multiple of k={}",
            data.len(),
            params.k
        )));
    }
    Ok(())
}

/// Shared argument check for the `data_len` of [`Codec::decode`].
pub fn check_decode_len(params: CodecParams, data_len: usize) -> Result<()> {
    if data_len == 0 || !data_len.is_multiple_of(params.k()) {
        return Err(Error::invalid_input(format!(
            "segment length {data_len} is not a non-zero multiple of k={}",
            params.k
        )));
    }
    Ok(())
}

/// Builds the codec a file names in its UEB.
pub type CodecProvider = dyn Fn(&str, CodecParams) -> Result<Arc<dyn Codec>> + Send + Sync;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_bounds() {
        assert!(CodecParams::new(0, 1).is_err());
        assert!(CodecParams::new(4, 3).is_err());
        assert!(CodecParams::new(1, 257).is_err());
        assert!(CodecParams::new(256, 256).is_ok());
    }

    #[test]
    fn select_rejects_bad_sets() {
        let p = CodecParams::new(2, 3).unwrap_or_else(|e| panic!("{e}"));
        let a = [0u8; 4];
        let short = [0u8; 3];
        let b = |index, data| Block { index, data };
        assert!(select_decode_blocks(p, &[b(0, &a)], 4).is_err());
        assert!(select_decode_blocks(p, &[b(0, &a), b(0, &a)], 4).is_err());
        assert!(select_decode_blocks(p, &[b(0, &a), b(3, &a)], 4).is_err());
        assert!(select_decode_blocks(p, &[b(0, &a), b(1, &short)], 4).is_err());
        let ok = select_decode_blocks(p, &[b(2, &a), b(0, &a), b(1, &a)], 4)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ok.iter().map(|b| b.index).collect::<Vec<_>>(), vec![0, 2]);
    }
}
