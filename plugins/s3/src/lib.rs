//! The `s3` storage backend: shares as objects in an S3 bucket, through
//! `object_store` (request signing, retries with backoff, multipart
//! uploads, conditional puts).
//!
//! Layout under `[storage.s3] prefix`:
//!
//! - `shares/<si>/<shnum>.imm`: a sealed immutable share;
//! - `shares/<si>/<shnum>.mut`: a mutable share;
//! - `claims/<si>/<shnum>`: the seal of an immutable share, made first;
//! - `leases/<si>`: the storage index's leases (JSON);
//! - `format`: `tahoe-rs s3 storage format N`, this layout's version
//!   ([`FORMAT`]), written by the first call that finds none. Checked once
//!   before a node's first call reaches its shares (the node does not wait
//!   for its bucket at start): a newer format is refused by name, each
//!   call failing with it, never misread.
//!
//! Immutable shares: a pending share is a local spool file (writes come
//! in any order). Sealing first creates its claim with a conditional put
//! (`If-None-Match: *`), so that of two writers racing for one share
//! exactly one goes on, then uploads the spool as a multipart upload,
//! which S3 makes visible only when complete: a share appears whole or not
//! at all. A seal runs in a task of its own, so a caller giving up cannot
//! cut it between claim and upload. A node that crashed there leaves a
//! claim without a share, removed when the backend next opens if it is a
//! minute older than that (one node owns a bucket and prefix); an
//! incomplete multipart upload is invisible, and a bucket lifecycle rule
//! for incomplete uploads reclaims its space.
//!
//! Mutable shares and leases change by read, modify and conditional put
//! (`If-Match` the ETag read, or `If-None-Match: *` when absent), retried
//! when another writer won in between: two writers can never both win.
//!
//! Credentials come from the environment (`AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`) or from a TOML file in the
//! base directory (`credentials_file`, default
//! `private/s3-credentials.toml`), never from `tahoe.toml`, and they are
//! never logged.

use std::collections::HashMap;
use std::os::unix::fs::FileExt;
use std::path::{Path as FsPath, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder, S3ConditionalPut};
use object_store::path::Path;
use object_store::{
    ClientOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, RetryConfig,
    UpdateVersion,
};
use serde::Deserialize;
use tahoe_core::error::{Error, ErrorKind, Result};
use tahoe_core::kinds::storage::{
    Lease, PendingShare, ShareInfo, ShareKind, ShareNum, StorageBackend, StorageIndex, TestVector,
    WriteVector, apply_writes, check_pending_write, length_after_writes, merge_lease, read_range,
    tests_hold,
};
use tahoe_core::plugin::registry::{PluginContext, Registry};

pub mod testing;

/// The registry name.
pub const NAME: &str = "s3";

/// Bytes per part of a multipart upload (S3 wants at least 5 MiB for all
/// but the last).
const PART: u64 = 8 << 20;

/// Attempts of a read-modify-write before giving up on a share that other
/// writers keep changing.
const ATTEMPTS: usize = 8;

/// Immutable share sizes remembered (they never change).
const SIZE_CACHE: usize = 65_536;

/// `[storage.s3]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct S3Config {
    /// The bucket (required).
    pub bucket: String,
    /// A key prefix for this node's objects, e.g. `node-1/`.
    pub prefix: String,
    /// The service URL; empty for AWS itself.
    pub endpoint: String,
    /// The region.
    pub region: String,
    /// Allow plain `http://` endpoints (a local test server).
    pub allow_http: bool,
    /// Credentials file, relative to the base directory: TOML with
    /// `access_key_id`, `secret_access_key` and optionally
    /// `session_token`. Used when it exists; else the environment.
    pub credentials_file: PathBuf,
    /// Where pending shares are spooled, relative to the base directory.
    pub spool: PathBuf,
    /// Seconds a request may take before it fails (and is retried).
    pub request_timeout_secs: u64,
    /// Retries of a failed request (with backoff).
    pub max_retries: usize,
}

