//! The services nodes offer each other, as Rust traits.
//!
//! Each protocol's calls are listed once (`calls.rs`): the storage server's
//! in [`storage`], the queen's in [`queen`]. Everything that speaks them
//! (the traits, the request and answer enums transports carry, the
//! dispatchers, the clients over a transport's one `call`, and the layers
//! wrappers build on) is made from those lists.
//!
//! These are the storage-server protocol (modelled on Tahoe-LAFS's: allocate
//! buckets, write, close, read, leases, corruption advisories, mutable slots)
//! and the queen's announcement protocol. They are defined here, not in a
//! transport, so that every transport carries the same calls and every caller
//! is written once against them: a [`crate::protocol::transport::Transport`] only moves
//! these calls and their [`crate::Error`]s between processes.
//!
//! Calls are keyed by plain values (storage index, share number, secrets)
//! rather than remote object references, so that a transport needs nothing
//! but request/response. An upload proves it owns a bucket with the upload
//! secret it chose at allocation.

use crate::error::{Error, Result};
use crate::kinds::storage::{ShareNum, StorageIndex};
use bytes::Bytes;

pub mod announce;
mod calls;
pub mod frame;
pub mod identity;
pub mod queen;
pub mod storage;
pub mod transport;

pub use queen::*;
pub use storage::*;

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

/// A carrier got the answer to another call than the one it carried: the
/// peer is broken.
pub(crate) fn mismatched(call: &str, got: &str) -> Error {
    Error::unavailable(format!("the answer to {call} was one to {got}"))
}
