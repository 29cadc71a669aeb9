//! Uploads: a spooled body made a file and linked where the request says (a mutable file there overwritten in place).

use anyhow::Result;
use axum::body::Body;
use axum::http::StatusCode;
use axum::response::Response;
use tahoe_core::Error;
use tahoe_core::client::dirnode::DirClient;
use tahoe_core::format::cap::{Cap, DirCap};
use tahoe_core::format::dirnode::{Node, Replace};
use tahoe_core::format::ssk::MutableFormat;

use super::dirops::{attach, dir_root};
use super::error::bad;
use super::form::{self, Args, FormFile, Spooled};
use super::ops::{OpKind, Tracked};
use super::reply::{kind, text};
use super::state::Gateway;
use super::stats::ReqKind;

/// Link an uploaded file at `name` in `dir`: a mutable file already there
/// is overwritten in place (unless a format is asked for). The cap, and
/// whether the name is new.
pub(super) async fn place(
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

pub(super) async fn put(
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

pub(super) fn created_or_ok(created: bool) -> StatusCode {
    if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    }
}

/// The name an uploaded file is linked under: `name=` for a single file,
/// else the browser's file name without any folder.
pub(super) fn upload_name<'a>(args: &'a Args, f: &'a FormFile, single: bool) -> &'a str {
    match args.get("name").filter(|n| single && !n.is_empty()) {
        Some(n) => n,
        None => f.filename.rsplit(['/', '\\']).next().unwrap_or(&f.filename),
    }
}

/// `t=upload` into `dir`: each file of the form linked under its name
/// (`name=` for a single file); their caps.
pub(super) async fn upload_into(
    gw: &Gateway,
    dirs: &DirClient,
    dir: &DirCap,
    args: &Args,
    files: &[(FormFile, Tracked)],
) -> Result<Vec<String>> {
    if files.is_empty() {
        return Err(bad("t=upload: the form holds no file (field \"file\")"));
    }
    let single = files.len() == 1;
    let mut caps = Vec::new();
    for (f, op) in files {
        let name = upload_name(args, f, single);
        caps.push(place(gw, dirs, dir, name, &f.data, args, op).await?.0);
    }
    Ok(caps)
}
