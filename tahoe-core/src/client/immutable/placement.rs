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
//!
//! Happiness counts network locations, not ids: two ids announced at one
//! address are one machine. A share a server says it already holds counts
//! only once its URI extension block has been read back and found equal to
//! the upload's (checked at the end, when that block is known), so a
//! server cannot make an upload succeed on shares it does not have.

use crate::client::servers::permuted;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;
use futures::future::join_all;

use crate::client::immutable::download::ShareReader;
use crate::client::immutable::sink::ShareSink;
use crate::client::secrets::{ClientSecret, ServerSecrets};
use crate::client::servers::{ServerRef, servers_of_happiness};
use crate::error::{Error, Result};
use crate::kinds::storage::{ShareNum, StorageIndex};
use crate::protocol::{AllocateRequest, Secret, write_bucket_chunked};

#[derive(Default)]
struct Placed {
    si: Option<StorageIndex>,
    /// Shares this upload writes, and where.
    writing: BTreeMap<ShareNum, ServerRef>,
    /// Shares servers said they already hold; they count once their UEB
    /// is checked at the end.
    claimed: BTreeMap<ShareNum, Vec<ServerRef>>,
    /// What each server is given (derived for it alone).
    secrets: BTreeMap<String, ServerSecrets>,
}

impl Placed {
    /// Who holds (or will hold) each share, by network location.
    fn holders(&self) -> BTreeMap<ShareNum, BTreeSet<String>> {
        let mut h: BTreeMap<ShareNum, BTreeSet<String>> = BTreeMap::new();
        for (s, server) in &self.writing {
            h.entry(*s).or_default().insert(server.location.clone());
        }
        for (s, servers) in &self.claimed {
            for server in servers {
                h.entry(*s).or_default().insert(server.location.clone());
            }
        }
        h
    }

    fn upload_secret(&self, id: &str) -> Secret {
        self.secrets.get(id).map(|s| s.upload).unwrap_or([0; 32])
    }
}

/// A sink that places shares by the permuted ring and enforces happiness.
///
/// Each server gets secrets derived for it alone from the client's secret,
/// the file's storage index and the server's id, so no server can act on
/// another's buckets or leases with what it was sent.
pub struct HappySink {
    servers: Vec<ServerRef>,
    /// The share numbers to place: all n for an upload, those missing
    /// for a repair.
    shares: Vec<ShareNum>,
    k: u16,
    happy: u16,
    n: u16,
    secret: ClientSecret,
    placed: Mutex<Placed>,
}

impl HappySink {
    /// Place `n` shares on `servers` (all known, connected servers), needing
    /// `happy` distinct server locations; secrets derive from `secret`.
    pub fn new(servers: Vec<ServerRef>, k: u16, happy: u16, n: u16, secret: ClientSecret) -> Self {
        HappySink {
            servers,
            shares: (0..n).map(|i| i as ShareNum).collect(),
            k,
            happy,
            n,
            secret,
            placed: Mutex::new(Placed::default()),
        }
    }

