//! Stream ciphers over the ABI.

use crate::abi::{self, Buf, Handle, PluginDescriptor, Slice, from_handle, guard, object, put};
use crate::{Error, ErrorKind, PluginKind, Result};

/// A seekable stream cipher: the node's `tahoe_core::kinds::cipher::Cipher`
/// contract (XOR with a keystream that depends only on key and offset).
pub trait Cipher: Send + Sync + Sized + 'static {
    /// The registry name (`[cipher] name = "NAME"`).
    const NAME: &'static str;
    /// One line for `tahoe plugins`.
    const DESCRIPTION: &'static str;

    /// A cipher; `config` is the `[cipher.NAME]` section as TOML text.
    fn new(config: &str) -> Result<Self>;
    /// The key length in bytes.
    fn key_len(&self) -> usize;
    /// XOR `data` with the keystream of `key` from byte `offset`.
    fn apply_keystream(&self, key: &[u8], offset: u64, data: &mut [u8]) -> Result<()>;
}

/// The cipher kind's function table (statuses as in
/// [`crate::StorageTable`]). `key_len` returns `usize::MAX` when the
/// plugin failed.
#[repr(C)]
#[allow(missing_docs)]
pub struct CipherTable {
    pub new: unsafe extern "C" fn(config: Slice, out: *mut Handle, err: *mut Buf) -> i32,
    pub drop: unsafe extern "C" fn(cipher: Handle),
    pub key_len: unsafe extern "C" fn(cipher: Handle) -> usize,
    pub apply_keystream: unsafe extern "C" fn(
        cipher: Handle,
        key: Slice,
        offset: u64,
        data: *mut u8,
        len: usize,
        err: *mut Buf,
    ) -> i32,
}

unsafe extern "C" fn new<T: Cipher>(config: Slice, out: *mut Handle, err: *mut Buf) -> i32 {
    guard(err, || {
        // SAFETY: lent for this call.
        let config = unsafe { abi::text(config, "the configuration") }?;
        put(out, abi::into_handle(T::new(config)?))
    })
}

unsafe extern "C" fn drop_cipher<T: Cipher>(cipher: Handle) {
    let _ = guard(std::ptr::null_mut(), || {
        // SAFETY: the node drops each cipher once.
        drop(unsafe { from_handle::<T>(cipher) }?);
        Ok(())
    });
}

unsafe extern "C" fn key_len<T: Cipher>(cipher: Handle) -> usize {
    let mut len = usize::MAX;
    let _ = guard(std::ptr::null_mut(), || {
        // SAFETY: a live cipher handle.
        len = unsafe { object::<T>(cipher) }?.key_len();
        Ok(())
    });
    len
}

unsafe extern "C" fn apply_keystream<T: Cipher>(
    cipher: Handle,
    key: Slice,
    offset: u64,
    data: *mut u8,
    len: usize,
    err: *mut Buf,
) -> i32 {
    guard(err, || {
        if len > 0 && data.is_null() {
            return Err(Error::new(ErrorKind::InvalidInput, "null data"));
        }
        let data: &mut [u8] = if len == 0 {
            &mut []
        } else {
            // SAFETY: the node lends `len` writable bytes for this call.
            unsafe { std::slice::from_raw_parts_mut(data, len) }
        };
        // SAFETY: a live cipher handle; the key is lent for this call.
        unsafe { object::<T>(cipher) }?.apply_keystream(unsafe { key.as_bytes() }, offset, data)
    })
}

/// The descriptor of cipher `T` (what `export_cipher!` returns).
pub fn descriptor<T: Cipher>() -> PluginDescriptor {
    abi::descriptor(
        PluginKind::Cipher,
        T::NAME,
        T::DESCRIPTION,
        CipherTable {
            new: new::<T>,
            drop: drop_cipher::<T>,
            key_len: key_len::<T>,
            apply_keystream: apply_keystream::<T>,
        },
    )
}
