//! `/uri` requests: Tahoe-LAFS's web API for files and directories, and
//! the directory and file pages of the UI (docs/web.md lists them all).
//!
//! Arguments come from the query string and, for browsers' forms, from a
//! urlencoded or multipart body. A request with `when_done=PATH` answers
//! `303 See Other` to that path of this gateway once done;
//! `redirect_to_result=true` to the page of what was made.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use anyhow::Result;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use tahoe_core::Error;
use tahoe_core::client::dirnode::{DirClient, split_path};
use tahoe_core::client::source::FileSource;
use tahoe_core::format::cap::{Cap, DirCap, SskWriteCap};
use tahoe_core::format::dirnode::{ChildCap, Metadata, Node, Replace};
use tahoe_core::format::ssk::MutableFormat;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::form::{self, Args, FormFile, Spooled};
use super::ops::{Op, OpKind, Tracked};
use super::stats::ReqKind;
use super::{Gateway, HttpError, bad, html, page, redirect, text};
use crate::client::files::file_cap;
use crate::client::json::{dir_json, node_json};

impl Gateway {
    async fn dirs(&self) -> Result<DirClient> {
        self.session.dir_client(self.keys.clone()).await
    }

    fn begin(&self, kind: OpKind, name: &str, size: Option<u64>) -> Tracked {
        let t = self.ops.begin(kind, name, size);
        t.0.set_servers(self.session.known().len());
        t
    }

    /// Spool a request body; for an `immutable` upload whose length is
    /// known in advance (Content-Length), hash its convergent key on the
    /// way, so the upload reads the spooled file once instead of twice.
    async fn spool_body(&self, body: Body, op: &Tracked, immutable: bool) -> Result<Spooled> {
        use axum::body::HttpBody as _;
        let key = match body.size_hint().exact() {
            Some(len) if immutable => self.session.key_hasher(len)?,
            _ => None,
        };
        let stream = form::Guarded::new(body, self.body_timeout);
        form::spool(&self.spool, stream, &op.0, key).await
    }

    /// Upload a spooled file as `format` (immutable when `None`); its cap.
    async fn store(
        &self,
        data: &Spooled,
        format: Option<MutableFormat>,
        op: &Tracked,
    ) -> Result<Cap> {
        op.0.set_size(data.len);
        let r = async {
            let source = Arc::new(FileSource::open(&data.path)?);
            Ok(match format {
                None => self.session.put_with(source, data.key).await?,
                Some(f) => {
                    let client = self.session.mutable_client(self.keys.clone()).await?;
                    Cap::SskWrite(client.create(f, source).await?)
                }
            })
        }
        .await;
        self.ended(&r, data.len, op);
        r
    }

    /// Replace a mutable file's contents with a spooled file.
    async fn overwrite(&self, cap: &SskWriteCap, data: &Spooled, op: &Tracked) -> Result<()> {
        op.0.set_size(data.len);
        let r = async {
            let source = Arc::new(FileSource::open(&data.path)?);
            self.session.overwrite(cap, source).await
        }
        .await;
        self.ended(&r, data.len, op);
        r
    }

    fn ended<T>(&self, r: &Result<T>, len: u64, op: &Tracked) {
        match r {
            Ok(_) => {
                op.done();
                self.stats.uploaded(len);
            }
            Err(e) => op.failed(e),
        }
    }
}

