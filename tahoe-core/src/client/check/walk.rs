//! Walking a tree: every object reachable from a directory, each once
//! however many links reach it (cycles included), parents before their
//! children, as a stream. Directories are read a few at a time; what is
//! held is the frontier of directories still to read and the set of
//! storage indexes seen, never the tree.

use std::collections::{HashSet, VecDeque};

use futures::future::join_all;
use tokio::sync::mpsc;

use super::CheckTarget;
use super::stats::DeepStats;
use crate::client::dirnode::DirClient;
use crate::format::cap::{Cap, DirCap};
use crate::format::dirnode::Node;
use crate::kinds::storage::StorageIndex;

/// Directories read at once.
pub const DIRS_AT_ONCE: usize = 4;

/// An object a walk reached.
#[derive(Debug, Clone)]
pub struct Reached {
    /// Its path from the root (empty for the root).
    pub path: Vec<String>,
    /// Its caps as its parent holds them.
    pub node: Node,
}

/// What a walk sends.
#[derive(Debug)]
pub enum Walked {
    /// An object reached.
    Node(Reached),
    /// A directory could not be read: the walk stops here.
    Error(String),
    /// The walk is over: what it counted.
    Done(DeepStats),
}

/// What identifies an object: its storage index. A literal object has
/// none and is reported wherever it is linked, as Tahoe does (it cannot
/// make a cycle).
fn identity(cap: &Cap) -> Option<StorageIndex> {
    CheckTarget::of(cap).storage_index()
}

/// Walk from `root`, sending each object reached, then the statistics.
/// A directory that cannot be read ends the walk with its error (path and
/// reason); so does the receiver going away.
pub fn walk(dirs: DirClient, root: Cap) -> mpsc::Receiver<Walked> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        let mut seen = HashSet::new();
        let mut stats = DeepStats::new();
        let mut frontier: VecDeque<(Vec<String>, DirCap)> = VecDeque::new();
        seen.extend(identity(&root));
        stats.add_node(Some(&root));
        if let Cap::Dir(d) = &root {
            frontier.push_back((Vec::new(), d.clone()));
        }
        let first = Reached {
            path: Vec::new(),
            node: Node::from_cap(root),
        };
        if tx.send(Walked::Node(first)).await.is_err() {
            return;
        }
        while !frontier.is_empty() {
            let batch: Vec<(Vec<String>, DirCap)> = (0..DIRS_AT_ONCE)
                .map_while(|_| frontier.pop_front())
                .collect();
            let listings = join_all(batch.iter().map(|(_, d)| dirs.read_sized(d))).await;
            for ((path, _), listing) in batch.into_iter().zip(listings) {
                let (listing, bytes) = match listing {
                    Ok(l) => l,
                    Err(e) => {
                        let at = format!("reading /{}: {e}", path.join("/"));
                        let _ = tx.send(Walked::Error(at)).await;
                        return;
                    }
                };
                stats.enter_directory(bytes, listing.len());
                for (name, entry) in listing.entries() {
                    let Ok(node) = listing.node_of(name, entry) else {
                        stats.add_node(None);
                        continue;
                    };
                    let Some(cap) = node.known() else {
                        stats.add_node(None);
                        continue;
                    };
                    if identity(cap).is_some_and(|si| !seen.insert(si)) {
                        continue;
                    }
                    stats.add_node(Some(cap));
                    let mut child = path.clone();
                    child.push(name.to_string());
                    if let Cap::Dir(d) = cap {
                        frontier.push_back((child.clone(), d.clone()));
                    }
                    let reached = Reached { path: child, node };
                    if tx.send(Walked::Node(reached)).await.is_err() {
                        return;
                    }
                }
            }
        }
        let _ = tx.send(Walked::Done(stats)).await;
    });
    rx
}