impl Default for S3Config {
    fn default() -> Self {
        S3Config {
            bucket: String::new(),
            prefix: String::new(),
            endpoint: String::new(),
            region: "us-east-1".to_string(),
            allow_http: false,
            credentials_file: PathBuf::from("private/s3-credentials.toml"),
            spool: PathBuf::from("s3-spool"),
            request_timeout_secs: 30,
            max_retries: 3,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Credentials {
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
}

/// Register the backend.
pub fn register(registry: &mut Registry) -> Result<()> {
    registry.add_storage(
        NAME,
        "S3 buckets (object_store): multipart immutable shares, conditional-put mutable ones",
        |ctx: &PluginContext| {
            let cfg: S3Config = ctx.config.parse()?;
            Ok(Arc::new(S3Backend::open(&cfg, &ctx.basedir)?) as Arc<dyn StorageBackend>)
        },
    )
}

fn store_error(e: object_store::Error) -> Error {
    use object_store::Error as E;
    match e {
        E::NotFound { .. } => Error::not_found("no such object"),
        E::AlreadyExists { .. } => Error::already_exists("the object exists"),
        E::Precondition { .. } => Error::new(ErrorKind::Conflict, "another writer changed it"),
        // Messages name the bucket and key at most, never credentials.
        other => Error::new(ErrorKind::Unavailable, format!("S3: {other}")),
    }
}

fn io(e: std::io::Error) -> Error {
    Error::from(e).context("the S3 backend's spool")
}

/// An S3 bucket (and prefix) holding one node's shares.
pub struct S3Backend(Arc<Inner>);

struct Inner {
    store: AmazonS3,
    prefix: String,
    spool: PathBuf,
    next: AtomicU64,
    /// Immutable share sizes seen (sealed shares never change).
    sizes: Mutex<HashMap<(StorageIndex, ShareNum), u64>>,
    /// Mutable writes and lease changes of this node, one at a time, so
    /// that they rarely race each other (the conditional puts decide).
    changes: tokio::sync::Mutex<()>,
    /// When this backend was opened (older claims without a share are
    /// left by a crash).
    started: chrono::DateTime<chrono::Utc>,
    /// The bucket's format, once checked: `Some(why)` when it is refused.
    format: tokio::sync::OnceCell<Option<String>>,
}

/// The layout's format (see the module's documentation).
pub const FORMAT: u32 = 1;
const FORMAT_PREFIX: &str = "tahoe-rs s3 storage format ";

impl S3Backend {
    /// Connect to the bucket `cfg` names and clear what a crash left.
    pub fn open(cfg: &S3Config, basedir: &FsPath) -> Result<Self> {
        if cfg.bucket.is_empty() {
            return Err(Error::config_invalid(
                "storage.s3.bucket: the bucket to keep shares in is required",
            ));
        }
        // reqwest's rustls has no provider of its own: use ring, as the
        // rest of the node does (an error means one is installed).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut b = AmazonS3Builder::from_env()
            .with_bucket_name(&cfg.bucket)
            .with_region(&cfg.region)
            .with_conditional_put(S3ConditionalPut::ETagMatch)
            .with_retry(RetryConfig {
                max_retries: cfg.max_retries,
                retry_timeout: Duration::from_secs(cfg.request_timeout_secs * 4),
                ..RetryConfig::default()
            })
            .with_client_options(
                ClientOptions::new()
                    .with_timeout(Duration::from_secs(cfg.request_timeout_secs))
                    .with_connect_timeout(Duration::from_secs(10))
                    .with_allow_http(cfg.allow_http),
            );
        if !cfg.endpoint.is_empty() {
            b = b.with_endpoint(&cfg.endpoint);
        }
        let creds = basedir.join(&cfg.credentials_file);
        if creds.exists() {
            let text = std::fs::read_to_string(&creds)
                .map_err(|e| Error::from(e).context(creds.display()))?;
            let c: Credentials = toml::from_str(&text).map_err(|e| {
                Error::config_invalid(format!(
                    "{}: {}",
                    creds.display(),
                    e.message() // the message only: no echo of the values
                ))
            })?;
            b = b
                .with_access_key_id(c.access_key_id)
                .with_secret_access_key(c.secret_access_key);
            if let Some(t) = c.session_token {
                b = b.with_token(t);
            }
        }
        let store = b
            .build()
            .map_err(|e| Error::config_invalid(format!("storage.s3: {e}")))?;
        let spool = basedir.join(&cfg.spool);
        std::fs::create_dir_all(&spool).map_err(io)?;
        for entry in std::fs::read_dir(&spool).map_err(io)? {
            // Pending shares of an earlier run: never sealed.
            let _ = std::fs::remove_file(entry.map_err(io)?.path());
        }
        let inner = Arc::new(Inner {
            store,
            prefix: cfg.prefix.clone(),
            spool,
            next: AtomicU64::new(0),
            sizes: Mutex::new(HashMap::new()),
            changes: tokio::sync::Mutex::new(()),
            started: chrono::Utc::now() - chrono::Duration::seconds(60),
            format: tokio::sync::OnceCell::new(),
        });
        let sweep = inner.clone();
        // Claims without a share: seals a crash cut short. In the
        // background, so a node starts without waiting for its bucket.
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                // A refused format is told by every call instead.
                if sweep.ready().await.is_err() {
                    return;
                }
                let _ = sweep.drop_stale_claims().await;
            });
        }
        Ok(S3Backend(inner))
    }
}

