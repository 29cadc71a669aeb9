//! The lease crawler over a real storage server and backend, on a clock
//! the test turns: what it collects, what it never collects, and the
//! races it must win (a renewal or an upload while it decides).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tahoe_core::kinds::storage::{
    Lease, PendingShare, ShareInfo, ShareKind, StorageBackend, StorageIndex, TestVector,
    WriteVector,
};
use tahoe_core::protocol::{AllocateRequest, StorageService};
use tahoe_core::server::{ExpiryPolicy, ServerConfig, StorageServer};
use tahoe_core::time::{Clock, Span};
use tahoe_storage_memory::MemoryBackend;

const DURATION: u64 = 100;
const GRACE: u64 = 10;
const START: u64 = 1_000_000;

struct Setup {
    server: StorageServer,
    clock: Arc<AtomicU64>,
}

impl Setup {
    fn new(backend: Arc<dyn StorageBackend>, enabled: bool, dry_run: bool) -> Setup {
        let clock = Arc::new(AtomicU64::new(START));
        let now = clock.clone();
        let server = StorageServer::new(
            backend,
            ServerConfig {
                lease_duration: Span(DURATION),
                expiry: ExpiryPolicy {
                    enabled,
                    dry_run,
                    grace: Span(GRACE),
                    ..ExpiryPolicy::default()
                },
                clock: Clock::from_fn(move || now.load(Ordering::SeqCst)),
                ..ServerConfig::default()
            },
        );
        Setup { server, clock }
    }

    fn advance(&self, secs: u64) {
        self.clock.fetch_add(secs, Ordering::SeqCst);
    }

    /// Upload shares `shnums` of `si`, `size` bytes each, with lease `n`.
    async fn upload(&self, si: StorageIndex, shnums: &[u8], size: usize, n: u8) {
        let r = self
            .server
            .allocate_buckets(request(si, shnums, size as u64, n))
            .await
            .unwrap();
        assert_eq!(r.allocated, shnums);
        for &s in shnums {
            self.server
                .write_bucket(si, s, [n; 32], 0, Bytes::from(vec![s; size]))
                .await
                .unwrap();
            self.server.close_bucket(si, s, [n; 32]).await.unwrap();
        }
    }

    async fn shares(&self, si: StorageIndex) -> Vec<u8> {
        self.server
            .list_buckets(si)
            .await
            .unwrap()
            .into_keys()
            .collect()
    }
}

fn request(si: StorageIndex, shnums: &[u8], size: u64, n: u8) -> AllocateRequest {
    AllocateRequest {
        storage_index: si,
        share_numbers: shnums.to_vec(),
        share_size: size,
        renew_secret: [n; 32],
        cancel_secret: [n.wrapping_add(1); 32],
        upload_secret: [n; 32],
    }
}

fn si(n: u8) -> StorageIndex {
    StorageIndex([n; 16])
}

#[tokio::test]
async fn shares_go_only_when_every_lease_and_the_grace_are_over() {
    let t = Setup::new(Arc::new(MemoryBackend::new(None)), true, false);
    t.upload(si(1), &[0, 1, 2], 50, 1).await; // will expire
    t.upload(si(2), &[0, 1], 70, 2).await; // renewed by a second holder
    t.upload(si(3), &[5], 30, 3).await; // renewed by its own holder
    t.advance(60);
    t.server.add_lease(si(2), [9; 32], [9; 32]).await.unwrap();
    t.server.add_lease(si(3), [3; 32], [4; 32]).await.unwrap();
    // Lease 1 ended at START+100; within the grace nothing goes.
    t.advance(DURATION - 60 + GRACE - 1);
    let c = t.server.crawl_cycle().await.unwrap();
    assert_eq!(c.counts.shares_reclaimed.total(), 0);
    assert_eq!(c.counts.shares_in_grace.immutable, 3);
    assert_eq!(c.counts.buckets.immutable, 3);
    assert_eq!(c.counts.shares.immutable, 6);
    assert_eq!(c.counts.bytes.immutable, 3 * 50 + 2 * 70 + 30);
    assert_eq!(t.shares(si(1)).await, vec![0, 1, 2]);
    // Past the grace: si(1) goes, whole; the others stay.
    t.advance(2);
    let c = t.server.crawl_cycle().await.unwrap();
    assert_eq!(c.counts.shares_reclaimed.immutable, 3);
    assert_eq!(c.counts.bytes_reclaimed.immutable, 150);
    assert_eq!(c.counts.buckets_reclaimed.immutable, 1);
    assert_eq!(
        c.counts.leases_expired, 2,
        "lease 1 and si(2)'s first lease"
    );
    assert!(t.shares(si(1)).await.is_empty());
    assert_eq!(t.shares(si(2)).await, vec![0, 1]);
    assert_eq!(t.shares(si(3)).await, vec![5]);
    let after = t.server.crawler_state();
    assert_eq!(after.history.len(), 2);
    assert_eq!(after.last().unwrap().number, 2);
    // The space is reusable: the same storage index uploads anew, with
    // no lease inherited.
    t.upload(si(1), &[0], 10, 7).await;
    assert_eq!(
        t.server.backend().leases(&si(1)).await.unwrap().len(),
        1,
        "a new share inherited the old leases"
    );
}

