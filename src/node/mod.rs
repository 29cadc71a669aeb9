//! A node: creating its base directory, running it, and the client session
//! that `tahoe put` and `tahoe get` use.
//!
//! `run` is the composition root: configuration → plugins → services →
//! listener → background tasks, and the reverse on shutdown (stop
//! announcing, stop listening, remove the pid file).

pub mod broker;
pub mod link;
pub mod queen;

use crate::basedir::CLIENT_INTRODUCER_FILE;
use crate::basedir::CONVERGENCE_FILE;
use crate::basedir::GRID_SECRET_FILE;
use crate::basedir::INTRODUCER_FILE;
use crate::basedir::NodeLock;
use crate::basedir::SERVERS_FILE;
use crate::basedir::STATUS_FILE;
use crate::basedir::VDRIVE_FILE;
use crate::basedir::VDRIVE_KEY_FILE;
use crate::basedir::VDRIVE_PUBLISHED_FILE;
use crate::basedir::convergence_secret;
use crate::basedir::grid_secret;
use crate::basedir::introducer_of;
use crate::basedir::parse_vdrive;
use crate::basedir::private_dir;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use tahoe_core::client::dirnode::DirClient;
use tahoe_core::client::immutable::KeyMode;
use tahoe_core::client::immutable::client::ImmutableClient;
use tahoe_core::client::immutable::download::{DownloadReport, Downloader};
use tahoe_core::client::immutable::upload::{KeyHasher, PrecomputedKey, Uploader};
use tahoe_core::client::mutable::file::MutableClient;
use tahoe_core::client::mutable::key_pool::KeyPool;
use tahoe_core::client::mutable::retrieve::ReadReport;
use tahoe_core::client::mutable::rsa::SigningKey;
use tahoe_core::client::secrets::ClientSecret;
use tahoe_core::client::source::Source;
use tahoe_core::format::cap::{Cap, ChkCap, DirCap, SskReadCap, SskWriteCap};
use tahoe_core::format::chk::CHK_CIPHER;
use tahoe_core::format::ssk::MutableFormat;
use tahoe_core::plugin::config::{CONFIG_FILE, NodeConfig, Role};
use tahoe_core::plugin::registry::{PluginContext, PluginKind, Registry, Selection};
use tahoe_core::protocol::QueenAddress;
use tahoe_core::protocol::identity::{NodeKey, write_private};
use tahoe_core::protocol::transport::{Listener, LocalServices};
use tahoe_core::server::{ServerConfig, StorageServer};

use crate::announce::{self, AnnouncementBody, now_ms};
use broker::Broker;
use queen::Queen;

fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| anyhow::anyhow!("random: {e}"))?;
    Ok(b)
}

fn fresh_basedir(basedir: &Path) -> Result<()> {
    if basedir.join(CONFIG_FILE).exists() {
        bail!(
            "{} already holds a node ({} exists)",
            basedir.display(),
            CONFIG_FILE
        );
    }
    private_dir(basedir)
}

fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// `tahoe create-queen`.
pub async fn create_queen(basedir: &Path, nickname: &str, listen: Option<&str>) -> Result<String> {
    fresh_basedir(basedir)?;
    // A queen's address must not change: pick a port now and keep it.
    let listen = match listen {
        Some(l) => l.to_string(),
        None => {
            let probe =
                std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
            probe.local_addr()?.to_string()
        }
    };
    let config = format!(
        "[node]\nnickname = {}\nrole = \"queen\"\n\n[storage]\nenabled = false\n\n[transport]\nlisten = {}\n",
        toml_string(nickname),
        toml_string(&listen)
    );
    std::fs::write(basedir.join(CONFIG_FILE), config)?;
    NodeKey::create(basedir)?;
    let cfg = NodeConfig::load(basedir)?;
    let registry = crate::registry_for(&cfg)?;
    let sel = registry.select(&cfg)?;
    let listener = sel
        .transport
        .listen(&listen, LocalServices::default())
        .await
        .with_context(|| format!("checking that {listen} can be listened on"))?;
    let address = advertised(&cfg, listener.as_ref());
    listener.shutdown().await;
    let secret = random_bytes::<32>()?;
    write_private(
        &basedir.join(GRID_SECRET_FILE),
        format!("{}\n", tahoe_core::base32::encode(&secret)).as_bytes(),
    )?;
    let url = QueenAddress { address, secret };
    write_private(
        &basedir.join(INTRODUCER_FILE),
        format!("{url}\n").as_bytes(),
    )?;
    let address = url.to_string();
    // The shared root directory: its key is made now, so the grid's root
    // never changes; the running queen publishes it once servers are up.
    let key = tokio::task::spawn_blocking(SigningKey::generate)
        .await
        .context("key generation")??;
    write_private(&basedir.join(VDRIVE_KEY_FILE), key.to_pem()?.as_bytes())?;
    let cap = Cap::Dir(DirCap::Write(key.write_cap(MutableFormat::Sdmf)));
    write_private(&basedir.join(VDRIVE_FILE), format!("{cap}\n").as_bytes())?;
    Ok(address)
}

/// `tahoe create-client`; `vdrive` is the shared drive's cap (else a
/// `vdrive.cap` copied into `basedir` is kept).
pub fn create_client(
    basedir: &Path,
    introducer: Option<&str>,
    nickname: &str,
    storage: bool,
    vdrive: Option<&str>,
) -> Result<()> {
    let vdrive = vdrive
        .map(|v| parse_vdrive(v).context("the --vdrive given"))
        .transpose()?;
    let copied = basedir.join(INTRODUCER_FILE);
    let introducer = match introducer {
        Some(i) => i.trim().to_string(),
        None => std::fs::read_to_string(&copied)
            .map(|s| s.trim().to_string())
            .with_context(|| {
                format!("no --introducer given and no {} to read", copied.display())
            })?,
    };
    QueenAddress::parse(&introducer).context("the --introducer given")?;
    fresh_basedir(basedir)?;
    // The queen's address carries the grid secret: it goes to a private
    // file, not into the (world-readable) tahoe.toml.
    let config = format!(
        "[node]\nnickname = {}\nrole = \"client\"\n\n[storage]\nenabled = {storage}\n",
        toml_string(nickname),
    );
    std::fs::write(basedir.join(CONFIG_FILE), config)?;
    NodeKey::create(basedir)?;
    write_private(
        &basedir.join(CLIENT_INTRODUCER_FILE),
        format!("{introducer}\n").as_bytes(),
    )?;
    ClientSecret::load_or_create(basedir)?;
    let secret = tahoe_core::base32::encode(&random_bytes::<16>()?);
    write_private(
        &basedir.join(CONVERGENCE_FILE),
        format!("{secret}\n").as_bytes(),
    )?;
    if let Some(cap) = vdrive {
        write_private(&basedir.join(VDRIVE_FILE), format!("{cap}\n").as_bytes())?;
    }
    Ok(())
}

/// The address to announce: the bound one, or `transport.advertise`. An
/// advertise value without a scheme is a `HOST:PORT` that replaces the
/// bound one in the listener's address (keeping its key fingerprint).
fn advertised(cfg: &NodeConfig, listener: &dyn Listener) -> String {
    let bound = listener.address();
    let adv = &cfg.transport.advertise;
    if adv.is_empty() {
        bound
    } else if adv.contains("://") {
        adv.clone()
    } else {
        match bound.split_once('@') {
            Some((scheme_and_key, _)) => format!("{scheme_and_key}@{adv}"),
            None => adv.clone(),
        }
    }
}

