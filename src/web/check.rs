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
use crate::client::deep::{DeepHow, units};
use crate::client::json::{check_json, repair_json, stats_json};
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
    let (tx, mut rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(16);
    tokio::spawn(async move {
        let lines = units(&session, walked, how);
        futures::pin_mut!(lines);
        while let Some(unit) = lines.next().await {
            let (line, last) = match unit {
                Ok(u) => (u.to_string() + "\n", false),
                Err(e) => (format!("ERROR: {e}\n"), true),
            };
            if tx.send(Ok(Bytes::from(line))).await.is_err() || last {
                return;
            }
        }
    });
    let body = Body::from_stream(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)));
    let mut r = Response::new(body);
    r.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok(r)
}

/// `t=start-deep-stats&ophandle=H`: walk the tree in the background and
/// keep its statistics under H; 302 to `/operations/H`. (`t=start-manifest`
/// and `t=start-deep-check`, which keep every unit, answer 501: the
/// streaming forms serve the same without holding a tree's results.)
pub(super) async fn start_deep_stats(
    gw: &Gateway,
    dirs: &DirClient,
    root: Cap,
    path: &[String],
    args: &Args,
) -> Result<Response> {
    let name = args
        .get("ophandle")
        .filter(|h| !h.is_empty() && h.len() <= 64 && h.bytes().all(|b| b.is_ascii_alphanumeric()))
        .ok_or_else(|| bad("t=start-deep-stats needs ophandle= (letters and digits)"))?
        .to_string();
    let cap = cap_at(dirs, root, path).await?;
    let slot = gw.handles.start(&name).ok_or_else(|| {
        bad(format!(
            "ophandle {name:?} is in use, or too many operations are kept"
        ))
    })?;
    let mut walked = walk(dirs.clone(), cap);
    tokio::spawn(async move {
        use tahoe_core::client::check::walk::Walked;
        let result = loop {
            match walked.recv().await {
                Some(Walked::Node(_)) => {}
                Some(Walked::Done(stats)) => break stats_json(&stats)["stats"].clone(),
                Some(Walked::Error(e)) => break serde_json::json!({"error": e}),
                None => break serde_json::json!({"error": "the walk stopped"}),
            }
        };
        *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(result);
    });
    // 302, as Tahoe answers (its CLI takes 200 or 302 only).
    let mut r = redirect(&format!("/operations/{name}"))?;
    *r.status_mut() = StatusCode::FOUND;
    Ok(r)
}

/// The cap of the object at `path` under `root`.
async fn cap_at(dirs: &DirClient, root: Cap, path: &[String]) -> Result<Cap> {
    let node = resolve(dirs, root, path).await?;
    Ok(node
        .known()
        .ok_or_else(|| tahoe_core::Error::invalid_input("an entry of an unknown cap kind"))?
        .clone())
}
