//! Where an upload's shares go: Tahoe's permuted ring and servers of
//! happiness.
//!
//! Every file sees the servers in its own order (sorted by
//! `SHA-256(storage index || server id)`), so load spreads evenly and a
//! downloader can guess where to look. Shares are handed out round-robin
//! along that ring; a server that refuses or fails gives its shares back to
//! be placed on the next ones. The upload counts as done only if the shares
//! reach `happy` distinct servers in the sense of Tahoe's servers of
//! happiness: the size of a maximum matching between servers and the
//! distinct shares they hold, so that any k of those servers hold k
//! different shares.
//!
//! [`HappySink`] does this as a [`ShareSink`]: it places at start, and when a
//! server fails in the middle of an upload it drops that server's shares and
//! carries on as long as happiness still holds.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;
use futures::future::join_all;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::immutable::sink::{ServerRef, ShareSink, UploadSecrets};
use crate::protocol::{AllocateRequest, write_bucket_chunked};
use crate::storage::{ShareNum, StorageIndex};

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

/// Servers of happiness: the size of a maximum matching between shares and
/// the servers holding them.
pub fn happiness(holders: &BTreeMap<ShareNum, BTreeSet<String>>) -> usize {
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

#[derive(Default)]
struct Placed {
    si: Option<StorageIndex>,
    /// Shares this upload writes, and where.
    writing: BTreeMap<ShareNum, ServerRef>,
    /// Who holds (or will hold) each share.
    holders: BTreeMap<ShareNum, BTreeSet<String>>,
}

/// A sink that places shares by the permuted ring and enforces happiness.
pub struct HappySink {
    servers: Vec<ServerRef>,
    k: u16,
    happy: u16,
    n: u16,
    secrets: UploadSecrets,
    placed: Mutex<Placed>,
}

impl HappySink {
    /// Place `n` shares on `servers` (all known, connected servers), needing
    /// `happy` of them.
    pub fn new(
        servers: Vec<ServerRef>,
        k: u16,
        happy: u16,
        n: u16,
        secrets: UploadSecrets,
    ) -> Self {
        HappySink {
            servers,
            k,
            happy,
            n,
            secrets,
            placed: Mutex::new(Placed::default()),
        }
    }

    fn placed(&self) -> Result<std::sync::MutexGuard<'_, Placed>> {
        self.placed
            .lock()
            .map_err(|_| Error::internal("placement state poisoned"))
    }

    fn unhappy(&self, achieved: usize, known: usize, notes: &[String]) -> Error {
        let mut msg = format!(
            "shares could be placed on only {achieved} server(s), but {} are needed \
             (servers of happiness, k={}, n={}); {known} server(s) tried",
            self.happy, self.k, self.n
        );
        if !notes.is_empty() {
            msg.push_str(&format!("; {}", notes.join("; ")));
        }
        Error::unhappy(msg)
    }

    /// Drop every share a failed server was to hold; fail if happiness is
    /// lost.
    async fn drop_server(&self, id: &str, why: &Error) -> Result<()> {
        let (si, dropped, achieved) = {
            let mut p = self.placed()?;
            let dropped: Vec<(ShareNum, ServerRef)> = p
                .writing
                .iter()
                .filter(|(_, s)| s.id == id)
                .map(|(n, s)| (*n, s.clone()))
                .collect();
            for (shnum, _) in &dropped {
                p.writing.remove(shnum);
            }
            for ids in p.holders.values_mut() {
                ids.remove(id);
            }
            p.holders.retain(|_, ids| !ids.is_empty());
            (p.si, dropped, happiness(&p.holders))
        };
        tracing::warn!("dropping server {id} from the upload: {why}");
        if let Some(si) = si {
            for (shnum, server) in dropped {
                let _ = server
                    .service
                    .abort_bucket(si, shnum, self.secrets.upload)
                    .await;
            }
        }
        if achieved < usize::from(self.happy) {
            return Err(self.unhappy(
                achieved,
                self.servers.len(),
                &[format!("server {id} failed: {why}")],
            ));
        }
        Ok(())
    }
}

