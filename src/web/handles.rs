//! Tahoe-LAFS's operation handles: `POST ...?t=start-deep-stats&ophandle=H`
//! (and `t=start-deep-check`, `t=start-manifest`) starts a walk and answers
//! at once (302 to `/operations/H`); the client polls `GET
//! /operations/H?t=status&output=JSON` until `finished`, and
//! `release-after-complete=true` forgets it then; `POST
//! /operations/H?t=cancel` stops it.
//!
//! How long a handle is kept, as Tahoe keeps it: while its operation runs;
//! once finished, four days (or as long as it ran, if longer) until it is
//! first collected, one day after that; `retain-for=SECONDS` on the start
//! or on a poll keeps it that long from then instead. At most 64 are kept:
//! starting another when full forgets the finished one due first, and
//! fails when every one is still running.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Handles kept at once.
const MAX_HANDLES: usize = 64;

/// A finished operation nobody has collected is kept this long (or as long
/// as it ran, if longer).
const UNCOLLECTED: Duration = Duration::from_secs(4 * 24 * 3600);

/// A finished operation is kept this long after it was first collected.
const COLLECTED: Duration = Duration::from_secs(24 * 3600);

/// Where an operation puts its result.
#[derive(Clone, Default)]
pub(super) struct Slot(Arc<Mutex<Option<(Value, Instant)>>>);

impl Slot {
    /// The operation is done: `result` is what `/operations/H` answers.
    pub(super) fn finish(&self, result: Value) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some((result, Instant::now()));
    }

    fn result(&self) -> Option<(Value, Instant)> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

struct Op {
    slot: Slot,
    started: Instant,
    collected: Option<Instant>,
    retain_until: Option<Instant>,
    task: Option<tokio::task::AbortHandle>,
}

impl Op {
    /// When a finished operation may be forgotten (`None`: running).
    fn due(&self) -> Option<Instant> {
        let (_, finished) = self.slot.result()?;
        Some(match (self.retain_until, self.collected) {
            (Some(until), _) => until,
            (None, Some(at)) => at + COLLECTED,
            (None, None) => finished + UNCOLLECTED.max(finished - self.started),
        })
    }
}

/// The operations started by handle.
#[derive(Default)]
pub struct Handles {
    inner: Mutex<BTreeMap<String, Op>>,
}

/// What `/operations/H` answers.
pub(super) struct Status {
    /// Tahoe's JSON: the result with `"finished": true`, or `{"finished":
    /// false}`.
    pub(super) json: Value,
    /// Whether the operation is done.
    pub(super) finished: bool,
}

impl Handles {
    /// A slot for operation `name`, kept for `retain` once finished when
    /// given; `None` when the name is taken or too many operations are
    /// kept and all still run.
    pub(super) fn start(&self, name: &str, retain: Option<Duration>) -> Option<Slot> {
        let mut inner = self.lock();
        if inner.contains_key(name) {
            return None;
        }
        if inner.len() >= MAX_HANDLES {
            let first_due = inner
                .iter()
                .filter_map(|(k, op)| Some((op.due()?, k.clone())))
                .min()?;
            inner.remove(&first_due.1);
        }
        let now = Instant::now();
        let slot = Slot::default();
        inner.insert(
            name.to_string(),
            Op {
                slot: slot.clone(),
                started: now,
                collected: None,
                retain_until: retain.map(|r| now + r),
                task: None,
            },
        );
        Some(slot)
    }

    /// The task carrying out operation `name`, so that it can be cancelled.
    pub(super) fn attach(&self, name: &str, task: tokio::task::AbortHandle) {
        if let Some(op) = self.lock().get_mut(name) {
            op.task = Some(task);
        }
    }

    /// Operation `name`'s status; with `release`, a finished one is
    /// forgotten; with `retain`, it is kept that long from now. `None` for
    /// an unknown (or forgotten) handle.
    pub(super) fn status(
        &self,
        name: &str,
        release: bool,
        retain: Option<Duration>,
    ) -> Option<Status> {
        let mut inner = self.lock();
        let op = inner.get_mut(name)?;
        let now = Instant::now();
        if let Some(r) = retain {
            op.retain_until = Some(now + r);
        }
        let Some((mut result, _)) = op.slot.result() else {
            return Some(Status {
                json: json!({"finished": false}),
                finished: false,
            });
        };
        op.collected.get_or_insert(now);
        if release {
            inner.remove(name);
        }
        result["finished"] = json!(true);
        Some(Status {
            json: result,
            finished: true,
        })
    }

    /// Stop operation `name` and forget it: its status as it was, `None`
    /// for an unknown handle.
    pub(super) fn cancel(&self, name: &str) -> Option<Status> {
        let status = self.status(name, false, None)?;
        if let Some(op) = self.lock().remove(name)
            && let Some(task) = op.task
        {
            task.abort();
        }
        Some(status)
    }

    /// The operations, with those due to be forgotten gone.
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Op>> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        inner.retain(|_, op| op.due().is_none_or(|due| due > now));
        inner
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json_of(s: Option<Status>) -> Option<Value> {
        s.map(|s| s.json)
    }

    #[test]
    fn a_handle_runs_finishes_and_is_released() {
        let h = Handles::default();
        assert!(h.status("x", false, None).is_none(), "an unknown handle");
        let slot = h.start("x", None).unwrap();
        assert!(
            h.start("x", None).is_none(),
            "a handle in use is not started again"
        );
        assert_eq!(
            json_of(h.status("x", true, None)),
            Some(json!({"finished": false}))
        );
        slot.finish(json!({"count-files": 3}));
        let done = json!({"count-files": 3, "finished": true});
        assert_eq!(json_of(h.status("x", false, None)), Some(done.clone()));
        assert_eq!(json_of(h.status("x", true, None)), Some(done));
        assert!(
            h.status("x", false, None).is_none(),
            "released after completion"
        );
    }

    #[test]
    fn running_operations_are_never_forgotten_to_make_room() {
        let h = Handles::default();
        let slots: Vec<Slot> = (0..MAX_HANDLES)
            .map(|i| h.start(&i.to_string(), None).unwrap())
            .collect();
        assert!(h.start("more", None).is_none(), "all running: no room");
        slots[5].finish(json!({}));
        assert!(h.start("more", None).is_some(), "a finished one made room");
        assert!(h.status("5", false, None).is_none());
        assert!(h.status("6", false, None).is_some());
    }

    #[test]
    fn retain_for_keeps_a_finished_handle_that_long_and_no_longer() {
        let h = Handles::default();
        let short = h.start("short", Some(Duration::ZERO)).unwrap();
        let kept = h.start("kept", None).unwrap();
        short.finish(json!({}));
        kept.finish(json!({}));
        // Due at once: gone at the next look.
        assert!(h.status("short", false, None).is_none());
        // A poll with retain-for=0 makes it due now.
        assert!(h.status("kept", false, Some(Duration::ZERO)).is_some());
        assert!(h.status("kept", false, None).is_none());
    }

    #[tokio::test]
    async fn cancel_stops_the_task_and_forgets_the_handle() {
        let h = Handles::default();
        let _slot = h.start("x", None).unwrap();
        let task = tokio::spawn(std::future::pending::<()>());
        h.attach("x", task.abort_handle());
        let status = h.cancel("x").unwrap();
        assert!(!status.finished);
        assert!(task.await.unwrap_err().is_cancelled());
        assert!(h.status("x", false, None).is_none());
        assert!(h.cancel("x").is_none());
    }
}