/// What `status.json` says.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    /// "client" or "queen".
    pub role: String,
    /// The node id.
    pub node_id: String,
    /// Where it listens.
    pub address: String,
    /// For clients: whether the queen answered lately.
    pub queen_connected: Option<bool>,
    /// Storage servers known (clients) or announced (queen).
    pub known_servers: usize,
    /// Nicknames and addresses of the known servers.
    pub servers: Vec<(String, String)>,
    /// Process id.
    pub pid: u32,
}

/// Everything a running node holds, for ordered shutdown.
struct Running {
    listener: Box<dyn Listener>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Raise this process's soft limit on open files to its hard limit: a
/// node's listeners have caps of their own (`web.max_connections`,
/// `transport.tarpc-tcp.max_connections`) that the usual soft limit of
/// 1024 cannot hold together.
#[allow(unsafe_code)]
fn raise_open_file_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write the struct given,
    // which lives across the calls.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            let was = lim.rlim_cur;
            lim.rlim_cur = lim.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == 0 {
                tracing::debug!(
                    "open files: soft limit raised from {was} to {}",
                    lim.rlim_max
                );
            }
        }
    }
}

/// `tahoe run`: serve until SIGINT or SIGTERM.
pub async fn run(basedir: &Path) -> Result<()> {
    raise_open_file_limit();
    let cfg = NodeConfig::load(basedir)?;
    let registry = crate::registry_for(&cfg)?;
    let sel = registry.select(&cfg)?;
    let key = Arc::new(NodeKey::load(basedir)?);
    let _lock = NodeLock::take(basedir)?;
    let running = match cfg.node.role {
        Role::Queen => start_queen(&cfg, &sel, &key).await?,
        Role::Client => start_client(&cfg, &sel, &key).await?,
    };
    wait_for_signal().await;
    tracing::info!("shutting down");
    for t in &running.tasks {
        t.abort();
    }
    running.listener.shutdown().await;
    let _ = std::fs::remove_file(basedir.join(STATUS_FILE));
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn write_status(basedir: &Path, status: &Status) {
    if let Ok(json) = serde_json::to_vec_pretty(status) {
        let path = basedir.join(STATUS_FILE);
        let tmp = path.with_extension("tmp");
        let _ = std::fs::write(&tmp, json).and_then(|_| std::fs::rename(&tmp, &path));
    }
}

async fn start_queen(cfg: &NodeConfig, sel: &Selection, key: &NodeKey) -> Result<Running> {
    let secret = grid_secret(cfg.basedir())?;
    let queen = Arc::new(Queen::new(
        secret,
        sel.transport.clone(),
        queen::QueenLimits {
            ttl: Duration::from_secs(cfg.queen.announcement_ttl_secs.max(1)),
            per_member: cfg.queen.max_servers_per_member,
        },
    )?);
    let services = LocalServices {
        storage: None,
        queen: Some(queen.clone()),
    };
    let listener = sel
        .transport
        .listen(&cfg.transport.listen, services)
        .await
        .with_context(|| format!("listening on {:?}", cfg.transport.listen))?;
    let address = advertised(cfg, listener.as_ref());
    tracing::info!("queen {} listening at {address}", key.node_id());
    let url = QueenAddress {
        address: address.clone(),
        secret,
    };
    write_private(
        &cfg.basedir().join(INTRODUCER_FILE),
        format!("{url}\n").as_bytes(),
    )?;
    // The queen is a client of its own grid for one thing: publishing the
    // shared root directory.
    let broker = Arc::new(Broker::local(
        sel.transport.clone(),
        url.clone(),
        queen.clone() as Arc<dyn tahoe_core::protocol::QueenService>,
    ));
    let mut tasks = vec![tokio::spawn(broker.clone().subscribe())];
    if !cfg.basedir().join(VDRIVE_PUBLISHED_FILE).exists() {
        let session = Session::with_broker(cfg.clone(), broker)?;
        tasks.push(tokio::spawn(async move { session.publish_root().await }));
    }
    let (basedir, node_id) = (cfg.basedir().to_path_buf(), key.node_id());
    tasks.push(tokio::spawn(async move {
        loop {
            write_status(
                &basedir,
                &Status {
                    role: "queen".into(),
                    node_id: node_id.clone(),
                    address: address.clone(),
                    queen_connected: None,
                    known_servers: queen.server_count(),
                    servers: Vec::new(),
                    pid: std::process::id(),
                },
            );
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }));
    Ok(Running { listener, tasks })
}

async fn start_client(cfg: &NodeConfig, sel: &Selection, key: &Arc<NodeKey>) -> Result<Running> {
    let introducer = introducer_of(cfg)?;
    let storage = sel.storage.as_ref().map(|backend| {
        Arc::new(StorageServer::new(
            backend.clone(),
            ServerConfig {
                reserved_space: cfg.storage.reserved_space,
                readonly: cfg.storage.readonly,
                bucket_timeout: Duration::from_secs(cfg.storage.bucket_timeout_secs),
                max_pending_buckets: cfg.storage.max_pending_buckets,
                max_pending_bytes: cfg.storage.max_pending_bytes,
                ..ServerConfig::default()
            },
        ))
    });
    let web_storage = storage.as_deref().cloned();
    let services = LocalServices {
        storage: storage.clone().map(|s| s as _),
        queen: None,
    };
    let listener = sel
        .transport
        .listen(&cfg.transport.listen, services)
        .await
        .with_context(|| format!("listening on {:?}", cfg.transport.listen))?;
    let address = advertised(cfg, listener.as_ref());
    tracing::info!("client {} listening at {address}", key.node_id());
    let broker = Arc::new(Broker::new(
        sel.transport.clone(),
        introducer,
        Some(cfg.basedir().join(SERVERS_FILE)),
    ));
    let mut tasks = vec![tokio::spawn(broker.clone().subscribe())];
    if let Some(server) = storage.clone() {
        // Buckets nobody writes to give their space back even when no
        // allocation comes to sweep them.
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(30)).await;
                server.expire_idle_uploads();
            }
        }));
    }
    if let Some(server) = storage {
        let (broker, key, nickname, address) = (
            broker.clone(),
            key.clone(),
            cfg.node.nickname.clone(),
            address.clone(),
        );
        let every = Duration::from_secs(cfg.node.announce_interval_secs.max(1));
        tasks.push(tokio::spawn(async move {
            let mut backoff = Duration::from_millis(200);
            loop {
                let space = server.backend().remaining_capacity().await.ok().flatten();
                let body = AnnouncementBody {
                    node_id: key.node_id(),
                    nickname: nickname.clone(),
                    address: address.clone(),
                    available_space: space,
                    version: concat!("tahoe-rs/", env!("CARGO_PKG_VERSION")).into(),
                    seq: now_ms(),
                };
                let sent = async {
                    broker
                        .queen()
                        .await?
                        .announce(broker.grid_secret(), announce::sign(&key, &body)?)
                        .await
                }
                .await;
                match sent {
                    Ok(()) => {
                        backoff = Duration::from_millis(200);
                        tokio::select! {
                            _ = tokio::time::sleep(every) => {}
                            _ = broker.queen_back.notified() => {}
                        }
                    }
                    Err(e) => {
                        tracing::debug!("announcing to the queen failed: {e}");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(10));
                    }
                }
            }
        }));
    }
    if let Some(port) = crate::basedir::web_port(cfg.web.port, cfg.basedir())? {
        let ip: std::net::IpAddr = cfg
            .web
            .bind
            .parse()
            .with_context(|| format!("web.bind = {:?} is not an IP address", cfg.web.bind))?;
        let session = Session::with_broker(cfg.clone(), broker.clone())?;
        let info = crate::web::NodeInfo {
            nickname: cfg.node.nickname.clone(),
            node_id: key.node_id(),
            stale_after: Duration::from_secs(3 * cfg.node.announce_interval_secs.max(1)),
        };
        let (bound, task) =
            crate::web::start((ip, port).into(), &cfg.web, session, info, web_storage).await?;
        tracing::info!("web gateway at http://{bound}/");
        tasks.push(task);
    }
    let (basedir, node_id) = (cfg.basedir().to_path_buf(), key.node_id());
    tasks.push(tokio::spawn(async move {
        loop {
            let known = broker.known();
            write_status(
                &basedir,
                &Status {
                    role: "client".into(),
                    node_id: node_id.clone(),
                    address: address.clone(),
                    queen_connected: Some(broker.queen_connected()),
                    known_servers: known.len(),
                    servers: known.into_iter().map(|b| (b.nickname, b.address)).collect(),
                    pid: std::process::id(),
                },
            );
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }));
    Ok(Running { listener, tasks })
}

