//! The storage server: Tahoe's storage protocol over a [`StorageBackend`].
//!
//! This is where authority is checked, so the backend below can stay a dumb
//! share store. What a server holds, it may lose; what it must never do is
//! let one client's calls hurt another's data or the server itself:
//!
//! - an upload's writes, close and abort must present the upload secret
//!   chosen at allocation (clients derive one per server, so a server cannot
//!   use what it was sent anywhere else);
//! - a mutable share keeps its slot's write enabler in a header the server
//!   owns: every read skips it, immutable reads never reach mutable shares,
//!   and secrets are compared in constant time;
//! - every peer has budgets: one call carries at most [`MAX_CALL_DATA`]
//!   bytes in and out; a peer (a [`Caller`], whose connections each open a
//!   [`StorageService::open_session`]) holds a bounded number and size of
//!   pending buckets, however many connections it opens, and never more
//!   than half of the space free for it; a bucket nobody writes to
//!   expires, and a bucket whose connection closes is aborted;
//! - space decisions (allocations, mutable growth) are made one at a time,
//!   so `reserved_space` holds however many requests arrive at once;
//! - one slot call's tests and writes apply to all its shares or to none:
//!   calls on one slot are serialized here, every test is checked before
//!   any write, and a write that fails half-way is rolled back.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::Mutex;

use crate::error::{Error, ErrorKind, Result};
use crate::kinds::storage::{
    Lease, MAX_MUTABLE_SHARE, PendingShare, ShareKind, ShareNum, StorageBackend, StorageIndex,
    TestVector, WriteVector, constant_time_eq,
};
use crate::protocol::{
    AllocateRequest, AllocateResponse, Caller, MAX_CALL_DATA, Secret, ServerVersion, SlotSecrets,
    SlotWrite, StorageService,
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
    /// A bucket that is allocated and then not written for this long is
    /// aborted (its space is given back; a retry may allocate it again).
    pub bucket_timeout: Duration,
    /// Most buckets one peer (all its connections together) may have
    /// pending at once.
    pub max_pending_buckets: usize,
    /// Most bytes (declared share sizes) one peer may have pending; where
    /// the backend reports its free space, also never more than half of
    /// what is free for that peer (the free space plus its own pending
    /// bytes), so one peer cannot claim it all.
    pub max_pending_bytes: u64,
}

/// Default of [`ServerConfig::bucket_timeout`]: five minutes.
pub const DEFAULT_BUCKET_TIMEOUT: Duration = Duration::from_secs(300);

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            reserved_space: 0,
            readonly: false,
            max_share_size: DEFAULT_MAX_SHARE_SIZE,
            bucket_timeout: DEFAULT_BUCKET_TIMEOUT,
            max_pending_buckets: 1024,
            max_pending_bytes: DEFAULT_MAX_SHARE_SIZE,
        }
    }
}

struct Upload {
    secret: Secret,
    lease: Lease,
    size: u64,
    /// The session that allocated it (0: calls made without a session).
    owner: u64,
    /// The peer whose budget it counts against (`None`: in process).
    caller: Option<Caller>,
    last_active: StdMutex<Instant>,
    share: Mutex<Option<Box<dyn PendingShare>>>,
}

impl Upload {
    fn touch(&self) {
        if let Ok(mut t) = self.last_active.lock() {
            *t = Instant::now();
        }
    }

    fn idle_for(&self) -> Duration {
        self.last_active
            .lock()
            .map(|t| t.elapsed())
            .unwrap_or_default()
    }
}

/// Uploads in progress, by (storage index, share number).
type UploadTable = HashMap<(StorageIndex, ShareNum), Arc<Upload>>;

/// How many locks serialize slot calls (by storage index).
const SLOT_STRIPES: usize = 64;

/// Most corruption advisories remembered (and logged).
const MAX_CORRUPTION_REPORTS: usize = 10_000;