impl HappySink {
    /// Run `op` for every placed share at once; a server whose call fails
    /// is dropped from the upload (which fails only if happiness is lost).
    async fn on_each_placed<F, Fut>(&self, mut op: F) -> Result<()>
    where
        F: FnMut(StorageIndex, ShareNum, ServerRef) -> Fut,
        Fut: std::future::Future<Output = Result<()>>,
    {
        let (si, targets) = {
            let p = self.placed()?;
            let si =
                p.si.ok_or_else(|| Error::internal("upload used before start"))?;
            (si, p.writing.clone())
        };
        let calls = targets.into_iter().map(|(shnum, server)| {
            let call = op(si, shnum, server.clone());
            async move { (server, call.await) }
        });
        for (server, r) in join_all(calls).await {
            if let Err(e) = r {
                self.drop_server(&server.id, &e).await?;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl ShareSink for HappySink {
    async fn start(&self, si: &StorageIndex, share_size: u64) -> Result<Vec<ShareNum>> {
        let mut usable: Vec<ServerRef> = permuted(&self.servers, si);
        let mut unplaced: VecDeque<ShareNum> = (0..self.n).map(|i| i as ShareNum).collect();
        let mut writing: BTreeMap<ShareNum, ServerRef> = BTreeMap::new();
        let mut holders: BTreeMap<ShareNum, BTreeSet<String>> = BTreeMap::new();
        let mut notes = Vec::new();
        while !unplaced.is_empty() && !usable.is_empty() {
            // One round: each usable server is asked for at most one share.
            let mut asks: Vec<(ServerRef, Vec<ShareNum>)> = Vec::new();
            for server in &usable {
                let Some(s) = unplaced.pop_front() else { break };
                asks.push((server.clone(), vec![s]));
            }
            let answers = join_all(asks.into_iter().map(|(server, shares)| {
                let req = AllocateRequest {
                    storage_index: *si,
                    share_numbers: shares.clone(),
                    share_size,
                    renew_secret: self.secrets.renew,
                    cancel_secret: self.secrets.cancel,
                    upload_secret: self.secrets.upload,
                };
                async move {
                    let r = server.service.allocate_buckets(req).await;
                    (server, shares, r)
                }
            }))
            .await;
            for (server, shares, answer) in answers {
                match answer {
                    Ok(resp) => {
                        let mut took_all = true;
                        for s in shares {
                            if resp.allocated.contains(&s) {
                                writing.insert(s, server.clone());
                                holders.entry(s).or_default().insert(server.id.clone());
                            } else if resp.already_have.contains(&s) {
                                holders.entry(s).or_default().insert(server.id.clone());
                            } else {
                                took_all = false;
                                unplaced.push_back(s);
                            }
                        }
                        if !took_all {
                            notes.push(format!("server {} is full or read-only", server.id));
                            usable.retain(|u| u.id != server.id);
                        }
                    }
                    Err(e) => {
                        notes.push(format!("server {} failed: {e}", server.id));
                        unplaced.extend(shares);
                        usable.retain(|u| u.id != server.id);
                    }
                }
            }
        }
        let achieved = happiness(&holders);
        if achieved < usize::from(self.happy) {
            for (shnum, server) in &writing {
                let _ = server
                    .service
                    .abort_bucket(*si, *shnum, self.secrets.upload)
                    .await;
            }
            return Err(self.unhappy(achieved, self.servers.len(), &notes));
        }
        let to_write: Vec<ShareNum> = writing.keys().copied().collect();
        *self.placed()? = Placed {
            si: Some(*si),
            writing,
            holders,
        };
        Ok(to_write)
    }

    async fn write(&self, offset: u64, pieces: Vec<(ShareNum, Bytes)>) -> Result<()> {
        let mut pieces: BTreeMap<ShareNum, Bytes> = pieces.into_iter().collect();
        let secret = self.secrets.upload;
        self.on_each_placed(|si, shnum, server| {
            let data = pieces.remove(&shnum);
            async move {
                match data {
                    Some(d) => {
                        write_bucket_chunked(server.service.as_ref(), si, shnum, secret, offset, d)
                            .await
                    }
                    None => Ok(()),
                }
            }
        })
        .await
    }

    async fn finish(&self) -> Result<()> {
        let secret = self.secrets.upload;
        self.on_each_placed(|si, shnum, server| async move {
            server.service.close_bucket(si, shnum, secret).await
        })
        .await
    }

    async fn abort(&self) {
        let Ok((si, targets)) = self.placed().map(|p| (p.si, p.writing.clone())) else {
            return;
        };
        let Some(si) = si else { return };
        let secret = self.secrets.upload;
        join_all(targets.into_iter().map(|(shnum, server)| async move {
            let _ = server.service.abort_bucket(si, shnum, secret).await;
        }))
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holders(pairs: &[(u8, &[&str])]) -> BTreeMap<ShareNum, BTreeSet<String>> {
        pairs
            .iter()
            .map(|(s, ids)| (*s, ids.iter().map(|i| i.to_string()).collect()))
            .collect()
    }

    #[test]
    fn happiness_is_a_matching() {
        assert_eq!(happiness(&holders(&[])), 0);
        assert_eq!(
            happiness(&holders(&[(0, &["a"]), (1, &["b"]), (2, &["c"])])),
            3
        );
        // One server holding everything counts once.
        assert_eq!(
            happiness(&holders(&[(0, &["a"]), (1, &["a"]), (2, &["a"])])),
            1
        );
        // Share 0 on a and b, share 1 on a only: matching a-1, b-0.
        assert_eq!(happiness(&holders(&[(0, &["a", "b"]), (1, &["a"])])), 2);
        assert_eq!(
            happiness(&holders(&[
                (0, &["a", "b"]),
                (1, &["a", "b"]),
                (2, &["a", "b"])
            ])),
            2
        );
    }
}
