//! Where an upload's shares go.
//!
//! The upload pipeline produces, for every share, the same sequence of
//! writes at the same offsets (header, one block per segment, the tail), so
//! a sink receives one call per offset carrying a piece for each share and
//! may write them concurrently. The grid's sink places shares on storage
//! servers; [`NullSink`] drops them (computing a cap without a grid).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use futures::future::join_all;

use crate::error::{Error, Result};
use crate::protocol::{AllocateRequest, Secret, StorageService, write_bucket_chunked};
use crate::storage::{ShareNum, StorageIndex};

/// Receives the shares of one upload.
#[async_trait]
pub trait ShareSink: Send + Sync {
    /// Prepare to receive the shares of `si`, each `share_size` bytes.
    /// Returns the share numbers that must be written (shares a server
    /// already holds need not be).
    async fn start(&self, si: &StorageIndex, share_size: u64) -> Result<Vec<ShareNum>>;

    /// Write `pieces` (one per share) at `offset` of their shares.
    async fn write(&self, offset: u64, pieces: Vec<(ShareNum, Bytes)>) -> Result<()>;

    /// Make every share durable and visible.
    async fn finish(&self) -> Result<()>;

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
    async fn finish(&self) -> Result<()> {
        Ok(())
    }
    async fn abort(&self) {}
}

/// A storage server as the upload and download pipelines see it.
#[derive(Clone)]
pub struct ServerRef {
    /// A stable identifier for messages and placement (the node id).
    pub id: String,
    /// The server's storage service.
    pub service: Arc<dyn StorageService>,
}

impl std::fmt::Debug for ServerRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ServerRef({})", self.id)
    }
}

/// Lease and upload secrets for one upload.
#[derive(Clone)]
pub struct UploadSecrets {
    /// Lease renewal.
    pub renew: Secret,
    /// Lease cancellation.
    pub cancel: Secret,
    /// Proves ownership of the buckets.
    pub upload: Secret,
}

impl UploadSecrets {
    /// Fresh random secrets.
    pub fn random() -> Result<Self> {
        let mut s = [[0u8; 32]; 3];
        for x in &mut s {
            getrandom::fill(x).map_err(|e| Error::internal(format!("random: {e}")))?;
        }
        Ok(UploadSecrets {
            renew: s[0],
            cancel: s[1],
            upload: s[2],
        })
    }
}

/// Writes shares to storage servers following a fixed placement
/// (share number → server).
pub struct ServerSink {
    placement: BTreeMap<ShareNum, ServerRef>,
    secrets: UploadSecrets,
    state: Mutex<Option<(StorageIndex, Vec<ShareNum>)>>,
}

impl ServerSink {
    /// A sink that sends share `s` to `placement[s]`.
    pub fn new(placement: BTreeMap<ShareNum, ServerRef>, secrets: UploadSecrets) -> Self {
        ServerSink {
            placement,
            secrets,
            state: Mutex::new(None),
        }
    }

    /// Share `i` goes to server `i mod len`: the simplest placement.
    pub fn round_robin(servers: &[ServerRef], n: u16, secrets: UploadSecrets) -> Result<Self> {
        if servers.is_empty() {
            return Err(Error::unhappy("no storage servers to upload to"));
        }
        let placement = (0..n)
            .map(|i| {
                (
                    i as ShareNum,
                    servers[usize::from(i) % servers.len()].clone(),
                )
            })
            .collect();
        Ok(Self::new(placement, secrets))
    }

    fn active(&self) -> Result<(StorageIndex, Vec<ShareNum>)> {
        self.state
            .lock()
            .map_err(|_| Error::internal("sink state poisoned"))?
            .clone()
            .ok_or_else(|| Error::internal("sink used before start"))
    }
}

#[async_trait]
impl ShareSink for ServerSink {
    async fn start(&self, si: &StorageIndex, share_size: u64) -> Result<Vec<ShareNum>> {
        // One allocation request per server, for all its shares.
        let mut by_server: BTreeMap<String, (ServerRef, Vec<ShareNum>)> = BTreeMap::new();
        for (shnum, server) in &self.placement {
            by_server
                .entry(server.id.clone())
                .or_insert_with(|| (server.clone(), Vec::new()))
                .1
                .push(*shnum);
        }
        let requests = by_server.into_values().map(|(server, shnums)| {
            let req = AllocateRequest {
                storage_index: *si,
                share_numbers: shnums.clone(),
                share_size,
                renew_secret: self.secrets.renew,
                cancel_secret: self.secrets.cancel,
                upload_secret: self.secrets.upload,
            };
            async move {
                let resp = server.service.allocate_buckets(req).await;
                (server, shnums, resp)
            }
        });
        let mut to_write = Vec::new();
        for (server, shnums, resp) in join_all(requests).await {
            let resp =
                resp.map_err(|e| e.context(format!("allocating on server {}", server.id)))?;
            for s in shnums {
                if resp.allocated.contains(&s) {
                    to_write.push(s);
                } else if !resp.already_have.contains(&s) {
                    return Err(Error::unhappy(format!(
                        "server {} refused share {s} ({share_size} bytes)",
                        server.id
                    )));
                }
            }
        }
        to_write.sort_unstable();
        *self
            .state
            .lock()
            .map_err(|_| Error::internal("sink state poisoned"))? = Some((*si, to_write.clone()));
        Ok(to_write)
    }

    async fn write(&self, offset: u64, pieces: Vec<(ShareNum, Bytes)>) -> Result<()> {
        let (si, _) = self.active()?;
        let writes = pieces.into_iter().filter_map(|(shnum, data)| {
            let server = self.placement.get(&shnum)?.clone();
            let secret = self.secrets.upload;
            Some(async move {
                write_bucket_chunked(server.service.as_ref(), si, shnum, secret, offset, data)
                    .await
                    .map_err(|e| {
                        e.context(format!("writing share {shnum} to server {}", server.id))
                    })
            })
        });
        for r in join_all(writes).await {
            r?;
        }
        Ok(())
    }

    async fn finish(&self) -> Result<()> {
        let (si, shnums) = self.active()?;
        let closes = shnums.into_iter().filter_map(|shnum| {
            let server = self.placement.get(&shnum)?.clone();
            let secret = self.secrets.upload;
            Some(async move {
                server
                    .service
                    .close_bucket(si, shnum, secret)
                    .await
                    .map_err(|e| {
                        e.context(format!("closing share {shnum} on server {}", server.id))
                    })
            })
        });
        for r in join_all(closes).await {
            r?;
        }
        Ok(())
    }

    async fn abort(&self) {
        let Ok((si, shnums)) = self.active() else {
            return;
        };
        let aborts = shnums.into_iter().filter_map(|shnum| {
            let server = self.placement.get(&shnum)?.clone();
            let secret = self.secrets.upload;
            Some(async move {
                let _ = server.service.abort_bucket(si, shnum, secret).await;
            })
        });
        join_all(aborts).await;
    }
}
