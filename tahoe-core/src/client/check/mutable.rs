//! Checking an SDMF or MDMF file: its servermap (one read of each share's
//! head, signatures checked), with `verify` every share of the version
//! counted read whole and every hash checked, then its versions counted as
//! Tahoe-LAFS's mutable checker counts them.

use std::collections::{BTreeMap, BTreeSet};

use super::{CheckResults, CorruptShare};
use crate::base32;
use futures::future::join_all;

use crate::client::mutable::retrieve::verify_share;
use crate::client::mutable::servermap::{ServerMap, Unusable};
use crate::client::servers::{ServerRef, servers_of_happiness};
use crate::error::ErrorKind;
use crate::format::cap::SskVerifierCap;
use crate::format::ssk::layout::Prefix;

/// Tahoe's name of a version: `seq5-abcd` (sequence number and the start
/// of the root hash in base32).
pub(crate) fn version_name(p: &Prefix) -> String {
    let root = base32::encode(p.root_hash.as_ref());
    format!("seq{}-{}", p.seqnum, &root[..4])
}

/// Build the servermap over `servers` (each already bounded by a deadline)
/// and count it; with `verify`, every share of the version counted is
/// read whole and checked first (see [`verify_counted`]).
pub(super) async fn check(
    servers: &[ServerRef],
    cap: &SskVerifierCap,
    verify: bool,
) -> CheckResults {
    let mut map = ServerMap::update(servers, cap.storage_index, &cap.fingerprint, cap.format).await;
    if verify {
        verify_counted(&mut map).await;
    }
    let id = |i: usize| map.servers[i].id.clone();
    let newest_first =
        |a: &&Prefix, b: &&Prefix| (b.seqnum, b.root_hash).cmp(&(a.seqnum, a.root_hash));
    let (mut recoverable, mut unrecoverable): (Vec<&Prefix>, Vec<&Prefix>) = map
        .versions
        .keys()
        .partition(|p| ServerMap::distinct_shares(&map.versions[*p]) >= usize::from(p.k));
    recoverable.sort_by(newest_first);
    unrecoverable.sort_by(newest_first);
    let mut summary = Vec::new();
    let mut healthy = true;
    if !unrecoverable.is_empty() {
        healthy = false;
        summary.push("some versions are unrecoverable".to_string());
    }
    if recoverable.is_empty() {
        healthy = false;
        summary.push("no versions are recoverable".to_string());
    }
    if recoverable.len() > 1 {
        healthy = false;
        summary.push("multiple versions are recoverable".to_string());
    }
    // With no share at all: Tahoe's defaults (3-of-10) below.
    let counted = counted_version(&map);
    let (k, n, good, hosts) = match counted {
        Some(p) => {
            let shares = &map.versions[p];
            let hosts: BTreeSet<String> = shares.iter().map(|s| id(s.server)).collect();
            (
                usize::from(p.k),
                usize::from(p.n),
                ServerMap::distinct_shares(shares),
                hosts,
            )
        }
        None => (3, 10, 0, BTreeSet::new()),
    };
    if !recoverable.is_empty() && good < n {
        healthy = false;
        summary.push(format!("{good} shares (enc {k}-of-{n})"));
    }
    let wrong = map
        .versions
        .iter()
        .filter(|(p, _)| Some(*p) != counted)
        .map(|(_, s)| s.len())
        .sum();
    let corrupt: Vec<CorruptShare> = map
        .unusable
        .iter()
        .map(|u| CorruptShare {
            server: id(u.server),
            shnum: u.shnum,
            reason: u.reason.clone(),
        })
        .collect();
    if !corrupt.is_empty() {
        summary.push("Corrupt Shares:".to_string());
        summary.extend(
            corrupt
                .iter()
                .map(|c| format!("{}-sh{}", c.server, c.shnum)),
        );
    }
    let mut sharemap: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (p, shares) in &map.versions {
        for s in shares {
            sharemap
                .entry(format!("{}-sh{}", version_name(p), s.shnum))
                .or_default()
                .insert(id(s.server));
        }
    }
    // Happiness of the version counted alone: shares of other versions
    // do not help a reader of this one.
    let mut counted_shares: BTreeMap<u8, BTreeSet<String>> = BTreeMap::new();
    for s in counted.map(|p| &map.versions[p]).into_iter().flatten() {
        counted_shares
            .entry(s.shnum)
            .or_default()
            .insert(id(s.server));
    }
    let happiness = servers_of_happiness(&counted_shares);
    let failed: BTreeSet<usize> = map.failures.iter().map(|(i, _)| *i).collect();
    let mut r = CheckResults {
        storage_index: cap.storage_index,
        healthy,
        recoverable: !recoverable.is_empty(),
        count_happiness: happiness,
        count_shares_needed: k,
        count_shares_expected: n,
        count_shares_good: good,
        count_good_share_hosts: hosts.len(),
        count_wrong_shares: wrong,
        count_recoverable_versions: recoverable.len(),
        count_unrecoverable_versions: unrecoverable.len(),
        corrupt_shares: corrupt,
        servers_responding: (0..map.servers.len())
            .filter(|i| !failed.contains(i))
            .map(id)
            .collect(),
        servers_not_responding: map
            .failures
            .iter()
            .map(|(i, e)| (id(*i), e.clone()))
            .collect(),
        sharemap: BTreeMap::new(),
        needs_rebalancing: false,
        summary: if healthy {
            "Healthy".to_string()
        } else {
            format!("Unhealthy: {}", summary.join(" "))
        },
        leases_renewed: 0,
    };
    r.needs_rebalancing = r.rebalancing_needed(&hosts.iter().collect());
    r.sharemap = sharemap;
    r
}

