//! An in-process grid for pipeline tests: storage servers over the memory
//! backend, reached through the memory transport, plus a server wrapper
//! that misbehaves on request (the tests are about the client's checks).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use tahoe_core::Result;
use tahoe_core::client::check::Checker;
use tahoe_core::client::check::repair::RepairTools;
use tahoe_core::client::dirnode::DirClient;
use tahoe_core::client::immutable::KeyMode;
use tahoe_core::client::immutable::client::ImmutableClient;
use tahoe_core::client::immutable::download::{DownloadReport, Downloader};
use tahoe_core::client::immutable::placement::HappySink;
use tahoe_core::client::immutable::upload::Uploader;
use tahoe_core::client::mutable::file::MutableClient;
use tahoe_core::client::mutable::key_pool::KeyPool;
use tahoe_core::client::secrets::ClientSecret;
use tahoe_core::client::servers::ServerRef;
use tahoe_core::client::source::BytesSource;
use tahoe_core::format::cap::{Cap, ChkCap};
use tahoe_core::format::ssk::layout::ShareHead;
use tahoe_core::kinds::codec::{Codec, CodecParams};
use tahoe_core::kinds::storage::{ShareNum, StorageIndex};
use tahoe_core::plugin::registry::{PluginContext, PluginKind, Registry};
use tahoe_core::protocol::transport::{Listener, LocalServices, Transport};
use tahoe_core::protocol::{
    AllocateRequest, AllocateResponse, Secret, ServerVersion, SlotSecrets, SlotWrite, StorageLayer,
    StorageService,
};
use tahoe_core::server::{ServerConfig, StorageServer};
use tahoe_storage_memory::MemoryBackend;
use tahoe_transport_memory::MemoryTransport;

use crate::vectors::test_key;

/// How a [`Faulty`] server misbehaves.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Behave.
    None,
    /// Flip one bit of one byte of a share in every read covering it.
    Flip {
        /// The share.
        shnum: ShareNum,
        /// The byte's offset in the share.
        offset: u64,
    },
    /// Pretend a share ends at `len`.
    Truncate {
        /// The share.
        shnum: ShareNum,
        /// Where it ends now.
        len: u64,
    },
    /// Answer for another storage index (shares of another file).
    Redirect(StorageIndex),
    /// Fail every call as unreachable.
    Down,
    /// Never answer any call (a server that accepts and hangs).
    Hang,
    /// Lie at allocation: claim to hold every share asked for.
    ClaimAll,
    /// Fail every write (a server dying mid-upload).
    FailWrites,
    /// Serve these mutable shares whatever is stored, and accept every
    /// slot write without applying it (a server rolling a file back).
    Stale(BTreeMap<ShareNum, Bytes>),
    /// Serve these mutable shares to the next slot read only, then behave:
    /// what a reader sees when a writer replaces the shares between two
    /// of its reads.
    StaleOnce(BTreeMap<ShareNum, Bytes>),
}

/// A storage service that can be told to misbehave, and counts reads.
pub struct Faulty {
    /// The service it wraps.
    pub inner: Arc<dyn StorageService>,
    /// How it misbehaves now.
    pub fault: Mutex<Fault>,
    /// Bucket reads served.
    pub reads: AtomicU64,
    /// Corruption advisories received.
    pub advised: AtomicU64,
    /// Upload secrets this server was given.
    pub upload_secrets: Mutex<Vec<Secret>>,
    /// Bytes returned by slot reads.
    pub slot_read_bytes: AtomicU64,
    /// Bytes sent in slot writes.
    pub slot_written_bytes: AtomicU64,
}

impl Faulty {
    fn si(&self, si: StorageIndex) -> StorageIndex {
        match &*self.fault.lock().unwrap() {
            Fault::Redirect(other) => *other,
            _ => si,
        }
    }
    async fn down(&self) -> Result<()> {
        let fault = self.fault.lock().unwrap().clone();
        match fault {
            Fault::Down => Err(tahoe_core::Error::unavailable("server is down")),
            Fault::Hang => std::future::pending().await,
            _ => Ok(()),
        }
    }
}

