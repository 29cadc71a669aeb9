//! The tarpc service that carries `tahoe_core::protocol`, its server loop,
//! and the client side that implements the protocol traits over it.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex as StdMutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use std::future::Future;
use tahoe_core::protocol::{
    AllocateRequest, AllocateResponse, Announcement, AnnouncementBatch, GridSecret, QueenService,
    Secret, ServerVersion, SlotSecrets, SlotWrite, StorageService,
};
use tahoe_core::storage::{ShareNum, StorageIndex};
use tahoe_core::transport::{LocalServices, service_not_offered};
use tahoe_core::{Error, Result};
use tarpc::client::RpcError;
use tarpc::context::Context;
use tarpc::serde_transport;
use tarpc::server::{BaseChannel, Channel};
use tarpc::tokio_serde::formats::Bincode;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{Mutex, Semaphore};
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
    async fn announce(grid: GridSecret, a: Announcement) -> Result<(), Error>;
    async fn poll_announcements(
        grid: GridSecret,
        cursor: u64,
        wait_ms: u64,
    ) -> Result<AnnouncementBatch, Error>;
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
    async fn announce(self, _: Context, grid: GridSecret, a: Announcement) -> Result<()> {
        self.queen()?.announce(grid, a).await
    }
    async fn poll_announcements(
        self,
        _: Context,
        grid: GridSecret,
        cursor: u64,
        wait_ms: u64,
    ) -> Result<AnnouncementBatch> {
        self.queen()?
            .poll_announcements(grid, cursor, wait_ms)
            .await
    }
}

fn codec(config: &TarpcTcpConfig) -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .max_frame_length(config.max_frame_bytes)
        .new_codec()
}

/// The longest deadline a request may carry. tarpc turns the relative
/// deadline a peer sends into `Instant::now() + deadline`, which panics on
/// overflow (found by the `rpc_frame` fuzz target); frames with a longer one
/// are refused before tarpc decodes them.
const MAX_DEADLINE: Duration = Duration::from_secs(24 * 3600);

/// The start of a request frame as bincode lays it out: tarpc's
/// `ClientMessage` variant, and for a request the context's deadline, its
/// first field.
#[derive(serde::Deserialize)]
enum FrameHead {
    Request(Duration),
    Cancel,
}

/// The server's wire codec: tarpc's bincode, after a look at the deadline.
struct ServerCodec {
    inner: Bincode<tarpc::ClientMessage<NodeRequest>, tarpc::Response<NodeResponse>>,
}

impl ServerCodec {
    fn new() -> Self {
        ServerCodec {
            inner: Bincode::default(),
        }
    }
}

fn vet_frame(frame: &[u8]) -> std::io::Result<()> {
    use bincode::Options as _;
    let head: FrameHead = bincode::DefaultOptions::new()
        .allow_trailing_bytes()
        .deserialize(frame)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    match head {
        FrameHead::Request(d) if d > MAX_DEADLINE => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("a request deadline {d:?} away"),
        )),
        _ => Ok(()),
    }
}

impl tarpc::tokio_serde::Deserializer<tarpc::ClientMessage<NodeRequest>> for ServerCodec {
    type Error = std::io::Error;

    fn deserialize(
        mut self: Pin<&mut Self>,
        src: &bytes::BytesMut,
    ) -> std::io::Result<tarpc::ClientMessage<NodeRequest>> {
        vet_frame(src)?;
        Pin::new(&mut self.inner).deserialize(src)
    }
}

impl tarpc::tokio_serde::Serializer<tarpc::Response<NodeResponse>> for ServerCodec {
    type Error = std::io::Error;

    fn serialize(
        mut self: Pin<&mut Self>,
        item: &tarpc::Response<NodeResponse>,
    ) -> std::io::Result<bytes::Bytes> {
        Pin::new(&mut self.inner).serialize(item)
    }
}

/// Decode one incoming frame as the server does; whether it decoded. For
/// the fuzz target of RPC frames: a peer's frame must decode or be refused,
/// never panic or allocate beyond it.
pub fn decode_request_frame(frame: &[u8]) -> bool {
    use tarpc::tokio_serde::Deserializer;
    let mut codec = ServerCodec::new();
    Pin::new(&mut codec)
        .deserialize(&bytes::BytesMut::from(frame))
        .is_ok()
}

/// Connections open per peer IP address.
#[derive(Default)]
struct PerIp(StdMutex<HashMap<IpAddr, usize>>);