#[tokio::test]
async fn expiry_off_or_in_dry_run_deletes_nothing_and_says_what_would_go() {
    for (enabled, dry_run) in [(false, false), (true, true)] {
        let t = Setup::new(Arc::new(MemoryBackend::new(None)), enabled, dry_run);
        t.upload(si(1), &[0, 1], 40, 1).await;
        t.upload(si(2), &[0], 40, 2).await;
        t.advance(DURATION / 2);
        t.server.add_lease(si(2), [2; 32], [3; 32]).await.unwrap();
        // si(1)'s lease ended past the grace; si(2)'s renewal lives on.
        t.advance(DURATION / 2 + GRACE + 1);
        let c = t.server.crawl_cycle().await.unwrap();
        assert_eq!(c.counts.shares_reclaimed.total(), 0);
        assert_eq!(c.counts.shares_would_reclaim.immutable, 2);
        assert_eq!(c.counts.bytes_would_reclaim.immutable, 80);
        assert_eq!(c.dry_run, dry_run);
        assert!(!c.expiry_enabled);
        assert_eq!(t.shares(si(1)).await, vec![0, 1]);
    }
}

#[tokio::test]
async fn mutable_shares_expire_only_when_the_policy_covers_them() {
    for mutable in [false, true] {
        let clock = Arc::new(AtomicU64::new(START));
        let now = clock.clone();
        let server = StorageServer::new(
            Arc::new(MemoryBackend::new(None)),
            ServerConfig {
                lease_duration: Span(DURATION),
                expiry: ExpiryPolicy {
                    enabled: true,
                    mutable,
                    grace: Span(0),
                    ..ExpiryPolicy::default()
                },
                clock: Clock::from_fn(move || now.load(Ordering::SeqCst)),
                ..ServerConfig::default()
            },
        );
        let secrets = tahoe_core::protocol::SlotSecrets {
            write_enabler: [1; 32],
            renew_secret: [2; 32],
            cancel_secret: [3; 32],
        };
        let mut w = std::collections::BTreeMap::new();
        w.insert(
            0u8,
            tahoe_core::protocol::SlotWrite {
                tests: vec![],
                writes: vec![WriteVector {
                    offset: 0,
                    data: Bytes::from_static(b"slot data"),
                }],
                new_length: None,
            },
        );
        let (ok, _) = server
            .slot_testv_and_readv_and_writev(si(4), secrets, w, vec![])
            .await
            .unwrap();
        assert!(ok);
        clock.fetch_add(DURATION + 1, Ordering::SeqCst);
        let c = server.crawl_cycle().await.unwrap();
        assert_eq!(c.counts.buckets.mutable, 1);
        assert_eq!(c.counts.shares_reclaimed.mutable, u64::from(mutable));
        let left = server.backend().list(&si(4)).await.unwrap().len();
        assert_eq!(left, usize::from(!mutable));
    }
}

/// A memory backend whose `leases` reads the leases and then waits
/// before answering, as a crawler deciding slowly would: whatever
/// happens meanwhile must not make it delete a share with a live lease.
struct SlowLeases {
    inner: MemoryBackend,
    reading: tokio::sync::Notify,
}

#[async_trait::async_trait]
impl StorageBackend for SlowLeases {
    fn name(&self) -> &str {
        "slow-leases"
    }
    async fn create(
        &self,
        si: &StorageIndex,
        shnum: u8,
        size: u64,
    ) -> tahoe_core::Result<Box<dyn PendingShare>> {
        self.inner.create(si, shnum, size).await
    }
    async fn read(
        &self,
        si: &StorageIndex,
        shnum: u8,
        kind: ShareKind,
        offset: u64,
        len: u64,
    ) -> tahoe_core::Result<Bytes> {
        self.inner.read(si, shnum, kind, offset, len).await
    }
    async fn list(&self, si: &StorageIndex) -> tahoe_core::Result<Vec<ShareInfo>> {
        self.inner.list(si).await
    }
    async fn delete(&self, si: &StorageIndex, shnum: u8) -> tahoe_core::Result<()> {
        self.inner.delete(si, shnum).await
    }
    async fn remaining_capacity(&self) -> tahoe_core::Result<Option<u64>> {
        self.inner.remaining_capacity().await
    }
    async fn test_and_write(
        &self,
        si: &StorageIndex,
        shnum: u8,
        tests: &[TestVector],
        writes: &[WriteVector],
        new_length: Option<u64>,
    ) -> tahoe_core::Result<bool> {
        self.inner
            .test_and_write(si, shnum, tests, writes, new_length)
            .await
    }
    async fn add_lease(&self, si: &StorageIndex, l: &Lease) -> tahoe_core::Result<()> {
        self.inner.add_lease(si, l).await
    }
    async fn leases(&self, si: &StorageIndex) -> tahoe_core::Result<Vec<Lease>> {
        let leases = self.inner.leases(si).await;
        self.reading.notify_one();
        tokio::time::sleep(Duration::from_millis(300)).await;
        leases
    }
    async fn storage_indexes(
        &self,
        after: Option<&StorageIndex>,
        limit: usize,
    ) -> tahoe_core::Result<Option<Vec<StorageIndex>>> {
        self.inner.storage_indexes(after, limit).await
    }
}

