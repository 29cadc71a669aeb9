//! Checking a file: which of its shares the servers hold, without reading
//! its data (Tahoe-LAFS's `t=check`). An immutable file's servers are
//! asked which shares of its storage index they hold; a mutable file's
//! servermap is built and its versions counted. Every server is asked at
//! once and each answer has a deadline: a server that hangs is reported as
//! not responding and costs the check no more than the deadline.
//!
//! The result counts what Tahoe's checker counts, under its names (see
//! [`CheckResults`]); healthy means every one of the N shares is on the
//! grid (for a mutable file: of one recoverable version, and no other).

mod immutable;
mod mutable;
pub mod repair;
pub mod stats;
pub mod walk;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;

use crate::client::secrets::ClientSecret;
use crate::client::servers::{ServerRef, with_deadline};
use crate::format::cap::ChkVerifierCap;
use crate::format::cap::SskVerifierCap;
use crate::format::cap::{Cap, SskWriteCap};
use crate::kinds::codec::CodecProvider;
use crate::kinds::storage::{ShareNum, StorageIndex};

/// How long a server may take to answer a check by default.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(10);

/// A share a server holds that is not part of the file as it should be
/// (a bad signature, a foreign key, a header that does not parse).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorruptShare {
    /// The server holding it.
    pub server: String,
    /// Its share number.
    pub shnum: ShareNum,
    /// What is wrong with it.
    pub reason: String,
}

/// What a check found, counted as Tahoe-LAFS's checker counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResults {
    /// The file's storage index.
    pub storage_index: StorageIndex,
    /// Every share of the file (of its one recoverable version) is held.
    pub healthy: bool,
    /// At least k distinct shares (of some version) are held.
    pub recoverable: bool,
    /// Servers of happiness of the shares found.
    pub count_happiness: usize,
    /// k.
    pub count_shares_needed: usize,
    /// N.
    pub count_shares_expected: usize,
    /// Distinct good shares (of the best version).
    pub count_shares_good: usize,
    /// Servers holding at least one good share (of the best version).
    pub count_good_share_hosts: usize,
    /// Shares of versions other than the best (mutable files only).
    pub count_wrong_shares: usize,
    /// Versions with at least k distinct shares.
    pub count_recoverable_versions: usize,
    /// Versions with shares but fewer than k distinct ones.
    pub count_unrecoverable_versions: usize,
    /// Shares found bad.
    pub corrupt_shares: Vec<CorruptShare>,
    /// Servers that answered, by id.
    pub servers_responding: Vec<String>,
    /// Servers asked that did not answer in time, with why.
    pub servers_not_responding: Vec<(String, String)>,
    /// Each share (`"3"`, or `"seq5-abcd-sh3"` for a version of a mutable
    /// file) and the servers holding it.
    pub sharemap: BTreeMap<String, BTreeSet<String>>,
    /// The good shares sit on fewer servers than they could (fewer than N
    /// while a responding server holds none of them): repair would move
    /// some onto the servers that hold none.
    pub needs_rebalancing: bool,
    /// One line for people: `Healthy`, or what is wrong, in Tahoe's words.
    pub summary: String,
    /// Servers that took this node's lease during the check (0 when the
    /// check added none).
    pub leases_renewed: usize,
}

impl CheckResults {
    /// Whether `count_happiness` falls short of what the responding
    /// servers allow: fewer than N (and fewer than the servers that
    /// answered) while some answering server holds no good share.
    fn rebalancing_needed(&self, good_hosts: &BTreeSet<&String>) -> bool {
        let possible = self
            .count_shares_expected
            .min(self.servers_responding.len());
        self.count_happiness < possible
            && self
                .servers_responding
                .iter()
                .any(|s| !good_hosts.contains(s))
    }
}

/// What a check needs of a cap: the verify cap of the file holding the
/// data, or nothing for a literal file (its data is in the cap).
#[derive(Debug, Clone)]
pub enum CheckTarget {
    /// A LIT file or directory: healthy by definition, no storage index.
    Literal,
    /// A CHK file or immutable directory.
    Immutable(ChkVerifierCap),
    /// An SDMF or MDMF file or mutable directory.
    Mutable(SskVerifierCap),
}

impl CheckTarget {
    /// The least authority that checks the file `cap` names (a directory:
    /// the file holding its entries). No read key is kept.
    pub fn of(cap: &Cap) -> CheckTarget {
        match cap {
            Cap::Lit(_) => CheckTarget::Literal,
            Cap::Chk(c) => CheckTarget::Immutable(c.verifier()),
            Cap::ChkVerifier(v) => CheckTarget::Immutable(v.clone()),
            Cap::SskWrite(w) => CheckTarget::Mutable(w.read_cap().verifier()),
            Cap::SskRead(r) => CheckTarget::Mutable(r.verifier()),
            Cap::SskVerifier(v) => CheckTarget::Mutable(v.clone()),
            Cap::Dir(d) => CheckTarget::of(&d.file_cap()),
        }
    }