/// A client's session without a running node: it reads the node's
/// configuration and secrets, asks the queen for servers (or uses the
/// saved list when the queen is away) and talks to them directly.
pub struct Session {
    cfg: NodeConfig,
    registry: Arc<Registry>,
    sel: Selection,
    broker: Arc<Broker>,
    /// How long to wait for `n` servers to be known before going on with
    /// fewer (a command just started; a running node does not wait).
    server_wait: Duration,
}

impl Session {
    /// Open the session of the client in `basedir`.
    pub async fn open(basedir: &Path) -> Result<Self> {
        let cfg = NodeConfig::load(basedir)?;
        if cfg.node.role != Role::Client {
            bail!(
                "{} is a queen; this command needs a client's base directory",
                basedir.display()
            );
        }
        let introducer = introducer_of(&cfg)?;
        let cache = basedir.join(SERVERS_FILE);
        Self::assemble(cfg, |transport| {
            Arc::new(Broker::new(transport, introducer, Some(cache)))
        })
    }

    /// A session of the node configured by `cfg` learning servers from
    /// `broker`.
    pub fn with_broker(cfg: NodeConfig, broker: Arc<Broker>) -> Result<Self> {
        Self::assemble(cfg, |_| broker)
    }

    fn assemble(
        mut cfg: NodeConfig,
        broker: impl FnOnce(Arc<dyn tahoe_core::protocol::transport::Transport>) -> Arc<Broker>,
    ) -> Result<Self> {
        // A session is a client of the grid, never its storage server: it
        // must not open the node's backend, which may be serving beside it
        // (opening the fs backend clears the unsealed uploads it holds).
        cfg.storage.enabled = false;
        let registry = Arc::new(crate::registry_for(&cfg)?);
        let sel = registry.select(&cfg)?;
        let broker = broker(sel.transport.clone());
        Ok(Session {
            cfg,
            registry,
            sel,
            broker,
            server_wait: Duration::from_secs(5),
        })
    }

