//! The storage-backend conformance suite.
//!
//! [`run`] checks the contract of [`StorageBackend`] on fresh backends made
//! by the caller. Backends that persist (files, object stores) also run
//! [`run_persistent`], which re-opens the same store to check what survives
//! a restart and a crash.

use crate::error::{ErrorKind, Result};
use crate::kinds::storage::{
    Lease, ShareKind, StorageBackend, StorageIndex, TestVector, WriteVector,
};

const IMM: ShareKind = ShareKind::Immutable;
const MUT: ShareKind = ShareKind::Mutable;
use crate::testing::{Clauses, pseudo_random_bytes};
use bytes::Bytes;
use futures::future::BoxFuture;
use std::future::Future;
use std::sync::Arc;

fn si(n: u8) -> StorageIndex {
    let mut b = [0u8; 16];
    b[0] = n;
    b[15] = 0xa5;
    StorageIndex(b)
}

async fn put(backend: &dyn StorageBackend, s: &StorageIndex, shnum: u8, data: &[u8]) {
    let mut w = backend
        .create(s, shnum, data.len() as u64)
        .await
        .expect("create");
    w.write(0, Bytes::copy_from_slice(data))
        .await
        .expect("write");
    w.seal().await.expect("seal");
}

/// The check of one clause of the storage contract, on a new, empty
/// backend.
pub type Check = fn(Arc<dyn StorageBackend>) -> BoxFuture<'static, ()>;

