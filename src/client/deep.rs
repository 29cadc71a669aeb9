//! The deep operations on a tree (Tahoe-LAFS's manifest and deep check):
//! every object reachable, as Tahoe's JSON units, checked or repaired a few
//! at a time, then the statistics. The web API streams the units; `tahoe
//! deep-check` and `tahoe manifest` print them.

use futures::{Stream, StreamExt};
use serde_json::{Value, json};
use tahoe_core::client::check::walk::Walked;

use super::json::{check_json, repair_json, stats_json, unit_json};
use super::session::{Checking, GridClient};

/// Objects checked at once.
const CHECKS_AT_ONCE: usize = 4;

/// What to do with each object.
#[derive(Debug, Clone, Copy)]
pub struct DeepHow {
    /// Check it, so (a deep check), else only list it (a manifest).
    pub check: Option<Checking>,
    /// Repair it too, with this threshold (`None`: the node's `happy`).
    pub repair: Option<Option<usize>>,
}

/// The units of a walk (`walked`), in its order: each object's (with its
/// `check-results` or `check-and-repair-results` in a deep check), then
/// the statistics unit. An error (a directory that cannot be read, a
/// check that fails) is the last item.
pub fn units<'a>(
    session: &'a GridClient,
    walked: tokio::sync::mpsc::Receiver<Walked>,
    how: DeepHow,
) -> impl Stream<Item = Result<Value, String>> + 'a {
    let mut walked = walked;
    futures::stream::poll_fn(move |cx| walked.poll_recv(cx))
        .map(move |w| async move {
            match w {
                Walked::Node(r) => {
                    let mut unit = unit_json(&r.path, &r.node);
                    if let Some(checking) = how.check {
                        let cap = r.node.known().ok_or("an entry of an unknown cap kind")?;
                        let (key, value) = match how.repair {
                            Some(threshold) => {
                                let done = session.check_and_repair(cap, checking, threshold).await;
                                let done = done.map_err(|e| format!("{e:#}"))?;
                                ("check-and-repair-results", repair_json(done.as_ref()))
                            }
                            None => {
                                let done = session.check(cap, checking).await;
                                let done = done.map_err(|e| format!("{e:#}"))?;
                                ("check-results", check_json(done.as_ref()))
                            }
                        };
                        unit.insert(key.into(), value);
                    }
                    Ok(Value::Object(unit))
                }
                Walked::Error(e) => Err(e),
                Walked::Done(stats) => Ok(stats_json(&stats)),
            }
        })
        .buffered(CHECKS_AT_ONCE)
}

/// A path as the units give it (a list of names), borrowed: empty for
/// the root, or for anything else than a list of names.
pub fn path_of(path: &Value) -> Vec<&str> {
    path.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// What a deep check's unit says of its object: its check results before
/// and after any repair (the same without repair), and the repair's
/// outcome.
pub struct UnitResults<'a> {
    /// Before any repair.
    pub pre: &'a Value,
    /// After any repair.
    pub post: &'a Value,
    /// A repair was attempted.
    pub attempted: bool,
    /// It succeeded.
    pub successful: bool,
}

/// The results `unit` carries (`check-and-repair-results` or
/// `check-results`).
pub fn unit_results(unit: &Value) -> UnitResults<'_> {
    match unit.get("check-and-repair-results") {
        Some(r) => UnitResults {
            pre: &r["pre-repair-results"],
            post: &r["post-repair-results"],
            attempted: r["repair-attempted"] == true,
            successful: r["repair-successful"] == true,
        },
        None => UnitResults {
            pre: &unit["check-results"],
            post: &unit["check-results"],
            attempted: false,
            successful: false,
        },
    }
}

