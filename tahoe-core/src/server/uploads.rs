//! Immutable uploads: allocating buckets within a peer's budgets, writing,
//! sealing and aborting them, and reading sealed shares.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::Mutex;

use crate::error::{Error, ErrorKind, Result};
use crate::kinds::storage::{
    Lease, PendingShare, ShareKind, ShareNum, StorageIndex, constant_time_eq,
};
use crate::protocol::{AllocateRequest, AllocateResponse, Secret};

use super::*;

pub(super) struct Upload {
    pub(super) secret: Secret,
    pub(super) lease: Lease,
    pub(super) size: u64,
    /// The session that allocated it (0: calls made without a session).
    pub(super) owner: u64,
    /// The peer whose budget it counts against (`None`: in process).
    pub(super) caller: Option<Caller>,
    pub(super) last_active: StdMutex<Instant>,
    pub(super) share: Mutex<Option<Box<dyn PendingShare>>>,
}

impl Upload {
    pub(super) fn touch(&self) {
        if let Ok(mut t) = self.last_active.lock() {
            *t = Instant::now();
        }
    }

    pub(super) fn idle_for(&self) -> Duration {
        self.last_active
            .lock()
            .map(|t| t.elapsed())
            .unwrap_or_default()
    }
}

/// Uploads in progress, by (storage index, share number).
pub(super) type UploadTable = HashMap<(StorageIndex, ShareNum), Arc<Upload>>;

impl Shared {
    pub(super) fn uploads(&self) -> Result<std::sync::MutexGuard<'_, UploadTable>> {
        self.uploads
            .lock()
            .map_err(|_| Error::internal("storage server upload table poisoned"))
    }

    /// Forget (and so abort: a dropped pending share is discarded) every
    /// upload nobody wrote to within the bucket timeout.
    pub(super) fn expire_idle(&self) -> usize {
        let timeout = self.config.bucket_timeout;
        let Ok(mut table) = self.uploads() else {
            return 0;
        };
        let before = table.len();
        table.retain(|_, u| u.idle_for() < timeout);
        before - table.len()
    }

    pub(super) async fn room_for(&self, bytes: u64) -> Result<bool> {
        Ok(match self.backend.remaining_capacity().await? {
            Some(free) => free >= bytes.saturating_add(self.config.reserved_space),
            None => true,
        })
    }
}

impl StorageServer {
    pub(super) fn upload(
        &self,
        si: StorageIndex,
        shnum: ShareNum,
        secret: &Secret,
    ) -> Result<Arc<Upload>> {
        let u = self
            .shared
            .uploads()?
            .get(&(si, shnum))
            .cloned()
            .ok_or_else(|| {
                Error::not_found(format!("share {shnum} of {si} is not being uploaded"))
            })?;
        if !constant_time_eq(&u.secret, secret) {
            return Err(Error::permission_denied(format!(
                "wrong upload secret for share {shnum} of {si}"
            )));
        }
        Ok(u)
    }

    /// Remove `u` from the upload table, unless another upload replaced it.
    pub(super) fn forget(&self, si: StorageIndex, shnum: ShareNum, u: &Arc<Upload>) -> Result<()> {
        let mut table = self.shared.uploads()?;
        if table.get(&(si, shnum)).is_some_and(|t| Arc::ptr_eq(t, u)) {
            table.remove(&(si, shnum));
        }
        Ok(())
    }

    /// Why one more bucket of `size` bytes would put this session's peer
    /// over its budgets, if it would.
    pub(super) async fn over_budget(&self, size: u64) -> Result<Option<String>> {
        let Some(caller) = &self.session.caller else {
            return Ok(None);
        };
        let (count, bytes) = self
            .shared
            .uploads()?
            .values()
            .filter(|u| u.caller.as_ref() == Some(caller))
            .fold((0, 0u64), |(n, b), u| (n + 1, b.saturating_add(u.size)));
        let c = &self.shared.config;
        if count >= c.max_pending_buckets {
            return Ok(Some(format!(
                "peer {caller} already has {count} buckets pending (limit {})",
                c.max_pending_buckets
            )));
        }
        // Pending shares count as used in the backend's free space: what
        // is free for this peer includes its own.
        let free = self
            .shared
            .backend
            .remaining_capacity()
            .await?
            .map(|f| f.saturating_sub(c.reserved_space).saturating_add(bytes));
        let limit = free.map_or(c.max_pending_bytes, |f| c.max_pending_bytes.min(f / 2));
        Ok((bytes.saturating_add(size) > limit).then(|| {
            format!(
                "peer {caller} already has {bytes} bytes pending; {size} more would pass its limit of {limit} (max_pending_bytes {}, or half the space free)",
                c.max_pending_bytes
            )
        }))
    }
}

