//! Entry metadata as Tahoe-LAFS keeps it: the `tahoe` link and change
//! times, and the rest of the object as given.

use crate::format::dirnode::Metadata;

/// Tahoe-LAFS's `update_metadata`: `new` (if any) replaces everything but
/// the `tahoe` key; `tahoe.linkcrtime` is kept (or taken from an old
/// `ctime`, or set to `now`) and `tahoe.linkmotime` becomes `now`.
pub fn update_metadata(old: Option<Metadata>, new: Option<Metadata>, now: f64) -> Metadata {
    let old = old.unwrap_or_default();
    let old_ctime = old.get("ctime").cloned();
    let mut md = match new {
        Some(mut new) => {
            new.remove("tahoe");
            if let Some(t) = old.get("tahoe") {
                new.insert("tahoe".into(), t.clone());
            }
            new
        }
        None => old,
    };
    let mut sys = match md.get("tahoe") {
        Some(serde_json::Value::Object(o)) => o.clone(),
        _ => Metadata::new(),
    };
    if !sys.contains_key("linkcrtime") {
        let t = old_ctime.unwrap_or_else(|| now_value(now));
        sys.insert("linkcrtime".into(), t);
    }
    sys.insert("linkmotime".into(), now_value(now));
    md.insert("tahoe".into(), serde_json::Value::Object(sys));
    md
}

fn now_value(now: f64) -> serde_json::Value {
    serde_json::Number::from_f64(now)
        .map(serde_json::Value::Number)
        .unwrap_or(serde_json::Value::Null)
}
