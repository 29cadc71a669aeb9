//! A codec from a library: its table's calls, and checks of the blocks it
//! returns.

#![allow(unsafe_code)]

use std::sync::Arc;

use tahoe_api::{CodecTable, Handle, Slice};

use super::library::{Library, Object, text_of};
use crate::error::{Error, Result};
use crate::kinds::codec::{Block, Codec, CodecParams};
use crate::plugin::registry::PluginContext;

/// A codec from a library.
pub(super) struct LoadedCodec {
    pub(super) obj: Object,
    pub(super) params: CodecParams,
}

impl LoadedCodec {
    pub(super) fn new(lib: Arc<Library>, params: CodecParams, ctx: &PluginContext) -> Result<Self> {
        let config = ctx.config.to_toml()?;
        let mut handle: Handle = std::ptr::null_mut();
        // SAFETY: a codec library's table; the slice lives across the call.
        let t = unsafe { lib.table::<CodecTable>() };
        lib.call(|err| unsafe { (t.new)(params.k, params.n, text_of(&config), &mut handle, err) })?;
        if handle.is_null() {
            return Err(lib.garbage("no codec"));
        }
        Ok(LoadedCodec {
            obj: Object { lib, handle },
            params,
        })
    }

    pub(super) fn table(&self) -> &CodecTable {
        // SAFETY: a codec library.
        unsafe { self.obj.lib.table::<CodecTable>() }
    }

    /// The library's block length, or an error when it is not a sane one
    /// (at least `data_len / k`, at most twice that plus 4 KiB).
    pub(super) fn checked_block_len(&self, data_len: usize) -> Result<usize> {
        // SAFETY: a live codec handle.
        let len = unsafe { (self.table().block_len)(self.obj.handle, data_len) };
        let least = data_len / self.params.k();
        if len < least || len > least.saturating_mul(2).saturating_add(4096) {
            return Err(self
                .obj
                .lib
                .garbage(&format!("a block length of {len} for {data_len} bytes")));
        }
        Ok(len)
    }
}

impl Codec for LoadedCodec {
    fn name(&self) -> &str {
        &self.obj.lib.name
    }

    fn params(&self) -> CodecParams {
        self.params
    }

    fn block_len(&self, data_len: usize) -> usize {
        // A codec that cannot say is given the unpadded length; its encode
        // and decode then fail the length checks below.
        self.checked_block_len(data_len)
            .unwrap_or_else(|_| data_len.div_ceil(self.params.k()))
    }

    fn encode(&self, data: &[u8]) -> Result<Vec<Vec<u8>>> {
        // The contract's argument checks are the node's, for every codec
        // a library brings.
        if data.is_empty() || !data.len().is_multiple_of(self.params.k()) {
            return Err(Error::invalid_input(format!(
                "a segment of {} bytes cannot be encoded {}-of-{}: it must be a non-zero multiple of k",
                data.len(),
                self.params.k,
                self.params.n
            )));
        }
        let block = self.checked_block_len(data.len())?;
        let out = self.obj.lib.call_buf(|out, err| {
            // SAFETY: a live codec handle; the slice lives across the call.
            unsafe { (self.table().encode)(self.obj.handle, Slice::of(data), out, err) }
        })?;
        if out.len() != block * self.params.n() {
            return Err(self.obj.lib.garbage(&format!(
                "{} bytes of blocks, not {} blocks of {block}",
                out.len(),
                self.params.n
            )));
        }
        Ok(out.chunks_exact(block.max(1)).map(<[u8]>::to_vec).collect())
    }

    fn decode(&self, blocks: &[Block<'_>], data_len: usize) -> Result<Vec<u8>> {
        let block = self.checked_block_len(data_len)?;
        let blocks = crate::kinds::codec::select_decode_blocks(self.params, blocks, block)?;
        let indices: Vec<u32> = blocks.iter().map(|b| b.index as u32).collect();
        let slices: Vec<Slice> = blocks.iter().map(|b| Slice::of(b.data)).collect();
        let out = self.obj.lib.call_buf(|out, err| {
            // SAFETY: a live codec handle; the arrays live across the call.
            unsafe {
                (self.table().decode)(
                    self.obj.handle,
                    indices.as_ptr(),
                    slices.as_ptr(),
                    slices.len(),
                    data_len,
                    out,
                    err,
                )
            }
        })?;
        if out.len() != data_len {
            return Err(self
                .obj
                .lib
                .garbage(&format!("{} bytes decoded, not {data_len}", out.len())));
        }
        Ok(out)
    }
}
