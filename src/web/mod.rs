//! The web gateway: the part of Tahoe-LAFS's web API (`docs/frontends/
//! webapi.rst`) that its `tahoe` CLI and common scripts use, and a web UI
//! for people, served by a running client node on `web.port` (or the port
//! in `BASEDIR/webport`), bound to `web.bind` (127.0.0.1 by default),
//! through the node's own long-lived connections to the storage servers.
//!
//! The server is axum (over hyper): tokio-native like the rest of the
//! node, with streaming request and response bodies, so uploads are
//! spooled to a file and downloads streamed, and memory stays at a few
//! segments whatever the size. Only its router and server are used.
//!
//! - [`api`]: `/uri` requests (docs/web.md lists them);
//! - [`html`]: the pages, [`ops`]: uploads and downloads for the status
//!   pages, [`stats`]: `/statistics`, [`form`]: query strings and forms.
//!
//! Errors are plain text with Tahoe's status codes (404 for a missing
//! entry, 409 for an existing one, 400 for bad input), or a page when the
//! client is a browser (its `Accept` names `text/html`).

mod api;
mod form;
mod html;
mod ops;
mod serve;
mod stats;
pub mod token;

use crate::basedir::WEBPORT_FILE;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tahoe_core::client::mutable::key_pool::KeyPool;
use tahoe_core::format::cap::Cap;
use tahoe_core::plugin::config::WebSection;
use tahoe_core::server::StorageServer;
use tahoe_core::{Error, ErrorKind};

use crate::client::GridClient;
use form::Args;
use ops::Ops;
use stats::{ReqKind, Snapshot, Stats};

/// Who the node is, for the welcome page.
pub struct NodeInfo {
    /// The node's nickname.
    pub nickname: String,
    /// The node's id (base32 of its key's hash).
    pub node_id: String,
    /// A server not heard from for this long is shown as stale.
    pub stale_after: std::time::Duration,
}

/// The gateway's state.
pub struct Gateway {
    session: Arc<GridClient>,
    keys: KeyPool,
    spool: PathBuf,
    info: NodeInfo,
    started: Instant,
    ops: Ops,
    stats: Stats,
    /// The node's own storage server, for its counters.
    storage: Option<StorageServer>,
    /// The node's web token (see [`token`]).
    token: String,
    /// The names it answers to besides addresses and localhost.
    allowed_hosts: Vec<String>,
    /// Longest wait for the next piece of a request body.
    body_timeout: Duration,
}

/// The gateway's address from the node's configuration: `http://BIND:PORT`.
pub fn base_url(basedir: &Path) -> Result<String> {
    let cfg = tahoe_core::plugin::config::NodeConfig::load(basedir)?;
    let port = crate::basedir::web_port(cfg.web.port, basedir)?.with_context(|| {
        format!(
            "{} has no web gateway: set web.port in its tahoe.toml (or write a port into {})",
            basedir.display(),
            basedir.join(WEBPORT_FILE).display()
        )
    })?;
    Ok(format!("http://{}:{port}", cfg.web.bind))
}

/// The gateway URL of a grid path (`tahoe webopen`), from the node's
/// configuration: `http://BIND:PORT/uri/CAP/a/b`, the cap percent-encoded.
pub fn url_of(basedir: &Path, path: Option<&str>) -> Result<String> {
    let base = base_url(basedir)?;
    let p = crate::client::aliases::Aliases::load(basedir)?.resolve(path.unwrap_or("tahoe:"))?;
    Ok(format!(
        "{base}{}",
        html::uri_of(&p.root.to_string(), &p.path)
    ))
}