/// The most ranges one slot read may ask for.
const MAX_READ_RANGES: usize = 256;

/// The most test and write vectors one slot call may carry per share.
const MAX_VECTORS: usize = 1024;

/// Mutable shares are stored as the slot's 32-byte write enabler followed
/// by the share data: the backend's atomic test-and-write then checks the
/// enabler and changes the data in one step, and every read the server
/// makes of a mutable share starts after it.
const WE_LEN: u64 = 32;

#[derive(Default)]
struct Corruption {
    seen: HashSet<(StorageIndex, ShareNum)>,
    reports: Vec<(StorageIndex, ShareNum, String)>,
}

struct Shared {
    backend: Arc<dyn StorageBackend>,
    config: ServerConfig,
    uploads: StdMutex<UploadTable>,
    corruption: StdMutex<Corruption>,
    /// Held while deciding whether space is left and taking it.
    space: Mutex<()>,
    slots: Vec<Mutex<()>>,
    next_session: AtomicU64,
    counters: ServerCounters,
}

/// What a storage server has done since it started, for its node's
/// statistics (named as Tahoe-LAFS's `storage_server.*` counters).
#[derive(Debug, Default)]
pub struct ServerCounters {
    /// `allocate_buckets` calls.
    pub allocate: AtomicU64,
    /// `write_bucket` calls.
    pub write: AtomicU64,
    /// Bytes those calls wrote.
    pub bytes_added: AtomicU64,
    /// Immutable shares sealed.
    pub close: AtomicU64,
    /// `read_bucket` calls.
    pub read: AtomicU64,
    /// Bytes those calls returned.
    pub bytes_read: AtomicU64,
    /// Mutable-slot reads.
    pub readv: AtomicU64,
    /// Mutable-slot test-and-write calls.
    pub writev: AtomicU64,
}

fn count(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

impl Shared {
    fn uploads(&self) -> Result<std::sync::MutexGuard<'_, UploadTable>> {
        self.uploads
            .lock()
            .map_err(|_| Error::internal("storage server upload table poisoned"))
    }

    /// Forget (and so abort: a dropped pending share is discarded) every
    /// upload nobody wrote to within the bucket timeout.
    fn expire_idle(&self) -> usize {
        let timeout = self.config.bucket_timeout;
        let Ok(mut table) = self.uploads() else {
            return 0;
        };
        let before = table.len();
        table.retain(|_, u| u.idle_for() < timeout);
        before - table.len()
    }

    async fn room_for(&self, bytes: u64) -> Result<bool> {
        Ok(match self.backend.remaining_capacity().await? {
            Some(free) => free >= bytes.saturating_add(self.config.reserved_space),
            None => true,
        })
    }

    fn slot_lock(&self, si: &StorageIndex) -> &Mutex<()> {
        let i = usize::from(si.0[0]) | (usize::from(si.0[1]) << 8);
        &self.slots[i % self.slots.len()]
    }
}

/// One connection's view of the server: its pending buckets are its own,
/// counted against its peer's budget, and aborted when it is dropped.
struct Session {
    id: u64,
    /// The peer whose budgets apply (`None` for calls made in process
    /// without a session: no budgets).
    caller: Option<Caller>,
    shared: Arc<Shared>,
}

impl Drop for Session {
    fn drop(&mut self) {
        let id = self.id;
        if let Ok(mut table) = self.shared.uploads() {
            let before = table.len();
            table.retain(|_, u| u.owner != id);
            let aborted = before - table.len();
            if aborted > 0 {
                tracing::info!("connection closed: aborted {aborted} unfinished upload(s)");
            }
        }
    }
}

