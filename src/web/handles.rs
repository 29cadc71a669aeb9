//! Tahoe-LAFS's operation handles: `POST ...?t=start-deep-stats&ophandle=H`
//! starts a walk and answers at once (302 to `/operations/H`); the client
//! polls `GET /operations/H?t=status&output=JSON` until `finished`, and
//! `release-after-complete=true` forgets it then.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

/// Handles kept at once: starting another beyond them fails until one is
/// released or (finished) forgotten.
const MAX_HANDLES: usize = 64;

/// An operation's result: `None` while it runs.
pub(super) type Slot = Arc<Mutex<Option<Value>>>;

/// The operations started by handle.
#[derive(Default)]
pub struct Handles {
    inner: Mutex<BTreeMap<String, Slot>>,
}

impl Handles {
    /// A slot for operation `name`; `None` when the name is taken or too
    /// many operations are kept (the oldest finished ones are forgotten
    /// first).
    pub(super) fn start(&self, name: &str) -> Option<Slot> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner.contains_key(name) {
            return None;
        }
        if inner.len() >= MAX_HANDLES {
            let done: Option<String> = inner
                .iter()
                .find(|(_, s)| s.lock().map(|v| v.is_some()).unwrap_or(true))
                .map(|(k, _)| k.clone());
            inner.remove(&done?);
        }
        let slot: Slot = Arc::new(Mutex::new(None));
        inner.insert(name.to_string(), slot.clone());
        Some(slot)
    }

    /// Operation `name`'s status as Tahoe's JSON (its result with
    /// `"finished": true`, or `{"finished": false}`); with `release`, a
    /// finished one is forgotten. `None` for an unknown handle.
    pub(super) fn status(&self, name: &str, release: bool) -> Option<Value> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let result = inner
            .get(name)?
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        Some(match result {
            Some(mut v) => {
                if release {
                    inner.remove(name);
                }
                v["finished"] = json!(true);
                v
            }
            None => json!({"finished": false}),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handle_runs_finishes_and_is_released() {
        let h = Handles::default();
        assert!(h.status("x", false).is_none(), "an unknown handle");
        let slot = h.start("x").unwrap();
        assert!(
            h.start("x").is_none(),
            "a handle in use is not started again"
        );
        assert_eq!(h.status("x", true), Some(json!({"finished": false})));
        *slot.lock().unwrap() = Some(json!({"count-files": 3}));
        let done = json!({"count-files": 3, "finished": true});
        assert_eq!(h.status("x", false), Some(done.clone()));
        assert_eq!(h.status("x", true), Some(done));
        assert!(h.status("x", false).is_none(), "released after completion");
    }

    #[test]
    fn running_operations_are_never_forgotten_to_make_room() {
        let h = Handles::default();
        let slots: Vec<Slot> = (0..MAX_HANDLES)
            .map(|i| h.start(&i.to_string()).unwrap())
            .collect();
        assert!(h.start("more").is_none(), "all running: no room");
        *slots[5].lock().unwrap() = Some(json!({}));
        assert!(h.start("more").is_some(), "a finished one made room");
        assert!(h.status("5", false).is_none());
        assert!(h.status("6", false).is_some());
    }
}
