//! The tarpc service that carries `tahoe_core::protocol`, its server loop,
//! and the client side that implements the protocol traits over it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use tahoe_core::protocol::{
    AllocateRequest, AllocateResponse, Announcement, AnnouncementBatch, QueenService, Secret,
    ServerVersion, SlotSecrets, SlotWrite, StorageService,
};
use tahoe_core::storage::{ShareNum, StorageIndex};
use tahoe_core::transport::{LocalServices, service_not_offered};
use tahoe_core::{Error, Result};
use tarpc::client::RpcError;
use tarpc::context::Context;
use tarpc::serde_transport;
use tarpc::server::{BaseChannel, Channel};
use tarpc::tokio_serde::formats::Bincode;
use tokio::sync::Mutex;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tokio_util::codec::LengthDelimitedCodec;

use crate::tls::{Identity, client_config};
use crate::{PeerAddress, TarpcTcpConfig, secs};

#[tarpc::service]
pub(crate) trait Node {
    async fn version() -> Result<ServerVersion, Error>;
    async fn allocate_buckets(req: AllocateRequest) -> Result<AllocateResponse, Error>;
    async fn write_bucket(
        si: StorageIndex,
        shnum: ShareNum,
        secret: Secret,
        offset: u64,
        data: Bytes,
    ) -> Result<(), Error>;
    async fn close_bucket(si: StorageIndex, shnum: ShareNum, secret: Secret) -> Result<(), Error>;
    async fn abort_bucket(si: StorageIndex, shnum: ShareNum, secret: Secret) -> Result<(), Error>;
    async fn list_buckets(si: StorageIndex) -> Result<BTreeMap<ShareNum, u64>, Error>;
    async fn read_bucket(
        si: StorageIndex,
        shnum: ShareNum,
        offset: u64,
        len: u64,
    ) -> Result<Bytes, Error>;
    async fn add_lease(si: StorageIndex, renew: Secret, cancel: Secret) -> Result<(), Error>;
    async fn advise_corrupt_share(
        si: StorageIndex,
        shnum: ShareNum,
        reason: String,
    ) -> Result<(), Error>;
    async fn slot_readv(
        si: StorageIndex,
        shnums: Vec<ShareNum>,
        ranges: Vec<(u64, u64)>,
    ) -> Result<BTreeMap<ShareNum, Vec<Bytes>>, Error>;
    async fn slot_testv_and_readv_and_writev(
        si: StorageIndex,
        secrets: SlotSecrets,
        writes: BTreeMap<ShareNum, SlotWrite>,
        read: Vec<(u64, u64)>,
    ) -> Result<(bool, BTreeMap<ShareNum, Vec<Bytes>>), Error>;
    async fn announce(a: Announcement) -> Result<(), Error>;
    async fn poll_announcements(cursor: u64, wait_ms: u64) -> Result<AnnouncementBatch, Error>;
}

/// The server side: dispatches to the node's local services.
#[derive(Clone)]
struct NodeServer {
    services: LocalServices,
}

impl NodeServer {
    fn storage(&self) -> Result<&Arc<dyn StorageService>> {
        self.services
            .storage
            .as_ref()
            .ok_or_else(|| service_not_offered("storage"))
    }
    fn queen(&self) -> Result<&Arc<dyn QueenService>> {
        self.services
            .queen
            .as_ref()
            .ok_or_else(|| service_not_offered("queen"))
    }
}

