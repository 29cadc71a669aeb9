//! The lease crawler: walks every storage index the backend holds, slowly,
//! counting shares and leases and collecting what the [`ExpiryPolicy`]
//! says has expired (Tahoe-LAFS's `LeaseCheckingCrawler`).
//!
//! It works through the backend trait only
//! ([`StorageBackend::storage_indexes`](crate::kinds::storage::StorageBackend::storage_indexes),
//! `list`, `leases`, `delete`), page by page. What makes a deletion safe:
//!
//! - each storage index is decided and collected under the server's lock
//!   for it, the lock every call that adds a lease or shares takes
//!   (allocation, seal, `add_lease`, mutable writes): a lease renewed or an
//!   upload allocated while the crawler decides waits, and then finds the
//!   shares gone and uploads them anew, or the crawler finds the new lease;
//! - an index with an upload in progress is skipped (counted in use);
//! - shares whose leases cannot be read, or have none, are kept;
//! - a backend that cannot list (`None`) is left alone.
//!
//! Its pace is a budget: after each page it sleeps so that its working
//! time is at most `budget` of the wall clock (9% by default, which
//! measures under 10% of a core). Its
//! position and counts are saved after each page in `crawler/state.json`
//! (format version [`STATE_VERSION`]), so a restart resumes the cycle
//! where it was; a state file of a newer version is refused by name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::StorageServer;
use super::expiry::{ExpiryPolicy, Verdict};
use crate::blocking::on_pool;
use crate::error::{Error, Result};
use crate::kinds::storage::{ShareKind, StorageIndex};
use crate::time::Span;

/// The version of `crawler/state.json` this build writes and reads.
pub const STATE_VERSION: u32 = 1;

/// How many finished cycles the state keeps.
const HISTORY: usize = 10;

/// `[storage.crawler]`: the crawler's pace.
#[derive(Debug, Clone, PartialEq)]
pub struct CrawlerConfig {
    /// The share of wall-clock time the crawler may work, the rest asleep
    /// (0.09 by default: its CPU use measures a little above the share,
    /// under 10% of a core).
    pub budget: f64,
    /// The least time from one cycle's start to the next one's.
    pub cycle_interval: Span,
    /// Storage indexes per page (one listing call; the position is saved
    /// after each).
    pub page: usize,
}

impl Default for CrawlerConfig {
    fn default() -> Self {
        CrawlerConfig {
            // Working 9% of the wall clock measures 9.3% of one core on a
            // million shares (docs/benchmarks.md): under the 10% promised.
            budget: 0.09,
            cycle_interval: Span(3600),
            // A page of the fs backend costs two directory reads besides
            // its storage indexes: at 100 they were most of the work.
            page: 1000,
        }
    }
}

/// A count per share kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ByKind {
    /// Of immutable shares.
    pub immutable: u64,
    /// Of mutable shares.
    pub mutable: u64,
}

impl ByKind {
    fn add(&mut self, kind: ShareKind, n: u64) {
        let c = match kind {
            ShareKind::Immutable => &mut self.immutable,
            ShareKind::Mutable => &mut self.mutable,
        };
        *c = c.saturating_add(n);
    }

    /// Both kinds together.
    pub fn total(&self) -> u64 {
        self.immutable.saturating_add(self.mutable)
    }
}

/// What one cycle found and did. "Buckets" are storage indexes, as in
/// Tahoe.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CycleCounts {
    /// Storage indexes examined.
    pub buckets: ByKind,
    /// Shares examined.
    pub shares: ByKind,
    /// Their bytes.
    pub bytes: ByKind,
    /// Leases examined.
    pub leases: u64,
    /// Leases that had ended.
    pub leases_expired: u64,
    /// Leases expiring further ahead than a lease is granted for (kept).
    pub leases_far_future: u64,
    /// Storage indexes whose shares have no lease (kept).
    pub buckets_without_leases: u64,
    /// Storage indexes skipped because an upload to them was in progress.
    pub buckets_in_use: u64,
    /// Storage indexes whose shares or leases could not be read (kept).
    pub buckets_unreadable: u64,
    /// Shares kept only by the grace period.
    pub shares_in_grace: ByKind,
    /// Shares (and their bytes) whose last lease ends within 7 days.
    pub shares_expiring_7d: u64,
    /// Their bytes.
    pub bytes_expiring_7d: u64,
    /// Shares whose last lease ends within 31 days.
    pub shares_expiring_31d: u64,
    /// Their bytes.
    pub bytes_expiring_31d: u64,
    /// Shares deleted.
    pub shares_reclaimed: ByKind,
    /// Their bytes.
    pub bytes_reclaimed: ByKind,
    /// Storage indexes emptied.
    pub buckets_reclaimed: ByKind,
    /// Storage indexes that would have been emptied (expiry off or in dry
    /// run).
    pub buckets_would_reclaim: ByKind,
    /// Shares that would have been deleted (expiry off or in dry run).
    pub shares_would_reclaim: ByKind,
    /// Their bytes.
    pub bytes_would_reclaim: ByKind,
    /// Deletions that failed (the share stays; the next cycle tries again).
    pub delete_errors: u64,
    /// Leases by age (since granted or renewed) in whole days: day ->
    /// count (Tahoe's `lease-age-histogram`, in 1-day buckets).
    pub lease_age_days: BTreeMap<u64, u64>,
    /// Shares by how many leases they have (Tahoe's
    /// `leases-per-share-histogram`).
    pub leases_per_share: BTreeMap<u64, u64>,
}

