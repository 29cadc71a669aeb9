//! The S3 calls, on the file-system core.
//!
//! Each access key sees its own root through its own [`Fs`] (shared by
//! every request signed with that key), so path resolution, cached
//! listings and linking are the same code the FUSE mount and the SFTP
//! server use. What is S3's own lives here: the mapping of keys to paths
//! ([`super::keys`]), the metadata ([`super::meta`]), listings
//! ([`super::list`]), multipart uploads ([`super::multipart`]) and the
//! conditional and ranged reads.

use std::collections::HashMap;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::Stream;
use s3s::crypto::Checksum as _;
use s3s::dto::*;
use s3s::{S3, S3Error, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};
use tahoe_core::client::source::FileSource;
use tahoe_core::format::dirnode::Node;

use super::credentials::Credentials;
use super::keys::{ObjectPath, bucket_path, key_of, object_path};
use super::list::{self, Query};
use super::meta::{ObjectMeta, hex};
use super::multipart::{Upload, Uploads, check_part_number, internal};
use crate::client::GridClient;
use crate::client::chunks;
use crate::fs::{Call, Frontend, Fs, FsConfig, FsError, Journal, Kind, Stat, Transfer};
use crate::web::form::{Guarded, spool};

/// The gateway's state (see the module docs).
pub struct Gateway {
    /// The grid.
    pub grid: Arc<GridClient>,
    /// The keys.
    pub credentials: Arc<Credentials>,
    /// Private (0700) directory for bodies being received.
    pub spool: PathBuf,
    /// Where operations are told.
    pub journal: Arc<dyn Journal>,
    /// Multipart uploads in progress.
    pub uploads: Arc<Uploads>,
    /// The region it answers GetBucketLocation with.
    pub region: String,
    /// Longest wait for more of a request's body.
    pub body_timeout: Duration,
    /// One tree per access key.
    pub trees: Mutex<HashMap<String, Arc<Tree>>>,
}

/// One key's root as a file system, with the lock its structural changes
/// take: a PUT's making of directories and linking, a DELETE's unlinking
/// and removing of the prefixes it leaves empty, and a DeleteBucket. So a
/// PUT never links into a directory a concurrent DELETE is detaching (its
/// object would be answered 200 and be unreachable). Uploads to the grid
/// and reads run outside it. Another front end writing the same
/// directories at once is not serialised with these (docs/s3.md).
pub struct Tree {
    fs: Arc<Fs>,
    links: tokio::sync::Mutex<()>,
}

impl std::ops::Deref for Tree {
    type Target = Fs;
    fn deref(&self) -> &Fs {
        &self.fs
    }
}

/// Tell `log` how a transfer ended.
fn ended<T>(log: &dyn Transfer, r: &S3Result<T>) {
    match r {
        Ok(_) => log.end(Ok(())),
        Err(e) => log.end(Err(&anyhow::anyhow!("{e}"))),
    }
}

/// MD5 of nothing: the ETag of an empty object.
const EMPTY_MD5: &str = "d41d8cd98f00b204e9800998ecf8427e";

impl Gateway {
    /// The access key id that signed `req` (s3s has checked the signature
    /// before the call is made; an unsigned request never gets here).
    fn key_id<T>(req: &S3Request<T>) -> S3Result<String> {
        req.credentials
            .as_ref()
            .map(|c| c.access_key.clone())
            .ok_or_else(|| s3_error!(AccessDenied, "requests must be signed"))
    }

    /// The tree of the key that signed `req`.
    fn fs<T>(&self, req: &S3Request<T>) -> S3Result<Arc<Tree>> {
        let id = Self::key_id(req)?;
        let key = self
            .credentials
            .get(&id)
            .ok_or_else(|| s3_error!(InvalidAccessKeyId))?;
        let mut trees = self.trees.lock().map_err(internal)?;
        Ok(trees
            .entry(id)
            .or_insert_with(|| {
                Arc::new(Tree {
                    fs: Fs::new(
                        self.grid.clone(),
                        key.root.clone(),
                        self.spool.clone(),
                        FsConfig::default(),
                        Frontend::S3,
                        self.journal.clone(),
                    ),
                    links: tokio::sync::Mutex::new(()),
                })
            })
            .clone())
    }

    fn count(&self, call: Call, ok: bool) {
        self.journal.call(Frontend::S3, call, ok);
    }
}

/// The directory of `bucket`, or `NoSuchBucket`.
async fn bucket_dir(fs: &Fs, bucket: &str) -> S3Result<Vec<String>> {
    let path = bucket_path(bucket).map_err(|e| s3_error!(InvalidBucketName, "{e}"))?;
    match fs.stat(&path).await {
        Ok(s) if s.kind == Kind::Dir => Ok(path),
        Ok(_) | Err(FsError::NotFound) => Err(no_such_bucket(bucket)),
        Err(e) => Err(fs_error(e)),
    }
}

fn no_such_bucket(bucket: &str) -> S3Error {
    s3_error!(NoSuchBucket, "no bucket {bucket:?} under this key's root")
}

fn no_such_key() -> S3Error {
    s3_error!(NoSuchKey, "the object does not exist")
}

/// The path of `key` in `bucket` (which must exist).
async fn key_path(fs: &Fs, bucket: &str, key: &str) -> S3Result<ObjectPath> {
    bucket_dir(fs, bucket).await?;
    object_path(bucket, key).map_err(|e| s3_error!(InvalidArgument, "{e}"))
}

/// The object `key` in `bucket`: its path and what it is.
async fn object(fs: &Fs, bucket: &str, key: &str) -> S3Result<(ObjectPath, Stat)> {
    let p = key_path(fs, bucket, key).await?;
    if p.folder {
        return Err(no_such_key());
    }
    match fs.stat(&p.path).await {
        Ok(s) if s.kind == Kind::File && s.node.is_some() => Ok((p, s)),
        Ok(_) | Err(FsError::NotFound | FsError::NotDir) => Err(no_such_key()),
        Err(e) => Err(fs_error(e)),
    }
}

