//! `/uri` requests: which operation each method and `t=` is (docs/web.md lists them).

use std::sync::Arc;

use anyhow::Result;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use tahoe_core::Error;
use tahoe_core::client::dirnode::DirClient;
use tahoe_core::format::cap::Cap;
use tahoe_core::format::dirnode::{ChildCap, Replace};

use super::dirops::{attach, dir_root, make_dir, parent_of, relink_target, resolve};
use super::dirops::{mkdir_at, set_children};
use super::download::download;
use super::error::bad;
use super::form::{self, Args, FormFile};
use super::html;
use super::ops::{OpKind, Tracked};
use super::reply::{done, html_response, kind, redirect, text};
use super::state::Gateway;
use super::stats::ReqKind;
use super::upload::{put, upload_into};
use super::uri::{target, uri_of};
use crate::client::files::file_cap;
use crate::client::json::{dir_json, node_json};

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
                redirect(&uri_of(&cap.to_string(), &[]))
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
pub(super) async fn post_unlinked(
    gw: &Gateway,
    args: &Args,
    body: Body,
    files: Vec<(FormFile, Tracked)>,
) -> Result<Response> {
    match args.t() {
        "mkdir" | "mkdir-with-children" | "mkdir-immutable" => {
            let cap = make_dir(gw, args, body).await?;
            let url = uri_of(&cap, &[]);
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
            let url = format!("{}?t=info", uri_of(first, &[]));
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

pub(super) async fn get(
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
        "info" => Ok(html_response(
            StatusCode::OK,
            html::info(
                path.last().map(String::as_str),
                &node,
                &uri_of(&root_text, &path),
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
                Ok(kind(
                    html_response(StatusCode::OK, body),
                    ReqKind::Directory,
                ))
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

pub(super) async fn post(
    gw: &Gateway,
    dirs: &DirClient,
    root: Cap,
    path: Vec<String>,
    args: &Args,
    body: Body,
    files: Vec<(FormFile, Tracked)>,
) -> Result<Response> {
    match args.t() {
        "check" => return super::check::check(gw, dirs, root, &path, args).await,
        "stream-manifest" => return super::check::deep(gw, dirs, root, &path, args, false).await,
        "stream-deep-check" => return super::check::deep(gw, dirs, root, &path, args, true).await,
        "start-deep-stats" | "start-manifest" | "start-deep-check" => {
            use super::check::Started;
            let what = match args.t() {
                "start-deep-stats" => Started::Stats,
                "start-manifest" => Started::Manifest,
                _ => Started::DeepCheck,
            };
            return super::check::start(gw, dirs, root, &path, args, what).await;
        }
        _ => {}
    }
    let root_text = root.to_string();
    let root_dir = dir_root(&root)?;
    let here = uri_of(&root_text, &path);
    match args.t() {
        "upload" => {
            let dir = dirs.resolve_dir(root_dir, &path).await?;
            let caps = upload_into(gw, dirs, &dir, args, &files).await?;
            Ok(kind(
                done(args, StatusCode::OK, caps.join("\n"), Some(here))?,
                ReqKind::Upload,
            ))
        }
        "mkdir" | "mkdir-with-children" | "mkdir-immutable" => {
            let made = mkdir_at(gw, dirs, &root, &path, args, body).await?;
            let url = uri_of(&made, &[]);
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
            set_children(gw, dirs, &dir, args, body).await?;
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