fn ext(kind: ShareKind) -> &'static str {
    match kind {
        ShareKind::Immutable => "imm",
        ShareKind::Mutable => "mut",
    }
}

/// `None` when `bytes` (the `format` object at `path`) names a format
/// this build reads; else why not.
fn format_verdict(path: &Path, bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    let version = text
        .trim()
        .strip_prefix(FORMAT_PREFIX)
        .and_then(|v| v.parse::<u32>().ok());
    match version {
        Some(v) if v <= FORMAT => None,
        Some(v) => Some(format!(
            "the shares under {path} are format {v}, newer than this tahoe reads ({FORMAT}): run the newer tahoe"
        )),
        None => Some(format!(
            "{path} does not name a storage format ({:?})",
            text.trim()
        )),
    }
}

impl Inner {
    /// Whether the bucket's layout is one this build reads: checked once
    /// (a failure to reach the bucket is not remembered, a newer format
    /// is), the `format` object written where there is none.
    async fn ready(&self) -> Result<()> {
        let verdict =
            self.format
                .get_or_try_init(|| async {
                    let path = self.key("format");
                    // Twice at most: a node that loses the race to write the
                    // file reads the winner's.
                    for _ in 0..2 {
                        if let Some((bytes, _)) = self.fetch(&path).await? {
                            return Ok(format_verdict(&path, &bytes));
                        }
                        let line = format!("{FORMAT_PREFIX}{FORMAT}\n");
                        let written = self.put_if(&path, Bytes::from(line), None).await.map_err(
                            |e| match e.kind() {
                                // S3 answers a missing bucket with 404.
                                ErrorKind::NotFound => Error::new(
                                    ErrorKind::Unavailable,
                                    format!("S3: cannot write {path}: no such bucket"),
                                ),
                                _ => e,
                            },
                        )?;
                        if written {
                            return Ok(None);
                        }
                    }
                    Err(Error::new(
                        ErrorKind::Unavailable,
                        format!("S3: {path} neither readable nor writable"),
                    ))
                })
                .await?;
        match verdict {
            None => Ok(()),
            // Unavailable: a client takes this server out of placement.
            Some(why) => Err(Error::new(ErrorKind::Unavailable, why.clone())),
        }
    }

    fn key(&self, rest: &str) -> Path {
        Path::from(format!("{}{rest}", self.prefix))
    }

    fn share(&self, si: &StorageIndex, shnum: ShareNum, kind: ShareKind) -> Path {
        self.key(&format!("shares/{si}/{shnum}.{}", ext(kind)))
    }

    fn claim(&self, si: &StorageIndex, shnum: ShareNum) -> Path {
        self.key(&format!("claims/{si}/{shnum}"))
    }

    fn leases(&self, si: &StorageIndex) -> Path {
        self.key(&format!("leases/{si}"))
    }

