//! `reed-solomon`: the codec of the reed-solomon-erasure crate.
//!
//! Its blocks are not zfec's (it evaluates its Vandermonde matrix at other
//! points), so files written with it are readable only by nodes that have
//! this codec; the name in each file's URI extension block says so.
//!
//! reed-solomon-erasure decides between its SIMD and pure-Rust slice
//! arithmetic when it is compiled, and its SIMD code needs AVX2 on x86-64.
//! The decision is moved to run time here: the codec is instantiated over
//! reed-solomon-erasure's own field (SIMD) only when [`tahoe_gf256`] says the
//! CPU can run it, and over [`tahoe_gf256::PortableField`] otherwise.

use std::sync::Arc;

use reed_solomon_erasure::galois_8;
use reed_solomon_erasure::{Field, ReedSolomon};
use tahoe_core::kinds::codec::{
    Block, Codec, CodecParams, check_decode_len, check_encode_input, concat_primaries,
    select_decode_blocks,
};
use tahoe_core::plugin::registry::{PluginContext, Registry};
use tahoe_core::{Error, Result};
use tahoe_gf256::{Kernel, PortableField};

/// The registry name.
pub const NAME: &str = "reed-solomon";

/// `[codec.reed-solomon]` settings: whether to use SIMD.
pub type ReedSolomonConfig = tahoe_gf256::SimdConfig;

enum Engine {
    Simd(ReedSolomon<galois_8::Field>),
    Portable(ReedSolomon<PortableField>),
    /// k = n: no parity, reed-solomon-erasure refuses that shape.
    Identity,
}

/// The reed-solomon-erasure codec.
pub struct ReedSolomonCodec {
    params: CodecParams,
    engine: Engine,
}

fn rs_error(e: reed_solomon_erasure::Error) -> Error {
    Error::invalid_input(format!("reed-solomon: {e:?}"))
}

fn encode_with<F: Field<Elem = u8>>(
    rs: &ReedSolomon<F>,
    shards: &[&[u8]],
    bs: usize,
) -> Result<Vec<Vec<u8>>> {
    // Fresh buffers one by one, not cloned: see the crs codec's encode.
    let mut parity: Vec<Vec<u8>> = (0..rs.parity_shard_count())
        .map(|_| vec![0u8; bs])
        .collect();
    rs.encode_sep(shards, &mut parity).map_err(rs_error)?;
    Ok(parity)
}

fn reconstruct_with<F: Field<Elem = u8>>(
    rs: &ReedSolomon<F>,
    slots: &mut [Option<Vec<u8>>],
) -> Result<()> {
    rs.reconstruct_data(slots).map_err(rs_error)
}

impl ReedSolomonCodec {
    /// Build the codec for `params` with the given kernel choice.
    pub fn new(params: CodecParams, kernel: Kernel) -> Result<Self> {
        let (k, parity) = (params.k(), params.n() - params.k());
        let engine = if parity == 0 {
            Engine::Identity
        } else {
            match kernel {
                Kernel::Simd => Engine::Simd(ReedSolomon::new(k, parity).map_err(rs_error)?),
                Kernel::Portable => {
                    Engine::Portable(ReedSolomon::new(k, parity).map_err(rs_error)?)
                }
            }
        };
        Ok(ReedSolomonCodec { params, engine })
    }
}

impl Codec for ReedSolomonCodec {
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
        let bs = data.len() / self.params.k();
        let shards: Vec<&[u8]> = data.chunks_exact(bs).collect();
        let mut parity = match &self.engine {
            Engine::Simd(rs) => encode_with(rs, &shards, bs)?,
            Engine::Portable(rs) => encode_with(rs, &shards, bs)?,
            Engine::Identity => Vec::new(),
        };
        let mut blocks: Vec<Vec<u8>> = shards.iter().map(|s| s.to_vec()).collect();
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
        let mut out = Vec::with_capacity(data_len);
        let mut slots: Vec<Option<Vec<u8>>> = vec![None; self.params.n()];
        for b in &chosen {
            slots[b.index] = Some(b.data.to_vec());
        }
        match &self.engine {
            Engine::Simd(rs) => reconstruct_with(rs, &mut slots)?,
            Engine::Portable(rs) => reconstruct_with(rs, &mut slots)?,
            Engine::Identity => return Err(Error::internal("k = n decode without primaries")),
        }
        for slot in slots.iter().take(k) {
            let block = slot
                .as_deref()
                .ok_or_else(|| Error::internal("reed-solomon left a data block empty"))?;
            out.extend_from_slice(block);
        }
        Ok(out)
    }
}

/// Register `reed-solomon` in `registry`.
pub fn register(registry: &mut Registry) -> Result<()> {
    registry.add_codec(
        NAME,
        "Reed-Solomon via reed-solomon-erasure (SIMD when the CPU has AVX2); any k <= n <= 256",
        |params, ctx: &PluginContext| {
            let cfg: ReedSolomonConfig = ctx.config.parse()?;
            Ok(
                Arc::new(ReedSolomonCodec::new(params, Kernel::choose(cfg.simd))?)
                    as Arc<dyn Codec>,
            )
        },
    )
}
