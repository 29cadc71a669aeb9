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

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use async_trait::async_trait;
use serde::Deserialize;
use tahoe_core::plugin::registry::{PluginContext, Registry};
use tahoe_core::protocol::transport::{
    Listener, LocalServices, RemotePeer, Transport, service_not_offered,
};
use tahoe_core::protocol::{
    QueenCarrier, QueenClient, QueenRequest, QueenResponse, QueenService, StorageCarrier,
    StorageClient, StorageRequest, StorageResponse, StorageService, serve_queen, serve_storage,
};
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
            storage: Arc::new(StorageClient(handle.clone())),
            queen: Arc::new(QueenClient(handle)),
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

// Each call is served as it is: nothing is serialized in process.
#[async_trait]
impl StorageCarrier for Handle {
    async fn call(&self, request: StorageRequest) -> Result<StorageResponse> {
        serve_storage(self.storage()?.as_ref(), request).await
    }
}

#[async_trait]
impl QueenCarrier for Handle {
    async fn call(&self, request: QueenRequest) -> Result<QueenResponse> {
        serve_queen(self.queen()?.as_ref(), request).await
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
