//! The storage-backend plugin kind: where a storage server keeps shares.
//!
//! A backend stores opaque share containers addressed by (storage index,
//! share number). It never sees plaintext or keys, and it does not interpret
//! share contents: integrity checks happen in the client, authority checks
//! (upload secrets, write enablers, reserved space) in the storage server
//! layered above it. What a backend must get right is durability and
//! atomicity, which is why its contract is stated in terms of crashes:
//!
//! - an immutable share is written through a [`PendingShare`] and becomes
//!   visible only when sealed, all at once; a crash or an abort before that
//!   leaves nothing that lists or reads as a share;
//! - a sealed immutable share never changes until deleted;
//! - a mutable share changes only through [`StorageBackend::test_and_write`],
//!   which is atomic with respect to other calls and to crashes.
//!
//! The trait is async and object-safe (`Arc<dyn StorageBackend>`), so
//! third-party backends (object stores, databases) can do real network I/O.

use crate::base32;
use crate::error::{Error, Result};
use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The 16-byte name under which servers store a file's shares.
///
/// Derived from the read key (immutable) or the write key (mutable), so
/// servers learn nothing from it. Written in base32 (26 characters).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct StorageIndex(pub [u8; 16]);

impl StorageIndex {
    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// The base32 spelling, used in paths, logs and the web API.
    pub fn to_base32(&self) -> String {
        base32::encode(&self.0)
    }
}

impl fmt::Display for StorageIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base32())
    }
}

impl fmt::Debug for StorageIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StorageIndex({self})")
    }
}

impl FromStr for StorageIndex {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        base32::decode_array::<16>(s)
            .map(StorageIndex)
            .map_err(|e| e.context("storage index"))
    }
}

/// A share number: which of the N blocks of every segment a share holds.
pub type ShareNum = u8;

/// Whether a share is an immutable (CHK) or mutable (SSK/MDMF) container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ShareKind {
    /// Written once through a [`PendingShare`], then sealed.
    Immutable,
    /// Changed in place by [`StorageBackend::test_and_write`].
    Mutable,
}

/// What [`StorageBackend::list`] reports for each share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareInfo {
    /// The share number.
    pub shnum: ShareNum,
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
/// test vectors carry secrets (write enablers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestVector {
    /// Where the compared range starts.
    pub offset: u64,
    /// How many bytes to read there.
    pub length: u64,
    /// What those bytes must be, exactly (a shorter value means the share
    /// must end inside the range).
    pub expected: Bytes,
}

impl TestVector {
    /// The test "these bytes are at `offset`".
    pub fn equals(offset: u64, expected: impl Into<Bytes>) -> Self {
        let expected = expected.into();
        TestVector {
            offset,
            length: expected.len() as u64,
            expected,
        }
    }

    /// The test "the share is absent or empty".
    pub fn absent() -> Self {
        TestVector {
            offset: 0,
            length: 1,
            expected: Bytes::new(),
        }
    }
}

/// One write of a [`StorageBackend::test_and_write`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteVector {
    /// Where the data goes; writing past the end extends the share with zeros.
    pub offset: u64,
    /// The bytes to write.
    pub data: Bytes,
}

/// A lease: a client's claim that keeps a storage index's shares alive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// Secret that lets its holder renew this lease.
    pub renew_secret: [u8; 32],
    /// Secret that lets its holder cancel this lease.
    pub cancel_secret: [u8; 32],
    /// Expiry, in seconds since the Unix epoch.
    pub expires_at: u64,
}

/// An immutable share being written. Nothing of it is visible until
/// [`PendingShare::seal`] succeeds.
#[async_trait]
pub trait PendingShare: Send {
    /// Write `data` at `offset`.
    ///
    /// # Contract
    /// `offset + data.len()` must not exceed the size given at creation,
    /// otherwise `InvalidInput` and nothing is written. Writes may come in
    /// any order and may overlap (the last one wins). Ranges never written
    /// read as zeros after sealing.
    /// The data is passed as `Bytes` so a backend may keep it without
    /// copying.
    async fn write(&mut self, offset: u64, data: Bytes) -> Result<()>;

    /// Make the share visible, durably and atomically.
    ///
    /// # Contract
    /// On success the share lists with its creation size and reads back the
    /// written bytes, and does so after a crash. If a share with this
    /// (storage index, share number) was sealed meanwhile, fails with
    /// `AlreadyExists` and leaves that share untouched: the first seal wins.
    async fn seal(self: Box<Self>) -> Result<()>;

    /// Throw the pending data away. Dropping without sealing does the same
    /// (best effort); a crash leaves at most garbage that the backend cleans
    /// up and never lists.
    async fn abort(self: Box<Self>) -> Result<()>;
}

