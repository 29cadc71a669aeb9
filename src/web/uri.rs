//! Grid paths in URLs: `/uri/CAP/a/b` parsed, and made (the cap and names percent-encoded).

use anyhow::Result;
use tahoe_core::Error;
use tahoe_core::client::dirnode::split_path;
use tahoe_core::format::cap::Cap;

/// `/uri/CAP/a/b` split into the cap and the names.
pub fn target(path: &str) -> Result<Option<(Cap, Vec<String>)>> {
    let rest = path
        .strip_prefix("/uri")
        .ok_or_else(|| Error::not_found("nothing is served here"))?;
    let rest = rest.trim_start_matches('/');
    if rest.is_empty() {
        return Ok(None);
    }
    let (cap, names) = rest.split_once('/').unwrap_or((rest, ""));
    let cap = percent_encoding::percent_decode_str(cap).decode_utf8_lossy();
    let cap: Cap = cap
        .parse()
        .map_err(|e: Error| e.context("the cap in the URL"))?;
    let names: Vec<String> = names
        .split('/')
        .map(|n| {
            percent_encoding::percent_decode_str(n)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    Ok(Some((cap, split_path(&names.join("/"))?)))
}

/// Percent-encode one path segment or query value.
pub(super) fn percent_encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// The URL of `cap` followed by `path`.
pub fn uri_of(cap: &str, path: &[String]) -> String {
    let mut url = format!("/uri/{}", percent_encode(cap));
    for p in path {
        url.push('/');
        url.push_str(&percent_encode(p));
    }
    url
}
