//! A year in minutes: an in-process grid on a simulated clock, 50 storage
//! servers with lease expiry on, 10,000 files in a directory tree.
//! Every week two servers fail with their disks and two new ones join,
//! files are added and unlinked, the node's maintenance runs (the real
//! [`Maintainer`], over the simulated grid) and every server's lease
//! crawler runs. After the year no linked file is lost, every unlinked
//! file's space was reclaimed within two lease periods, and each cycle's
//! report adds up. The same year without maintenance loses files.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use tahoe::client::maintenance::{Maintainer, MaintenanceState, Root, Tend, Tended};
use tahoe_core::client::check::repair::RepairTools;
use tahoe_core::client::check::{CheckTarget, Checker};
use tahoe_core::client::dirnode::DirClient;
use tahoe_core::client::immutable::upload::Uploader;
use tahoe_core::client::secrets::ClientSecret;
use tahoe_core::client::source::BytesSource;
use tahoe_core::format::cap::{Cap, DirCap};
use tahoe_core::format::dirnode::{Metadata, Node};
use tahoe_core::format::ssk::MutableFormat;
use tahoe_core::kinds::storage::StorageIndex;
use tahoe_core::plugin::config::MaintenanceSection;
use tahoe_core::server::{ExpiryPolicy, ServerConfig, StorageServer};
use tahoe_core::testing::pseudo_random_bytes;
use tahoe_core::time::{Clock, Span};
use tahoe_storage_memory::MemoryBackend;
use testkit::MemGrid;

const DAY: u64 = 86_400;
const WEEK: u64 = 7 * DAY;
const LEASE: u64 = 31 * DAY;
const SERVERS: usize = 50;
const FILES: usize = 10_000;
const DIRS: usize = 20;
const FAIL_PER_WEEK: usize = 2;
const CHURN_PER_WEEK: usize = 20;
const K: u16 = 3;
const HAPPY: u16 = 7;
const N: u16 = 10;

/// A small deterministic generator (the simulation must replay the same).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// The grid as maintenance sees it this week, and its tools (made once
/// a week: making them per object would cost more than the checks).
struct Week {
    grid: MemGrid,
    checker: Checker,
    tools: RepairTools,
    dirs: DirClient,
    _spool: tempfile::TempDir,
}

impl Week {
    fn new(grid: MemGrid, secret: &ClientSecret) -> Week {
        let spool = tempfile::tempdir().unwrap();
        Week {
            checker: Checker {
                add_lease: Some(secret.clone()),
                ..grid.checker(grid.refs())
            },
            tools: RepairTools {
                secret: secret.clone(),
                ..grid.repair_tools(spool.path())
            },
            dirs: grid.dir_client(K, N, 0..0),
            grid,
            _spool: spool,
        }
    }
}

/// The simulated grid behind the real maintainer: the servers up this
/// week, swapped by the simulation as they fail and join.
struct SimGrid {
    week: std::sync::RwLock<Arc<Week>>,
}

impl SimGrid {
    fn week(&self) -> Arc<Week> {
        self.week.read().unwrap().clone()
    }
}

#[async_trait]
impl Tend for SimGrid {
    async fn dirs(&self) -> anyhow::Result<DirClient> {
        Ok(self.week().dirs.clone())
    }

    async fn tend(
        &self,
        cap: &Cap,
        verify: bool,
        repair: bool,
        threshold: Option<usize>,
    ) -> anyhow::Result<Option<Tended>> {
        let week = self.week();
        let target = CheckTarget::of(cap);
        if !repair {
            return Ok(week
                .checker
                .check(&target, verify)
                .await
                .map(|pre| Tended { pre, repair: None }));
        }
        let threshold = threshold.unwrap_or(usize::from(HAPPY));
        Ok(week
            .checker
            .check_and_repair(
                &target,
                cap.mutable_write_cap().as_ref(),
                verify,
                threshold,
                &week.tools,
            )
            .await
            .map(|r| Tended {
                pre: r.pre.clone(),
                repair: Some(r),
            }))
    }
}

struct Sim {
    clock: Arc<AtomicU64>,
    servers: Vec<(String, Arc<StorageServer>)>,
    next_id: usize,
    grid: Arc<SimGrid>,
    secret: ClientSecret,
    rng: Rng,
}

