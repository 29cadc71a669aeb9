//! `crs`: the Reed-Solomon code of zfec, Tahoe-LAFS's codec, byte for byte.
//!
//! Tahoe-LAFS names its codec `crs` in every URI extension block, and caps
//! depend on every byte of every share, so reproducing Tahoe's caps needs
//! exactly zfec's blocks. zfec's code is systematic and built from a
//! Vandermonde matrix over GF(2^8) (polynomial 0x11d) whose rows evaluate
//! at the points 0, 1, α, α², …, α^(n-2) (α = 2): row 0 is `[1, 0, …, 0]`
//! and row r ≥ 1 is `[α^((r-1)·c)]` for column c. Multiplying it on the
//! right by the inverse of its top k×k square gives the encoding matrix,
//! whose top is the identity. Parity block `i ≥ k` is the i-th row of that
//! matrix applied to the k data blocks.
//!
//! This is our own implementation of that construction; the slice
//! arithmetic comes from [`tahoe_gf256`], which picks SIMD at run time.
//! Encoding works through the blocks in cache-sized chunks so that the k
//! inputs and n-k outputs of a chunk stay in cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tahoe_core::kinds::codec::{
    Block, Codec, CodecParams, check_decode_len, check_encode_input, concat_primaries,
    select_decode_blocks,
};
use tahoe_core::plugin::registry::{PluginContext, Registry};
use tahoe_core::{Error, Result};
use tahoe_gf256::{self as gf, Kernel};

/// The registry name, as recorded in Tahoe's URI extension blocks.
pub const NAME: &str = "crs";

/// `[codec.crs]` settings: whether to use SIMD.
pub type CrsConfig = tahoe_gf256::SimdConfig;

/// Bytes per block processed at a time when encoding (keeps k inputs and
/// n-k outputs of one chunk in L2).
const CHUNK: usize = 16 * 1024;

/// Decoding matrices kept per codec instance, keyed by the set of blocks
/// used; downloads use one set for most segments.
const DECODE_CACHE: usize = 16;

/// A k×k matrix over GF(2^8), as rows.
type Matrix = Vec<Vec<u8>>;

/// The zfec-compatible codec.
pub struct Crs {
    params: CodecParams,
    kernel: Kernel,
    /// Rows k..n of the encoding matrix, each k coefficients.
    parity_rows: Vec<Vec<u8>>,
    decode_cache: Mutex<HashMap<Vec<u8>, Arc<Matrix>>>,
}

/// Invert a square matrix over GF(2^8) by Gauss-Jordan elimination.
fn invert(mut m: Matrix) -> Result<Matrix> {
    let k = m.len();
    let mut inv: Matrix = (0..k)
        .map(|i| (0..k).map(|j| u8::from(i == j)).collect())
        .collect();
    for col in 0..k {
        let pivot = (col..k)
            .find(|&r| m[r][col] != 0)
            .ok_or_else(|| Error::internal("singular matrix in crs"))?;
        m.swap(col, pivot);
        inv.swap(col, pivot);
        let p = m[col][col];
        let scale = gf::div(1, p).ok_or_else(|| Error::internal("zero pivot"))?;
        for j in 0..k {
            m[col][j] = gf::mul(m[col][j], scale);
            inv[col][j] = gf::mul(inv[col][j], scale);
        }
        for r in 0..k {
            let f = m[r][col];
            if r != col && f != 0 {
                for j in 0..k {
                    m[r][j] ^= gf::mul(f, m[col][j]);
                    inv[r][j] ^= gf::mul(f, inv[col][j]);
                }
            }
        }
    }
    Ok(inv)
}

impl Crs {
    /// Build the codec for `params`, with the given slice kernel.
    pub fn new(params: CodecParams, kernel: Kernel) -> Result<Self> {
        let (k, n) = (params.k(), params.n());
        let vandermonde_row = |r: usize| -> Vec<u8> {
            if r == 0 {
                (0..k).map(|c| u8::from(c == 0)).collect()
            } else {
                (0..k).map(|c| gf::exp(2, (r - 1) * c)).collect()
            }
        };
        let top_inv = invert((0..k).map(vandermonde_row).collect())?;
        let parity_rows = (k..n)
            .map(|r| {
                let v = vandermonde_row(r);
                (0..k)
                    .map(|c| (0..k).fold(0u8, |acc, j| acc ^ gf::mul(v[j], top_inv[j][c])))
                    .collect()
            })
            .collect();
        Ok(Crs {
            params,
            kernel,
            parity_rows,
            decode_cache: Mutex::new(HashMap::new()),
        })
    }

