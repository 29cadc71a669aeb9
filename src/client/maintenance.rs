//! Maintenance by the node itself (`[maintenance]`): on an interval, for
//! everything reachable from the node's aliases, the shared drive and the
//! caps in `private/keep`, a deep check that renews this node's leases,
//! verifies a random sample of objects (the audit) and repairs what is
//! unhealthy, rate-limited, resumable, and quiet when nothing is wrong.
//!
//! Its state is `BASEDIR/maintenance/state.json` (format version
//! [`STATE_VERSION`]): the cycle in progress (which roots are done, its
//! counts so far), the last cycles, when the last successful one ran, and
//! which unrecoverable files were already reported (each is logged at
//! warn once). A node restarted mid-cycle resumes after the last root it
//! finished. One task per node runs cycles, one after the other: never two
//! at once.
//!
//! "What if the renewer breaks and I don't notice?": when the last
//! successful cycle is older than twice the interval (counted from the
//! node's first start when none ever succeeded), [`MaintenanceState::stale`]
//! says so; the welcome page and `tahoe status` show it in red, the
//! metrics carry it, and the log warns every hour.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tahoe_core::client::check::walk::{Walked, walk};
use tahoe_core::client::check::{CheckResults, CheckTarget, RepairResults};
use tahoe_core::client::dirnode::DirClient;
use tahoe_core::client::mutable::key_pool::KeyPool;
use tahoe_core::format::cap::Cap;
use tahoe_core::plugin::config::MaintenanceSection;
use tahoe_core::time::Clock;

use super::session::{Checking, GridClient};
use crate::basedir::{KEEP_FILE, MAINTENANCE_STATE_FILE};

/// The version of `maintenance/state.json` this build reads and writes.
pub const STATE_VERSION: u32 = 1;

/// Finished cycles kept in the state.
const HISTORY: usize = 10;

/// Problems listed per cycle (the rest are counted).
const MAX_PROBLEMS: usize = 100;

/// What one cycle did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MaintenanceCycle {
    /// Counted from 1.
    pub number: u64,
    /// When it started (seconds since the epoch).
    pub started_at: u64,
    /// When it finished (`None` while running).
    pub finished_at: Option<u64>,
    /// Roots walked (aliases, the shared drive, kept caps).
    pub roots: usize,
    /// Roots finished so far (a resumed cycle goes on after them).
    pub roots_done: usize,
    /// Objects checked (each storage index once a cycle).
    pub objects_checked: u64,
    /// Leases renewed or added (one per server per object).
    pub leases_renewed: u64,
    /// Objects audited: their shares read whole and verified.
    pub objects_audited: u64,
    /// Bytes of the immutable files audited.
    pub bytes_audited: u64,
    /// Objects found unhealthy.
    pub unhealthy: u64,
    /// Objects repaired.
    pub repaired: u64,
    /// Objects unrecoverable (fewer than k shares).
    pub unrecoverable: u64,
    /// What went wrong, with the path where it was found (at most 100).
    pub problems: Vec<String>,
    /// Whether every root was walked and every object checked.
    pub complete: bool,
}

impl MaintenanceCycle {
    fn problem(&mut self, what: String) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(what);
        }
    }
}

/// `maintenance/state.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MaintenanceState {
    /// [`STATE_VERSION`].
    pub version: u32,
    /// When this node first ran maintenance (staleness counts from here
    /// until a cycle succeeds).
    pub first_seen: u64,
    /// The cycle in progress.
    pub current: Option<MaintenanceCycle>,
    /// Finished cycles, oldest first.
    pub history: Vec<MaintenanceCycle>,
    /// When the last complete cycle finished.
    pub last_success_at: Option<u64>,
    /// When the next cycle starts.
    pub next_at: u64,
    /// Storage indexes (base32) already reported unrecoverable.
    pub reported: BTreeSet<String>,
}