    /// The same session, using the servers known at each call without
    /// waiting for more (for a running node, whose broker is up to date).
    pub fn without_waiting(mut self) -> Self {
        self.server_wait = Duration::ZERO;
        self
    }

    /// The node's base directory.
    pub fn basedir(&self) -> &Path {
        self.cfg.basedir()
    }

    /// How many storage servers are up now.
    pub async fn servers_up(&self) -> usize {
        self.broker.servers().await.len()
    }

    async fn servers(&self, want: usize) -> Result<Vec<tahoe_core::client::servers::ServerRef>> {
        if self.server_wait.is_zero() {
            return Ok(self.broker.servers().await);
        }
        if let Err(e) = self.broker.wait_for(want, self.server_wait).await {
            if self.broker.known().is_empty() {
                return Err(e.into());
            }
            tracing::warn!("{e}; using the servers known so far");
        }
        Ok(self.broker.servers().await)
    }

    /// How this node uploads immutable files.
    fn uploader(&self) -> Result<Uploader> {
        Ok(Uploader {
            codec: self.sel.codec.clone(),
            cipher: self.sel.cipher.clone(),
            max_segment_size: self.cfg.encoding.max_segment_size,
            key_mode: KeyMode::Convergent(convergence_secret(self.cfg.basedir())?),
        })
    }

