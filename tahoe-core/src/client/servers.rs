//! The storage servers a client works with, as both immutable and mutable
//! files see them: who they are, the order a file sees them in (Tahoe's
//! permuted ring), and what a server got wrong.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

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

/// Servers of happiness: the size of a maximum matching between shares
/// (keyed by share number, or by version and share number) and the
/// servers holding them: how many servers hold a share no other counted
/// server holds.
pub fn servers_of_happiness<K: Ord>(holders: &BTreeMap<K, BTreeSet<String>>) -> usize {
    let servers: Vec<&String> = holders
        .values()
        .flatten()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let index = |id: &String| servers.iter().position(|s| *s == id).unwrap_or(0);
    let adj: Vec<Vec<usize>> = holders
        .values()
        .map(|ids| ids.iter().map(index).collect())
        .collect();
    let mut matched: Vec<Option<usize>> = vec![None; servers.len()];
    fn augment(
        u: usize,
        adj: &[Vec<usize>],
        seen: &mut [bool],
        matched: &mut [Option<usize>],
    ) -> bool {
        for &v in &adj[u] {
            if !seen[v] {
                seen[v] = true;
                if matched[v].is_none_or(|w| augment(w, adj, seen, matched)) {
                    matched[v] = Some(u);
                    return true;
                }
            }
        }
        false
    }
    (0..adj.len())
        .filter(|&u| augment(u, &adj, &mut vec![false; servers.len()], &mut matched))
        .count()
}

/// `server` with every call bounded by `deadline`: a call still running
/// then fails with `Timeout`, so one server that hangs costs an operation
/// at most that long.
pub fn with_deadline(server: &ServerRef, deadline: Duration) -> ServerRef {
    ServerRef {
        service: Arc::new(crate::protocol::StorageClient(Deadline {
            inner: server.service.clone(),
            deadline,
        })),
        ..server.clone()
    }
}

/// See [`with_deadline`].
struct Deadline {
    inner: Arc<dyn StorageService>,
    deadline: Duration,
}

#[async_trait::async_trait]
impl crate::protocol::StorageCarrier for Deadline {
    async fn call(
        &self,
        request: crate::protocol::StorageRequest,
    ) -> crate::Result<crate::protocol::StorageResponse> {
        let name = request.name();
        tokio::time::timeout(
            self.deadline,
            crate::protocol::serve_storage(self.inner.as_ref(), request),
        )
        .await
        .unwrap_or_else(|_| {
            Err(crate::Error::new(
                crate::ErrorKind::Timeout,
                format!("{name}: no answer within {:?}", self.deadline),
            ))
        })
    }
}