/// A file-system error as S3 says it.
fn fs_error(e: FsError) -> S3Error {
    match e {
        FsError::NotFound => no_such_key(),
        FsError::ReadOnly(why) => s3_error!(AccessDenied, "{why}"),
        FsError::NotDir | FsError::IsDir | FsError::Exists => name_conflict(),
        FsError::NotEmpty => s3_error!(BucketNotEmpty),
        FsError::BadName(why) | FsError::Invalid(why) => s3_error!(InvalidArgument, "{why}"),
        other => {
            tracing::warn!("S3 gateway: {other}");
            unavailable(&other)
        }
    }
}

/// The grid could not do what was asked: `503 ServiceUnavailable`, which
/// clients retry.
fn grid_error(e: &anyhow::Error) -> S3Error {
    unavailable(&format_args!("{e:#}"))
}

fn unavailable(why: &dyn std::fmt::Display) -> S3Error {
    let mut err = s3_error!(ServiceUnavailable, "the grid could not do it: {why}");
    err.set_status_code(hyper::StatusCode::SERVICE_UNAVAILABLE);
    err
}

/// A key that would make a file and a directory of one name.
fn name_conflict() -> S3Error {
    let mut e = S3Error::with_message(
        S3ErrorCode::Custom("ObjectNameConflict".into()),
        "a key here is a path: one name cannot be both an object and a prefix \
         of other keys (`a` and `a/b`)",
    );
    e.set_status_code(hyper::StatusCode::CONFLICT);
    e
}

/// Seconds, as HTTP dates compare.
fn whole_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn seconds_of(t: &Timestamp) -> u64 {
    let t: time::OffsetDateTime = t.clone().into();
    u64::try_from(t.unix_timestamp()).unwrap_or(0)
}

fn etag_matches(cond: &ETagCondition, etag: &str) -> bool {
    match cond.as_etag() {
        None => cond.is_any(),
        Some(e) => e.value() == etag,
    }
}

/// The conditions of a GET or HEAD, as RFC 9110 orders them.
fn check_conditions(
    etag: &str,
    mtime: SystemTime,
    if_match: Option<&ETagCondition>,
    if_none_match: Option<&ETagCondition>,
    if_modified_since: Option<&Timestamp>,
    if_unmodified_since: Option<&Timestamp>,
) -> S3Result<()> {
    let mtime = whole_seconds(mtime);
    let failed = match (if_match, if_unmodified_since) {
        (Some(c), _) => !etag_matches(c, etag),
        (None, Some(t)) => mtime > seconds_of(t),
        (None, None) => false,
    };
    if failed {
        return Err(s3_error!(PreconditionFailed, "a precondition failed"));
    }
    let unchanged = match (if_none_match, if_modified_since) {
        (Some(c), _) => etag_matches(c, etag),
        (None, Some(t)) => mtime <= seconds_of(t),
        (None, None) => false,
    };
    if unchanged {
        let mut e = s3_error!(NotModified);
        e.set_status_code(hyper::StatusCode::NOT_MODIFIED);
        return Err(e);
    }
    Ok(())
}

/// The conditions of a write (`If-Match`, `If-None-Match` on PutObject
/// and CompleteMultipartUpload): checked against the object there now,
/// read afresh, under the tree's lock, just before the link.
#[derive(Default)]
struct Conditions {
    if_match: Option<ETagCondition>,
    if_none_match: Option<ETagCondition>,
}

impl Conditions {
    async fn check(&self, tree: &Tree, path: &[String]) -> S3Result<()> {
        if self.if_match.is_none() && self.if_none_match.is_none() {
            return Ok(());
        }
        if let Some((_, parent)) = path.split_last() {
            tree.forget_under(parent);
        }
        let now = match tree.stat(path).await {
            Ok(s) if s.kind == Kind::File => Some(s),
            Ok(_) | Err(FsError::NotFound | FsError::NotDir) => None,
            Err(e) => return Err(fs_error(e)),
        };
        let etag = now
            .as_ref()
            .map(|s| ObjectMeta::of(s.metadata.as_deref(), s.node.as_ref(), s.version).etag);
        let failed = |why: &str| Err(s3_error!(PreconditionFailed, "{why}"));
        if let Some(c) = &self.if_none_match
            && let Some(e) = &etag
            && etag_matches(c, e)
        {
            return failed("the object exists (If-None-Match)");
        }
        match (&self.if_match, &etag) {
            (Some(_), None) => failed("there is no object to match (If-Match)"),
            (Some(c), Some(e)) if !etag_matches(c, e) => failed("the ETag differs (If-Match)"),
            _ => Ok(()),
        }
    }
}

/// The [`Headers`] of a request's input (PutObject, CopyObject,
/// CreateMultipartUpload: s3s's types, with the same field names).
macro_rules! headers_of {
    ($input:expr) => {
        Headers {
            content_type: $input.content_type,
            content_encoding: $input.content_encoding,
            content_disposition: $input.content_disposition,
            content_language: $input.content_language,
            cache_control: $input.cache_control,
            meta: $input.metadata,
        }
    };
}

/// The S3 headers of an upload.
struct Headers {
    content_type: Option<String>,
    content_encoding: Option<String>,
    content_disposition: Option<String>,
    content_language: Option<String>,
    cache_control: Option<String>,
    meta: Option<s3s::dto::Metadata>,
}

impl Headers {
    fn into_meta(self, etag: String) -> ObjectMeta {
        ObjectMeta {
            etag,
            content_type: self.content_type,
            content_encoding: self.content_encoding,
            content_disposition: self.content_disposition,
            content_language: self.content_language,
            cache_control: self.cache_control,
            meta: self.meta.unwrap_or_default().into_iter().collect(),
            for_cap: String::new(),
        }
    }
}

