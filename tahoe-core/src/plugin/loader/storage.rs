//! A library's storage backend is `adapter::BlockingBackend` over these
//! two: they make the table's calls and check what crosses the C ABI
//! (handles, buffers, records); the adapter does everything else, as for a
//! linked plugin.

#![allow(unsafe_code)]

use std::sync::Arc;

use bytes::Bytes;
use tahoe_api::{Buf, Handle, Slice, StorageTable, wire};

use super::library::{Library, Object, text_of};
use crate::error::Result;
use crate::kinds::storage::{Lease, ShareInfo, ShareKind, TestVector, WriteVector};
use crate::plugin::loader::adapter;
use crate::plugin::registry::PluginContext;

/// A storage backend opened by a library.
pub(super) struct AbiStore(Arc<Object>);

impl AbiStore {
    pub(super) fn open(lib: Arc<Library>, ctx: &PluginContext) -> Result<Self> {
        let config = ctx.config.to_toml()?;
        let basedir = ctx.basedir.to_string_lossy().into_owned();
        let mut handle: Handle = std::ptr::null_mut();
        // SAFETY: a storage library's table; slices live across the call.
        let t = unsafe { lib.table::<StorageTable>() };
        lib.call(|err| unsafe { (t.open)(text_of(&config), text_of(&basedir), &mut handle, err) })?;
        if handle.is_null() {
            return Err(lib.garbage("no backend"));
        }
        Ok(AbiStore(Arc::new(Object { lib, handle })))
    }

    /// The library and its table.
    pub(super) fn parts(&self) -> (&Object, &StorageTable) {
        // SAFETY: only storage libraries make an AbiStore.
        (&self.0, unsafe { self.0.lib.table::<StorageTable>() })
    }
}

impl adapter::Store for AbiStore {
    type Pending = AbiPending;

    fn create(&self, si: &tahoe_api::StorageIndex, shnum: u8, size: u64) -> Result<AbiPending> {
        let (o, t) = self.parts();
        let mut h: Handle = std::ptr::null_mut();
        // SAFETY: a live backend handle; pointers valid for the call.
        o.lib
            .call(|err| unsafe { (t.create)(o.handle, si, shnum, size, &mut h, err) })?;
        if h.is_null() {
            return Err(o.lib.garbage("no pending share"));
        }
        Ok(AbiPending {
            backend: self.0.clone(),
            handle: h,
        })
    }

    fn read(
        &self,
        si: &tahoe_api::StorageIndex,
        shnum: u8,
        kind: ShareKind,
        offset: u64,
        len: u64,
    ) -> Result<Bytes> {
        let (o, t) = self.parts();
        let mut out = Buf::EMPTY;
        // SAFETY: a live backend handle; pointers valid for the call.
        o.lib.call(|err| unsafe {
            (t.read)(o.handle, si, shnum, kind.code(), offset, len, &mut out, err)
        })?;
        // Kept in the library's buffer, not copied.
        o.lib.take_bytes(out)
    }

    fn list(&self, si: &tahoe_api::StorageIndex) -> Result<Vec<ShareInfo>> {
        let (o, t) = self.parts();
        // SAFETY: a live backend handle; pointers valid for the call.
        let raw = o
            .lib
            .call_buf(|out, err| unsafe { (t.list)(o.handle, si, out, err) })?;
        wire::decode_share_infos(&raw).map_err(|_| o.lib.garbage("malformed share records"))
    }

    fn delete(&self, si: &tahoe_api::StorageIndex, shnum: u8) -> Result<()> {
        let (o, t) = self.parts();
        // SAFETY: a live backend handle; pointers valid for the call.
        o.lib
            .call(|err| unsafe { (t.delete)(o.handle, si, shnum, err) })
    }

