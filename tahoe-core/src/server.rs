//! The storage server: Tahoe's storage protocol over a [`StorageBackend`].
//!
//! This is where authority is checked, so the backend below can stay a dumb
//! share store: an upload's writes must present the upload secret chosen at
//! allocation, shares are size-limited, `readonly` and `reserved_space` are
//! honoured, and pending uploads live in a table keyed by (storage index,
//! share number) so any transport can carry the calls.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::Mutex;

use crate::error::{Error, ErrorKind, Result};
use crate::protocol::{
    AllocateRequest, AllocateResponse, MAX_CALL_DATA, Secret, ServerVersion, SlotSecrets,
    SlotWrite, StorageService,
};
use crate::storage::{
    Lease, PendingShare, ShareKind, ShareNum, StorageBackend, StorageIndex, TestVector,
    WriteVector, tests_hold,
};

/// How long a lease lasts (Tahoe's default: 31 days).
pub const LEASE_DURATION_SECS: u64 = 31 * 24 * 3600;

/// The largest immutable share accepted by default (Tahoe's v2 shares are
/// limited only by disk; this bounds one upload's footprint: 64 GiB).
pub const DEFAULT_MAX_SHARE_SIZE: u64 = 64 << 30;

/// Storage-server settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Refuse new shares when free space would drop below this.
    pub reserved_space: u64,
    /// Accept no new shares.
    pub readonly: bool,
    /// Largest share accepted.
    pub max_share_size: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            reserved_space: 0,
            readonly: false,
            max_share_size: DEFAULT_MAX_SHARE_SIZE,
        }
    }
}

struct Upload {
    secret: Secret,
    lease: Lease,
    share: Mutex<Option<Box<dyn PendingShare>>>,
}

/// Uploads in progress, by (storage index, share number).
type UploadTable = HashMap<(StorageIndex, ShareNum), Arc<Upload>>;

/// A storage server over a backend.
pub struct StorageServer {
    backend: Arc<dyn StorageBackend>,
    config: ServerConfig,
    uploads: StdMutex<UploadTable>,
    corruption_reports: StdMutex<Vec<(StorageIndex, ShareNum, String)>>,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Mutable shares are stored as the slot's 32-byte write enabler followed
/// by the share data, so the backend's atomic test-and-write can check the
/// enabler and change the data in one step.
const WE_LEN: u64 = 32;

/// The most ranges one slot read may ask for (each at most
/// [`MAX_CALL_DATA`] bytes).
const MAX_READ_RANGES: usize = 256;

fn check_ranges(ranges: &[(u64, u64)]) -> Result<()> {
    if ranges.len() > MAX_READ_RANGES {
        return Err(Error::invalid_input(format!(
            "{} read ranges in one call; the limit is {MAX_READ_RANGES}",
            ranges.len()
        )));
    }
    ranges
        .iter()
        .try_for_each(|&(_, len)| check_call_data("a read range", len))
}

fn check_call_data(what: &str, len: u64) -> Result<()> {
    if len > MAX_CALL_DATA {
        return Err(Error::invalid_input(format!(
            "{what} of {len} bytes in one call; the limit is {MAX_CALL_DATA}"
        )));
    }
    Ok(())
}

impl StorageServer {
    async fn read_slot(
        &self,
        si: &StorageIndex,
        shnum: ShareNum,
        ranges: &[(u64, u64)],
    ) -> Result<Vec<Bytes>> {
        let mut out = Vec::with_capacity(ranges.len());
        for &(offset, len) in ranges {
            out.push(
                self.backend
                    .read(si, shnum, offset.saturating_add(WE_LEN), len)
                    .await?,
            );
        }
        Ok(out)
    }

    /// A server storing into `backend`.
    pub fn new(backend: Arc<dyn StorageBackend>, config: ServerConfig) -> Self {
        StorageServer {
            backend,
            config,
            uploads: StdMutex::new(HashMap::new()),
            corruption_reports: StdMutex::new(Vec::new()),
        }
    }

    /// The backend.
    pub fn backend(&self) -> &Arc<dyn StorageBackend> {
        &self.backend
    }

    /// Corruption advisories received so far (for operators and tests).
    pub fn corruption_reports(&self) -> Vec<(StorageIndex, ShareNum, String)> {
        self.corruption_reports
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    fn uploads(&self) -> Result<std::sync::MutexGuard<'_, UploadTable>> {
        self.uploads
            .lock()
            .map_err(|_| Error::internal("storage server upload table poisoned"))
    }

    fn upload(&self, si: StorageIndex, shnum: ShareNum, secret: &Secret) -> Result<Arc<Upload>> {
        let u = self.uploads()?.get(&(si, shnum)).cloned().ok_or_else(|| {
            Error::not_found(format!("share {shnum} of {si} is not being uploaded"))
        })?;
        if &u.secret != secret {
            return Err(Error::permission_denied(format!(
                "wrong upload secret for share {shnum} of {si}"
            )));
        }
        Ok(u)
    }

