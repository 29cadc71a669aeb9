//! fs against the storage contract, including restarts and crashes.

use bytes::Bytes;
use std::sync::Arc;
use tahoe_core::kinds::storage::{StorageBackend, StorageIndex};
use tahoe_core::testing::storage;
use tahoe_storage_fs::FsBackend;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance() {
    let dir = tempfile::tempdir().unwrap();
    let n = std::sync::atomic::AtomicU32::new(0);
    storage::run(|| {
        let root = dir.path().join(
            n.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
                .to_string(),
        );
        async move { Ok(Arc::new(FsBackend::open(root)?) as Arc<dyn StorageBackend>) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistence_and_crash_safety() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    storage::run_persistent(|| {
        let root = root.clone();
        async move { Ok(Arc::new(FsBackend::open(root)?) as Arc<dyn StorageBackend>) }
    })
    .await;
    // The crashed upload's temp file was cleaned when the store was reopened.
    let incoming: Vec<_> = std::fs::read_dir(root.join("incoming")).unwrap().collect();
    assert!(
        incoming.is_empty(),
        "stale uploads left in incoming/: {incoming:?}"
    );
}

#[tokio::test]
async fn layout_uses_base32_fanout() {
    let dir = tempfile::tempdir().unwrap();
    let b = FsBackend::open(dir.path()).unwrap();
    let si = StorageIndex([0xff; 16]);
    let mut w = b.create(&si, 3, 4).await.unwrap();
    w.write(0, Bytes::copy_from_slice(b"data")).await.unwrap();
    w.seal().await.unwrap();
    let name = si.to_base32();
    let path = dir
        .path()
        .join("shares")
        .join(&name[..2])
        .join(&name)
        .join("3");
    assert_eq!(std::fs::read(path).unwrap(), b"data");
}

#[tokio::test]
async fn strays_in_share_directories_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let b = FsBackend::open(dir.path()).unwrap();
    let si = StorageIndex([1; 16]);
    let mut w = b.create(&si, 0, 1).await.unwrap();
    w.write(0, Bytes::copy_from_slice(b"x")).await.unwrap();
    w.seal().await.unwrap();
    let name = si.to_base32();
    let sdir = dir.path().join("shares").join(&name[..2]).join(&name);
    for stray in ["007", "300", "notes.txt", "1.mutable.bak"] {
        std::fs::write(sdir.join(stray), b"?").unwrap();
    }
    let nums: Vec<u8> = b.list(&si).await.unwrap().iter().map(|i| i.shnum).collect();
    assert_eq!(nums, vec![0]);
}

/// Pending shares are promised their full size at `create`: uploads started
/// together cannot overcommit the disk, and the promise is given back when
/// a pending share is sealed, aborted or dropped. (Nothing is written, so
/// the sizes can be a large part of the real free space.)
#[tokio::test]
async fn pending_shares_hold_their_space() {
    let dir = tempfile::tempdir().unwrap();
    let b = FsBackend::open(dir.path().join("store")).unwrap();
    let free = b.remaining_capacity().await.unwrap().unwrap();
    // 60% of the free space: one fits, a second at the same time does not,
    // whatever else the machine writes meanwhile (within 20%).
    let size = free / 10 * 6;
    let si = StorageIndex([7; 16]);
    let first = b.create(&si, 0, size).await.unwrap();
    let left = b.remaining_capacity().await.unwrap().unwrap();
    assert!(
        left <= free - size / 2,
        "free {free}, promised {size}, still {left} left"
    );
    let e = b
        .create(&si, 1, size)
        .await
        .err()
        .expect("second promise overcommits the disk");
    assert_eq!(e.kind(), tahoe_core::ErrorKind::NoSpace, "{e}");
    assert!(e.to_string().contains("promised"), "{e}");
    // Dropping, aborting or sealing gives the space back.
    drop(first);
    let second = b.create(&si, 1, size).await.unwrap();
    second.abort().await.unwrap();
    let mut third = b.create(&si, 2, 3).await.unwrap();
    third.write(0, Bytes::from_static(b"abc")).await.unwrap();
    third.seal().await.unwrap();
    let fourth = b.create(&si, 3, size).await.unwrap();
    drop(fourth);
    let after = b.remaining_capacity().await.unwrap().unwrap();
    assert!(
        after > free - size / 2,
        "space not given back: {after} of {free}"
    );
}
