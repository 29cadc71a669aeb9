//! The storage servers a client works with, as both immutable and mutable
//! files see them: who they are, the order a file sees them in (Tahoe's
//! permuted ring), and what a server got wrong.

use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::kinds::storage::{ShareNum, StorageIndex};
use crate::protocol::StorageService;

/// A storage server as the upload and download pipelines see it.
#[derive(Clone)]
pub struct ServerRef {
    /// A stable identifier for messages, placement and per-server secrets
    /// (the node id).
    pub id: String,
    /// Where it is on the network (host and port): servers announced at one
    /// location are one machine, and count once for happiness.
    pub location: String,
    /// The server's storage service.
    pub service: Arc<dyn StorageService>,
}

impl std::fmt::Debug for ServerRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ServerRef({})", self.id)
    }
}

/// The servers in the order this storage index sees them.
pub fn permuted(servers: &[ServerRef], si: &StorageIndex) -> Vec<ServerRef> {
    let mut keyed: Vec<([u8; 32], ServerRef)> = servers
        .iter()
        .map(|s| {
            let mut h = Sha256::new();
            h.update(si.as_bytes());
            h.update(s.id.as_bytes());
            (h.finalize().into(), s.clone())
        })
        .collect();
    keyed.sort_by_key(|k| k.0);
    keyed.into_iter().map(|(_, s)| s).collect()
}

/// A share found bad during a download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadShare {
    /// The server holding it.
    pub server: String,
    /// The share number.
    pub shnum: ShareNum,
    /// What was wrong.
    pub reason: String,
    /// True for failed integrity checks, false for a server that failed
    /// to answer.
    pub corrupt: bool,
}
