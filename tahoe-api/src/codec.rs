//! Erasure codecs over the ABI.

use crate::abi::{self, Buf, Handle, PluginDescriptor, Slice, from_handle, guard, object, put};
use crate::{Error, ErrorKind, PluginKind, Result};

/// An erasure codec: the node's `tahoe_core::kinds::codec::Codec` contract
/// (systematic, any k of n blocks give the segment back). The node's
/// codec conformance suite checks a loaded library against it.
pub trait Codec: Send + Sync + Sized + 'static {
    /// The registry name (`[codec] name = "NAME"`), recorded in each
    /// file's URI extension block.
    const NAME: &'static str;
    /// One line for `tahoe plugins`.
    const DESCRIPTION: &'static str;

    /// A codec for k-of-n (`1 <= k <= n <= 256`, checked by the node);
    /// `config` is the `[codec.NAME]` section as TOML text.
    fn new(k: u16, n: u16, config: &str) -> Result<Self>;
    /// The block length for a segment of `data_len` bytes (a multiple of
    /// k); a pure function.
    fn block_len(&self, data_len: usize) -> usize;
    /// The n blocks of `data`, each `block_len(data.len())` long.
    fn encode(&self, data: &[u8]) -> Result<Vec<Vec<u8>>>;
    /// The `data_len` bytes of a segment from k (or more) distinct blocks,
    /// given as (share number, block).
    fn decode(&self, blocks: &[(usize, &[u8])], data_len: usize) -> Result<Vec<u8>>;
}

/// The codec kind's function table (statuses as in
/// [`crate::StorageTable`]). `block_len` returns `usize::MAX` when the
/// plugin failed.
#[repr(C)]
#[allow(missing_docs)]
pub struct CodecTable {
    pub new:
        unsafe extern "C" fn(k: u16, n: u16, config: Slice, out: *mut Handle, err: *mut Buf) -> i32,
    pub drop: unsafe extern "C" fn(codec: Handle),
    pub block_len: unsafe extern "C" fn(codec: Handle, data_len: usize) -> usize,
    /// `out`: the n blocks one after another.
    pub encode:
        unsafe extern "C" fn(codec: Handle, data: Slice, out: *mut Buf, err: *mut Buf) -> i32,
    /// `indices[i]` is the share number of `blocks[i]`, `count` of each.
    pub decode: unsafe extern "C" fn(
        codec: Handle,
        indices: *const u32,
        blocks: *const Slice,
        count: usize,
        data_len: usize,
        out: *mut Buf,
        err: *mut Buf,
    ) -> i32,
}

unsafe extern "C" fn new<T: Codec>(
    k: u16,
    n: u16,
    config: Slice,
    out: *mut Handle,
    err: *mut Buf,
) -> i32 {
    guard(err, || {
        // SAFETY: lent for this call.
        let config = unsafe { abi::text(config, "the configuration") }?;
        put(out, abi::into_handle(T::new(k, n, config)?))
    })
}

unsafe extern "C" fn drop_codec<T: Codec>(codec: Handle) {
    let _ = guard(std::ptr::null_mut(), || {
        // SAFETY: the node drops each codec once.
        drop(unsafe { from_handle::<T>(codec) }?);
        Ok(())
    });
}

unsafe extern "C" fn block_len<T: Codec>(codec: Handle, data_len: usize) -> usize {
    let mut len = usize::MAX;
    let _ = guard(std::ptr::null_mut(), || {
        // SAFETY: a live codec handle.
        len = unsafe { object::<T>(codec) }?.block_len(data_len);
        Ok(())
    });
    len
}

unsafe extern "C" fn encode<T: Codec>(
    codec: Handle,
    data: Slice,
    out: *mut Buf,
    err: *mut Buf,
) -> i32 {
    guard(err, || {
        // SAFETY: a live codec handle; data lent for this call.
        let blocks = unsafe { object::<T>(codec) }?.encode(unsafe { data.as_bytes() })?;
        put(out, Buf::from_vec(blocks.concat()))
    })
}

unsafe extern "C" fn decode<T: Codec>(
    codec: Handle,
    indices: *const u32,
    blocks: *const Slice,
    count: usize,
    data_len: usize,
    out: *mut Buf,
    err: *mut Buf,
) -> i32 {
    guard(err, || {
        if count > 0 && (indices.is_null() || blocks.is_null()) {
            return Err(Error::new(ErrorKind::InvalidInput, "null block arrays"));
        }
        let (indices, slices) = if count == 0 {
            (&[][..], &[][..])
        } else {
            // SAFETY: the node passes two arrays of `count` entries.
            unsafe {
                (
                    std::slice::from_raw_parts(indices, count),
                    std::slice::from_raw_parts(blocks, count),
                )
            }
        };
        let given: Vec<(usize, &[u8])> = indices
            .iter()
            // SAFETY: each block is lent for this call.
            .zip(slices)
            .map(|(&i, s)| (i as usize, unsafe { s.as_bytes() }))
            .collect();
        // SAFETY: a live codec handle.
        let data = unsafe { object::<T>(codec) }?.decode(&given, data_len)?;
        put(out, Buf::from_vec(data))
    })
}

/// The descriptor of codec `T` (what `export_codec!` returns).
pub fn descriptor<T: Codec>() -> PluginDescriptor {
    abi::descriptor(
        PluginKind::Codec,
        T::NAME,
        T::DESCRIPTION,
        CodecTable {
            new: new::<T>,
            drop: drop_codec::<T>,
            block_len: block_len::<T>,
            encode: encode::<T>,
            decode: decode::<T>,
        },
    )
}