/// One cycle: a walk over every storage index.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Cycle {
    /// Counted from 1.
    pub number: u64,
    /// When it started (seconds since the epoch).
    pub started_at: u64,
    /// When it finished; `None` while running.
    pub finished_at: Option<u64>,
    /// Whether expiry was on (shares deleted) during it.
    pub expiry_enabled: bool,
    /// Whether it ran in dry run.
    pub dry_run: bool,
    /// The last storage index done (base32); the walk resumes after it.
    pub position: Option<String>,
    /// What it found and did.
    pub counts: CycleCounts,
}

/// The crawler's state, as saved in `crawler/state.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrawlerState {
    /// [`STATE_VERSION`].
    pub version: u32,
    /// The cycle in progress.
    pub current: Option<Cycle>,
    /// Finished cycles, oldest first (at most ten).
    pub history: Vec<Cycle>,
    /// When the next cycle may start.
    pub next_cycle_at: u64,
    /// Why the crawler is not walking, when it is not (a backend that
    /// cannot list).
    #[serde(default)]
    pub idle_reason: Option<String>,
}

impl CrawlerState {
    /// The last finished cycle.
    pub fn last(&self) -> Option<&Cycle> {
        self.history.last()
    }

    fn finish(&mut self, cycle: Cycle, interval: Span) {
        self.next_cycle_at = cycle.started_at.saturating_add(interval.secs());
        self.history.push(cycle);
        let extra = self.history.len().saturating_sub(HISTORY);
        self.history.drain(..extra);
        self.current = None;
    }
}

/// Read the state file; a missing file is a fresh state, a newer version
/// an error naming it, an unreadable or damaged file a fresh state with a
/// warning (the
/// cycle starts over: nothing is deleted on the strength of a lost
/// position).
pub fn load_state(path: &Path) -> Result<CrawlerState> {
    let fresh = CrawlerState {
        version: STATE_VERSION,
        ..CrawlerState::default()
    };
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(fresh),
        Err(e) => {
            // Starting the cycle over is always safe.
            tracing::warn!(
                "crawler state {} cannot be read ({e}); starting the cycle over",
                path.display()
            );
            return Ok(fresh);
        }
    };
    crate::state::check_version(&text, STATE_VERSION, path, "crawler state")?;
    match serde_json::from_slice::<CrawlerState>(&text) {
        Ok(s) => Ok(s),
        Err(e) => {
            tracing::warn!(
                "crawler state {} is damaged ({e}); starting the cycle over",
                path.display()
            );
            Ok(fresh)
        }
    }
}

/// Write the state atomically (a temporary file renamed over the old).
async fn save_state(path: PathBuf, state: CrawlerState) -> Result<()> {
    on_pool(move || crate::state::save(&path, &state)).await
}

