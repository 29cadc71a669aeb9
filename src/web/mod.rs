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
//! - `route`: `/uri` requests (docs/web.md lists them), carried out by
//!   `download`, `upload` and `dirops`;
//! - `pages` and `html`: the pages; `ops`: uploads and downloads for
//!   the status pages; `stats`: `/statistics`;
//! - `form`: query strings and forms; `uri`: grid paths in URLs;
//! - `reply` and `error`: the shapes of answers and errors;
//! - `state`: the gateway's state; `serve`: the HTTP server;
//!   `token`: the node's web token.
//!
//! Errors are plain text with Tahoe's status codes (404 for a missing
//! entry, 409 for an existing one, 400 for bad input), or a page when the
//! client is a browser (its `Accept` names `text/html`).

mod check;
mod dirops;
mod download;
mod error;
pub(crate) mod form;
mod handles;
mod html;
pub mod maintenance;
mod ops;
mod pages;
mod reply;
mod route;
pub(crate) mod serve;
mod state;
mod stats;
pub mod storage;
pub mod token;
mod upload;
mod uri;

pub use html::{ago, date};
pub use state::NodeInfo;

use crate::basedir::WEBPORT_FILE;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use tahoe_core::Error;
use tahoe_core::client::mutable::key_pool::KeyPool;
use tahoe_core::plugin::config::WebSection;
use tahoe_core::server::StorageServer;

use crate::client::GridClient;
use error::{HttpError, status_of, tahoe_message};
use form::Args;
pub use ops::FsJournal;
use pages::{statistics, welcome};
use reply::{asset, html_response, text};
use state::Gateway;
use stats::ReqKind;
use uri::uri_of;

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
    Ok(format!("{base}{}", uri_of(&p.root.to_string(), &p.path)))
}

/// Serve the gateway on `addr` as `web` says until the task is dropped;
/// the bound address once listening.
pub async fn start(
    addr: SocketAddr,
    web: &WebSection,
    session: GridClient,
    info: NodeInfo,
    storage: Option<StorageServer>,
    journal: &ops::FsJournal,
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
        ops: journal.ops.clone(),
        handles: handles::Handles::default(),
        stats: journal.stats.clone(),
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
                html_response(status, html::error(status.as_u16(), reason, &message))
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
        return route::route(gw, req, args).await;
    }
    if let Some(name) = path.strip_prefix("/operations/") {
        return check::operation(gw, *req.method() == Method::POST, name, &args);
    }
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return Err(Error::not_found(format!("{} {path} is not served", req.method())).into());
    }
    match path.as_str() {
        "/" => welcome(gw, &args, req.headers()).await,
        "/static/style.css" => Ok(asset("text/css; charset=utf-8", html::STYLE)),
        "/static/app.js" => Ok(asset("text/javascript; charset=utf-8", html::SCRIPT)),
        "/status" | "/status/" => Ok(html_response(StatusCode::OK, html::ops(&gw.ops.list()))),
        "/statistics" => statistics(gw, &args).await,
        "/storage" => pages::storage(gw, &args).await,
        p if p.starts_with("/storage/") => pages::storage_index(gw, &p["/storage/".len()..]).await,
        p if p.starts_with("/status/") => {
            let op = p["/status/".len()..]
                .parse()
                .ok()
                .and_then(|id| gw.ops.get(id))
                .ok_or_else(|| Error::not_found("no such operation (it may be long done)"))?;
            Ok(html_response(StatusCode::OK, html::op(&op)))
        }
        _ => Err(Error::not_found(format!("nothing is served at {path}")).into()),
    }
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
}
