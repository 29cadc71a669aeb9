//! Tahoe-LAFS's JSON shapes of files and directories (`?t=json`, `tahoe ls
//! --json`), and the format names and sizes they show.

use serde_json::{Value, json};
use tahoe_core::client::check::stats::DeepStats;
use tahoe_core::client::check::{CheckResults, RepairResults};
use tahoe_core::format::cap::{Cap, DirCap};
use tahoe_core::format::dirnode::{Directory, Metadata, Node};
use tahoe_core::format::ssk::MutableFormat;

/// Tahoe-LAFS's `format` of a file's cap (it calls LIT files CHK too).
pub fn format_of(cap: &Cap) -> &'static str {
    match cap {
        Cap::Chk(_) | Cap::ChkVerifier(_) | Cap::Lit(_) => "CHK",
        Cap::SskWrite(c) => format_name(c.format),
        Cap::SskRead(c) => format_name(c.format),
        Cap::SskVerifier(c) => format_name(c.format),
        Cap::Dir(d) => format_of(&d.file_cap()),
    }
}

fn format_name(f: MutableFormat) -> &'static str {
    match f {
        MutableFormat::Sdmf => "SDMF",
        MutableFormat::Mdmf => "MDMF",
    }
}

/// The verify cap of a cap, where it has one.
fn verify_cap(cap: &Cap) -> Option<Cap> {
    Some(match cap.read_only() {
        Cap::Chk(c) => Cap::ChkVerifier(c.verifier()),
        Cap::SskRead(r) => Cap::SskVerifier(r.verifier()),
        Cap::Dir(DirCap::Read(r)) => Cap::Dir(DirCap::Verify(r.verifier())),
        Cap::Dir(DirCap::Chk(c)) => Cap::Dir(DirCap::ChkVerifier(c.verifier())),
        _ => return None,
    })
}

/// The size a cap tells (immutable files and directories).
pub fn size_of(cap: &Cap) -> Option<u64> {
    match cap {
        Cap::Chk(c) => Some(c.size),
        Cap::Lit(l) => Some(l.data.len() as u64),
        _ => None,
    }
}

/// Tahoe-LAFS's JSON of one node: `["filenode"|"dirnode"|"unknown", {...}]`.
pub fn node_json(node: &Node, metadata: Option<&Metadata>) -> Value {
    let mut o = serde_json::Map::new();
    let kind = match node.known() {
        Some(cap) => {
            o.insert("mutable".into(), json!(cap.is_mutable()));
            if !node.is_dir() {
                o.insert("format".into(), json!(format_of(cap)));
            }
            if let Some(s) = size_of(cap) {
                o.insert("size".into(), json!(s));
            }
            if node.is_dir() { "dirnode" } else { "filenode" }
        }
        None => "unknown",
    };
    if let Some(md) = metadata {
        o.insert("metadata".into(), Value::Object(md.clone()));
    }
    if let Some(w) = &node.write {
        o.insert("rw_uri".into(), json!(w.to_string()));
    }
    if let Some(r) = &node.read {
        o.insert("ro_uri".into(), json!(r.to_string()));
    }
    if let Some(v) = node.known().and_then(verify_cap) {
        o.insert("verify_uri".into(), json!(v.to_string()));
    }
    json!([kind, Value::Object(o)])
}

/// Tahoe-LAFS's JSON of a directory with its children.
pub fn dir_json(node: &Node, dir: &Directory) -> Value {
    let mut children = serde_json::Map::new();
    for (name, e) in dir.entries() {
        let child = dir.node_of(name, e).unwrap_or_else(|_| Node {
            write: None,
            read: e.read_cap().cloned(),
        });
        children.insert(name.to_string(), node_json(&child, Some(e.metadata())));
    }
    let mut v = node_json(node, None);
    if let Some(o) = v[1].as_object_mut() {
        o.insert("children".into(), Value::Object(children));
    }
    v
}