/// A storage server's share store.
#[async_trait]
pub trait StorageBackend: Send + Sync {
    /// The registry name of this backend.
    fn name(&self) -> &str;

    /// Start writing immutable share `shnum` of `si`, exactly `size` bytes long.
    ///
    /// # Contract
    /// - Fails with `AlreadyExists` if that share is already sealed (or is a
    ///   mutable share), `NoSpace` if the backend knows it cannot hold `size`
    ///   more bytes.
    /// - Several writers may hold pending containers for the same share at
    ///   once; see [`PendingShare::seal`] for who wins.
    async fn create(
        &self,
        si: &StorageIndex,
        shnum: ShareNum,
        size: u64,
    ) -> Result<Box<dyn PendingShare>>;

    /// Read up to `len` bytes from `offset` of share `shnum` of `si`, which
    /// must be of `kind` (a sealed immutable share, or a mutable one).
    ///
    /// # Contract
    /// Returns `min(len, size - offset)` bytes, an empty buffer when `offset`
    /// is at or past the end, and `NotFound` when no share of that kind
    /// exists (pending shares do not exist yet). A share of the other kind
    /// is never read: the storage server relies on this to keep a mutable
    /// share's write enabler out of every immutable read.
    async fn read(
        &self,
        si: &StorageIndex,
        shnum: ShareNum,
        kind: ShareKind,
        offset: u64,
        len: u64,
    ) -> Result<Bytes>;

    /// The shares held for `si`, sorted by share number; empty when none.
    async fn list(&self, si: &StorageIndex) -> Result<Vec<ShareInfo>>;

    /// Delete a share (immutable or mutable). `NotFound` when absent.
    async fn delete(&self, si: &StorageIndex, shnum: ShareNum) -> Result<()>;

    /// Bytes the backend can still accept, or `None` when it cannot tell.
    ///
    /// # Contract
    /// Space promised to pending shares (the `size` given to
    /// [`StorageBackend::create`], until the share is sealed, aborted or
    /// dropped) counts as used, so that uploads started together cannot
    /// overcommit the store. Counting a pending share's written bytes twice
    /// meanwhile is allowed (it errs on the safe side).
    async fn remaining_capacity(&self) -> Result<Option<u64>>;

    /// Atomically test and change a mutable share, creating it if absent.
    ///
    /// # Contract
    /// - If every test vector holds, apply the writes in order, then (if
    ///   `new_length` is given) truncate or zero-extend to it, and return
    ///   `true`. Otherwise change nothing and return `false`.
    /// - Atomic: concurrent calls on the same share behave as if run one after
    ///   the other, and a crash leaves either the old or the new contents.
    /// - A share that is left empty by a call with no writes is not created.
    /// - `AlreadyExists` if the share is an immutable one.
    async fn test_and_write(
        &self,
        si: &StorageIndex,
        shnum: ShareNum,
        tests: &[TestVector],
        writes: &[WriteVector],
        new_length: Option<u64>,
    ) -> Result<bool>;

    /// Add a lease on `si`, or renew the lease with the same renew secret
    /// (its expiry becomes the later of the two).
    ///
    /// # Contract
    /// `NotFound` when no share of `si` exists. Leases survive restarts.
    async fn add_lease(&self, si: &StorageIndex, lease: &Lease) -> Result<()>;

    /// The leases on `si`, in the order they were first added.
    async fn leases(&self, si: &StorageIndex) -> Result<Vec<Lease>>;
}

/// Apply test vectors to the current contents of a mutable share.
///
/// Shared by backends so that every one of them compares ranges the same
/// way. Every vector is evaluated, each in constant time for its length, so
/// the time taken says nothing about which byte differed.
pub fn tests_hold(current: &[u8], tests: &[TestVector]) -> bool {
    tests.iter().fold(true, |all, t| {
        all & tahoe_api::util::range_equals(current, t.offset, t.length, &t.expected)
    })
}

/// Compare two byte strings in time that depends only on their lengths.
pub use tahoe_api::util::constant_time_eq;

/// Add `lease` to `leases`, or renew the lease with the same renew secret
/// (keeping the later expiry). Returns whether anything changed. Shared by
/// backends so that renewal means the same everywhere.
pub fn merge_lease(leases: &mut Vec<Lease>, lease: &Lease) -> bool {
    match leases
        .iter_mut()
        .find(|l| l.renew_secret == lease.renew_secret)
    {
        Some(l) if l.expires_at >= lease.expires_at => false,
        Some(l) => {
            l.expires_at = lease.expires_at;
            true
        }
        None => {
            leases.push(lease.clone());
            true
        }
    }
}

