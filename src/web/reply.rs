//! The shapes of an answer: text, JSON, a page (with the gateway's content security policy), a static asset, and a redirect that stays on the gateway.

use super::error::bad;
use super::form::Args;
use super::stats::ReqKind;
use anyhow::Result;
use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

pub(super) fn text(status: StatusCode, body: impl Into<String>) -> Response {
    let mut r = (status, body.into()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

pub(super) fn json(v: &serde_json::Value) -> Response {
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
pub(super) const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub(super) fn html_response(status: StatusCode, body: String) -> Response {
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

pub(super) fn asset(content_type: &'static str, body: &'static str) -> Response {
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
pub(super) fn stays_here(to: &str) -> bool {
    to.starts_with('/')
        && !to[1..].starts_with('/')
        && !to
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
}

/// `303 See Other` to a path of this gateway.
pub(super) fn redirect(to: &str) -> Result<Response> {
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

pub(super) fn kind(mut r: Response, kind: ReqKind) -> Response {
    r.extensions_mut().insert(kind);
    r
}

/// The answer to a request that changed something: `body` (with
/// `status`), or a redirect when `when_done=` or `redirect_to_result=`
/// asks for one (`result`: the page of what was made).
pub(super) fn done(
    args: &Args,
    status: StatusCode,
    body: String,
    result: Option<String>,
) -> Result<Response> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