/// Tahoe-LAFS's JSON of a check (`t=check&output=JSON`, and each unit's
/// `check-results` in a deep check): a literal file is healthy with no
/// storage index. `needs-rebalancing` and `servers-not-responding` are
/// ours, beside Tahoe's keys.
pub fn check_json(r: Option<&CheckResults>) -> Value {
    let Some(r) = r else {
        return json!({"storage-index": "", "results": {"healthy": true}});
    };
    let si = storage_index_text(&r.storage_index);
    json!({
        "storage-index": si,
        "summary": r.summary,
        "results": {
            "count-happiness": r.count_happiness,
            "count-shares-good": r.count_shares_good,
            "count-shares-needed": r.count_shares_needed,
            "count-shares-expected": r.count_shares_expected,
            "count-good-share-hosts": r.count_good_share_hosts,
            "count-corrupt-shares": r.corrupt_shares.len(),
            "list-corrupt-shares": r.corrupt_shares.iter()
                .map(|c| json!([c.server, si, c.shnum]))
                .collect::<Vec<_>>(),
            "servers-responding": r.servers_responding,
            "servers-not-responding": r.servers_not_responding.iter()
                .map(|(s, why)| json!([s, why]))
                .collect::<Vec<_>>(),
            "sharemap": r.sharemap,
            "count-wrong-shares": r.count_wrong_shares,
            "count-recoverable-versions": r.count_recoverable_versions,
            "count-unrecoverable-versions": r.count_unrecoverable_versions,
            "needs-rebalancing": r.needs_rebalancing,
            "healthy": r.healthy,
            "recoverable": r.recoverable,
        }
    })
}

/// A storage index as Tahoe writes it: base32, lower case, no padding.
pub fn storage_index_text(si: &tahoe_core::kinds::storage::StorageIndex) -> String {
    tahoe_core::base32::encode(si.as_bytes())
}

/// Tahoe-LAFS's JSON of a check with `repair=true`: a literal file needs
/// no repair. `repair-note` is ours: what was decided, or why it failed.
pub fn repair_json(r: Option<&RepairResults>) -> Value {
    let Some(r) = r else {
        return json!({"storage-index": "", "repair-attempted": false});
    };
    json!({
        "storage-index": storage_index_text(&r.pre.storage_index),
        "repair-attempted": r.attempted,
        "repair-successful": r.successful,
        "repair-note": r.note,
        "pre-repair-results": check_json(Some(&r.pre)),
        "post-repair-results": check_json(Some(&r.post)),
    })
}

/// A deep operation's unit for the object at `path` (Tahoe's
/// `t=stream-manifest` line): its cap, type, verify cap, repair cap and
/// storage index (empty strings where it has none).
pub fn unit_json(path: &[String], node: &Node) -> serde_json::Map<String, Value> {
    let cap = node.known();
    let text = |c: Option<Cap>| c.map(|c| c.to_string()).unwrap_or_default();
    let verify = cap.and_then(verify_cap);
    // A mutable object is repaired with its write cap (none when only
    // read); an immutable one with its verify cap.
    let repair = match cap {
        Some(c) if c.is_mutable() => c.is_write().then(|| c.clone()),
        _ => verify.clone(),
    };
    let si = match cap.map(tahoe_core::client::check::CheckTarget::of) {
        Some(tahoe_core::client::check::CheckTarget::Immutable(v)) => {
            storage_index_text(&v.storage_index)
        }
        Some(tahoe_core::client::check::CheckTarget::Mutable(v)) => {
            storage_index_text(&v.storage_index)
        }
        _ => String::new(),
    };
    let mut o = serde_json::Map::new();
    o.insert("path".into(), json!(path));
    o.insert("cap".into(), json!(text(cap.cloned())));
    o.insert(
        "type".into(),
        json!(if node.is_dir() { "directory" } else { "file" }),
    );
    o.insert("verifycap".into(), json!(text(verify)));
    o.insert("repaircap".into(), json!(text(repair)));
    o.insert("storage-index".into(), json!(si));
    o
}

/// The last unit of a deep operation: Tahoe's deep statistics.
pub fn stats_json(stats: &DeepStats) -> Value {
    let mut o = serde_json::Map::new();
    o.insert("api-version".into(), json!(1));
    for (k, v) in &stats.counts {
        o.insert((*k).into(), json!(v));
    }
    let histogram: Vec<[u64; 3]> = stats
        .histogram
        .iter()
        .map(|((lo, hi), n)| [*lo, *hi, *n])
        .collect();
    o.insert("size-files-histogram".into(), json!(histogram));
    json!({"type": "stats", "stats": o})
}
