//! The checker on an in-process grid: servers that hang, and shares
//! crowded onto few servers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tahoe_core::client::check::{CheckTarget, Checker};
use tahoe_core::client::immutable::placement::HappySink;
use tahoe_core::client::secrets::ClientSecret;
use tahoe_core::client::source::BytesSource;
use tahoe_core::format::cap::Cap;
use tahoe_core::testing::pseudo_random_bytes;
use testkit::{Fault, MemGrid, rt};

const SEG: u64 = 4096;

#[test]
fn a_server_that_hangs_is_reported_and_costs_only_the_deadline() {
    rt().block_on(async {
        let grid = MemGrid::new(10).await;
        let cap = grid
            .upload(&pseudo_random_bytes(1, 20_000), 3, 10, SEG)
            .await;
        let target = CheckTarget::of(&cap);
        let mut checker = Checker::new(grid.refs());
        checker.deadline = Duration::from_millis(300);
        let healthy = checker.check(&target).await.unwrap();
        assert!(healthy.healthy, "{healthy:?}");
        assert_eq!(healthy.servers_responding.len(), 10);
        grid.set_fault(4, Fault::Hang);
        let t = Instant::now();
        let r = tokio::time::timeout(Duration::from_secs(5), checker.check(&target))
            .await
            .expect("the check waited on the server that hangs")
            .unwrap();
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        assert_eq!(r.servers_not_responding.len(), 1, "{r:?}");
        assert_eq!(r.servers_not_responding[0].0, "server-4");
        assert!(r.servers_not_responding[0].1.contains("no answer within"));
        assert_eq!(r.servers_responding.len(), 9);
        assert!(!r.servers_responding.contains(&"server-4".to_string()));
        assert_eq!(
            (r.count_shares_good, r.healthy, r.recoverable),
            (9, false, true)
        );
        assert_eq!(r.summary, "Not Healthy: 9 shares (enc 3-of-10)");
        // The mutable checker keeps the same deadline.
        let client = grid.mutable_client(3, 10, 999);
        grid.clear_faults();
        let m = client
            .create(
                tahoe_core::format::ssk::MutableFormat::Sdmf,
                Arc::new(BytesSource(Bytes::from_static(b"mutable"))),
            )
            .await
            .unwrap();
        grid.set_fault(7, Fault::Hang);
        let t = Instant::now();
        let r = checker
            .check(&CheckTarget::of(&Cap::SskWrite(m)))
            .await
            .unwrap();
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        assert_eq!(r.servers_not_responding[0].0, "server-7");
        assert_eq!(r.summary, "Unhealthy: 9 shares (enc 3-of-10)");
    });
}

#[test]
fn shares_on_three_of_ten_servers_need_rebalancing() {
    rt().block_on(async {
        let grid = MemGrid::new(10).await;
        // Only three servers take the upload: ten shares on three.
        let sink = HappySink::new(
            grid.refs()[..3].to_vec(),
            3,
            3,
            10,
            ClientSecret::random().unwrap(),
        );
        let data = pseudo_random_bytes(2, 20_000);
        let cap = grid
            .uploader(3, 10, SEG)
            .upload(Arc::new(BytesSource(Bytes::from(data))), &sink)
            .await
            .unwrap();
        let r = Checker::new(grid.refs())
            .check(&CheckTarget::of(&cap))
            .await
            .unwrap();
        // Every share is there: healthy as Tahoe counts it, but badly
        // placed.
        assert_eq!((r.healthy, r.count_shares_good), (true, 10), "{r:?}");
        assert_eq!((r.count_good_share_hosts, r.count_happiness), (3, 3));
        assert!(r.needs_rebalancing);
        // Spread over all ten it does not.
        let spread = grid
            .upload(&pseudo_random_bytes(3, 20_000), 3, 10, SEG)
            .await;
        let r = Checker::new(grid.refs())
            .check(&CheckTarget::of(&spread))
            .await
            .unwrap();
        assert!(r.healthy && !r.needs_rebalancing, "{r:?}");
        // Ten shares on ten servers, with only five servers answering:
        // five is all that is possible, no rebalancing.
        let r = Checker::new(grid.refs()[..5].to_vec())
            .check(&CheckTarget::of(&spread))
            .await
            .unwrap();
        assert!(!r.healthy && !r.needs_rebalancing, "{r:?}");
    });
}
