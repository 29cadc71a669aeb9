//! Directory operations: making directories (with children from a bounded JSON body), linking caps, and resolving paths.

use anyhow::Result;
use axum::body::Body;
use tahoe_core::Error;
use tahoe_core::client::dirnode::{DirClient, split_path};
use tahoe_core::format::cap::{Cap, DirCap};
use tahoe_core::format::dirnode::{ChildCap, Metadata, Node, Replace};
use tahoe_core::format::ssk::MutableFormat;

use super::error::bad;
use super::form::{self, Args};
use super::state::Gateway;
use super::uri::target;

/// A new directory for `t=mkdir`, `mkdir-with-children` (the JSON body's
/// children) or `mkdir-immutable`; its cap.
pub(super) async fn make_dir(gw: &Gateway, args: &Args, body: Body) -> Result<String> {
    let dirs = gw.dirs().await?;
    let cap = match args.t() {
        "mkdir-immutable" => {
            dirs.create_immutable(read_children(body, gw.body_timeout).await?)
                .await?
        }
        t => {
            let format = args.mutable_format()?.unwrap_or(MutableFormat::Sdmf);
            let children = if t == "mkdir-with-children" {
                read_children(body, gw.body_timeout).await?
            } else {
                Vec::new()
            };
            dirs.create(format, children).await?
        }
    };
    Ok(Cap::Dir(cap).to_string())
}

/// The directory cap a request's path starts from.
pub(super) fn dir_root(root: &Cap) -> Result<&DirCap> {
    match root {
        Cap::Dir(d) => Ok(d),
        other => Err(bad(format!(
            "the cap in the URL is {} cap, which has no entries",
            other.a_kind()
        ))),
    }
}

/// The directory holding the last name of `path`, and that name.
pub(super) async fn parent_of(
    dirs: &DirClient,
    root: &Cap,
    path: &[String],
) -> Result<(DirCap, String)> {
    let Some((name, parent)) = path.split_last() else {
        return Err(bad("this needs a path to an entry: /uri/DIRCAP/NAME"));
    };
    let root = dir_root(root)?;
    Ok((dirs.resolve_dir(root, parent).await?, name.clone()))
}

pub(super) async fn resolve(dirs: &DirClient, root: Cap, path: &[String]) -> Result<Node> {
    if path.is_empty() {
        return Ok(Node::from_cap(root));
    }
    let d = dir_root(&root)?;
    Ok(dirs.resolve(d, path).await?)
}

/// Link the cap `cap_text` at `name` in `dir` (`t=uri`).
pub(super) async fn attach(
    dirs: &DirClient,
    dir: &DirCap,
    name: &str,
    cap_text: &str,
    args: &Args,
) -> Result<(String, bool)> {
    let cap: Cap = cap_text
        .parse()
        .map_err(|e: Error| e.context("the cap to attach"))?;
    let existed = dirs.read(dir).await?.node(name)?.is_some();
    let node = Node::from_cap(cap);
    let shown = node.cap().map(ChildCap::to_string).unwrap_or_default();
    dirs.add(dir, name, node, None, args.replace(Replace::Always)?)
        .await?;
    Ok((shown, !existed))
}

/// `to_dir=` of `t=relink`: a directory cap, `/uri/CAP/PATH`, or a path
/// under the directory of the request.
pub(super) async fn relink_target(dirs: &DirClient, here: &DirCap, to: &str) -> Result<DirCap> {
    let (root, path) = match target(to) {
        Ok(Some((cap, path))) => (cap, path),
        _ if to.starts_with("URI:") => (to.parse::<Cap>()?, Vec::new()),
        _ => (Cap::Dir(here.clone()), split_path(to)?),
    };
    match root {
        Cap::Dir(d) => Ok(dirs.resolve_dir(&d, &path).await?),
        other => Err(bad(format!(
            "to_dir is {} cap, not a directory's",
            other.a_kind()
        ))),
    }
}

/// The most bytes of a JSON body (`mkdir-with-children`,
/// `mkdir-immutable`, `set_children`). Decision: 8 MiB, some 40,000
/// entries; parsed into typed children (metadata kept as JSON text until
/// each entry is built) it stays within a few times its size in memory,
/// where a whole-document parse took 36 times. A larger directory is
/// made in several `set_children` calls.
pub(super) const MAX_JSON_BODY: usize = 8 << 20;

