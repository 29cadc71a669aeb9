//! The storage server's protocol rules over a real (memory) backend.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use tahoe_core::ErrorKind;
use tahoe_core::kinds::storage::{StorageIndex, TestVector, WriteVector};
use tahoe_core::protocol::{AllocateRequest, Caller, SlotSecrets, SlotWrite, StorageService};
use tahoe_core::server::{ServerConfig, StorageServer};
use tahoe_storage_memory::MemoryBackend;

fn server(config: ServerConfig, capacity: Option<u64>) -> StorageServer {
    StorageServer::new(Arc::new(MemoryBackend::new(capacity)), config)
}

fn req(shares: Vec<u8>, size: u64) -> AllocateRequest {
    AllocateRequest {
        storage_index: StorageIndex([4; 16]),
        share_numbers: shares,
        share_size: size,
        renew_secret: [1; 32],
        cancel_secret: [2; 32],
        upload_secret: [3; 32],
    }
}

#[tokio::test]
async fn immutable_buckets() {
    let s = server(ServerConfig::default(), None);
    let si = StorageIndex([4; 16]);
    let r = s.allocate_buckets(req(vec![0, 1], 4)).await.unwrap();
    assert_eq!(r.allocated, vec![0, 1]);
    // Another uploader is not given shares being uploaded.
    let mut other = req(vec![0], 4);
    other.upload_secret = [8; 32];
    assert!(
        s.allocate_buckets(other)
            .await
            .unwrap()
            .allocated
            .is_empty()
    );
    let e = s
        .write_bucket(si, 0, [9; 32], 0, Bytes::from_static(b"abcd"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    s.write_bucket(si, 0, [3; 32], 0, Bytes::from_static(b"abcd"))
        .await
        .unwrap();
    assert!(
        s.list_buckets(si).await.unwrap().is_empty(),
        "unsealed shares are not listed"
    );
    s.close_bucket(si, 0, [3; 32]).await.unwrap();
    s.abort_bucket(si, 1, [3; 32]).await.unwrap();
    assert_eq!(
        s.list_buckets(si)
            .await
            .unwrap()
            .into_iter()
            .collect::<Vec<_>>(),
        vec![(0, 4)]
    );
    assert_eq!(&s.read_bucket(si, 0, 1, 10).await.unwrap()[..], b"bcd");
    let again = s.allocate_buckets(req(vec![0, 1], 4)).await.unwrap();
    assert_eq!((again.already_have, again.allocated), (vec![0], vec![1]));
}

#[tokio::test]
async fn readonly_and_reserved_space_refuse_new_shares() {
    let ro = server(
        ServerConfig {
            readonly: true,
            ..Default::default()
        },
        None,
    );
    assert!(
        ro.allocate_buckets(req(vec![0], 10))
            .await
            .unwrap()
            .allocated
            .is_empty()
    );
    assert!(ro.version().await.unwrap().readonly);
    let tight = server(
        ServerConfig {
            reserved_space: 900,
            ..Default::default()
        },
        Some(1000),
    );
    assert!(
        tight
            .allocate_buckets(req(vec![0], 200))
            .await
            .unwrap()
            .allocated
            .is_empty()
    );
    assert_eq!(
        tight
            .allocate_buckets(req(vec![0], 100))
            .await
            .unwrap()
            .allocated,
        vec![0]
    );
}

fn write(offset: u64, data: &'static [u8]) -> SlotWrite {
    SlotWrite {
        tests: vec![],
        writes: vec![WriteVector {
            offset,
            data: Bytes::from_static(data),
        }],
        new_length: None,
    }
}

#[tokio::test]
async fn mutable_slots_are_guarded_by_the_write_enabler() {
    let s = server(ServerConfig::default(), None);
    let si = StorageIndex([5; 16]);
    let secrets = |we: u8| SlotSecrets {
        write_enabler: [we; 32],
        renew_secret: [1; 32],
        cancel_secret: [2; 32],
    };
    let mut w = BTreeMap::new();
    w.insert(0, write(0, b"version one"));
    w.insert(1, write(0, b"other share"));
    let (ok, reads) = s
        .slot_testv_and_readv_and_writev(si, secrets(7), w, vec![(0, 7)])
        .await
        .unwrap();
    assert!(ok);
    assert!(reads.is_empty(), "reads show the slot before the writes");
    let got = s
        .slot_readv(si, vec![], vec![(0, 7), (8, 3)])
        .await
        .unwrap();
    assert_eq!(
        got[&0],
        vec![Bytes::from_static(b"version"), Bytes::from_static(b"one")]
    );
    assert_eq!(got.len(), 2);
    // The wrong enabler changes nothing.
    let mut w = BTreeMap::new();
    w.insert(0, write(0, b"HIJACKED"));
    let e = s
        .slot_testv_and_readv_and_writev(si, secrets(8), w, vec![])
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    // A failing test changes nothing, and returns the reads.
    let mut w = BTreeMap::new();
    w.insert(
        0,
        SlotWrite {
            tests: vec![TestVector::equals(0, Bytes::from_static(b"version two"))],
            writes: vec![WriteVector {
                offset: 0,
                data: Bytes::from_static(b"version three"),
            }],
            new_length: None,
        },
    );
    let (ok, reads) = s
        .slot_testv_and_readv_and_writev(si, secrets(7), w, vec![(0, 11)])
        .await
        .unwrap();
    assert!(!ok);
    assert_eq!(reads[&0], vec![Bytes::from_static(b"version one")]);
    // A passing test writes.
    let mut w = BTreeMap::new();
    w.insert(
        0,
        SlotWrite {
            tests: vec![TestVector::equals(0, Bytes::from_static(b"version one"))],
            writes: vec![WriteVector {
                offset: 8,
                data: Bytes::from_static(b"two"),
            }],
            new_length: Some(11),
        },
    );
    assert!(
        s.slot_testv_and_readv_and_writev(si, secrets(7), w, vec![])
            .await
            .unwrap()
            .0
    );
    assert_eq!(
        s.slot_readv(si, vec![0], vec![(0, 100)]).await.unwrap()[&0][0],
        Bytes::from_static(b"version two")
    );
    // Mutable shares are not immutable buckets.
    assert!(s.list_buckets(si).await.unwrap().is_empty());
}

/// One call carries at most MAX_CALL_DATA bytes of share data, whatever
/// the peer asks, so a read of a huge range cannot make the server allocate
/// the whole share; the chunked helpers move more in several calls.
#[tokio::test]
async fn calls_carry_bounded_data_and_the_helpers_split_larger_transfers() {
    use tahoe_core::protocol::{MAX_CALL_DATA, read_bucket_chunked, write_bucket_chunked};
    let s = server(ServerConfig::default(), None);
    let si = StorageIndex([4; 16]);
    let size = 2 * MAX_CALL_DATA + 5;
    s.allocate_buckets(req(vec![0], size)).await.unwrap();
    let too_big = Bytes::from(vec![1u8; MAX_CALL_DATA as usize + 1]);
    let e = s
        .write_bucket(si, 0, [3; 32], 0, too_big)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    write_bucket_chunked(&s, si, 0, [3; 32], 0, Bytes::from(data.clone()))
        .await
        .unwrap();
    s.close_bucket(si, 0, [3; 32]).await.unwrap();
    for len in [MAX_CALL_DATA + 1, u64::MAX] {
        let e = s.read_bucket(si, 0, 0, len).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    }
    let all = read_bucket_chunked(&s, si, 0, 0, size).await.unwrap();
    assert_eq!(&all[..], &data[..]);
    // Short at the end, like a single read.
    let tail = read_bucket_chunked(&s, si, 0, 3, u64::MAX).await.unwrap();
    assert_eq!(&tail[..], &data[3..]);
}

fn slot_secrets(we: u8) -> SlotSecrets {
    SlotSecrets {
        write_enabler: [we; 32],
        renew_secret: [1; 32],
        cancel_secret: [2; 32],
    }
}

fn writes(shares: &[(u8, SlotWrite)]) -> BTreeMap<u8, SlotWrite> {
    shares.iter().cloned().collect()
}

/// Every read call, over every byte of a mutable share and beyond, returns
/// share data only: the write enabler never leaves the server.
#[tokio::test]
async fn the_write_enabler_is_never_readable() {
    let s = server(ServerConfig::default(), None);
    let si = StorageIndex([6; 16]);
    let we = 0xab;
    let data = Bytes::from(vec![0x11u8; 300]);
    let w = SlotWrite {
        tests: vec![TestVector::absent()],
        writes: vec![WriteVector {
            offset: 0,
            data: data.clone(),
        }],
        new_length: None,
    };
    assert!(
        s.slot_testv_and_readv_and_writev(si, slot_secrets(we), writes(&[(0, w)]), vec![])
            .await
            .unwrap()
            .0
    );
    let leaks = |bytes: &[u8]| bytes.windows(4).any(|w| w == [we; 4]);
    for offset in 0..400u64 {
        for len in [1u64, 32, 400] {
            let e = s.read_bucket(si, 0, offset, len).await.unwrap_err();
            assert_eq!(
                e.kind(),
                ErrorKind::NotFound,
                "read_bucket served a mutable share"
            );
            let r = s.slot_readv(si, vec![], vec![(offset, len)]).await.unwrap();
            assert!(
                !leaks(&r[&0][0]),
                "slot_readv({offset}, {len}) leaked the enabler"
            );
        }
    }
    let whole = s.slot_readv(si, vec![0], vec![(0, 1 << 20)]).await.unwrap();
    assert_eq!(whole[&0][0], data, "a slot read is exactly the share data");
    let (_, r) = s
        .slot_testv_and_readv_and_writev(si, slot_secrets(we), BTreeMap::new(), vec![(0, 1 << 20)])
        .await
        .unwrap();
    assert!(!leaks(&r[&0][0]));
    assert!(s.list_buckets(si).await.unwrap().is_empty());
}

/// Creators racing for a new slot: one wins, and the others can neither
/// replace its enabler nor write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_creators_cannot_overwrite_each_other() {
    let s = Arc::new(server(ServerConfig::default(), None));
    let si = StorageIndex([7; 16]);
    let mut tasks = tokio::task::JoinSet::new();
    for who in 1..=8u8 {
        let s = s.clone();
        tasks.spawn(async move {
            let w = SlotWrite {
                tests: vec![TestVector::absent()],
                writes: vec![WriteVector {
                    offset: 0,
                    data: Bytes::from(vec![who; 10]),
                }],
                new_length: None,
            };
            let r = s
                .slot_testv_and_readv_and_writev(si, slot_secrets(who), writes(&[(0, w)]), vec![])
                .await;
            (who, matches!(r, Ok((true, _))))
        });
    }
    let mut winners = Vec::new();
    while let Some(r) = tasks.join_next().await {
        let (who, won) = r.unwrap();
        if won {
            winners.push(who);
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    let got = s.slot_readv(si, vec![0], vec![(0, 10)]).await.unwrap();
    assert_eq!(got[&0][0], vec![winners[0]; 10]);
    // An existing share fails "absent" even with the right enabler.
    let w = SlotWrite {
        tests: vec![TestVector::absent()],
        writes: vec![WriteVector {
            offset: 0,
            data: Bytes::from_static(b"x"),
        }],
        new_length: None,
    };
    let (ok, _) = s
        .slot_testv_and_readv_and_writev(si, slot_secrets(winners[0]), writes(&[(0, w)]), vec![])
        .await
        .unwrap();
    assert!(!ok);
}

/// A backend that fails writes to one share number, to test what the
/// server does around it.
struct FailsShare {
    inner: MemoryBackend,
    shnum: u8,
}

#[async_trait::async_trait]
impl tahoe_core::kinds::storage::StorageBackend for FailsShare {
    fn name(&self) -> &str {
        "fails-share"
    }
    async fn create(
        &self,
        si: &StorageIndex,
        shnum: u8,
        size: u64,
    ) -> tahoe_core::Result<Box<dyn tahoe_core::kinds::storage::PendingShare>> {
        self.inner.create(si, shnum, size).await
    }
    async fn read(
        &self,
        si: &StorageIndex,
        shnum: u8,
        kind: tahoe_core::kinds::storage::ShareKind,
        offset: u64,
        len: u64,
    ) -> tahoe_core::Result<Bytes> {
        self.inner.read(si, shnum, kind, offset, len).await
    }
    async fn list(
        &self,
        si: &StorageIndex,
    ) -> tahoe_core::Result<Vec<tahoe_core::kinds::storage::ShareInfo>> {
        self.inner.list(si).await
    }
    async fn delete(&self, si: &StorageIndex, shnum: u8) -> tahoe_core::Result<()> {
        self.inner.delete(si, shnum).await
    }
    async fn remaining_capacity(&self) -> tahoe_core::Result<Option<u64>> {
        // Like a real disk's free-space query, this lets others run between
        // the answer and its use.
        let free = self.inner.remaining_capacity().await;
        tokio::task::yield_now().await;
        free
    }
    async fn test_and_write(
        &self,
        si: &StorageIndex,
        shnum: u8,
        tests: &[TestVector],
        writes: &[WriteVector],
        new_length: Option<u64>,
    ) -> tahoe_core::Result<bool> {
        if shnum == self.shnum && !writes.is_empty() {
            return Err(tahoe_core::Error::internal("disk on fire"));
        }
        self.inner
            .test_and_write(si, shnum, tests, writes, new_length)
            .await
    }
    async fn add_lease(
        &self,
        si: &StorageIndex,
        l: &tahoe_core::kinds::storage::Lease,
    ) -> tahoe_core::Result<()> {
        self.inner.add_lease(si, l).await
    }
    async fn leases(
        &self,
        si: &StorageIndex,
    ) -> tahoe_core::Result<Vec<tahoe_core::kinds::storage::Lease>> {
        self.inner.leases(si).await
    }
}

/// One slot call changes all its shares or none: a write that fails on a
/// later share undoes the earlier ones; a call over a limit writes nothing.
#[tokio::test]
async fn slot_calls_apply_to_all_shares_or_none() {
    let backend = Arc::new(FailsShare {
        inner: MemoryBackend::new(None),
        shnum: 2,
    });
    let s = StorageServer::new(backend, ServerConfig::default());
    let si = StorageIndex([8; 16]);
    let put = |data: &'static [u8]| SlotWrite {
        tests: vec![],
        writes: vec![WriteVector {
            offset: 0,
            data: Bytes::from_static(data),
        }],
        new_length: None,
    };
    assert!(
        s.slot_testv_and_readv_and_writev(
            si,
            slot_secrets(1),
            writes(&[(0, put(b"old0")), (1, put(b"old1"))]),
            vec![]
        )
        .await
        .unwrap()
        .0
    );
    // Shares 0 and 1 would change, then share 2 (new) fails.
    let e = s
        .slot_testv_and_readv_and_writev(
            si,
            slot_secrets(1),
            writes(&[
                (0, put(b"new0-longer")),
                (1, put(b"new1")),
                (2, put(b"new2")),
            ]),
            vec![],
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("disk on fire"), "{e}");
    let got = s.slot_readv(si, vec![], vec![(0, 100)]).await.unwrap();
    assert_eq!(got.len(), 2, "the failed new share must not exist");
    assert_eq!(
        got[&0][0],
        Bytes::from_static(b"old0"),
        "share 0 rolled back"
    );
    assert_eq!(
        got[&1][0],
        Bytes::from_static(b"old1"),
        "share 1 rolled back"
    );
    // A failing test on one share stops the writes to every share.
    let mut guarded = put(b"XXXX");
    guarded.tests = vec![TestVector::equals(0, Bytes::from_static(b"nope"))];
    let (ok, _) = s
        .slot_testv_and_readv_and_writev(
            si,
            slot_secrets(1),
            writes(&[(0, put(b"YYYY")), (1, guarded)]),
            vec![],
        )
        .await
        .unwrap();
    assert!(!ok);
    let got = s.slot_readv(si, vec![], vec![(0, 100)]).await.unwrap();
    assert_eq!(got[&0][0], Bytes::from_static(b"old0"));
}

/// Mutable growth counts against capacity and reserved space, and one call
/// has a total byte budget in and out.
#[tokio::test]
async fn slot_calls_have_space_and_byte_budgets() {
    use tahoe_core::protocol::MAX_CALL_DATA;
    let s = server(
        ServerConfig {
            reserved_space: 500,
            ..Default::default()
        },
        Some(1000),
    );
    let si = StorageIndex([9; 16]);
    let big = SlotWrite {
        tests: vec![],
        writes: vec![WriteVector {
            offset: 0,
            data: Bytes::from(vec![1u8; 600]),
        }],
        new_length: None,
    };
    let e = s
        .slot_testv_and_readv_and_writev(si, slot_secrets(1), writes(&[(0, big)]), vec![])
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NoSpace, "{e}");
    assert!(
        s.slot_readv(si, vec![], vec![(0, 10)])
            .await
            .unwrap()
            .is_empty()
    );
    // Several shares of 3 MiB: each under the per-range limit, together over.
    let s = server(ServerConfig::default(), None);
    let chunk = Bytes::from(vec![2u8; 3 << 20]);
    let w = |_: u8| SlotWrite {
        tests: vec![],
        writes: vec![WriteVector {
            offset: 0,
            data: chunk.clone(),
        }],
        new_length: None,
    };
    let e = s
        .slot_testv_and_readv_and_writev(
            si,
            slot_secrets(1),
            writes(&[(0, w(0)), (1, w(1)), (2, w(2))]),
            vec![],
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    for shnum in 0..3u8 {
        assert!(
            s.slot_testv_and_readv_and_writev(
                si,
                slot_secrets(1),
                writes(&[(shnum, w(shnum))]),
                vec![]
            )
            .await
            .unwrap()
            .0
        );
    }
    // Reading all three back in one call would return 9 MiB.
    let e = s
        .slot_readv(si, vec![], vec![(0, MAX_CALL_DATA)])
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert_eq!(
        s.slot_readv(si, vec![1], vec![(0, MAX_CALL_DATA)])
            .await
            .unwrap()[&1][0]
            .len(),
        3 << 20
    );
}

/// A write a terabyte out that `new_length` then cuts back to nothing is still
/// refused: the backend would have to allocate it first, and a failed
/// allocation aborts the node.
#[tokio::test]
async fn a_far_write_cut_back_by_new_length_is_refused() {
    let s = server(ServerConfig::default(), None);
    let si = StorageIndex([10; 16]);
    let mut far = write(1 << 40, b"x");
    far.new_length = Some(0);
    let e = s
        .slot_testv_and_readv_and_writev(si, slot_secrets(1), writes(&[(0, far)]), vec![])
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    // The slot was not created and the server still answers.
    assert!(
        s.slot_readv(si, vec![], vec![(0, 10)])
            .await
            .unwrap()
            .is_empty()
    );
}

/// Allocations arriving together cannot promise more than the space left
/// above `reserved_space`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserved_space_holds_under_concurrent_allocations() {
    let backend = Arc::new(FailsShare {
        inner: MemoryBackend::new(Some(12_000)),
        shnum: 255,
    });
    let s = Arc::new(StorageServer::new(
        backend,
        ServerConfig {
            reserved_space: 2_000,
            ..Default::default()
        },
    ));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50u8 {
        let s = s.clone();
        tasks.spawn(async move {
            let mut r = req(vec![0], 1_000);
            r.storage_index = StorageIndex([i; 16]);
            s.allocate_buckets(r).await.unwrap().allocated.len()
        });
    }
    let mut allocated = 0;
    while let Some(r) = tasks.join_next().await {
        allocated += r.unwrap();
    }
    assert_eq!(
        allocated, 10,
        "10 000 bytes above the reserve hold 10 shares of 1 000"
    );
}

/// A bucket nobody writes to expires; a retry of the same upload takes its
/// bucket over; a closed connection's buckets are aborted; a connection
/// has a budget of pending buckets.
#[tokio::test]
async fn pending_buckets_expire_are_taken_over_and_have_budgets() {
    let si = StorageIndex([4; 16]);
    let s = server(
        ServerConfig {
            bucket_timeout: std::time::Duration::from_millis(200),
            max_pending_buckets: 2,
            ..Default::default()
        },
        None,
    );
    s.allocate_buckets(req(vec![0], 4)).await.unwrap();
    s.write_bucket(si, 0, [3; 32], 0, Bytes::from_static(b"ab"))
        .await
        .unwrap();
    // The same upload again: the bucket is its own, started afresh.
    assert_eq!(
        s.allocate_buckets(req(vec![0], 4)).await.unwrap().allocated,
        vec![0]
    );
    // Another uploader is not given it.
    let mut other = req(vec![0], 4);
    other.upload_secret = [9; 32];
    assert!(
        s.allocate_buckets(other.clone())
            .await
            .unwrap()
            .allocated
            .is_empty()
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(s.expire_idle_uploads(), 1);
    let e = s
        .write_bucket(si, 0, [3; 32], 2, Bytes::from_static(b"cd"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert_eq!(s.allocate_buckets(other).await.unwrap().allocated, vec![0]);
    // Sessions: a peer's budget of two pending buckets, over all of its
    // connections; a connection's buckets are aborted when it closes.
    let mallory = Caller("10.0.0.66".into());
    let conn = s.session(&mallory);
    let mut r = req(vec![1, 2, 3], 4);
    r.storage_index = StorageIndex([5; 16]);
    assert_eq!(
        conn.allocate_buckets(r).await.unwrap().allocated,
        vec![1, 2]
    );
    let mut r = req(vec![1], 4);
    r.storage_index = StorageIndex([6; 16]);
    assert!(
        s.session(&mallory)
            .allocate_buckets(r.clone())
            .await
            .unwrap()
            .allocated
            .is_empty(),
        "a second connection of the same peer has no budget of its own"
    );
    let honest = s.session(&Caller("10.0.0.1".into()));
    assert_eq!(honest.allocate_buckets(r).await.unwrap().allocated, vec![1]);
    assert_eq!(s.pending_uploads(), 4);
    drop(conn);
    assert_eq!(
        s.pending_uploads(),
        2,
        "a closed connection's buckets are aborted"
    );
    // A budget of pending bytes too.
    let s = server(
        ServerConfig {
            max_pending_bytes: 10,
            ..Default::default()
        },
        None,
    );
    let conn = s.session(&mallory);
    assert_eq!(
        conn.allocate_buckets(req(vec![0, 1], 6))
            .await
            .unwrap()
            .allocated,
        vec![0]
    );
}

#[tokio::test]
async fn one_peer_never_holds_more_than_half_the_free_space_pending() {
    // 100 bytes free: a peer's pending shares stay within half of what is
    // free for it, whatever max_pending_bytes says, so another peer
    // always finds room.
    let s = server(ServerConfig::default(), Some(100));
    let hog = s.session(&Caller("10.0.0.66".into()));
    let mut r = req((0..10).collect(), 20);
    r.storage_index = StorageIndex([7; 16]);
    assert_eq!(
        hog.allocate_buckets(r.clone()).await.unwrap().allocated,
        vec![0, 1],
        "40 of the 100 bytes; a third share would make 60"
    );
    let other = s.session(&Caller("10.0.0.1".into()));
    r.upload_secret = [8; 32];
    r.storage_index = StorageIndex([8; 16]);
    assert_eq!(
        other.allocate_buckets(r).await.unwrap().allocated,
        vec![0],
        "60 bytes free: 20 of them, not 40"
    );
}

#[tokio::test]
async fn corruption_advisories_are_kept_once_per_share() {
    let s = server(ServerConfig::default(), None);
    for _ in 0..5 {
        s.advise_corrupt_share(StorageIndex([1; 16]), 3, "bad".repeat(1000))
            .await
            .unwrap();
    }
    let r = s.corruption_reports();
    assert_eq!(r.len(), 1);
    assert!(r[0].2.len() <= 500);
}
