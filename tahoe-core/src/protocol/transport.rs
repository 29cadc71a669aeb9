//! The transport plugin kind: how nodes reach each other.
//!
//! A transport carries the calls of [`crate::protocol`] between processes
//! (or, for tests, within one). It knows addresses, connections, encryption
//! and peer authentication; it knows nothing of shares or files. Servers hand
//! it the services they offer; clients get back handles implementing the same
//! traits, so code above a transport cannot tell local from remote.

use crate::error::{Error, Result};
use crate::protocol::{QueenService, StorageService};
use async_trait::async_trait;
use std::sync::Arc;

/// The services a node offers on a listener. A node offers storage, the
/// queen service, or both; calls to a service it does not offer fail with
/// `NotFound`. Transports serve each connection with its own
/// [`StorageService::open_session`] (when the service offers sessions) and
/// drop it when the connection closes.
#[derive(Clone, Default)]
pub struct LocalServices {
    /// The storage server, when this node stores shares.
    pub storage: Option<Arc<dyn StorageService>>,
    /// The queen service, when this node is the queen.
    pub queen: Option<Arc<dyn QueenService>>,
}

/// Handles to a connected peer's services.
#[derive(Clone)]
pub struct RemotePeer {
    /// The peer's storage server.
    pub storage: Arc<dyn StorageService>,
    /// The peer's queen service.
    pub queen: Arc<dyn QueenService>,
}

/// A running listener.
#[async_trait]
pub trait Listener: Send + Sync {
    /// The address peers use to reach this listener, with the port actually
    /// bound (and, for authenticated transports, the key fingerprint).
    fn address(&self) -> String;

    /// Stop accepting connections and end open ones.
    async fn shutdown(self: Box<Self>);
}

/// A way for nodes to talk.
#[async_trait]
pub trait Transport: Send + Sync {
    /// The registry name of this transport.
    fn name(&self) -> &str;

    /// Serve `services` on `bind`.
    ///
    /// # Contract
    /// `bind` is in the transport's own address syntax; a port of 0 picks a
    /// free one, reported by [`Listener::address`]. A taken address fails with
    /// `AlreadyExists` or `Io`. Serving continues until the listener is shut
    /// down or dropped.
    async fn listen(&self, bind: &str, services: LocalServices) -> Result<Box<dyn Listener>>;

    /// Connect to the peer at `address` (as a [`Listener::address`] printed).
    ///
    /// # Contract
    /// Fails with `Unavailable` when nobody listens there and
    /// `PermissionDenied` when the peer is not who the address names. The
    /// handles may reconnect by themselves; calls on a lost connection fail
    /// with `Unavailable` or `Timeout`, never hang forever.
    async fn connect(&self, address: &str) -> Result<RemotePeer>;

    /// The node id that a connection to `address` proves the peer holds
    /// the key of.
    ///
    /// # Contract
    /// `Ok(Some(id))` when connecting to `address` succeeds only with a
    /// peer holding the key of node `id` (the address pins it);
    /// `Ok(None)` when the transport authenticates nobody (in-process
    /// transports); `InvalidInput` when `address` is not this transport's.
    /// The queen and clients use it to refuse announcements whose address
    /// names another node's key.
    fn pinned_node_id(&self, address: &str) -> Result<Option<String>>;
}

/// A [`StorageService`]/[`QueenService`] error for a node that does not
/// offer the service, shared by transports so the message is the same.
pub fn service_not_offered(service: &str) -> Error {
    Error::not_found(format!("this node does not offer the {service} service"))
}
