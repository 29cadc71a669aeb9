//! `leopard`: FFT-based Reed-Solomon (the leopard-codec crate).
//!
//! Leopard's cost grows as O(n log n) instead of O(k·(n-k)), which pays off
//! for wide codes. Two limits of the algorithm show through, and both are
//! handled here rather than surprising a caller:
//!
//! - it cannot make more parity blocks than data blocks (`n - k <= k`), so
//!   such parameters (including Tahoe's default 3-of-10) are refused when
//!   the codec is built, with a `ConfigInvalid` error naming the limit;
//! - it works on blocks whose length is a multiple of 64 bytes, so
//!   [`Codec::block_len`] rounds up and data blocks are zero-padded.

use std::sync::Arc;

use tahoe_core::kinds::codec::{
    Block, Codec, CodecParams, check_decode_len, check_encode_input, concat_primaries,
    select_decode_blocks,
};
use tahoe_core::plugin::registry::{PluginContext, Registry};
use tahoe_core::{Error, Result};

/// The registry name.
pub const NAME: &str = "leopard";

/// Leopard's block alignment.
const ALIGN: usize = 64;

/// The leopard codec.
pub struct Leopard {
    params: CodecParams,
}

fn leopard_error(e: leopard_codec::LeopardError) -> Error {
    Error::invalid_input(format!("leopard: {e}"))
}

impl Leopard {
    /// Build the codec, refusing parameters leopard cannot serve.
    pub fn new(params: CodecParams) -> Result<Self> {
        let (k, n) = (params.k(), params.n());
        if n - k > k {
            return Err(Error::config_invalid(format!(
                "leopard cannot make more parity shares than data shares: {k}-of-{n} has {} parity \
                 for {k} data (it needs n - k <= k, e.g. {k}-of-{}); use crs or reed-solomon for \
                 these parameters",
                n - k,
                2 * k
            )));
        }
        let codec = Leopard { params };
        if n > k {
            // Some shapes overflow leopard's tables; find out now, not mid-upload.
            codec.encode(&vec![0u8; k * ALIGN]).map_err(|e| {
                Error::config_invalid(format!("leopard cannot encode {k}-of-{n}: {e}"))
            })?;
        }
        Ok(codec)
    }
}

impl Codec for Leopard {
    fn name(&self) -> &str {
        NAME
    }

    fn params(&self) -> CodecParams {
        self.params
    }

    fn block_len(&self, data_len: usize) -> usize {
        (data_len / self.params.k()).div_ceil(ALIGN) * ALIGN
    }

    fn encode(&self, data: &[u8]) -> Result<Vec<Vec<u8>>> {
        check_encode_input(self.params, data)?;
        let (k, n) = (self.params.k(), self.params.n());
        let bs = data.len() / k;
        let padded = self.block_len(data.len());
        let mut blocks: Vec<Vec<u8>> = Vec::with_capacity(n);
        for chunk in data.chunks_exact(bs) {
            let mut b = Vec::with_capacity(padded);
            b.extend_from_slice(chunk);
            b.resize(padded, 0);
            blocks.push(b);
        }
        blocks.resize(n, vec![0u8; padded]);
        if n > k {
            leopard_codec::encode(&mut blocks, k).map_err(leopard_error)?;
        }
        Ok(blocks)
    }

    fn decode(&self, blocks: &[Block<'_>], data_len: usize) -> Result<Vec<u8>> {
        check_decode_len(self.params, data_len)?;
        let (k, n) = (self.params.k(), self.params.n());
        let bs = data_len / k;
        let chosen = select_decode_blocks(self.params, blocks, self.block_len(data_len))?;
        if let Some(data) = concat_primaries(&chosen, bs) {
            return Ok(data);
        }
        let mut out = Vec::with_capacity(data_len);
        let mut shards: Vec<Vec<u8>> = vec![Vec::new(); n];
        for b in &chosen {
            shards[b.index] = b.data.to_vec();
        }
        leopard_codec::reconstruct(&mut shards, k).map_err(leopard_error)?;
        for s in shards.iter().take(k) {
            let s = s
                .get(..bs)
                .ok_or_else(|| Error::internal("leopard returned a short block"))?;
            out.extend_from_slice(s);
        }
        Ok(out)
    }
}

/// Register `leopard` in `registry`.
pub fn register(registry: &mut Registry) -> Result<()> {
    registry.add_codec(
        NAME,
        "FFT-based Reed-Solomon via leopard-codec; needs n - k <= k (3-of-10 is refused)",
        |params, ctx: &PluginContext| {
            // No settings yet; still refuse unknown keys in [codec.leopard].
            let _: NoSettings = ctx.config.parse()?;
            Ok(Arc::new(Leopard::new(params)?) as Arc<dyn Codec>)
        },
    )
}

/// `[codec.leopard]` has no settings; this rejects any key put there.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NoSettings {}