/// Serve the gateway on `addr` as `web` says until the task is dropped;
/// the bound address once listening.
pub async fn start(
    addr: SocketAddr,
    web: &WebSection,
    session: GridClient,
    info: NodeInfo,
    storage: Option<StorageServer>,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let spool = session.basedir().join(crate::basedir::SPOOL_DIR);
    crate::basedir::private_dir(&spool)?;
    let token = token::load_or_create(session.basedir())?;
    // Uploads a crash left behind.
    if let Ok(dir) = std::fs::read_dir(&spool) {
        for e in dir.flatten() {
            if e.file_name().to_string_lossy().starts_with("upload-") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on {addr} for the web gateway"))?;
    let bound = listener.local_addr()?;
    let gw = Arc::new(Gateway {
        session: Arc::new(session.without_waiting()),
        keys: KeyPool::new(2),
        spool,
        info,
        started: Instant::now(),
        ops: Ops::default(),
        stats: Stats::default(),
        storage,
        token,
        allowed_hosts: web.allowed_hosts.clone(),
        body_timeout: Duration::from_secs(web.body_timeout_secs.max(1)),
    });
    let app = axum::Router::new().fallback(handle).with_state(gw);
    let limits = serve::ServeLimits {
        header_timeout: Duration::from_secs(web.header_timeout_secs.max(1)),
        max_connections: web.max_connections,
    };
    let task = tokio::spawn(serve::serve(listener, app, limits));
    Ok((bound, task))
}

async fn handle(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    // Before anything else: a page of another site whose name was rebound
    // to this address must get nothing (DNS rebinding).
    if !serve::host_allowed(req.headers(), &gw.allowed_hosts) {
        return text(
            StatusCode::MISDIRECTED_REQUEST,
            "this gateway answers to its IP addresses, localhost and the names in \
             web.allowed_hosts, not to this Host\n",
        );
    }
    if matches!(*req.method(), Method::GET | Method::HEAD)
        && let Some(r) = token::exchange(req.uri(), &gw.token)
    {
        return r;
    }
    respond(gw, req).await
}

async fn respond(gw: Arc<Gateway>, req: Request) -> Response {
    let began = Instant::now();
    let method = req.method().clone();
    let browser = wants_html(req.headers());
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
    let mut resp = match dispatch(&gw, req).await {
        Ok(r) => r,
        Err(e) => {
            let status = status_of(&e);
            tracing::debug!("{shown}: {status}: {e:#}");
            let message = tahoe_message(&e);
            let mut r = if browser {
                let reason = status.canonical_reason().unwrap_or("Error");
                page(status, html::error(status.as_u16(), reason, &message))
            } else {
                text(status, format!("{message}\n"))
            };
            if let Some(h) = e.downcast_ref::<HttpError>() {
                for (name, value) in &h.headers {
                    r.headers_mut().insert(name.clone(), value.clone());
                }
            }
            r.extensions_mut().insert(match method {
                Method::PUT => ReqKind::Upload,
                _ => ReqKind::Page,
            });
            r
        }
    };
    let kind = resp
        .extensions()
        .get::<ReqKind>()
        .copied()
        .unwrap_or(ReqKind::Page);
    gw.stats
        .request(kind, resp.status().as_u16(), began.elapsed());
    resp.headers_mut().insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp.headers_mut().insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    resp
}

/// Whether the client is a browser that wants pages, not text.
fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"))
}

/// Whether a request that changes state comes from another site's page.
///
/// A browser says where a request comes from: `Sec-Fetch-Site` (every
/// current browser), else `Origin`, which must then be this gateway
/// (`null`, as a sandboxed stored file sends, is another site). A request
/// with neither is not a browser's cross-site request (Tahoe's CLI and
/// scripts send neither).
///
/// Decision: this holds for every request that changes state, not only
/// those without a cap, because no page of another site has a reason to
/// change the grid through this gateway, and a cap that leaked to one
/// must not be enough.
fn cross_site(headers: &HeaderMap) -> bool {
    let get = |h: &str| headers.get(h).and_then(|v| v.to_str().ok());
    if let Some(site) = get("sec-fetch-site") {
        return !matches!(site, "same-origin" | "none");
    }
    match (get("origin"), get("host")) {
        (Some(origin), Some(host)) => {
            let o = origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"));
            o != Some(host)
        }
        (Some(_), None) => true,
        (None, _) => false,
    }
}

async fn dispatch(gw: &Arc<Gateway>, req: Request) -> Result<Response> {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe && cross_site(req.headers()) {
        return Err(Error::permission_denied(
            "a request from another site's page cannot change anything here",
        )
        .into());
    }
    let path = req.uri().path().to_string();
    let args = Args(form::pairs(req.uri().query().unwrap_or("")));
    if path == "/uri" || path.starts_with("/uri/") {
        return api::route(gw, req, args).await;
    }
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return Err(Error::not_found(format!("{} {path} is not served", req.method())).into());
    }
    match path.as_str() {
        "/" => welcome(gw, &args, req.headers()).await,
        "/static/style.css" => Ok(asset("text/css; charset=utf-8", html::STYLE)),
        "/static/app.js" => Ok(asset("text/javascript; charset=utf-8", html::SCRIPT)),
        "/status" | "/status/" => Ok(page(StatusCode::OK, html::ops(&gw.ops.list()))),
        "/statistics" => statistics(gw, &args).await,
        p if p.starts_with("/status/") => {
            let op = p["/status/".len()..]
                .parse()
                .ok()
                .and_then(|id| gw.ops.get(id))
                .ok_or_else(|| Error::not_found("no such operation (it may be long done)"))?;
            Ok(page(StatusCode::OK, html::op(&op)))
        }
        _ => Err(Error::not_found(format!("nothing is served at {path}")).into()),
    }
}

