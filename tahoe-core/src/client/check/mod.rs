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

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use crate::client::servers::{ServerRef, with_deadline};
use crate::format::cap::Cap;
use crate::format::cap::ChkVerifierCap;
use crate::format::cap::SskVerifierCap;
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
    /// Whether [`Checker::check`] carries out `verify` for this target.
    pub fn can_verify(&self) -> bool {
        !matches!(self, CheckTarget::Mutable(_))
    }

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
}

impl Checker {
    /// A checker asking `servers`, each call within [`DEFAULT_DEADLINE`].
    pub fn new(servers: Vec<ServerRef>, codecs: Arc<CodecProvider>) -> Checker {
        Checker {
            servers,
            deadline: DEFAULT_DEADLINE,
            codecs,
        }
    }

    /// Check `target`: `None` for a literal file (healthy by definition:
    /// there is nothing on the grid to check). With `verify`, every share
    /// of an immutable file is read whole and every hash checked; mutable
    /// files are not verified yet (their servermap checks each share's key
    /// and signature either way), which callers must say:
    /// [`CheckTarget::can_verify`].
    pub async fn check(&self, target: &CheckTarget, verify: bool) -> Option<CheckResults> {
        let servers: Vec<ServerRef> = self
            .servers
            .iter()
            .map(|s| with_deadline(s, self.deadline))
            .collect();
        match target {
            CheckTarget::Literal => None,
            CheckTarget::Immutable(v) => {
                let codecs = verify.then_some(self.codecs.as_ref());
                Some(immutable::check(&servers, v, codecs).await)
            }
            CheckTarget::Mutable(v) => Some(mutable::check(&servers, v).await),
        }
    }
}
