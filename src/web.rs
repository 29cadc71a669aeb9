//! The web gateway: the part of Tahoe-LAFS's web API (`docs/frontends/
//! webapi.rst`) that its `tahoe` CLI and common scripts use, served by a
//! running client node on `web.port` (or the port in `BASEDIR/webport`),
//! bound to `web.bind` (127.0.0.1 by default), through the node's own
//! long-lived connections to the storage servers.
//!
//! The server is axum (over hyper): tokio-native like the rest of the
//! node, with streaming request and response bodies, so uploads are
//! spooled to a file and downloads streamed, and memory stays at a few
//! segments whatever the size. Only its router and server are used.
//!
//! Requests (`CAP` percent-encoded in the path, as Tahoe's CLI sends it):
//!
//! ```text
//! PUT    /uri[?mutable=true][&format=sdmf|mdmf|chk]   upload; the cap
//! PUT    /uri/FILECAP                                 replace a mutable file's contents
//! PUT    /uri/DIRCAP/PATH[?replace=][&t=uri]          upload (or link the cap in the body) at PATH
//! GET    /uri/CAP[/PATH][?t=json]                     a file (Range honoured), or JSON of the node
//! POST   /uri?t=mkdir[&format=]                       a new directory's cap
//! POST   /uri?t=mkdir-with-children                   the same, with the JSON body's children
//! POST   /uri/DIRCAP/PATH?t=mkdir                     make PATH (and its parents)
//! POST   /uri/DIRCAP[/PATH]?t=set_children            link the JSON body's children
//! POST   /uri/DIRCAP[/PATH]?t=unlink&name=N           unlink N
//! POST   /uri/DIRCAP[/PATH]?t=rename&from_name=A&to_name=B
//! POST   /uri/DIRCAP[/PATH]?t=relink&from_name=A&to_dir=D[&to_name=B]
//! DELETE /uri/DIRCAP/PATH                             unlink; the cap it linked
//! ```
//!
//! Errors are plain text with Tahoe's status codes (404 for a missing
//! entry, 409 for an existing one, 400 for bad input).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::Value;
use tahoe_core::cap::{Cap, DirCap};
use tahoe_core::dirnode::client::{DirClient, split_path};
use tahoe_core::dirnode::{ChildCap, Metadata, Node, Replace};
use tahoe_core::immutable::source::FileSource;
use tahoe_core::mutable::MutableFormat;
use tahoe_core::mutable::keys::KeyPool;
use tahoe_core::{Error, ErrorKind};
use tokio::io::AsyncWriteExt;

use crate::files::{dir_json, file_cap, node_json};
use crate::node::Session;

/// Where a port for the gateway may be written, as in the seed.
pub const WEBPORT_FILE: &str = "webport";

/// The gateway's state.
pub struct Gateway {
    session: Arc<Session>,
    keys: KeyPool,
    spool: PathBuf,
}

/// The port to serve on: `web.port`, else `BASEDIR/webport`.
pub fn port_of(cfg_port: Option<u16>, basedir: &Path) -> Result<Option<u16>> {
    if cfg_port.is_some() {
        return Ok(cfg_port);
    }
    let file = basedir.join(WEBPORT_FILE);
    match std::fs::read_to_string(&file) {
        Ok(text) => {
            let t = text.trim();
            let t = t.rsplit(':').next().unwrap_or(t);
            Ok(Some(t.parse().with_context(|| {
                format!("{}: {text:?} is not a port number", file.display())
            })?))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", file.display())),
    }
}

/// The gateway URL of a grid path (`tahoe webopen`), from the node's
/// configuration: `http://BIND:PORT/uri/CAP/a/b`, the cap percent-encoded.
pub fn url_of(basedir: &Path, path: Option<&str>) -> Result<String> {
    let cfg = tahoe_core::config::NodeConfig::load(basedir)?;
    let port = port_of(cfg.web.port, basedir)?.with_context(|| {
        format!(
            "{} has no web gateway: set web.port in its tahoe.toml (or write a port into {})",
            basedir.display(),
            basedir.join(WEBPORT_FILE).display()
        )
    })?;
    let p = crate::aliases::Aliases::load(basedir)?.resolve(path.unwrap_or("tahoe:"))?;
    let enc = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    let mut url = format!(
        "http://{}:{port}/uri/{}",
        cfg.web.bind,
        enc(&p.root.to_string())
    );
    for name in &p.path {
        url.push('/');
        url.push_str(&enc(name));
    }
    Ok(url)
}

/// Serve the gateway on `addr` until the task is dropped; the bound
/// address once listening.
pub async fn start(
    addr: SocketAddr,
    session: Session,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let spool = session.basedir().join("tmp");
    std::fs::create_dir_all(&spool).with_context(|| format!("creating {}", spool.display()))?;
    let gw = Arc::new(Gateway {
        session: Arc::new(session.without_waiting()),
        keys: KeyPool::new(2),
        spool,
    });
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on {addr} for the web gateway"))?;
    let bound = listener.local_addr()?;
    let app = axum::Router::new().fallback(handle).with_state(gw);
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("the web gateway stopped: {e}");
        }
    });
    Ok((bound, task))
}

