//! Downloads: a file streamed in the downloader's chunks, its status line sent with the first verified byte, one byte range honoured.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use anyhow::Result;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use tahoe_core::Error;
use tahoe_core::format::cap::Cap;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::client::chunks::{self, ChunkWriter};

use super::error::{HttpError, bad};
use super::form::Args;
use super::ops::Tracked;
use super::ops::{Op, OpKind};
use super::state::Gateway;
use super::uri::percent_encode;

/// The download's side of a response body: each write becomes one chunk
/// of the body (a copy of at most `CHUNK` bytes), sent through a channel of
/// a few chunks ([`crate::client::chunks`]), so memory stays bounded and
/// the body goes out in the segment-sized pieces the downloader writes
/// rather than in the small reads of a pipe. Bytes sent are counted on the
/// operation. When the client goes away the channel closes and the next
/// write fails, which stops the download.
///
/// The first write (or the download's end, if it writes nothing) is told
/// to whoever waits on [`BodyWriter::new`]'s receiver: the status line is
/// sent only then, so a download that cannot start answers with its error
/// (`410`, `503`) instead of `200` and an empty body.
pub(super) struct BodyWriter {
    chunks: ChunkWriter<std::io::Result<bytes::Bytes>>,
    op: Arc<Op>,
    started: Option<tokio::sync::oneshot::Sender<Result<()>>>,
}

/// Whether the download has started, or how it ended before it did.
pub(super) type Started = tokio::sync::oneshot::Receiver<Result<()>>;

impl BodyWriter {
    /// Chunks held between the downloader and the connection.
    const DEPTH: usize = 4;
    /// The largest chunk one write makes.
    const CHUNK: usize = 1 << 20;

    /// A writer, the body it feeds, and word of its start.
    fn new(op: Arc<Op>) -> (Self, Body, Started) {
        let (chunks, mut rx) = chunks::channel(Self::DEPTH, Self::CHUNK, Ok);
        let body = Body::from_stream(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)));
        let (started_tx, started) = tokio::sync::oneshot::channel();
        (
            Self {
                chunks,
                op,
                started: Some(started_tx),
            },
            body,
            started,
        )
    }

    /// The download ended: tell the waiter how, if it never started.
    fn ended(&mut self, result: Result<()>) -> Result<()> {
        match self.started.take() {
            Some(s) => {
                let _ = s.send(result);
                Ok(())
            }
            None => result,
        }
    }
}

pub(super) fn closed() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away")
}

impl AsyncWrite for BodyWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if let Some(s) = this.started.take() {
            let _ = s.send(Ok(()));
        }
        match Pin::new(&mut this.chunks).poll_write(cx, buf) {
            Poll::Ready(Ok(n)) => {
                this.op.add(n as u64);
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(_)) => Poll::Ready(Err(closed())),
            Poll::Pending => Poll::Pending,
        }
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        // The body ends when the writer is dropped.
        Poll::Ready(Ok(()))
    }
}

/// What a `Range` header asks of a file of `size` bytes.
#[derive(Debug, PartialEq)]
pub(super) enum Wanted {
    /// The whole file: no range, several ranges (answered whole, as RFC
    /// 9110 allows), or a header that is not a valid byte range (ignored,
    /// as it says).
    Whole,
    /// One range, half-open.
    Part(u64, u64),
    /// A range that starts past the end: `416`.
    Unsatisfiable,
}

/// `bytes=A-B`, `bytes=A-` or `bytes=-N` of a file of `size` bytes.
pub(super) fn parse_range(r: &str, size: u64) -> Wanted {
    let Some(spec) = r.trim().strip_prefix("bytes=") else {
        return Wanted::Whole;
    };
    if spec.contains(',') {
        return Wanted::Whole;
    }
    let Some((a, b)) = spec.split_once('-') else {
        return Wanted::Whole;
    };
    let num = |s: &str| s.trim().parse::<u64>().ok();
    let (start, end) = match (a.trim().is_empty(), b.trim().is_empty()) {
        (true, false) => match num(b) {
            Some(0) => return Wanted::Unsatisfiable,
            Some(n) => (size.saturating_sub(n), size),
            None => return Wanted::Whole,
        },
        (false, true) => match num(a) {
            Some(a) => (a, size),
            None => return Wanted::Whole,
        },
        (false, false) => match (num(a), num(b)) {
            (Some(a), Some(b)) if a <= b => (a, b.saturating_add(1).min(size)),
            _ => return Wanted::Whole,
        },
        (true, true) => return Wanted::Whole,
    };
    if start >= size {
        return Wanted::Unsatisfiable;
    }
    Wanted::Part(start, end)
}