/// The crawler reads an expired lease, and while it decides a client
/// renews the lease, or asks to upload the same file (and is told which
/// shares the server already has). An acknowledged renewal, and a share
/// answered as already here, must never be deleted: the renewal waits
/// for the crawler's decision and then succeeds on live shares or is told
/// they are gone (and the client uploads again).
#[tokio::test]
async fn a_renewal_or_an_upload_during_the_decision_never_loses_a_share() {
    for race in ["renew", "upload"] {
        let backend = Arc::new(SlowLeases {
            inner: MemoryBackend::new(None),
            reading: tokio::sync::Notify::new(),
        });
        let t = Setup::new(backend.clone(), true, false);
        t.upload(si(1), &[0, 1], 20, 1).await;
        t.advance(DURATION + GRACE + 1);
        let crawler = {
            let server = t.server.clone();
            tokio::spawn(async move { server.crawl_cycle().await })
        };
        backend.reading.notified().await;
        match race {
            "renew" => {
                let renewed = t.server.add_lease(si(1), [1; 32], [2; 32]).await;
                crawler.await.unwrap().unwrap();
                let held = t.shares(si(1)).await;
                match renewed {
                    Ok(()) => assert_eq!(held, vec![0, 1], "a renewed lease's shares were deleted"),
                    Err(e) => assert!(held.is_empty(), "renewal failed ({e}) on live shares"),
                }
            }
            _ => {
                let r = t
                    .server
                    .allocate_buckets(request(si(1), &[0, 1], 20, 5))
                    .await
                    .unwrap();
                crawler.await.unwrap().unwrap();
                let held = t.shares(si(1)).await;
                for s in &r.already_have {
                    assert!(
                        held.contains(s),
                        "share {s} was answered as already here, then deleted"
                    );
                }
                assert_eq!(r.already_have.len() + r.allocated.len(), 2);
            }
        }
    }
}

#[tokio::test]
async fn shares_being_uploaded_without_leases_or_unreadable_are_kept() {
    let t = Setup::new(Arc::new(MemoryBackend::new(None)), true, false);
    // A share being written: allocated, not closed.
    let r = t
        .server
        .allocate_buckets(request(si(1), &[0], 10, 1))
        .await
        .unwrap();
    assert_eq!(r.allocated, vec![0]);
    // A share of the same index sealed earlier, its lease long over.
    t.upload(si(1), &[1], 10, 2).await;
    // A share with no lease at all (put straight into the backend).
    let b = t.server.backend();
    let mut p = b.create(&si(2), 0, 3).await.unwrap();
    p.write(0, Bytes::from_static(b"abc")).await.unwrap();
    p.seal().await.unwrap();
    t.advance(10 * DURATION);
    let c = t.server.crawl_cycle().await.unwrap();
    assert_eq!(c.counts.buckets_in_use, 1);
    assert_eq!(c.counts.buckets_without_leases, 1);
    assert_eq!(c.counts.shares_reclaimed.total(), 0);
    assert_eq!(t.shares(si(1)).await, vec![1]);
    assert_eq!(t.shares(si(2)).await, vec![0]);
}

/// A state file that cannot be written (a full disk, say) costs the
/// crawler its saved position, not its work: the cycle goes on and
/// collects as it should. A state file of a newer version is refused by
/// name, never misread.
#[tokio::test]
async fn the_crawl_goes_on_when_its_state_cannot_be_saved() {
    let t = Setup::new(Arc::new(MemoryBackend::new(None)), true, false);
    t.upload(si(1), &[0, 1], 20, 1).await;
    t.upload(si(2), &[0], 20, 2).await;
    t.advance(DURATION + GRACE + 1);
    t.server.add_lease(si(2), [2; 32], [3; 32]).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("file"), b"not a directory").unwrap();
    let unwritable = dir.path().join("file/crawler/state.json");
    let crawler = {
        let server = t.server.clone();
        tokio::spawn(async move { server.run_crawler(unwritable).await })
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while t.server.crawler_state().history.is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "no cycle finished");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    crawler.abort();
    let c = t.server.crawler_state().history[0].clone();
    assert_eq!(c.counts.shares_reclaimed.immutable, 2);
    assert!(t.shares(si(1)).await.is_empty());
    assert_eq!(t.shares(si(2)).await, vec![0]);

    let newer = dir.path().join("newer.json");
    std::fs::write(&newer, br#"{"version": 99, "history": []}"#).unwrap();
    let e = tahoe_core::server::crawler::load_state(&newer).unwrap_err();
    assert!(e.to_string().contains("version 99"), "{e}");
    let e = t.server.run_crawler(newer).await.unwrap_err();
    assert!(e.to_string().contains("version 99"), "{e}");
}
