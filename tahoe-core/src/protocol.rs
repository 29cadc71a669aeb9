//! The services nodes offer each other, as Rust traits.
//!
//! These are the storage-server protocol (modelled on Tahoe-LAFS's: allocate
//! buckets, write, close, read, leases, corruption advisories, mutable slots)
//! and the queen's announcement protocol. They are defined here, not in a
//! transport, so that every transport carries the same calls and every caller
//! is written once against them: a [`crate::transport::Transport`] only moves
//! these calls and their [`crate::Error`]s between processes.
//!
//! Calls are keyed by plain values (storage index, share number, secrets)
//! rather than remote object references, so that a transport needs nothing
//! but request/response. An upload proves it owns a bucket with the upload
//! secret it chose at allocation.

use crate::error::Result;
use crate::storage::{ShareNum, StorageIndex, TestVector, WriteVector};
use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The most share bytes one `read_bucket` or `write_bucket` call carries
/// (8 MiB). Servers refuse more with `InvalidInput`, so one call's memory is
/// bounded whatever a peer asks; transports must carry a call of this size
/// (tarpc-tcp's frame limit is checked against it). Callers with more data
/// use [`read_bucket_chunked`] and [`write_bucket_chunked`].
pub const MAX_CALL_DATA: u64 = 8 << 20;

/// Read `len` bytes at `offset` of a sealed immutable share in calls of at
/// most [`MAX_CALL_DATA`] (one call when it fits). Short at the end of the
/// share, like `read_bucket`.
pub async fn read_bucket_chunked(
    service: &dyn StorageService,
    si: StorageIndex,
    shnum: ShareNum,
    offset: u64,
    len: u64,
) -> Result<Bytes> {
    if len <= MAX_CALL_DATA {
        return service.read_bucket(si, shnum, offset, len).await;
    }
    let mut out = bytes::BytesMut::new();
    let mut done = 0u64;
    while done < len {
        let want = (len - done).min(MAX_CALL_DATA);
        let part = service
            .read_bucket(si, shnum, offset.saturating_add(done), want)
            .await?;
        out.extend_from_slice(&part);
        if (part.len() as u64) < want {
            break; // the end of the share
        }
        done += want;
    }
    Ok(out.freeze())
}

/// Write `data` at `offset` into an allocated share in calls of at most
/// [`MAX_CALL_DATA`] (one call when it fits), in order.
pub async fn write_bucket_chunked(
    service: &dyn StorageService,
    si: StorageIndex,
    shnum: ShareNum,
    upload_secret: Secret,
    offset: u64,
    data: Bytes,
) -> Result<()> {
    let step = MAX_CALL_DATA as usize;
    if data.len() <= step {
        return service
            .write_bucket(si, shnum, upload_secret, offset, data)
            .await;
    }
    for start in (0..data.len()).step_by(step) {
        let part = data.slice(start..(start + step).min(data.len()));
        service
            .write_bucket(si, shnum, upload_secret, offset + start as u64, part)
            .await?;
    }
    Ok(())
}

/// A 32-byte secret (lease renew/cancel secrets, upload secrets, write enablers).
pub type Secret = [u8; 32];

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

/// Who makes a connection's calls, as its transport knows the peer: the
/// label its budgets are charged to. A transport gives every connection
/// from one peer the same label (tarpc-tcp: the peer's IP address, or its
/// /64 for IPv6), and labels are never secrets.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Caller(pub String);

impl std::fmt::Display for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
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

/// A storage server as seen by a client.
///
/// # Contract (all methods)
/// Errors carry their kind across the wire; a server that cannot be reached
/// yields `Unavailable` or `Timeout` from the transport.
#[async_trait]
pub trait StorageService: Send + Sync {
    /// The server's version and limits.
    async fn version(&self) -> Result<ServerVersion>;

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
    fn open_session(&self, caller: &Caller) -> Option<Arc<dyn StorageService>> {
        let _ = caller;
        None
    }