/// Tahoe-LAFS's result of `t=start-deep-check` (with or without repair)
/// or `t=start-manifest`, gathered from a walk's units as they come. A
/// deep check keeps only its unhealthy objects; a manifest keeps every
/// object's path and cap (as Tahoe's does: the streaming forms are for
/// trees too large for that).
#[derive(Debug, Default)]
pub struct Gathered {
    how: Option<DeepHow>,
    root_si: String,
    checked: u64,
    /// Healthy and unhealthy objects, before and after any repair.
    pre: [u64; 2],
    post: [u64; 2],
    attempted: u64,
    successful: u64,
    corrupt_pre: Vec<Value>,
    corrupt_post: Vec<Value>,
    unhealthy: Vec<Value>,
    manifest: Vec<Value>,
    verifycaps: std::collections::BTreeSet<String>,
    storage_indexes: std::collections::BTreeSet<String>,
}

impl Gathered {
    /// Gathering the units of a walk done as `how` says.
    pub fn new(how: DeepHow) -> Gathered {
        Gathered {
            how: Some(how),
            ..Gathered::default()
        }
    }

    /// Take in one object's unit (not the statistics unit).
    pub fn add(&mut self, unit: &Value) {
        let si = unit["storage-index"].as_str().unwrap_or("");
        if unit["path"].as_array().is_some_and(Vec::is_empty) {
            self.root_si = si.to_string();
        }
        let checking = self.how.is_some_and(|h| h.check.is_some());
        if !checking {
            self.manifest.push(json!([unit["path"], unit["cap"]]));
            for (key, set) in [
                ("verifycap", &mut self.verifycaps),
                ("storage-index", &mut self.storage_indexes),
            ] {
                if let Some(v) = unit[key].as_str().filter(|v| !v.is_empty()) {
                    set.insert(v.to_string());
                }
            }
            return;
        }
        // A literal object is not checked (there is nothing on the grid).
        if si.is_empty() {
            return;
        }
        self.checked += 1;
        let UnitResults {
            pre,
            post,
            attempted,
            successful,
        } = unit_results(unit);
        self.attempted += u64::from(attempted);
        self.successful += u64::from(successful);
        let healthy = |r: &Value| r["results"]["healthy"] == true;
        self.pre[usize::from(!healthy(pre))] += 1;
        self.post[usize::from(!healthy(post))] += 1;
        let corrupt = |r: &Value| {
            r["results"]["list-corrupt-shares"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        };
        self.corrupt_pre.extend(corrupt(pre));
        self.corrupt_post.extend(corrupt(post));
        // The check results before any repair, as Tahoe 1.20 answers
        // (its docs say the repair's results; it sends these).
        if !healthy(pre) {
            self.unhealthy.push(json!([unit["path"], pre]));
        }
    }

    /// The result, with the walk's statistics unit `stats`.
    pub fn finish(self, stats: &Value) -> Value {
        let stats = stats["stats"].clone();
        let Some(DeepHow {
            check: Some(_),
            repair,
        }) = self.how
        else {
            return json!({
                "origin": self.root_si,
                "manifest": self.manifest,
                "verifycaps": self.verifycaps,
                "storage-index": self.storage_indexes,
                "stats": stats,
            });
        };
        if repair.is_none() {
            return json!({
                "root-storage-index": self.root_si,
                "count-objects-checked": self.checked,
                "count-objects-healthy": self.pre[0],
                "count-objects-unhealthy": self.pre[1],
                "count-corrupt-shares": self.corrupt_pre.len(),
                "list-corrupt-shares": self.corrupt_pre,
                "list-unhealthy-files": self.unhealthy,
                "stats": stats,
            });
        }
        json!({
            "root-storage-index": self.root_si,
            "count-objects-checked": self.checked,
            "count-objects-healthy-pre-repair": self.pre[0],
            "count-objects-unhealthy-pre-repair": self.pre[1],
            "count-objects-healthy-post-repair": self.post[0],
            "count-objects-unhealthy-post-repair": self.post[1],
            "count-repairs-attempted": self.attempted,
            "count-repairs-successful": self.successful,
            "count-repairs-unsuccessful": self.attempted - self.successful,
            "count-corrupt-shares-pre-repair": self.corrupt_pre.len(),
            "count-corrupt-shares-post-repair": self.corrupt_post.len(),
            "list-corrupt-shares": self.corrupt_pre,
            "list-remaining-corrupt-shares": self.corrupt_post,
            "list-unhealthy-files": self.unhealthy,
            "stats": stats,
        })
    }
}