/// `Content-MD5` as hex, or `InvalidDigest`.
fn content_md5(header: Option<&str>) -> S3Result<Option<String>> {
    use base64::Engine as _;
    let Some(b64) = header else {
        return Ok(None);
    };
    match base64::engine::general_purpose::STANDARD.decode(b64.trim()) {
        Ok(d) if d.len() == 16 => Ok(Some(hex(&d))),
        _ => Err(s3_error!(InvalidDigest, "Content-MD5 is not a base64 MD5")),
    }
}

/// MD5 on a thread of the blocking pool, beside the task that spools the
/// body (and the thread that hashes its convergent key): on two cores the
/// ETag costs no time of its own.
type Md5Worker = tahoe_core::blocking::Beside<[u8; 16]>;

fn md5_worker() -> Md5Worker {
    Md5Worker::start(
        s3s::crypto::Md5::new(),
        |h, piece| h.update(piece),
        |h| h.finalize(),
    )
}

/// A body received into the spool, with its MD5.
struct Received {
    data: crate::web::form::Spooled,
    md5: Option<Md5Worker>,
    want: Option<String>,
}

impl Received {
    /// The body's MD5 (hex), once its thread is done, checked against
    /// the `Content-MD5` sent. A PUT asks for it after the upload to the
    /// grid and before the link: the hashing overlaps the upload, and a
    /// body that does not match links nothing.
    async fn digest(&mut self) -> S3Result<String> {
        let worker = self
            .md5
            .take()
            .ok_or_else(|| internal("the MD5 was taken"))?;
        let md5 = hex(&worker.finish().await.map_err(internal)?);
        if let Some(w) = &self.want
            && *w != md5
        {
            return Err(s3_error!(
                BadDigest,
                "the body's MD5 is not the Content-MD5 sent"
            ));
        }
        Ok(md5)
    }
}

impl Gateway {
    /// Receive `body` into the spool, counting it into `log`, checking it
    /// against `Content-MD5`; for an immutable upload of `len` bytes, its
    /// convergent key too. A body cut short leaves nothing.
    async fn receive(
        &self,
        body: Option<StreamingBlob>,
        len: Option<i64>,
        md5_header: Option<&str>,
        log: &dyn Transfer,
    ) -> S3Result<Received> {
        let want = content_md5(md5_header)?;
        let key = match len.and_then(|l| u64::try_from(l).ok()) {
            Some(l) => self.grid.key_hasher(l).map_err(internal)?,
            None => None,
        };
        let md5 = md5_worker();
        // A chunk whose signature is wrong ends s3s's chunked stream with
        // an error whose type s3s does not export: told by its text.
        let forged = std::sync::atomic::AtomicBool::new(false);
        let data = match body {
            Some(b) => {
                use futures::StreamExt as _;
                let b = b.inspect(|r| {
                    if let Err(e) = r
                        && e.to_string().contains("SignatureMismatch")
                    {
                        forged.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                });
                let stream = Guarded::over(b, self.body_timeout);
                spool(
                    &self.spool,
                    stream,
                    |c| {
                        md5.add(c);
                        log.add(c.len() as u64);
                    },
                    key,
                )
                .await
            }
            None => {
                let empty = futures::stream::empty::<Result<Bytes, std::io::Error>>();
                spool(&self.spool, empty, |_| {}, key).await
            }
        }
        .map_err(|e| {
            if forged.load(std::sync::atomic::Ordering::Relaxed) {
                s3_error!(
                    SignatureDoesNotMatch,
                    "a chunk of the body does not match its signature"
                )
            } else {
                s3_error!(IncompleteBody, "the body did not arrive whole: {e:#}")
            }
        })?;
        // A chunked body can end at a chunk's edge without its last
        // chunk: what came must be what was announced.
        if let Some(announced) = len
            && u64::try_from(announced).ok() != Some(data.len)
        {
            return Err(s3_error!(
                IncompleteBody,
                "{} bytes came of the {announced} announced",
                data.len
            ));
        }
        Ok(Received {
            data,
            md5: Some(md5),
            want,
        })
    }

    /// Upload `source` as an immutable file (linked nowhere yet).
    async fn upload(
        &self,
        source: Arc<dyn tahoe_core::client::source::Source>,
        key: Option<tahoe_core::client::immutable::upload::PrecomputedKey>,
    ) -> S3Result<Node> {
        let cap = self
            .grid
            .put_with(source, key)
            .await
            .map_err(|e| grid_error(&e))?;
        Ok(Node::from_cap(cap))
    }

    /// Link `node` at `path` (making the directories above it) with
    /// `meta`, when what is there now meets `when` (a conditional write).
    async fn link(
        &self,
        tree: &Tree,
        path: &[String],
        node: Node,
        size: u64,
        meta: &ObjectMeta,
        when: &Conditions,
    ) -> S3Result<()> {
        let (_, parent) = path.split_last().ok_or_else(no_such_key)?;
        let _linking = tree.links.lock().await;
        when.check(tree, path).await?;
        tree.mkdir_p(parent).await.map_err(fs_error)?;
        let stat = Stat {
            kind: Kind::File,
            size,
            mtime: SystemTime::now(),
            node: Some(node.clone()),
            writable: true,
            metadata: None,
            version: None,
        };
        let md = meta.clone().describing(&node).to_metadata();
        tree.link(path, node, stat, md).await.map_err(fs_error)
    }

    /// The bytes of the mutable file `node` (`size` of them) as a new
    /// immutable file, and their MD5.
    async fn copy_bytes(&self, tree: &Tree, node: &Node, size: u64) -> S3Result<(Node, String)> {
        let (mut tx, mut rx) = chunks::channel(PIPE_DEPTH, PIPE_CHUNK, Ok::<Bytes, std::io::Error>);
        let (fs, from) = (tree.fs.clone(), node.clone());
        let fetching =
            tokio::spawn(async move { crate::fs::open::fetch(&fs, &from, 0..size, &mut tx).await });
        let stream = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
        let len = i64::try_from(size).map_err(internal)?;
        let got = self
            .receive(
                Some(StreamingBlob::wrap(stream)),
                Some(len),
                None,
                &crate::fs::NoJournal,
            )
            .await;
        match fetching.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(grid_error(&e)),
            Err(e) => return Err(internal(e)),
        }
        let mut got = got?;
        let source = Arc::new(FileSource::open(&got.data.path).map_err(internal)?);
        let copy = self.upload(source, got.data.key).await?;
        Ok((copy, got.digest().await?))
    }