    /// The storage index of the file checked (`None`: a literal one).
    pub fn storage_index(&self) -> Option<StorageIndex> {
        match self {
            CheckTarget::Immutable(v) => Some(v.storage_index),
            CheckTarget::Mutable(v) => Some(v.storage_index),
            CheckTarget::Literal => None,
        }
    }
}

/// Checks files against a set of servers.
#[derive(Clone)]
pub struct Checker {
    /// The servers to ask (those up now).
    pub servers: Vec<ServerRef>,
    /// How long each may take to answer one call.
    pub deadline: Duration,
    /// Builds the codec a file names (verifying needs its block sizes).
    pub codecs: Arc<CodecProvider>,
    /// When set, a check also adds (or renews) the lease of the node with
    /// this secret on every server holding shares of the file (Tahoe's
    /// `add-lease`): each server gets its own renew and cancel secrets,
    /// derived as Tahoe derives them, so the upload's lease is the one
    /// renewed.
    pub add_lease: Option<ClientSecret>,
}

impl Checker {
    /// A checker asking `servers`, each call within [`DEFAULT_DEADLINE`].
    pub fn new(servers: Vec<ServerRef>, codecs: Arc<CodecProvider>) -> Checker {
        Checker {
            servers,
            deadline: DEFAULT_DEADLINE,
            codecs,
            add_lease: None,
        }
    }

    /// Check `target`: `None` for a literal file (healthy by definition:
    /// there is nothing on the grid to check). With `verify`, every share
    /// (of a mutable file: of the version counted) is read whole and every
    /// hash checked, up to the UEB or the signature.
    pub async fn check(&self, target: &CheckTarget, verify: bool) -> Option<CheckResults> {
        let servers: Vec<ServerRef> = self
            .servers
            .iter()
            .map(|s| with_deadline(s, self.deadline))
            .collect();
        let results = match target {
            CheckTarget::Literal => return None,
            CheckTarget::Immutable(v) => {
                let codecs = verify.then_some(self.codecs.as_ref());
                immutable::check(&servers, v, codecs).await
            }
            CheckTarget::Mutable(v) => mutable::check(&servers, v, verify).await,
        };
        let mut results = results;
        if let Some(secret) = &self.add_lease {
            results.leases_renewed = add_leases(&servers, &results, secret).await;
        }
        Some(results)
    }
}

/// Add or renew the lease of the node with `secret` on every server that
/// holds shares of the file `results` describes (of any version), all at
/// once, each within the servers' deadline. As in Tahoe-LAFS, a server
/// that fails to take it is logged, not counted against the file's health.
async fn add_leases(servers: &[ServerRef], results: &CheckResults, secret: &ClientSecret) -> usize {
    let holders: BTreeSet<&String> = results.sharemap.values().flatten().collect();
    let si = results.storage_index;
    let file = secret.for_file(&si);
    join_all(
        servers
            .iter()
            .filter(|s| holders.contains(&s.id))
            .map(|s| async {
                let lease = file.for_server(&s.id);
                match s.service.add_lease(si, lease.renew, lease.cancel).await {
                    Ok(()) => true,
                    Err(e) => {
                        tracing::warn!("server {} did not take a lease on {si}: {e}", s.id);
                        false
                    }
                }
            }),
    )
    .await
    .into_iter()
    .filter(|took| *took)
    .count()
}

/// What a check followed by a repair found and did.
#[derive(Debug, Clone)]
pub struct RepairResults {
    /// The check before.
    pub pre: CheckResults,
    /// Whether shares were made and placed.
    pub attempted: bool,
    /// Whether the file now has at least the threshold's good shares on
    /// distinct servers.
    pub successful: bool,
    /// What was decided, or why the repair failed, for people.
    pub note: String,
    /// The check after (the same as `pre` when nothing was attempted).
    pub post: CheckResults,
}