/// A storage server over a backend.
///
/// Cloning gives another handle to the same server. Calls made on the
/// server directly share one session without per-connection budgets (for
/// in-process use); transports call [`StorageService::open_session`] for
/// every peer connection.
#[derive(Clone)]
pub struct StorageServer {
    shared: Arc<Shared>,
    session: Arc<Session>,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn lease(renew_secret: Secret, cancel_secret: Secret) -> Lease {
    Lease {
        renew_secret,
        cancel_secret,
        expires_at: now() + LEASE_DURATION_SECS,
    }
}

fn check_call_data(what: &str, len: u64) -> Result<()> {
    if len > MAX_CALL_DATA {
        return Err(Error::invalid_input(format!(
            "{what} of {len} bytes in one call; the limit is {MAX_CALL_DATA}"
        )));
    }
    Ok(())
}

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

/// Everything one slot call sends must fit one call's budget, whatever the
/// number of shares and vectors.
fn check_slot_writes(writes: &BTreeMap<ShareNum, SlotWrite>) -> Result<()> {
    let mut total = 0u64;
    for (shnum, w) in writes {
        if w.tests.len() > MAX_VECTORS || w.writes.len() > MAX_VECTORS {
            return Err(Error::invalid_input(format!(
                "share {shnum}: {} tests and {} writes in one call; the limit is {MAX_VECTORS} each",
                w.tests.len(),
                w.writes.len()
            )));
        }
        for t in &w.tests {
            check_call_data("a test vector", t.length)?;
            total = total.saturating_add(t.expected.len() as u64);
        }
        for v in &w.writes {
            total = total.saturating_add(v.data.len() as u64);
        }
    }
    check_call_data("a slot call's test and write data", total)
}

/// Shift a share's data coordinates past the server's header.
fn shifted(offset: u64) -> Result<u64> {
    offset
        .checked_add(WE_LEN)
        .ok_or_else(|| Error::invalid_input("offset overflows"))
}

/// The container length after `w` is applied to one of `old_len` bytes.
fn length_after(old_len: u64, w: &SlotWrite) -> Result<u64> {
    let mut len = old_len;
    for v in &w.writes {
        let end = shifted(v.offset)?
            .checked_add(v.data.len() as u64)
            .ok_or_else(|| Error::invalid_input("write vector overflows"))?;
        len = len.max(end);
    }
    if let Some(n) = w.new_length {
        len = shifted(n)?;
    }
    if len > MAX_MUTABLE_SHARE {
        return Err(Error::invalid_input(format!(
            "a mutable share of {len} bytes is over the {MAX_MUTABLE_SHARE}-byte limit"
        )));
    }
    Ok(len)
}

/// What it takes to undo one share's writes.
struct Undo {
    shnum: ShareNum,
    /// `None`: the share was created by this call (undo deletes it).
    old: Option<(u64, Vec<WriteVector>)>,
}

impl StorageServer {
    /// A server storing into `backend`.
    pub fn new(backend: Arc<dyn StorageBackend>, config: ServerConfig) -> Self {
        let shared = Arc::new(Shared {
            backend,
            config,
            uploads: StdMutex::new(HashMap::new()),
            corruption: StdMutex::new(Corruption::default()),
            space: Mutex::new(()),
            slots: (0..SLOT_STRIPES).map(|_| Mutex::new(())).collect(),
            next_session: AtomicU64::new(1),
            counters: ServerCounters::default(),
        });
        let session = Arc::new(Session {
            id: 0,
            caller: None,
            shared: shared.clone(),
        });
        StorageServer { shared, session }
    }

    /// What this server has done since it started.
    pub fn counters(&self) -> &ServerCounters {
        &self.shared.counters
    }

    /// A handle for one connection of `caller`, charged to that peer's
    /// budgets, whose pending buckets are aborted when the last clone of
    /// it is dropped.
    pub fn session(&self, caller: &Caller) -> StorageServer {
        let id = self.shared.next_session.fetch_add(1, Ordering::Relaxed);
        StorageServer {
            shared: self.shared.clone(),
            session: Arc::new(Session {
                id,
                caller: Some(caller.clone()),
                shared: self.shared.clone(),
            }),
        }
    }

