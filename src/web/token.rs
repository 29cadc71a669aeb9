//! The node's web token: what lets a browser see the caps this node holds.
//!
//! The gateway listens on loopback, where every local user can reach it,
//! while the caps the node keeps (the shared drive's write cap above all)
//! sit in files only its owner can read. So a page shows a cap only to a
//! request that carried that cap (in its URL, as Tahoe's pages work) or
//! the node's web token: a random secret in `private/web.token` (0600).
//! `tahoe demo` and `tahoe webopen` print a URL carrying the token once;
//! opening it sets an `HttpOnly; SameSite=Strict` cookie and redirects to
//! the same URL without the token, as Jupyter does, so the token neither
//! stays in the address bar nor leaves in a `Referer`. Programs keep using
//! caps, as Tahoe's do.

use crate::basedir::TOKEN_FILE;
use std::path::Path;

use anyhow::{Context, Result};
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::Response;
use tahoe_core::kinds::storage::constant_time_eq;
use tahoe_core::protocol::identity::write_private;

/// The cookie that carries it.
const COOKIE: &str = "tahoe_web_token";
/// The query argument that carries it once.
const ARG: &str = "token";

/// The token of the node in `basedir`, made on first use.
pub fn load_or_create(basedir: &Path) -> Result<String> {
    let path = basedir.join(TOKEN_FILE);
    match std::fs::read_to_string(&path) {
        Ok(t) if !t.trim().is_empty() => return Ok(t.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| anyhow::anyhow!("random: {e}"))?;
    let token = tahoe_core::base32::encode(&b);
    write_private(&path, format!("{token}\n").as_bytes())?;
    Ok(token)
}

/// `url` (a gateway URL) carrying the token of the node in `basedir`.
pub fn with_token(url: &str, basedir: &Path) -> Result<String> {
    let token = load_or_create(basedir)?;
    let sep = if url.contains('?') { '&' } else { '?' };
    Ok(format!("{url}{sep}{ARG}={token}"))
}

/// Whether a request carries the token in its cookie.
pub fn holds(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .any(|(k, v)| k == COOKIE && constant_time_eq(v.as_bytes(), token.as_bytes()))
}

/// The answer to a request whose URL carries a token: with the right one,
/// the cookie and a redirect to the URL without it; with a wrong one,
/// `403`. `None` when the URL carries none.
pub fn exchange(uri: &Uri, token: &str) -> Option<Response> {
    let query = uri.query()?;
    let pairs: Vec<&str> = query.split('&').collect();
    let given = pairs.iter().find_map(|p| p.strip_prefix("token="))?;
    let mut r = Response::new(Body::empty());
    if !constant_time_eq(given.as_bytes(), token.as_bytes()) {
        *r.status_mut() = StatusCode::FORBIDDEN;
        *r.body_mut() = Body::from("this is not this node's web token\n");
        return Some(r);
    }
    let rest: Vec<&str> = pairs
        .into_iter()
        .filter(|p| !p.starts_with("token="))
        .collect();
    let clean = if rest.is_empty() {
        uri.path().to_string()
    } else {
        format!("{}?{}", uri.path(), rest.join("&"))
    };
    *r.status_mut() = StatusCode::SEE_OTHER;
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&clean) {
        h.insert(header::LOCATION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/"
    )) {
        h.insert(header::SET_COOKIE, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_in_the_url_becomes_a_cookie_and_leaves_the_url() {
        let dir = tempfile::tempdir().expect("tempdir");
        let token = load_or_create(dir.path()).expect("token");
        assert_eq!(load_or_create(dir.path()).expect("again"), token);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(TOKEN_FILE))
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let uri: Uri = format!("/uri/X?t=info&token={token}&a=b")
            .parse()
            .expect("uri");
        let r = exchange(&uri, &token).expect("an exchange");
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(r.headers()[header::LOCATION], "/uri/X?t=info&a=b");
        let cookie = r.headers()[header::SET_COOKIE].to_str().expect("text");
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("a=b; {}", cookie.split(';').next().expect("pair")))
                .expect("header"),
        );
        assert!(holds(&h, &token));
        assert!(!holds(&HeaderMap::new(), &token));
        let wrong: Uri = "/?token=nope".parse().expect("uri");
        assert_eq!(
            exchange(&wrong, &token).expect("refused").status(),
            StatusCode::FORBIDDEN
        );
        assert!(exchange(&"/?t=json".parse().expect("uri"), &token).is_none());
    }
}