/// One connection's place in [`PerIp`], given back when dropped.
struct IpSlot {
    table: Arc<PerIp>,
    ip: IpAddr,
}

impl PerIp {
    fn take(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<IpSlot> {
        let mut t = self.0.lock().ok()?;
        let n = t.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(IpSlot {
            table: self.clone(),
            ip,
        })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        if let Ok(mut t) = self.table.0.lock()
            && let Some(n) = t.get_mut(&self.ip)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                t.remove(&self.ip);
            }
        }
    }
}

/// Records when bytes last moved on a stream, so idle connections can be
/// told from busy ones.
struct Watched<S> {
    inner: S,
    last: Arc<StdMutex<Instant>>,
}

impl<S> Watched<S> {
    fn touch(&self) {
        if let Ok(mut t) = self.last.lock() {
            *t = Instant::now();
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.touch();
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }
    fn poll_flush(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Most requests one connection has in flight at once.
const REQUESTS_PER_CONNECTION: usize = 64;

/// What every connection shares.
struct Limits {
    config: TarpcTcpConfig,
    /// One permit per request in flight on the whole listener: with every
    /// request at most a frame, this bounds the memory they take.
    requests: Arc<Semaphore>,
    per_ip: Arc<PerIp>,
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
    let slots = Arc::new(Semaphore::new(config.max_connections));
    let limits = Arc::new(Limits {
        requests: Arc::new(Semaphore::new(config.requests_in_flight())),
        per_ip: Arc::new(PerIp::default()),
        config: config.clone(),
    });
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
        let Some(ip_slot) = limits.per_ip.take(peer.ip(), config.max_connections_per_ip) else {
            tracing::warn!(
                "refusing connection from {peer}: {} connections open from {}",
                config.max_connections_per_ip,
                peer.ip()
            );
            continue;
        };
        // Each connection gets its own storage session, dropped with it.
        let conn = NodeServer {
            services: LocalServices {
                storage: services
                    .storage
                    .as_ref()
                    .map(|s| s.open_session().unwrap_or_else(|| s.clone())),
                queen: services.queen.clone(),
            },
        };
        let (tls, limits) = (tls.clone(), limits.clone());
        let mut stop = shutdown.clone();
        connections.spawn(async move {
            let _permits = (permit, ip_slot);
            tokio::select! {
                _ = connection(stream, peer, tls, conn, limits) => {}
                _ = stop.changed() => {}
            }
        });
        // Reap finished connections so the set does not grow.
        while connections.try_join_next().is_some() {}
    }
    connections.shutdown().await;
}

/// Serve one connection until it closes, misbehaves or stays idle.
async fn connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    tls: TlsAcceptor,
    server: NodeServer,
    limits: Arc<Limits>,
) {
    let config = &limits.config;
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
    let last = Arc::new(StdMutex::new(Instant::now()));
    let watched = Watched {
        inner: stream,
        last: last.clone(),
    };
    let framed = tokio_util::codec::Framed::new(watched, codec(config));
    let transport = serde_transport::new(framed, ServerCodec::new());
    let mut requests = BaseChannel::with_defaults(transport).requests();
    // Requests in flight are driven here, in the connection's own task (no
    // task per request: on a busy machine the hand-offs cost latency).
    let mut running: FuturesUnordered<Pin<Box<dyn Future<Output = ()> + Send>>> =
        FuturesUnordered::new();
    let idle = secs(config.idle_timeout_secs);
    let touch = |last: &StdMutex<Instant>| {
        if let Ok(mut t) = last.lock() {
            *t = Instant::now();
        }
    };
    loop {
        // A connection reads no more requests than it may hold.
        let room = running.len() < REQUESTS_PER_CONNECTION;
        tokio::select! {
            Some(()) = running.next(), if !running.is_empty() => touch(&last),
            next = requests.next(), if room => match next {
                Some(Ok(request)) => {
                    // Room on the listener too, so that all connections
                    // together serve a bounded number at once; the requests
                    // already running go on meanwhile.
                    let global = loop {
                        tokio::select! {
                            p = limits.requests.clone().acquire_owned() => break p,
                            Some(()) = running.next(), if !running.is_empty() => touch(&last),
                        }
                    };
                    let Ok(global) = global else { break };
                    let serve = server.clone().serve();
                    running.push(Box::pin(async move {
                        request.execute(serve).await;
                        drop(global);
                    }));
                }
                Some(Err(e)) => {
                    tracing::warn!("closing the connection from {peer}: {e}");
                    break;
                }
                None => {
                    tracing::debug!("connection from {peer} closed");
                    break;
                }
            },
            // Idle: no request in flight and no bytes moved for `idle`.
            _ = tokio::time::sleep(idle / 4), if running.is_empty() => {
                if last.lock().map(|t| t.elapsed() >= idle).unwrap_or(true) {
                    tracing::debug!("closing the connection from {peer}: idle for {idle:?}");
                    break;
                }
            }
        }
    }
    // Let answers already computed reach the peer, briefly.
    let _ = tokio::time::timeout(Duration::from_millis(200), async {
        while running.next().await.is_some() {}
        while requests.next().await.is_some() {}
    })
    .await;
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

/// Whether a failed call never left this node: the connection was already
/// gone (the server closed it as idle, say), so sending it again on a new
/// connection cannot make it happen twice.
fn unsent(e: &RpcError) -> bool {
    matches!(e, RpcError::Shutdown | RpcError::Send(_))
}

/// One call: get a client, run the body with a deadline, map transport
/// errors. A call that could not be sent because the connection had closed
/// is sent once more on a fresh one. The body is evaluated again for that,
/// so it clones what it sends.
macro_rules! call {
    ($self:ident, $timeout:expr, |$c:ident, $ctx:ident| $body:expr) => {{
        let mut again = true;
        loop {
            let $c = $self.client().await?;
            let $ctx = $self.context($timeout);
            match $body.await {
                Ok(r) => break r,
                Err(e) if again && unsent(&e) => {
                    again = false;
                    $self.mark_down(&e.to_string()).await;
                }
                Err(e) => break Err($self.rpc_error(e).await),
            }
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
        call!(self, self.timeout(), |c, ctx| c
            .allocate_buckets(ctx, req.clone()))
    }
    async fn write_bucket(
        &self,
        si: StorageIndex,
        shnum: ShareNum,
        secret: Secret,
        offset: u64,
        data: Bytes,
    ) -> Result<()> {
        call!(self, self.timeout(), |c, ctx| c.write_bucket(
            ctx,
            si,
            shnum,
            secret,
            offset,
            data.clone()
        ))
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
        call!(self, self.timeout(), |c, ctx| c.advise_corrupt_share(
            ctx,
            si,
            shnum,
            reason.clone()
        ))
    }
    async fn slot_readv(
        &self,
        si: StorageIndex,
        shnums: Vec<ShareNum>,
        ranges: Vec<(u64, u64)>,
    ) -> Result<BTreeMap<ShareNum, Vec<Bytes>>> {
        call!(self, self.timeout(), |c, ctx| c.slot_readv(
            ctx,
            si,
            shnums.clone(),
            ranges.clone()
        ))
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
                ctx,
                si,
                secrets.clone(),
                writes.clone(),
                read.clone()
            ))
    }
}

#[async_trait]
impl QueenService for Remote {
    async fn announce(&self, grid: GridSecret, a: Announcement) -> Result<()> {
        call!(self, self.timeout(), |c, ctx| c.announce(
            ctx,
            grid,
            a.clone()
        ))
    }
    async fn poll_announcements(
        &self,
        grid: GridSecret,
        cursor: u64,
        wait_ms: u64,
    ) -> Result<AnnouncementBatch> {
        let timeout = self.timeout() + Duration::from_millis(wait_ms);
        call!(self, timeout, |c, ctx| c
            .poll_announcements(ctx, grid, cursor, wait_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tarpc::tokio_serde::Serializer;

    #[test]
    fn frames_decode_or_are_refused_without_panicking() {
        // Found by the rpc_frame fuzz target: a request whose deadline is
        // so far away that tarpc's `now + deadline` overflowed.
        let far = [
            0x00, 0xfd, 0xfe, 0xeb, 0x65, 0x0d, 0xc5, 0x14, 0xc4, 0xeb, 0xeb,
        ];
        assert!(!decode_request_frame(&far));
        // A real request still decodes.
        let mut codec =
            Bincode::<tarpc::Response<()>, tarpc::ClientMessage<NodeRequest>>::default();
        let request = tarpc::ClientMessage::Request(tarpc::Request {
            context: tarpc::context::current(),
            id: 7,
            message: NodeRequest::Version {},
        });
        let frame = Pin::new(&mut codec).serialize(&request).expect("serialize");
        assert!(decode_request_frame(&frame));
    }
}
