//! Checking a CHK file: which shares of its storage index each server
//! holds (one `list_buckets` per server), and with `verify` each of those
//! shares read whole and checked (`client::immutable::verify`); a corrupt
//! share is listed, not counted, and advised to its server.

use std::collections::{BTreeMap, BTreeSet};

use futures::future::join_all;

use super::{CheckResults, CorruptShare};
use crate::client::immutable::verify::verify_share;
use crate::client::servers::{ServerRef, servers_of_happiness};
use crate::error::ErrorKind;
use crate::format::cap::ChkVerifierCap;
use crate::kinds::codec::CodecProvider;
use crate::kinds::storage::ShareNum;

/// Ask every server in `servers` (each already bounded by a deadline);
/// with `verify`, the codecs to verify every share with.
pub(super) async fn check(
    servers: &[ServerRef],
    cap: &ChkVerifierCap,
    verify: Option<&CodecProvider>,
) -> CheckResults {
    let si = cap.storage_index;
    let answers = join_all(servers.iter().map(|s| async move {
        let listed = s.service.list_buckets(si).await;
        let verified = match (&listed, verify) {
            (Ok(shares), Some(codecs)) => Some(verify_all(codecs, cap, s, shares).await),
            _ => None,
        };
        (s, listed, verified)
    }))
    .await;
    let (k, n) = (usize::from(cap.k), usize::from(cap.n));
    let mut sharemap: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut by_shnum = BTreeMap::new();
    let (mut responding, mut silent, mut corrupt) = (Vec::new(), Vec::new(), Vec::new());
    for (server, answer, verified) in answers {
        match answer {
            Ok(mut shares) => {
                responding.push(server.id.clone());
                for (shnum, failure) in verified.unwrap_or_default() {
                    shares.remove(&shnum);
                    match failure {
                        Failure::Corrupt(reason) => corrupt.push(CorruptShare {
                            server: server.id.clone(),
                            shnum,
                            reason,
                        }),
                        Failure::Unanswered(e) => silent.push((server.id.clone(), e)),
                    }
                }
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
        corrupt_shares: corrupt,
        servers_responding: responding,
        servers_not_responding: silent,
        sharemap: BTreeMap::new(),
        needs_rebalancing: false,
        summary: if healthy {
            "Healthy".to_string()
        } else {
            format!("Not Healthy: {good} shares (enc {k}-of-{n})")
        },
        leases_renewed: 0,
    };
    r.needs_rebalancing = r.rebalancing_needed(&hosts);
    r.sharemap = sharemap;
    r
}

/// Why a listed share did not verify.
enum Failure {
    /// A check failed: the share is bad.
    Corrupt(String),
    /// The server did not serve it as asked.
    Unanswered(String),
}

/// Verify every share `server` listed, one after another (each server
/// verifies its own shares while the others do theirs), and advise it of
/// each corrupt one: the shares that failed, and why.
async fn verify_all(
    codecs: &CodecProvider,
    cap: &ChkVerifierCap,
    server: &ServerRef,
    shares: &BTreeMap<ShareNum, u64>,
) -> Vec<(ShareNum, Failure)> {
    let mut failed = Vec::new();
    for (&shnum, &size) in shares {
        let Err(e) = verify_share(codecs, cap, server, shnum, size).await else {
            continue;
        };
        if e.kind() == ErrorKind::Corrupt {
            let reason = e.message().to_string();
            // Best effort: the server's operator hears of it.
            let _ = server
                .service
                .advise_corrupt_share(cap.storage_index, shnum, reason.clone())
                .await;
            failed.push((shnum, Failure::Corrupt(reason)));
        } else {
            failed.push((shnum, Failure::Unanswered(e.to_string())));
        }
    }
    failed
}