async fn welcome(gw: &Gateway, args: &Args, headers: &HeaderMap) -> Result<Response> {
    let servers = gw.session.server_statuses();
    let (queen, queen_connected) = gw.session.queen();
    if args.t() == "json" {
        // Tahoe's welcome JSON.
        let now = std::time::SystemTime::now();
        let servers: Vec<_> = servers
            .iter()
            .map(|st| {
                let s = &st.body;
                let heard = now - st.announced_ago;
                serde_json::json!({
                    "nodeid": s.node_id,
                    "connection_status": if st.connected { "connected" } else { "disconnected" },
                    "available_space": s.available_space,
                    "nickname": s.nickname,
                    "version": s.version,
                    "last_received_data": heard
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_secs_f64())
                        .unwrap_or_default(),
                })
            })
            .collect();
        let status = if queen_connected {
            format!("Connected to {queen}")
        } else {
            format!("Not connected to {queen}")
        };
        let v = serde_json::json!({"introducers": {"statuses": [status]}, "servers": servers});
        return Ok(json(&v));
    }
    if !args.t().is_empty() {
        return Err(bad(format!("GET /: unknown t={:?}", args.t())));
    }
    // The shared drive's cap only for the node's owner (see `token`).
    let vdrive = if token::holds(headers, &gw.token) {
        crate::basedir::vdrive_of(gw.session.basedir())
            .ok()
            .flatten()
            .map(|d| html::Drive::Cap(Cap::Dir(d).to_string()))
    } else if crate::basedir::vdrive_of(gw.session.basedir())
        .ok()
        .flatten()
        .is_some()
    {
        Some(html::Drive::Hidden)
    } else {
        None
    };
    let body = html::welcome(&html::Welcome {
        nickname: &gw.info.nickname,
        node_id: &gw.info.node_id,
        version: concat!("tahoe-rs/", env!("CARGO_PKG_VERSION")),
        uptime: gw.started.elapsed(),
        queen: &queen,
        queen_connected,
        servers: &servers,
        stale_after: gw.info.stale_after,
        vdrive,
    });
    Ok(page(StatusCode::OK, body))
}

async fn statistics(gw: &Gateway, args: &Args) -> Result<Response> {
    let mut snap = Snapshot::of(&gw.stats);
    snap.stats
        .insert("node.uptime".into(), gw.started.elapsed().as_secs_f64());
    let servers = gw.session.server_statuses();
    snap.stats
        .insert("grid.servers_known".into(), servers.len() as f64);
    snap.stats.insert(
        "grid.servers_connected".into(),
        servers.iter().filter(|s| s.connected).count() as f64,
    );
    let running = gw
        .ops
        .list()
        .iter()
        .filter(|o| o.state() == ops::OpState::Running)
        .count();
    snap.stats
        .insert("web.operations_running".into(), running as f64);
    if let Some(s) = &gw.storage {
        let c = s.counters();
        let get = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        for (name, v) in [
            ("storage_server.allocate", get(&c.allocate)),
            ("storage_server.write", get(&c.write)),
            ("storage_server.bytes_added", get(&c.bytes_added)),
            ("storage_server.close", get(&c.close)),
            ("storage_server.read", get(&c.read)),
            ("storage_server.bytes_read", get(&c.bytes_read)),
            ("storage_server.readv", get(&c.readv)),
            ("storage_server.writev", get(&c.writev)),
        ] {
            snap.counters.insert(name.into(), v);
        }
        if let Ok(Some(free)) = s.backend().remaining_capacity().await {
            snap.stats
                .insert("storage_server.disk_avail".into(), free as f64);
        }
        snap.stats
            .insert("storage_server.accepting_immutable_shares".into(), 1.0);
    }
    match args.t() {
        "json" => Ok(json(&serde_json::to_value(&snap)?)),
        "openmetrics" => {
            let mut r = (StatusCode::OK, stats::openmetrics(&snap, &gw.stats)).into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            Ok(r)
        }
        "" => Ok(page(StatusCode::OK, html::statistics(&snap))),
        other => Err(bad(format!(
            "/statistics: unknown t={other:?} (expected json or openmetrics)"
        ))),
    }
}

/// An error with a status of its own (413, 416, ...), and headers to go
/// with it.
#[derive(Debug)]
pub struct HttpError {
    status: StatusCode,
    message: String,
    headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl HttpError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        HttpError {
            status,
            message: message.into(),
            headers: Vec::new(),
        }
    }
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for HttpError {}

