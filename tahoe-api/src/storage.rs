//! Storage backends over the ABI.

use std::path::Path;

use crate::abi::{self, Buf, Handle, PluginDescriptor, Slice, from_handle, guard, object, put};
use crate::{Error, ErrorKind, PluginKind, Result, wire};

/// The 16 bytes naming a file's shares on a server.
pub type StorageIndex = [u8; 16];

// The records below are the node's too: `tahoe_core::kinds::storage`
// re-exports them (the vectors with `bytes::Bytes` for `B`, so that the
// node's data is shared, not copied), so a record has one definition and
// one meaning on both sides of the boundary. With the `serde` feature
// (which the node turns on) they serialize as the node sends and stores
// them; plugins need not enable it.

/// Whether a share is an immutable (CHK) or mutable (SSK/MDMF) container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum ShareKind {
    /// Written once through a [`PendingShare`], then sealed.
    Immutable,
    /// Changed in place by [`StorageBackend::test_and_write`].
    Mutable,
}

impl ShareKind {
    /// The code used on the wire (0 immutable, 1 mutable).
    pub fn code(self) -> u8 {
        match self {
            ShareKind::Immutable => 0,
            ShareKind::Mutable => 1,
        }
    }

    /// The kind of a wire code.
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(ShareKind::Immutable),
            1 => Some(ShareKind::Mutable),
            _ => None,
        }
    }
}

/// What [`StorageBackend::list`] reports for each share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ShareInfo {
    /// The share number.
    pub shnum: u8,
    /// The container's current length in bytes.
    pub size: u64,
    /// Immutable or mutable.
    pub kind: ShareKind,
}

/// One condition of a [`StorageBackend::test_and_write`], with Tahoe's
/// meaning: read `length` bytes at `offset` (short, or empty, where the
/// share ends; a missing share reads as empty) and compare them with
/// `expected`. So `(0, 1, [])` holds exactly when the share is absent or
/// empty, and `(o, n, b)` with `b.len() == n` holds when those bytes are
/// there. The comparison takes the same time whatever the bytes are, since
/// test vectors carry secrets (write enablers): see
/// [`util::tests_hold`](crate::util::tests_hold).
///
/// `B` is the byte type: `Vec<u8>` for plugins, the node's `Bytes`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct TestVector<B = Vec<u8>> {
    /// Where the compared range starts.
    pub offset: u64,
    /// How many bytes to read there.
    pub length: u64,
    /// What those bytes must be, exactly (a shorter value means the share
    /// must end inside the range).
    pub expected: B,
}

impl<B: AsRef<[u8]>> TestVector<B> {
    /// The test "these bytes are at `offset`".
    pub fn equals(offset: u64, expected: impl Into<B>) -> Self {
        let expected = expected.into();
        TestVector {
            offset,
            length: expected.as_ref().len() as u64,
            expected,
        }
    }

    /// The test "the share is absent or empty".
    pub fn absent() -> Self
    where
        B: Default,
    {
        TestVector {
            offset: 0,
            length: 1,
            expected: B::default(),
        }
    }
}

/// One write of a [`StorageBackend::test_and_write`]; `B` as for
/// [`TestVector`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct WriteVector<B = Vec<u8>> {
    /// Where the data goes; writing past the end extends the share with zeros.
    pub offset: u64,
    /// The bytes to write.
    pub data: B,
}

/// A lease: a client's claim that keeps a storage index's shares alive.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Lease {
    /// Secret that lets its holder renew this lease.
    pub renew_secret: [u8; 32],
    /// Secret that lets its holder cancel this lease.
    pub cancel_secret: [u8; 32],
    /// Expiry, in seconds since the Unix epoch.
    pub expires_at: u64,
}

/// An immutable share being written; invisible until sealed.
pub trait PendingShare: Send + Sized + 'static {
    /// Write `data` at `offset` (within the size given at creation,
    /// else `InvalidInput`).
    fn write(&mut self, offset: u64, data: &[u8]) -> Result<()>;
    /// Make the share visible, durably and atomically; `AlreadyExists`
    /// when another writer sealed it first.
    fn seal(self) -> Result<()>;
    /// Throw it away. The default drops it: implement `Drop` to clean up.
    fn abort(self) -> Result<()> {
        Ok(())
    }
}