impl Sim {
    fn server(&mut self) -> (String, Arc<StorageServer>) {
        let now = self.clock.clone();
        let id = format!("server-{}", self.next_id);
        self.next_id += 1;
        let server = StorageServer::new(
            Arc::new(MemoryBackend::new(None)),
            ServerConfig {
                expiry: ExpiryPolicy {
                    enabled: true,
                    ..ExpiryPolicy::default()
                },
                clock: Clock::from_fn(move || now.load(Ordering::Relaxed)),
                ..ServerConfig::default()
            },
        );
        (id, Arc::new(server))
    }

    /// Make this week's grid of the servers up now.
    fn regrid(&self) {
        let grid = MemGrid::direct(self.servers.iter().cloned());
        *self.grid.week.write().unwrap() = Arc::new(Week::new(grid, &self.secret));
    }

    fn uploader(&self) -> Uploader {
        self.grid.week().grid.uploader(K, N, 1 << 20)
    }

    async fn upload(&self, seed: u64) -> Cap {
        let week = self.grid.week();
        let sink = tahoe_core::client::immutable::placement::HappySink::new(
            week.grid.refs(),
            K,
            HAPPY,
            N,
            self.secret.clone(),
        );
        self.uploader()
            .upload(
                Arc::new(BytesSource(Bytes::from(pseudo_random_bytes(seed, 300)))),
                &sink,
            )
            .await
            .unwrap()
    }

    fn advance(&self, secs: u64) {
        self.clock.fetch_add(secs, Ordering::Relaxed);
    }

    fn now(&self) -> u64 {
        self.clock.load(Ordering::Relaxed)
    }

    /// Whether any server up holds a share of `si`.
    async fn held(&self, si: &StorageIndex) -> bool {
        for (_, s) in &self.servers {
            if !s.backend().list(si).await.unwrap().is_empty() {
                return true;
            }
        }
        false
    }
}

fn metadata() -> Metadata {
    Metadata::new()
}

/// What a year did.
struct Year {
    linked_lost: usize,
    linked: usize,
}

