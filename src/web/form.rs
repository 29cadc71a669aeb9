//! A request's arguments: the query string, a form body
//! (`application/x-www-form-urlencoded`) and `multipart/form-data`
//! uploads, whose files are spooled to disk as they arrive.
//!
//! Bounds: a urlencoded body or one multipart text field is at most
//! 64 KiB (more is `413`), a multipart body has at most 64 text fields and
//! 1,000 files, and the headers of one part (with whatever precedes the
//! first) at most 16 KiB. File parts are not bounded here: they are the
//! user's files, streamed to the spool directory, each a new file only
//! its owner can read. Every body must keep coming: a wait of more than
//! `web.body_timeout_secs` for its next piece ends the request.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::Result;
use axum::body::Body;
use axum::http::{HeaderMap, header};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use std::io::Write;
use std::sync::Arc;
use tahoe_core::blocking::{Beside, in_place};
use tahoe_core::client::immutable::upload::{KeyHasher, PrecomputedKey};
use tahoe_core::format::dirnode::Replace;
use tahoe_core::format::ssk::MutableFormat;

use super::error::{bad, too_large};

/// The most bytes of a urlencoded body or one multipart text field.
pub const MAX_FIELD: usize = 64 << 10;
const MAX_FIELDS: usize = 64;
const MAX_FILES: usize = 1000;
/// The most bytes of one part's headers (and of what precedes the first).
const MAX_PART_HEAD: i64 = 16 << 10;

/// `key=value` pairs, query first, then the body's.
#[derive(Debug, Default)]
pub struct Args(pub Vec<(String, String)>);

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// The pairs of a query string or urlencoded body.
pub fn pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

impl Args {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
    pub fn flag(&self, key: &str) -> bool {
        self.get(key).is_some_and(|v| {
            matches!(
                v.to_ascii_lowercase().as_str(),
                "true" | "t" | "1" | "on" | "yes"
            )
        })
    }
    pub fn t(&self) -> &str {
        self.get("t").unwrap_or("")
    }
    pub fn replace(&self, default: Replace) -> Result<Replace> {
        Ok(match self.get("replace") {
            Some(r) => Replace::parse(r)?,
            None => default,
        })
    }
    /// `format=` (or `mutable=true`): `None` for an immutable file.
    pub fn mutable_format(&self) -> Result<Option<MutableFormat>> {
        match self.get("format").map(str::to_ascii_lowercase).as_deref() {
            Some("chk") | Some("") => Ok(None),
            Some(f) => Ok(Some(MutableFormat::parse(f)?)),
            None if self.flag("mutable") => Ok(Some(MutableFormat::Sdmf)),
            None => Ok(None),
        }
    }
}

/// Whether the body is a form of this kind.
fn content_type_is(headers: &HeaderMap, kind: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with(kind))
}

pub fn is_urlencoded(headers: &HeaderMap) -> bool {
    content_type_is(headers, "application/x-www-form-urlencoded")
}

pub fn is_multipart(headers: &HeaderMap) -> bool {
    content_type_is(headers, "multipart/form-data")
}

/// A request body's pieces, each of which must arrive within a timeout,
/// optionally metered (see [`Meter`]).
pub struct Guarded<S = axum::body::BodyDataStream> {
    inner: S,
    timeout: Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
    meter: Option<Arc<Meter>>,
}

impl Guarded {
    /// `body`, whose next piece must come within `timeout` each time.
    pub fn new(body: Body, timeout: Duration) -> Self {
        Guarded::over(body.into_data_stream(), timeout)
    }
}

impl<S> Guarded<S> {
    /// A stream of pieces, each of which must come within `timeout`.
    pub fn over(inner: S, timeout: Duration) -> Self {
        Guarded {
            inner,
            timeout,
            sleep: Box::pin(tokio::time::sleep(timeout)),
            meter: None,
        }
    }
}

