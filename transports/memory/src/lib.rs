//! `memory`: a transport whose peers live in the same process.
//!
//! Listeners register their services in a process-wide table under a name;
//! connecting looks the name up. Handles resolve the name on every call, so
//! a call after the listener stopped fails with `Unavailable` just as a
//! closed network connection would. Nothing is serialized: this transport
//! exists to test and embed whole grids in one process, and to check that
//! code above the transport never depends on a particular one.
//!
//! Addresses are `memory:NAME`; listening on `memory:` or an empty address
//! picks a fresh name.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use serde::Deserialize;
use tahoe_core::protocol::{
    AllocateRequest, AllocateResponse, Announcement, AnnouncementBatch, GridSecret, QueenService,
    Secret, ServerVersion, SlotSecrets, SlotWrite, StorageService,
};
use tahoe_core::registry::{PluginContext, Registry};
use tahoe_core::storage::{ShareNum, StorageIndex};
use tahoe_core::transport::{Listener, LocalServices, RemotePeer, Transport, service_not_offered};
use tahoe_core::{Error, Result};

/// The registry name.
pub const NAME: &str = "memory";

const PREFIX: &str = "memory:";

static HUB: LazyLock<Mutex<HashMap<String, LocalServices>>> = LazyLock::new(Default::default);
static NEXT: AtomicU64 = AtomicU64::new(1);

fn hub() -> Result<std::sync::MutexGuard<'static, HashMap<String, LocalServices>>> {
    HUB.lock()
        .map_err(|_| Error::internal("memory transport table poisoned"))
}

fn lookup(name: &str) -> Result<LocalServices> {
    hub()?
        .get(name)
        .cloned()
        .ok_or_else(|| Error::unavailable(format!("nobody listens on {PREFIX}{name}")))
}

fn parse(address: &str) -> Result<&str> {
    address.strip_prefix(PREFIX).ok_or_else(|| {
        Error::invalid_input(format!(
            "memory transport address {address:?} must start with {PREFIX:?}"
        ))
    })
}

/// `[transport.memory]` has no settings; this rejects any key put there.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoSettings {}

/// The in-process transport.
#[derive(Debug, Default, Clone, Copy)]
pub struct MemoryTransport;

struct MemoryListener {
    name: String,
}

impl Drop for MemoryListener {
    fn drop(&mut self) {
        if let Ok(mut h) = hub() {
            h.remove(&self.name);
        }
    }
}

#[async_trait]
impl Listener for MemoryListener {
    fn address(&self) -> String {
        format!("{PREFIX}{}", self.name)
    }

    async fn shutdown(self: Box<Self>) {
        // Drop unregisters.
    }
}

#[async_trait]
impl Transport for MemoryTransport {
    fn name(&self) -> &str {
        NAME
    }

    async fn listen(&self, bind: &str, services: LocalServices) -> Result<Box<dyn Listener>> {
        let requested = if bind.is_empty() { "" } else { parse(bind)? };
        let name = if requested.is_empty() || requested == "0" {
            format!("node-{}", NEXT.fetch_add(1, Ordering::Relaxed))
        } else {
            requested.to_string()
        };
        let mut h = hub()?;
        if h.contains_key(&name) {
            return Err(Error::already_exists(format!(
                "{PREFIX}{name} is already in use"
            )));
        }
        h.insert(name.clone(), services);
        Ok(Box::new(MemoryListener { name }))
    }