async fn handle(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    let method = req.method().clone();
    // Caps are secrets: log the operation, not the path.
    let shown = format!(
        "{method} {}",
        req.uri()
            .path()
            .split('/')
            .take(2)
            .collect::<Vec<_>>()
            .join("/")
    );
    match route(&gw, req).await {
        Ok(r) => r,
        Err(e) => {
            let status = status_of(&e);
            tracing::debug!("{shown}: {status}: {e:#}");
            text(status, format!("{e:#}\n"))
        }
    }
}

/// Tahoe's status code for an error.
fn status_of(e: &anyhow::Error) -> StatusCode {
    let kind = e
        .chain()
        .find_map(|c| c.downcast_ref::<Error>())
        .map(Error::kind);
    match kind {
        Some(ErrorKind::NotFound) => StatusCode::NOT_FOUND,
        Some(ErrorKind::AlreadyExists | ErrorKind::Conflict) => StatusCode::CONFLICT,
        Some(ErrorKind::InvalidInput | ErrorKind::Corrupt) => StatusCode::BAD_REQUEST,
        Some(ErrorKind::NotEnoughShares) => StatusCode::GONE,
        Some(ErrorKind::Unhappy | ErrorKind::Unavailable | ErrorKind::Timeout) => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        Some(_) => StatusCode::INTERNAL_SERVER_ERROR,
        None => StatusCode::BAD_REQUEST,
    }
}

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    let mut r = (status, body.into()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r.headers_mut().insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

fn bad(msg: impl Into<String>) -> anyhow::Error {
    Error::invalid_input(msg.into()).into()
}

/// The query's `key=value` pairs, decoded.
fn query(req: &Request) -> Vec<(String, String)> {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    req.uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

struct Args(Vec<(String, String)>);

impl Args {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
    fn flag(&self, key: &str) -> bool {
        self.get(key).is_some_and(|v| {
            matches!(
                v.to_ascii_lowercase().as_str(),
                "true" | "t" | "1" | "on" | "yes"
            )
        })
    }
    fn t(&self) -> &str {
        self.get("t").unwrap_or("")
    }
    fn replace(&self, default: Replace) -> Result<Replace> {
        Ok(match self.get("replace") {
            Some(r) => Replace::parse(r)?,
            None => default,
        })
    }
    fn mutable_format(&self) -> Result<Option<MutableFormat>> {
        match self.get("format").map(str::to_ascii_lowercase).as_deref() {
            Some("chk") => Ok(None),
            Some(f) => Ok(Some(MutableFormat::parse(f)?)),
            None if self.flag("mutable") => Ok(Some(MutableFormat::Sdmf)),
            None => Ok(None),
        }
    }
}

impl Gateway {
    async fn dirs(&self) -> Result<DirClient> {
        self.session.dir_client(self.keys.clone()).await
    }

    /// Spool a request body to a file (uploads read it more than once).
    async fn spool(&self, body: Body) -> Result<Spooled> {
        let mut r = [0u8; 8];
        getrandom::fill(&mut r).map_err(|e| anyhow::anyhow!("random: {e}"))?;
        let path = self
            .spool
            .join(format!("upload-{}.tmp", u64::from_le_bytes(r)));
        let spooled = Spooled(path);
        let mut f = tokio::fs::File::create(&spooled.0).await?;
        let mut stream = body.into_data_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| bad(format!("reading the request body: {e}")))?;
            f.write_all(&chunk).await?;
        }
        f.flush().await?;
        Ok(spooled)
    }

    /// Upload a body as `format` (immutable when `None`); its cap.
    async fn upload(&self, body: Body, format: Option<MutableFormat>) -> Result<Cap> {
        let spooled = self.spool(body).await?;
        let source = Arc::new(FileSource::open(&spooled.0)?);
        Ok(match format {
            None => self.session.put(source).await?,
            Some(f) => {
                let client = self.session.mutable_client(self.keys.clone()).await?;
                Cap::SskWrite(client.create(f, source).await?)
            }
        })
    }

    async fn overwrite(&self, cap: &tahoe_core::cap::SskWriteCap, body: Body) -> Result<()> {
        let spooled = self.spool(body).await?;
        let source = Arc::new(FileSource::open(&spooled.0)?);
        self.session.overwrite(cap, source).await
    }
}

