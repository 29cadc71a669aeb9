//! Which versions of a mutable file the servers hold.
//!
//! Every known server is asked for the start of each share it holds for
//! the storage index (one read). Each share's prefix and offsets are
//! parsed, its verification key must hash to the cap's fingerprint, and its
//! signature must verify over its prefix; shares failing any of that are
//! recorded as bad and never counted. A version is identified by its whole
//! signed prefix (sequence number, root hash, IV, parameters).
//!
//! The newest version is the highest (sequence number, root hash) with at
//! least k distinct shares: a server cannot make a reader pick an older
//! version by serving one (it would need to hide the newer one on every
//! other server). A newer, validly signed version that cannot be
//! recovered but is held by a majority of the servers asked makes
//! [`ServerMap::best`] fail instead of quietly returning an older one.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bytes::Bytes;
use futures::future::join_all;

use crate::client::mutable::rsa::VerifyingKey;
use crate::client::servers::BadShare;
use crate::client::servers::ServerRef;
use crate::error::{Error, Result};
use crate::format::hash::Hash;
use crate::format::ssk::MutableFormat;
use crate::format::ssk::layout::{Prefix, ShareHead};
use crate::kinds::storage::{ShareNum, StorageIndex};

/// How much of each share the first read fetches: every SDMF and MDMF
/// header, key and signature (and small SDMF files whole).
const HEAD_READ: u64 = 4096;

/// One share whose signature checked out.
#[derive(Debug, Clone)]
pub struct ShareEntry {
    /// Index into the server list the map was made from.
    pub server: usize,
    /// Share number.
    pub shnum: ShareNum,
    /// Parsed head.
    pub head: ShareHead,
    /// The bytes read from offset 0.
    pub data: Bytes,
}

/// A share that exists but is not (verifiably) part of any version.
#[derive(Debug, Clone)]
pub struct Unusable {
    /// Index into the server list.
    pub server: usize,
    /// Share number.
    pub shnum: ShareNum,
    /// Why it was refused.
    pub reason: String,
}

/// The servers' view of one mutable file.
#[derive(Debug, Clone)]
pub struct ServerMap {
    /// The servers asked, in the order given.
    pub servers: Vec<ServerRef>,
    /// The storage index.
    pub storage_index: StorageIndex,
    /// Servers that answered.
    pub answered: usize,
    /// Verified shares, by version.
    pub versions: BTreeMap<Prefix, Vec<ShareEntry>>,
    /// The checkstring each (server, share) holds now, whatever its state:
    /// what a writer must test before replacing it.
    pub checkstrings: BTreeMap<(usize, ShareNum), Vec<u8>>,
    /// Shares refused, with the reason.
    pub unusable: Vec<Unusable>,
    /// Servers that failed to answer.
    pub failures: Vec<(usize, String)>,
    /// The verification key the shares carry (checked against the cap).
    pub verifying_key: Option<VerifyingKey>,
}

impl ServerMap {
    /// Ask every server in `servers` about `si`; shares must carry a key
    /// whose fingerprint is `fingerprint` and be of `format`.
    pub async fn update(
        servers: &[ServerRef],
        si: StorageIndex,
        fingerprint: &Hash,
        format: MutableFormat,
    ) -> Self {
        let answers = join_all(servers.iter().map(|s| {
            let service = s.service.clone();
            async move { service.slot_readv(si, vec![], vec![(0, HEAD_READ)]).await }
        }))
        .await;
        let mut map = ServerMap {
            answered: 0,
            ..ServerMap::empty(servers, si)
        };
        let mut checked: BTreeMap<(Vec<u8>, Vec<u8>), bool> = BTreeMap::new();
        for (server, answer) in answers.into_iter().enumerate() {
            let shares = match answer {
                Ok(shares) => shares,
                Err(e) => {
                    map.failures.push((server, e.to_string()));
                    continue;
                }
            };
            map.answered += 1;
            for (shnum, mut ranges) in shares {
                let data = ranges.pop().unwrap_or_default();
                let cs_len = format.checkstring_len().min(data.len());
                map.checkstrings
                    .insert((server, shnum), data[..cs_len].to_vec());
                match map.check_share(&data, fingerprint, format, &mut checked) {
                    Ok(head) => {
                        map.versions
                            .entry(head.prefix.clone())
                            .or_default()
                            .push(ShareEntry {
                                server,
                                shnum,
                                head,
                                data,
                            })
                    }
                    Err(e) => map.unusable.push(Unusable {
                        server,
                        shnum,
                        reason: e.message().to_string(),
                    }),
                }
            }
        }
        map
    }

