//! A client's handle on the grid: what it knows of the servers (its
//! [broker](crate::client::broker::Broker)), its plugins and secrets, and the file
//! clients it makes for each operation.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tahoe_core::client::check::repair::RepairTools;
use tahoe_core::client::check::{CheckResults, CheckTarget, Checker, RepairResults};
use tahoe_core::client::dirnode::DirClient;
use tahoe_core::client::immutable::KeyMode;
use tahoe_core::client::immutable::client::ImmutableClient;
use tahoe_core::client::immutable::download::{DownloadReport, Downloader};
use tahoe_core::client::immutable::upload::{KeyHasher, PrecomputedKey, Uploader};
use tahoe_core::client::mutable::contents::Contents;
use tahoe_core::client::mutable::file::MutableClient;
use tahoe_core::client::mutable::key_pool::KeyPool;
use tahoe_core::client::mutable::retrieve::ReadReport;
use tahoe_core::client::mutable::rsa::SigningKey;
use tahoe_core::client::secrets::ClientSecret;
use tahoe_core::client::source::Source;
use tahoe_core::format::cap::{Cap, ChkCap, SskReadCap, SskWriteCap};
use tahoe_core::format::chk::CHK_CIPHER;
use tahoe_core::format::ssk::MutableFormat;
use tahoe_core::plugin::config::{NodeConfig, Role};
use tahoe_core::plugin::registry::{PluginContext, PluginKind, Registry, Selection};

use crate::basedir::{SERVERS_FILE, convergence_secret, introducer_of};
use crate::client::broker::{self, Broker};
use tahoe_core::protocol::announce::AnnouncementBody;

/// What a check does besides asking which shares the servers hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Checking {
    /// Read every share whole and check every hash.
    pub verify: bool,
    /// Add or renew this node's lease on every server holding shares.
    pub add_lease: bool,
}

/// A client's session without a running node: it reads the node's
/// configuration and secrets, asks the queen for servers (or uses the
/// saved list when the queen is away) and talks to them directly.
pub struct GridClient {
    cfg: NodeConfig,
    registry: Arc<Registry>,
    sel: Selection,
    broker: Arc<Broker>,
    /// How long to wait for `n` servers to be known before going on with
    /// fewer (a command just started; a running node does not wait).
    server_wait: Duration,
    /// The plaintext of mutable versions just read or written, shared by
    /// every mutable client this session makes.
    contents: Arc<Contents>,
    /// RSA keys ready for the directories and mutable files made through
    /// the file-system front ends (see [`Self::fs_keys`]).
    fs_keys: std::sync::OnceLock<KeyPool>,
}

impl GridClient {
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
        let registry = Arc::new(crate::plugins::registry_for(&cfg)?);
        let sel = registry.select(&cfg)?;
        let broker = broker(sel.transport.clone());
        Ok(GridClient {
            cfg,
            registry,
            sel,
            broker,
            server_wait: Duration::from_secs(5),
            contents: Arc::default(),
            fs_keys: std::sync::OnceLock::new(),
        })
    }

    /// The pool of RSA keys shared by every file system of this session
    /// (`tahoe mount`, each SFTP account, each S3 key), made on the first
    /// call. One key is kept ready.
    ///
    /// Decision: one pool for the session, made on first use, not one per
    /// file system. An SFTP account's file system lives as long as its
    /// sessions, so a pool of its own was made again by every login, and
    /// each started an RSA-2048 key generation (about 0.1 s of CPU, at
    /// idle priority) whether or not the session would make a directory:
    /// 16% of the gateway's CPU samples during an `sftp put` of 128 MiB.
    pub fn fs_keys(&self) -> KeyPool {
        self.fs_keys.get_or_init(|| KeyPool::new(1)).clone()
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

    /// Check the file `cap` names (a directory: the file holding its
    /// entries) against the servers up now, reading and verifying every
    /// share with `verify`: `None` for a literal file, healthy by
    /// definition. See [`tahoe_core::client::check`].
    pub async fn check(&self, cap: &Cap, how: Checking) -> Result<Option<CheckResults>> {
        let checker = self.checker(how).await?;
        Ok(checker.check(&CheckTarget::of(cap), how.verify).await)
    }

    /// A checker over the servers up now, adding this node's lease when
    /// `how` says so.
    async fn checker(&self, how: Checking) -> Result<Checker> {
        let servers = self.servers(usize::from(self.cfg.encoding.n)).await?;
        Ok(Checker {
            add_lease: match how.add_lease {
                true => Some(ClientSecret::load_or_create(self.cfg.basedir())?),
                false => None,
            },
            ..Checker::new(servers, self.codec_provider())
        })
    }

    /// Check the file `cap` names and repair it when fewer than
    /// `threshold` (default: the node's `happy`) of its good shares are on
    /// distinct servers: `None` for a literal file. A mutable file or
    /// directory is repaired with its write cap, when `cap` is one (see
    /// [`tahoe_core::client::check::Checker::check_and_repair`]).
    pub async fn check_and_repair(
        &self,
        cap: &Cap,
        how: Checking,
        threshold: Option<usize>,
    ) -> Result<Option<RepairResults>> {
        let target = CheckTarget::of(cap);
        let spool_dir = self.cfg.basedir().join(crate::basedir::SPOOL_DIR);
        crate::basedir::private_dir(&spool_dir)?;
        let tools = RepairTools {
            downloader: Downloader {
                codecs: self.codec_provider(),
                cipher: self.sel.cipher.clone(),
            },
            secret: ClientSecret::load_or_create(self.cfg.basedir())?,
            spool_dir,
            mutable: Some(self.mutable_client(KeyPool::new(0)).await?),
        };
        // A mutable file (or directory) is republished with its write cap.
        let write = cap.mutable_write_cap();
        let checker = self.checker(how).await?;
        let threshold = threshold.unwrap_or(usize::from(self.cfg.encoding.happy));
        Ok(checker
            .check_and_repair(&target, write.as_ref(), how.verify, threshold, &tools)
            .await)
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

    /// A hasher for the convergent key of an immutable file whose size is
    /// known only at its end (see `Uploader::open_key_hasher`).
    pub fn open_key_hasher(&self) -> Result<Option<KeyHasher>> {
        Ok(self.uploader()?.open_key_hasher()?)
    }

    /// An immutable-file client over the servers known now.
    async fn immutable_client(&self) -> Result<ImmutableClient> {
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
        let mut client = MutableClient::new(
            servers,
            self.codec_provider(),
            self.chk_cipher()?,
            ClientSecret::load_or_create(self.cfg.basedir())?,
            keys,
            e.k,
            e.happy,
            e.n,
        )?;
        client.contents = self.contents.clone();
        Ok(client)
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

    /// The node's configuration.
    pub fn config(&self) -> &NodeConfig {
        &self.cfg
    }
}