impl Node for NodeServer {
    async fn version(self, _: Context) -> Result<ServerVersion> {
        self.storage()?.version().await
    }
    async fn allocate_buckets(self, _: Context, req: AllocateRequest) -> Result<AllocateResponse> {
        self.storage()?.allocate_buckets(req).await
    }
    async fn write_bucket(
        self,
        _: Context,
        si: StorageIndex,
        shnum: ShareNum,
        secret: Secret,
        offset: u64,
        data: Bytes,
    ) -> Result<()> {
        self.storage()?
            .write_bucket(si, shnum, secret, offset, data)
            .await
    }
    async fn close_bucket(
        self,
        _: Context,
        si: StorageIndex,
        shnum: ShareNum,
        secret: Secret,
    ) -> Result<()> {
        self.storage()?.close_bucket(si, shnum, secret).await
    }
    async fn abort_bucket(
        self,
        _: Context,
        si: StorageIndex,
        shnum: ShareNum,
        secret: Secret,
    ) -> Result<()> {
        self.storage()?.abort_bucket(si, shnum, secret).await
    }
    async fn list_buckets(self, _: Context, si: StorageIndex) -> Result<BTreeMap<ShareNum, u64>> {
        self.storage()?.list_buckets(si).await
    }
    async fn read_bucket(
        self,
        _: Context,
        si: StorageIndex,
        shnum: ShareNum,
        offset: u64,
        len: u64,
    ) -> Result<Bytes> {
        self.storage()?.read_bucket(si, shnum, offset, len).await
    }
    async fn add_lease(
        self,
        _: Context,
        si: StorageIndex,
        renew: Secret,
        cancel: Secret,
    ) -> Result<()> {
        self.storage()?.add_lease(si, renew, cancel).await
    }
    async fn advise_corrupt_share(
        self,
        _: Context,
        si: StorageIndex,
        shnum: ShareNum,
        reason: String,
    ) -> Result<()> {
        self.storage()?
            .advise_corrupt_share(si, shnum, reason)
            .await
    }
    async fn slot_readv(
        self,
        _: Context,
        si: StorageIndex,
        shnums: Vec<ShareNum>,
        ranges: Vec<(u64, u64)>,
    ) -> Result<BTreeMap<ShareNum, Vec<Bytes>>> {
        self.storage()?.slot_readv(si, shnums, ranges).await
    }
    async fn slot_testv_and_readv_and_writev(
        self,
        _: Context,
        si: StorageIndex,
        secrets: SlotSecrets,
        writes: BTreeMap<ShareNum, SlotWrite>,
        read: Vec<(u64, u64)>,
    ) -> Result<(bool, BTreeMap<ShareNum, Vec<Bytes>>)> {
        self.storage()?
            .slot_testv_and_readv_and_writev(si, secrets, writes, read)
            .await
    }
    async fn announce(self, _: Context, a: Announcement) -> Result<()> {
        self.queen()?.announce(a).await
    }
    async fn poll_announcements(
        self,
        _: Context,
        cursor: u64,
        wait_ms: u64,
    ) -> Result<AnnouncementBatch> {
        self.queen()?.poll_announcements(cursor, wait_ms).await
    }
}

fn codec(config: &TarpcTcpConfig) -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .max_frame_length(config.max_frame_bytes)
        .new_codec()
}

/// Accept connections until told to stop.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    identity: Arc<Identity>,
    config: TarpcTcpConfig,
    services: LocalServices,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let tls = match identity.server_config() {
        Ok(c) => TlsAcceptor::from(Arc::new(c)),
        Err(e) => {
            tracing::error!("cannot serve: {e}");
            return;
        }
    };
    let slots = Arc::new(tokio::sync::Semaphore::new(config.max_connections));
    let server = NodeServer { services };
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.changed() => break,
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::warn!(
                "refusing connection from {peer}: {} connections open",
                config.max_connections
            );
            continue;
        };
        let (tls, server, config) = (tls.clone(), server.clone(), config.clone());
        let mut stop = shutdown.clone();
        connections.spawn(async move {
            let _permit = permit;
            let _ = stream.set_nodelay(true);
            let handshake =
                tokio::time::timeout(secs(config.connect_timeout_secs), tls.accept(stream)).await;
            let stream = match handshake {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::warn!("TLS handshake with {peer} failed: {e}");
                    return;
                }
                Err(_) => {
                    tracing::warn!("TLS handshake with {peer} timed out");
                    return;
                }
            };
            let framed = tokio_util::codec::Framed::new(stream, codec(&config));
            let transport = serde_transport::new(framed, Bincode::default());
            let requests = BaseChannel::with_defaults(transport)
                .execute(server.serve())
                .for_each_concurrent(64, |response| response);
            tokio::select! {
                _ = requests => tracing::debug!("connection from {peer} closed"),
                _ = stop.changed() => {}
            }
        });
        // Reap finished connections so the set does not grow.
        while connections.try_join_next().is_some() {}
    }
    connections.shutdown().await;
}