    /// The map of a file nobody has written yet (a fresh key): every server
    /// counts as answering and holding nothing, so a publish tests each
    /// share for absence and a share that exists after all is a conflict.
    pub fn empty(servers: &[ServerRef], si: StorageIndex) -> Self {
        ServerMap {
            servers: servers.to_vec(),
            storage_index: si,
            answered: servers.len(),
            versions: BTreeMap::new(),
            checkstrings: BTreeMap::new(),
            unusable: Vec::new(),
            failures: Vec::new(),
            verifying_key: None,
        }
    }

    /// Parse one share's head and check its key and signature.
    fn check_share(
        &mut self,
        data: &[u8],
        fingerprint: &Hash,
        format: MutableFormat,
        checked: &mut BTreeMap<(Vec<u8>, Vec<u8>), bool>,
    ) -> Result<ShareHead> {
        let head = ShareHead::parse(data)?;
        if head.prefix.format != format {
            return Err(Error::corrupt(format!(
                "share is {}, the cap is {}",
                head.prefix.format.name(),
                format.name()
            )));
        }
        let o = &head.offsets;
        let end = o.verification_key.end.max(o.signature.end);
        if (data.len() as u64) < end {
            return Err(Error::corrupt(format!(
                "share's key and signature end at {end}, past the {} bytes read",
                data.len()
            )));
        }
        let vk_bytes = &data[o.verification_key.start as usize..o.verification_key.end as usize];
        let signature = &data[o.signature.start as usize..o.signature.end as usize];
        let vk = match &self.verifying_key {
            Some(k) if k.der() == vk_bytes => k.clone(),
            _ => {
                let k = VerifyingKey::from_der(vk_bytes)?;
                if &k.fingerprint() != fingerprint {
                    return Err(Error::corrupt(
                        "share carries a verification key that is not the cap's".to_string(),
                    ));
                }
                self.verifying_key = Some(k.clone());
                k
            }
        };
        let signed = head.prefix.signed_bytes();
        let key = (signed.clone(), signature.to_vec());
        let good = match checked.get(&key) {
            Some(g) => *g,
            None => {
                let g = vk.verify(&signed, signature).is_ok();
                checked.insert(key, g);
                g
            }
        };
        if !good {
            return Err(Error::corrupt(format!(
                "signature of version {} does not verify",
                head.prefix.seqnum
            )));
        }
        Ok(head)
    }

    /// Distinct share numbers of a version.
    pub(crate) fn distinct_shares(shares: &[ShareEntry]) -> usize {
        shares
            .iter()
            .map(|s| s.shnum)
            .collect::<BTreeSet<_>>()
            .len()
    }

    /// Distinct servers holding a version.
    fn distinct_servers(shares: &[ShareEntry]) -> usize {
        shares
            .iter()
            .map(|s| s.server)
            .collect::<BTreeSet<_>>()
            .len()
    }

    /// The highest sequence number any verified share carries.
    pub fn highest_seqnum(&self) -> u64 {
        self.versions.keys().map(|p| p.seqnum).max().unwrap_or(0)
    }

    /// Whether `other` (a later look at the same file) saw other versions,
    /// or other shares of them, than this map: then a writer changed the
    /// file in between (or is changing it: a publish under way moves
    /// shares from one version to the next one by one).
    pub fn changed_in(&self, other: &ServerMap) -> bool {
        fn held(map: &ServerMap) -> impl Iterator<Item = (&Prefix, BTreeSet<(usize, ShareNum)>)> {
            map.versions
                .iter()
                .map(|(p, shares)| (p, shares.iter().map(|e| (e.server, e.shnum)).collect()))
        }
        !held(self).eq(held(other))
    }

