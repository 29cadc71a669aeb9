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
use super::form::Args;
use super::html;
use super::reply::{html_response, text};
use super::state::Gateway;
use crate::client::json::check_json;

/// The options of `t=check` this gateway does not carry out yet: refused
/// with 501 rather than answered with a plain check that would pass for
/// the repair the caller asked for (so is `verify` of a mutable file).
const NOT_YET: [&str; 2] = ["repair", "add-lease"];

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
    let verify = args.flag("verify");
    if verify && !CheckTarget::of(&cap).can_verify() {
        return Err(HttpError::new(
            StatusCode::NOT_IMPLEMENTED,
            "t=check: verify=true of a mutable file or directory is not carried out yet",
        )
        .into());
    }
    let results = gw.session.check(&cap, verify).await?;
    if args
        .get("output")
        .is_some_and(|o| o.eq_ignore_ascii_case("json"))
    {
        let body = serde_json::to_string_pretty(&check_json(results.as_ref()))? + "\n";
        return Ok(text(StatusCode::OK, body));
    }
    let name = path.last().map(String::as_str).unwrap_or("this file");
    Ok(html_response(
        StatusCode::OK,
        html::check_results(name, results.as_ref()),
    ))
}