/// `/uri/CAP/a/b` split into the cap and the names.
pub fn target(path: &str) -> Result<Option<(Cap, Vec<String>)>> {
    let rest = path
        .strip_prefix("/uri")
        .ok_or_else(|| Error::not_found("nothing is served here"))?;
    let rest = rest.trim_start_matches('/');
    if rest.is_empty() {
        return Ok(None);
    }
    let (cap, names) = rest.split_once('/').unwrap_or((rest, ""));
    let cap = percent_encoding::percent_decode_str(cap).decode_utf8_lossy();
    let cap: Cap = cap
        .parse()
        .map_err(|e: Error| e.context("the cap in the URL"))?;
    let names: Vec<String> = names
        .split('/')
        .map(|n| {
            percent_encoding::percent_decode_str(n)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    Ok(Some((cap, split_path(&names.join("/"))?)))
}

fn kind(mut r: Response, kind: ReqKind) -> Response {
    r.extensions_mut().insert(kind);
    r
}

/// The answer to a request that changed something: `body` (with
/// `status`), or a redirect when `when_done=` or `redirect_to_result=`
/// asks for one (`result`: the page of what was made).
fn done(args: &Args, status: StatusCode, body: String, result: Option<String>) -> Result<Response> {
    if let Some(w) = args.get("when_done").filter(|w| !w.is_empty()) {
        return redirect(w);
    }
    if args.flag("redirect_to_result")
        && let Some(url) = result
    {
        return redirect(&url);
    }
    Ok(text(status, body))
}

pub async fn route(gw: &Arc<Gateway>, req: Request, mut args: Args) -> Result<Response> {
    let method = req.method().clone();
    let headers = req.headers().clone();
    let target = target(req.uri().path())?;
    let mut body = req.into_body();
    // Browsers' forms carry their arguments in the body.
    let mut files = Vec::new();
    // The t= values whose body is JSON read it as JSON whatever its
    // Content-Type (curl --data-binary says urlencoded), as Tahoe does.
    let json_body = matches!(
        args.t(),
        "mkdir-with-children" | "mkdir-immutable" | "set_children" | "set-children"
    );
    if method == Method::POST && form::is_urlencoded(&headers) && !json_body {
        let b = form::read_body(body, form::MAX_FIELD, gw.body_timeout).await?;
        args.0.extend(form::pairs(&String::from_utf8_lossy(&b)));
        body = Body::empty();
    } else if method == Method::POST && form::is_multipart(&headers) {
        files = form::multipart(
            &headers,
            body,
            gw.body_timeout,
            &mut args,
            &gw.spool,
            |name| gw.begin(OpKind::Upload, name, None),
        )
        .await?;
        body = Body::empty();
    }
    match (method, target) {
        (Method::PUT, None) => {
            let op = gw.begin(OpKind::Upload, "(PUT /uri)", None);
            let format = args.mutable_format()?;
            let data = gw.spool_body(body, &op, format.is_none()).await?;
            let cap = gw.store(&data, format, &op).await?;
            Ok(kind(text(StatusCode::OK, cap.to_string()), ReqKind::Upload))
        }
        (Method::POST, None) => post_unlinked(gw, &args, body, files).await,
        (Method::GET | Method::HEAD, None) => match args.get("uri") {
            // The welcome page's "open a cap" form.
            Some(cap) => {
                let cap: Cap = cap
                    .trim()
                    .parse()
                    .map_err(|e: Error| e.context("the cap to open"))?;
                redirect(&html::uri_of(&cap.to_string(), &[]))
            }
            None => Err(Error::not_found("GET /uri needs a cap: /uri/CAP").into()),
        },
        (other, None) => Err(bad(format!("{other} /uri is not served"))),
        (method, Some((root, path))) => {
            let dirs = gw.dirs().await?;
            match method {
                Method::GET | Method::HEAD => get(gw, &dirs, root, path, &args, &headers).await,
                Method::PUT => put(gw, &dirs, root, path, &args, body).await,
                Method::POST => post(gw, &dirs, root, path, &args, body, files).await,
                Method::DELETE => {
                    let (dir, name) = parent_of(&dirs, &root, &path).await?;
                    let gone = dirs.remove(&dir, &name).await?;
                    let cap = gone
                        .and_then(|n| n.cap().map(ChildCap::to_string))
                        .unwrap_or_default();
                    Ok(text(StatusCode::OK, cap))
                }
                other => Err(bad(format!("method {other} is not served"))),
            }
        }
    }
}

/// `POST /uri?t=...`: make something linked nowhere; its cap.
async fn post_unlinked(
    gw: &Gateway,
    args: &Args,
    body: Body,
    files: Vec<(FormFile, Tracked)>,
) -> Result<Response> {
    match args.t() {
        "mkdir" | "mkdir-with-children" | "mkdir-immutable" => {
            let cap = make_dir(gw, args, body).await?;
            let url = html::uri_of(&cap, &[]);
            done(args, StatusCode::OK, cap, Some(url))
        }
        "upload" => {
            let format = args.mutable_format()?;
            let mut caps = Vec::new();
            for (f, op) in &files {
                caps.push(gw.store(&f.data, format, op).await?.to_string());
            }
            let first = caps
                .first()
                .ok_or_else(|| bad("t=upload: the form holds no file (field \"file\")"))?;
            let url = format!("{}?t=info", html::uri_of(first, &[]));
            Ok(kind(
                done(args, StatusCode::OK, caps.join("\n"), Some(url))?,
                ReqKind::Upload,
            ))
        }
        other => Err(bad(format!(
            "POST /uri: unknown t={other:?} (expected mkdir, mkdir-with-children, mkdir-immutable or upload)"
        ))),
    }
}

/// A new directory for `t=mkdir`, `mkdir-with-children` (the JSON body's
/// children) or `mkdir-immutable`; its cap.
async fn make_dir(gw: &Gateway, args: &Args, body: Body) -> Result<String> {
    let dirs = gw.dirs().await?;
    let cap = match args.t() {
        "mkdir-immutable" => {
            dirs.create_immutable(read_children(body, gw.body_timeout).await?)
                .await?
        }
        t => {
            let format = args.mutable_format()?.unwrap_or(MutableFormat::Sdmf);
            let children = if t == "mkdir-with-children" {
                read_children(body, gw.body_timeout).await?
            } else {
                Vec::new()
            };
            dirs.create(format, children).await?
        }
    };
    Ok(Cap::Dir(cap).to_string())
}

/// The directory cap a request's path starts from.
fn dir_root(root: &Cap) -> Result<&DirCap> {
    match root {
        Cap::Dir(d) => Ok(d),
        other => Err(bad(format!(
            "the cap in the URL is {} cap, which has no entries",
            other.a_kind()
        ))),
    }
}

/// The directory holding the last name of `path`, and that name.
async fn parent_of(dirs: &DirClient, root: &Cap, path: &[String]) -> Result<(DirCap, String)> {
    let Some((name, parent)) = path.split_last() else {
        return Err(bad("this needs a path to an entry: /uri/DIRCAP/NAME"));
    };
    let root = dir_root(root)?;
    Ok((dirs.resolve_dir(root, parent).await?, name.clone()))
}

async fn resolve(dirs: &DirClient, root: Cap, path: &[String]) -> Result<Node> {
    if path.is_empty() {
        return Ok(Node::from_cap(root));
    }
    let d = dir_root(&root)?;
    Ok(dirs.resolve(d, path).await?)
}

async fn get(
    gw: &Arc<Gateway>,
    dirs: &DirClient,
    root: Cap,
    path: Vec<String>,
    args: &Args,
    headers: &HeaderMap,
) -> Result<Response> {
    let root_text = root.to_string();
    let node = resolve(dirs, root, &path).await?;
    match args.t() {
        "json" => {
            let v = match node.dir_cap() {
                Some(d) => dir_json(&node, &dirs.read(d).await?),
                None => node_json(&node, None),
            };
            Ok(kind(
                text(StatusCode::OK, serde_json::to_string_pretty(&v)? + "\n"),
                ReqKind::Directory,
            ))
        }
        "info" => Ok(page(
            StatusCode::OK,
            html::info(
                path.last().map(String::as_str),
                &node,
                &html::uri_of(&root_text, &path),
            ),
        )),
        "" => match node.dir_cap() {
            Some(d) => {
                let listing = dirs.read(d).await?;
                let page_no = match args.get("page") {
                    Some(p) => p
                        .parse::<usize>()
                        .map_err(|_| bad(format!("page={p:?} is not a page number")))?,
                    None => 1,
                };
                let body = html::directory(&html::DirPage {
                    root: &root_text,
                    path: &path,
                    node: &node,
                    dir: &listing,
                    page: page_no,
                });
                Ok(kind(page(StatusCode::OK, body), ReqKind::Directory))
            }
            None => {
                let cap = file_cap(&node, "the file")?;
                let r = download(gw, cap, path.last().map(String::as_str), args, headers).await?;
                Ok(kind(r, ReqKind::Download))
            }
        },
        other => Err(bad(format!(
            "GET: unknown t={other:?} (expected json or info)"
        ))),
    }
}

/// The download's side of a response body: each write becomes one chunk
/// of the body (a copy of at most `CHUNK` bytes), sent through a channel of
/// a few chunks, so memory stays bounded and the body goes out in the
/// segment-sized pieces the downloader writes rather than in the small
/// reads of a pipe. Bytes sent are counted on the operation. When the
/// client goes away the channel closes and the next write fails, which
/// stops the download.
///
/// The first write (or the download's end, if it writes nothing) is told
/// to whoever waits on [`BodyWriter::new`]'s receiver: the status line is
/// sent only then, so a download that cannot start answers with its error
/// (`410`, `503`) instead of `200` and an empty body.
struct BodyWriter {
    tx: tokio_util::sync::PollSender<std::io::Result<bytes::Bytes>>,
    op: Arc<Op>,
    started: Option<tokio::sync::oneshot::Sender<Result<()>>>,
}

/// Whether the download has started, or how it ended before it did.
type Started = tokio::sync::oneshot::Receiver<Result<()>>;

impl BodyWriter {
    /// Chunks held between the downloader and the connection.
    const DEPTH: usize = 4;
    /// The largest chunk one write makes.
    const CHUNK: usize = 1 << 20;

    /// A writer, the body it feeds, and word of its start.
    fn new(op: Arc<Op>) -> (Self, Body, Started) {
        let (tx, mut rx) = tokio::sync::mpsc::channel(Self::DEPTH);
        let body = Body::from_stream(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)));
        let tx = tokio_util::sync::PollSender::new(tx);
        let (started_tx, started) = tokio::sync::oneshot::channel();
        (
            Self {
                tx,
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

fn closed() -> std::io::Error {
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
        match this.tx.poll_reserve(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(_)) => return Poll::Ready(Err(closed())),
            Poll::Ready(Ok(())) => {}
        }
        let n = buf.len().min(Self::CHUNK);
        this.tx
            .send_item(Ok(bytes::Bytes::copy_from_slice(&buf[..n])))
            .map_err(|_| closed())?;
        this.op.add(n as u64);
        Poll::Ready(Ok(n))
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
enum Wanted {
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
fn parse_range(r: &str, size: u64) -> Wanted {
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
async fn download(
    gw: &Arc<Gateway>,
    cap: Cap,
    name: Option<&str>,
    args: &Args,
    headers: &HeaderMap,
) -> Result<Response> {
    let size = match &cap {
        Cap::Chk(c) => {
            // Fewer servers up than the file needs: nothing to try.
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
    };
    let wanted = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map_or(Wanted::Whole, |r| parse_range(r, size));
    let (start, end) = match wanted {
        Wanted::Whole => (0, size),
        Wanted::Part(a, b) => (a, b),
        Wanted::Unsatisfiable => {
            let mut e = HttpError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                format!("the range asked for is outside the file's {size} bytes"),
            );
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                e.headers.push((header::CONTENT_RANGE, v));
            }
            return Err(e.into());
        }
    };
    let op = gw.begin(
        OpKind::Download,
        name.unwrap_or("(a cap)"),
        Some(end - start),
    );
    let (mut writer, body, started) = BodyWriter::new(op.0.clone());
    let gw2 = gw.clone();
    tokio::spawn(async move {
        let r: Result<()> = async {
            match &cap {
                Cap::Chk(c) => {
                    gw2.session.get(c, start..end, &mut writer).await?;
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
                    gw2.session
                        .get_mutable(&read, start..end, &mut writer)
                        .await?;
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
                gw2.stats.downloaded(end - start);
            }
            (Ok(()), Some(why)) => {
                // Before the first byte: the waiter answers with the error.
                op.failed(&anyhow::anyhow!(why));
            }
            (Err(e), Some(_)) => {
                // The response has started: dropping the writer ends the
                // body short of its Content-Length, which hyper answers by
                // closing the connection, so the client sees it cut short.
                tracing::warn!("a download failed part way: {e:#}");
                op.failed(&e);
            }
        }
    });
    // The status line waits for the first bytes (or the error).
    started
        .await
        .map_err(|_| Error::internal("the download stopped without a word"))??;
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    let mime = if args.flag("save") {
        "application/octet-stream"
    } else {
        guess_type(args.get("filename").or(name))
    };
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    // A stored HTML file must not run script with the gateway's origin.
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
        let encoded = html::enc(filename);
        if let Ok(v) = HeaderValue::from_str(&format!(
            "attachment; filename=\"{}\"; filename*=UTF-8''{encoded}",
            safe.replace(|c: char| !c.is_ascii(), "_")
        )) {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
    }
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

fn guess_type(name: Option<&str>) -> &'static str {
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

/// Link an uploaded file at `name` in `dir`: a mutable file already there
/// is overwritten in place (unless a format is asked for). The cap, and
/// whether the name is new.
async fn place(
    gw: &Gateway,
    dirs: &DirClient,
    dir: &DirCap,
    name: &str,
    data: &Spooled,
    args: &Args,
    op: &Tracked,
) -> Result<(String, bool)> {
    let existing = dirs.read(dir).await?.node(name)?;
    let replace = args.replace(Replace::Always)?;
    // Refused before the upload, not after it.
    match (&existing, replace) {
        (Some(_), Replace::Never) => {
            return Err(Error::already_exists(format!("{name:?} exists and replace=false")).into());
        }
        (Some(e), Replace::OnlyFiles) if e.is_dir() => {
            return Err(Error::already_exists(format!(
                "{name:?} is a directory and replace=only-files"
            ))
            .into());
        }
        _ => {}
    }
    let format = args.mutable_format()?;
    if let (None, Some(Cap::SskWrite(w))) = (format, existing.as_ref().and_then(Node::known)) {
        gw.overwrite(w, data, op).await?;
        return Ok((w.to_string(), false));
    }
    let cap = gw.store(data, format, op).await?;
    let shown = cap.to_string();
    dirs.add(dir, name, Node::from_cap(cap), None, replace)
        .await?;
    Ok((shown, existing.is_none()))
}

async fn put(
    gw: &Gateway,
    dirs: &DirClient,
    root: Cap,
    path: Vec<String>,
    args: &Args,
    body: Body,
) -> Result<Response> {
    if path.is_empty() {
        return match root {
            Cap::SskWrite(w) => {
                let op = gw.begin(OpKind::Upload, "(PUT /uri/FILECAP)", None);
                let data = gw.spool_body(body, &op, false).await?;
                gw.overwrite(&w, &data, &op).await?;
                Ok(kind(
                    text(StatusCode::OK, Cap::SskWrite(w).to_string()),
                    ReqKind::Upload,
                ))
            }
            other => Err(bad(format!(
                "PUT /uri/CAP replaces a mutable file's contents; this is {} cap",
                other.a_kind()
            ))),
        };
    }
    let root_dir = dir_root(&root)?;
    let (name, parent) = path.split_last().expect("not empty");
    let dir = dirs.mkdir_p(root_dir, parent, MutableFormat::Sdmf).await?;
    match args.t() {
        "uri" => {
            let cap_text =
                String::from_utf8(form::read_body(body, 64 << 10, gw.body_timeout).await?)
                    .map_err(|_| bad("the body is not a cap"))?;
            let (shown, created) = attach(dirs, &dir, name, cap_text.trim(), args).await?;
            Ok(text(created_or_ok(created), shown))
        }
        "" => {
            let op = gw.begin(OpKind::Upload, name, None);
            // Immutable unless a mutable format is asked for (or a mutable
            // file is there to overwrite: the key is then not used).
            let immutable = args.mutable_format()?.is_none();
            let data = gw.spool_body(body, &op, immutable).await?;
            let (shown, created) = place(gw, dirs, &dir, name, &data, args, &op).await?;
            Ok(kind(text(created_or_ok(created), shown), ReqKind::Upload))
        }
        other => Err(bad(format!("PUT: unknown t={other:?} (expected uri)"))),
    }
}

fn created_or_ok(created: bool) -> StatusCode {
    if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    }
}

/// Link the cap `cap_text` at `name` in `dir` (`t=uri`).
async fn attach(
    dirs: &DirClient,
    dir: &DirCap,
    name: &str,
    cap_text: &str,
    args: &Args,
) -> Result<(String, bool)> {
    let cap: Cap = cap_text
        .parse()
        .map_err(|e: Error| e.context("the cap to attach"))?;
    let existed = dirs.read(dir).await?.node(name)?.is_some();
    let node = Node::from_cap(cap);
    let shown = node.cap().map(ChildCap::to_string).unwrap_or_default();
    dirs.add(dir, name, node, None, args.replace(Replace::Always)?)
        .await?;
    Ok((shown, !existed))
}

/// The name an uploaded file is linked under: `name=` for a single file,
/// else the browser's file name without any folder.
fn upload_name<'a>(args: &'a Args, f: &'a FormFile, single: bool) -> &'a str {
    match args.get("name").filter(|n| single && !n.is_empty()) {
        Some(n) => n,
        None => f.filename.rsplit(['/', '\\']).next().unwrap_or(&f.filename),
    }
}

async fn post(
    gw: &Gateway,
    dirs: &DirClient,
    root: Cap,
    path: Vec<String>,
    args: &Args,
    body: Body,
    files: Vec<(FormFile, Tracked)>,
) -> Result<Response> {
    let root_text = root.to_string();
    let root_dir = dir_root(&root)?;
    let here = html::uri_of(&root_text, &path);
    match args.t() {
        "upload" => {
            let dir = dirs.resolve_dir(root_dir, &path).await?;
            if files.is_empty() {
                return Err(bad("t=upload: the form holds no file (field \"file\")"));
            }
            let single = files.len() == 1;
            let mut caps = Vec::new();
            for (f, op) in &files {
                let name = upload_name(args, f, single);
                caps.push(place(gw, dirs, &dir, name, &f.data, args, op).await?.0);
            }
            Ok(kind(
                done(args, StatusCode::OK, caps.join("\n"), Some(here))?,
                ReqKind::Upload,
            ))
        }
        "mkdir" | "mkdir-with-children" | "mkdir-immutable" => {
            let made = match (args.get("name"), args.t()) {
                // Make PATH/NAME (or PATH), keeping a directory already there.
                (name, "mkdir") => {
                    let mut full = path.clone();
                    if let Some(n) = name.filter(|n| !n.is_empty()) {
                        full.extend(split_path(n)?);
                    }
                    let format = args.mutable_format()?.unwrap_or(MutableFormat::Sdmf);
                    Cap::Dir(dirs.mkdir_p(root_dir, &full, format).await?).to_string()
                }
                (name, _) => {
                    let (dir, name) = match name.filter(|n| !n.is_empty()) {
                        Some(n) => (dirs.resolve_dir(root_dir, &path).await?, n.to_string()),
                        None => parent_of(dirs, &root, &path).await?,
                    };
                    let cap = make_dir(gw, args, body).await?;
                    attach(dirs, &dir, &name, &cap, args).await?;
                    cap
                }
            };
            let url = html::uri_of(&made, &[]);
            done(args, StatusCode::OK, made, Some(url))
        }
        "uri" => {
            let dir = dirs.resolve_dir(root_dir, &path).await?;
            let name = args.get("name").ok_or_else(|| bad("t=uri needs name="))?;
            let cap = args.get("uri").ok_or_else(|| bad("t=uri needs uri="))?;
            let (shown, _) = attach(dirs, &dir, name, cap.trim(), args).await?;
            done(args, StatusCode::OK, shown, Some(here))
        }
        "set_children" | "set-children" => {
            let dir = dirs.resolve_dir(root_dir, &path).await?;
            let children = read_children(body, gw.body_timeout).await?;
            let replace = args.replace(Replace::Always)?;
            dirs.modify(&dir, move |d, first| {
                for (name, node, md) in &children {
                    let same = !first
                        && d.get(name)
                            .is_some_and(|e| e.read_cap() == node.read.as_ref());
                    if !same {
                        d.set(
                            name,
                            node.clone(),
                            Some(md.clone()),
                            replace,
                            tahoe_core::client::dirnode::now(),
                        )?;
                    }
                }
                Ok(())
            })
            .await?;
            done(args, StatusCode::OK, "Okay so I did it.".into(), None)
        }
        "unlink" | "delete" => {
            let dir = dirs.resolve_dir(root_dir, &path).await?;
            let name = args
                .get("name")
                .ok_or_else(|| bad("t=unlink needs name="))?;
            let gone = dirs.remove(&dir, name).await?;
            let cap = gone
                .and_then(|n| n.cap().map(ChildCap::to_string))
                .unwrap_or_default();
            done(args, StatusCode::OK, cap, Some(here))
        }
        "rename" | "relink" => {
            let dir = dirs.resolve_dir(root_dir, &path).await?;
            let from = args
                .get("from_name")
                .ok_or_else(|| bad("this needs from_name="))?;
            let to_name = args.get("to_name").unwrap_or(from);
            let to_dir = match args.get("to_dir") {
                Some(t) => relink_target(dirs, root_dir, t).await?,
                None => dir.clone(),
            };
            let replace = args.replace(Replace::Always)?;
            dirs.rename(&dir, from, &to_dir, to_name, replace).await?;
            done(args, StatusCode::OK, "OK".into(), Some(here))
        }
        other => Err(bad(format!("POST: unknown t={other:?}"))),
    }
}

/// `to_dir=` of `t=relink`: a directory cap, `/uri/CAP/PATH`, or a path
/// under the directory of the request.
async fn relink_target(dirs: &DirClient, here: &DirCap, to: &str) -> Result<DirCap> {
    let (root, path) = match target(to) {
        Ok(Some((cap, path))) => (cap, path),
        _ if to.starts_with("URI:") => (to.parse::<Cap>()?, Vec::new()),
        _ => (Cap::Dir(here.clone()), split_path(to)?),
    };
    match root {
        Cap::Dir(d) => Ok(dirs.resolve_dir(&d, &path).await?),
        other => Err(bad(format!(
            "to_dir is {} cap, not a directory's",
            other.a_kind()
        ))),
    }
}

/// The most bytes of a JSON body (`mkdir-with-children`,
/// `mkdir-immutable`, `set_children`). Decision: 8 MiB, some 40,000
/// entries; parsed into typed children (metadata kept as JSON text until
/// each entry is built) it stays within a few times its size in memory,
/// where a whole-document parse took 36 times. A larger directory is
/// made in several `set_children` calls.
const MAX_JSON_BODY: usize = 8 << 20;

/// One child as `set_children` and `mkdir-with-children` take it:
/// `["filenode"|"dirnode", {"rw_uri", "ro_uri", "metadata"}]`.
#[derive(serde::Deserialize)]
struct ChildSpec(#[allow(dead_code)] serde::de::IgnoredAny, ChildFields);

#[derive(serde::Deserialize)]
struct ChildFields {
    rw_uri: Option<String>,
    ro_uri: Option<String>,
    metadata: Option<Box<serde_json::value::RawValue>>,
}

/// The children of a JSON body: `{NAME: CHILD, ...}`.
async fn read_children(
    body: Body,
    timeout: std::time::Duration,
) -> Result<Vec<(String, Node, Metadata)>> {
    let bytes = form::read_body(body, MAX_JSON_BODY, timeout).await?;
    let specs: Vec<(String, ChildSpec)> = {
        use serde::de::{Deserializer, MapAccess, Visitor};
        // In body order, as a list: duplicates are the directory's to refuse.
        struct InOrder;
        impl<'de> Visitor<'de> for InOrder {
            type Value = Vec<(String, ChildSpec)>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object of children")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry::<String, ChildSpec>()? {
                    out.push(entry);
                }
                Ok(out)
            }
        }
        serde_json::Deserializer::from_slice(&bytes)
            .deserialize_map(InOrder)
            .map_err(|e| bad(format!("the body is not a JSON object of children: {e}")))?
    };
    drop(bytes);
    specs
        .into_iter()
        .map(|(name, ChildSpec(_, fields))| {
            let cap = |key: &str, v: Option<String>| -> Result<Option<ChildCap>> {
                match v {
                    Some(s) => Ok(ChildCap::parse(&s)
                        .map_err(|e| e.context(format!("child {name:?} {key}")))?),
                    None => Ok(None),
                }
            };
            let node = Node {
                write: cap("rw_uri", fields.rw_uri)?,
                read: cap("ro_uri", fields.ro_uri)?,
            };
            let md: Metadata = match fields.metadata {
                Some(raw) => serde_json::from_str::<Option<Metadata>>(raw.get())
                    .map_err(|_| bad(format!("child {name:?}: metadata must be a JSON object")))?
                    .unwrap_or_default(),
                None => Metadata::default(),
            };
            Ok((name, node, md))
        })
        .collect()
}