    /// The object's size, or `None` when it does not exist.
    async fn size(&self, path: &Path) -> Result<Option<u64>> {
        match self.store.head(path).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(store_error(e)),
        }
    }

    async fn exists(&self, path: &Path) -> Result<bool> {
        Ok(self.size(path).await?.is_some())
    }

    /// The object's bytes and version, or `None` when absent.
    async fn fetch(&self, path: &Path) -> Result<Option<(Bytes, UpdateVersion)>> {
        match self.store.get(path).await {
            Ok(r) => {
                let version = UpdateVersion {
                    e_tag: r.meta.e_tag.clone(),
                    version: r.meta.version.clone(),
                };
                Ok(Some((r.bytes().await.map_err(store_error)?, version)))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(store_error(e)),
        }
    }

    /// Put `data` at `path` only if it is still at `seen` (absent: `None`).
    /// False when another writer changed it first.
    async fn put_if(&self, path: &Path, data: Bytes, seen: Option<UpdateVersion>) -> Result<bool> {
        let mode = match seen {
            Some(v) => PutMode::Update(v),
            None => PutMode::Create,
        };
        let opts = PutOptions {
            mode,
            ..PutOptions::default()
        };
        match self
            .store
            .put_opts(path, PutPayload::from(data), opts)
            .await
        {
            Ok(_) => Ok(true),
            Err(object_store::Error::Precondition { .. })
            | Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(store_error(e)),
        }
    }

    async fn drop_stale_claims(&self) -> Result<()> {
        let mut claims = self.store.list(Some(&self.key("claims/")));
        while let Some(meta) = claims.next().await {
            let meta = meta.map_err(store_error)?;
            let rest = meta
                .location
                .as_ref()
                .strip_prefix(&format!("{}claims/", self.prefix))
                .unwrap_or_default()
                .to_string();
            let share = self.key(&format!("shares/{rest}.imm"));
            // A claim newer than the process may be a seal in progress.
            if meta.last_modified > self.started {
                continue;
            }
            if !self.exists(&share).await? {
                let _ = self.store.delete(&meta.location).await;
            }
        }
        Ok(())
    }

    /// Upload the spool file `file` of `size` bytes as a multipart upload
    /// to `path`.
    async fn upload(&self, path: &Path, file: Arc<std::fs::File>, size: u64) -> Result<()> {
        let mut upload = self.store.put_multipart(path).await.map_err(store_error)?;
        let result: Result<()> = async {
            let mut offset = 0;
            loop {
                let len = PART.min(size - offset);
                let f = file.clone();
                let part = tokio::task::spawn_blocking(move || {
                    let mut buf = vec![0u8; len as usize];
                    f.read_exact_at(&mut buf, offset).map(|_| buf)
                })
                .await
                .map_err(|e| Error::internal(format!("spool read failed: {e}")))?
                .map_err(io)?;
                upload
                    .put_part(PutPayload::from(part))
                    .await
                    .map_err(store_error)?;
                offset += len;
                if offset >= size {
                    break;
                }
            }
            upload.complete().await.map_err(store_error)?;
            Ok(())
        }
        .await;
        if result.is_err() {
            let _ = upload.abort().await;
        }
        result
    }
}

#[async_trait]
impl StorageBackend for S3Backend {
    fn name(&self) -> &str {
        NAME
    }