enum ConnState {
    Up(NodeClient),
    Down {
        retry_at: Instant,
        backoff: Duration,
        why: String,
    },
}

/// A peer, connected lazily and reconnected with backoff.
pub(crate) struct Remote {
    peer: PeerAddress,
    config: TarpcTcpConfig,
    state: Mutex<ConnState>,
}

const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

impl Remote {
    pub(crate) fn new(peer: PeerAddress, config: TarpcTcpConfig) -> Self {
        Remote {
            peer,
            config,
            state: Mutex::new(ConnState::Down {
                retry_at: Instant::now(),
                backoff: FIRST_BACKOFF,
                why: String::new(),
            }),
        }
    }

    async fn dial(&self) -> Result<NodeClient> {
        let tls = TlsConnector::from(Arc::new(client_config(&self.peer.fingerprint)?));
        let timeout = secs(self.config.connect_timeout_secs);
        let host = self.peer.host_port.clone();
        let connect = async {
            let tcp = tokio::net::TcpStream::connect(&host)
                .await
                .map_err(|e| Error::unavailable(format!("cannot reach {host}: {e}")))?;
            let _ = tcp.set_nodelay(true);
            let name = tokio_rustls::rustls::pki_types::ServerName::try_from("tahoe.invalid")
                .map_err(|e| Error::internal(format!("{e}")))?;
            tls.connect(name, tcp).await.map_err(|e| {
                if e.to_string().contains("fingerprint") {
                    Error::permission_denied(format!(
                        "{host} is not the node its address names: {e}"
                    ))
                } else {
                    Error::unavailable(format!("TLS with {host} failed: {e}"))
                }
            })
        };
        let stream = tokio::time::timeout(timeout, connect)
            .await
            .map_err(|_| Error::timeout(format!("connecting to {host} took over {timeout:?}")))??;
        let framed = tokio_util::codec::Framed::new(stream, codec(&self.config));
        let transport = serde_transport::new(framed, Bincode::default());
        Ok(NodeClient::new(tarpc::client::Config::default(), transport).spawn())
    }

    /// The current client, connecting if the backoff allows.
    pub(crate) async fn client(&self) -> Result<NodeClient> {
        let mut state = self.state.lock().await;
        match &*state {
            ConnState::Up(c) => return Ok(c.clone()),
            ConnState::Down { retry_at, why, .. } if Instant::now() < *retry_at => {
                return Err(Error::unavailable(format!(
                    "{} is unreachable ({why})",
                    self.peer.host_port
                )));
            }
            ConnState::Down { .. } => {}
        }
        match self.dial().await {
            Ok(c) => {
                *state = ConnState::Up(c.clone());
                Ok(c)
            }
            Err(e) => {
                let backoff = match &*state {
                    ConnState::Down { backoff, .. } => (*backoff * 2).min(MAX_BACKOFF),
                    ConnState::Up(_) => FIRST_BACKOFF,
                };
                *state = ConnState::Down {
                    retry_at: Instant::now() + backoff,
                    backoff,
                    why: e.message().to_string(),
                };
                Err(e)
            }
        }
    }

    async fn mark_down(&self, why: &str) {
        let mut state = self.state.lock().await;
        if matches!(*state, ConnState::Up(_)) {
            tracing::info!("lost connection to {}: {why}", self.peer.host_port);
            *state = ConnState::Down {
                retry_at: Instant::now(),
                backoff: FIRST_BACKOFF,
                why: why.to_string(),
            };
        }
    }

    fn context(&self, timeout: Duration) -> Context {
        let mut ctx = tarpc::context::current();
        ctx.deadline = Instant::now() + timeout;
        ctx
    }

    async fn rpc_error(&self, e: RpcError) -> Error {
        match e {
            RpcError::DeadlineExceeded => {
                Error::timeout(format!("{} did not answer in time", self.peer.host_port))
            }
            other => {
                let why = other.to_string();
                self.mark_down(&why).await;
                Error::unavailable(format!("{}: {why}", self.peer.host_port))
            }
        }
    }
}

