//! memory against the transport contract.

use std::sync::Arc;
use tahoe_core::protocol::transport::Transport;
use tahoe_core::testing::transport;
use tahoe_transport_memory::MemoryTransport;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance() {
    let t: Arc<dyn Transport> = Arc::new(MemoryTransport);
    transport::run(t, "memory:", "memory:nobody-here", 4 << 20).await;
}

#[tokio::test]
async fn names_are_exclusive() {
    use tahoe_core::protocol::transport::LocalServices;
    let t = MemoryTransport;
    let l = t
        .listen("memory:taken", LocalServices::default())
        .await
        .unwrap();
    assert!(
        t.listen("memory:taken", LocalServices::default())
            .await
            .is_err()
    );
    assert!(
        t.listen("tcp:taken", LocalServices::default())
            .await
            .is_err()
    );
    l.shutdown().await;
    assert!(
        t.listen("memory:taken", LocalServices::default())
            .await
            .is_ok()
    );
}