    async fn connect(&self, address: &str) -> Result<RemotePeer> {
        let name = parse(address)?.to_string();
        let services = lookup(&name)?;
        // Like a network connection, each handle gets a session of its own
        // from the storage service, closed when the handle is dropped. Each
        // handle is a peer of its own: in process there is no address.
        let caller = tahoe_core::protocol::Caller(format!(
            "memory-handle-{}",
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let session = services.storage.as_ref().map(|listened| {
            let served = listened
                .open_session(&caller)
                .unwrap_or_else(|| listened.clone());
            (listened.clone(), served)
        });
        let handle = Arc::new(Handle { name, session });
        Ok(RemotePeer {
            storage: handle.clone(),
            queen: handle,
        })
    }

    fn pinned_node_id(&self, address: &str) -> Result<Option<String>> {
        // In-process peers prove nothing about keys.
        parse(address).map(|_| None)
    }
}

/// A connected peer: resolves its name on each call, so that calls fail
/// once the listener is gone.
struct Handle {
    name: String,
    /// The storage service listened with, and the session serving us.
    session: Option<(Arc<dyn StorageService>, Arc<dyn StorageService>)>,
}

impl Handle {
    fn storage(&self) -> Result<Arc<dyn StorageService>> {
        let now = lookup(&self.name)?
            .storage
            .ok_or_else(|| service_not_offered("storage"))?;
        match &self.session {
            Some((listened, served)) if Arc::ptr_eq(listened, &now) => Ok(served.clone()),
            _ => Err(Error::unavailable(format!(
                "{PREFIX}{} is another listener now",
                self.name
            ))),
        }
    }

    fn queen(&self) -> Result<Arc<dyn QueenService>> {
        lookup(&self.name)?
            .queen
            .ok_or_else(|| service_not_offered("queen"))
    }
}

#[async_trait]
impl StorageService for Handle {
    async fn version(&self) -> Result<ServerVersion> {
        self.storage()?.version().await
    }
    async fn allocate_buckets(&self, req: AllocateRequest) -> Result<AllocateResponse> {
        self.storage()?.allocate_buckets(req).await
    }
    async fn write_bucket(
        &self,
        si: StorageIndex,
        shnum: ShareNum,
        upload_secret: Secret,
        offset: u64,
        data: Bytes,
    ) -> Result<()> {
        self.storage()?
            .write_bucket(si, shnum, upload_secret, offset, data)
            .await
    }
    async fn close_bucket(&self, si: StorageIndex, shnum: ShareNum, s: Secret) -> Result<()> {
        self.storage()?.close_bucket(si, shnum, s).await
    }
    async fn abort_bucket(&self, si: StorageIndex, shnum: ShareNum, s: Secret) -> Result<()> {
        self.storage()?.abort_bucket(si, shnum, s).await
    }
    async fn list_buckets(&self, si: StorageIndex) -> Result<BTreeMap<ShareNum, u64>> {
        self.storage()?.list_buckets(si).await
    }
    async fn read_bucket(
        &self,
        si: StorageIndex,
        shnum: ShareNum,
        offset: u64,
        len: u64,
    ) -> Result<Bytes> {
        self.storage()?.read_bucket(si, shnum, offset, len).await
    }
    async fn add_lease(&self, si: StorageIndex, renew: Secret, cancel: Secret) -> Result<()> {
        self.storage()?.add_lease(si, renew, cancel).await
    }
    async fn advise_corrupt_share(
        &self,
        si: StorageIndex,
        shnum: ShareNum,
        reason: String,
    ) -> Result<()> {
        self.storage()?
            .advise_corrupt_share(si, shnum, reason)
            .await
    }
    async fn slot_readv(
        &self,
        si: StorageIndex,
        shnums: Vec<ShareNum>,
        ranges: Vec<(u64, u64)>,
    ) -> Result<BTreeMap<ShareNum, Vec<Bytes>>> {
        self.storage()?.slot_readv(si, shnums, ranges).await
    }
    async fn slot_testv_and_readv_and_writev(
        &self,
        si: StorageIndex,
        secrets: SlotSecrets,
        writes: BTreeMap<ShareNum, SlotWrite>,
        read_ranges: Vec<(u64, u64)>,
    ) -> Result<(bool, BTreeMap<ShareNum, Vec<Bytes>>)> {
        self.storage()?
            .slot_testv_and_readv_and_writev(si, secrets, writes, read_ranges)
            .await
    }
}

#[async_trait]
impl QueenService for Handle {
    async fn announce(&self, grid: GridSecret, announcement: Announcement) -> Result<()> {
        self.queen()?.announce(grid, announcement).await
    }
    async fn poll_announcements(
        &self,
        grid: GridSecret,
        cursor: u64,
        wait_ms: u64,
    ) -> Result<AnnouncementBatch> {
        self.queen()?
            .poll_announcements(grid, cursor, wait_ms)
            .await
    }
}

/// Register `memory` in `registry`.
pub fn register(registry: &mut Registry) -> Result<()> {
    registry.add_transport(
        NAME,
        "in-process transport (tests, single-process grids); addresses memory:NAME",
        |ctx: &PluginContext| {
            let _: NoSettings = ctx.config.parse()?;
            Ok(Arc::new(MemoryTransport) as Arc<dyn Transport>)
        },
    )
}