/// A storage backend: the node's `tahoe_core::kinds::storage::StorageBackend`
/// contract, as blocking calls. The node's conformance suite
/// (`tahoe_core::testing::storage`) checks a loaded library against it.
pub trait StorageBackend: Send + Sync + Sized + 'static {
    /// The registry name (`[storage] backend = "NAME"`).
    const NAME: &'static str;
    /// One line for `tahoe plugins`.
    const DESCRIPTION: &'static str;
    /// Its pending shares.
    type Pending: PendingShare;

    /// Open the store. `config` is the `[storage.NAME]` section as TOML
    /// text (empty when absent); relative paths resolve against `basedir`.
    fn open(config: &str, basedir: &Path) -> Result<Self>;
    /// Start writing immutable share `shnum` of `si`, `size` bytes long.
    fn create(&self, si: &StorageIndex, shnum: u8, size: u64) -> Result<Self::Pending>;
    /// Up to `len` bytes at `offset` of a share of `kind`; `NotFound` when
    /// there is no such share.
    fn read(
        &self,
        si: &StorageIndex,
        shnum: u8,
        kind: ShareKind,
        offset: u64,
        len: u64,
    ) -> Result<Vec<u8>>;
    /// The shares of `si`, sorted by share number.
    fn list(&self, si: &StorageIndex) -> Result<Vec<ShareInfo>>;
    /// Delete a share; `NotFound` when absent.
    fn delete(&self, si: &StorageIndex, shnum: u8) -> Result<()>;
    /// Bytes still accepted, `None` when unknown (the default). Space
    /// promised to pending shares counts as used.
    fn remaining_capacity(&self) -> Result<Option<u64>> {
        Ok(None)
    }
    /// Atomically test and change a mutable share.
    fn test_and_write(
        &self,
        si: &StorageIndex,
        shnum: u8,
        tests: &[TestVector],
        writes: &[WriteVector],
        new_length: Option<u64>,
    ) -> Result<bool>;
    /// Add or renew a lease on `si`'s shares.
    fn add_lease(&self, si: &StorageIndex, lease: &Lease) -> Result<()>;
    /// The leases on `si`.
    fn leases(&self, si: &StorageIndex) -> Result<Vec<Lease>>;
    /// Up to `limit` storage indexes holding shares, strictly after
    /// `after` (from the first when `None`) in an order of the backend's
    /// own that never changes (the sort order of the names it stores them
    /// under, say); `None` when the backend cannot list (the default): the
    /// node's lease crawler then leaves it alone. The node's contract
    /// (`tahoe_core::kinds::storage::StorageBackend::storage_indexes`) says
    /// the rest.
    fn storage_indexes(
        &self,
        after: Option<&StorageIndex>,
        limit: usize,
    ) -> Result<Option<Vec<StorageIndex>>> {
        let _ = (after, limit);
        Ok(None)
    }
}

/// The storage kind's function table. Every function returns 0 or an
/// [`ErrorKind`] code, with the message in `*err` (a [`Buf`] to free).
/// Handles from `open` may be used from several threads at once; a
/// pending share's handle from one thread at a time, and `seal` or
/// `abort` consume it.
#[repr(C)]
#[allow(missing_docs)]
pub struct StorageTable {
    pub open:
        unsafe extern "C" fn(config: Slice, basedir: Slice, out: *mut Handle, err: *mut Buf) -> i32,
    pub close: unsafe extern "C" fn(backend: Handle),
    pub create: unsafe extern "C" fn(
        backend: Handle,
        si: *const StorageIndex,
        shnum: u8,
        size: u64,
        out: *mut Handle,
        err: *mut Buf,
    ) -> i32,
    pub pending_write:
        unsafe extern "C" fn(pending: Handle, offset: u64, data: Slice, err: *mut Buf) -> i32,
    pub pending_seal: unsafe extern "C" fn(pending: Handle, err: *mut Buf) -> i32,
    pub pending_abort: unsafe extern "C" fn(pending: Handle, err: *mut Buf) -> i32,
    pub read: unsafe extern "C" fn(
        backend: Handle,
        si: *const StorageIndex,
        shnum: u8,
        kind: u8,
        offset: u64,
        len: u64,
        out: *mut Buf,
        err: *mut Buf,
    ) -> i32,
    /// `out`: share info records ([`wire`]).
    pub list: unsafe extern "C" fn(
        backend: Handle,
        si: *const StorageIndex,
        out: *mut Buf,
        err: *mut Buf,
    ) -> i32,
    pub delete: unsafe extern "C" fn(
        backend: Handle,
        si: *const StorageIndex,
        shnum: u8,
        err: *mut Buf,
    ) -> i32,
    /// `known` is set to 0 when the capacity is unknown.
    pub remaining_capacity:
        unsafe extern "C" fn(backend: Handle, out: *mut u64, known: *mut u8, err: *mut Buf) -> i32,
    /// `tests`, `writes`: records ([`wire`]); `new_length` counts when
    /// `has_new_length` is 1; `out` is set to 1 when the tests held.
    pub test_and_write: unsafe extern "C" fn(
        backend: Handle,
        si: *const StorageIndex,
        shnum: u8,
        tests: Slice,
        writes: Slice,
        new_length: u64,
        has_new_length: u8,
        out: *mut u8,
        err: *mut Buf,
    ) -> i32,
    /// `lease`: one lease record.
    pub add_lease: unsafe extern "C" fn(
        backend: Handle,
        si: *const StorageIndex,
        lease: Slice,
        err: *mut Buf,
    ) -> i32,
    /// `out`: lease records.
    pub leases: unsafe extern "C" fn(
        backend: Handle,
        si: *const StorageIndex,
        out: *mut Buf,
        err: *mut Buf,
    ) -> i32,
    /// `after` may be null (from the first); `out`: storage indexes, 16
    /// bytes each; `known` is set to 0 when the backend cannot list.
    pub storage_indexes: unsafe extern "C" fn(
        backend: Handle,
        after: *const StorageIndex,
        limit: u32,
        out: *mut Buf,
        known: *mut u8,
        err: *mut Buf,
    ) -> i32,
}

