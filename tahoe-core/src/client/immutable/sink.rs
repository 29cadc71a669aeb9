//! Where an upload's shares go.
//!
//! The upload pipeline produces, for every share, the same sequence of
//! writes at the same offsets (the header with the first block, one block
//! per segment, the last block with the tail), so a sink receives one call
//! per offset carrying a piece for each share and may write them
//! concurrently. The grid's sink
//! ([`crate::client::immutable::placement::HappySink`]) places shares on storage
//! servers; [`NullSink`] drops them (computing a cap without a grid).

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::Result;
use crate::kinds::storage::{ShareNum, StorageIndex};

/// Receives the shares of one upload.
#[async_trait]
pub trait ShareSink: Send + Sync {
    /// Prepare to receive the shares of `si`, each `share_size` bytes.
    /// Returns the share numbers that must be written (shares a server
    /// already holds need not be).
    async fn start(&self, si: &StorageIndex, share_size: u64) -> Result<Vec<ShareNum>>;

    /// Write `pieces` (one per share) at `offset` of their shares.
    async fn write(&self, offset: u64, pieces: Vec<(ShareNum, Bytes)>) -> Result<()>;

    /// Make every share durable and visible. `ueb` is the upload's URI
    /// extension block: shares a server claimed to hold already count only
    /// if theirs is the same.
    async fn finish(&self, ueb: &[u8]) -> Result<()>;

    /// Give up: discard whatever was written.
    async fn abort(&self);
}

/// A sink that keeps nothing.
pub struct NullSink {
    /// The number of shares to accept (n).
    pub n: u16,
}

#[async_trait]
impl ShareSink for NullSink {
    async fn start(&self, _si: &StorageIndex, _share_size: u64) -> Result<Vec<ShareNum>> {
        Ok((0..self.n).map(|i| i as ShareNum).collect())
    }
    async fn write(&self, _offset: u64, _pieces: Vec<(ShareNum, Bytes)>) -> Result<()> {
        Ok(())
    }
    async fn finish(&self, _ueb: &[u8]) -> Result<()> {
        Ok(())
    }
    async fn abort(&self) {}
}