/// A spooled upload, removed when dropped.
struct Spooled(PathBuf);

impl Drop for Spooled {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// `/uri/CAP/a/b` split into the cap and the names.
fn target(path: &str) -> Result<Option<(Cap, Vec<String>)>> {
    let rest = path.strip_prefix("/uri").ok_or_else(|| {
        Error::not_found(format!(
            "nothing is served at {}",
            path.split('/').take(2).collect::<Vec<_>>().join("/")
        ))
    })?;
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

async fn route(gw: &Gateway, req: Request) -> Result<Response> {
    let args = Args(query(&req));
    let method = req.method().clone();
    let headers = req.headers().clone();
    let target = target(req.uri().path())?;
    let body = req.into_body();
    match (method, target) {
        (Method::PUT, None) => {
            let cap = gw.upload(body, args.mutable_format()?).await?;
            Ok(text(StatusCode::OK, cap.to_string()))
        }
        (Method::POST, None) => match args.t() {
            "mkdir" | "mkdir-with-children" => {
                let format = args.mutable_format()?.unwrap_or(MutableFormat::Sdmf);
                let children = if args.t() == "mkdir-with-children" {
                    children_of(&read_json(body).await?)?
                } else {
                    Vec::new()
                };
                let cap = gw.dirs().await?.create(format, children).await?;
                Ok(text(StatusCode::OK, Cap::Dir(cap).to_string()))
            }
            other => Err(bad(format!(
                "POST /uri: unknown t={other:?} (expected mkdir or mkdir-with-children)"
            ))),
        },
        (Method::GET | Method::HEAD, None) => {
            Err(Error::not_found("GET /uri needs a cap: /uri/CAP").into())
        }
        (other, None) => Err(bad(format!("{other} /uri is not served"))),
        (method, Some((root, path))) => {
            let dirs = gw.dirs().await?;
            match method {
                Method::GET | Method::HEAD => get(gw, &dirs, root, path, &args, &headers).await,
                Method::PUT => put(gw, &dirs, root, path, &args, body).await,
                Method::POST => post(&dirs, root, path, &args, body).await,
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
    gw: &Gateway,
    dirs: &DirClient,
    root: Cap,
    path: Vec<String>,
    args: &Args,
    headers: &HeaderMap,
) -> Result<Response> {
    let node = resolve(dirs, root, &path).await?;
    if args.t() == "json" {
        let v = match node.dir_cap() {
            Some(d) => dir_json(&node, &dirs.read(d).await?),
            None => node_json(&node, None),
        };
        return Ok(text(
            StatusCode::OK,
            serde_json::to_string_pretty(&v)? + "\n",
        ));
    }
    if !args.t().is_empty() {
        return Err(bad(format!("GET: unknown t={:?}", args.t())));
    }
    if let Some(d) = node.dir_cap() {
        let listing = dirs.read(d).await?;
        let names: Vec<&str> = listing.entries().map(|(n, _)| n).collect();
        return Ok(text(StatusCode::OK, names.join("\n") + "\n"));
    }
    let cap = file_cap(&node, "the file")?;
    download(gw, cap, path.last().map(String::as_str), args, headers).await
}

/// Stream a file, honouring a single `Range: bytes=A-B`.
async fn download(
    gw: &Gateway,
    cap: Cap,
    name: Option<&str>,
    args: &Args,
    headers: &HeaderMap,
) -> Result<Response> {
    let size = match &cap {
        Cap::Chk(c) => c.size,
        Cap::Lit(l) => l.data.len() as u64,
        Cap::SskWrite(_) | Cap::SskRead(_) => {
            let read = cap.mutable_read_cap().ok_or_else(|| bad("not readable"))?;
            let client = gw.session.mutable_client(gw.keys.clone()).await?;
            client.stat(&read).await?.data_length
        }
        other => return Err(bad(format!("{} cap cannot be downloaded", other.a_kind()))),
    };
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(|r| parse_range(r, size))
        .transpose()?;
    let (start, end) = range.unwrap_or((0, size));
    let (reader, mut writer) = tokio::io::duplex(256 << 10);
    let session_cap = cap.clone();
    let gw_session = gw.session.clone();
    tokio::spawn(async move {
        let r: Result<()> = async {
            match &session_cap {
                Cap::Chk(c) => {
                    gw_session.get(c, start..end, &mut writer).await?;
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
                    gw_session
                        .get_mutable(&read, start..end, &mut writer)
                        .await?;
                }
            }
            writer.shutdown().await?;
            Ok(())
        }
        .await;
        if let Err(e) = r {
            // The response has started: the client sees it cut short.
            tracing::warn!("a download failed part way: {e:#}");
        }
    });
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(reader));
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
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if args.flag("save") {
        let filename = args.get("filename").or(name).unwrap_or("download");
        let safe: String = filename
            .chars()
            .filter(|c| !c.is_control() && *c != '"' && *c != '\\')
            .collect();
        if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{safe}\"")) {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
    }
    if range.is_some() {
        *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
        if let Ok(v) =
            HeaderValue::from_str(&format!("bytes {start}-{}/{size}", end.saturating_sub(1)))
        {
            resp.headers_mut().insert(header::CONTENT_RANGE, v);
        }
    }
    Ok(resp)
}

/// `bytes=A-B`, `bytes=A-` or `bytes=-N` of a file of `size` bytes: the
/// half-open range, or 416-worthy input as an error.
fn parse_range(r: &str, size: u64) -> Result<(u64, u64)> {
    let spec = r
        .strip_prefix("bytes=")
        .filter(|s| !s.contains(','))
        .ok_or_else(|| bad(format!("unsupported Range {r:?} (one bytes=A-B range)")))?;
    let (a, b) = spec
        .split_once('-')
        .ok_or_else(|| bad(format!("bad Range {r:?}")))?;
    let num = |s: &str| {
        s.trim()
            .parse::<u64>()
            .map_err(|_| bad(format!("bad Range {r:?}")))
    };
    let (start, end) = match (a.trim().is_empty(), b.trim().is_empty()) {
        (true, false) => (size.saturating_sub(num(b)?), size),
        (false, true) => (num(a)?, size),
        (false, false) => (num(a)?, num(b)?.saturating_add(1).min(size)),
        (true, true) => return Err(bad(format!("bad Range {r:?}"))),
    };
    if start >= size || start >= end {
        return Err(bad(format!(
            "Range {r:?} is outside the file's {size} bytes"
        )));
    }
    Ok((start, end))
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
                gw.overwrite(&w, body).await?;
                Ok(text(StatusCode::OK, Cap::SskWrite(w).to_string()))
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
    let existing = dirs.read(&dir).await?.node(name)?;
    let replace = args.replace(Replace::Always)?;
    let node = if args.t() == "uri" {
        let cap_text = String::from_utf8(read_body(body, 64 << 10).await?)
            .map_err(|_| bad("the body is not a cap"))?;
        let cap: Cap = cap_text.trim().parse()?;
        Node::from_cap(cap)
    } else if !args.t().is_empty() {
        return Err(bad(format!("PUT: unknown t={:?}", args.t())));
    } else {
        let format = args.mutable_format()?;
        if let (None, Some(Cap::SskWrite(w))) = (format, existing.as_ref().and_then(Node::known)) {
            // A mutable file there is overwritten in place.
            gw.overwrite(w, body).await?;
            return Ok(text(StatusCode::OK, Cap::SskWrite(w.clone()).to_string()));
        }
        Node::from_cap(gw.upload(body, format).await?)
    };
    let shown = node.cap().map(ChildCap::to_string).unwrap_or_default();
    dirs.add(&dir, name, node, None, replace).await?;
    let status = if existing.is_some() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok(text(status, shown))
}

async fn post(
    dirs: &DirClient,
    root: Cap,
    path: Vec<String>,
    args: &Args,
    body: Body,
) -> Result<Response> {
    let root_dir = dir_root(&root)?;
    match args.t() {
        "mkdir" => {
            let format = args.mutable_format()?.unwrap_or(MutableFormat::Sdmf);
            let made = dirs.mkdir_p(root_dir, &path, format).await?;
            Ok(text(StatusCode::OK, Cap::Dir(made).to_string()))
        }
        "set_children" | "set-children" => {
            let dir = dirs.resolve_dir(root_dir, &path).await?;
            let children = children_of(&read_json(body).await?)?;
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
                            tahoe_core::dirnode::format::now(),
                        )?;
                    }
                }
                Ok(())
            })
            .await?;
            Ok(text(StatusCode::OK, "Okay so I did it."))
        }
        "unlink" | "delete" => {
            let dir = dirs.resolve_dir(root_dir, &path).await?;
            let name = args
                .get("name")
                .ok_or_else(|| bad("t=unlink needs name="))?;
            let gone = dirs.remove(&dir, name).await?;
            Ok(text(
                StatusCode::OK,
                gone.and_then(|n| n.cap().map(ChildCap::to_string))
                    .unwrap_or_default(),
            ))
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
            Ok(text(StatusCode::OK, "OK"))
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

async fn read_body(body: Body, limit: usize) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| bad(format!("reading the request body: {e}")))?;
        if out.len() + chunk.len() > limit {
            return Err(bad(format!(
                "the request body is larger than the {limit} bytes accepted here"
            )));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// A JSON body of at most 64 MiB.
async fn read_json(body: Body) -> Result<Value> {
    let bytes = read_body(body, 64 << 20).await?;
    serde_json::from_slice(&bytes).map_err(|e| bad(format!("the body is not JSON: {e}")))
}

/// Children as `set_children` and `mkdir-with-children` take them:
/// `{NAME: ["filenode"|"dirnode", {"rw_uri", "ro_uri", "metadata"}]}`.
fn children_of(v: &Value) -> Result<Vec<(String, Node, Metadata)>> {
    let obj = v
        .as_object()
        .ok_or_else(|| bad("the children must be a JSON object"))?;
    let mut out = Vec::new();
    for (name, spec) in obj {
        let fields = spec
            .get(1)
            .and_then(Value::as_object)
            .ok_or_else(|| bad(format!("child {name:?}: expected [TYPE, {{...}}]")))?;
        let cap =
            |key: &str| -> Result<Option<ChildCap>> {
                match fields.get(key).and_then(Value::as_str) {
                    Some(s) => Ok(ChildCap::parse(s)
                        .map_err(|e| e.context(format!("child {name:?} {key}")))?),
                    None => Ok(None),
                }
            };
        let node = Node {
            write: cap("rw_uri")?,
            read: cap("ro_uri")?,
        };
        let md = fields
            .get("metadata")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        out.push((name.clone(), node, md));
    }
    Ok(out)
}
