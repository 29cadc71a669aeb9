//! A cipher from a library: its table's calls.

#![allow(unsafe_code)]

use std::sync::Arc;

use tahoe_api::{CipherTable, Handle, Slice};

use super::library::{Library, Object, text_of};
use crate::error::Result;
use crate::kinds::cipher::Cipher;
use crate::plugin::registry::PluginContext;

/// A cipher from a library.
pub(super) struct LoadedCipher {
    pub(super) obj: Object,
    pub(super) key_len: usize,
}

impl LoadedCipher {
    pub(super) fn new(lib: Arc<Library>, ctx: &PluginContext) -> Result<Self> {
        let config = ctx.config.to_toml()?;
        let mut handle: Handle = std::ptr::null_mut();
        // SAFETY: a cipher library's table; the slice lives across the call.
        let t = unsafe { lib.table::<CipherTable>() };
        lib.call(|err| unsafe { (t.new)(text_of(&config), &mut handle, err) })?;
        if handle.is_null() {
            return Err(lib.garbage("no cipher"));
        }
        // SAFETY: a live cipher handle.
        let key_len = unsafe { (t.key_len)(handle) };
        let obj = Object { lib, handle };
        if key_len == 0 || key_len > 1024 {
            return Err(obj.lib.garbage(&format!("a key length of {key_len}")));
        }
        Ok(LoadedCipher { obj, key_len })
    }
}

impl Cipher for LoadedCipher {
    fn name(&self) -> &str {
        &self.obj.lib.name
    }

    fn key_len(&self) -> usize {
        self.key_len
    }

    fn apply_keystream(&self, key: &[u8], offset: u64, data: &mut [u8]) -> Result<()> {
        crate::kinds::cipher::check_key_len(self, key)?;
        // SAFETY: a cipher library.
        let t = unsafe { self.obj.lib.table::<CipherTable>() };
        self.obj.lib.call(|err| {
            // SAFETY: a live cipher handle; key and data live across the call.
            unsafe {
                (t.apply_keystream)(
                    self.obj.handle,
                    Slice::of(key),
                    offset,
                    data.as_mut_ptr(),
                    data.len(),
                    err,
                )
            }
        })
    }
}