#[async_trait]
impl StorageLayer for Faulty {
    fn inner(&self) -> &dyn StorageService {
        self.inner.as_ref()
    }
    async fn version(&self) -> Result<ServerVersion> {
        self.down().await?;
        self.inner.version().await
    }
    async fn allocate_buckets(&self, req: AllocateRequest) -> Result<AllocateResponse> {
        self.down().await?;
        self.upload_secrets.lock().unwrap().push(req.upload_secret);
        if *self.fault.lock().unwrap() == Fault::ClaimAll {
            return Ok(AllocateResponse {
                already_have: req.share_numbers,
                allocated: Vec::new(),
            });
        }
        self.inner.allocate_buckets(req).await
    }
    async fn write_bucket(
        &self,
        si: StorageIndex,
        shnum: ShareNum,
        s: Secret,
        offset: u64,
        data: Bytes,
    ) -> Result<()> {
        self.down().await?;
        if *self.fault.lock().unwrap() == Fault::FailWrites {
            return Err(tahoe_core::Error::unavailable("disk gone"));
        }
        self.inner.write_bucket(si, shnum, s, offset, data).await
    }
    async fn close_bucket(&self, si: StorageIndex, shnum: ShareNum, s: Secret) -> Result<()> {
        self.down().await?;
        self.inner.close_bucket(si, shnum, s).await
    }
    async fn list_buckets(&self, si: StorageIndex) -> Result<BTreeMap<ShareNum, u64>> {
        self.down().await?;
        let mut m = self.inner.list_buckets(self.si(si)).await?;
        if let Fault::Truncate { shnum, len } = &*self.fault.lock().unwrap()
            && let Some(size) = m.get_mut(shnum)
        {
            *size = (*size).min(*len);
        }
        Ok(m)
    }
    async fn read_bucket(
        &self,
        si: StorageIndex,
        shnum: ShareNum,
        offset: u64,
        len: u64,
    ) -> Result<Bytes> {
        self.down().await?;
        self.reads.fetch_add(1, Ordering::SeqCst);
        let data = self
            .inner
            .read_bucket(self.si(si), shnum, offset, len)
            .await?;
        let fault = self.fault.lock().unwrap().clone();
        match fault {
            Fault::Flip {
                shnum: s,
                offset: at,
            } if s == shnum && at >= offset && at < offset + data.len() as u64 => {
                let mut v = data.to_vec();
                v[(at - offset) as usize] ^= 0x40;
                Ok(Bytes::from(v))
            }
            Fault::Truncate { shnum: s, len: end } if s == shnum => {
                let keep = end.saturating_sub(offset).min(data.len() as u64) as usize;
                Ok(data.slice(..keep))
            }
            _ => Ok(data),
        }
    }
    async fn advise_corrupt_share(
        &self,
        si: StorageIndex,
        shnum: ShareNum,
        reason: String,
    ) -> Result<()> {
        self.advised.fetch_add(1, Ordering::SeqCst);
        self.inner.advise_corrupt_share(si, shnum, reason).await
    }
    async fn slot_readv(
        &self,
        si: StorageIndex,
        s: Vec<ShareNum>,
        r: Vec<(u64, u64)>,
    ) -> Result<BTreeMap<ShareNum, Vec<Bytes>>> {
        self.down().await?;
        let fault = {
            let mut f = self.fault.lock().unwrap();
            match &*f {
                Fault::StaleOnce(shares) => {
                    let once = Fault::Stale(shares.clone());
                    *f = Fault::None;
                    once
                }
                other => other.clone(),
            }
        };
        let mut got = match &fault {
            Fault::Stale(shares) => shares
                .iter()
                .filter(|(n, _)| s.is_empty() || s.contains(n))
                .map(|(&n, data)| {
                    let ranges = r
                        .iter()
                        .map(|&(o, l)| {
                            let start = (o as usize).min(data.len());
                            let end = (o.saturating_add(l) as usize).min(data.len());
                            data.slice(start..end)
                        })
                        .collect();
                    (n, ranges)
                })
                .collect(),
            _ => self.inner.slot_readv(si, s, r.clone()).await?,
        };
        for (&shnum, ranges) in got.iter_mut() {
            for (data, &(offset, _)) in ranges.iter_mut().zip(&r) {
                *data = match fault {
                    Fault::Flip {
                        shnum: s,
                        offset: at,
                    } if s == shnum && at >= offset && at < offset + data.len() as u64 => {
                        let mut v = data.to_vec();
                        v[(at - offset) as usize] ^= 0x01;
                        Bytes::from(v)
                    }
                    Fault::Truncate { shnum: s, len: end } if s == shnum => {
                        let keep = end.saturating_sub(offset).min(data.len() as u64) as usize;
                        data.slice(..keep)
                    }
                    _ => data.clone(),
                };
                self.slot_read_bytes
                    .fetch_add(data.len() as u64, Ordering::SeqCst);
            }
        }
        Ok(got)
    }
    async fn slot_testv_and_readv_and_writev(
        &self,
        si: StorageIndex,
        secrets: SlotSecrets,
        w: BTreeMap<ShareNum, SlotWrite>,
        r: Vec<(u64, u64)>,
    ) -> Result<(bool, BTreeMap<ShareNum, Vec<Bytes>>)> {
        self.down().await?;
        let sent: usize = w
            .values()
            .flat_map(|sw| sw.writes.iter().map(|v| v.data.len()))
            .sum();
        self.slot_written_bytes
            .fetch_add(sent as u64, Ordering::SeqCst);
        match &*self.fault.lock().unwrap() {
            Fault::FailWrites => {
                return Err(tahoe_core::Error::unavailable("server failed the write"));
            }
            Fault::Stale(_) => return Ok((true, BTreeMap::new())),
            _ => {}
        }
        self.inner
            .slot_testv_and_readv_and_writev(si, secrets, w, r)
            .await
    }
}

