//! `POST /uri/CAP[/PATH]?t=check`: Tahoe-LAFS's check of one file or
//! directory (a directory: the file holding its entries), answered as
//! Tahoe's JSON with `output=JSON`, else as a results page; and the deep
//! operations `t=stream-manifest` and `t=stream-deep-check`, one JSON unit
//! per line for every object reachable, then the statistics.

use anyhow::Result;
use axum::body::Body;
use axum::http::StatusCode;
use axum::response::Response;
use bytes::Bytes;
use futures::StreamExt;
use tahoe_core::client::check::walk::walk;
use tahoe_core::client::dirnode::DirClient;
use tahoe_core::format::cap::Cap;

use super::dirops::resolve;
use super::error::bad;
use super::form::Args;
use super::html;
use super::ops::OpKind;
use super::reply::{html_response, redirect, text};
use super::state::Gateway;
use crate::client::deep::{DeepHow, Gathered, path_of, unit_results, units};
use crate::client::json::{check_json, repair_json};
use crate::client::session::Checking;

pub(super) async fn check(
    gw: &Gateway,
    dirs: &DirClient,
    root: Cap,
    path: &[String],
    args: &Args,
) -> Result<Response> {
    let cap = cap_at(dirs, root, path).await?;
    let (how, repair) = (checking(args), args.flag("repair"));
    let threshold = threshold_of(args)?;
    let json = args
        .get("output")
        .is_some_and(|o| o.eq_ignore_ascii_case("json"));
    let name = path.last().map(String::as_str).unwrap_or("this file");
    let what = match (how.verify, repair) {
        (_, true) => "repair",
        (true, false) => "verify",
        _ => "check",
    };
    let op = gw.begin(OpKind::Check, &format!("{what} {name}"), None);
    if repair {
        let r = match gw.session.check_and_repair(&cap, how, threshold).await {
            Ok(r) => r,
            Err(e) => {
                op.failed(&e);
                return Err(e);
            }
        };
        op.done_with(match &r {
            Some(r) => format!("{} ({})", r.post.summary, r.note),
            None => "Healthy (LIT)".into(),
        });
        if json {
            let body = serde_json::to_string_pretty(&repair_json(r.as_ref()))? + "\n";
            return Ok(text(StatusCode::OK, body));
        }
        return Ok(html_response(
            StatusCode::OK,
            html::repair_results(name, r.as_ref()),
        ));
    }
    let results = match gw.session.check(&cap, how).await {
        Ok(r) => r,
        Err(e) => {
            op.failed(&e);
            return Err(e);
        }
    };
    op.done_with(
        results
            .as_ref()
            .map_or("Healthy (LIT)".into(), |r| r.summary.clone()),
    );
    if json {
        let body = serde_json::to_string_pretty(&check_json(results.as_ref()))? + "\n";
        return Ok(text(StatusCode::OK, body));
    }
    Ok(html_response(
        StatusCode::OK,
        html::check_results(name, results.as_ref()),
    ))
}

/// `verify=` and `add-lease=`.
fn checking(args: &Args) -> Checking {
    Checking {
        verify: args.flag("verify"),
        add_lease: args.flag("add-lease"),
    }
}

/// `repair-threshold=N`, when given.
fn threshold_of(args: &Args) -> Result<Option<usize>> {
    args.get("repair-threshold")
        .map(|t| {
            t.parse::<usize>()
                .map_err(|_| bad(format!("repair-threshold={t:?} is not a number of shares")))
        })
        .transpose()
}

pub(super) async fn deep(
    gw: &Gateway,
    dirs: &DirClient,
    root: Cap,
    path: &[String],
    args: &Args,
    check: bool,
) -> Result<Response> {
    let repair = args.flag("repair");
    let threshold = threshold_of(args)?;
    let cap = cap_at(dirs, root, path).await?;
    let session = gw.session.clone();
    let walked = walk(dirs.clone(), cap);
    let how = DeepHow {
        check: check.then(|| checking(args)),
        repair: repair.then_some(threshold),
    };
    let what = if check { "deep-check" } else { "manifest" };
    let name = path.last().map(String::as_str).unwrap_or("a tree");
    // On the operations page while it runs; dropped unfinished (the client
    // went away), it shows as cancelled.
    let op = gw.begin(OpKind::Check, &format!("{what} {name}"), None);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(16);
    tokio::spawn(async move {
        let lines = units(&session, walked, how);
        futures::pin_mut!(lines);
        let (mut objects, mut unhealthy) = (0u64, 0u64);
        loop {
            // A client that goes away stops the walk at once, not at the
            // next unit (which a hanging server can hold back a deadline).
            let unit = tokio::select! {
                _ = tx.closed() => return,
                unit = lines.next() => unit,
            };
            let (line, last) = match unit {
                None => break,
                Some(Ok(u)) => {
                    if u["type"] != "stats" {
                        objects += 1;
                        let pre = unit_results(&u).pre;
                        unhealthy += u64::from(check && pre["results"]["healthy"] == false);
                    }
                    (u.to_string() + "\n", false)
                }
                Some(Err(e)) => (format!("ERROR: {e}\n"), true),
            };
            if tx.send(Ok(Bytes::from(line))).await.is_err() {
                return;
            }
            if last {
                op.failed(&anyhow::anyhow!("the walk stopped"));
                return;
            }
        }
        op.done_with(match check {
            true => format!("{objects} objects, {unhealthy} unhealthy"),
            false => format!("{objects} objects"),
        });
    });
    let body = Body::from_stream(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)));
    let mut r = Response::new(body);
    r.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok(r)
}