    /// Remove the directories above `path` that are left empty, up to
    /// the bucket: S3 has no empty prefixes. Called with the tree's lock
    /// held; each directory is read afresh before it is removed.
    async fn prune(&self, fs: &Fs, path: &[String]) {
        for depth in (2..path.len()).rev() {
            let dir = &path[..depth];
            fs.forget_under(dir);
            match fs.list(dir).await {
                Ok(e) if e.is_empty() => {
                    if fs.remove(dir, Kind::Dir).await.is_err() {
                        return;
                    }
                }
                _ => return,
            }
        }
    }

    async fn delete(&self, tree: &Tree, bucket: &str, key: &str) -> S3Result<()> {
        let p = key_path(tree, bucket, key).await?;
        let kind = if p.folder { Kind::Dir } else { Kind::File };
        let _unlinking = tree.links.lock().await;
        let fs: &Fs = tree;
        match fs.remove(&p.path, kind).await {
            // Deleting what is not there succeeds, as in S3.
            Ok(()) | Err(FsError::NotFound | FsError::NotDir | FsError::IsDir) => {}
            Err(FsError::NotEmpty) => {}
            Err(e) => return Err(fs_error(e)),
        }
        self.prune(fs, &p.path).await;
        Ok(())
    }
}

/// Chunks held between a download from the grid and what reads it
/// (`crate::client::chunks`): at most 1 MiB.
const PIPE_DEPTH: usize = 8;
const PIPE_CHUNK: usize = 128 << 10;

/// An object's body, streamed from the grid as the client reads it.
struct Body {
    pipe: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
    left: u64,
    log: Option<Box<dyn Transfer>>,
}

impl Body {
    fn new(fs: Arc<Fs>, node: Node, range: std::ops::Range<u64>, log: Box<dyn Transfer>) -> Body {
        let (mut tx, pipe) = chunks::channel(PIPE_DEPTH, PIPE_CHUNK, Ok);
        let left = range.end - range.start;
        tokio::spawn(async move {
            if let Err(e) = crate::fs::open::fetch(&fs, &node, range, &mut tx).await {
                tracing::debug!("S3 GetObject: {e:#}");
            }
        });
        Body {
            pipe,
            left,
            log: Some(log),
        }
    }

    fn end(&mut self, r: Result<(), anyhow::Error>) {
        if let Some(log) = self.log.take() {
            log.end(r.as_ref().map(|_| ()));
        }
    }
}

impl Stream for Body {
    type Item = std::io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        match this.pipe.poll_recv(cx) {
            Poll::Ready(Some(Ok(b))) => {
                this.left = this.left.saturating_sub(b.len() as u64);
                if let Some(log) = &this.log {
                    log.add(b.len() as u64);
                }
                Poll::Ready(Some(Ok(b)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.end(Err(anyhow::anyhow!("{e}")));
                Poll::Ready(Some(Err(e)))
            }
            // The grid stopped before the end: the answer must not look
            // whole, so the stream fails (the connection is cut).
            Poll::Ready(None) if this.left > 0 => {
                this.end(Err(anyhow::anyhow!("the download stopped short")));
                Poll::Ready(Some(Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the grid could not give the whole object",
                ))))
            }
            Poll::Ready(None) => {
                this.end(Ok(()));
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for Body {
    fn drop(&mut self) {
        self.end(Err(anyhow::anyhow!("the client left before the end")));
    }
}

fn s3_object(key: String, stat: &Stat) -> Object {
    let meta = ObjectMeta::of(stat.metadata.as_deref(), stat.node.as_ref(), stat.version);
    Object {
        key: Some(key),
        size: Some(stat.size as i64),
        last_modified: Some(Timestamp::from(stat.mtime)),
        e_tag: Some(ETag::Strong(meta.etag)),
        storage_class: Some(ObjectStorageClass::from_static(
            ObjectStorageClass::STANDARD,
        )),
        ..Object::default()
    }
}

/// `encoding-type=url`: keys in the answer percent-encoded, as S3 does.
fn encoder(encoding: Option<&EncodingType>) -> impl Fn(String) -> String + use<> {
    let url = encoding.is_some_and(|e| e.as_str() == EncodingType::URL);
    move |s: String| {
        if !url {
            return s;
        }
        const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
            .remove(b'-')
            .remove(b'_')
            .remove(b'.')
            .remove(b'~')
            .remove(b'/');
        percent_encoding::utf8_percent_encode(&s, KEEP).to_string()
    }
}

/// A page's objects and common prefixes as both ListObjects answer them.
fn entries(page: list::Page, enc: &impl Fn(String) -> String) -> (Vec<Object>, Vec<CommonPrefix>) {
    let objects = page
        .objects
        .into_iter()
        .map(|(k, s)| s3_object(enc(k), &s))
        .collect();
    let prefixes = page
        .prefixes
        .into_iter()
        .map(|p| CommonPrefix {
            prefix: Some(enc(p)),
        })
        .collect();
    (objects, prefixes)
}

fn token_of(last: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(last)
}

fn token_from(t: &str) -> S3Result<String> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(t)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| s3_error!(InvalidArgument, "the continuation token is not one of ours"))
}

fn max_keys(asked: Option<i32>) -> usize {
    asked.map_or(1000, |n| n.clamp(0, 1000) as usize)
}

#[async_trait::async_trait]
impl S3 for Gateway {
    async fn list_buckets(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        let fs = self.fs(&req)?;
        let entries = fs.list(&[]).await.map_err(fs_error)?;
        let buckets = entries
            .into_iter()
            .filter(|(_, s)| s.kind == Kind::Dir)
            .map(|(name, s)| Bucket {
                name: Some(name),
                creation_date: Some(Timestamp::from(s.mtime)),
                ..Bucket::default()
            })
            .collect();
        Ok(S3Response::new(ListBucketsOutput {
            buckets: Some(buckets),
            owner: Some(Owner {
                display_name: Some("tahoe".into()),
                id: Some("tahoe".into()),
            }),
            ..ListBucketsOutput::default()
        }))
    }

    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        let fs = self.fs(&req)?;
        let bucket = &req.input.bucket;
        let path = bucket_path(bucket).map_err(|e| s3_error!(InvalidBucketName, "{e}"))?;
        match fs.mkdir(&path).await {
            Ok(_) => {}
            Err(FsError::Exists) => {
                return Err(s3_error!(
                    BucketAlreadyOwnedByYou,
                    "{bucket:?} is already in this key's root"
                ));
            }
            Err(e) => return Err(fs_error(e)),
        }
        Ok(S3Response::new(CreateBucketOutput {
            location: Some(format!("/{bucket}")),
        }))
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        let fs = self.fs(&req)?;
        bucket_dir(&fs, &req.input.bucket).await?;
        Ok(S3Response::new(HeadBucketOutput {
            bucket_region: Some(self.region.clone()),
            ..HeadBucketOutput::default()
        }))
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        let fs = self.fs(&req)?;
        bucket_dir(&fs, &req.input.bucket).await?;
        // us-east-1 is said by saying nothing, as S3 does.
        let location = (self.region != "us-east-1")
            .then(|| BucketLocationConstraint::from(self.region.clone()));
        Ok(S3Response::new(GetBucketLocationOutput {
            location_constraint: location,
        }))
    }