/// A clause of the storage contract: its name, and its check.
pub type Clause = (&'static str, Check);

/// The storage contract, clause by clause; [`run`] checks each on a
/// backend of its own.
pub const CLAUSES: &[Clause] = &[
    (
        "sealed shares read back, listed in order with their sizes",
        |b| Box::pin(async move { immutable_round_trip(b.as_ref()).await }),
    ),
    (
        "reads give the range asked, short at the end, empty past it",
        |b| Box::pin(async move { reads_and_ranges(b.as_ref()).await }),
    ),
    (
        "a pending, aborted or dropped share is neither listed nor readable",
        |b| Box::pin(async move { pending_is_invisible(b.as_ref()).await }),
    ),
    ("a sealed share is never written again", |b| {
        Box::pin(async move { sealed_is_immutable(b.as_ref()).await })
    }),
    ("writes stay within the size given at creation", |b| {
        Box::pin(async move { write_bounds(b.as_ref()).await })
    }),
    (
        "delete removes one share, which may be uploaded anew",
        |b| Box::pin(async move { delete_and_list(b.as_ref()).await }),
    ),
    ("concurrent writers do not mix; one racing seal wins", |b| {
        Box::pin(concurrent_writers(b))
    }),
    (
        "test-and-write tests, writes, extends and truncates as told",
        |b| Box::pin(async move { mutable_test_and_write(b.as_ref()).await }),
    ),
    ("test-and-write is atomic", |b| {
        Box::pin(concurrent_test_and_write(b))
    }),
    ("leases are added and renewed to the later expiry", |b| {
        Box::pin(async move { leases(b.as_ref()).await })
    }),
    (
        "the crawler's listing walks every storage index once, in pages; deleting takes only what was asked, and leases with the last share",
        |b| Box::pin(async move { crawler_listing(b.as_ref()).await }),
    ),
    (
        "pending and mutable shares count against the remaining capacity",
        |b| Box::pin(async move { capacity(b.as_ref()).await }),
    ),
];

/// Run the whole contract: every clause of [`CLAUSES`], each on a backend
/// of its own, then a panic naming those that failed. `make` must return
/// a new, empty backend each call.
pub async fn run<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<Arc<dyn StorageBackend>>>,
{
    let mut clauses = Clauses::new("storage");
    for (name, check) in CLAUSES {
        clauses
            .check_async(name, async {
                let backend = make().await.expect("backend factory failed");
                check(backend).await;
            })
            .await;
    }
    clauses.finish();
}

/// The persistence clauses: [`run_persistent`] checks them in turn on the
/// same store.
pub const PERSISTENT_CLAUSES: &[&str] = &[
    "sealed and mutable shares and leases survive a restart",
    "an upload cut short by a crash leaves nothing listed, and can be made again",
];

/// Persistence checks. `open` opens the *same* store each call (a restart);
/// sealed shares, mutable shares and leases must survive, and a writer that
/// vanished without sealing (a crash: the pending share is leaked, never
/// dropped) must leave nothing listed. Each of [`PERSISTENT_CLAUSES`] is
/// checked on its own storage index; then a panic names those that failed.
pub async fn run_persistent<F, Fut>(open: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<Arc<dyn StorageBackend>>>,
{
    let mut clauses = Clauses::new("storage persistence");
    clauses
        .check_async(PERSISTENT_CLAUSES[0], survives_a_restart(&open))
        .await;
    clauses
        .check_async(PERSISTENT_CLAUSES[1], survives_a_crash(&open))
        .await;
    clauses.finish();
}

async fn survives_a_restart<F, Fut>(open: &F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<Arc<dyn StorageBackend>>>,
{
    let s = si(200);
    let data = pseudo_random_bytes(77, 10_000);
    {
        let b = open().await.expect("open");
        put(b.as_ref(), &s, 1, &data).await;
        let ok = b
            .test_and_write(&s, 2, &[], &[wv(0, b"mutable")], None)
            .await
            .expect("tw");
        assert!(ok);
        b.add_lease(&s, &lease(1, 100)).await.expect("lease");
    }
    let b = open().await.expect("reopen");
    let listed = b.list(&s).await.expect("list");
    let nums: Vec<u8> = listed.iter().map(|i| i.shnum).collect();
    assert_eq!(
        nums,
        vec![1, 2],
        "after restart: sealed and mutable shares listed"
    );
    assert_eq!(
        b.read(&s, 1, IMM, 0, 1 << 20).await.expect("read"),
        &data[..],
        "sealed share changed across restart"
    );
    assert_eq!(
        &b.read(&s, 2, MUT, 0, 100).await.expect("read")[..],
        b"mutable"
    );
    assert_eq!(b.leases(&s).await.expect("leases"), vec![lease(1, 100)]);
}

async fn survives_a_crash<F, Fut>(open: &F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<Arc<dyn StorageBackend>>>,
{
    let s = si(201);
    {
        let b = open().await.expect("open");
        put(b.as_ref(), &s, 1, b"sealed").await;
        // A crash mid-upload: the pending share is never sealed nor dropped.
        let mut w = b.create(&s, 3, 100).await.expect("create");
        w.write(0, Bytes::copy_from_slice(&[1u8; 100]))
            .await
            .expect("write");
        std::mem::forget(w);
    }
    let b = open().await.expect("reopen");
    let nums: Vec<u8> = b
        .list(&s)
        .await
        .expect("list")
        .iter()
        .map(|i| i.shnum)
        .collect();
    assert_eq!(
        nums,
        vec![1],
        "after restart: the sealed share listed, the crashed upload not"
    );
    // The crashed share can be uploaded again.
    put(b.as_ref(), &s, 3, &[2u8; 50]).await;
    assert_eq!(b.list(&s).await.expect("list").len(), 2);
}

async fn immutable_round_trip(b: &dyn StorageBackend) {
    let s = si(1);
    for (shnum, len) in [(0u8, 0usize), (1, 1), (7, 4096), (255, 300_001)] {
        let data = pseudo_random_bytes(u64::from(shnum), len);
        let mut w = b.create(&s, shnum, len as u64).await.expect("create");
        // Out of order, in uneven pieces.
        let mid = len / 3;
        w.write(mid as u64, Bytes::copy_from_slice(&data[mid..]))
            .await
            .expect("write tail");
        w.write(0, Bytes::copy_from_slice(&data[..mid]))
            .await
            .expect("write head");
        w.seal().await.expect("seal");
        let back = b
            .read(&s, shnum, IMM, 0, len as u64 + 10)
            .await
            .expect("read");
        assert!(
            back == data,
            "share {shnum} ({len} bytes) did not read back"
        );
    }
    let listed = b.list(&s).await.expect("list");
    let summary: Vec<(u8, u64, ShareKind)> =
        listed.iter().map(|i| (i.shnum, i.size, i.kind)).collect();
    assert_eq!(
        summary,
        vec![
            (0, 0, ShareKind::Immutable),
            (1, 1, ShareKind::Immutable),
            (7, 4096, ShareKind::Immutable),
            (255, 300_001, ShareKind::Immutable)
        ],
        "list must give every sealed share, sorted, with its size"
    );
    assert!(b.list(&si(99)).await.expect("list empty").is_empty());
    // Unwritten ranges read as zeros.
    let mut w = b.create(&s, 9, 10).await.expect("create");
    w.write(2, Bytes::copy_from_slice(b"ab"))
        .await
        .expect("write");
    w.seal().await.expect("seal");
    assert_eq!(
        &b.read(&s, 9, IMM, 0, 10).await.expect("read")[..],
        b"\0\0ab\0\0\0\0\0\0"
    );
}

async fn reads_and_ranges(b: &dyn StorageBackend) {
    let s = si(2);
    let data = pseudo_random_bytes(5, 1000);
    put(b, &s, 4, &data).await;
    let r = |o: u64, l: u64| b.read(&s, 4, IMM, o, l);
    assert_eq!(r(0, 10).await.expect("read"), &data[..10]);
    assert_eq!(r(990, 10).await.expect("read"), &data[990..]);
    assert_eq!(
        r(995, 10).await.expect("read past end"),
        &data[995..],
        "short read at the end"
    );
    assert!(r(1000, 10).await.expect("read at end").is_empty());
    assert!(r(5000, 10).await.expect("read beyond end").is_empty());
    assert!(
        r(u64::MAX, u64::MAX)
            .await
            .expect("absurd range")
            .is_empty()
    );
    assert_eq!(r(3, u64::MAX).await.expect("huge len"), &data[3..]);
    assert!(r(0, 0).await.expect("empty read").is_empty());
    let missing = b.read(&s, 5, IMM, 0, 10).await.expect_err("missing share");
    assert_eq!(missing.kind(), ErrorKind::NotFound);
    let missing = b
        .read(&si(3), 4, IMM, 0, 10)
        .await
        .expect_err("missing index");
    assert_eq!(missing.kind(), ErrorKind::NotFound);
}

async fn pending_is_invisible(b: &dyn StorageBackend) {
    let s = si(4);
    let mut w = b.create(&s, 0, 100).await.expect("create");
    w.write(0, Bytes::copy_from_slice(&[7u8; 100]))
        .await
        .expect("write");
    assert!(
        b.list(&s).await.expect("list").is_empty(),
        "a pending share must not be listed"
    );
    assert_eq!(
        b.read(&s, 0, IMM, 0, 100)
            .await
            .expect_err("pending read")
            .kind(),
        ErrorKind::NotFound,
        "a pending share must not be readable"
    );
    w.abort().await.expect("abort");
    assert!(
        b.list(&s).await.expect("list").is_empty(),
        "an aborted share must not be listed"
    );
    // Drop without seal also leaves nothing, and the share can be retried.
    {
        let mut w = b.create(&s, 0, 100).await.expect("create");
        w.write(0, Bytes::copy_from_slice(&[8u8; 100]))
            .await
            .expect("write");
    }
    assert!(
        b.list(&s).await.expect("list").is_empty(),
        "a dropped share must not be listed"
    );
    put(b, &s, 0, &[9u8; 100]).await;
    assert_eq!(
        b.read(&s, 0, IMM, 0, 100).await.expect("read"),
        vec![9u8; 100]
    );
}

async fn sealed_is_immutable(b: &dyn StorageBackend) {
    let s = si(5);
    put(b, &s, 1, b"first").await;
    let e = b
        .create(&s, 1, 6)
        .await
        .err()
        .expect("create over a sealed share");
    assert_eq!(e.kind(), ErrorKind::AlreadyExists);
    // Two pending writers for one share: the first seal wins.
    let mut w1 = b.create(&s, 2, 3).await.expect("create 1");
    let mut w2 = b.create(&s, 2, 3).await.expect("create 2");
    w1.write(0, Bytes::copy_from_slice(b"one"))
        .await
        .expect("w1");
    w2.write(0, Bytes::copy_from_slice(b"two"))
        .await
        .expect("w2");
    w1.seal().await.expect("first seal");
    let e = w2.seal().await.expect_err("second seal");
    assert_eq!(e.kind(), ErrorKind::AlreadyExists);
    assert_eq!(
        &b.read(&s, 2, IMM, 0, 3).await.expect("read")[..],
        b"one",
        "the loser changed the share"
    );
    // Mutable operations cannot touch an immutable share.
    let e = b
        .test_and_write(&s, 1, &[], &[wv(0, b"x")], None)
        .await
        .expect_err("test_and_write on an immutable share");
    assert_eq!(e.kind(), ErrorKind::AlreadyExists);
    assert_eq!(
        &b.read(&s, 1, IMM, 0, 10).await.expect("read")[..],
        b"first"
    );
}

async fn write_bounds(b: &dyn StorageBackend) {
    let s = si(6);
    let mut w = b.create(&s, 0, 10).await.expect("create");
    assert_eq!(
        w.write(8, Bytes::copy_from_slice(b"abc"))
            .await
            .expect_err("past size")
            .kind(),
        ErrorKind::InvalidInput
    );
    assert!(
        w.write(u64::MAX, Bytes::copy_from_slice(b"a"))
            .await
            .is_err(),
        "offset overflow must be refused"
    );
    w.write(7, Bytes::copy_from_slice(b"abc"))
        .await
        .expect("write up to size");
    w.seal().await.expect("seal");
    let listed = b.list(&s).await.expect("list");
    assert_eq!(
        listed[0].size, 10,
        "share size is the size given at creation"
    );
}

async fn delete_and_list(b: &dyn StorageBackend) {
    let s = si(7);
    for n in [3u8, 1, 2] {
        put(b, &s, n, &[n; 10]).await;
    }
    b.delete(&s, 2).await.expect("delete");
    let nums: Vec<u8> = b
        .list(&s)
        .await
        .expect("list")
        .iter()
        .map(|i| i.shnum)
        .collect();
    assert_eq!(nums, vec![1, 3]);
    assert_eq!(
        b.delete(&s, 2).await.expect_err("delete twice").kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        b.read(&s, 2, IMM, 0, 1)
            .await
            .expect_err("read deleted")
            .kind(),
        ErrorKind::NotFound
    );
    // A deleted share may be uploaded anew.
    put(b, &s, 2, b"again").await;
    assert_eq!(
        &b.read(&s, 2, IMM, 0, 10).await.expect("read")[..],
        b"again"
    );
    // Other storage indexes are unaffected.
    put(b, &si(8), 2, b"other").await;
    b.delete(&s, 2).await.expect("delete");
    assert_eq!(
        &b.read(&si(8), 2, IMM, 0, 10).await.expect("read")[..],
        b"other"
    );
}

async fn concurrent_writers(b: Arc<dyn StorageBackend>) {
    // Many shares of many files written at once, interleaved.
    let mut tasks = tokio::task::JoinSet::new();
    for file in 0..8u8 {
        for shnum in 0..10u8 {
            let b = b.clone();
            tasks.spawn(async move {
                let data = pseudo_random_bytes(u64::from(file) * 100 + u64::from(shnum), 20_000);
                let s = si(50 + file);
                let mut w = b
                    .create(&s, shnum, data.len() as u64)
                    .await
                    .expect("create");
                for (i, chunk) in data.chunks(4096).enumerate() {
                    w.write((i * 4096) as u64, Bytes::copy_from_slice(chunk))
                        .await
                        .expect("write");
                    tokio::task::yield_now().await;
                }
                w.seal().await.expect("seal");
            });
        }
    }
    while let Some(r) = tasks.join_next().await {
        r.expect("writer task panicked");
    }
    for file in 0..8u8 {
        let s = si(50 + file);
        assert_eq!(b.list(&s).await.expect("list").len(), 10);
        for shnum in 0..10u8 {
            let data = pseudo_random_bytes(u64::from(file) * 100 + u64::from(shnum), 20_000);
            assert!(
                b.read(&s, shnum, IMM, 0, 1 << 20).await.expect("read") == data,
                "concurrent writes mixed up share {shnum} of file {file}"
            );
        }
    }
    // Racing writers on one share: exactly one seal wins and its bytes stay whole.
    let s = si(70);
    let mut racers = tokio::task::JoinSet::new();
    for who in 0..6u8 {
        let b = b.clone();
        racers.spawn(async move {
            let mut w = b.create(&s, 0, 5000).await?;
            w.write(0, Bytes::copy_from_slice(&[who; 5000])).await?;
            tokio::task::yield_now().await;
            w.seal().await.map(|_| who)
        });
    }
    let mut winners = Vec::new();
    while let Some(r) = racers.join_next().await {
        match r.expect("racer panicked") {
            Ok(who) => winners.push(who),
            Err(e) => assert_eq!(e.kind(), ErrorKind::AlreadyExists, "a losing racer: {e}"),
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "exactly one racing seal must win, got {winners:?}"
    );
    let back = b.read(&s, 0, IMM, 0, 5000).await.expect("read");
    assert_eq!(
        back,
        vec![winners[0]; 5000],
        "the winner's bytes must be intact"
    );
}

fn wv(offset: u64, data: &[u8]) -> WriteVector {
    WriteVector {
        offset,
        data: Bytes::copy_from_slice(data),
    }
}

fn tv(offset: u64, expected: &[u8]) -> TestVector {
    TestVector::equals(offset, Bytes::copy_from_slice(expected))
}

async fn mutable_test_and_write(b: &dyn StorageBackend) {
    let s = si(9);
    // Absent share: tests compare against empty contents.
    assert!(
        !b.test_and_write(&s, 0, &[tv(0, b"x")], &[wv(0, b"no")], None)
            .await
            .expect("tw")
    );
    assert!(
        b.list(&s).await.expect("list").is_empty(),
        "a failed test must not create the share"
    );
    assert!(
        b.test_and_write(&s, 0, &[tv(0, b"")], &[], None)
            .await
            .expect("tw no writes")
    );
    assert!(
        b.list(&s).await.expect("list").is_empty(),
        "no writes must not create the share"
    );
    assert!(
        b.test_and_write(
            &s,
            0,
            &[TestVector::absent()],
            &[wv(0, b"hello world")],
            None
        )
        .await
        .expect("tw")
    );
    let info = b.list(&s).await.expect("list");
    assert_eq!(
        (info[0].shnum, info[0].size, info[0].kind),
        (0, 11, ShareKind::Mutable)
    );
    // "Absent" must fail once the share has data: two creators racing for
    // a new share cannot both win.
    assert!(
        !b.test_and_write(&s, 0, &[TestVector::absent()], &[wv(0, b"X")], None)
            .await
            .expect("tw absent on existing")
    );
    // Reads are by kind: a mutable share is not an immutable one.
    assert_eq!(
        b.read(&s, 0, IMM, 0, 100)
            .await
            .expect_err("mutable share read as immutable")
            .kind(),
        ErrorKind::NotFound
    );
    // A failing test changes nothing.
    assert!(
        !b.test_and_write(&s, 0, &[tv(0, b"jello")], &[wv(0, b"XXXXX")], None)
            .await
            .expect("tw")
    );
    assert_eq!(
        &b.read(&s, 0, MUT, 0, 100).await.expect("read")[..],
        b"hello world"
    );
    // Several tests must all hold.
    assert!(
        !b.test_and_write(
            &s,
            0,
            &[tv(0, b"hello"), tv(6, b"earth")],
            &[wv(0, b"X")],
            None
        )
        .await
        .expect("tw")
    );
    // Writes apply in order, extend with zeros, and new_length truncates.
    assert!(
        b.test_and_write(
            &s,
            0,
            &[tv(0, b"hello"), tv(6, b"world")],
            &[wv(0, b"J"), wv(0, b"y"), wv(13, b"!")],
            None
        )
        .await
        .expect("tw")
    );
    assert_eq!(
        &b.read(&s, 0, MUT, 0, 100).await.expect("read")[..],
        b"yello world\0\0!"
    );
    assert!(
        b.test_and_write(&s, 0, &[], &[], Some(5))
            .await
            .expect("truncate")
    );
    assert_eq!(
        &b.read(&s, 0, MUT, 0, 100).await.expect("read")[..],
        b"yello"
    );
    assert!(
        b.test_and_write(&s, 0, &[], &[], Some(7))
            .await
            .expect("extend")
    );
    assert_eq!(
        &b.read(&s, 0, MUT, 0, 100).await.expect("read")[..],
        b"yello\0\0"
    );
    // A test range past the end compares against what is there.
    assert!(
        !b.test_and_write(&s, 0, &[tv(5, b"\0\0\0")], &[], None)
            .await
            .expect("tw")
    );
    assert!(
        b.test_and_write(&s, 0, &[tv(5, b"\0\0")], &[], None)
            .await
            .expect("tw")
    );
    // Absurd sizes are refused, not allocated.
    assert!(
        b.test_and_write(&s, 0, &[], &[wv(u64::MAX - 1, b"ab")], None)
            .await
            .is_err()
    );
    assert!(
        b.test_and_write(&s, 0, &[], &[], Some(u64::MAX))
            .await
            .is_err()
    );
    assert_eq!(
        &b.read(&s, 0, MUT, 0, 100).await.expect("read")[..],
        b"yello\0\0"
    );
    // Mutable shares cannot be created as immutable ones.
    assert_eq!(
        b.create(&s, 0, 10)
            .await
            .err()
            .expect("create over mutable")
            .kind(),
        ErrorKind::AlreadyExists
    );
    b.delete(&s, 0).await.expect("delete mutable");
    assert!(b.list(&s).await.expect("list").is_empty());
}

async fn concurrent_test_and_write(b: Arc<dyn StorageBackend>) {
    // Every racer tests for version 0 and writes its own version: exactly
    // one may succeed, then each increments from what it reads, so the final
    // counter equals the number of successful increments.
    let s = si(10);
    assert!(
        b.test_and_write(&s, 0, &[], &[wv(0, &0u64.to_be_bytes())], None)
            .await
            .expect("init")
    );
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let b = b.clone();
        tasks.spawn(async move {
            let mut done = 0u64;
            while done < 20 {
                let cur = b.read(&s, 0, MUT, 0, 8).await.expect("read");
                let v = u64::from_be_bytes(cur[..8].try_into().expect("8 bytes"));
                if b.test_and_write(
                    &s,
                    0,
                    &[tv(0, &cur)],
                    &[wv(0, &(v + 1).to_be_bytes())],
                    None,
                )
                .await
                .expect("tw")
                {
                    done += 1;
                }
                tokio::task::yield_now().await;
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.expect("task panicked");
    }
    let cur = b.read(&s, 0, MUT, 0, 8).await.expect("read");
    assert_eq!(
        u64::from_be_bytes(cur[..8].try_into().expect("8 bytes")),
        160,
        "test-and-write is not atomic: increments were lost"
    );
}

fn lease(n: u8, expires_at: u64) -> Lease {
    Lease {
        renew_secret: [n; 32],
        cancel_secret: [n.wrapping_add(100); 32],
        expires_at,
    }
}

async fn leases(b: &dyn StorageBackend) {
    let s = si(11);
    assert_eq!(
        b.add_lease(&s, &lease(1, 10))
            .await
            .expect_err("lease on nothing")
            .kind(),
        ErrorKind::NotFound
    );
    put(b, &s, 0, b"x").await;
    b.add_lease(&s, &lease(1, 10)).await.expect("add");
    b.add_lease(&s, &lease(2, 20)).await.expect("add");
    // Renewal keeps the later expiry and the position.
    b.add_lease(&s, &lease(1, 30)).await.expect("renew");
    b.add_lease(&s, &lease(2, 5)).await.expect("renew earlier");
    assert_eq!(
        b.leases(&s).await.expect("leases"),
        vec![lease(1, 30), lease(2, 20)]
    );
    assert!(b.leases(&si(12)).await.expect("no leases").is_empty());
}

/// Storage index number `n` of the listing clause: spread over the first
/// byte (so directory fan-outs differ) and the last.
fn spread_si(n: u8) -> StorageIndex {
    let mut b = [n.wrapping_mul(37); 16];
    b[15] = n;
    StorageIndex(b)
}

/// A walk page by page: every index seen, in order (`None`: the backend
/// cannot list).
async fn walk(b: &dyn StorageBackend, limit: usize) -> Option<Vec<StorageIndex>> {
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = b
            .storage_indexes(after.as_ref(), limit)
            .await
            .expect("storage_indexes")?;
        assert!(page.len() <= limit, "a page of {} for {limit}", page.len());
        seen.extend_from_slice(&page);
        if page.len() < limit {
            break;
        }
        after = page.last().copied();
    }
    Some(seen)
}

async fn crawler_listing(b: &dyn StorageBackend) {
    let Some(first) = b.storage_indexes(None, 10).await.expect("listing") else {
        return; // the backend declares it cannot list: nothing to walk
    };
    assert!(first.is_empty(), "an empty backend lists {first:?}");
    let mut all: Vec<StorageIndex> = Vec::new();
    for n in 0..23u8 {
        let s = spread_si(n);
        if n % 4 == 0 {
            let w = [wv(0, &[n; 40])];
            assert!(b.test_and_write(&s, 0, &[], &w, None).await.expect("write"));
        } else {
            for shnum in 0..(n % 3 + 1) {
                put(b, &s, shnum, &[n; 30]).await;
            }
        }
        all.push(s);
    }
    let mut sorted = all.clone();
    sorted.sort();
    for limit in [1, 5, 23, 100] {
        let seen = walk(b, limit).await.expect("lists");
        let mut once = seen.clone();
        once.sort();
        assert_eq!(once, sorted, "a walk in pages of {limit} saw {seen:?}");
    }

    // Indexes emptied or added during a walk do not make it skip or
    // repeat the others.
    let gone: Vec<StorageIndex> = [2u8, 6, 10, 14, 18].map(spread_si).to_vec();
    let kept: Vec<StorageIndex> = all.iter().filter(|s| !gone.contains(s)).copied().collect();
    let added: Vec<StorageIndex> = (100..110).map(spread_si).collect();
    let mut after = None;
    let mut seen = Vec::new();
    let mut page_no = 0;
    loop {
        let page = b
            .storage_indexes(after.as_ref(), 4)
            .await
            .expect("storage_indexes")
            .expect("lists");
        seen.extend_from_slice(&page);
        if page.len() < 4 {
            break;
        }
        after = page.last().copied();
        page_no += 1;
        if page_no == 2 {
            for s in &gone {
                for i in b.list(s).await.expect("list") {
                    b.delete(s, i.shnum).await.expect("delete");
                }
            }
            for s in &added {
                put(b, s, 0, b"new").await;
            }
        }
    }
    for s in &kept {
        let n = seen.iter().filter(|x| *x == s).count();
        assert_eq!(
            n, 1,
            "{s} held shares for the whole walk and was seen {n} times"
        );
    }
    assert_eq!(
        seen.len(),
        seen.iter().collect::<std::collections::HashSet<_>>().len(),
        "a walk saw an index twice: {seen:?}"
    );

    // Deleting one share leaves its siblings, its leases and every other
    // index alone; the last share takes the leases with it.
    let s = spread_si(5); // shares 0, 1, 2
    let other = spread_si(7); // shares 0, 1
    b.add_lease(&s, &lease(1, 10)).await.expect("lease");
    b.add_lease(&other, &lease(2, 10)).await.expect("lease");
    b.delete(&s, 1).await.expect("delete");
    let nums =
        |v: Vec<crate::kinds::storage::ShareInfo>| v.iter().map(|i| i.shnum).collect::<Vec<_>>();
    assert_eq!(nums(b.list(&s).await.expect("list")), vec![0, 2]);
    assert_eq!(b.leases(&s).await.expect("leases"), vec![lease(1, 10)]);
    for shnum in [0, 2] {
        b.delete(&s, shnum).await.expect("delete");
    }
    assert!(b.list(&s).await.expect("list").is_empty());
    assert!(
        b.leases(&s).await.expect("leases").is_empty(),
        "leases outlived the last share"
    );
    let listed = walk(b, 100).await.expect("lists");
    assert!(
        !listed.contains(&s),
        "an index without shares is still listed"
    );
    assert_eq!(nums(b.list(&other).await.expect("list")), vec![0, 1]);
    assert_eq!(b.leases(&other).await.expect("leases"), vec![lease(2, 10)]);
    put(b, &s, 0, b"again").await;
    assert!(
        b.leases(&s).await.expect("leases").is_empty(),
        "a new share inherited old leases"
    );
}

/// Space promised to a pending share, and grown by a mutable one, counts
/// as used (the `remaining_capacity` contract). Backends that cannot tell
/// (`None`) have nothing to check. Backends on a real disk see other
/// processes' writes too, so each step allows half its size of noise.
async fn capacity(b: &dyn StorageBackend) {
    const SIZE: u64 = 64 << 20;
    let Some(before) = b.remaining_capacity().await.expect("capacity") else {
        return;
    };
    assert!(before > 0, "a fresh backend reports no room at all");
    if before < 2 * SIZE {
        return; // too small a store to measure a pending share in
    }
    let free = || async { b.remaining_capacity().await.expect("capacity").unwrap_or(0) };
    let s = si(13);
    let pending = b.create(&s, 0, SIZE).await.expect("create");
    let during = free().await;
    assert!(
        during + SIZE / 2 <= before,
        "a pending share of {SIZE} bytes must count as used: {before} free before, {during} after"
    );
    pending.abort().await.expect("abort");
    let after = free().await;
    assert!(
        after + SIZE / 2 >= before,
        "an aborted share must give its space back: {before} before, {after} after"
    );
    let grown = vec![7u8; (SIZE / 4) as usize];
    assert!(
        b.test_and_write(&s, 1, &[TestVector::absent()], &[wv(0, &grown)], None)
            .await
            .expect("mutable write")
    );
    let with_mutable = free().await;
    assert!(
        with_mutable + SIZE / 8 <= after,
        "a mutable share of {} bytes must count as used: {after} before, {with_mutable} after",
        SIZE / 4
    );
    b.delete(&s, 1).await.expect("delete");
}