    async fn create(
        &self,
        si: &StorageIndex,
        shnum: ShareNum,
        size: u64,
    ) -> Result<Box<dyn PendingShare>> {
        self.0.ready().await?;
        let s = &self.0;
        if s.exists(&s.share(si, shnum, ShareKind::Immutable)).await?
            || s.exists(&s.share(si, shnum, ShareKind::Mutable)).await?
        {
            return Err(Error::already_exists(format!(
                "share {shnum} of {si} exists"
            )));
        }
        let n = s.next.fetch_add(1, Ordering::Relaxed);
        let path = s
            .spool
            .join(format!("{si}-{shnum}-{}-{n}", std::process::id()));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io)?;
        file.set_len(size).map_err(io)?;
        Ok(Box::new(S3Pending {
            backend: s.clone(),
            si: *si,
            shnum,
            size,
            path,
            file: Arc::new(file),
        }))
    }

    async fn read(
        &self,
        si: &StorageIndex,
        shnum: ShareNum,
        kind: ShareKind,
        offset: u64,
        len: u64,
    ) -> Result<Bytes> {
        self.0.ready().await?;
        let s = &self.0;
        let path = s.share(si, shnum, kind);
        let cached = match kind {
            ShareKind::Immutable => s
                .sizes
                .lock()
                .map_err(|_| Error::internal("size cache poisoned"))?
                .get(&(*si, shnum))
                .copied(),
            ShareKind::Mutable => None,
        };
        let size = match cached {
            Some(size) => size,
            None => {
                let size = s
                    .size(&path)
                    .await?
                    .ok_or_else(|| Error::not_found(format!("share {shnum} of {si}")))?;
                if kind == ShareKind::Immutable {
                    let mut sizes = s
                        .sizes
                        .lock()
                        .map_err(|_| Error::internal("size cache poisoned"))?;
                    if sizes.len() >= SIZE_CACHE {
                        sizes.clear();
                    }
                    sizes.insert((*si, shnum), size);
                }
                size
            }
        };
        let r = read_range(size, offset, len);
        if r.is_empty() {
            return Ok(Bytes::new());
        }
        match s.store.get_range(&path, r).await {
            Ok(b) => Ok(b),
            Err(object_store::Error::NotFound { .. }) => {
                // Deleted since its size was cached.
                if let Ok(mut sizes) = s.sizes.lock() {
                    sizes.remove(&(*si, shnum));
                }
                Err(Error::not_found(format!("share {shnum} of {si}")))
            }
            Err(e) => Err(store_error(e)),
        }
    }

    async fn list(&self, si: &StorageIndex) -> Result<Vec<ShareInfo>> {
        self.0.ready().await?;
        let s = &self.0;
        let prefix = format!("{}shares/{si}/", s.prefix);
        let mut objects = s.store.list(Some(&Path::from(prefix.clone())));
        let mut out = Vec::new();
        while let Some(meta) = objects.next().await {
            let meta = meta.map_err(store_error)?;
            let name = meta.location.as_ref().strip_prefix(&prefix).unwrap_or("");
            let Some((num, e)) = name.split_once('.') else {
                continue;
            };
            let kind = match e {
                "imm" => ShareKind::Immutable,
                "mut" => ShareKind::Mutable,
                _ => continue,
            };
            if let Ok(shnum) = num.parse() {
                out.push(ShareInfo {
                    shnum,
                    size: meta.size,
                    kind,
                });
            }
        }
        out.sort_by_key(|i| i.shnum);
        Ok(out)
    }

    async fn delete(&self, si: &StorageIndex, shnum: ShareNum) -> Result<()> {
        self.0.ready().await?;
        let s = &self.0;
        let imm = s.share(si, shnum, ShareKind::Immutable);
        if s.exists(&imm).await? {
            s.store.delete(&imm).await.map_err(store_error)?;
            if let Ok(mut sizes) = s.sizes.lock() {
                sizes.remove(&(*si, shnum));
            }
            s.store
                .delete(&s.claim(si, shnum))
                .await
                .map_err(store_error)?;
        } else {
            let _guard = s.changes.lock().await;
            let m = s.share(si, shnum, ShareKind::Mutable);
            if !s.exists(&m).await? {
                return Err(Error::not_found(format!("share {shnum} of {si}")));
            }
            s.store.delete(&m).await.map_err(store_error)?;
        }
        // The leases go with the last share.
        if self.list(si).await?.is_empty() {
            let _guard = s.changes.lock().await;
            match s.store.delete(&s.leases(si)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(store_error(e)),
            }
        }
        Ok(())
    }

    /// In the order of the object keys (S3 lists keys sorted), one
    /// listing request per thousand shares.
    async fn storage_indexes(
        &self,
        after: Option<&StorageIndex>,
        limit: usize,
    ) -> Result<Option<Vec<StorageIndex>>> {
        self.0.ready().await?;
        let s = &self.0;
        let prefix = format!("{}shares/", s.prefix);
        let mut objects = match after {
            // Past every share key of `after` ("~" sorts after the
            // share numbers) and before the next index's.
            Some(a) => s.store.list_with_offset(
                Some(&Path::from(prefix.clone())),
                &Path::from(format!("{prefix}{a}/~")),
            ),
            None => s.store.list(Some(&Path::from(prefix.clone()))),
        };
        let mut out: Vec<StorageIndex> = Vec::new();
        while let Some(meta) = objects.next().await {
            let meta = meta.map_err(store_error)?;
            let name = meta.location.as_ref().strip_prefix(&prefix).unwrap_or("");
            let Some(Ok(si)) = name
                .split_once('/')
                .map(|(si, _)| si.parse::<StorageIndex>())
            else {
                continue;
            };
            if out.last() == Some(&si) || after == Some(&si) {
                continue;
            }
            if out.len() == limit {
                break;
            }
            out.push(si);
        }
        Ok(Some(out))
    }

    async fn remaining_capacity(&self) -> Result<Option<u64>> {
        Ok(None) // a bucket has no size to tell
    }

    async fn test_and_write(
        &self,
        si: &StorageIndex,
        shnum: ShareNum,
        tests: &[TestVector],
        writes: &[WriteVector],
        new_length: Option<u64>,
    ) -> Result<bool> {
        self.0.ready().await?;
        length_after_writes(0, writes, new_length)?;
        let s = &self.0;
        let _guard = s.changes.lock().await;
        if s.exists(&s.share(si, shnum, ShareKind::Immutable)).await? {
            return Err(Error::already_exists(format!(
                "share {shnum} of {si} is immutable"
            )));
        }
        let path = s.share(si, shnum, ShareKind::Mutable);
        for _ in 0..ATTEMPTS {
            let (current, seen) = match s.fetch(&path).await? {
                Some((b, v)) => (b.to_vec(), Some(v)),
                None => (Vec::new(), None),
            };
            if !tests_hold(&current, tests) {
                return Ok(false);
            }
            let mut data = current;
            apply_writes(&mut data, writes, new_length)?; // checks the sizes against the share's

            if seen.is_none() && data.is_empty() {
                return Ok(true); // nothing to create
            }
            if s.put_if(&path, Bytes::from(data), seen).await? {
                return Ok(true);
            }
            // Another node's writer won: read again and test again.
        }
        Err(Error::new(
            ErrorKind::Conflict,
            format!("share {shnum} of {si} kept changing under {ATTEMPTS} attempts"),
        ))
    }

    async fn add_lease(&self, si: &StorageIndex, lease: &Lease) -> Result<()> {
        self.0.ready().await?;
        let s = &self.0;
        if self.list(si).await?.is_empty() {
            return Err(Error::not_found(format!("no shares of {si} to lease")));
        }
        let _guard = s.changes.lock().await;
        let path = s.leases(si);
        for _ in 0..ATTEMPTS {
            let (mut leases, seen): (Vec<Lease>, _) = match s.fetch(&path).await? {
                Some((b, v)) => (decode_leases(si, &b)?, Some(v)),
                None => (Vec::new(), None),
            };
            if !merge_lease(&mut leases, lease) {
                return Ok(());
            }
            let body = serde_json::to_vec(&leases).map_err(|e| Error::internal(e.to_string()))?;
            if s.put_if(&path, Bytes::from(body), seen).await? {
                return Ok(());
            }
        }
        Err(Error::new(
            ErrorKind::Conflict,
            format!("the leases of {si} kept changing"),
        ))
    }

    async fn leases(&self, si: &StorageIndex) -> Result<Vec<Lease>> {
        self.0.ready().await?;
        match self.0.fetch(&self.0.leases(si)).await? {
            Some((b, _)) => decode_leases(si, &b),
            None => Ok(Vec::new()),
        }
    }
}

