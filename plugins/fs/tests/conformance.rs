//! fs against the storage contract, including restarts and crashes.

use bytes::Bytes;
use std::sync::Arc;
use tahoe_core::storage::{StorageBackend, StorageIndex};
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
