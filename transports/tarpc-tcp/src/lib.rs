//! `tarpc-tcp`: the network transport. tarpc over TCP inside TLS 1.3.
//!
//! Identity without a certificate authority: each node makes a self-signed
//! certificate from its Ed25519 node key once (`private/tls.crt`) and its
//! address names its node id, the SHA-256 of that key:
//! `tahoe+tcp://<node id>@<host>:<port>`. A client accepts the server only
//! if the key in the certificate it presents (which also signs the
//! handshake) has that id, so an address is also a pin, like a Tahoe furl,
//! and the id a storage server announces is the one its address pins.
//! Storage calls carry their own authority (upload secrets, write
//! enablers), so servers do not ask clients for certificates.
//!
//! Hostile peers: frames are length-prefixed and limited (`max_frame_bytes`),
//! the TLS handshake must finish within a deadline, connections are capped
//! in all and per peer address, idle ones are closed, the requests being
//! served on a listener are bounded in memory and hold nothing while a
//! peer's socket is slow, answers a peer leaves unread count against it
//! and close its connection when over its budget, and a connection that
//! misbehaves is closed and logged once without touching others
//! (`server.rs` says how). Each connection is served by its own sessions,
//! charged to its peer ([`tahoe_core::protocol::Caller`]: its address) and
//! dropped when it closes. Every call has a deadline; a lost connection is
//! re-established on a later call, with exponential backoff between
//! attempts. The tarpc service definition stays inside this crate; callers
//! see only `tahoe_core::protocol`'s traits.

mod client;
mod connection;
mod peers;
mod server;
mod service;
#[cfg(feature = "testing")]
pub mod testing;
mod tls;

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use tahoe_core::plugin::registry::{PluginContext, Registry};
use tahoe_core::protocol::transport::{Listener, LocalServices, RemotePeer, Transport};
use tahoe_core::protocol::{MAX_CALL_DATA, QueenClient, StorageClient};
use tahoe_core::{Error, Result};

pub use service::decode_request_frame;
pub use tls::{Identity, fingerprint_of};

/// The registry name.
pub const NAME: &str = "tarpc-tcp";

/// The address scheme.
const SCHEME: &str = "tahoe+tcp://";

/// The smallest (and default) frame limit: one call's largest share data
/// ([`MAX_CALL_DATA`]) plus room for the rest of the call.
const MIN_FRAME_BYTES: u64 = MAX_CALL_DATA + (64 << 10);

/// How many bytes of TLS records a client's connection encrypts ahead of
/// its socket (rustls takes 64 KiB by default): each write to the socket,
/// and each wake-up of the server, carries up to this much. An upload of
/// 16 MiB made 155 writes where it made 648, and a 128 MiB `PUT /uri` cost
/// the gateway 5-12% less CPU (docs/benchmarks.md). Servers keep rustls's
/// default: their answers showed no gain, and a larger buffer would raise
/// what each of their many connections may hold.
const TLS_BUFFER: usize = 512 << 10;

/// `[transport.tarpc-tcp]` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TarpcTcpConfig {
    /// Largest frame accepted or sent: at least `MIN_FRAME_BYTES` (callers
    /// split share data into calls of at most [`MAX_CALL_DATA`] bytes), and
    /// what a peer can make this node buffer per connection.
    pub max_frame_bytes: usize,
    /// Deadline of an ordinary call, in seconds.
    pub call_timeout_secs: u64,
    /// Deadline of connecting (TCP and TLS), in seconds.
    pub connect_timeout_secs: u64,
    /// Most simultaneous incoming connections.
    pub max_connections: usize,
    /// Most simultaneous incoming connections from one peer address (an
    /// IPv4 address or an IPv6 /64).
    pub max_connections_per_ip: usize,
    /// An incoming connection with no request in flight and no bytes moved
    /// for this long is closed (clients reconnect when they next call).
    pub idle_timeout_secs: u64,
    /// The memory the requests being served on a listener may take
    /// together, in bytes: at most this divided by `max_frame_bytes`
    /// requests are served at once (at least one); each connection holds
    /// at most one more, read and waiting. So all buffered requests take at
    /// most `max_request_memory + max_connections * max_frame_bytes`.
    pub max_request_memory: u64,
    /// Most answers one peer address may leave unread (computed, not yet
    /// taken by its socket), over all its connections; one more closes
    /// the connection it was for.
    pub max_unread_answers: u64,
    /// Most bytes of such answers: at least `max_frame_bytes`.
    pub max_unread_answer_bytes: u64,
    /// The local IP address outgoing connections are made from; empty:
    /// the system's choice.
    pub connect_from: String,
}

impl Default for TarpcTcpConfig {
    fn default() -> Self {
        TarpcTcpConfig {
            max_frame_bytes: MIN_FRAME_BYTES as usize,
            call_timeout_secs: 60,
            connect_timeout_secs: 10,
            max_connections: 256,
            max_connections_per_ip: 64,
            idle_timeout_secs: 120,
            max_request_memory: 512 << 20,
            max_unread_answers: 1024,
            max_unread_answer_bytes: 64 << 20,
            connect_from: String::new(),
        }
    }
}

impl TarpcTcpConfig {
    /// How many requests a listener serves at once.
    pub fn requests_in_flight(&self) -> usize {
        usize::try_from(self.max_request_memory / (self.max_frame_bytes.max(1) as u64))
            .unwrap_or(usize::MAX)
            .max(1)
    }

    /// [`Self::connect_from`] as an address.
    pub fn source_ip(&self) -> Result<Option<IpAddr>> {
        if self.connect_from.is_empty() {
            return Ok(None);
        }
        self.connect_from.parse().map(Some).map_err(|_| {
            Error::config_invalid(format!(
                "connect_from = {:?} is not an IP address",
                self.connect_from
            ))
        })
    }
}

