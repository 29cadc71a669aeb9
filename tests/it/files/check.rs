//! The checker on an in-process grid: servers that hang, and shares
//! crowded onto few servers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tahoe_core::client::check::CheckTarget;
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
        let mut checker = grid.checker(grid.refs());
        checker.deadline = Duration::from_millis(300);
        let healthy = checker.check(&target, false).await.unwrap();
        assert!(healthy.healthy, "{healthy:?}");
        assert_eq!(healthy.servers_responding.len(), 10);
        grid.set_fault(4, Fault::Hang);
        let t = Instant::now();
        let r = tokio::time::timeout(Duration::from_secs(5), checker.check(&target, false))
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
            .check(&CheckTarget::of(&Cap::SskWrite(m)), false)
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
        let r = grid
            .checker(grid.refs())
            .check(&CheckTarget::of(&cap), false)
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
        let r = grid
            .checker(grid.refs())
            .check(&CheckTarget::of(&spread), false)
            .await
            .unwrap();
        assert!(r.healthy && !r.needs_rebalancing, "{r:?}");
        // Ten shares on ten servers, with only five servers answering:
        // five is all that is possible, no rebalancing.
        let r = grid
            .checker(grid.refs()[..5].to_vec())
            .check(&CheckTarget::of(&spread), false)
            .await
            .unwrap();
        assert!(!r.healthy && !r.needs_rebalancing, "{r:?}");
    });
}

/// Every byte of every share flipped in turn: a plain check never reads a
/// share and sees nothing; verify lists exactly that share as corrupt
/// (unless the byte is one no reader checks), counts the others, and tells
/// its server.
#[test]
fn verify_finds_any_corrupt_byte_in_any_share_and_check_does_not() {
    use std::sync::atomic::Ordering;
    use tahoe_core::format::chk::layout::ShareLayout;
    use tahoe_core::kinds::storage::ShareKind;
    rt().block_on(async {
        let grid = MemGrid::new(4).await;
        // Two segments, so every section of the share is non-trivial.
        let cap = grid.upload(&pseudo_random_bytes(6, 300), 2, 4, 256).await;
        let target = CheckTarget::of(&cap);
        let CheckTarget::Immutable(v) = &target else {
            panic!("{target:?}")
        };
        let si = v.storage_index;
        let checker = grid.checker(grid.refs());
        let mut holders = Vec::new();
        for s in 0..4u8 {
            holders.push(grid.holder(&si, s).await);
        }
        let backend = grid.storage[holders[0]].backend();
        let size = backend.list(&si).await.unwrap()[0].size;
        let head = backend
            .read(&si, 0, ShareKind::Immutable, 0, 0x44)
            .await
            .unwrap();
        let layout = ShareLayout::parse(&head, size).unwrap();
        // Bytes no reader checks: the header's informational block and
        // data sizes, and the unused plaintext hash tree.
        let width = layout.field_size();
        let unchecked = |o: u64| {
            (4..4 + 2 * width).contains(&o)
                || (layout.plaintext_hash_tree..layout.crypttext_hash_tree).contains(&o)
        };
        let mut found = 0;
        for shnum in 0..4u8 {
            let server = holders[usize::from(shnum)];
            for offset in 0..size {
                grid.set_fault(server, Fault::Flip { shnum, offset });
                let plain = checker.check(&target, false).await.unwrap();
                assert!(
                    plain.healthy && plain.corrupt_shares.is_empty(),
                    "{plain:?}"
                );
                let advised = grid.servers[server].advised.load(Ordering::SeqCst);
                let r = checker.check(&target, true).await.unwrap();
                let named: Vec<u8> = r.corrupt_shares.iter().map(|c| c.shnum).collect();
                if unchecked(offset) {
                    assert!(
                        named.is_empty(),
                        "byte {offset} of share {shnum}: {named:?}"
                    );
                    assert!(r.healthy);
                    continue;
                }
                found += 1;
                assert_eq!(named, [shnum], "byte {offset} of share {shnum}: {r:?}");
                assert_eq!(r.corrupt_shares[0].server, format!("server-{server}"));
                assert_eq!(
                    (r.healthy, r.recoverable, r.count_shares_good),
                    (false, true, 3)
                );
                assert!(!r.sharemap.contains_key(&shnum.to_string()));
                assert_eq!(
                    grid.servers[server].advised.load(Ordering::SeqCst),
                    advised + 1,
                    "share {shnum}'s server was not told"
                );
            }
            grid.clear_faults();
        }
        assert!(found > 4 * (size - 2 * 0x44) / 2, "{found} of {size}");
        // Nothing flipped: verify finds every share good.
        let r = checker.check(&target, true).await.unwrap();
        assert!(r.healthy && r.corrupt_shares.is_empty(), "{r:?}");
    });
}