impl MaintenanceState {
    /// Whether maintenance is overdue: nothing succeeded for more than
    /// twice `interval` (since the first start when nothing ever did).
    pub fn stale(&self, now: u64, interval: u64) -> bool {
        let since = self.last_success_at.unwrap_or(self.first_seen);
        since > 0 && now.saturating_sub(since) > interval.saturating_mul(2)
    }

    /// The last finished cycle.
    pub fn last(&self) -> Option<&MaintenanceCycle> {
        self.history.last()
    }
}

/// Read the state; missing is fresh, a newer version an error naming it,
/// damaged a fresh state with a warning.
pub fn load_state(basedir: &Path) -> Result<MaintenanceState> {
    let path = basedir.join(MAINTENANCE_STATE_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(MaintenanceState {
                version: STATE_VERSION,
                ..MaintenanceState::default()
            });
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    tahoe_core::state::check_version(&bytes, STATE_VERSION, &path, "maintenance state")?;
    match serde_json::from_slice(&bytes) {
        Ok(s) => Ok(s),
        Err(e) => {
            tracing::warn!(
                "maintenance state {} is damaged ({e}); starting afresh",
                path.display()
            );
            Ok(MaintenanceState {
                version: STATE_VERSION,
                ..MaintenanceState::default()
            })
        }
    }
}

fn save_state(basedir: &Path, state: &MaintenanceState) -> Result<()> {
    Ok(tahoe_core::state::save(
        &basedir.join(MAINTENANCE_STATE_FILE),
        state,
    )?)
}

/// A place to start walking, named for people (never by its cap).
#[derive(Debug, Clone)]
pub struct Root {
    /// `alias tahoe`, `the shared drive`, `private/keep line 3`.
    pub name: String,
    /// What to walk.
    pub cap: Cap,
}

/// The caps in `private/keep`, one a line (`#` comments and blank lines
/// allowed); bad lines are returned as problems naming the line, never its
/// text (it may hold a cap).
pub fn kept_caps(basedir: &Path) -> Result<(Vec<Root>, Vec<String>)> {
    let path = basedir.join(KEEP_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), Vec::new())),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let (mut roots, mut bad) = (Vec::new(), Vec::new());
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let name = format!("{KEEP_FILE} line {}", i + 1);
        match line.parse::<Cap>() {
            Ok(cap) => roots.push(Root { name, cap }),
            Err(e) => bad.push(format!("{name}: not a cap ({})", e.kind())),
        }
    }
    Ok((roots, bad))
}