/// The version a check counts: the newest recoverable one, else the newest
/// one seen (`None` with no share at all).
fn counted_version(map: &ServerMap) -> Option<&Prefix> {
    let key = |p: &&Prefix| (p.seqnum, p.root_hash);
    map.versions
        .iter()
        .filter(|(p, s)| ServerMap::distinct_shares(s) >= usize::from(p.k))
        .map(|(p, _)| p)
        .max_by_key(key)
        .or_else(|| map.versions.keys().max_by_key(key))
}

/// Verify every share of the version a check counts (as Tahoe-LAFS's
/// mutable verifier does: the other versions' shares are wrong shares
/// either way), all at once. A share that fails a hash is moved to the
/// unusable ones and advised to its server; a server that does not serve
/// its share in time is counted as not responding. Either way the share
/// is not counted as good.
async fn verify_counted(map: &mut ServerMap) {
    let Some(prefix) = counted_version(map).cloned() else {
        return;
    };
    let entries = map.versions[&prefix].clone();
    let (map_ref, prefix_ref) = (&*map, &prefix);
    let results = join_all(entries.iter().map(|e| async move {
        let r = verify_share(map_ref, prefix_ref, e).await;
        if let Err(err) = &r
            && err.kind() == ErrorKind::Corrupt
        {
            // Best effort: the server's operator hears of it.
            let _ = map_ref
                .service(e.server)
                .advise_corrupt_share(map_ref.storage_index, e.shnum, err.message().to_string())
                .await;
        }
        r
    }))
    .await;
    let mut good = Vec::new();
    for (e, r) in entries.into_iter().zip(results) {
        match r {
            Ok(()) => good.push(e),
            Err(err) if err.kind() == ErrorKind::Corrupt => map.unusable.push(Unusable {
                server: e.server,
                shnum: e.shnum,
                reason: err.message().to_string(),
            }),
            Err(err) => map.failures.push((e.server, err.to_string())),
        }
    }
    if good.is_empty() {
        map.versions.remove(&prefix);
    } else {
        map.versions.insert(prefix, good);
    }
}