    /// A hasher for the convergent key of an immutable file of `size`
    /// bytes, fed as the bytes arrive, for [`Self::put_with`]; `None` for
    /// files that need no key (LIT).
    pub fn key_hasher(&self, size: u64) -> Result<Option<KeyHasher>> {
        Ok(self.uploader()?.key_hasher(size)?)
    }

    /// An immutable-file client over the servers known now.
    pub async fn immutable_client(&self) -> Result<ImmutableClient> {
        let e = &self.cfg.encoding;
        Ok(ImmutableClient {
            servers: self.servers(usize::from(e.n)).await?,
            uploader: self.uploader()?,
            downloader: Downloader {
                codecs: self.codec_provider(),
                // A CHK cap fixes its cipher, whatever [cipher] says.
                cipher: self.chk_cipher()?,
            },
            happy: e.happy,
            secret: ClientSecret::load_or_create(self.cfg.basedir())?,
        })
    }

    /// Upload and return the cap.
    pub async fn put(&self, source: Arc<dyn Source>) -> Result<Cap> {
        self.put_with(source, None).await
    }

    /// [`Self::put`], with the convergent key from a [`Self::key_hasher`]
    /// fed exactly the bytes of `source`, which the caller owns and does
    /// not change (see `Uploader::upload_with`).
    pub async fn put_with(
        &self,
        source: Arc<dyn Source>,
        key: Option<PrecomputedKey>,
    ) -> Result<Cap> {
        let client = self.immutable_client().await?;
        let reachable = client.servers.len();
        client.put_with(source, key).await.map_err(|err| {
            let known = self.broker.known().len();
            anyhow::Error::new(err).context(format!(
                "{known} storage server(s) known, {reachable} reachable"
            ))
        })
    }

    /// Download `cap` (a range of it) into `out`.
    pub async fn get(
        &self,
        cap: &ChkCap,
        range: std::ops::Range<u64>,
        out: &mut (dyn tokio::io::AsyncWrite + Unpin + Send),
    ) -> Result<DownloadReport> {
        let client = self.immutable_client().await?;
        Ok(client.get(&Cap::Chk(cap.clone()), range, out).await?)
    }

    /// Builds codecs by name for formats that record or fix theirs.
    fn codec_provider(&self) -> Arc<tahoe_core::kinds::codec::CodecProvider> {
        let registry = self.registry.clone();
        let basedir = self.cfg.basedir().to_path_buf();
        Arc::new(move |name: &str, params| {
            registry.codec(
                name,
                params,
                &PluginContext::empty(PluginKind::Codec, name, &basedir),
            )
        })
    }

    /// AES-128-CTR, which CHK, SDMF and MDMF files all fix.
    fn chk_cipher(&self) -> Result<Arc<dyn tahoe_core::kinds::cipher::Cipher>> {
        Ok(self.registry.cipher(
            CHK_CIPHER,
            &PluginContext::empty(PluginKind::Cipher, CHK_CIPHER, self.cfg.basedir()),
        )?)
    }

    /// A mutable-file client over the servers known now, with `keys` as
    /// its source of signing keys.
    pub async fn mutable_client(&self, keys: KeyPool) -> Result<MutableClient> {
        let e = &self.cfg.encoding;
        let servers = self.servers(usize::from(e.n)).await?;
        Ok(MutableClient::new(
            servers,
            self.codec_provider(),
            self.chk_cipher()?,
            ClientSecret::load_or_create(self.cfg.basedir())?,
            keys,
            e.k,
            e.happy,
            e.n,
        )?)
    }

    /// A directory client over the servers known now.
    pub async fn dir_client(&self, keys: KeyPool) -> Result<DirClient> {
        Ok(DirClient {
            mutable: self.mutable_client(keys).await?,
            immutable: self.immutable_client().await?,
        })
    }