/// Add `cap` to `private/keep` (made 0600 if new), once.
pub fn keep(basedir: &Path, cap: &Cap) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = basedir.join(KEEP_FILE);
    let line = cap.to_string();
    if let Ok(text) = std::fs::read_to_string(&path)
        && text.lines().any(|l| l.trim() == line)
    {
        return Ok(());
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    writeln!(f, "{line}").with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Every root of the node in `basedir`: its aliases (with the shared
/// drive as `tahoe` unless an alias has that name), the shared drive, the
/// kept caps; and the problems found reading them.
pub fn roots(basedir: &Path) -> Result<(Vec<Root>, Vec<String>)> {
    let mut roots: Vec<Root> = super::aliases::Aliases::load(basedir)?
        .all()?
        .into_iter()
        .map(|(name, d)| Root {
            name: format!("alias {name}"),
            cap: Cap::Dir(d),
        })
        .collect();
    if let Some(d) = crate::basedir::vdrive_of(basedir)? {
        roots.push(Root {
            name: "the shared drive".into(),
            cap: Cap::Dir(d),
        });
    }
    let (kept, problems) = kept_caps(basedir)?;
    roots.extend(kept);
    Ok((roots, problems))
}

/// What one object's care found and did.
pub struct Tended {
    /// The check (before any repair).
    pub pre: CheckResults,
    /// The repair, when one was asked for.
    pub repair: Option<RepairResults>,
}

/// How maintenance reaches the grid: the node's [`GridClient`], or a
/// simulated grid in tests.
#[async_trait]
pub trait Tend: Send + Sync {
    /// Directories over the servers known now.
    async fn dirs(&self) -> Result<DirClient>;
    /// Check `cap`'s object renewing this node's leases, verifying every
    /// share with `verify`, repaired when `repair` (below `threshold` good
    /// shares on distinct servers; `None`: the node's `happy`); `None` for
    /// a literal object.
    async fn tend(
        &self,
        cap: &Cap,
        verify: bool,
        repair: bool,
        threshold: Option<usize>,
    ) -> Result<Option<Tended>>;
}

#[async_trait]
impl Tend for GridClient {
    async fn dirs(&self) -> Result<DirClient> {
        self.dir_client(KeyPool::new(0)).await
    }

    async fn tend(
        &self,
        cap: &Cap,
        verify: bool,
        repair: bool,
        threshold: Option<usize>,
    ) -> Result<Option<Tended>> {
        let how = Checking {
            verify,
            add_lease: true,
        };
        Ok(if repair {
            self.check_and_repair(cap, how, threshold)
                .await?
                .map(|r| Tended {
                    pre: r.pre.clone(),
                    repair: Some(r),
                })
        } else {
            self.check(cap, how)
                .await?
                .map(|pre| Tended { pre, repair: None })
        })
    }
}

/// What maintenance runs with.
pub struct Maintainer {
    /// The grid.
    pub grid: Arc<dyn Tend>,
    /// The settings.
    pub config: MaintenanceSection,
    /// The node's base directory (roots and state).
    pub basedir: PathBuf,
    /// Seconds since the epoch (the system clock, or a simulation's).
    pub clock: Clock,
}

/// Seconds since the epoch by the system clock.
pub fn system_now() -> u64 {
    Clock::system().now()
}

/// A number in `0..1` from the system's randomness.
fn random_fraction() -> f64 {
    let mut b = [0u8; 8];
    let _ = getrandom::fill(&mut b);
    (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

/// Paces objects and audited bytes to their limits.
struct Pace {
    start: tokio::time::Instant,
    owed: Duration,
}

impl Pace {
    async fn after(&mut self, objects: u64, bytes: u64, cfg: &MaintenanceSection) {
        self.owed += Duration::from_secs_f64(
            objects as f64 / cfg.max_objects_per_sec + bytes as f64 / cfg.max_bytes_per_sec as f64,
        );
        tokio::time::sleep_until(self.start + self.owed).await;
    }
}

impl Maintainer {
    /// Run cycles for ever, one at a time, each `interval` (plus jitter)
    /// after the last one started; a cycle cut short by a restart resumes.
    pub async fn run(self) {
        let mut state = match load_state(&self.basedir) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("maintenance is off: {e:#}");
                return;
            }
        };
        let interval = self.config.interval.secs();
        if state.first_seen == 0 {
            state.first_seen = self.clock.now();
            state.next_at = state.first_seen + self.delay();
            self.save(&state);
        }
        let mut warned_stale_at = 0u64;
        loop {
            let now = self.clock.now();
            if state.stale(now, interval) && now.saturating_sub(warned_stale_at) >= 3600 {
                warned_stale_at = now;
                tracing::warn!(
                    "maintenance is overdue: no cycle has succeeded for more than twice its interval ({})",
                    self.config.interval
                );
            }
            if state.current.is_none() && now < state.next_at {
                let wait = (state.next_at - now).min(3600);
                tokio::time::sleep(Duration::from_secs(wait)).await;
                continue;
            }
            self.cycle(&mut state).await;
        }
    }

    /// The interval plus up to `jitter` of it.
    fn delay(&self) -> u64 {
        let i = self.config.interval.secs() as f64;
        (i + i * self.config.jitter * random_fraction()) as u64
    }

    fn save(&self, state: &MaintenanceState) {
        if let Err(e) = save_state(&self.basedir, state) {
            tracing::warn!("could not save the maintenance state: {e:#}");
        }
    }

    /// One cycle (or the rest of one cut short) over the node's roots,
    /// recorded in `state`.
    pub async fn cycle(&self, state: &mut MaintenanceState) {
        let (roots, problems) = match roots(&self.basedir) {
            Ok(r) => r,
            Err(e) => (
                Vec::new(),
                vec![format!("the roots could not be read: {e:#}")],
            ),
        };
        self.cycle_over(state, &roots, problems).await;
    }

    /// One cycle over `roots` (`problems`: what was wrong finding them).
    pub async fn cycle_over(
        &self,
        state: &mut MaintenanceState,
        roots: &[Root],
        problems: Vec<String>,
    ) {
        let mut cycle = state.current.take().unwrap_or_else(|| MaintenanceCycle {
            number: state.last().map_or(0, |c| c.number) + 1,
            started_at: self.clock.now(),
            ..MaintenanceCycle::default()
        });
        for p in problems {
            tracing::warn!("maintenance: {p}");
            cycle.problem(p);
        }
        cycle.roots = roots.len();
        let mut seen = HashSet::new();
        let mut pace = Pace {
            start: tokio::time::Instant::now(),
            owed: Duration::ZERO,
        };
        // Directories over the servers known now (they change between
        // cycles).
        let dirs = match self.grid.dirs().await {
            Ok(d) => Some(d),
            Err(e) => {
                cycle.problem(format!("no grid to maintain: {e:#}"));
                None
            }
        };
        let mut complete = dirs.is_some();
        for root in roots.iter().skip(cycle.roots_done) {
            let Some(dirs) = &dirs else { break };
            complete &= self
                .root(
                    dirs,
                    root,
                    &mut cycle,
                    &mut seen,
                    &mut pace,
                    &mut state.reported,
                )
                .await;
            cycle.roots_done += 1;
            state.current = Some(cycle.clone());
            self.save(state);
        }
        let now = self.clock.now();
        cycle.finished_at = Some(now);
        // Success is maintenance having done its work (every root walked,
        // every object checked), not every file being well: an
        // unrecoverable file is a problem listed, not a broken renewer.
        cycle.complete = complete;
        if cycle.complete {
            state.last_success_at = Some(now);
        }
        if cycle.unhealthy > 0 || !cycle.complete {
            tracing::info!(
                "maintenance cycle {}: {} objects checked, {} unhealthy, {} repaired, {} unrecoverable, {} problem(s)",
                cycle.number,
                cycle.objects_checked,
                cycle.unhealthy,
                cycle.repaired,
                cycle.unrecoverable,
                cycle.problems.len()
            );
        } else {
            tracing::debug!(
                "maintenance cycle {}: {} objects checked, all healthy",
                cycle.number,
                cycle.objects_checked
            );
        }
        state.next_at = cycle.started_at + self.delay();
        state.current = None;
        state.history.push(cycle);
        let extra = state.history.len().saturating_sub(HISTORY);
        state.history.drain(..extra);
        self.save(state);
    }

    /// Walk one root; `false` when something could not be done.
    async fn root(
        &self,
        dirs: &DirClient,
        root: &Root,
        cycle: &mut MaintenanceCycle,
        seen: &mut HashSet<tahoe_core::kinds::storage::StorageIndex>,
        pace: &mut Pace,
        reported: &mut BTreeSet<String>,
    ) -> bool {
        let mut walked = walk(dirs.clone(), root.cap.clone());
        let mut ok = true;
        while let Some(w) = walked.recv().await {
            let r = match w {
                Walked::Node(r) => r,
                Walked::Error(e) => {
                    ok = false;
                    let p = format!("{}: {e}", root.name);
                    tracing::warn!("maintenance: {p}");
                    cycle.problem(p);
                    continue;
                }
                Walked::Done(_) => break,
            };
            let Some(cap) = r.node.known() else { continue };
            let target = CheckTarget::of(cap);
            let Some(si) = target.storage_index() else {
                continue; // literal: nothing stored
            };
            if !seen.insert(si) {
                continue;
            }
            let path = if r.path.is_empty() {
                root.name.clone()
            } else {
                format!("{}: {}", root.name, r.path.join("/"))
            };
            let audit = random_fraction() < self.config.audit;
            let bytes = match (&target, audit) {
                (CheckTarget::Immutable(v), true) => v.size,
                _ => 0,
            };
            let outcome = self
                .grid
                .tend(cap, audit, self.config.repair, self.config.repair_threshold)
                .await;
            cycle.objects_checked += 1;
            match outcome {
                Ok(Some(Tended { pre, repair })) => {
                    cycle.leases_renewed += pre.leases_renewed as u64;
                    if audit {
                        cycle.objects_audited += 1;
                        cycle.bytes_audited += bytes;
                    }
                    if !pre.healthy {
                        cycle.unhealthy += 1;
                    }
                    if let Some(rep) = &repair
                        && rep.attempted
                        && rep.successful
                    {
                        cycle.repaired += 1;
                    }
                    let after = repair.as_ref().map_or(&pre, |r| &r.post);
                    if !after.recoverable {
                        cycle.unrecoverable += 1;
                        cycle.problem(format!("{path}: unrecoverable ({})", after.summary));
                        if reported.insert(si.to_string()) {
                            tracing::warn!(
                                "maintenance: {path} is unrecoverable: {}",
                                after.summary
                            );
                        }
                    } else if let Some(rep) =
                        repair.as_ref().filter(|r| r.attempted && !r.successful)
                    {
                        cycle.problem(format!("{path}: repair failed ({})", rep.note));
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    ok = false;
                    cycle.problem(format!("{path}: the check failed ({e:#})"));
                }
            }
            pace.after(1, bytes, &self.config).await;
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_caps_skip_bad_lines_and_name_them_without_their_text() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("private")).unwrap();
        let good = "URI:LIT:mfrgg";
        let text =
            format!("# kept\n\n{good}\nURI:CHK:secret-looking-garbage\n  {good}  \nnot a cap\n");
        std::fs::write(dir.path().join(KEEP_FILE), text).unwrap();
        let (roots, bad) = kept_caps(dir.path()).unwrap();
        assert_eq!(roots.len(), 2);
        assert_eq!(roots[0].name, "private/keep line 3");
        assert_eq!(bad.len(), 2, "{bad:?}");
        assert!(
            bad[0].starts_with("private/keep line 4: not a cap"),
            "{bad:?}"
        );
        assert!(bad[1].starts_with("private/keep line 6"), "{bad:?}");
        assert!(
            !bad.iter().any(|b| b.contains("garbage")),
            "a bad line's text was reported"
        );
    }

    #[test]
    fn keep_appends_once_and_makes_the_file_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("private")).unwrap();
        let cap: Cap = "URI:LIT:mfrgg".parse().unwrap();
        keep(dir.path(), &cap).unwrap();
        keep(dir.path(), &cap).unwrap();
        let path = dir.path().join(KEEP_FILE);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "URI:LIT:mfrgg\n");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn staleness_counts_from_the_last_success_or_the_first_start() {
        let mut s = MaintenanceState {
            first_seen: 1000,
            ..MaintenanceState::default()
        };
        assert!(!s.stale(1000 + 200, 100));
        assert!(s.stale(1000 + 201, 100));
        s.last_success_at = Some(1150);
        assert!(!s.stale(1300, 100));
        assert!(s.stale(1351, 100));
        // A clock that stepped back never reads as overdue.
        assert!(!s.stale(10, 100));
    }

    #[test]
    fn a_newer_state_is_refused_by_its_version() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("maintenance")).unwrap();
        std::fs::write(
            dir.path().join(MAINTENANCE_STATE_FILE),
            br#"{"version": 7}"#,
        )
        .unwrap();
        let e = load_state(dir.path()).unwrap_err();
        assert!(format!("{e:#}").contains("version 7"), "{e:#}");
    }
}
