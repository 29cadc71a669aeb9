//! What a running node reports about itself (`BASEDIR/status.json`), for
//! `tahoe status`, `tahoe start` and `tahoe demo`.

use crate::basedir::STATUS_FILE;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// What `status.json` says.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    /// "client" or "queen".
    pub role: String,
    /// The node id.
    pub node_id: String,
    /// Where it listens.
    pub address: String,
    /// For clients: whether the queen answered lately.
    pub queen_connected: Option<bool>,
    /// Storage servers known (clients) or announced (queen).
    pub known_servers: usize,
    /// Clients: the known servers whose connection is up now (a server
    /// stays known while it restarts). The queen: as `known_servers`.
    #[serde(default)]
    pub connected_servers: usize,
    /// Nicknames and addresses of the known servers.
    pub servers: Vec<(String, String)>,
    /// Process id.
    pub pid: u32,
}

pub(super) fn write_status(basedir: &Path, status: &Status) {
    if let Ok(json) = serde_json::to_vec_pretty(status) {
        let path = basedir.join(STATUS_FILE);
        let tmp = path.with_extension("tmp");
        let _ = std::fs::write(&tmp, json).and_then(|_| std::fs::rename(&tmp, &path));
    }
}