async fn year(maintenance: bool) -> Year {
    let clock = Arc::new(AtomicU64::new(1_800_000_000));
    let mut sim = Sim {
        clock: clock.clone(),
        servers: Vec::new(),
        next_id: 0,
        grid: Arc::new(SimGrid {
            week: std::sync::RwLock::new(Arc::new(Week::new(
                MemGrid::direct(std::iter::empty()),
                &ClientSecret::random().unwrap(),
            ))),
        }),
        secret: ClientSecret::random().unwrap(),
        rng: Rng(0x9e37_79b9_7f4a_7c15),
    };
    for _ in 0..SERVERS {
        let s = sim.server();
        sim.servers.push(s);
    }
    sim.regrid();

    // The tree: DIRS directories of files under one root.
    let mut seed = 0u64;
    let mut linked: BTreeMap<String, (usize, Cap)> = BTreeMap::new();
    let mut dirs: Vec<DirCap> = Vec::new();
    let dir_client = sim.grid.week().grid.dir_client(K, N, 0..DIRS + 1);
    for d in 0..DIRS {
        let mut children = Vec::new();
        for _ in 0..FILES / DIRS {
            seed += 1;
            let cap = sim.upload(seed).await;
            let name = format!("f{seed}");
            children.push((name.clone(), Node::from_cap(cap.clone()), metadata()));
            linked.insert(name, (d, cap));
        }
        dirs.push(
            dir_client
                .create(MutableFormat::Sdmf, children)
                .await
                .unwrap(),
        );
    }
    let root = dir_client
        .create(
            MutableFormat::Sdmf,
            dirs.iter()
                .enumerate()
                .map(|(i, d)| {
                    (
                        format!("d{i}"),
                        Node::from_cap(Cap::Dir(d.clone())),
                        metadata(),
                    )
                })
                .collect(),
        )
        .await
        .unwrap();

    let basedir = tempfile::tempdir().unwrap();
    let maintainer = Maintainer {
        grid: sim.grid.clone(),
        config: MaintenanceSection {
            interval: Span(WEEK),
            audit: 0.01,
            max_objects_per_sec: 1e12,
            max_bytes_per_sec: u64::MAX,
            ..MaintenanceSection::default()
        },
        basedir: basedir.path().to_path_buf(),
        clock: Clock::from_fn(move || clock.load(Ordering::Relaxed)),
    };
    let mut state = MaintenanceState::default();
    let roots = [Root {
        name: "root".into(),
        cap: Cap::Dir(root.clone()),
    }];
    // Unlinked files: their storage index and when they were unlinked.
    let mut unlinked: Vec<(StorageIndex, u64)> = Vec::new();

    for week in 0..52 {
        sim.advance(WEEK);
        // Servers fail, with their disks; new ones join.
        for _ in 0..FAIL_PER_WEEK {
            let i = sim.rng.below(sim.servers.len());
            sim.servers.remove(i);
            let s = sim.server();
            sim.servers.push(s);
        }
        sim.regrid();
        let dirs_now = sim.grid.week().dirs.clone();
        // Files come and go.
        for _ in 0..CHURN_PER_WEEK {
            seed += 1;
            let cap = sim.upload(seed).await;
            let d = sim.rng.below(DIRS);
            let name = format!("f{seed}");
            dirs_now
                .add(
                    &dirs[d],
                    &name,
                    Node::from_cap(cap.clone()),
                    None,
                    tahoe_core::format::dirnode::Replace::Never,
                )
                .await
                .unwrap();
            linked.insert(name, (d, cap));
            let victim = linked
                .keys()
                .nth(sim.rng.below(linked.len()))
                .unwrap()
                .clone();
            let (vd, vcap) = linked.remove(&victim).unwrap();
            dirs_now.remove(&dirs[vd], &victim).await.unwrap();
            let si = CheckTarget::of(&vcap).storage_index().unwrap();
            unlinked.push((si, sim.now()));
        }
        if maintenance {
            maintainer.cycle_over(&mut state, &roots, Vec::new()).await;
            let c = state.last().unwrap();
            assert_eq!(c.number, week + 1);
            assert!(c.complete, "week {week}: {:?}", c.problems);
            // Every linked file once, every directory and the root.
            assert_eq!(
                c.objects_checked as usize,
                linked.len() + DIRS + 1,
                "week {week}"
            );
            assert_eq!(c.unrecoverable, 0, "week {week}: {:?}", c.problems);
            assert!(c.repaired <= c.unhealthy + c.objects_checked, "week {week}");
            assert!(
                c.leases_renewed >= c.objects_checked * u64::from(K),
                "week {week}"
            );
        }
        // Every server crawls; its report adds up with what it holds.
        for (id, s) in &sim.servers {
            let held = |s: &Arc<StorageServer>| {
                let s = s.clone();
                async move {
                    let mut n = 0u64;
                    let mut after = None;
                    loop {
                        let page = s
                            .backend()
                            .storage_indexes(after.as_ref(), 1000)
                            .await
                            .unwrap()
                            .unwrap();
                        for si in &page {
                            n += s.backend().list(si).await.unwrap().len() as u64;
                        }
                        if page.len() < 1000 {
                            return n;
                        }
                        after = page.last().copied();
                    }
                }
            };
            let before = held(s).await;
            let c = s.crawl_cycle().await.unwrap();
            let after = held(s).await;
            assert_eq!(c.counts.shares.total(), before, "{id}, week {week}");
            assert_eq!(
                after,
                before - c.counts.shares_reclaimed.total(),
                "{id}, week {week}"
            );
        }
        // Space comes back within two lease periods of an unlink.
        for (si, at) in &unlinked {
            if sim.now() - at > 2 * LEASE {
                assert!(
                    !sim.held(si).await,
                    "week {week}: an unlinked file's shares outlived two lease periods"
                );
            }
        }
        unlinked.retain(|(_, at)| sim.now() - at <= 2 * LEASE + WEEK);
    }

    // The year's end: read every linked file back.
    let week = sim.grid.week();
    let mut lost = 0;
    for (name, (_, cap)) in linked.iter() {
        let Cap::Chk(chk) = cap else { unreachable!() };
        let seed: u64 = name[1..].parse().unwrap();
        let ok = match week.grid.download(chk).await {
            Ok((data, _)) => data == pseudo_random_bytes(seed, 300),
            Err(_) => false,
        };
        lost += usize::from(!ok);
    }
    Year {
        linked_lost: lost,
        linked: linked.len(),
    }
}

/// One year after the other on one thread: the suite's other tests (real
/// processes, a browser) keep the other core.
#[tokio::test]
async fn a_year_of_failures_loses_nothing_with_maintenance_and_files_without() {
    let with = year(true).await;
    let without = year(false).await;
    assert_eq!(with.linked, FILES);
    assert_eq!(with.linked_lost, 0, "files lost with maintenance");
    assert!(
        without.linked_lost > 0,
        "without maintenance the year lost nothing: the test proves nothing"
    );
}