    fn remaining_capacity(&self) -> Result<Option<u64>> {
        let (o, t) = self.parts();
        let (mut bytes, mut known) = (0u64, 0u8);
        // SAFETY: a live backend handle; pointers valid for the call.
        o.lib
            .call(|err| unsafe { (t.remaining_capacity)(o.handle, &mut bytes, &mut known, err) })?;
        Ok((known == 1).then_some(bytes))
    }

    fn test_and_write(
        &self,
        si: &tahoe_api::StorageIndex,
        shnum: u8,
        tests: &[TestVector],
        writes: &[WriteVector],
        new_length: Option<u64>,
    ) -> Result<bool> {
        let (o, t) = self.parts();
        let (tests, writes) = (wire::encode_tests(tests), wire::encode_writes(writes));
        let mut ok = 0u8;
        o.lib.call(|err| {
            // SAFETY: a live backend handle; pointers valid for the call.
            unsafe {
                (t.test_and_write)(
                    o.handle,
                    si,
                    shnum,
                    Slice::of(&tests),
                    Slice::of(&writes),
                    new_length.unwrap_or(0),
                    u8::from(new_length.is_some()),
                    &mut ok,
                    err,
                )
            }
        })?;
        Ok(ok == 1)
    }

    fn storage_indexes(
        &self,
        after: Option<&tahoe_api::StorageIndex>,
        limit: usize,
    ) -> Result<Option<Vec<tahoe_api::StorageIndex>>> {
        let (o, t) = self.parts();
        let after = after.map_or(std::ptr::null(), |a| a as *const _);
        let limit = u32::try_from(limit).unwrap_or(u32::MAX);
        let mut known = 0u8;
        // SAFETY: a live backend handle; pointers valid for the call.
        let raw = o.lib.call_buf(|out, err| unsafe {
            (t.storage_indexes)(o.handle, after, limit, out, &mut known, err)
        })?;
        if known != 1 {
            return Ok(None);
        }
        wire::decode_storage_indexes(&raw)
            .map(Some)
            .map_err(|_| o.lib.garbage("malformed storage indexes"))
    }

    fn add_lease(&self, si: &tahoe_api::StorageIndex, lease: &Lease) -> Result<()> {
        let (o, t) = self.parts();
        let record = wire::encode_leases(std::slice::from_ref(lease));
        // SAFETY: a live backend handle; pointers valid for the call.
        o.lib
            .call(|err| unsafe { (t.add_lease)(o.handle, si, Slice::of(&record), err) })
    }

    fn leases(&self, si: &tahoe_api::StorageIndex) -> Result<Vec<Lease>> {
        let (o, t) = self.parts();
        // SAFETY: a live backend handle; pointers valid for the call.
        let raw = o
            .lib
            .call_buf(|out, err| unsafe { (t.leases)(o.handle, si, out, err) })?;
        wire::decode_leases(&raw).map_err(|_| o.lib.garbage("malformed lease records"))
    }
}

/// A pending share of a library: its handle, and the backend it came from
/// (kept open while the handle lives).
pub(super) struct AbiPending {
    pub(super) backend: Arc<Object>,
    pub(super) handle: Handle,
}

// SAFETY: tahoe-api requires pending shares to be Send; the adapter uses
// the handle from one thread at a time.
unsafe impl Send for AbiPending {}

impl adapter::Pending for AbiPending {
    fn write(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        // SAFETY: a storage library.
        let t = unsafe { self.backend.lib.table::<StorageTable>() };
        // SAFETY: a live pending handle, used by one thread at a time.
        self.backend
            .lib
            .call(|err| unsafe { (t.pending_write)(self.handle, offset, Slice::of(data), err) })
    }

    fn finish(self, seal: bool) -> Result<()> {
        // SAFETY: a storage library.
        let t = unsafe { self.backend.lib.table::<StorageTable>() };
        // SAFETY: the handle is consumed once, here (`self` goes with it).
        self.backend.lib.call(|err| unsafe {
            if seal {
                (t.pending_seal)(self.handle, err)
            } else {
                (t.pending_abort)(self.handle, err)
            }
        })
    }
}