impl StorageServer {
    /// The crawler's state: the cycle in progress and the last ones.
    pub fn crawler_state(&self) -> CrawlerState {
        self.shared
            .crawler
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    fn set_crawler_state(&self, state: &CrawlerState) {
        if let Ok(mut s) = self.shared.crawler.lock() {
            *s = state.clone();
        }
    }

    /// Examine one storage index at `now`, under its lock: count it, and
    /// collect its shares when `policy` says so.
    pub(super) async fn examine(
        &self,
        si: &StorageIndex,
        now: u64,
        policy: &ExpiryPolicy,
        c: &mut CycleCounts,
    ) {
        let _slot = self.shared.slot_lock(si).lock().await;
        let in_use = self
            .shared
            .uploads()
            .map(|t| t.keys().any(|(s, _)| s == si))
            .unwrap_or(true);
        if in_use {
            c.buckets_in_use += 1;
            return;
        }
        let backend = &self.shared.backend;
        let (shares, leases) = match backend.list(si).await {
            Ok(shares) if shares.is_empty() => return,
            Ok(shares) => match backend.leases(si).await {
                Ok(leases) => (shares, leases),
                Err(e) => {
                    c.buckets_unreadable += 1;
                    tracing::warn!("the leases of {si} cannot be read ({e}); its shares are kept");
                    return;
                }
            },
            Err(e) => {
                c.buckets_unreadable += 1;
                tracing::warn!("the shares of {si} cannot be listed ({e}); they are kept");
                return;
            }
        };
        let kind = shares[0].kind;
        let (count, bytes) = (
            shares.len() as u64,
            shares.iter().map(|s| s.size).sum::<u64>(),
        );
        c.buckets.add(kind, 1);
        for s in &shares {
            c.shares.add(s.kind, 1);
            c.bytes.add(s.kind, s.size);
        }
        let duration = self.shared.config.lease_duration.secs();
        let j = policy.judge(&leases, now, duration);
        c.leases += leases.len() as u64;
        *c.leases_per_share.entry(leases.len() as u64).or_default() += count;
        for l in &leases {
            let age = now.saturating_sub(l.expires_at.saturating_sub(duration));
            *c.lease_age_days.entry(age / 86_400).or_default() += count;
        }
        c.leases_expired += j.ended;
        c.leases_far_future += j.far_future;
        if let Some(end) = j.last_end.filter(|&e| e > now) {
            if end <= now.saturating_add(7 * 86_400) {
                c.shares_expiring_7d += count;
                c.bytes_expiring_7d += bytes;
            }
            if end <= now.saturating_add(31 * 86_400) {
                c.shares_expiring_31d += count;
                c.bytes_expiring_31d += bytes;
            }
        }
        match j.verdict {
            Verdict::Live => {}
            Verdict::NoLeases => c.buckets_without_leases += 1,
            Verdict::InGrace => c.shares_in_grace.add(kind, count),
            Verdict::Collectable if !shares.iter().all(|s| policy.covers(s.kind)) => {}
            Verdict::Collectable if !policy.enabled || policy.dry_run => {
                c.buckets_would_reclaim.add(kind, 1);
                c.shares_would_reclaim.add(kind, count);
                c.bytes_would_reclaim.add(kind, bytes);
                if policy.enabled {
                    tracing::info!(
                        "dry run: would reclaim {count} share(s) of {si} ({bytes} bytes): every lease ended"
                    );
                }
            }
            Verdict::Collectable => {
                let mut gone = 0;
                for s in &shares {
                    match backend.delete(si, s.shnum).await {
                        Ok(()) => {
                            gone += 1;
                            c.shares_reclaimed.add(s.kind, 1);
                            c.bytes_reclaimed.add(s.kind, s.size);
                        }
                        Err(e) => {
                            c.delete_errors += 1;
                            tracing::warn!("could not delete share {} of {si}: {e}", s.shnum);
                        }
                    }
                }
                if gone == shares.len() {
                    c.buckets_reclaimed.add(kind, 1);
                }
                tracing::info!(
                    "reclaimed {gone} share(s) of {si} ({bytes} bytes): every lease ended"
                );
            }
        }
    }

    /// A cycle as configured now, at `now`.
    fn new_cycle(&self, number: u64, now: u64) -> Cycle {
        let policy = &self.shared.config.expiry;
        Cycle {
            number,
            started_at: now,
            expiry_enabled: policy.enabled && !policy.dry_run,
            dry_run: policy.enabled && policy.dry_run,
            ..Cycle::default()
        }
    }

    /// One page of the current cycle: `Ok(true)` when the cycle is done.
    /// `Ok(None)` from the backend (it cannot list) is an error here.
    async fn crawl_page(&self, cycle: &mut Cycle, page: usize) -> Result<bool> {
        let after: Option<StorageIndex> = match &cycle.position {
            Some(p) => Some(p.parse()?),
            None => None,
        };
        let sis = self
            .shared
            .backend
            .storage_indexes(after.as_ref(), page)
            .await?
            .ok_or_else(|| Error::invalid_input(cannot_list(self.shared.backend.name())))?;
        let policy = self.shared.config.expiry.clone();
        for si in &sis {
            let now = self.shared.config.clock.now();
            self.examine(si, now, &policy, &mut cycle.counts).await;
            cycle.position = Some(si.to_base32());
        }
        Ok(sis.len() < page)
    }

    /// Run one whole cycle at once, without pacing or saving (tests and
    /// simulations, which drive the clock themselves); it is recorded in
    /// [`StorageServer::crawler_state`] as the paced crawler records its
    /// cycles.
    pub async fn crawl_cycle(&self) -> Result<Cycle> {
        let mut state = self.crawler_state();
        let number = state.last().map_or(0, |c| c.number) + 1;
        let mut cycle = self.new_cycle(number, self.shared.config.clock.now());
        while !self.crawl_page(&mut cycle, 1000).await? {}
        cycle.finished_at = Some(self.shared.config.clock.now());
        state.finish(cycle.clone(), self.shared.config.crawler.cycle_interval);
        self.set_crawler_state(&state);
        Ok(cycle)
    }

    /// The crawler, for ever: cycles no closer than the configured
    /// interval, each paced to its budget, its state saved to
    /// `state_file` after every page and resumed from it at start.
    /// Returns only when the backend cannot list, or the state file is of
    /// a newer version.
    pub async fn run_crawler(&self, state_file: PathBuf) -> Result<()> {
        let cfg = self.shared.config.crawler.clone();
        let budget = cfg.budget.clamp(0.001, 1.0);
        let mut state = load_state(&state_file)?;
        state.version = STATE_VERSION;
        if self
            .shared
            .backend
            .storage_indexes(None, 1)
            .await?
            .is_none()
        {
            let why = cannot_list(self.shared.backend.name());
            tracing::info!("{why}");
            state.idle_reason = Some(why);
            self.set_crawler_state(&state);
            return save_state(state_file, state).await;
        }
        self.set_crawler_state(&state);
        let mut save_warned = false;
        loop {
            let clock = &self.shared.config.clock;
            let mut cycle = match state.current.take() {
                Some(c) => c,
                None => {
                    // A clock that stepped back makes the wait shorter,
                    // never longer than one interval.
                    let wait = state
                        .next_cycle_at
                        .saturating_sub(clock.now())
                        .min(cfg.cycle_interval.secs());
                    tokio::time::sleep(Duration::from_secs(wait)).await;
                    let number = state.last().map_or(0, |c| c.number) + 1;
                    self.new_cycle(number, clock.now())
                }
            };
            let started = Instant::now();
            let (done, mut worked) = match self.crawl_page(&mut cycle, cfg.page.max(1)).await {
                Ok(done) => (done, Duration::ZERO),
                Err(e) => {
                    tracing::warn!(
                        "the crawler could not list storage indexes: {e}; retrying in a minute"
                    );
                    // So that the sleep below comes to a minute.
                    let retry = Duration::from_secs(60).mul_f64(budget / (1.0 - budget).max(0.001));
                    (false, retry)
                }
            };
            if done {
                cycle.finished_at = Some(clock.now());
                let c = &cycle.counts;
                tracing::info!(
                    "crawler cycle {} done: {} shares in {} storage indexes examined, {} leases expired, {} shares ({} bytes) reclaimed{}",
                    cycle.number,
                    c.shares.total(),
                    c.buckets.total(),
                    c.leases_expired,
                    c.shares_reclaimed.total(),
                    c.bytes_reclaimed.total(),
                    if c.shares_would_reclaim.total() > 0 {
                        format!(
                            ", {} shares ({} bytes) would be",
                            c.shares_would_reclaim.total(),
                            c.bytes_would_reclaim.total()
                        )
                    } else {
                        String::new()
                    }
                );
                state.finish(cycle, cfg.cycle_interval);
            } else {
                state.current = Some(cycle);
            }
            self.set_crawler_state(&state);
            match save_state(state_file.clone(), state.clone()).await {
                Ok(()) => save_warned = false,
                Err(e) if !save_warned => {
                    // A full disk: the crawl goes on; a restart would
                    // resume from an older position, which is safe.
                    tracing::warn!("could not save the crawler's position: {e}");
                    save_warned = true;
                }
                Err(_) => {}
            }
            // The page's work includes saving its state.
            worked += started.elapsed();
            let rest = worked.mul_f64((1.0 - budget) / budget);
            tokio::time::sleep(rest.max(Duration::from_millis(1))).await;
        }
    }
}

fn cannot_list(backend: &str) -> String {
    format!(
        "storage backend `{backend}` cannot list what it holds: the lease crawler stays idle (no lease expiry, no counts)"
    )
}
