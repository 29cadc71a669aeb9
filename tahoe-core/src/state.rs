//! Versioned JSON state files: what a node's long-running duties (the
//! lease crawler, maintenance) keep between runs. Each file carries a
//! `version`; one newer than the reader's is refused by name, never
//! misread, and a file is replaced whole (a temporary file renamed over
//! it), so a crash leaves the old state or the new.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};

/// Refuse `bytes` (the state file at `path`, holding `what`) when its
/// `version` is newer than `current`. A file without a readable version
/// passes: what to do with damage is the caller's.
pub fn check_version(bytes: &[u8], current: u32, path: &Path, what: &str) -> Result<()> {
    #[derive(Deserialize)]
    struct Versioned {
        version: u32,
    }
    match serde_json::from_slice::<Versioned>(bytes) {
        Ok(v) if v.version > current => Err(Error::invalid_input(format!(
            "{} is {what} version {}, newer than this build reads ({current}): run the newer tahoe, or move the file away to start over",
            path.display(),
            v.version
        ))),
        _ => Ok(()),
    }
}

/// Write `state` as JSON to `path` atomically (its folder made if
/// needed): blocking.
pub fn save<T: Serialize>(path: &Path, state: &T) -> Result<()> {
    let io = |what: &str, p: &Path, e: std::io::Error| {
        Error::new(ErrorKind::Io, format!("{what} {}: {e}", p.display()))
    };
    let json = serde_json::to_vec_pretty(state).map_err(|e| Error::internal(e.to_string()))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io("creating", dir, e))?;
    }
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, json)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| io("writing", path, e))
}