/// The operations started by handle: what each keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Started {
    /// `t=start-deep-stats`: the statistics.
    Stats,
    /// `t=start-manifest`: every object's path and cap.
    Manifest,
    /// `t=start-deep-check` (`repair=`, `verify=`, `add-lease=`): the
    /// counts and the unhealthy objects.
    DeepCheck,
}

/// `t=start-deep-stats`, `t=start-manifest` or `t=start-deep-check` with
/// `ophandle=H` (and `retain-for=`): walk the tree in the background and
/// keep the result under H; 302 to `/operations/H`. A deep check or a
/// manifest starts at a directory (400 on a file, as Tahoe answers).
pub(super) async fn start(
    gw: &Gateway,
    dirs: &DirClient,
    root: Cap,
    path: &[String],
    args: &Args,
    what: Started,
) -> Result<Response> {
    let t = args.t().to_string();
    let name = args
        .get("ophandle")
        .filter(|h| !h.is_empty() && h.len() <= 64 && h.bytes().all(|b| b.is_ascii_alphanumeric()))
        .ok_or_else(|| bad(format!("t={t} needs ophandle= (letters and digits)")))?
        .to_string();
    let retain = retain_for(args)?;
    let threshold = threshold_of(args)?;
    let cap = cap_at(dirs, root, path).await?;
    if what != Started::Stats && !matches!(cap, Cap::Dir(_)) {
        return Err(bad(format!("t={t} starts at a directory; this is a file")));
    }
    let how = DeepHow {
        check: (what == Started::DeepCheck).then(|| checking(args)),
        repair: args.flag("repair").then_some(threshold),
    };
    let slot = gw.handles.start(&name, retain).ok_or_else(|| {
        bad(format!(
            "ophandle {name:?} is in use, or too many operations are kept"
        ))
    })?;
    let session = gw.session.clone();
    let walked = walk(dirs.clone(), cap);
    let task = tokio::spawn(async move {
        let units = units(&session, walked, how);
        futures::pin_mut!(units);
        let mut gathered = Gathered::new(how);
        let result = loop {
            match units.next().await {
                Some(Ok(u)) if u["type"] == "stats" => {
                    break match what {
                        Started::Stats => u["stats"].clone(),
                        _ => gathered.finish(&u),
                    };
                }
                Some(Ok(u)) => gathered.add(&u),
                Some(Err(e)) => break serde_json::json!({"error": e}),
                None => break serde_json::json!({"error": "the walk stopped"}),
            }
        };
        slot.finish(result);
    });
    gw.handles.attach(&name, task.abort_handle());
    // 302, as Tahoe answers (its CLI takes 200 or 302 only), keeping the
    // output= asked for.
    let output = args
        .get("output")
        .filter(|o| ["json", "text", "html"].contains(&o.to_ascii_lowercase().as_str()))
        .map(|o| format!("?output={o}"))
        .unwrap_or_default();
    let mut r = redirect(&format!("/operations/{name}{output}"))?;
    *r.status_mut() = StatusCode::FOUND;
    Ok(r)
}

/// `/operations/H`: `GET` its status as `output=` asks (`JSON`; `text`:
/// `finished: yes|no`, then a manifest's `PATH CAP` lines; a page
/// otherwise), with `release-after-complete=` and `retain-for=`; `POST
/// ...?t=cancel` stops it and forgets it.
pub(super) fn operation(gw: &Gateway, post: bool, name: &str, args: &Args) -> Result<Response> {
    let unknown = || tahoe_core::Error::not_found(format!("no operation with handle {name:?}"));
    let status = match (post, args.t()) {
        (false, "" | "status") => gw
            .handles
            .status(name, args.flag("release-after-complete"), retain_for(args)?)
            .ok_or_else(unknown)?,
        (true, "cancel") => gw.handles.cancel(name).ok_or_else(unknown)?,
        (post, t) => {
            let (method, want) = if post {
                ("POST", "cancel")
            } else {
                ("GET", "status")
            };
            return Err(bad(format!(
                "{method} /operations/: unknown t={t:?} (expected {want})"
            )));
        }
    };
    let json = serde_json::to_string_pretty(&status.json)? + "\n";
    match args.get("output").map(str::to_ascii_lowercase).as_deref() {
        Some("json") => Ok(text(StatusCode::OK, json)),
        Some("text") => {
            let mut out = format!("finished: {}\n", if status.finished { "yes" } else { "no" });
            for entry in status.json["manifest"].as_array().into_iter().flatten() {
                let path = path_of(&entry[0]);
                out.push_str(&format!(
                    "{} {}\n",
                    path.join("/"),
                    entry[1].as_str().unwrap_or("")
                ));
            }
            Ok(text(StatusCode::OK, out))
        }
        _ => Ok(html_response(
            StatusCode::OK,
            html::handle_status(name, &status.json, status.finished),
        )),
    }
}

/// `retain-for=SECONDS`, when given.
pub(super) fn retain_for(args: &Args) -> Result<Option<std::time::Duration>> {
    args.get("retain-for")
        .map(|t| {
            t.parse::<u64>()
                .map(std::time::Duration::from_secs)
                .map_err(|_| bad(format!("retain-for={t:?} is not a number of seconds")))
        })
        .transpose()
}

/// The cap of the object at `path` under `root`.
async fn cap_at(dirs: &DirClient, root: Cap, path: &[String]) -> Result<Cap> {
    let node = resolve(dirs, root, path).await?;
    Ok(node
        .known()
        .ok_or_else(|| tahoe_core::Error::invalid_input("an entry of an unknown cap kind"))?
        .clone())
}