/// `413 Payload Too Large`.
fn too_large(what: &str, limit: usize) -> anyhow::Error {
    HttpError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("{what} is larger than the {limit} bytes accepted here"),
    )
    .into()
}

/// An error's text as Tahoe words it for programs that look for its
/// exception names (`NotEnoughSharesError` for a file that cannot be read).
fn tahoe_message(e: &anyhow::Error) -> String {
    let kind = e
        .chain()
        .find_map(|c| c.downcast_ref::<Error>())
        .map(Error::kind);
    match kind {
        Some(ErrorKind::NotEnoughShares) => format!(
            "NotEnoughSharesError: This indicates that some servers were unavailable, or that \
             shares have been lost to server departure, hard drive failure, or disk corruption. \
             You should perform a filecheck on this object to learn more.\n\n\
             The full error message is:\n{e:#}"
        ),
        _ => format!("{e:#}"),
    }
}

/// Tahoe's status code for an error.
fn status_of(e: &anyhow::Error) -> StatusCode {
    if let Some(h) = e.downcast_ref::<HttpError>() {
        return h.status;
    }
    let kind = e
        .chain()
        .find_map(|c| c.downcast_ref::<Error>())
        .map(Error::kind);
    match kind {
        Some(ErrorKind::NotFound) => StatusCode::NOT_FOUND,
        Some(ErrorKind::AlreadyExists | ErrorKind::Conflict) => StatusCode::CONFLICT,
        Some(ErrorKind::InvalidInput | ErrorKind::Corrupt) => StatusCode::BAD_REQUEST,
        Some(ErrorKind::PermissionDenied) => StatusCode::FORBIDDEN,
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
    r
}

fn json(v: &serde_json::Value) -> Response {
    let mut r = text(
        StatusCode::OK,
        serde_json::to_string_pretty(v).unwrap_or_default() + "\n",
    );
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// The policy of the gateway's own pages: its own script and styles, and
/// nothing from anywhere else; forms post only here; never framed.
const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

fn page(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_CSP),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut r = (StatusCode::OK, body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    r
}

/// Whether `to`, resolved by a browser against a page of this gateway,
/// stays on it: an open redirect would let another site send a user
/// anywhere through a link that looks like the gateway's. Browsers drop
/// tabs and newlines from a URL and read `\` as `/`, so `/\t/evil.example`
/// and `/\\evil.example` lead away as `//evil.example` does: a path here
/// starts with one `/` and holds no control character, space or `\`.
fn stays_here(to: &str) -> bool {
    to.starts_with('/')
        && !to[1..].starts_with('/')
        && !to
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
}

/// `303 See Other` to a path of this gateway.
fn redirect(to: &str) -> Result<Response> {
    if !stays_here(to) {
        return Err(bad(format!(
            "when_done must be a path on this gateway (starting with /), not {to:?}"
        )));
    }
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::SEE_OTHER;
    r.headers_mut().insert(
        header::LOCATION,
        HeaderValue::from_str(to).map_err(|_| bad("when_done is not a valid URL"))?,
    );
    Ok(r)
}

fn bad(msg: impl Into<String>) -> anyhow::Error {
    Error::invalid_input(msg.into()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn cross_site_requests_are_told_apart() {
        assert!(!cross_site(&headers(&[])), "a script or the CLI");
        assert!(!cross_site(&headers(&[("sec-fetch-site", "same-origin")])));
        assert!(!cross_site(&headers(&[("sec-fetch-site", "none")])));
        assert!(cross_site(&headers(&[("sec-fetch-site", "cross-site")])));
        assert!(cross_site(&headers(&[("sec-fetch-site", "same-site")])));
        let here = [
            ("host", "127.0.0.1:3456"),
            ("origin", "http://127.0.0.1:3456"),
        ];
        assert!(!cross_site(&headers(&here)));
        assert!(cross_site(&headers(&[
            ("host", "127.0.0.1:3456"),
            ("origin", "http://evil.example")
        ])));
        assert!(cross_site(&headers(&[
            ("host", "127.0.0.1:3456"),
            ("origin", "null")
        ])));
    }

    #[test]
    fn redirects_only_to_paths_here() {
        assert!(redirect("/uri/x").is_ok());
        for evil in [
            "//evil.example/",
            "https://evil.example/",
            "/\\evil",
            "uri",
            "/\t/evil.example/x",
            "/\n/evil.example/x",
            "/\r\n/evil.example",
            " //evil.example",
            "/ /evil.example",
            "\t//evil.example",
            "/\u{0}/evil.example",
            "",
        ] {
            assert!(redirect(evil).is_err(), "{evil}");
        }
    }
}
