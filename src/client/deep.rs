//! The deep operations on a tree (Tahoe-LAFS's manifest and deep check):
//! every object reachable, as Tahoe's JSON units, checked or repaired a few
//! at a time, then the statistics. The web API streams the units; `tahoe
//! deep-check` and `tahoe manifest` print them.

use futures::{Stream, StreamExt};
use serde_json::Value;
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