/// The largest mutable share a backend must accept through
/// [`apply_writes`] (1 GiB): bounds memory for hostile write vectors, since
/// such backends hold the whole container in memory while rewriting it.
pub const MAX_MUTABLE_SHARE: u64 = 1 << 30;

/// Apply write vectors and an optional new length to a mutable share's bytes.
///
/// Shared by backends that rewrite the whole container; refuses sizes over
/// [`MAX_MUTABLE_SHARE`] before allocating.
pub fn apply_writes(
    current: &mut Vec<u8>,
    writes: &[WriteVector],
    new_length: Option<u64>,
) -> Result<()> {
    length_after_writes(current.len() as u64, writes, new_length)?;
    for w in writes {
        let off = w.offset as usize;
        let end = off + w.data.len();
        if current.len() < end {
            current.resize(end, 0);
        }
        current[off..end].copy_from_slice(&w.data);
    }
    if let Some(n) = new_length {
        current.resize(n as usize, 0);
    }
    Ok(())
}

/// The length a mutable share of `current_len` bytes has after `writes`
/// and `new_length`; `InvalidInput` when it (or any moment of the update)
/// would exceed [`MAX_MUTABLE_SHARE`]. Backends check this before they
/// change anything.
pub fn length_after_writes(
    current_len: u64,
    writes: &[WriteVector],
    new_length: Option<u64>,
) -> Result<u64> {
    let mut final_len = current_len;
    for w in writes {
        let end = w
            .offset
            .checked_add(w.data.len() as u64)
            .ok_or_else(|| Error::invalid_input("write vector overflows"))?;
        final_len = final_len.max(end);
    }
    if let Some(n) = new_length {
        final_len = n;
    }
    let peak = final_len.max(current_len);
    if peak > MAX_MUTABLE_SHARE {
        return Err(Error::invalid_input(format!(
            "mutable share would grow to {peak} bytes, over the {MAX_MUTABLE_SHARE} limit"
        )));
    }
    Ok(final_len)
}

/// Check a write against a pending share's declared size.
pub fn check_pending_write(size: u64, offset: u64, len: usize) -> Result<()> {
    match offset.checked_add(len as u64) {
        Some(end) if end <= size => Ok(()),
        _ => Err(Error::invalid_input(format!(
            "write of {len} bytes at offset {offset} exceeds the share size {size}"
        ))),
    }
}

/// The slice of a share's bytes that [`StorageBackend::read`] returns.
pub use tahoe_api::util::read_range;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_index_base32_round_trip() {
        let si = StorageIndex([7u8; 16]);
        let text = si.to_string();
        assert_eq!(text.len(), 26);
        assert_eq!(text.parse::<StorageIndex>().unwrap(), si);
        assert!("../../etc/passwd".parse::<StorageIndex>().is_err());
    }

    #[test]
    fn test_vectors_compare_ranges() {
        let cur = b"hello world";
        let tv = |o, e: &'static [u8]| TestVector::equals(o, Bytes::from_static(e));
        assert!(tests_hold(cur, &[tv(0, b"hello")]));
        assert!(!tests_hold(cur, &[tv(0, b"jello")]));
        assert!(tests_hold(cur, &[tv(20, b"")]));
        assert!(!tests_hold(cur, &[tv(9, b"ldx")]));
        assert!(tests_hold(b"", &[tv(0, b"")]));
        // "Absent" holds on an empty share only, never on one with data.
        assert!(tests_hold(b"", &[TestVector::absent()]));
        assert!(!tests_hold(cur, &[TestVector::absent()]));
        // A shorter expectation means the share must end there.
        let ends = TestVector {
            offset: 6,
            length: 10,
            expected: Bytes::from_static(b"world"),
        };
        assert!(tests_hold(cur, std::slice::from_ref(&ends)));
        assert!(!tests_hold(b"hello world!", &[ends]));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }

    #[test]
    fn writes_extend_and_truncate() {
        let mut cur = b"abc".to_vec();
        let w = WriteVector {
            offset: 5,
            data: Bytes::from_static(b"xy"),
        };
        apply_writes(&mut cur, &[w], None).unwrap();
        assert_eq!(cur, b"abc\0\0xy");
        apply_writes(&mut cur, &[], Some(2)).unwrap();
        assert_eq!(cur, b"ab");
        let huge = WriteVector {
            offset: u64::MAX - 1,
            data: Bytes::from_static(b"xy"),
        };
        assert!(apply_writes(&mut cur, &[huge], None).is_err());
        assert!(apply_writes(&mut cur, &[], Some(1 << 40)).is_err());
    }
}