    /// The row of the encoding matrix for share `index`.
    fn row(&self, index: usize) -> Vec<u8> {
        let k = self.params.k();
        if index < k {
            (0..k).map(|c| u8::from(c == index)).collect()
        } else {
            self.parity_rows[index - k].clone()
        }
    }

    fn decode_matrix(&self, indexes: &[u8]) -> Result<Arc<Matrix>> {
        let mut cache = self
            .decode_cache
            .lock()
            .map_err(|_| Error::internal("crs decode cache poisoned"))?;
        if let Some(m) = cache.get(indexes) {
            return Ok(m.clone());
        }
        let m = Arc::new(invert(
            indexes.iter().map(|&i| self.row(usize::from(i))).collect(),
        )?);
        if cache.len() >= DECODE_CACHE {
            cache.clear();
        }
        cache.insert(indexes.to_vec(), m.clone());
        Ok(m)
    }
}

impl Codec for Crs {
    fn name(&self) -> &str {
        NAME
    }

    fn params(&self) -> CodecParams {
        self.params
    }

    fn block_len(&self, data_len: usize) -> usize {
        data_len / self.params.k()
    }

    fn encode(&self, data: &[u8]) -> Result<Vec<Vec<u8>>> {
        check_encode_input(self.params, data)?;
        let k = self.params.k();
        let bs = data.len() / k;
        let inputs: Vec<&[u8]> = data.chunks_exact(bs).collect();
        let mut blocks: Vec<Vec<u8>> = inputs.iter().map(|b| b.to_vec()).collect();
        // One fresh (calloc'd, untouched) buffer per row. Not `vec![v; n]`:
        // cloning reads the first buffer, mapping the zero page into it, and
        // the first write to it then costs a copy-on-write fault and a TLB
        // shootdown on every page (measured: 11% of an upload's CPU).
        let mut parity: Vec<Vec<u8>> = (0..self.parity_rows.len()).map(|_| vec![0u8; bs]).collect();
        let mut start = 0;
        while start < bs {
            let end = (start + CHUNK).min(bs);
            for (row, out) in self.parity_rows.iter().zip(parity.iter_mut()) {
                let out = &mut out[start..end];
                self.kernel.mul_slice(row[0], &inputs[0][start..end], out);
                for (c, input) in row.iter().zip(&inputs).skip(1) {
                    self.kernel.mul_slice_xor(*c, &input[start..end], out);
                }
            }
            start = end;
        }
        blocks.append(&mut parity);
        Ok(blocks)
    }

    fn decode(&self, blocks: &[Block<'_>], data_len: usize) -> Result<Vec<u8>> {
        check_decode_len(self.params, data_len)?;
        let k = self.params.k();
        let bs = data_len / k;
        let chosen = select_decode_blocks(self.params, blocks, bs)?;
        if let Some(data) = concat_primaries(&chosen, bs) {
            return Ok(data);
        }
        let mut out = vec![0u8; data_len];
        let indexes: Vec<u8> = chosen.iter().map(|b| b.index as u8).collect();
        let inv = self.decode_matrix(&indexes)?;
        for (i, dest) in out.chunks_exact_mut(bs).enumerate() {
            if let Some(b) = chosen.iter().find(|b| b.index == i) {
                dest.copy_from_slice(b.data);
                continue;
            }
            let coeffs = &inv[i];
            self.kernel.mul_slice(coeffs[0], chosen[0].data, dest);
            for (c, b) in coeffs.iter().zip(&chosen).skip(1) {
                self.kernel.mul_slice_xor(*c, b.data, dest);
            }
        }
        Ok(out)
    }
}

/// Register `crs` in `registry`.
pub fn register(registry: &mut Registry) -> Result<()> {
    registry.add_codec(
        NAME,
        "Reed-Solomon byte-compatible with zfec (Tahoe-LAFS's codec); any k <= n <= 256",
        |params, ctx: &PluginContext| {
            let cfg: CrsConfig = ctx.config.parse()?;
            Ok(Arc::new(Crs::new(params, Kernel::choose(cfg.simd))?) as Arc<dyn Codec>)
        },
    )
}