    /// Create a mutable file holding `source`.
    pub async fn put_mutable(
        &self,
        format: MutableFormat,
        source: Arc<dyn Source>,
    ) -> Result<SskWriteCap> {
        // The key is made while the servers are found.
        let keygen = tokio::task::spawn_blocking(SigningKey::generate);
        let client = self.mutable_client(KeyPool::new(0)).await?;
        let key = keygen.await.context("key generation")??;
        Ok(client.create_with_key(key, format, source).await?)
    }

    /// Replace the contents of the mutable file `cap`.
    pub async fn overwrite(&self, cap: &SskWriteCap, source: Arc<dyn Source>) -> Result<()> {
        let client = self.mutable_client(KeyPool::new(0)).await?;
        client.overwrite(cap, source).await?;
        Ok(())
    }

    /// Read a range of the mutable file `cap` into `out`.
    pub async fn get_mutable(
        &self,
        cap: &SskReadCap,
        range: std::ops::Range<u64>,
        out: &mut (dyn tokio::io::AsyncWrite + Unpin + Send),
    ) -> Result<ReadReport> {
        let client = self.mutable_client(KeyPool::new(0)).await?;
        Ok(client.read(cap, range, out).await?)
    }

    /// The servers known to this client.
    pub fn known(&self) -> Vec<AnnouncementBody> {
        self.broker.known()
    }

    /// Every known server, whether it is up, and how stale it is.
    pub fn server_statuses(&self) -> Vec<broker::ServerStatus> {
        self.broker.statuses()
    }

    /// The queen's address, and whether the last exchange with it worked.
    pub fn queen(&self) -> (String, bool) {
        (
            self.broker.queen_location().to_string(),
            self.broker.queen_connected(),
        )
    }

    /// The queen's job: publish the empty shared root directory once
    /// enough servers (`encoding.happy`) have announced, retrying until it
    /// is published, and never again after that. An existing root is
    /// never overwritten: creation writes only where no share exists.
    async fn publish_root(self) {
        let basedir = self.cfg.basedir().to_path_buf();
        let key = match std::fs::read_to_string(basedir.join(VDRIVE_KEY_FILE))
            .map_err(anyhow::Error::from)
            .and_then(|pem| Ok(SigningKey::from_pem(&pem)?))
        {
            Ok(k) => k,
            Err(e) => {
                tracing::error!(
                    "cannot publish the shared drive: reading {}: {e:#}",
                    basedir.join(VDRIVE_KEY_FILE).display()
                );
                return;
            }
        };
        let want = usize::from(self.cfg.encoding.happy.min(self.cfg.encoding.n));
        let mut backoff = Duration::from_millis(500);
        loop {
            let attempt = async {
                if self.broker.known().len() < want {
                    bail!(
                        "{} of the {want} storage servers wanted have announced",
                        self.broker.known().len()
                    );
                }
                let client = self.mutable_client(KeyPool::new(0)).await?;
                let cap = key.write_cap(MutableFormat::Sdmf);
                let empty = Arc::new(tahoe_core::client::source::BytesSource(bytes::Bytes::new()));
                match client
                    .create_with_key(key.clone(), MutableFormat::Sdmf, empty)
                    .await
                {
                    Ok(_) => Ok("published"),
                    Err(e) if e.kind() == tahoe_core::ErrorKind::AlreadyExists => {
                        // Published before (by a run that stopped before
                        // noting it): keep what is there.
                        let _ = client.stat(&cap.read_cap()).await?;
                        Ok("found already published")
                    }
                    Err(e) => Err(e.into()),
                }
            }
            .await;
            match attempt {
                Ok(how) => {
                    tracing::info!("the shared drive (the grid's root directory) is {how}");
                    let _ = write_private(&basedir.join(VDRIVE_PUBLISHED_FILE), b"yes\n");
                    return;
                }
                Err(e) => {
                    tracing::info!("the shared drive is not published yet: {e:#}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
    }
}
