//! `POST /uri/CAP[/PATH]?t=check`: Tahoe-LAFS's check of one file or
//! directory (a directory: the file holding its entries), answered as
//! Tahoe's JSON with `output=JSON`, else as a results page.

use anyhow::Result;
use axum::http::StatusCode;
use axum::response::Response;
use tahoe_core::client::check::CheckTarget;
use tahoe_core::client::dirnode::DirClient;
use tahoe_core::format::cap::Cap;

use super::dirops::resolve;
use super::error::HttpError;
use super::error::bad;
use super::form::Args;
use super::html;
use super::reply::{html_response, text};
use super::state::Gateway;
use crate::client::json::{check_json, repair_json};

/// The options of `t=check` this gateway does not carry out yet: refused
/// with 501 rather than answered with a plain check that would pass for
/// what the caller asked (so are `verify` and `repair` of a mutable file).
const NOT_YET: [&str; 1] = ["add-lease"];

pub(super) async fn check(
    gw: &Gateway,
    dirs: &DirClient,
    root: Cap,
    path: &[String],
    args: &Args,
) -> Result<Response> {
    if let Some(opt) = NOT_YET.iter().find(|o| args.flag(o)) {
        return Err(HttpError::new(
            StatusCode::NOT_IMPLEMENTED,
            format!("t=check: {opt}=true is not carried out by this gateway yet"),
        )
        .into());
    }
    let node = resolve(dirs, root, path).await?;
    let cap = node
        .known()
        .ok_or_else(|| {
            tahoe_core::Error::invalid_input("t=check: an entry of an unknown cap kind")
        })?
        .clone();
    let (verify, repair) = (args.flag("verify"), args.flag("repair"));
    for (asked, what) in [(verify, "verify"), (repair, "repair")] {
        if asked && !CheckTarget::of(&cap).can_verify() {
            return Err(HttpError::new(
                StatusCode::NOT_IMPLEMENTED,
                format!(
                    "t=check: {what}=true of a mutable file or directory is not carried out yet"
                ),
            )
            .into());
        }
    }
    let json = args
        .get("output")
        .is_some_and(|o| o.eq_ignore_ascii_case("json"));
    let name = path.last().map(String::as_str).unwrap_or("this file");
    if repair {
        let threshold =
            match args.get("repair-threshold") {
                Some(t) => Some(t.parse::<usize>().map_err(|_| {
                    bad(format!("repair-threshold={t:?} is not a number of shares"))
                })?),
                None => None,
            };
        let r = gw.session.check_and_repair(&cap, verify, threshold).await?;
        if json {
            let body = serde_json::to_string_pretty(&repair_json(r.as_ref()))? + "\n";
            return Ok(text(StatusCode::OK, body));
        }
        return Ok(html_response(
            StatusCode::OK,
            html::repair_results(name, r.as_ref()),
        ));
    }
    let results = gw.session.check(&cap, verify).await?;
    if json {
        let body = serde_json::to_string_pretty(&check_json(results.as_ref()))? + "\n";
        return Ok(text(StatusCode::OK, body));
    }
    Ok(html_response(
        StatusCode::OK,
        html::check_results(name, results.as_ref()),
    ))
}