impl Faulty {
    /// `inner`, behaving.
    fn over(inner: Arc<dyn StorageService>) -> Faulty {
        Faulty {
            inner,
            fault: Mutex::new(Fault::None),
            reads: AtomicU64::new(0),
            advised: AtomicU64::new(0),
            upload_secrets: Mutex::new(Vec::new()),
            slot_read_bytes: AtomicU64::new(0),
            slot_written_bytes: AtomicU64::new(0),
        }
    }
}

/// Storage servers in this process, each over a memory backend and
/// reached through the memory transport behind a [`Faulty`] wrapper, with
/// the clients of the pipelines made for them.
pub struct MemGrid {
    /// The servers as clients see them (through the wrapper).
    pub servers: Vec<Arc<Faulty>>,
    /// The servers themselves, in the same order.
    pub storage: Vec<Arc<StorageServer>>,
    /// Their ids as clients see them (`server-I` unless made
    /// [`MemGrid::direct`]), in the same order.
    pub ids: Vec<String>,
    /// The built-in plugins (`tahoe::builtin_registry`).
    pub registry: Registry,
    _listeners: Vec<Box<dyn Listener>>,
}

impl MemGrid {
    /// `count` storage servers over memory backends, each reached through
    /// the memory transport.
    pub async fn new(count: usize) -> MemGrid {
        Self::with_backends((0..count).map(|_| {
            Arc::new(StorageServer::new(
                Arc::new(MemoryBackend::new(None)),
                ServerConfig::default(),
            ))
        }))
        .await
    }

    /// A grid of the given storage servers.
    pub async fn with_backends(servers_in: impl Iterator<Item = Arc<StorageServer>>) -> MemGrid {
        let transport = MemoryTransport;
        let mut servers = Vec::new();
        let mut storage = Vec::new();
        let mut listeners = Vec::new();
        for server in servers_in {
            let l = transport
                .listen(
                    "memory:",
                    LocalServices {
                        storage: Some(server.clone()),
                        queen: None,
                    },
                )
                .await
                .unwrap();
            let peer = transport.connect(&l.address()).await.unwrap();
            servers.push(Arc::new(Faulty::over(peer.storage)));
            storage.push(server);
            listeners.push(l);
        }
        MemGrid {
            ids: (0..servers.len()).map(|i| format!("server-{i}")).collect(),
            servers,
            storage,
            registry: tahoe::builtin_registry().unwrap(),
            _listeners: listeners,
        }
    }