/// One child as `set_children` and `mkdir-with-children` take it:
/// `["filenode"|"dirnode", {"rw_uri", "ro_uri", "metadata"}]`.
#[derive(serde::Deserialize)]
pub(super) struct ChildSpec(#[allow(dead_code)] serde::de::IgnoredAny, ChildFields);

#[derive(serde::Deserialize)]
pub(super) struct ChildFields {
    rw_uri: Option<String>,
    ro_uri: Option<String>,
    metadata: Option<Box<serde_json::value::RawValue>>,
}

/// The children of a JSON body: `{NAME: CHILD, ...}`.
pub(super) async fn read_children(
    body: Body,
    timeout: std::time::Duration,
) -> Result<Vec<(String, Node, Metadata)>> {
    let bytes = form::read_body(body, MAX_JSON_BODY, timeout).await?;
    let specs: Vec<(String, ChildSpec)> = {
        use serde::de::{Deserializer, MapAccess, Visitor};
        // In body order, as a list: duplicates are the directory's to refuse.
        struct InOrder;
        impl<'de> Visitor<'de> for InOrder {
            type Value = Vec<(String, ChildSpec)>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object of children")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry::<String, ChildSpec>()? {
                    out.push(entry);
                }
                Ok(out)
            }
        }
        serde_json::Deserializer::from_slice(&bytes)
            .deserialize_map(InOrder)
            .map_err(|e| bad(format!("the body is not a JSON object of children: {e}")))?
    };
    drop(bytes);
    specs
        .into_iter()
        .map(|(name, ChildSpec(_, fields))| {
            let cap = |key: &str, v: Option<String>| -> Result<Option<ChildCap>> {
                match v {
                    Some(s) => Ok(ChildCap::parse(&s)
                        .map_err(|e| e.context(format!("child {name:?} {key}")))?),
                    None => Ok(None),
                }
            };
            let node = Node {
                write: cap("rw_uri", fields.rw_uri)?,
                read: cap("ro_uri", fields.ro_uri)?,
            };
            let md: Metadata = match fields.metadata {
                Some(raw) => serde_json::from_str::<Option<Metadata>>(raw.get())
                    .map_err(|_| bad(format!("child {name:?}: metadata must be a JSON object")))?
                    .unwrap_or_default(),
                None => Metadata::default(),
            };
            Ok((name, node, md))
        })
        .collect()
}

/// `t=mkdir` (PATH/`name=`, or PATH, made with its parents; a directory
/// already there is kept), `t=mkdir-with-children` and `t=mkdir-immutable`
/// (a new directory linked at `name=` or PATH); the directory's cap.
pub(super) async fn mkdir_at(
    gw: &Gateway,
    dirs: &DirClient,
    root: &Cap,
    path: &[String],
    args: &Args,
    body: Body,
) -> Result<String> {
    let root_dir = dir_root(root)?;
    let name = args.get("name").filter(|n| !n.is_empty());
    if args.t() == "mkdir" {
        let mut full = path.to_vec();
        if let Some(n) = name {
            full.extend(split_path(n)?);
        }
        let format = args.mutable_format()?.unwrap_or(MutableFormat::Sdmf);
        return Ok(Cap::Dir(dirs.mkdir_p(root_dir, &full, format).await?).to_string());
    }
    let (dir, name) = match name {
        Some(n) => (dirs.resolve_dir(root_dir, path).await?, n.to_string()),
        None => parent_of(dirs, root, path).await?,
    };
    let cap = make_dir(gw, args, body).await?;
    attach(dirs, &dir, &name, &cap, args).await?;
    Ok(cap)
}

/// `t=set_children`: link the JSON body's children in one change (a child
/// already there with the same read cap is left as it is after a retry).
pub(super) async fn set_children(
    gw: &Gateway,
    dirs: &DirClient,
    dir: &DirCap,
    args: &Args,
    body: Body,
) -> Result<()> {
    let children = read_children(body, gw.body_timeout).await?;
    let replace = args.replace(Replace::Always)?;
    dirs.modify(dir, move |d, first| {
        for (name, node, md) in &children {
            let same = !first
                && d.get(name)
                    .is_some_and(|e| e.read_cap() == node.read.as_ref());
            if !same {
                d.set(
                    name,
                    node.clone(),
                    Some(md.clone()),
                    replace,
                    tahoe_core::client::dirnode::now(),
                )?;
            }
        }
        Ok(())
    })
    .await?;
    Ok(())
}
