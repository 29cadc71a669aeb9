//! ListObjects and ListObjectsV2: a bucket's tree as S3's flat, sorted
//! list of keys.
//!
//! S3 sorts keys by their bytes, which is not the order a walk of the tree
//! in name order gives (`a-b` sorts before `a/c`), so a listing reads the
//! directories that can hold keys with the prefix, sorts what it found,
//! and then applies the marker, the delimiter and the page size as S3
//! does. With the delimiter `/` (what nearly every client asks) a
//! directory under the prefix is a common prefix and is not read further;
//! an empty directory is then shown as a common prefix too (S3 has no
//! empty directories; here they exist when made by another front end).
//! Directories are read a few at a time; listings are cached by the file
//! system for its cache lifetime, so paging through a large bucket reads
//! each directory once per lifetime. A directory linked twice under the
//! prefix (or into itself: other front ends can make such links) is read
//! once, and one listing reads at most [`MAX_SEEN`] entries: past that it
//! fails rather than fill the node's memory.

use std::collections::BTreeSet;

use futures::StreamExt as _;

use crate::fs::{Fs, FsError, FsResult, Kind, Stat};

/// What a listing asks.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Only keys that start with this.
    pub prefix: String,
    /// Keys whose rest (after the prefix) holds this are rolled up into
    /// one common prefix ending with it.
    pub delimiter: Option<String>,
    /// Only keys (and common prefixes) after this.
    pub after: Option<String>,
    /// At most this many keys and common prefixes together.
    pub max_keys: usize,
}

/// One page.
#[derive(Debug, Default)]
pub struct Page {
    /// Objects, in key order.
    pub objects: Vec<(String, Stat)>,
    /// Common prefixes, in order.
    pub prefixes: Vec<String>,
    /// More keys follow.
    pub truncated: bool,
    /// The last key or prefix of this page (where the next one starts).
    pub last: Option<String>,
}

/// A directory's entries, or why not.
type Listed = FsResult<Vec<(String, Stat)>>;

/// How many directories are read at once.
const READ_AT_ONCE: usize = 8;

/// The most entries one listing reads.
pub const MAX_SEEN: usize = 1_000_000;