/// A parsed `tahoe+tcp://FINGERPRINT@HOST:PORT` address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerAddress {
    /// The base32 SHA-256 of the peer's certificate.
    pub fingerprint: String,
    /// `host:port`.
    pub host_port: String,
}

impl PeerAddress {
    /// Parse and check an address.
    pub fn parse(address: &str) -> Result<Self> {
        let rest = address.strip_prefix(SCHEME).ok_or_else(|| {
            Error::invalid_input(format!("address {address:?} does not start with {SCHEME}"))
        })?;
        let (fingerprint, host_port) = rest.split_once('@').ok_or_else(|| {
            Error::invalid_input(format!("address {address:?} lacks FINGERPRINT@"))
        })?;
        if fingerprint.len() != 52 || tahoe_core::base32::decode(fingerprint).is_err() {
            return Err(Error::invalid_input(format!(
                "address {address:?}: the fingerprint must be 52 base32 characters"
            )));
        }
        if host_port
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse::<u16>().ok())
            .is_none()
        {
            return Err(Error::invalid_input(format!(
                "address {address:?} lacks a :PORT"
            )));
        }
        Ok(PeerAddress {
            fingerprint: fingerprint.to_string(),
            host_port: host_port.to_string(),
        })
    }
}

impl std::fmt::Display for PeerAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{SCHEME}{}@{}", self.fingerprint, self.host_port)
    }
}

/// The transport.
pub struct TarpcTcp {
    identity: Arc<Identity>,
    config: TarpcTcpConfig,
}

impl TarpcTcp {
    /// A transport speaking as `identity`.
    pub fn new(identity: Identity, config: TarpcTcpConfig) -> Self {
        TarpcTcp {
            identity: Arc::new(identity),
            config,
        }
    }

    /// The transport of the node in `basedir` (its key must exist; the
    /// certificate is made on first use).
    fn for_node(basedir: &Path, config: TarpcTcpConfig) -> Result<Self> {
        Ok(Self::new(Identity::load_or_create(basedir)?, config))
    }

    /// This node's certificate fingerprint.
    pub fn fingerprint(&self) -> &str {
        &self.identity.fingerprint
    }
}

struct TcpListenerHandle {
    address: String,
    shutdown: tokio::sync::watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

#[async_trait]
impl Listener for TcpListenerHandle {
    fn address(&self) -> String {
        self.address.clone()
    }

    async fn shutdown(mut self: Box<Self>) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for TcpListenerHandle {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

#[async_trait]
impl Transport for TarpcTcp {
    fn name(&self) -> &str {
        NAME
    }

    async fn listen(&self, bind: &str, services: LocalServices) -> Result<Box<dyn Listener>> {
        let bind = if bind.is_empty() { "127.0.0.1:0" } else { bind };
        let listener = tokio::net::TcpListener::bind(bind)
            .await
            .map_err(|e| Error::from(e).context(format!("cannot listen on {bind}")))?;
        let local: SocketAddr = listener.local_addr()?;
        let address = PeerAddress {
            fingerprint: self.identity.fingerprint.clone(),
            host_port: local.to_string(),
        }
        .to_string();
        let (tx, rx) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(server::serve(
            listener,
            self.identity.clone(),
            self.config.clone(),
            services,
            rx,
        ));
        Ok(Box::new(TcpListenerHandle {
            address,
            shutdown: tx,
            task: Some(task),
        }))
    }

    async fn connect(&self, address: &str) -> Result<RemotePeer> {
        let peer = PeerAddress::parse(address)?;
        let remote = Arc::new(client::Remote::new(peer, self.config.clone()));
        // Connect now, so that a bad address or key fails here; later losses
        // reconnect lazily.
        remote.client().await?;
        Ok(RemotePeer {
            storage: Arc::new(StorageClient(remote.clone())),
            queen: Arc::new(QueenClient(remote)),
        })
    }

    fn pinned_node_id(&self, address: &str) -> Result<Option<String>> {
        // The fingerprint is the node id of the key TLS proves.
        PeerAddress::parse(address).map(|a| Some(a.fingerprint))
    }
}

/// Register `tarpc-tcp` in `registry`.
pub fn register(registry: &mut Registry) -> Result<()> {
    registry.add_transport(
        NAME,
        "tarpc over TCP with TLS 1.3; peers pinned by certificate fingerprint (tahoe+tcp://FP@HOST:PORT)",
        |ctx: &PluginContext| {
            let cfg: TarpcTcpConfig = ctx.config.parse()?;
            if (cfg.max_frame_bytes as u64) < MIN_FRAME_BYTES {
                return Err(Error::config_invalid(format!(
                    "{}.max_frame_bytes{} must be at least {MIN_FRAME_BYTES}: one call carries \
                     up to {MAX_CALL_DATA} bytes of share data plus headers",
                    ctx.config.key(),
                    ctx.config.origin("max_frame_bytes")
                )));
            }
            if cfg.max_unread_answer_bytes < cfg.max_frame_bytes as u64 {
                return Err(Error::config_invalid(format!(
                    "{}.max_unread_answer_bytes{} must be at least max_frame_bytes ({}): one answer is up to a frame",
                    ctx.config.key(),
                    ctx.config.origin("max_unread_answer_bytes"),
                    cfg.max_frame_bytes
                )));
            }
            cfg.source_ip()?;
            Ok(Arc::new(TarpcTcp::for_node(&ctx.basedir, cfg)?) as Arc<dyn Transport>)
        },
    )
}

/// The default call deadline.
pub(crate) fn secs(s: u64) -> Duration {
    Duration::from_secs(s.max(1))
}