/// Stream a file, honouring a single `Range: bytes=A-B`.
pub(super) async fn download(
    gw: &Arc<Gateway>,
    cap: Cap,
    name: Option<&str>,
    args: &Args,
    headers: &HeaderMap,
) -> Result<Response> {
    let size = file_size(gw, &cap).await?;
    let wanted = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map_or(Wanted::Whole, |r| parse_range(r, size));
    let (start, end) = match wanted {
        Wanted::Whole => (0, size),
        Wanted::Part(a, b) => (a, b),
        Wanted::Unsatisfiable => return Err(unsatisfiable(size)),
    };
    let op = gw.begin(
        OpKind::Download,
        name.unwrap_or("(a cap)"),
        Some(end - start),
    );
    let (writer, body, started) = BodyWriter::new(op.0.clone());
    tokio::spawn(stream(gw.clone(), cap, start..end, writer, op));
    // The status line waits for the first bytes (or the error).
    started
        .await
        .map_err(|_| Error::internal("the download stopped without a word"))??;
    let mut resp = Response::new(body);
    file_headers(resp.headers_mut(), name, args, end - start);
    if let Wanted::Part(..) = wanted {
        *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
        if let Ok(v) =
            HeaderValue::from_str(&format!("bytes {start}-{}/{size}", end.saturating_sub(1)))
        {
            resp.headers_mut().insert(header::CONTENT_RANGE, v);
        }
    }
    Ok(resp)
}

/// A file's size, or why it cannot be read: `503` when fewer servers are
/// up than an immutable file needs, nothing to try.
async fn file_size(gw: &Gateway, cap: &Cap) -> Result<u64> {
    Ok(match cap {
        Cap::Chk(c) => {
            let up = gw.session.servers_up().await;
            if up < usize::from(c.k) {
                return Err(Error::unavailable(format!(
                    "{up} storage server(s) connected, and this file needs {} shares from \
                     distinct servers",
                    c.k
                ))
                .into());
            }
            c.size
        }
        Cap::Lit(l) => l.data.len() as u64,
        Cap::SskWrite(_) | Cap::SskRead(_) => {
            let read = cap.mutable_read_cap().ok_or_else(|| bad("not readable"))?;
            let client = gw.session.mutable_client(gw.keys.clone()).await?;
            client.stat(&read).await?.data_length
        }
        other => return Err(bad(format!("{} cap cannot be downloaded", other.a_kind()))),
    })
}

/// `416`, with the `Content-Range` RFC 9110 asks for.
fn unsatisfiable(size: u64) -> anyhow::Error {
    let mut e = HttpError::new(
        StatusCode::RANGE_NOT_SATISFIABLE,
        format!("the range asked for is outside the file's {size} bytes"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
        e.headers.push((header::CONTENT_RANGE, v));
    }
    e.into()
}

/// Download `range` of `cap` into `writer`, and account for how it ended.
async fn stream(
    gw: Arc<Gateway>,
    cap: Cap,
    range: std::ops::Range<u64>,
    mut writer: BodyWriter,
    op: Tracked,
) {
    let (start, end) = (range.start, range.end);
    let r: Result<()> = async {
        match &cap {
            Cap::Chk(c) => {
                gw.session.get(c, range, &mut writer).await?;
            }
            Cap::Lit(l) => {
                writer
                    .write_all(&l.data[start as usize..end as usize])
                    .await?
            }
            other => {
                let read = other
                    .mutable_read_cap()
                    .ok_or_else(|| bad("not readable"))?;
                gw.session.get_mutable(&read, range, &mut writer).await?;
            }
        }
        Ok(())
    }
    .await;
    let failed = match &r {
        Ok(()) => None,
        Err(e) => Some(format!("{e:#}")),
    };
    match (writer.ended(r), failed) {
        (_, None) => {
            op.done();
            gw.stats.downloaded(end - start);
        }
        (Ok(()), Some(why)) => {
            // Before the first byte: the waiter answers with the error.
            op.failed(&anyhow::anyhow!(why));
        }
        (Err(e), Some(_)) => {
            // The response has started: dropping the writer ends the body
            // short of its Content-Length, which hyper answers by closing
            // the connection, so the client sees it cut short.
            tracing::warn!("a download failed part way: {e:#}");
            op.failed(&e);
        }
    }
}

/// The headers of a file's body: its type, length, that ranges work, a
/// sandbox (a stored HTML file must not run script with the gateway's
/// origin), and a download name when `save=true`.
fn file_headers(h: &mut HeaderMap, name: Option<&str>, args: &Args, len: u64) {
    let mime = if args.flag("save") {
        "application/octet-stream"
    } else {
        guess_type(args.get("filename").or(name))
    };
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox"),
    );
    if args.flag("save") {
        let filename = args.get("filename").or(name).unwrap_or("download");
        let safe: String = filename
            .chars()
            .filter(|c| !c.is_control() && *c != '"' && *c != '\\')
            .collect();
        let encoded = percent_encode(filename);
        if let Ok(v) = HeaderValue::from_str(&format!(
            "attachment; filename=\"{}\"; filename*=UTF-8''{encoded}",
            safe.replace(|c: char| !c.is_ascii(), "_")
        )) {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
    }
}

pub(super) fn guess_type(name: Option<&str>) -> &'static str {
    let ext = name
        .and_then(|n| n.rsplit_once('.'))
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "txt" | "md" => "text/plain",
        "html" | "htm" => "text/html",
        "json" => "application/json",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "pdf" => "application/pdf",
        "" if name.is_none() => "text/plain",
        _ => "application/octet-stream",
    }
}
