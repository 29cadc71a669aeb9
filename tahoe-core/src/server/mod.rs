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
//!
//! `uploads.rs` holds immutable uploads and their budgets, `slots.rs`
//! mutable slots, `limits.rs` what one call may carry; this file the
//! server's state and the protocol's entry points.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::Mutex;

use crate::error::Result;
use crate::kinds::storage::{Lease, ShareNum, StorageBackend, StorageIndex};
use crate::protocol::{
    AllocateRequest, AllocateResponse, Caller, MAX_CALL_DATA, Secret, ServerVersion, SlotSecrets,
    SlotWrite, StorageService,
};
use crate::time::{Clock, Span};

/// How long a lease lasts by default (Tahoe's: 31 days).
pub const LEASE_DURATION: Span = Span::days(31);

/// The largest immutable share accepted by default (Tahoe's v2 shares are
/// limited only by disk; this bounds one upload's footprint: 64 GiB).
const DEFAULT_MAX_SHARE_SIZE: u64 = 64 << 30;

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
    /// How long a lease lasts from when it is granted or renewed.
    pub lease_duration: Span,
    /// What the lease crawler collects.
    pub expiry: ExpiryPolicy,
    /// The lease crawler's pace.
    pub crawler: CrawlerConfig,
    /// The time leases are granted and judged by.
    pub clock: Clock,
}

/// Default of [`ServerConfig::bucket_timeout`]: five minutes.
const DEFAULT_BUCKET_TIMEOUT: Duration = Duration::from_secs(300);

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            reserved_space: 0,
            readonly: false,
            max_share_size: DEFAULT_MAX_SHARE_SIZE,
            bucket_timeout: DEFAULT_BUCKET_TIMEOUT,
            max_pending_buckets: 1024,
            max_pending_bytes: DEFAULT_MAX_SHARE_SIZE,
            lease_duration: LEASE_DURATION,
            expiry: ExpiryPolicy::default(),
            crawler: CrawlerConfig::default(),
            clock: Clock::system(),
        }
    }
}

pub mod crawler;
pub mod expiry;
mod limits;
mod slots;
mod uploads;

pub use crawler::{CrawlerConfig, CrawlerState};
pub use expiry::{ExpiryMode, ExpiryPolicy};

use limits::*;
use uploads::UploadTable;

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
    crawler: StdMutex<CrawlerState>,
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

impl Shared {
    /// A lease granted (or renewed) now.
    fn lease(&self, renew_secret: Secret, cancel_secret: Secret) -> Lease {
        Lease {
            renew_secret,
            cancel_secret,
            expires_at: self
                .config
                .clock
                .now()
                .saturating_add(self.config.lease_duration.secs()),
        }
    }
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
            crawler: StdMutex::new(CrawlerState::default()),
        });
        let session = Arc::new(Session {
            id: 0,
            caller: None,
            shared: shared.clone(),
        });
        StorageServer { shared, session }
    }

    /// Its settings.
    pub fn config(&self) -> &ServerConfig {
        &self.shared.config
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
        self.allocate(req).await
    }

    async fn write_bucket(
        &self,
        si: StorageIndex,
        shnum: ShareNum,
        upload_secret: Secret,
        offset: u64,
        data: Bytes,
    ) -> Result<()> {
        self.write(si, shnum, upload_secret, offset, data).await
    }

    async fn close_bucket(
        &self,
        si: StorageIndex,
        shnum: ShareNum,
        upload_secret: Secret,
    ) -> Result<()> {
        self.close(si, shnum, upload_secret).await
    }

    async fn abort_bucket(
        &self,
        si: StorageIndex,
        shnum: ShareNum,
        upload_secret: Secret,
    ) -> Result<()> {
        self.abort(si, shnum, upload_secret).await
    }

    async fn list_buckets(&self, si: StorageIndex) -> Result<BTreeMap<ShareNum, u64>> {
        self.list(si).await
    }

    async fn read_bucket(
        &self,
        si: StorageIndex,
        shnum: ShareNum,
        offset: u64,
        len: u64,
    ) -> Result<Bytes> {
        self.read(si, shnum, offset, len).await
    }

    async fn add_lease(
        &self,
        si: StorageIndex,
        renew_secret: Secret,
        cancel_secret: Secret,
    ) -> Result<()> {
        // Under the storage index's lock: the crawler never decides about
        // shares while their lease is being renewed.
        let _slot = self.shared.slot_lock(&si).lock().await;
        self.shared
            .backend
            .add_lease(&si, &self.shared.lease(renew_secret, cancel_secret))
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
        self.readv(si, shnums, ranges).await
    }

    async fn slot_testv_and_readv_and_writev(
        &self,
        si: StorageIndex,
        secrets: SlotSecrets,
        writes: BTreeMap<ShareNum, SlotWrite>,
        read_ranges: Vec<(u64, u64)>,
    ) -> Result<(bool, BTreeMap<ShareNum, Vec<Bytes>>)> {
        self.test_and_write(si, secrets, writes, read_ranges).await
    }
}