impl StorageServer {
    pub(super) async fn allocate(&self, req: AllocateRequest) -> Result<AllocateResponse> {
        let si = req.storage_index;
        count(&self.shared.counters.allocate, 1);
        self.expire_idle_uploads();
        // Under the storage index's lock, so that the lease crawler never
        // collects shares this call answers as already here, nor decides
        // about an index while buckets are being opened on it.
        let _slot = self.shared.slot_lock(&si).lock().await;
        let existing = self.shared.backend.list(&si).await?;
        let mut resp = AllocateResponse::default();
        let lease = self.shared.lease(req.renew_secret, req.cancel_secret);
        let mut wanted: Vec<ShareNum> = req.share_numbers.clone();
        wanted.sort_unstable();
        wanted.dedup();
        let config = &self.shared.config;
        // One allocation at a time decides about space, so that requests
        // arriving together cannot all see the same free bytes.
        let _space = self.shared.space.lock().await;
        for shnum in wanted {
            if existing
                .iter()
                .any(|i| i.shnum == shnum && i.kind == ShareKind::Immutable)
            {
                resp.already_have.push(shnum);
                continue;
            }
            if config.readonly || req.share_size > config.max_share_size {
                continue;
            }
            let current = self.shared.uploads()?.get(&(si, shnum)).cloned();
            if let Some(u) = &current
                && !constant_time_eq(&u.secret, &req.upload_secret)
            {
                // Someone else is uploading it; Tahoe leaves it to them.
                continue;
            }
            if let Some(why) = self.over_budget(req.share_size).await? {
                tracing::warn!("refused to allocate share {shnum} of {si}: {why}");
                break;
            }
            // A retry of the same upload (same secret) takes its bucket over
            // and starts it afresh.
            if let Some(u) = current {
                self.forget(si, shnum, &u)?;
                if let Some(old) = u.share.lock().await.take() {
                    let _ = old.abort().await;
                }
            }
            if !self.shared.room_for(req.share_size).await? {
                continue;
            }
            let pending = match self.shared.backend.create(&si, shnum, req.share_size).await {
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
                size: req.share_size,
                owner: self.session.id,
                caller: self.session.caller.clone(),
                last_active: StdMutex::new(Instant::now()),
                share: Mutex::new(Some(pending)),
            });
            let mut table = self.shared.uploads()?;
            if table.contains_key(&(si, shnum)) {
                continue;
            }
            table.insert((si, shnum), upload);
            resp.allocated.push(shnum);
        }
        if !resp.already_have.is_empty() {
            // The uploader's lease covers shares it will not re-send.
            let _ = self.shared.backend.add_lease(&si, &lease).await;
        }
        Ok(resp)
    }
    pub(super) async fn write(
        &self,
        si: StorageIndex,
        shnum: ShareNum,
        upload_secret: Secret,
        offset: u64,
        data: Bytes,
    ) -> Result<()> {
        check_call_data("a write", data.len() as u64)?;
        let u = self.upload(si, shnum, &upload_secret)?;
        u.touch();
        let mut guard = u.share.lock().await;
        let share = guard
            .as_mut()
            .ok_or_else(|| Error::not_found(format!("share {shnum} of {si} is already closed")))?;
        let len = data.len() as u64;
        share.write(offset, data).await?;
        u.touch();
        count(&self.shared.counters.write, 1);
        count(&self.shared.counters.bytes_added, len);
        Ok(())
    }
    pub(super) async fn close(
        &self,
        si: StorageIndex,
        shnum: ShareNum,
        upload_secret: Secret,
    ) -> Result<()> {
        let u = self.upload(si, shnum, &upload_secret)?;
        // From the moment the upload leaves the table until its lease is
        // on the share, the crawler must not judge the index.
        let _slot = self.shared.slot_lock(&si).lock().await;
        let share =
            u.share.lock().await.take().ok_or_else(|| {
                Error::not_found(format!("share {shnum} of {si} is already closed"))
            })?;
        self.forget(si, shnum, &u)?;
        share.seal().await?;
        count(&self.shared.counters.close, 1);
        self.shared.backend.add_lease(&si, &u.lease).await
    }
    pub(super) async fn abort(
        &self,
        si: StorageIndex,
        shnum: ShareNum,
        upload_secret: Secret,
    ) -> Result<()> {
        let u = self.upload(si, shnum, &upload_secret)?;
        self.forget(si, shnum, &u)?;
        let share = u.share.lock().await.take();
        match share {
            Some(s) => s.abort().await,
            None => Ok(()),
        }
    }
    pub(super) async fn list(&self, si: StorageIndex) -> Result<BTreeMap<ShareNum, u64>> {
        Ok(self
            .shared
            .backend
            .list(&si)
            .await?
            .into_iter()
            .filter(|i| i.kind == ShareKind::Immutable)
            .map(|i| (i.shnum, i.size))
            .collect())
    }
    pub(super) async fn read(
        &self,
        si: StorageIndex,
        shnum: ShareNum,
        offset: u64,
        len: u64,
    ) -> Result<Bytes> {
        check_call_data("a read", len)?;
        // Immutable shares only: a mutable share holds its write enabler.
        let data = self
            .shared
            .backend
            .read(&si, shnum, ShareKind::Immutable, offset, len)
            .await?;
        count(&self.shared.counters.read, 1);
        count(&self.shared.counters.bytes_read, data.len() as u64);
        Ok(data)
    }
}