    async fn delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        let fs = self.fs(&req)?;
        let path = bucket_dir(&fs, &req.input.bucket).await?;
        let _unlinking = fs.links.lock().await;
        // Empty as the grid says now, not as a listing cached a moment ago.
        fs.forget_under(&path);
        match fs.remove(&path, Kind::Dir).await {
            Ok(()) => Ok(S3Response::new(DeleteBucketOutput::default())),
            Err(FsError::NotEmpty) => Err(s3_error!(
                BucketNotEmpty,
                "the bucket holds objects: delete them first"
            )),
            Err(FsError::NotFound) => Err(no_such_bucket(&req.input.bucket)),
            Err(e) => Err(fs_error(e)),
        }
    }

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let fs = self.fs(&req)?;
        let input = req.input;
        let p = key_path(&fs, &input.bucket, &input.key).await?;
        let name = format!("{}/{}", input.bucket, input.key);
        let log = self.journal.transfer(
            Frontend::S3,
            true,
            &name,
            input.content_length.and_then(|l| u64::try_from(l).ok()),
        );
        let r: S3Result<_> = async {
            let mut got = self
                .receive(
                    input.body,
                    input.content_length,
                    input.content_md5.as_deref(),
                    &*log,
                )
                .await?;
            if p.folder {
                got.digest().await?;
                if got.data.len > 0 {
                    return Err(s3_error!(
                        InvalidArgument,
                        "a key ending in `/` names a folder: it cannot hold bytes"
                    ));
                }
                fs.mkdir_p(&p.path).await.map_err(fs_error)?;
                return Ok(EMPTY_MD5.to_string());
            }
            let headers = headers_of!(input);
            let source = Arc::new(FileSource::open(&got.data.path).map_err(internal)?);
            let size = got.data.len;
            let node = self.upload(source, got.data.key).await?;
            let md5 = got.digest().await?;
            let meta = headers.into_meta(md5.clone());
            let when = Conditions {
                if_match: input.if_match,
                if_none_match: input.if_none_match,
            };
            self.link(&fs, &p.path, node, size, &meta, &when).await?;
            Ok(md5)
        }
        .await;
        self.count(Call::Upload, r.is_ok());
        ended(&*log, &r);
        Ok(S3Response::new(PutObjectOutput {
            e_tag: Some(ETag::Strong(r?)),
            ..PutObjectOutput::default()
        }))
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        let fs = self.fs(&req)?;
        let input = req.input;
        let r: S3Result<_> = async {
            let (p, stat) = object(&fs, &input.bucket, &input.key).await?;
            let meta = ObjectMeta::of(stat.metadata.as_deref(), stat.node.as_ref(), stat.version);
            check_conditions(
                &meta.etag,
                stat.mtime,
                input.if_match.as_ref(),
                input.if_none_match.as_ref(),
                input.if_modified_since.as_ref(),
                input.if_unmodified_since.as_ref(),
            )?;
            let (range, content_range) = match &input.range {
                None => (0..stat.size, None),
                // No byte of an empty object can be asked for (s3s's
                // check lets a suffix range of one through).
                Some(_) if stat.size == 0 => {
                    return Err(s3_error!(InvalidRange, "the object is empty"));
                }
                Some(r) => {
                    let range = r.check(stat.size)?;
                    let shown = format!(
                        "bytes {}-{}/{}",
                        range.start,
                        range.end.saturating_sub(1),
                        stat.size
                    );
                    (range, Some(shown))
                }
            };
            let len = range.end - range.start;
            let node = stat.node.clone().ok_or_else(no_such_key)?;
            let log = self.journal.transfer(
                Frontend::S3,
                false,
                &format!("{}/{}", input.bucket, key_of(&p.path)),
                Some(len),
            );
            let body = Body::new(fs.fs.clone(), node, range, log);
            Ok(GetObjectOutput {
                body: Some(StreamingBlob::wrap(body)),
                content_length: Some(len as i64),
                content_range,
                accept_ranges: Some("bytes".into()),
                last_modified: Some(Timestamp::from(stat.mtime)),
                e_tag: Some(ETag::Strong(meta.etag)),
                content_type: meta.content_type,
                content_encoding: meta.content_encoding,
                content_disposition: meta.content_disposition,
                content_language: meta.content_language,
                cache_control: meta.cache_control,
                metadata: (!meta.meta.is_empty()).then(|| meta.meta.into_iter().collect()),
                ..GetObjectOutput::default()
            })
        }
        .await;
        self.count(Call::Read, r.is_ok());
        Ok(S3Response::new(r?))
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        let fs = self.fs(&req)?;
        let input = req.input;
        let (_, stat) = object(&fs, &input.bucket, &input.key).await?;
        let meta = ObjectMeta::of(stat.metadata.as_deref(), stat.node.as_ref(), stat.version);
        check_conditions(
            &meta.etag,
            stat.mtime,
            input.if_match.as_ref(),
            input.if_none_match.as_ref(),
            input.if_modified_since.as_ref(),
            input.if_unmodified_since.as_ref(),
        )?;
        Ok(S3Response::new(HeadObjectOutput {
            content_length: Some(stat.size as i64),
            accept_ranges: Some("bytes".into()),
            last_modified: Some(Timestamp::from(stat.mtime)),
            e_tag: Some(ETag::Strong(meta.etag)),
            content_type: meta.content_type,
            content_encoding: meta.content_encoding,
            content_disposition: meta.content_disposition,
            content_language: meta.content_language,
            cache_control: meta.cache_control,
            metadata: (!meta.meta.is_empty()).then(|| meta.meta.into_iter().collect()),
            ..HeadObjectOutput::default()
        }))
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        let fs = self.fs(&req)?;
        self.delete(&fs, &req.input.bucket, &req.input.key).await?;
        Ok(S3Response::new(DeleteObjectOutput::default()))
    }

    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let fs = self.fs(&req)?;
        let input = req.input;
        bucket_dir(&fs, &input.bucket).await?;
        if input.delete.objects.len() > 1000 {
            return Err(s3_error!(
                MalformedXML,
                "DeleteObjects takes at most 1,000 keys"
            ));
        }
        let quiet = input.delete.quiet.unwrap_or(false);
        let mut deleted = Vec::new();
        let mut errors = Vec::new();
        for o in input.delete.objects {
            match self.delete(&fs, &input.bucket, &o.key).await {
                Ok(()) if quiet => {}
                Ok(()) => deleted.push(DeletedObject {
                    key: Some(o.key),
                    ..DeletedObject::default()
                }),
                Err(e) => errors.push(Error {
                    code: Some(e.code().as_str().to_string()),
                    message: e.message().map(str::to_string),
                    key: Some(o.key),
                    ..Error::default()
                }),
            }
        }
        Ok(S3Response::new(DeleteObjectsOutput {
            deleted: Some(deleted),
            errors: (!errors.is_empty()).then_some(errors),
            ..DeleteObjectsOutput::default()
        }))
    }

    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        let fs = self.fs(&req)?;
        let input = req.input;
        let CopySource::Bucket {
            bucket: src_bucket,
            key: src_key,
            ..
        } = &input.copy_source
        else {
            return Err(s3_error!(
                NotImplemented,
                "copies from access points are not served"
            ));
        };
        let r: S3Result<_> = async {
            let (_, src) = object(&fs, src_bucket, src_key).await?;
            let dest = key_path(&fs, &input.bucket, &input.key).await?;
            if dest.folder {
                return Err(s3_error!(InvalidArgument, "a copy's key cannot end in `/`"));
            }
            let old = ObjectMeta::of(src.metadata.as_deref(), src.node.as_ref(), src.version);
            let replace = input
                .metadata_directive
                .as_ref()
                .is_some_and(|d| d.as_str() == MetadataDirective::REPLACE);
            let meta = if replace {
                headers_of!(input).into_meta(old.etag.clone())
            } else {
                old.clone()
            };
            let node = src.node.clone().ok_or_else(no_such_key)?;
            // An immutable file is linked again, not copied: same cap,
            // no bytes move. A mutable one changes under its cap, so its
            // bytes are copied into an immutable file of its own.
            let (node, meta) = if crate::s3::meta::is_mutable(Some(&node)) {
                let (copy, md5) = self.copy_bytes(&fs, &node, src.size).await?;
                (copy, ObjectMeta { etag: md5, ..meta })
            } else {
                (node, meta)
            };
            self.link(
                &fs,
                &dest.path,
                node,
                src.size,
                &meta,
                &Conditions::default(),
            )
            .await?;
            Ok(meta.etag)
        }
        .await;
        self.count(Call::Upload, r.is_ok());
        Ok(S3Response::new(CopyObjectOutput {
            copy_object_result: Some(CopyObjectResult {
                e_tag: Some(ETag::Strong(r?)),
                last_modified: Some(Timestamp::from(SystemTime::now())),
                ..CopyObjectResult::default()
            }),
            ..CopyObjectOutput::default()
        }))
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        let fs = self.fs(&req)?;
        let input = req.input;
        bucket_dir(&fs, &input.bucket).await?;
        let after = match (&input.continuation_token, &input.start_after) {
            (Some(t), _) => Some(token_from(t)?),
            (None, Some(s)) => Some(s.clone()),
            (None, None) => None,
        };
        let q = Query {
            prefix: input.prefix.clone().unwrap_or_default(),
            delimiter: input.delimiter.clone().filter(|d| !d.is_empty()),
            after,
            max_keys: max_keys(input.max_keys),
        };
        let page = list::list(&fs, &input.bucket, &q).await.map_err(fs_error)?;
        let enc = encoder(input.encoding_type.as_ref());
        let count = page.objects.len() + page.prefixes.len();
        let next = page
            .truncated
            .then(|| page.last.as_deref().map(token_of))
            .flatten();
        let (truncated, (contents, common_prefixes)) = (page.truncated, entries(page, &enc));
        Ok(S3Response::new(ListObjectsV2Output {
            name: Some(input.bucket),
            prefix: Some(enc(q.prefix)),
            delimiter: input.delimiter.map(&enc),
            start_after: input.start_after.map(&enc),
            max_keys: Some(q.max_keys as i32),
            key_count: Some(count as i32),
            is_truncated: Some(truncated),
            continuation_token: input.continuation_token,
            next_continuation_token: next,
            contents: Some(contents),
            common_prefixes: Some(common_prefixes),
            encoding_type: input.encoding_type,
            ..ListObjectsV2Output::default()
        }))
    }

    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        let fs = self.fs(&req)?;
        let input = req.input;
        bucket_dir(&fs, &input.bucket).await?;
        let q = Query {
            prefix: input.prefix.clone().unwrap_or_default(),
            delimiter: input.delimiter.clone().filter(|d| !d.is_empty()),
            after: input.marker.clone().filter(|m| !m.is_empty()),
            max_keys: max_keys(input.max_keys),
        };
        let page = list::list(&fs, &input.bucket, &q).await.map_err(fs_error)?;
        let enc = encoder(input.encoding_type.as_ref());
        let next_marker = page
            .truncated
            .then(|| page.last.clone().map(&enc))
            .flatten();
        let (truncated, (contents, common_prefixes)) = (page.truncated, entries(page, &enc));
        Ok(S3Response::new(ListObjectsOutput {
            name: Some(input.bucket),
            prefix: Some(enc(q.prefix)),
            delimiter: input.delimiter.map(&enc),
            marker: input.marker.map(&enc),
            next_marker,
            max_keys: Some(q.max_keys as i32),
            is_truncated: Some(truncated),
            contents: Some(contents),
            common_prefixes: Some(common_prefixes),
            encoding_type: input.encoding_type,
            ..ListObjectsOutput::default()
        }))
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let fs = self.fs(&req)?;
        let key_id = Self::key_id(&req)?;
        let input = req.input;
        let p = key_path(&fs, &input.bucket, &input.key).await?;
        if p.folder {
            return Err(s3_error!(
                InvalidArgument,
                "a key ending in `/` names a folder"
            ));
        }
        let up = Upload {
            version: super::multipart::UPLOAD_FORMAT,
            key_id,
            bucket: input.bucket.clone(),
            key: input.key.clone(),
            meta: headers_of!(input).into_meta(String::new()),
            created: whole_seconds(SystemTime::now()),
        };
        let id = self.uploads.create(&up)?;
        // Objects of at least a segment (every multipart one but the
        // smallest) have their key hashed as the parts arrive.
        if let Ok(Some(hasher)) = self.grid.open_key_hasher() {
            self.uploads.fold_with(&id, hasher);
        }
        Ok(S3Response::new(CreateMultipartUploadOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            upload_id: Some(id),
            ..CreateMultipartUploadOutput::default()
        }))
    }

    async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        let key_id = Self::key_id(&req)?;
        let input = req.input;
        let up = self.uploads.open(&key_id, &input.upload_id)?;
        if up.bucket != input.bucket || up.key != input.key {
            return Err(s3_error!(NoSuchUpload, "the upload is for another object"));
        }
        let n = u32::try_from(input.part_number).unwrap_or(0);
        check_part_number(n)?;
        let log = self.journal.transfer(
            Frontend::S3,
            true,
            &format!("{}/{} (part {n})", up.bucket, up.key),
            input.content_length.and_then(|l| u64::try_from(l).ok()),
        );
        let r: S3Result<_> = async {
            // Spooled in the node's spool (the same file system as the
            // uploads, so keeping it is a rename); a body cut short or
            // refused leaves nothing.
            let mut got = self
                .receive(input.body, None, input.content_md5.as_deref(), &*log)
                .await?;
            let md5 = got.digest().await?;
            self.uploads
                .keep_part(&input.upload_id, n, &got.data.path, &md5)?;
            let (uploads, id) = (self.uploads.clone(), input.upload_id.clone());
            tokio::spawn(async move { uploads.fold(&id).await });
            Ok(md5)
        }
        .await;
        self.count(Call::Write, r.is_ok());
        ended(&*log, &r);
        Ok(S3Response::new(UploadPartOutput {
            e_tag: Some(ETag::Strong(r?)),
            ..UploadPartOutput::default()
        }))
    }

    async fn list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        let key_id = Self::key_id(&req)?;
        let input = req.input;
        self.uploads.open(&key_id, &input.upload_id)?;
        let marker = input.part_number_marker.unwrap_or(0);
        let max = input.max_parts.map_or(1000, |m| m.clamp(0, 1000)) as usize;
        let all: Vec<_> = self
            .uploads
            .parts(&input.upload_id)?
            .into_iter()
            .filter(|p| i64::from(p.number) > i64::from(marker))
            .collect();
        let truncated = all.len() > max;
        let parts: Vec<Part> = all
            .into_iter()
            .take(max)
            .map(|p| Part {
                part_number: Some(p.number as i32),
                e_tag: Some(ETag::Strong(p.md5)),
                size: Some(p.size as i64),
                last_modified: Some(Timestamp::from(p.stored)),
                ..Part::default()
            })
            .collect();
        let next = parts.last().and_then(|p| p.part_number);
        Ok(S3Response::new(ListPartsOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            upload_id: Some(input.upload_id),
            part_number_marker: input.part_number_marker,
            next_part_number_marker: truncated.then_some(next).flatten(),
            max_parts: Some(max as i32),
            is_truncated: Some(truncated),
            parts: Some(parts),
            ..ListPartsOutput::default()
        }))
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let fs = self.fs(&req)?;
        let key_id = Self::key_id(&req)?;
        let input = req.input;
        let up = self.uploads.open(&key_id, &input.upload_id)?;
        if up.bucket != input.bucket || up.key != input.key {
            return Err(s3_error!(NoSuchUpload, "the upload is for another object"));
        }
        let wanted: Vec<(u32, String)> = input
            .multipart_upload
            .and_then(|m| m.parts)
            .unwrap_or_default()
            .into_iter()
            .map(|p| {
                (
                    p.part_number
                        .and_then(|n| u32::try_from(n).ok())
                        .unwrap_or(0),
                    p.e_tag.map(|e| e.value().to_string()).unwrap_or_default(),
                )
            })
            .collect();
        let (source, etag) = self.uploads.assemble(&input.upload_id, &wanted)?;
        let key = self.uploads.folded_key(&input.upload_id, &source).await;
        let size = tahoe_core::client::source::Source::size(&source);
        let name = format!("{}/{}", up.bucket, up.key);
        let log = self.journal.transfer(Frontend::S3, true, &name, Some(size));
        let r: S3Result<_> = async {
            let p = key_path(&fs, &up.bucket, &up.key).await?;
            let mut meta = up.meta.clone();
            meta.etag = etag.clone();
            let node = self.upload(Arc::new(source), key).await?;
            let when = Conditions {
                if_match: input.if_match,
                if_none_match: input.if_none_match,
            };
            self.link(&fs, &p.path, node, size, &meta, &when).await
        }
        .await;
        self.count(Call::Upload, r.is_ok());
        match &r {
            Ok(()) => {
                log.add(size);
                log.end(Ok(()));
                let _ = self.uploads.remove(&input.upload_id);
            }
            Err(_) => ended(&*log, &r),
        }
        r?;
        Ok(S3Response::new(CompleteMultipartUploadOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            e_tag: Some(ETag::Strong(etag)),
            location: Some(format!("/{name}")),
            ..CompleteMultipartUploadOutput::default()
        }))
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let key_id = Self::key_id(&req)?;
        let input = req.input;
        self.uploads.open(&key_id, &input.upload_id)?;
        self.uploads.remove(&input.upload_id)?;
        Ok(S3Response::new(AbortMultipartUploadOutput::default()))
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        let fs = self.fs(&req)?;
        let key_id = Self::key_id(&req)?;
        let input = req.input;
        bucket_dir(&fs, &input.bucket).await?;
        let prefix = input.prefix.clone().unwrap_or_default();
        let uploads = self
            .uploads
            .list(&key_id, &input.bucket)
            .into_iter()
            .filter(|(_, u)| u.key.starts_with(&prefix))
            .map(|(id, u)| MultipartUpload {
                key: Some(u.key),
                upload_id: Some(id),
                initiated: Some(Timestamp::from(UNIX_EPOCH + Duration::from_secs(u.created))),
                ..MultipartUpload::default()
            })
            .collect();
        Ok(S3Response::new(ListMultipartUploadsOutput {
            bucket: Some(input.bucket),
            prefix: input.prefix,
            is_truncated: Some(false),
            uploads: Some(uploads),
            ..ListMultipartUploadsOutput::default()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn ts(secs: u64) -> Timestamp {
        Timestamp::from(at(secs))
    }

    fn code(r: S3Result<()>) -> String {
        match r {
            Ok(()) => "ok".into(),
            Err(e) => e.code().as_str().to_string(),
        }
    }

    #[test]
    fn conditions_as_rfc_9110_orders_them() {
        let tag = |t: &str| ETagCondition::ETag(ETag::Strong(t.into()));
        let any = ETagCondition::Any;
        fn c(
            m: Option<&ETagCondition>,
            nm: Option<&ETagCondition>,
            ms: Option<&Timestamp>,
            us: Option<&Timestamp>,
        ) -> String {
            code(check_conditions("e1", at(1000), m, nm, ms, us))
        }
        assert_eq!(c(None, None, None, None), "ok");
        assert_eq!(c(Some(&tag("e1")), None, None, None), "ok");
        assert_eq!(c(Some(&any), None, None, None), "ok");
        assert_eq!(c(Some(&tag("e2")), None, None, None), "PreconditionFailed");
        assert_eq!(c(None, Some(&tag("e1")), None, None), "NotModified");
        assert_eq!(c(None, Some(&tag("e2")), None, None), "ok");
        assert_eq!(c(None, None, Some(&ts(1000)), None), "NotModified");
        assert_eq!(c(None, None, Some(&ts(999)), None), "ok");
        assert_eq!(c(None, None, None, Some(&ts(999))), "PreconditionFailed");
        // If-Match wins over If-Unmodified-Since; If-None-Match over
        // If-Modified-Since.
        assert_eq!(c(Some(&tag("e1")), None, None, Some(&ts(999))), "ok");
        assert_eq!(c(None, Some(&tag("e2")), Some(&ts(2000)), None), "ok");
    }

    #[test]
    fn content_md5_must_be_a_base64_md5() {
        assert_eq!(
            content_md5(Some("1B2M2Y8AsgTpgAmY7PhCfg=="))
                .unwrap()
                .unwrap(),
            EMPTY_MD5
        );
        assert!(content_md5(Some("not base64!")).is_err());
        assert!(content_md5(Some("AAAA")).is_err());
        assert_eq!(content_md5(None).unwrap(), None);
    }
}