/// List `bucket` in `fs` as `q` asks.
pub async fn list(fs: &Fs, bucket: &str, q: &Query) -> FsResult<Page> {
    let slash_rolls_up = q.delimiter.as_deref() == Some("/");
    // Keys are NFC, as entry names: a prefix that is not can match none.
    for part in q.prefix.split('/').filter(|p| !p.is_empty()) {
        if Fs::name(part.as_bytes()).is_ok_and(|n| n != part) {
            return Err(FsError::BadName(
                "the prefix is not in Unicode NFC, as names on the grid are".into(),
            ));
        }
    }
    // The directory the prefix's complete parts name: nothing outside it
    // can start with the prefix.
    let start: Vec<String> = match q.prefix.rfind('/') {
        Some(i) => {
            let mut p = vec![bucket.to_string()];
            for part in q.prefix[..i].split('/') {
                match Fs::name(part.as_bytes()) {
                    Ok(n) if !part.is_empty() && part != "." && part != ".." => p.push(n),
                    // No key has such a part: nothing to list.
                    _ => return Ok(Page::default()),
                }
            }
            p
        }
        None => vec![bucket.to_string()],
    };
    let mut found: Vec<(String, Option<Stat>)> = Vec::new();
    let mut seen_dirs = std::collections::HashSet::new();
    if let Ok(s) = fs.stat(&start).await
        && let Some(c) = s.node.as_ref().and_then(|n| n.dir_cap())
    {
        seen_dirs.insert(c.to_string());
    }
    let mut seen = 0usize;
    let mut pending = vec![start];
    while !pending.is_empty() {
        let batch: Vec<Vec<String>> = pending.drain(..pending.len().min(READ_AT_ONCE)).collect();
        let read: Vec<(Vec<String>, Listed)> = futures::stream::iter(batch)
            .map(|dir| async move {
                let r = fs.list(&dir).await;
                (dir, r)
            })
            .buffered(READ_AT_ONCE)
            .collect()
            .await;
        for (dir, entries) in read {
            let entries = match entries {
                Ok(e) => e,
                // The prefix names a directory that is not there, or a
                // file: no keys. (The bucket itself was checked first.)
                Err(FsError::NotFound | FsError::NotDir) if dir.len() > 1 => continue,
                Err(e) => return Err(e),
            };
            let base = super::keys::key_of(&dir);
            seen += entries.len();
            if seen > MAX_SEEN {
                return Err(FsError::Invalid(format!(
                    "more than {MAX_SEEN} entries under this prefix: list a longer prefix, \
                     or with the delimiter `/`"
                )));
            }
            for (name, stat) in entries {
                let key = if base.is_empty() {
                    name.clone()
                } else {
                    format!("{base}/{name}")
                };
                if stat.kind == Kind::File {
                    if key.starts_with(&q.prefix) {
                        found.push((key, Some(stat)));
                    }
                    continue;
                }
                let as_prefix = format!("{key}/");
                if as_prefix.starts_with(&q.prefix) && slash_rolls_up {
                    found.push((as_prefix, None));
                } else if as_prefix.starts_with(&q.prefix) || q.prefix.starts_with(&as_prefix) {
                    let cap = stat
                        .node
                        .as_ref()
                        .and_then(|n| n.dir_cap())
                        .map(|c| c.to_string());
                    if cap.is_some_and(|c| seen_dirs.insert(c)) {
                        let mut sub = dir.clone();
                        sub.push(name);
                        pending.push(sub);
                    }
                }
            }
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(page(found, q))
}

/// Roll keys up by the delimiter, skip to after the marker and cut the
/// page (keys sorted; `None` stats are common prefixes already).
fn page(found: Vec<(String, Option<Stat>)>, q: &Query) -> Page {
    let mut out = Page::default();
    let mut seen_prefixes = BTreeSet::new();
    let mut count = 0;
    for (key, stat) in found {
        if !key.starts_with(&q.prefix) {
            continue;
        }
        let rolled = match (&stat, q.delimiter.as_deref()) {
            (None, _) => Some(key.clone()),
            (Some(_), Some(d)) if !d.is_empty() => key[q.prefix.len()..]
                .find(d)
                .map(|i| key[..q.prefix.len() + i + d.len()].to_string()),
            _ => None,
        };
        let shown = rolled.clone().unwrap_or_else(|| key.clone());
        if q.after
            .as_ref()
            .is_some_and(|a| shown.as_str() <= a.as_str())
        {
            continue;
        }
        if rolled.is_some() && seen_prefixes.contains(&shown) {
            continue;
        }
        if count == q.max_keys {
            out.truncated = true;
            break;
        }
        count += 1;
        out.last = Some(shown.clone());
        match (rolled, stat) {
            (Some(p), _) => {
                seen_prefixes.insert(p.clone());
                out.prefixes.push(p);
            }
            (None, Some(s)) => out.objects.push((key, s)),
            (None, None) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn file() -> Option<Stat> {
        Some(Stat {
            kind: Kind::File,
            size: 1,
            mtime: UNIX_EPOCH,
            node: None,
            writable: true,
            metadata: None,
            version: None,
        })
    }

    fn keys(names: &[&str]) -> Vec<(String, Option<Stat>)> {
        let mut v: Vec<_> = names.iter().map(|k| (k.to_string(), file())).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    fn shown(p: &Page) -> (Vec<&str>, Vec<&str>) {
        (
            p.objects.iter().map(|(k, _)| k.as_str()).collect(),
            p.prefixes.iter().map(String::as_str).collect(),
        )
    }

    #[test]
    fn a_delimiter_rolls_keys_up_and_pages_resume_after_the_last() {
        let all = keys(&["a-b", "a/c", "a/d", "b", "c/x/y", "c/z"]);
        let q = Query {
            delimiter: Some("/".into()),
            max_keys: 2,
            ..Query::default()
        };
        let p = page(all.clone(), &q);
        assert_eq!(shown(&p), (vec!["a-b"], vec!["a/"]));
        assert!(p.truncated);
        let q2 = Query {
            after: p.last.clone(),
            ..q.clone()
        };
        let p2 = page(all.clone(), &q2);
        assert_eq!(shown(&p2), (vec!["b"], vec!["c/"]));
        assert!(!p2.truncated);
        // A prefix and another delimiter.
        let q3 = Query {
            prefix: "c/".into(),
            delimiter: Some("y".into()),
            max_keys: 1000,
            ..Query::default()
        };
        assert_eq!(shown(&page(all, &q3)), (vec!["c/z"], vec!["c/x/y"]));
    }
}
