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
//!
//! The records the trait speaks ([`ShareKind`], [`ShareInfo`],
//! [`TestVector`], [`WriteVector`], [`Lease`]) and the helpers that give
//! them their meaning ([`tests_hold`], [`apply_writes`], [`merge_lease`],
//! ...) are tahoe-api's, re-exported: a plugin built against the ABI
//! shares them with the node, not a copy of them.

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

// The records and the helpers that give them their meaning are tahoe-api's,
// defined once for the node and for plugins built against the ABI: a
// plugin's records are the node's, so no conversions sit between them.
// The vectors carry `Bytes` here, so that data received from the wire
// reaches a backend without a copy.

pub use tahoe_api::{Lease, ShareInfo, ShareKind};

/// One condition of a [`StorageBackend::test_and_write`]:
/// [`tahoe_api::TestVector`] (its meaning is there) with `Bytes`.
pub type TestVector = tahoe_api::TestVector<Bytes>;

/// One write of a [`StorageBackend::test_and_write`]:
/// [`tahoe_api::WriteVector`] with `Bytes`.
pub type WriteVector = tahoe_api::WriteVector<Bytes>;

// The share semantics every backend shares (tahoe-api's, so that a
// loaded plugin compares, writes, bounds and renews exactly as the
// built-in backends do). The fallible ones return tahoe-api's error, which
// `?` turns into the node's (same kind, same message).
pub use tahoe_api::util::{
    MAX_MUTABLE_SHARE, apply_writes, check_pending_write, constant_time_eq, length_after_writes,
    merge_lease, read_range, tests_hold,
};

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
    ///
    /// # Contract
    /// Only that share goes; when it was the last share of `si`, `si`'s
    /// leases go with it (a share stored later under `si` starts with
    /// none).
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

    /// One page of the storage indexes that hold shares: up to `limit`
    /// of them, strictly after `after` (from the first when `None`), or
    /// `None` when this backend cannot list what it holds (the default).
    /// This is how a backend declares whether the node's lease crawler
    /// can walk it: a backend that answers `None` is left alone.
    ///
    /// # Contract
    /// - The order is the backend's own (the sort order of the names it
    ///   stores storage indexes under, say) and never changes, so that a
    ///   walk page by page, each page starting after the last index of the
    ///   one before, sees every storage index that held shares for the
    ///   whole walk exactly once, whatever was added or deleted meanwhile
    ///   (an index added or emptied during the walk may or may not be
    ///   seen). A walk that resumes after a restart relies on the same.
    /// - A page shorter than `limit` is the last one; `after` need not
    ///   hold shares any more.
    /// - Listing changes nothing: together with [`StorageBackend::delete`]
    ///   (which deletes the one share it is asked for, and `si`'s leases
    ///   with its last share) it is all the crawler uses.
    async fn storage_indexes(
        &self,
        after: Option<&StorageIndex>,
        limit: usize,
    ) -> Result<Option<Vec<StorageIndex>>> {
        let _ = (after, limit);
        Ok(None)
    }
}

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

    /// The records are tahoe-api's with its `serde` feature: the same
    /// field names and byte encodings as when they were defined here, so
    /// the wire (vectors in `SlotWrite`) and s3's lease JSON are unchanged.
    #[test]
    fn records_serialize_as_the_node_stores_and_sends_them() {
        let lease = Lease {
            renew_secret: [1; 32],
            cancel_secret: [2; 32],
            expires_at: 7,
        };
        let json = serde_json::to_string(&lease).unwrap();
        let ones = vec!["1"; 32].join(",");
        let twos = vec!["2"; 32].join(",");
        assert_eq!(
            json,
            format!(r#"{{"renew_secret":[{ones}],"cancel_secret":[{twos}],"expires_at":7}}"#)
        );
        assert_eq!(serde_json::from_str::<Lease>(&json).unwrap(), lease);
        let w = WriteVector {
            offset: 3,
            data: Bytes::from_static(b"ab"),
        };
        assert_eq!(
            serde_json::to_string(&w).unwrap(),
            r#"{"offset":3,"data":[97,98]}"#
        );
        let t = TestVector::equals(5, Bytes::from_static(b"c"));
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            r#"{"offset":5,"length":1,"expected":[99]}"#
        );
    }
}
