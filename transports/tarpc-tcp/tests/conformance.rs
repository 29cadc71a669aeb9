//! tarpc-tcp against the transport contract, and its authentication.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use tahoe_core::ErrorKind;
use tahoe_core::protocol::transport::{LocalServices, Transport};
use tahoe_core::testing::transport;
use tahoe_transport_tarpc_tcp::{Identity, PeerAddress, TarpcTcp, TarpcTcpConfig};

fn node() -> TarpcTcp {
    TarpcTcp::new(Identity::ephemeral().unwrap(), TarpcTcpConfig::default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance() {
    let t: Arc<dyn Transport> = Arc::new(node());
    // A port nobody listens on: bind one and drop it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let fp = "a".repeat(52);
    let nobody = format!("tahoe+tcp://{fp}@127.0.0.1:{port}");
    transport::run(t, "127.0.0.1:0", &nobody, 4 << 20).await;
}

#[tokio::test]
async fn a_peer_with_another_key_is_refused() {
    let server = node();
    let l = server
        .listen("127.0.0.1:0", LocalServices::default())
        .await
        .unwrap();
    let mut addr = PeerAddress::parse(&l.address()).unwrap();
    addr.fingerprint = Identity::ephemeral().unwrap().fingerprint;
    let e = node().connect(&addr.to_string()).await.err().unwrap();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
}

#[tokio::test]
async fn garbage_and_oversized_frames_do_not_hurt_the_server() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = node();
    let services = LocalServices {
        storage: Some(Arc::new(
            tahoe_core::testing::transport::EchoStorage::default(),
        )),
        queen: None,
    };
    let l = server.listen("127.0.0.1:0", services).await.unwrap();
    let addr = PeerAddress::parse(&l.address()).unwrap();
    // Plain garbage instead of TLS.
    let mut s = tokio::net::TcpStream::connect(&addr.host_port)
        .await
        .unwrap();
    s.write_all(&[0x16, 0x03, 0x01, 0xff, 0xff, 1, 2, 3])
        .await
        .unwrap();
    s.write_all(&vec![0xAB; 100_000]).await.unwrap();
    let mut buf = [0u8; 16];
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), s.read(&mut buf)).await;
    // A client whose frames exceed the server's limit is cut off.
    let small = TarpcTcpConfig {
        max_frame_bytes: 1 << 16,
        ..Default::default()
    };
    let limited = TarpcTcp::new(Identity::ephemeral().unwrap(), small);
    let l2 = limited
        .listen(
            "127.0.0.1:0",
            LocalServices {
                storage: Some(Arc::new(
                    tahoe_core::testing::transport::EchoStorage::default(),
                )),
                queen: None,
            },
        )
        .await
        .unwrap();
    let peer = node().connect(&l2.address()).await.unwrap();
    let big = bytes::Bytes::from(vec![0u8; 1 << 20]);
    let e = peer
        .storage
        .write_bucket(
            tahoe_core::kinds::storage::StorageIndex([0; 16]),
            1,
            [1; 32],
            1 << 20,
            big,
        )
        .await;
    assert!(e.is_err(), "an oversized frame must be refused");
    // The servers still serve well-behaved clients.
    let ok = node().connect(&l.address()).await.unwrap();
    assert_eq!(
        ok.storage.version().await.unwrap().available_space,
        Some(12345)
    );
    let ok2 = node().connect(&l2.address()).await.unwrap();
    assert!(ok2.storage.version().await.is_ok());
}

#[test]
fn addresses_are_checked() {
    let fp = "a".repeat(52);
    assert!(PeerAddress::parse(&format!("tahoe+tcp://{fp}@127.0.0.1:80")).is_ok());
    for bad in [
        format!("tcp://{fp}@127.0.0.1:80"),
        format!("tahoe+tcp://{fp}127.0.0.1:80"),
        "tahoe+tcp://short@127.0.0.1:80".to_string(),
        format!("tahoe+tcp://{fp}@127.0.0.1"),
        format!("tahoe+tcp://{fp}@127.0.0.1:99999"),
    ] {
        assert!(PeerAddress::parse(&bad).is_err(), "{bad}");
    }
}

#[tokio::test]
async fn a_stalled_peer_is_cut_off_and_blocks_nobody() {
    use tokio::io::AsyncReadExt;
    let quick = TarpcTcpConfig {
        connect_timeout_secs: 1,
        ..Default::default()
    };
    let server = TarpcTcp::new(Identity::ephemeral().unwrap(), quick);
    let services = LocalServices {
        storage: Some(Arc::new(
            tahoe_core::testing::transport::EchoStorage::default(),
        )),
        queen: None,
    };
    let l = server.listen("127.0.0.1:0", services).await.unwrap();
    let addr = PeerAddress::parse(&l.address()).unwrap();
    // Connects and says nothing.
    let mut stalled = tokio::net::TcpStream::connect(&addr.host_port)
        .await
        .unwrap();
    // Others are served meanwhile.
    let peer = node().connect(&l.address()).await.unwrap();
    assert!(peer.storage.version().await.is_ok());
    // The staller is disconnected after the handshake deadline.
    let mut buf = [0u8; 1];
    let r = tokio::time::timeout(std::time::Duration::from_secs(10), stalled.read(&mut buf)).await;
    assert!(
        matches!(r, Ok(Ok(0)) | Ok(Err(_))),
        "a stalled connection must be closed: {r:?}"
    );
}

/// A queen that takes its time over every call.
struct SlowQueen;

#[async_trait::async_trait]
impl tahoe_core::protocol::QueenService for SlowQueen {
    async fn announce(
        &self,
        _: tahoe_core::protocol::GridSecret,
        _: tahoe_core::protocol::Announcement,
    ) -> tahoe_core::Result<()> {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        Ok(())
    }
    async fn poll_announcements(
        &self,
        _: tahoe_core::protocol::GridSecret,
        _: u64,
        _: u64,
    ) -> tahoe_core::Result<tahoe_core::protocol::AnnouncementBatch> {
        Ok(Default::default())
    }
}

/// The requests a listener serves at once are bounded across all its
/// connections (`max_request_memory / max_frame_bytes`): with room for one,
/// calls from four connections are served one after the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_in_flight_are_bounded_across_connections() {
    let config = TarpcTcpConfig {
        max_request_memory: TarpcTcpConfig::default().max_frame_bytes as u64,
        ..TarpcTcpConfig::default()
    };
    assert_eq!(config.requests_in_flight(), 1);
    let server = TarpcTcp::new(Identity::ephemeral().unwrap(), config);
    let services = LocalServices {
        storage: None,
        queen: Some(Arc::new(SlowQueen)),
    };
    let l = server.listen("127.0.0.1:0", services).await.unwrap();
    let mut peers = Vec::new();
    for _ in 0..4 {
        peers.push(node().connect(&l.address()).await.unwrap());
    }
    let announcement = tahoe_core::protocol::Announcement {
        body: bytes::Bytes::new(),
        signature: bytes::Bytes::new(),
        public_key: bytes::Bytes::new(),
    };
    let started = std::time::Instant::now();
    let calls = peers
        .iter()
        .map(|p| p.queen.announce([0; 32], announcement.clone()));
    for r in futures::future::join_all(calls).await {
        r.unwrap();
    }
    let took = started.elapsed();
    assert!(
        took >= std::time::Duration::from_millis(1100),
        "four 300 ms calls took {took:?}: served at once"
    );
}