    /// Reserve space for shares of an immutable file.
    ///
    /// Shares already sealed are reported in `already_have`; shares the server
    /// will not take (no space, readonly) are in neither list.
    async fn allocate_buckets(&self, req: AllocateRequest) -> Result<AllocateResponse>;

    /// Write bytes into an allocated share. `PermissionDenied` with a wrong
    /// upload secret, `NotFound` for a share not allocated, `InvalidInput`
    /// for more than [`MAX_CALL_DATA`] bytes.
    async fn write_bucket(
        &self,
        si: StorageIndex,
        shnum: ShareNum,
        upload_secret: Secret,
        offset: u64,
        data: Bytes,
    ) -> Result<()>;

    /// Seal an allocated share: from now on it is listed and readable.
    async fn close_bucket(
        &self,
        si: StorageIndex,
        shnum: ShareNum,
        upload_secret: Secret,
    ) -> Result<()>;

    /// Give up an allocated share.
    async fn abort_bucket(
        &self,
        si: StorageIndex,
        shnum: ShareNum,
        upload_secret: Secret,
    ) -> Result<()>;

    /// The sealed immutable shares held for `si`, with their sizes.
    async fn list_buckets(&self, si: StorageIndex) -> Result<BTreeMap<ShareNum, u64>>;

    /// Read a range of a sealed immutable share (short at the end).
    /// `InvalidInput` when `len` is over [`MAX_CALL_DATA`].
    async fn read_bucket(
        &self,
        si: StorageIndex,
        shnum: ShareNum,
        offset: u64,
        len: u64,
    ) -> Result<Bytes>;

    /// Add or renew a lease on every share of `si`.
    async fn add_lease(
        &self,
        si: StorageIndex,
        renew_secret: Secret,
        cancel_secret: Secret,
    ) -> Result<()>;

    /// Tell the server a share failed verification, for its operator.
    async fn advise_corrupt_share(
        &self,
        si: StorageIndex,
        shnum: ShareNum,
        reason: String,
    ) -> Result<()>;

    /// Read ranges of mutable shares. An empty `shnums` means every share.
    async fn slot_readv(
        &self,
        si: StorageIndex,
        shnums: Vec<ShareNum>,
        ranges: Vec<(u64, u64)>,
    ) -> Result<BTreeMap<ShareNum, Vec<Bytes>>>;

    /// Test-and-write mutable shares, guarded by the slot's write enabler;
    /// returns whether the writes were applied and the requested ranges as
    /// they were before any write.
    async fn slot_testv_and_readv_and_writev(
        &self,
        si: StorageIndex,
        secrets: SlotSecrets,
        writes: BTreeMap<ShareNum, SlotWrite>,
        read_ranges: Vec<(u64, u64)>,
    ) -> Result<(bool, BTreeMap<ShareNum, Vec<Bytes>>)>;
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
    pub writes: Vec<WriteVector>,
    /// Truncate or extend afterwards.
    pub new_length: Option<u64>,
}

/// A storage server's signed self-description, relayed by the queen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Announcement {
    /// Serialized announcement body (node id, addresses, nickname, capacity,
    /// version); opaque to the queen except for signature checking.
    pub body: Bytes,
    /// Signature over `body` by the announcing node's key.
    pub signature: Bytes,
    /// The announcing node's public key.
    pub public_key: Bytes,
}

/// A batch of announcements as served to subscribers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnnouncementBatch {
    /// Pass this to the next [`QueenService::poll_announcements`] call.
    pub cursor: u64,
    /// Announcements of nodes that changed since the cursor given (all of
    /// them for cursor 0), oldest change first, at most
    /// [`MAX_ANNOUNCEMENTS_PER_BATCH`].
    pub announcements: Vec<Announcement>,
    /// More changes wait beyond this page: poll again with `cursor` at once.
    pub more: bool,
}

