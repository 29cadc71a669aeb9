//! The storage server's protocol (modelled on Tahoe-LAFS's: allocate
//! buckets, write, close, read, leases, corruption advisories, mutable
//! slots): its records and its calls, each listed once.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::Secret;
use super::calls::protocol;
use crate::kinds::storage::{ShareNum, StorageIndex, TestVector, WriteVector};

/// What a storage server says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerVersion {
    /// The software and version, for people.
    pub application: String,
    /// The largest immutable share this server accepts.
    pub max_share_size: u64,
    /// Bytes it can still accept, when known.
    pub available_space: Option<u64>,
    /// Whether it accepts new shares at all.
    pub readonly: bool,
}

/// Arguments of [`StorageService::allocate_buckets`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocateRequest {
    /// The file's storage index.
    pub storage_index: StorageIndex,
    /// The share numbers the client wants to place here.
    pub share_numbers: Vec<ShareNum>,
    /// The exact size of each share.
    pub share_size: u64,
    /// Lease renew secret for the new shares.
    pub renew_secret: Secret,
    /// Lease cancel secret for the new shares.
    pub cancel_secret: Secret,
    /// Secret that later writes, close and abort must present.
    pub upload_secret: Secret,
}

/// Answer of [`StorageService::allocate_buckets`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocateResponse {
    /// Shares this server already holds, sealed: no need to upload them.
    pub already_have: Vec<ShareNum>,
    /// Shares allocated for this upload: write them, then close.
    pub allocated: Vec<ShareNum>,
}

/// Secrets presented to change a mutable slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotSecrets {
    /// Proves write authority over the slot (derived from the write cap and
    /// the server's id, so servers cannot reuse it elsewhere).
    pub write_enabler: Secret,
    /// Lease renew secret.
    pub renew_secret: Secret,
    /// Lease cancel secret.
    pub cancel_secret: Secret,
}

/// The tests and writes for one share of a mutable slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotWrite {
    /// All must hold for any write of the call to happen.
    pub tests: Vec<TestVector>,
    /// Applied in order.
    #[serde(with = "super::frame::write_vectors")]
    pub writes: Vec<WriteVector>,
    /// Truncate or extend afterwards.
    pub new_length: Option<u64>,
}

protocol! {
    /// A storage server as seen by a client.
    ///
    /// # Contract (all methods)
    /// Errors carry their kind across the wire; a server that cannot be
    /// reached yields `Unavailable` or `Timeout` from the transport.
    trait StorageService;

    /// A handle for the calls of one peer connection from `caller`, which
    /// transports ask for when a connection opens and drop when it closes.
    ///
    /// # Contract
    /// The handle serves the same store; the server charges what it holds
    /// for the handle (pending buckets and bytes) to `caller`, whose
    /// budgets all of its sessions share, and aborts what the handle left
    /// unfinished when it is dropped. `None` (the default) means the
    /// service has no per-connection state: serve every connection with
    /// the service itself.
    session;

    request StorageRequest;
    response StorageResponse;
    serve serve_storage;
    carrier StorageCarrier;
    client StorageClient;
    layer StorageLayer;

    calls {
        /// The server's version and limits.
        Version => fn version() -> ServerVersion;

        /// Reserve space for shares of an immutable file.
        ///
        /// Shares already sealed are reported in `already_have`; shares the
        /// server will not take (no space, readonly) are in neither list.
        AllocateBuckets => fn allocate_buckets(req: AllocateRequest) -> AllocateResponse;

        /// Write bytes into an allocated share. `PermissionDenied` with a
        /// wrong upload secret, `NotFound` for a share not allocated,
        /// `InvalidInput` for more than [`MAX_CALL_DATA`](super::MAX_CALL_DATA) bytes.
        WriteBucket => fn write_bucket(
            si: StorageIndex,
            shnum: ShareNum,
            upload_secret: Secret,
            offset: u64,
            #[serde(with = "super::frame::bytes")] data: Bytes,
        ) -> ();

        /// Seal an allocated share: from now on it is listed and readable.
        CloseBucket => fn close_bucket(si: StorageIndex, shnum: ShareNum, upload_secret: Secret) -> ();

        /// Give up an allocated share.
        AbortBucket => fn abort_bucket(si: StorageIndex, shnum: ShareNum, upload_secret: Secret) -> ();

        /// The sealed immutable shares held for `si`, with their sizes.
        ListBuckets => fn list_buckets(si: StorageIndex) -> BTreeMap<ShareNum, u64>;

        /// Read a range of a sealed immutable share (short at the end).
        /// `InvalidInput` when `len` is over [`MAX_CALL_DATA`](super::MAX_CALL_DATA).
        ReadBucket => fn read_bucket(si: StorageIndex, shnum: ShareNum, offset: u64, len: u64)
            -> #[serde(with = "super::frame::bytes")] Bytes;

        /// Add or renew a lease on every share of `si`.
        AddLease => fn add_lease(si: StorageIndex, renew_secret: Secret, cancel_secret: Secret) -> ();

        /// Tell the server a share failed verification, for its operator.
        AdviseCorruptShare => fn advise_corrupt_share(
            si: StorageIndex,
            shnum: ShareNum,
            reason: String,
        ) -> ();

        /// Read ranges of mutable shares. An empty `shnums` means every
        /// share.
        SlotReadv => fn slot_readv(
            si: StorageIndex,
            shnums: Vec<ShareNum>,
            ranges: Vec<(u64, u64)>,
        ) -> #[serde(with = "super::frame::share_ranges")] BTreeMap<ShareNum, Vec<Bytes>>;

        /// Test-and-write mutable shares, guarded by the slot's write
        /// enabler; returns whether the writes were applied and the
        /// requested ranges as they were before any write.
        SlotTestvAndReadvAndWritev => fn slot_testv_and_readv_and_writev(
            si: StorageIndex,
            secrets: SlotSecrets,
            writes: BTreeMap<ShareNum, SlotWrite>,
            read_ranges: Vec<(u64, u64)>,
        ) -> (bool, BTreeMap<ShareNum, Vec<Bytes>>);
    }
}