fn si_of<'a>(si: *const StorageIndex) -> Result<&'a StorageIndex> {
    if si.is_null() {
        return Err(Error::new(ErrorKind::InvalidInput, "a null storage index"));
    }
    // SAFETY: the node passes a pointer to 16 readable bytes.
    Ok(unsafe { &*si })
}

unsafe extern "C" fn open<T: StorageBackend>(
    config: Slice,
    basedir: Slice,
    out: *mut Handle,
    err: *mut Buf,
) -> i32 {
    guard(err, || {
        // SAFETY: slices lent by the node for this call.
        let config = unsafe { abi::text(config, "the configuration") }?;
        // SAFETY: as above.
        let basedir = unsafe { abi::text(basedir, "the base directory") }?;
        let backend = T::open(config, Path::new(basedir))?;
        put(out, abi::into_handle(backend))
    })
}

unsafe extern "C" fn close<T: StorageBackend>(backend: Handle) {
    // A panic in a destructor is caught and dropped: close has no result.
    let _ = guard(std::ptr::null_mut(), || {
        // SAFETY: the node closes each backend once.
        drop(unsafe { from_handle::<T>(backend) }?);
        Ok(())
    });
}

unsafe extern "C" fn create<T: StorageBackend>(
    backend: Handle,
    si: *const StorageIndex,
    shnum: u8,
    size: u64,
    out: *mut Handle,
    err: *mut Buf,
) -> i32 {
    guard(err, || {
        // SAFETY: a live backend handle.
        let b = unsafe { object::<T>(backend) }?;
        let pending = b.create(si_of(si)?, shnum, size)?;
        put(out, abi::into_handle(pending))
    })
}

unsafe extern "C" fn pending_write<T: StorageBackend>(
    pending: Handle,
    offset: u64,
    data: Slice,
    err: *mut Buf,
) -> i32 {
    guard(err, || {
        if pending.is_null() {
            return Err(Error::new(ErrorKind::InvalidInput, "a null handle"));
        }
        // SAFETY: a live pending handle, used by one thread at a time.
        let p = unsafe { &mut *(pending as *mut T::Pending) };
        // SAFETY: lent for this call.
        p.write(offset, unsafe { data.as_bytes() })
    })
}

unsafe extern "C" fn pending_seal<T: StorageBackend>(pending: Handle, err: *mut Buf) -> i32 {
    // SAFETY: consumed here, never used again by the node.
    guard(err, || {
        unsafe { from_handle::<T::Pending>(pending) }?.seal()
    })
}

unsafe extern "C" fn pending_abort<T: StorageBackend>(pending: Handle, err: *mut Buf) -> i32 {
    // SAFETY: consumed here, never used again by the node.
    guard(err, || {
        unsafe { from_handle::<T::Pending>(pending) }?.abort()
    })
}

#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn read<T: StorageBackend>(
    backend: Handle,
    si: *const StorageIndex,
    shnum: u8,
    kind: u8,
    offset: u64,
    len: u64,
    out: *mut Buf,
    err: *mut Buf,
) -> i32 {
    guard(err, || {
        // SAFETY: a live backend handle.
        let b = unsafe { object::<T>(backend) }?;
        let kind = ShareKind::from_code(kind)
            .ok_or_else(|| Error::new(ErrorKind::InvalidInput, "unknown share kind"))?;
        let data = b.read(si_of(si)?, shnum, kind, offset, len)?;
        put(out, Buf::from_vec(data))
    })
}