    /// Place only `shares` (of an n-share file whose other shares are on
    /// the grid already) on `servers`, one per server as far as they go:
    /// a repair. It keeps what it could place when a server refuses or
    /// fails (the repairer checks the file again and tries elsewhere); it
    /// fails only when no share found a server.
    pub fn for_shares(
        servers: Vec<ServerRef>,
        shares: Vec<ShareNum>,
        k: u16,
        n: u16,
        secret: ClientSecret,
    ) -> Self {
        HappySink {
            shares,
            ..HappySink::new(servers, k, 1, n, secret)
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
        let (si, dropped, achieved, secret) = {
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
            for servers in p.claimed.values_mut() {
                servers.retain(|s| s.id != id);
            }
            p.claimed.retain(|_, s| !s.is_empty());
            (
                p.si,
                dropped,
                servers_of_happiness(&p.holders()),
                p.upload_secret(id),
            )
        };
        tracing::warn!("dropping server {id} from the upload: {why}");
        if let Some(si) = si {
            for (shnum, server) in dropped {
                let _ = server.service.abort_bucket(si, shnum, secret).await;
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

    /// Run `op` for every placed share at once; a server whose call fails
    /// is dropped from the upload (which fails only if happiness is lost).
    async fn on_each_placed<F, Fut>(&self, mut op: F) -> Result<()>
    where
        F: FnMut(StorageIndex, ShareNum, ServerRef, Secret) -> Fut,
        Fut: std::future::Future<Output = Result<()>>,
    {
        let (si, targets) = {
            let p = self.placed()?;
            let si =
                p.si.ok_or_else(|| Error::internal("upload used before start"))?;
            let targets: Vec<(ShareNum, ServerRef, Secret)> = p
                .writing
                .iter()
                .map(|(n, s)| (*n, s.clone(), p.upload_secret(&s.id)))
                .collect();
            (si, targets)
        };
        let calls = targets.into_iter().map(|(shnum, server, secret)| {
            let call = op(si, shnum, server.clone(), secret);
            async move { (server, call.await) }
        });
        for (server, r) in join_all(calls).await {
            if let Err(e) = r {
                self.drop_server(&server.id, &e).await?;
            }
        }
        Ok(())
    }

    /// Check every claimed share's UEB against the upload's; claims that do
    /// not hold are forgotten (a server cannot make an upload count shares
    /// it does not have). Fails if happiness is lost.
    async fn check_claims(&self, ueb: &[u8]) -> Result<()> {
        let (si, claims) = {
            let p = self.placed()?;
            let Some(si) = p.si else { return Ok(()) };
            let claims: Vec<(ShareNum, ServerRef)> = p
                .claimed
                .iter()
                .flat_map(|(n, servers)| servers.iter().map(move |s| (*n, s.clone())))
                .collect();
            (si, claims)
        };
        if claims.is_empty() {
            return Ok(());
        }
        let checks = claims.into_iter().map(|(shnum, server)| async move {
            let verdict = async {
                let size = server
                    .service
                    .list_buckets(si)
                    .await?
                    .get(&shnum)
                    .copied()
                    .ok_or_else(|| Error::corrupt("the share is not listed"))?;
                let reader = ShareReader {
                    service: server.service.as_ref(),
                    si,
                    shnum,
                    size,
                    head: None,
                };
                let (theirs, _) = reader.packed_ueb().await?;
                if theirs[..] != *ueb {
                    return Err(Error::corrupt("its URI extension block differs"));
                }
                Ok(())
            }
            .await;
            (shnum, server, verdict)
        });
        let mut notes = Vec::new();
        let achieved = {
            let results = join_all(checks).await;
            let mut p = self.placed()?;
            for (shnum, server, verdict) in results {
                if let Err(e) = verdict {
                    tracing::warn!(
                        "server {} claimed share {shnum} of {si}, which does not check out: {e}",
                        server.id
                    );
                    notes.push(format!(
                        "server {} claimed share {shnum} but {e}",
                        server.id
                    ));
                    if let Some(list) = p.claimed.get_mut(&shnum) {
                        list.retain(|s| s.id != server.id);
                    }
                }
            }
            p.claimed.retain(|_, s| !s.is_empty());
            servers_of_happiness(&p.holders())
        };
        if achieved < usize::from(self.happy) {
            return Err(self.unhappy(achieved, self.servers.len(), &notes));
        }
        Ok(())
    }
}

#[async_trait]
impl ShareSink for HappySink {
    async fn start(&self, si: &StorageIndex, share_size: u64) -> Result<Vec<ShareNum>> {
        let file = self.secret.for_file(si);
        let secrets: BTreeMap<String, ServerSecrets> = self
            .servers
            .iter()
            .map(|s| (s.id.clone(), file.for_server(&s.id)))
            .collect();
        let mut usable: Vec<ServerRef> = permuted(&self.servers, si);
        let mut unplaced: VecDeque<ShareNum> = self.shares.iter().copied().collect();
        let mut placed = Placed {
            si: Some(*si),
            secrets,
            ..Placed::default()
        };
        let mut notes = Vec::new();
        while !unplaced.is_empty() && !usable.is_empty() {
            // One round: each usable server is asked for at most one share.
            let mut asks: Vec<(ServerRef, Vec<ShareNum>)> = Vec::new();
            for server in &usable {
                let Some(s) = unplaced.pop_front() else { break };
                asks.push((server.clone(), vec![s]));
            }
            let answers = join_all(asks.into_iter().map(|(server, shares)| {
                let secrets = placed.secrets.get(&server.id).cloned();
                let req = secrets.map(|sec| AllocateRequest {
                    storage_index: *si,
                    share_numbers: shares.clone(),
                    share_size,
                    renew_secret: sec.renew,
                    cancel_secret: sec.cancel,
                    upload_secret: sec.upload,
                });
                async move {
                    let r = match req {
                        Some(req) => server.service.allocate_buckets(req).await,
                        None => Err(Error::internal("no secrets for this server")),
                    };
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
                                placed.writing.insert(s, server.clone());
                            } else if resp.already_have.contains(&s) {
                                placed.claimed.entry(s).or_default().push(server.clone());
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
        let achieved = servers_of_happiness(&placed.holders());
        if achieved < usize::from(self.happy) {
            for (shnum, server) in &placed.writing {
                let secret = placed.upload_secret(&server.id);
                let _ = server.service.abort_bucket(*si, *shnum, secret).await;
            }
            return Err(self.unhappy(achieved, self.servers.len(), &notes));
        }
        let to_write: Vec<ShareNum> = placed.writing.keys().copied().collect();
        *self.placed()? = placed;
        Ok(to_write)
    }

    async fn write(&self, offset: u64, pieces: Vec<(ShareNum, Bytes)>) -> Result<()> {
        let mut pieces: BTreeMap<ShareNum, Bytes> = pieces.into_iter().collect();
        self.on_each_placed(|si, shnum, server, secret| {
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

    async fn finish(&self, ueb: &[u8]) -> Result<()> {
        if let Err(e) = self.check_claims(ueb).await {
            self.abort().await;
            return Err(e);
        }
        self.on_each_placed(|si, shnum, server, secret| async move {
            server.service.close_bucket(si, shnum, secret).await
        })
        .await
    }

    async fn abort(&self) {
        let Ok((si, targets)) = self.placed().map(|p| {
            let t: Vec<(ShareNum, ServerRef, Secret)> = p
                .writing
                .iter()
                .map(|(n, s)| (*n, s.clone(), p.upload_secret(&s.id)))
                .collect();
            (p.si, t)
        }) else {
            return;
        };
        let Some(si) = si else { return };
        join_all(
            targets
                .into_iter()
                .map(|(shnum, server, secret)| async move {
                    let _ = server.service.abort_bucket(si, shnum, secret).await;
                }),
        )
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
        assert_eq!(servers_of_happiness(&holders(&[])), 0);
        assert_eq!(
            servers_of_happiness(&holders(&[(0, &["a"]), (1, &["b"]), (2, &["c"])])),
            3
        );
        // One server holding everything counts once.
        assert_eq!(
            servers_of_happiness(&holders(&[(0, &["a"]), (1, &["a"]), (2, &["a"])])),
            1
        );
        // Share 0 on a and b, share 1 on a only: matching a-1, b-0.
        assert_eq!(
            servers_of_happiness(&holders(&[(0, &["a", "b"]), (1, &["a"])])),
            2
        );
        assert_eq!(
            servers_of_happiness(&holders(&[
                (0, &["a", "b"]),
                (1, &["a", "b"]),
                (2, &["a", "b"])
            ])),
            2
        );
    }
}
