//! Checking a CHK file: which shares of its storage index each server
//! holds (one `list_buckets` per server, no share read).

use std::collections::{BTreeMap, BTreeSet};

use futures::future::join_all;

use super::CheckResults;
use crate::client::servers::{ServerRef, servers_of_happiness};
use crate::format::cap::ChkVerifierCap;

/// Ask every server in `servers` (each already bounded by a deadline).
pub(super) async fn check(servers: &[ServerRef], cap: &ChkVerifierCap) -> CheckResults {
    let si = cap.storage_index;
    let answers = join_all(
        servers
            .iter()
            .map(|s| async move { (s, s.service.list_buckets(si).await) }),
    )
    .await;
    let (k, n) = (usize::from(cap.k), usize::from(cap.n));
    let mut sharemap: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut by_shnum = BTreeMap::new();
    let (mut responding, mut silent) = (Vec::new(), Vec::new());
    for (server, answer) in answers {
        match answer {
            Ok(shares) => {
                responding.push(server.id.clone());
                // A share number at or past N is no share of this
                // encoding: not counted (Tahoe has no wrong immutable
                // shares either).
                for shnum in shares.keys().filter(|s| usize::from(**s) < n) {
                    sharemap
                        .entry(shnum.to_string())
                        .or_default()
                        .insert(server.id.clone());
                    by_shnum
                        .entry(*shnum)
                        .or_insert_with(BTreeSet::new)
                        .insert(server.id.clone());
                }
            }
            Err(e) => silent.push((server.id.clone(), e.to_string())),
        }
    }
    let good = by_shnum.len();
    let hosts: BTreeSet<&String> = sharemap.values().flatten().collect();
    let healthy = good == n;
    let mut r = CheckResults {
        storage_index: si,
        healthy,
        recoverable: good >= k,
        count_happiness: servers_of_happiness(&by_shnum),
        count_shares_needed: k,
        count_shares_expected: n,
        count_shares_good: good,
        count_good_share_hosts: hosts.len(),
        count_wrong_shares: 0,
        count_recoverable_versions: usize::from(good >= k),
        count_unrecoverable_versions: usize::from(good < k),
        corrupt_shares: Vec::new(),
        servers_responding: responding,
        servers_not_responding: silent,
        sharemap: BTreeMap::new(),
        needs_rebalancing: false,
        summary: if healthy {
            "Healthy".to_string()
        } else {
            format!("Not Healthy: {good} shares (enc {k}-of-{n})")
        },
    };
    r.needs_rebalancing = r.rebalancing_needed(&hosts);
    r.sharemap = sharemap;
    r
}