/// The most announcements one [`AnnouncementBatch`] carries, so that an
/// answer stays small (announcement bodies are at most 4 KiB) however many
/// servers the queen knows.
pub const MAX_ANNOUNCEMENTS_PER_BATCH: usize = 256;

/// The secret that admits a node to a grid: the queen refuses every call
/// without it. It travels inside the queen's address (`introducer.url`),
/// like the swissnum of a Tahoe introducer furl.
pub type GridSecret = Secret;

/// The queen's rendezvous service.
///
/// # Contract (all methods)
/// `PermissionDenied` unless `grid_secret` is the grid's.
#[async_trait]
pub trait QueenService: Send + Sync {
    /// A handle for the calls of one peer connection from `caller`, as
    /// [`StorageService::open_session`]: the queen charges what the
    /// caller announces to it. `None` (the default): serve every
    /// connection with the service itself.
    fn open_session(&self, caller: &Caller) -> Option<Arc<dyn QueenService>> {
        let _ = caller;
        None
    }

    /// Publish or replace this node's announcement. `PermissionDenied` for
    /// a bad signature, an address that names another key, or fields over
    /// their limits.
    async fn announce(&self, grid_secret: GridSecret, announcement: Announcement) -> Result<()>;

    /// Long-poll for announcements newer than `cursor`: answers at once when
    /// there are some, otherwise waits up to `wait_ms` and answers with none.
    /// This keeps subscription push-like over any request/response transport.
    async fn poll_announcements(
        &self,
        grid_secret: GridSecret,
        cursor: u64,
        wait_ms: u64,
    ) -> Result<AnnouncementBatch>;
}

/// A queen's address with the grid secret that admits its holder:
/// `TRANSPORT-ADDRESS/SECRET`, the secret in base32 (52 characters), e.g.
/// `tahoe+tcp://NODEID@HOST:PORT/SECRET`. This is what `introducer.url`
/// holds; like a Tahoe introducer furl, it is itself a secret.
#[derive(Clone, PartialEq, Eq)]
pub struct QueenAddress {
    /// Where the queen listens, in its transport's syntax.
    pub address: String,
    /// The grid secret.
    pub secret: GridSecret,
}

impl QueenAddress {
    /// Parse `ADDRESS/SECRET`.
    pub fn parse(url: &str) -> Result<Self> {
        let url = url.trim();
        let bad = || {
            crate::Error::invalid_input(
                "the queen's address must end with /SECRET (copy introducer.url as \
                 create-queen wrote it)",
            )
        };
        let (address, secret) = url.rsplit_once('/').ok_or_else(bad)?;
        let secret = crate::base32::decode_array::<32>(secret).map_err(|_| bad())?;
        if address.is_empty() || address.ends_with('/') {
            return Err(bad());
        }
        Ok(QueenAddress {
            address: address.to_string(),
            secret,
        })
    }
}

impl std::fmt::Display for QueenAddress {
    /// The whole URL, secret included: for `introducer.url` only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{}",
            self.address,
            crate::base32::encode(&self.secret)
        )
    }
}

impl std::fmt::Debug for QueenAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "QueenAddress({}/<secret>)", self.address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queen_addresses_round_trip_and_hide_their_secret() {
        let a = QueenAddress {
            address: "tahoe+tcp://abc@127.0.0.1:5".into(),
            secret: [9; 32],
        };
        let text = a.to_string();
        assert_eq!(QueenAddress::parse(&text).unwrap(), a);
        assert_eq!(QueenAddress::parse(&format!(" {text}\n")).unwrap(), a);
        assert!(!format!("{a:?}").contains(&crate::base32::encode(&[9; 32])));
        for bad in [
            "tahoe+tcp://abc@127.0.0.1:5",
            "tahoe+tcp://abc@127.0.0.1:5/",
            "tahoe+tcp://abc@127.0.0.1:5/short",
            "/aaaa",
        ] {
            assert!(QueenAddress::parse(bad).is_err(), "{bad}");
        }
    }
}