    async fn room_for(&self, bytes: u64) -> Result<bool> {
        Ok(match self.backend.remaining_capacity().await? {
            Some(free) => free >= bytes.saturating_add(self.config.reserved_space),
            None => true,
        })
    }
}

#[async_trait]
impl StorageService for StorageServer {
    async fn version(&self) -> Result<ServerVersion> {
        let free = self.backend.remaining_capacity().await?;
        Ok(ServerVersion {
            application: concat!("tahoe-rs/", env!("CARGO_PKG_VERSION")).to_string(),
            max_share_size: self.config.max_share_size,
            available_space: free.map(|f| f.saturating_sub(self.config.reserved_space)),
            readonly: self.config.readonly,
        })
    }

    async fn allocate_buckets(&self, req: AllocateRequest) -> Result<AllocateResponse> {
        let si = req.storage_index;
        let existing = self.backend.list(&si).await?;
        let mut resp = AllocateResponse::default();
        let lease = Lease {
            renew_secret: req.renew_secret,
            cancel_secret: req.cancel_secret,
            expires_at: now() + LEASE_DURATION_SECS,
        };
        let mut wanted: Vec<ShareNum> = req.share_numbers.clone();
        wanted.sort_unstable();
        wanted.dedup();
        for shnum in wanted {
            if existing
                .iter()
                .any(|i| i.shnum == shnum && i.kind == ShareKind::Immutable)
            {
                resp.already_have.push(shnum);
                continue;
            }
            if self.config.readonly
                || req.share_size > self.config.max_share_size
                || !self.room_for(req.share_size).await?
            {
                continue;
            }
            if self.uploads()?.contains_key(&(si, shnum)) {
                // Someone else is uploading it; Tahoe leaves it to them.
                continue;
            }
            let pending = match self.backend.create(&si, shnum, req.share_size).await {
                Ok(p) => p,
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    resp.already_have.push(shnum);
                    continue;
                }
                Err(e) if e.kind() == ErrorKind::NoSpace => continue,
                Err(e) => return Err(e),
            };
            let upload = Arc::new(Upload {
                secret: req.upload_secret,
                lease: lease.clone(),
                share: Mutex::new(Some(pending)),
            });
            let mut table = self.uploads()?;
            if table.contains_key(&(si, shnum)) {
                continue;
            }
            table.insert((si, shnum), upload);
            resp.allocated.push(shnum);
        }
        if !resp.already_have.is_empty() {
            // The uploader's lease covers shares it will not re-send.
            let _ = self.backend.add_lease(&si, &lease).await;
        }
        Ok(resp)
    }

    async fn write_bucket(
        &self,
        si: StorageIndex,
        shnum: ShareNum,
        upload_secret: Secret,
        offset: u64,
        data: Bytes,
    ) -> Result<()> {
        check_call_data("a write", data.len() as u64)?;
        let u = self.upload(si, shnum, &upload_secret)?;
        let mut guard = u.share.lock().await;
        let share = guard
            .as_mut()
            .ok_or_else(|| Error::not_found(format!("share {shnum} of {si} is already closed")))?;
        share.write(offset, data).await
    }

    async fn close_bucket(
        &self,
        si: StorageIndex,
        shnum: ShareNum,
        upload_secret: Secret,
    ) -> Result<()> {
        let u = self.upload(si, shnum, &upload_secret)?;
        let share =
            u.share.lock().await.take().ok_or_else(|| {
                Error::not_found(format!("share {shnum} of {si} is already closed"))
            })?;
        self.uploads()?.remove(&(si, shnum));
        share.seal().await?;
        self.backend.add_lease(&si, &u.lease).await
    }

    async fn abort_bucket(
        &self,
        si: StorageIndex,
        shnum: ShareNum,
        upload_secret: Secret,
    ) -> Result<()> {
        let u = self.upload(si, shnum, &upload_secret)?;
        self.uploads()?.remove(&(si, shnum));
        let share = u.share.lock().await.take();
        match share {
            Some(s) => s.abort().await,
            None => Ok(()),
        }
    }

    async fn list_buckets(&self, si: StorageIndex) -> Result<BTreeMap<ShareNum, u64>> {
        Ok(self
            .backend
            .list(&si)
            .await?
            .into_iter()
            .filter(|i| i.kind == ShareKind::Immutable)
            .map(|i| (i.shnum, i.size))
            .collect())
    }

    async fn read_bucket(
        &self,
        si: StorageIndex,
        shnum: ShareNum,
        offset: u64,
        len: u64,
    ) -> Result<Bytes> {
        check_call_data("a read", len)?;
        self.backend.read(&si, shnum, offset, len).await
    }

    async fn add_lease(
        &self,
        si: StorageIndex,
        renew_secret: Secret,
        cancel_secret: Secret,
    ) -> Result<()> {
        let lease = Lease {
            renew_secret,
            cancel_secret,
            expires_at: now() + LEASE_DURATION_SECS,
        };
        self.backend.add_lease(&si, &lease).await
    }