    /// The newest recoverable version, `None` when there are no shares at
    /// all. Fails when no version is recoverable, or when a newer version
    /// that cannot be recovered is held by a majority of the servers asked
    /// (returning the older one would be a rollback).
    pub fn best(&self) -> Result<Option<(&Prefix, &[ShareEntry])>> {
        Ok(self.candidates()?.into_iter().next())
    }

    /// Every version that has enough shares and may be returned, newest
    /// first: a reader tries them in turn when a newer one turns out not
    /// to be deliverable (its blocks fail their hashes), but never falls
    /// back past a version held by a majority of the servers asked.
    pub fn candidates(&self) -> Result<Vec<(&Prefix, &[ShareEntry])>> {
        let mut recoverable: Vec<(&Prefix, &[ShareEntry])> = self
            .versions
            .iter()
            .filter(|(p, shares)| Self::distinct_shares(shares) >= usize::from(p.k))
            .map(|(p, s)| (p, s.as_slice()))
            .collect();
        recoverable.sort_by_key(|v| std::cmp::Reverse((v.0.seqnum, v.0.root_hash)));
        let Some(&(prefix, _)) = recoverable.first() else {
            if self.versions.is_empty() && self.unusable.is_empty() {
                if self.answered == 0 && !self.failures.is_empty() {
                    return Err(Error::unavailable(format!(
                        "no server answered ({})",
                        self.failure_summary()
                    )));
                }
                return Ok(Vec::new());
            }
            return Err(Error::not_enough_shares(format!(
                "no version of the file is recoverable: {}",
                self.describe()
            )));
        };
        for (p, s) in &self.versions {
            if p.seqnum > prefix.seqnum && self.majority_holds(s) {
                return Err(Error::not_enough_shares(format!(
                    "version {} is held by {} of the {} servers asked but has only {} of the {} \
                     shares needed; refusing to fall back to version {}",
                    p.seqnum,
                    Self::distinct_servers(s),
                    self.servers.len(),
                    Self::distinct_shares(s),
                    p.k,
                    prefix.seqnum
                )));
            }
        }
        // A version held by a majority ends the list: nothing older may
        // be returned in its place.
        if let Some(stop) = recoverable.iter().position(|(_, s)| self.majority_holds(s)) {
            recoverable.truncate(stop + 1);
        }
        Ok(recoverable)
    }

    /// Whether more than half of the servers asked hold these shares.
    fn majority_holds(&self, shares: &[ShareEntry]) -> bool {
        2 * Self::distinct_servers(shares) > self.servers.len()
    }

    /// A short account of what was found, for error messages.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self
            .versions
            .iter()
            .map(|(p, s)| {
                format!(
                    "version {} has {} of {} shares needed",
                    p.seqnum,
                    Self::distinct_shares(s),
                    p.k
                )
            })
            .collect();
        if !self.unusable.is_empty() {
            let reasons: BTreeSet<&str> = self.unusable.iter().map(|u| u.reason.as_str()).collect();
            parts.push(format!(
                "{} share(s) refused ({})",
                self.unusable.len(),
                reasons.into_iter().collect::<Vec<_>>().join("; ")
            ));
        }
        if !self.failures.is_empty() {
            parts.push(self.failure_summary());
        }
        parts.push(format!(
            "{} of {} servers answered",
            self.answered,
            self.servers.len()
        ));
        parts.join(", ")
    }

    fn failure_summary(&self) -> String {
        let first = self
            .failures
            .first()
            .map(|(s, e)| format!("{}: {e}", self.servers[*s].id));
        format!(
            "{} server(s) failed{}",
            self.failures.len(),
            first.map(|f| format!(", first {f}")).unwrap_or_default()
        )
    }

    /// Shares refused, as the download reports list them.
    pub fn bad_shares(&self) -> Vec<BadShare> {
        self.unusable
            .iter()
            .map(|u| BadShare {
                server: self.servers[u.server].id.clone(),
                shnum: u.shnum,
                reason: u.reason.clone(),
                corrupt: true,
            })
            .collect()
    }

    /// The service of server `i`.
    pub fn service(&self, i: usize) -> Arc<dyn crate::protocol::StorageService> {
        self.servers[i].service.clone()
    }
}