    /// The backend.
    pub fn backend(&self) -> &Arc<dyn StorageBackend> {
        &self.shared.backend
    }

    /// Abort every bucket nobody wrote to within the bucket timeout;
    /// returns how many. Allocations do this too; nodes also run it
    /// periodically so that abandoned space comes back without them.
    pub fn expire_idle_uploads(&self) -> usize {
        let n = self.shared.expire_idle();
        if n > 0 {
            tracing::info!("expired {n} upload(s) nobody wrote to");
        }
        n
    }

    /// How many buckets are being uploaded.
    pub fn pending_uploads(&self) -> usize {
        self.shared.uploads().map(|t| t.len()).unwrap_or(0)
    }

    /// Corruption advisories received so far (for operators and tests).
    pub fn corruption_reports(&self) -> Vec<(StorageIndex, ShareNum, String)> {
        self.shared
            .corruption
            .lock()
            .map(|r| r.reports.clone())
            .unwrap_or_default()
    }

    fn upload(&self, si: StorageIndex, shnum: ShareNum, secret: &Secret) -> Result<Arc<Upload>> {
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
    fn forget(&self, si: StorageIndex, shnum: ShareNum, u: &Arc<Upload>) -> Result<()> {
        let mut table = self.shared.uploads()?;
        if table.get(&(si, shnum)).is_some_and(|t| Arc::ptr_eq(t, u)) {
            table.remove(&(si, shnum));
        }
        Ok(())
    }

    /// Why one more bucket of `size` bytes would put this session's peer
    /// over its budgets, if it would.
    async fn over_budget(&self, size: u64) -> Result<Option<String>> {
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

    /// Read ranges of the data of mutable share `shnum`, within `budget`.
    async fn read_slot(
        &self,
        si: &StorageIndex,
        shnum: ShareNum,
        ranges: &[(u64, u64)],
        budget: &mut u64,
    ) -> Result<Vec<Bytes>> {
        let mut out = Vec::with_capacity(ranges.len());
        for &(offset, len) in ranges {
            let data = self
                .shared
                .backend
                .read(
                    si,
                    shnum,
                    ShareKind::Mutable,
                    offset.saturating_add(WE_LEN),
                    len,
                )
                .await?;
            *budget = budget.checked_sub(data.len() as u64).ok_or_else(|| {
                Error::invalid_input(format!(
                    "a slot read would return more than {MAX_CALL_DATA} bytes; ask for fewer ranges or shares"
                ))
            })?;
            out.push(data);
        }
        Ok(out)
    }

    async fn mutable_shares(&self, si: &StorageIndex) -> Result<BTreeMap<ShareNum, u64>> {
        Ok(self
            .shared
            .backend
            .list(si)
            .await?
            .into_iter()
            .filter(|i| i.kind == ShareKind::Mutable)
            .map(|i| (i.shnum, i.size))
            .collect())
    }

    /// Every test of `w` against the current data of share `shnum`
    /// (absent: empty), each compared in constant time.
    async fn tests_hold(
        &self,
        si: &StorageIndex,
        shnum: ShareNum,
        exists: bool,
        tests: &[TestVector],
    ) -> Result<bool> {
        let mut all = true;
        for t in tests {
            let current = if exists {
                self.shared
                    .backend
                    .read(
                        si,
                        shnum,
                        ShareKind::Mutable,
                        t.offset.saturating_add(WE_LEN),
                        t.length,
                    )
                    .await?
            } else {
                Bytes::new()
            };
            all &= constant_time_eq(&current, &t.expected);
        }
        Ok(all)
    }

    /// Snapshot what `w` will overwrite in an existing share.
    async fn undo_for(
        &self,
        si: &StorageIndex,
        shnum: ShareNum,
        old_len: u64,
        w: &SlotWrite,
    ) -> Result<Undo> {
        let mut old = Vec::new();
        for v in &w.writes {
            let offset = shifted(v.offset)?;
            let data = self
                .shared
                .backend
                .read(si, shnum, ShareKind::Mutable, offset, v.data.len() as u64)
                .await?;
            old.push(WriteVector { offset, data });
        }
        Ok(Undo {
            shnum,
            old: Some((old_len, old)),
        })
    }

    async fn rollback(&self, si: &StorageIndex, done: Vec<Undo>, we: &Secret) {
        for undo in done.into_iter().rev() {
            let r = match undo.old {
                None => self.shared.backend.delete(si, undo.shnum).await,
                Some((len, old)) => self
                    .shared
                    .backend
                    .test_and_write(
                        si,
                        undo.shnum,
                        &[TestVector::equals(0, Bytes::copy_from_slice(we))],
                        &old,
                        Some(len),
                    )
                    .await
                    .map(|_| ()),
            };
            if let Err(e) = r {
                tracing::error!(
                    "could not roll back share {} of slot {si} after a failed write: {e}",
                    undo.shnum
                );
            }
        }
    }
}

#[async_trait]
impl StorageService for StorageServer {
    async fn version(&self) -> Result<ServerVersion> {
        let free = self.shared.backend.remaining_capacity().await?;
        let c = &self.shared.config;
        Ok(ServerVersion {
            application: concat!("tahoe-rs/", env!("CARGO_PKG_VERSION")).to_string(),
            max_share_size: c.max_share_size,
            available_space: free.map(|f| f.saturating_sub(c.reserved_space)),
            readonly: c.readonly,
        })
    }

    fn open_session(&self, caller: &Caller) -> Option<Arc<dyn StorageService>> {
        Some(Arc::new(self.session(caller)))
    }

    async fn allocate_buckets(&self, req: AllocateRequest) -> Result<AllocateResponse> {
        let si = req.storage_index;
        count(&self.shared.counters.allocate, 1);
        self.expire_idle_uploads();
        let existing = self.shared.backend.list(&si).await?;
        let mut resp = AllocateResponse::default();
        let lease = lease(req.renew_secret, req.cancel_secret);
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
        self.forget(si, shnum, &u)?;
        share.seal().await?;
        count(&self.shared.counters.close, 1);
        self.shared.backend.add_lease(&si, &u.lease).await
    }

    async fn abort_bucket(
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

    async fn list_buckets(&self, si: StorageIndex) -> Result<BTreeMap<ShareNum, u64>> {
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

    async fn read_bucket(
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

    async fn add_lease(
        &self,
        si: StorageIndex,
        renew_secret: Secret,
        cancel_secret: Secret,
    ) -> Result<()> {
        self.shared
            .backend
            .add_lease(&si, &lease(renew_secret, cancel_secret))
            .await
    }

    async fn advise_corrupt_share(
        &self,
        si: StorageIndex,
        shnum: ShareNum,
        reason: String,
    ) -> Result<()> {
        // Bounded, and logged once per share: a client cannot grow the list
        // or the log without limit.
        let reason: String = reason.chars().take(500).collect();
        if let Ok(mut c) = self.shared.corruption.lock()
            && c.seen.len() < MAX_CORRUPTION_REPORTS
            && c.seen.insert((si, shnum))
        {
            tracing::warn!("share {shnum} of {si} was reported corrupt: {reason:?}");
            c.reports.push((si, shnum, reason));
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
        count(&self.shared.counters.readv, 1);
        let mut budget = MAX_CALL_DATA;
        let mut out = BTreeMap::new();
        for shnum in self.mutable_shares(&si).await?.into_keys() {
            if shnums.is_empty() || shnums.contains(&shnum) {
                out.insert(
                    shnum,
                    self.read_slot(&si, shnum, &ranges, &mut budget).await?,
                );
            }
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
        check_slot_writes(&writes)?;
        count(&self.shared.counters.writev, 1);
        let we = secrets.write_enabler;
        let _slot = self.shared.slot_lock(&si).lock().await;
        let existing = self.mutable_shares(&si).await?;
        // The write enabler guards every existing share of the slot.
        for &shnum in existing.keys() {
            let stored = self
                .shared
                .backend
                .read(&si, shnum, ShareKind::Mutable, 0, WE_LEN)
                .await?;
            if !constant_time_eq(&stored, &we) {
                return Err(Error::permission_denied(format!(
                    "wrong write enabler for slot {si} (share {shnum})"
                )));
            }
        }
        let mut budget = MAX_CALL_DATA;
        let mut reads = BTreeMap::new();
        for &shnum in existing.keys() {
            reads.insert(
                shnum,
                self.read_slot(&si, shnum, &read_ranges, &mut budget)
                    .await?,
            );
        }
        // Every test of every share first; nothing is written unless all hold.
        for (shnum, w) in &writes {
            if !self
                .tests_hold(&si, *shnum, existing.contains_key(shnum), &w.tests)
                .await?
            {
                return Ok((false, reads));
            }
        }
        let changes = writes
            .iter()
            .any(|(_, w)| !w.writes.is_empty() || w.new_length.is_some());
        if self.shared.config.readonly && changes {
            return Err(Error::permission_denied("this storage server is read-only"));
        }
        // Check sizes and space for the whole call before writing anything.
        let mut growth = 0u64;
        for (shnum, w) in &writes {
            let old = existing.get(shnum).copied().unwrap_or(0);
            let new = length_after(old.max(WE_LEN), w)?;
            growth = growth.saturating_add(new.saturating_sub(old));
        }
        let _space = if growth > 0 {
            let guard = self.shared.space.lock().await;
            if !self.shared.room_for(growth).await? {
                return Err(Error::no_space(format!(
                    "no room for {growth} more bytes of slot {si}"
                )));
            }
            Some(guard)
        } else {
            None
        };
        let mut done: Vec<Undo> = Vec::new();
        // Undo records let a call that changes several shares put back the
        // ones done when a later one fails; a call changing one share
        // relies on the backend's own atomicity and needs none.
        let changing = writes
            .values()
            .filter(|w| !w.writes.is_empty() || w.new_length.is_some())
            .count();
        for (shnum, w) in writes {
            if w.writes.is_empty() && w.new_length.is_none() {
                continue;
            }
            let old_len = existing.get(&shnum).copied();
            let (guard, mut vectors, undo) = match old_len {
                Some(len) => (
                    TestVector::equals(0, Bytes::copy_from_slice(&we)),
                    Vec::new(),
                    if changing > 1 {
                        Some(self.undo_for(&si, shnum, len, &w).await?)
                    } else {
                        None
                    },
                ),
                None => (
                    TestVector::absent(),
                    vec![WriteVector {
                        offset: 0,
                        data: Bytes::copy_from_slice(&we),
                    }],
                    Some(Undo { shnum, old: None }),
                ),
            };
            for v in w.writes {
                vectors.push(WriteVector {
                    offset: shifted(v.offset)?,
                    data: v.data,
                });
            }
            let new_length = w.new_length.map(shifted).transpose()?;
            let applied = self
                .shared
                .backend
                .test_and_write(&si, shnum, &[guard], &vectors, new_length)
                .await;
            match applied {
                Ok(true) => done.extend(undo),
                Ok(false) => {
                    // Only another writer behind the server's back can do
                    // this (the slot is locked here).
                    self.rollback(&si, done, &we).await;
                    return Ok((false, reads));
                }
                Err(e) => {
                    self.rollback(&si, done, &we).await;
                    return Err(e.context(format!("writing share {shnum} of slot {si}")));
                }
            }
        }
        let _ = self
            .shared
            .backend
            .add_lease(&si, &lease(secrets.renew_secret, secrets.cancel_secret))
            .await;
        Ok((true, reads))
    }
}