    /// A grid of the given storage servers called directly, without a
    /// transport between (for simulations making millions of calls), each
    /// behind a [`Faulty`] wrapper all the same.
    /// Each server comes with its id, which stays its own however the
    /// grid's membership changes (leases are derived from it).
    pub fn direct(servers_in: impl Iterator<Item = (String, Arc<StorageServer>)>) -> MemGrid {
        let (ids, storage): (Vec<String>, Vec<Arc<StorageServer>>) = servers_in.unzip();
        let servers = storage
            .iter()
            .map(|s| Arc::new(Faulty::over(s.clone() as Arc<dyn StorageService>)))
            .collect();
        MemGrid {
            servers,
            storage,
            ids,
            registry: tahoe::builtin_registry().unwrap(),
            _listeners: Vec::new(),
        }
    }

    /// The servers as a client lists them (`server-I` at `memory-I`).
    pub fn refs(&self) -> Vec<ServerRef> {
        self.servers
            .iter()
            .enumerate()
            .map(|(i, s)| ServerRef {
                id: self.ids[i].clone(),
                location: format!("memory-{i}"),
                service: s.clone() as Arc<dyn StorageService>,
            })
            .collect()
    }

    /// The registry's codec `name`, `k`-of-`n`.
    pub fn codec(&self, name: &str, k: u16, n: u16) -> Arc<dyn Codec> {
        let ctx = PluginContext::empty(PluginKind::Codec, name, std::path::Path::new("."));
        self.registry
            .codec(name, CodecParams::new(k, n).unwrap(), &ctx)
            .unwrap()
    }

    /// An uploader with `crs` `k`-of-`n`, `aes-ctr` and a fixed
    /// convergence secret.
    pub fn uploader(&self, k: u16, n: u16, max_segment_size: u64) -> Uploader {
        let ctx = PluginContext::empty(PluginKind::Cipher, "aes-ctr", std::path::Path::new("."));
        Uploader {
            codec: self.codec("crs", k, n),
            cipher: self.registry.cipher("aes-ctr", &ctx).unwrap(),
            max_segment_size,
            key_mode: KeyMode::Convergent(b"test convergence secret".to_vec()),
        }
    }

    /// A downloader with every built-in codec and `aes-ctr`.
    pub fn downloader(&self) -> Downloader {
        let registry = Arc::new(tahoe::builtin_registry().unwrap());
        let ctx = PluginContext::empty(PluginKind::Cipher, "aes-ctr", std::path::Path::new("."));
        let cipher = registry.cipher("aes-ctr", &ctx).unwrap();
        Downloader {
            codecs: Arc::new(move |name: &str, params: CodecParams| {
                let ctx = PluginContext::empty(PluginKind::Codec, name, std::path::Path::new("."));
                registry.codec(name, params, &ctx)
            }),
            cipher,
        }
    }

    /// The sink uploads use in production, over every server of the grid,
    /// needing as many servers as the shares allow (n, or every server when
    /// there are fewer).
    pub fn sink(&self, k: u16, n: u16) -> HappySink {
        let happy = n.min(self.servers.len() as u16).max(k);
        HappySink::new(self.refs(), k, happy, n, ClientSecret::random().unwrap())
    }

    /// Which server (index) holds share `shnum` of `si`.
    pub async fn holder(&self, si: &StorageIndex, shnum: ShareNum) -> usize {
        for (i, s) in self.storage.iter().enumerate() {
            if s.backend()
                .list(si)
                .await
                .unwrap()
                .iter()
                .any(|info| info.shnum == shnum)
            {
                return i;
            }
        }
        panic!("no server holds share {shnum} of {si}")
    }

    /// Make the server holding share `shnum` of `si` misbehave.
    pub async fn set_share_fault(&self, si: &StorageIndex, shnum: ShareNum, fault: Fault) {
        let server = self.holder(si, shnum).await;
        self.set_fault(server, fault);
    }

    /// What a repair needs, spooling under `spool_dir`.
    pub fn repair_tools(&self, spool_dir: &std::path::Path) -> RepairTools {
        RepairTools {
            downloader: self.downloader(),
            secret: ClientSecret::random().unwrap(),
            spool_dir: spool_dir.to_path_buf(),
            mutable: Some(self.mutable_client(3, 10, 4096)),
        }
    }