impl Checker {
    /// Check `target` and repair it when fewer than `threshold` of its good
    /// shares are on distinct servers (servers of happiness): the shares
    /// missing, and shares crowded onto servers that hold others, are made
    /// again and placed on servers that hold none. A mutable file is
    /// published again from its newest recoverable version, which needs
    /// its write cap (`write`; without it the note says it was not
    /// repaired). `None` for a literal file.
    pub async fn check_and_repair(
        &self,
        target: &CheckTarget,
        write: Option<&SskWriteCap>,
        verify: bool,
        threshold: usize,
        tools: &repair::RepairTools,
    ) -> Option<RepairResults> {
        let pre = self.check(target, verify).await?;
        // The checks after a repair add no lease: the shares it placed
        // carry this node's lease already.
        let quiet = Checker {
            add_lease: None,
            ..self.clone()
        };
        let done = |attempted: bool, note: String, post: CheckResults| {
            let successful = post.recoverable && post.count_happiness >= threshold;
            Some(RepairResults {
                pre: pre.clone(),
                attempted,
                successful: attempted && successful,
                note,
                post,
            })
        };
        if pre.count_happiness >= threshold {
            let note = format!(
                "not repaired: {} good shares on distinct servers, threshold {threshold}",
                pre.count_happiness
            );
            return done(false, note, pre.clone());
        }
        if !pre.recoverable {
            let note = format!(
                "cannot repair: {} good shares of the {} needed",
                pre.count_shares_good, pre.count_shares_needed
            );
            return done(true, note, pre.clone());
        }
        let CheckTarget::Immutable(cap) = target else {
            let (Some(write), Some(mutable)) = (write, tools.mutable.as_ref()) else {
                let note = "a mutable file is repaired with its write cap, not given here";
                return done(false, note.into(), pre.clone());
            };
            let note = match mutable.republish(write, &tools.spool_dir).await {
                Ok(r) => format!(
                    "published the newest version again as seq{} ({} shares written)",
                    r.prefix.seqnum,
                    r.placed.len()
                ),
                Err(e) => format!("repair failed: {e}"),
            };
            let post = quiet.check(target, false).await?;
            return done(true, note, post);
        };
        // Up to three rounds: a server that fails or refuses during one is
        // not chosen again, and the shares it should have held go to
        // others in the next.
        let mut now = pre.clone();
        // A server holding a corrupt copy of a share would answer that it
        // has it already: it is never a target.
        let mut refused: BTreeSet<String> = pre
            .corrupt_shares
            .iter()
            .map(|c| c.server.clone())
            .collect();
        let corrupt_holders = refused.clone();
        let mut notes = Vec::new();
        let mut tried = false;
        for _ in 0..3 {
            let holders: BTreeSet<&String> = now.sharemap.values().flatten().collect();
            let responding: Vec<ServerRef> = self
                .servers
                .iter()
                .filter(|s| now.servers_responding.contains(&s.id))
                .map(|s| with_deadline(s, self.deadline))
                .collect();
            let empty: Vec<ServerRef> = responding
                .iter()
                .filter(|s| !holders.contains(&s.id) && !refused.contains(&s.id))
                .cloned()
                .collect();
            let shares = repair::shares_to_place(&now, empty.len());
            if shares.is_empty() {
                break;
            }
            let targets = if empty.is_empty() {
                responding
                    .iter()
                    .filter(|s| !refused.contains(&s.id))
                    .cloned()
                    .collect()
            } else {
                empty
            };
            tried = true;
            // Each target is asked for a share when there are no more
            // targets than shares: one that holds none after took none.
            let each_asked = targets.len() <= shares.len();
            let outcome = repair::repair(tools, cap, &responding, targets.clone(), shares).await;
            let after = quiet.check(target, verify).await?;
            let holders_after: BTreeSet<&String> = after.sharemap.values().flatten().collect();
            for t in targets.iter().filter(|_| each_asked) {
                if !holders_after.contains(&t.id) {
                    refused.insert(t.id.clone());
                }
            }
            match outcome {
                Ok(went_around) => {
                    notes.push(format!(
                        "{} good shares on distinct servers (was {})",
                        after.count_happiness, now.count_happiness
                    ));
                    if !went_around.is_empty() {
                        let named: Vec<String> = went_around
                            .iter()
                            .map(|b| format!("share {} on {} ({})", b.shnum, b.server, b.reason))
                            .collect();
                        notes.push(format!("shares not used: {}", named.join(", ")));
                    }
                }
                Err(e) => notes.push(format!("repair failed: {e}")),
            }
            let progress = after.count_happiness > now.count_happiness;
            now = after;
            if now.count_happiness >= threshold || !progress {
                break;
            }
        }
        let failed: Vec<String> = refused.difference(&corrupt_holders).cloned().collect();
        if !failed.is_empty() {
            notes.push(format!("servers that took no share: {}", failed.join(", ")));
        }
        let note = if notes.is_empty() {
            "nothing to place".to_string()
        } else {
            notes.join("; ")
        };
        done(tried, note, now)
    }
}