impl<S, E> Stream for Guarded<S>
where
    S: Stream<Item = std::result::Result<Bytes, E>> + Unpin,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Item = std::io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        match this.inner.poll_next_unpin(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                let deadline = tokio::time::Instant::now() + this.timeout;
                this.sleep.as_mut().reset(deadline);
                if let Some(m) = &this.meter
                    && !m.take(chunk.len())
                {
                    return Poll::Ready(Some(Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("the headers of a part are longer than {MAX_PART_HEAD} bytes"),
                    ))));
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(std::io::Error::other(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match this.sleep.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no more of the request body came for {:?}", this.timeout),
                )))),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

/// Counts what a multipart parser reads while it looks for a part's
/// headers: the parser buffers all of it until the headers end, so a part
/// whose headers never end must be stopped here.
#[derive(Default)]
struct Meter {
    on: AtomicBool,
    left: AtomicI64,
}

impl Meter {
    fn start(&self) {
        self.left.store(MAX_PART_HEAD, Ordering::Release);
        self.on.store(true, Ordering::Release);
    }
    fn stop(&self) {
        self.on.store(false, Ordering::Release);
    }
    /// Whether `n` more bytes fit.
    fn take(&self, n: usize) -> bool {
        !self.on.load(Ordering::Acquire)
            || self.left.fetch_sub(n as i64, Ordering::AcqRel) - n as i64 >= 0
    }
}

/// Read a body of at most `limit` bytes (`413` beyond).
pub async fn read_body(body: Body, limit: usize, timeout: Duration) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut stream = Guarded::new(body, timeout);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| bad(format!("reading the request body: {e}")))?;
        if out.len() + chunk.len() > limit {
            return Err(too_large("the request body", limit));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// A spooled upload, removed when dropped.
pub struct Spooled {
    pub path: PathBuf,
    pub len: u64,
    /// Its convergent key, hashed as it arrived (when asked for and its
    /// length was known in advance).
    pub key: Option<PrecomputedKey>,
}

impl Drop for Spooled {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Write a stream of chunks to a new file in `dir`, showing each to
/// `seen` (counters, digests) and feeding them to `key` (an immutable
/// upload's convergent key, so that the upload need not read the file
/// twice). The key is hashed on a thread beside this task (one stream of
/// SHA-256, the slowest part of receiving a body, so on two cores the body
/// comes in at the speed of the hash, not of the hash plus the spool), and
/// chunks are written as they came, several per write, never copied. A
/// stream that fails (a client gone, a body cut short) leaves no file
/// behind.
pub async fn spool<E: std::fmt::Display>(
    dir: &Path,
    mut stream: impl Stream<Item = std::result::Result<Bytes, E>> + Unpin,
    mut seen: impl FnMut(&Bytes),
    key: Option<KeyHasher>,
) -> Result<Spooled> {
    let mut r = [0u8; 8];
    getrandom::fill(&mut r).map_err(|e| anyhow::anyhow!("random: {e}"))?;
    let mut spooled = Spooled {
        path: dir.join(format!("upload-{:016x}.tmp", u64::from_le_bytes(r))),
        len: 0,
        key: None,
    };
    // Writes of about 256 KiB, each a page-cache copy done in place on the
    // worker (no hop to the blocking pool per write).
    const BATCH: usize = 256 << 10;
    let path = spooled.path.clone();
    // The plaintext of an upload: a new file (never one planted there),
    // readable by the node's owner only.
    let file = Arc::new(
        in_place(move || {
            use std::os::unix::fs::OpenOptionsExt;
            Ok(std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)?)
        })
        .await?,
    );
    let key = key.map(|k| Beside::start(k, |k, c| k.update(c), KeyHasher::finish));
    let mut batch: Vec<Bytes> = Vec::new();
    let mut batched = 0;
    let write = |batch: Vec<Bytes>| {
        let file = file.clone();
        in_place(move || {
            write_all_vectored(&file, &batch)?;
            Ok(())
        })
    };
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| bad(format!("reading the upload: {e}")))?;
        if let Some(k) = &key {
            k.add(&chunk);
        }
        spooled.len += chunk.len() as u64;
        seen(&chunk);
        batched += chunk.len();
        batch.push(chunk);
        if batched >= BATCH {
            write(std::mem::take(&mut batch)).await?;
            batched = 0;
        }
    }
    write(batch).await?;
    if let Some(k) = key {
        spooled.key = k.finish().await?;
    }
    Ok(spooled)
}