unsafe extern "C" fn list<T: StorageBackend>(
    backend: Handle,
    si: *const StorageIndex,
    out: *mut Buf,
    err: *mut Buf,
) -> i32 {
    guard(err, || {
        // SAFETY: a live backend handle.
        let b = unsafe { object::<T>(backend) }?;
        let infos = b.list(si_of(si)?)?;
        put(out, Buf::from_vec(wire::encode_share_infos(&infos)))
    })
}

unsafe extern "C" fn delete<T: StorageBackend>(
    backend: Handle,
    si: *const StorageIndex,
    shnum: u8,
    err: *mut Buf,
) -> i32 {
    guard(err, || {
        // SAFETY: a live backend handle.
        unsafe { object::<T>(backend) }?.delete(si_of(si)?, shnum)
    })
}

unsafe extern "C" fn remaining_capacity<T: StorageBackend>(
    backend: Handle,
    out: *mut u64,
    known: *mut u8,
    err: *mut Buf,
) -> i32 {
    guard(err, || {
        // SAFETY: a live backend handle.
        let c = unsafe { object::<T>(backend) }?.remaining_capacity()?;
        put(out, c.unwrap_or(0))?;
        put(known, u8::from(c.is_some()))
    })
}

#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn test_and_write<T: StorageBackend>(
    backend: Handle,
    si: *const StorageIndex,
    shnum: u8,
    tests: Slice,
    writes: Slice,
    new_length: u64,
    has_new_length: u8,
    out: *mut u8,
    err: *mut Buf,
) -> i32 {
    guard(err, || {
        // SAFETY: a live backend handle.
        let b = unsafe { object::<T>(backend) }?;
        // SAFETY: lent for this call.
        let tests = wire::decode_tests(unsafe { tests.as_bytes() })?;
        // SAFETY: lent for this call.
        let writes = wire::decode_writes(unsafe { writes.as_bytes() })?;
        let new_length = (has_new_length == 1).then_some(new_length);
        let ok = b.test_and_write(si_of(si)?, shnum, &tests, &writes, new_length)?;
        put(out, u8::from(ok))
    })
}

unsafe extern "C" fn add_lease<T: StorageBackend>(
    backend: Handle,
    si: *const StorageIndex,
    lease: Slice,
    err: *mut Buf,
) -> i32 {
    guard(err, || {
        // SAFETY: a live backend handle.
        let b = unsafe { object::<T>(backend) }?;
        // SAFETY: lent for this call.
        let leases = wire::decode_leases(unsafe { lease.as_bytes() })?;
        let [lease] = leases.as_slice() else {
            return Err(Error::new(ErrorKind::InvalidInput, "one lease expected"));
        };
        b.add_lease(si_of(si)?, lease)
    })
}

unsafe extern "C" fn leases<T: StorageBackend>(
    backend: Handle,
    si: *const StorageIndex,
    out: *mut Buf,
    err: *mut Buf,
) -> i32 {
    guard(err, || {
        // SAFETY: a live backend handle.
        let l = unsafe { object::<T>(backend) }?.leases(si_of(si)?)?;
        put(out, Buf::from_vec(wire::encode_leases(&l)))
    })
}

unsafe extern "C" fn storage_indexes<T: StorageBackend>(
    backend: Handle,
    after: *const StorageIndex,
    limit: u32,
    out: *mut Buf,
    known: *mut u8,
    err: *mut Buf,
) -> i32 {
    guard(err, || {
        // SAFETY: a live backend handle.
        let b = unsafe { object::<T>(backend) }?;
        let after = if after.is_null() {
            None
        } else {
            Some(si_of(after)?)
        };
        let sis = b.storage_indexes(after, limit as usize)?;
        put(known, u8::from(sis.is_some()))?;
        put(
            out,
            Buf::from_vec(wire::encode_storage_indexes(&sis.unwrap_or_default())),
        )
    })
}

/// The descriptor of storage backend `T` (what `export_storage_backend!`
/// returns).
pub fn descriptor<T: StorageBackend>() -> PluginDescriptor {
    abi::descriptor(
        PluginKind::Storage,
        T::NAME,
        T::DESCRIPTION,
        StorageTable {
            open: open::<T>,
            close: close::<T>,
            create: create::<T>,
            pending_write: pending_write::<T>,
            pending_seal: pending_seal::<T>,
            pending_abort: pending_abort::<T>,
            read: read::<T>,
            list: list::<T>,
            delete: delete::<T>,
            remaining_capacity: remaining_capacity::<T>,
            test_and_write: test_and_write::<T>,
            add_lease: add_lease::<T>,
            leases: leases::<T>,
            storage_indexes: storage_indexes::<T>,
        },
    )
}
