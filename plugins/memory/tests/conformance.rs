//! memory against the storage contract, and its capacity limit.

use std::sync::Arc;
use tahoe_core::ErrorKind;
use tahoe_core::kinds::storage::{StorageBackend, StorageIndex};
use tahoe_core::testing::storage;
use tahoe_storage_memory::MemoryBackend;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance() {
    storage::run(|| async { Ok(Arc::new(MemoryBackend::new(None)) as Arc<dyn StorageBackend>) })
        .await;
    // Again with a limit, so the suite's capacity checks have numbers.
    storage::run(|| async {
        Ok(Arc::new(MemoryBackend::new(Some(1 << 30))) as Arc<dyn StorageBackend>)
    })
    .await;
}

#[tokio::test]
async fn capacity_is_enforced_and_released() {
    let b = MemoryBackend::new(Some(1000));
    let si = StorageIndex([1; 16]);
    assert_eq!(b.remaining_capacity().await.unwrap(), Some(1000));
    let w = b.create(&si, 0, 600).await.unwrap();
    assert_eq!(b.remaining_capacity().await.unwrap(), Some(400));
    let e = b.create(&si, 1, 600).await.err().unwrap();
    assert_eq!(e.kind(), ErrorKind::NoSpace);
    w.abort().await.unwrap();
    assert_eq!(b.remaining_capacity().await.unwrap(), Some(1000));
    let w = b.create(&si, 1, 600).await.unwrap();
    w.seal().await.unwrap();
    assert_eq!(b.remaining_capacity().await.unwrap(), Some(400));
    b.delete(&si, 1).await.unwrap();
    assert_eq!(b.remaining_capacity().await.unwrap(), Some(1000));
}