/// Write every chunk of `chunks` to `file`, in order, with as few system
/// calls as the kernel allows.
fn write_all_vectored(mut file: &std::fs::File, chunks: &[Bytes]) -> std::io::Result<()> {
    let mut slices: Vec<std::io::IoSlice<'_>> =
        chunks.iter().map(|c| std::io::IoSlice::new(c)).collect();
    let mut left = &mut slices[..];
    while !left.is_empty() {
        match file.write_vectored(left) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => std::io::IoSlice::advance_slices(&mut left, n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// One file of a multipart form: the name its browser gave and its bytes.
pub struct FormFile {
    pub filename: String,
    pub data: Spooled,
}

/// A multipart parser's error, with what caused it (a part's headers too
/// long, a body that stopped coming).
fn multipart_error(e: multer::Error) -> anyhow::Error {
    let mut msg = format!("a multipart form: {e}");
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        msg.push_str(&format!(": {c}"));
        cause = c.source();
    }
    bad(msg)
}

/// Read a `multipart/form-data` body: text fields go into `args`, file
/// parts (those with a filename) are spooled into `dir`, each tracked by
/// an operation from `begin`.
pub async fn multipart(
    headers: &HeaderMap,
    body: Body,
    timeout: Duration,
    args: &mut Args,
    dir: &Path,
    mut begin: impl FnMut(&str) -> super::ops::Tracked,
) -> Result<Vec<(FormFile, super::ops::Tracked)>> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let boundary = multer::parse_boundary(ct).map_err(|e| bad(format!("a multipart form: {e}")))?;
    let meter = Arc::new(Meter::default());
    let mut stream = Guarded::new(body, timeout);
    stream.meter = Some(meter.clone());
    let mut form = multer::Multipart::new(stream, boundary);
    let mut files = Vec::new();
    let mut fields = 0;
    let mut parts = 0;
    loop {
        meter.start();
        let next = form.next_field().await;
        meter.stop();
        let Some(mut field) = next.map_err(multipart_error)? else {
            break;
        };
        parts += 1;
        if parts > MAX_FIELDS + MAX_FILES {
            return Err(bad(format!(
                "more than {} parts in one form",
                MAX_FIELDS + MAX_FILES
            )));
        }
        let name = field.name().unwrap_or_default().to_string();
        match field.file_name().map(str::to_string) {
            Some(filename) => {
                if filename.is_empty() {
                    // A file input left empty.
                    while field
                        .chunk()
                        .await
                        .map_err(|e| bad(e.to_string()))?
                        .is_some()
                    {}
                    continue;
                }
                if files.len() >= MAX_FILES {
                    return Err(bad(format!("more than {MAX_FILES} files in one form")));
                }
                let tracked = begin(&filename);
                let data = spool(dir, &mut field, |c| tracked.0.add(c.len() as u64), None).await?;
                files.push((FormFile { filename, data }, tracked));
            }
            None => {
                fields += 1;
                if fields > MAX_FIELDS {
                    return Err(bad(format!("more than {MAX_FIELDS} fields in one form")));
                }
                let mut value = Vec::new();
                while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                    if value.len() + chunk.len() > MAX_FIELD {
                        return Err(bad(format!(
                            "form field {name:?} is larger than {MAX_FIELD} bytes"
                        )));
                    }
                    value.extend_from_slice(&chunk);
                }
                let value = String::from_utf8(value)
                    .map_err(|_| bad(format!("form field {name:?} is not UTF-8")))?;
                args.0.push((name, value));
            }
        }
    }
    Ok(files)
}