/// The leases object of `si`.
fn decode_leases(si: &StorageIndex, bytes: &[u8]) -> Result<Vec<Lease>> {
    serde_json::from_slice(bytes).map_err(|e| Error::corrupt(format!("leases of {si}: {e}")))
}

/// A pending immutable share: a spool file until sealed.
struct S3Pending {
    backend: Arc<Inner>,
    si: StorageIndex,
    shnum: ShareNum,
    size: u64,
    path: PathBuf,
    file: Arc<std::fs::File>,
}

#[async_trait]
impl PendingShare for S3Pending {
    async fn write(&mut self, offset: u64, data: Bytes) -> Result<()> {
        check_pending_write(self.size, offset, data.len())?;
        let f = self.file.clone();
        tokio::task::spawn_blocking(move || f.write_all_at(&data, offset))
            .await
            .map_err(|e| Error::internal(format!("spool write failed: {e}")))?
            .map_err(io)
    }

    async fn seal(self: Box<Self>) -> Result<()> {
        // In a task of its own: a caller that gives up (a call deadline, a
        // client gone) must not cut a seal between its claim and its
        // upload, which would leave a claim without a share.
        tokio::spawn(async move {
            let s = &self.backend;
            let (si, shnum) = (self.si, self.shnum);
            if s.exists(&s.share(&si, shnum, ShareKind::Mutable)).await? {
                return Err(Error::already_exists(format!(
                    "share {shnum} of {si} is mutable"
                )));
            }
            // The claim decides which of racing writers goes on.
            let claim = s.claim(&si, shnum);
            if !s.put_if(&claim, Bytes::new(), None).await? {
                return Err(Error::already_exists(format!(
                    "share {shnum} of {si} was sealed by another writer"
                )));
            }
            let share = s.share(&si, shnum, ShareKind::Immutable);
            let result = s.upload(&share, self.file.clone(), self.size).await;
            if result.is_err() {
                let _ = s.store.delete(&claim).await;
            }
            result
        })
        .await
        .map_err(|e| Error::internal(format!("seal task failed: {e}")))?
    }

    async fn abort(self: Box<Self>) -> Result<()> {
        Ok(()) // dropping removes the spool file
    }
}

impl Drop for S3Pending {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