    async fn advise_corrupt_share(
        &self,
        si: StorageIndex,
        shnum: ShareNum,
        reason: String,
    ) -> Result<()> {
        // Bounded: a client cannot grow this list without limit.
        let reason: String = reason.chars().take(500).collect();
        if let Ok(mut r) = self.corruption_reports.lock() {
            if r.len() < 10_000 {
                r.push((si, shnum, reason));
            }
        }
        Ok(())
    }

    async fn slot_readv(
        &self,
        si: StorageIndex,
        shnums: Vec<ShareNum>,
        ranges: Vec<(u64, u64)>,
    ) -> Result<BTreeMap<ShareNum, Vec<Bytes>>> {
        check_ranges(&ranges)?;
        let mutable: Vec<ShareNum> = self
            .backend
            .list(&si)
            .await?
            .into_iter()
            .filter(|i| {
                i.kind == ShareKind::Mutable && (shnums.is_empty() || shnums.contains(&i.shnum))
            })
            .map(|i| i.shnum)
            .collect();
        let mut out = BTreeMap::new();
        for shnum in mutable {
            out.insert(shnum, self.read_slot(&si, shnum, &ranges).await?);
        }
        Ok(out)
    }

    async fn slot_testv_and_readv_and_writev(
        &self,
        si: StorageIndex,
        secrets: SlotSecrets,
        writes: BTreeMap<ShareNum, SlotWrite>,
        read_ranges: Vec<(u64, u64)>,
    ) -> Result<(bool, BTreeMap<ShareNum, Vec<Bytes>>)> {
        check_ranges(&read_ranges)?;
        let existing: Vec<ShareNum> = self
            .backend
            .list(&si)
            .await?
            .into_iter()
            .filter(|i| i.kind == ShareKind::Mutable)
            .map(|i| i.shnum)
            .collect();
        // The write enabler guards every existing share of the slot.
        for &shnum in &existing {
            let we = self.backend.read(&si, shnum, 0, WE_LEN).await?;
            if we[..] != secrets.write_enabler {
                return Err(Error::permission_denied(format!(
                    "wrong write enabler for slot {si} (share {shnum})"
                )));
            }
        }
        let mut reads = BTreeMap::new();
        for &shnum in &existing {
            reads.insert(shnum, self.read_slot(&si, shnum, &read_ranges).await?);
        }
        // Evaluate every test first; write only if all hold.
        for (shnum, w) in &writes {
            let current = if existing.contains(shnum) {
                let len = self
                    .backend
                    .list(&si)
                    .await?
                    .iter()
                    .find(|i| i.shnum == *shnum)
                    .map(|i| i.size)
                    .unwrap_or(0);
                self.backend
                    .read(&si, *shnum, WE_LEN, len.saturating_sub(WE_LEN))
                    .await?
            } else {
                Bytes::new()
            };
            if !tests_hold(&current, &w.tests) {
                return Ok((false, reads));
            }
        }
        if self.config.readonly && !writes.is_empty() {
            return Err(Error::permission_denied("this storage server is read-only"));
        }
        for (shnum, w) in writes {
            // Shift into the container (after the write enabler) and make the
            // whole change one atomic test-and-write per share: it also
            // re-checks the enabler and the tests against concurrent writers.
            let mut tests = vec![TestVector {
                offset: 0,
                expected: if existing.contains(&shnum) {
                    Bytes::copy_from_slice(&secrets.write_enabler)
                } else {
                    Bytes::new()
                },
            }];
            tests.extend(w.tests.into_iter().map(|t| TestVector {
                offset: t.offset.saturating_add(WE_LEN),
                expected: t.expected,
            }));
            let mut vectors = Vec::new();
            if !existing.contains(&shnum) {
                vectors.push(WriteVector {
                    offset: 0,
                    data: Bytes::copy_from_slice(&secrets.write_enabler),
                });
            }
            for v in w.writes {
                let offset = v
                    .offset
                    .checked_add(WE_LEN)
                    .ok_or_else(|| Error::invalid_input("write offset overflows"))?;
                vectors.push(WriteVector {
                    offset,
                    data: v.data,
                });
            }
            let new_length = match w.new_length {
                Some(n) => Some(
                    n.checked_add(WE_LEN)
                        .ok_or_else(|| Error::invalid_input("length overflows"))?,
                ),
                None => None,
            };
            if !self
                .backend
                .test_and_write(&si, shnum, &tests, &vectors, new_length)
                .await?
            {
                return Ok((false, reads));
            }
        }
        let lease = Lease {
            renew_secret: secrets.renew_secret,
            cancel_secret: secrets.cancel_secret,
            expires_at: now() + LEASE_DURATION_SECS,
        };
        let _ = self.backend.add_lease(&si, &lease).await;
        Ok((true, reads))
    }
}