/// One call: get a client, run `f` with a deadline, map transport errors.
macro_rules! call {
    ($self:ident, $timeout:expr, |$c:ident, $ctx:ident| $body:expr) => {{
        let $c = $self.client().await?;
        let $ctx = $self.context($timeout);
        match $body.await {
            Ok(r) => r,
            Err(e) => Err($self.rpc_error(e).await),
        }
    }};
}

impl Remote {
    fn timeout(&self) -> Duration {
        secs(self.config.call_timeout_secs)
    }
}

#[async_trait]
impl StorageService for Remote {
    async fn version(&self) -> Result<ServerVersion> {
        call!(self, self.timeout(), |c, ctx| c.version(ctx))
    }
    async fn allocate_buckets(&self, req: AllocateRequest) -> Result<AllocateResponse> {
        call!(self, self.timeout(), |c, ctx| c.allocate_buckets(ctx, req))
    }
    async fn write_bucket(
        &self,
        si: StorageIndex,
        shnum: ShareNum,
        secret: Secret,
        offset: u64,
        data: Bytes,
    ) -> Result<()> {
        call!(self, self.timeout(), |c, ctx| c
            .write_bucket(ctx, si, shnum, secret, offset, data))
    }
    async fn close_bucket(&self, si: StorageIndex, shnum: ShareNum, secret: Secret) -> Result<()> {
        call!(self, self.timeout(), |c, ctx| c
            .close_bucket(ctx, si, shnum, secret))
    }
    async fn abort_bucket(&self, si: StorageIndex, shnum: ShareNum, secret: Secret) -> Result<()> {
        call!(self, self.timeout(), |c, ctx| c
            .abort_bucket(ctx, si, shnum, secret))
    }
    async fn list_buckets(&self, si: StorageIndex) -> Result<BTreeMap<ShareNum, u64>> {
        call!(self, self.timeout(), |c, ctx| c.list_buckets(ctx, si))
    }
    async fn read_bucket(
        &self,
        si: StorageIndex,
        shnum: ShareNum,
        offset: u64,
        len: u64,
    ) -> Result<Bytes> {
        call!(self, self.timeout(), |c, ctx| c
            .read_bucket(ctx, si, shnum, offset, len))
    }
    async fn add_lease(&self, si: StorageIndex, renew: Secret, cancel: Secret) -> Result<()> {
        call!(self, self.timeout(), |c, ctx| c
            .add_lease(ctx, si, renew, cancel))
    }
    async fn advise_corrupt_share(
        &self,
        si: StorageIndex,
        shnum: ShareNum,
        reason: String,
    ) -> Result<()> {
        call!(self, self.timeout(), |c, ctx| c
            .advise_corrupt_share(ctx, si, shnum, reason))
    }
    async fn slot_readv(
        &self,
        si: StorageIndex,
        shnums: Vec<ShareNum>,
        ranges: Vec<(u64, u64)>,
    ) -> Result<BTreeMap<ShareNum, Vec<Bytes>>> {
        call!(self, self.timeout(), |c, ctx| c
            .slot_readv(ctx, si, shnums, ranges))
    }
    async fn slot_testv_and_readv_and_writev(
        &self,
        si: StorageIndex,
        secrets: SlotSecrets,
        writes: BTreeMap<ShareNum, SlotWrite>,
        read: Vec<(u64, u64)>,
    ) -> Result<(bool, BTreeMap<ShareNum, Vec<Bytes>>)> {
        call!(self, self.timeout(), |c, ctx| c
            .slot_testv_and_readv_and_writev(
                ctx, si, secrets, writes, read
            ))
    }
}

#[async_trait]
impl QueenService for Remote {
    async fn announce(&self, a: Announcement) -> Result<()> {
        call!(self, self.timeout(), |c, ctx| c.announce(ctx, a))
    }
    async fn poll_announcements(&self, cursor: u64, wait_ms: u64) -> Result<AnnouncementBatch> {
        let timeout = self.timeout() + Duration::from_millis(wait_ms);
        call!(self, timeout, |c, ctx| c
            .poll_announcements(ctx, cursor, wait_ms))
    }
}