    /// A checker over `servers` (with this grid's codecs, for verify).
    pub fn checker(&self, servers: Vec<ServerRef>) -> Checker {
        Checker::new(servers, self.downloader().codecs)
    }

    /// Upload through the production sink.
    pub async fn upload(&self, data: &[u8], k: u16, n: u16, seg: u64) -> Cap {
        let sink = self.sink(k, n);
        self.uploader(k, n, seg)
            .upload(Arc::new(BytesSource(Bytes::copy_from_slice(data))), &sink)
            .await
            .unwrap()
    }

    /// Download `range` of `cap` from `servers`: the bytes and the report.
    pub async fn download_from(
        &self,
        cap: &ChkCap,
        servers: &[ServerRef],
        range: std::ops::Range<u64>,
    ) -> Result<(Vec<u8>, DownloadReport)> {
        let mut out = Vec::new();
        let report = self
            .downloader()
            .download(cap, servers, range, &mut out)
            .await?;
        Ok((out, report))
    }

    /// Download all of `cap` from every server.
    pub async fn download(&self, cap: &ChkCap) -> Result<(Vec<u8>, DownloadReport)> {
        self.download_from(cap, &self.refs(), 0..u64::MAX).await
    }

    /// A mutable-file client over every server of the grid (happy = the
    /// servers there are, up to n), with small MDMF segments so that
    /// small test files have several.
    pub fn mutable_client(&self, k: u16, n: u16, mdmf_segment_size: u64) -> MutableClient {
        let registry = Arc::new(tahoe::builtin_registry().unwrap());
        let ctx = PluginContext::empty(PluginKind::Cipher, "aes-ctr", std::path::Path::new("."));
        let cipher = registry.cipher("aes-ctr", &ctx).unwrap();
        let happy = n.min(self.servers.len() as u16).max(k);
        let mut c = MutableClient::new(
            self.refs(),
            self.downloader().codecs,
            cipher,
            ClientSecret::random().unwrap(),
            KeyPool::new(0),
            k,
            happy,
            n,
        )
        .unwrap();
        c.mdmf_segment_size = mdmf_segment_size;
        c
    }

    /// A directory client over every server of the grid, whose new
    /// directories take the test keys `keys` (then make their own).
    pub fn dir_client(&self, k: u16, n: u16, keys: std::ops::Range<usize>) -> DirClient {
        let mutable = self.mutable_client(k, n, 128 << 10);
        for i in keys.rev() {
            mutable.keys.put(test_key(i));
        }
        let happy = n.min(self.servers.len() as u16).max(k);
        DirClient {
            immutable: ImmutableClient {
                servers: self.refs(),
                uploader: self.uploader(k, n, 1 << 20),
                downloader: self.downloader(),
                happy,
                secret: ClientSecret::random().unwrap(),
            },
            mutable,
        }
    }

    /// What server `i` stores for mutable file `si` now.
    pub async fn slot_contents(&self, i: usize, si: &StorageIndex) -> BTreeMap<ShareNum, Bytes> {
        self.servers[i]
            .inner
            .slot_readv(*si, vec![], vec![(0, 4 << 20)])
            .await
            .unwrap()
            .into_iter()
            .map(|(n, mut v)| (n, v.pop().unwrap()))
            .collect()
    }

    /// Server `i`'s (first) share of mutable file `si`, parsed.
    pub async fn mutable_head(&self, i: usize, si: &StorageIndex) -> (ShareNum, ShareHead) {
        let contents = self.slot_contents(i, si).await;
        let (&shnum, share) = contents.iter().next().unwrap();
        (shnum, ShareHead::parse(share).unwrap())
    }

    /// Make server `server` misbehave.
    pub fn set_fault(&self, server: usize, fault: Fault) {
        *self.servers[server].fault.lock().unwrap() = fault;
    }

    /// Every server behaves again.
    pub fn clear_faults(&self) {
        for s in &self.servers {
            *s.fault.lock().unwrap() = Fault::None;
        }
    }
}

/// A two-thread runtime for tests that drive a grid.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}
