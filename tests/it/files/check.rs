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

/// Every byte of every share of an SDMF and an MDMF file flipped in turn:
/// a byte the servermap reads (the signed prefix, the key, the signature)
/// already shows in a plain check; every other byte that any reader checks
/// is found by verify alone, which names exactly that share and tells its
/// server. Only the encrypted private key (no reader holds the write key
/// to check it, as in Tahoe-LAFS) and bytes nothing reads are unchecked.
#[test]
fn mutable_verify_finds_any_corrupt_byte_in_any_share() {
    use std::sync::atomic::Ordering;
    use tahoe_core::format::ssk::MutableFormat;
    use tahoe_core::format::ssk::layout::ShareHead;
    rt().block_on(async {
        let grid = MemGrid::new(4).await;
        // MDMF in three segments of 128 bytes.
        let client = grid.mutable_client(2, 4, 128);
        for format in [MutableFormat::Sdmf, MutableFormat::Mdmf] {
            let data = Bytes::from(pseudo_random_bytes(7, 300));
            let w = client
                .create(format, Arc::new(BytesSource(data)))
                .await
                .unwrap();
            let target = CheckTarget::of(&Cap::SskWrite(w.clone()));
            let CheckTarget::Mutable(v) = &target else {
                panic!("{target:?}")
            };
            let si = v.storage_index;
            let checker = grid.checker(grid.refs());
            let (mut verify_only, mut either, mut blocks) = (0, 0, 0);
            for server in 0..4 {
                let contents = grid.slot_contents(server, &si).await;
                let (&shnum, share) = contents.iter().next().unwrap();
                let head = ShareHead::parse(share).unwrap();
                let o = &head.offsets;
                blocks += o.share_data.end - o.share_data.start;
                // No reader checks: the encrypted private key, the room
                // MDMF leaves between the key and the blocks, and SDMF's
                // end-of-file offset (bytes 99..107; some of its flips
                // make offsets that do not parse, and are seen).
                let room = match format {
                    MutableFormat::Sdmf => 99..107,
                    MutableFormat::Mdmf => o.verification_key.end..o.share_data.start,
                };
                let unchecked = |at: u64| o.enc_privkey.contains(&at) || room.contains(&at);
                for offset in 0..share.len() as u64 {
                    grid.set_fault(server, Fault::Flip { shnum, offset });
                    let plain = checker.check(&target, false).await.unwrap();
                    let advised = grid.servers[server].advised.load(Ordering::SeqCst);
                    let r = checker.check(&target, true).await.unwrap();
                    let named: Vec<u8> = r.corrupt_shares.iter().map(|c| c.shnum).collect();
                    let at = format!("{format:?} byte {offset} of share {shnum}");
                    if unchecked(offset) {
                        assert!(r.healthy || named == [shnum], "{at}: {r:?}");
                        continue;
                    }
                    assert_eq!(named, [shnum], "{at}: {r:?}");
                    assert_eq!(r.corrupt_shares[0].server, format!("server-{server}"));
                    assert!(!r.healthy && r.recoverable, "{at}: {r:?}");
                    assert_eq!(r.count_shares_good, 3, "{at}");
                    if plain.healthy {
                        verify_only += 1;
                        assert_eq!(
                            grid.servers[server].advised.load(Ordering::SeqCst),
                            advised + 1,
                            "{at}: its server was not told"
                        );
                    } else {
                        either += 1;
                        let named: Vec<u8> = plain.corrupt_shares.iter().map(|c| c.shnum).collect();
                        assert_eq!(named, [shnum], "{at}: {plain:?}");
                    }
                }
                grid.clear_faults();
            }
            // Verify alone finds every flipped block byte; both find the
            // key and the signature (550 bytes a share).
            assert!(
                verify_only >= blocks && either > 4 * 550,
                "{verify_only} {blocks} {either}"
            );
            let r = checker.check(&target, true).await.unwrap();
            assert!(r.healthy && r.corrupt_shares.is_empty(), "{r:?}");
        }
    });
}

/// add-lease: a check by the node that uploaded renews its lease on every
/// server holding a share (each server's own secrets, so one lease, a
/// later expiry); another node's check adds its own beside it; a server
/// holding no share is not asked. Mutable files the same.
#[test]
fn add_lease_renews_the_uploaders_lease_and_adds_another_nodes() {
    use tahoe_core::format::ssk::MutableFormat;
    use tahoe_core::kinds::storage::StorageIndex;
    rt().block_on(async {
        let grid = MemGrid::new(12).await;
        let mine = ClientSecret::random().unwrap();
        let sink = HappySink::new(grid.refs(), 3, 10, 10, mine.clone());
        let data = Bytes::from(pseudo_random_bytes(8, 20_000));
        let chk = grid
            .uploader(3, 10, SEG)
            .upload(Arc::new(BytesSource(data.clone())), &sink)
            .await
            .unwrap();
        let ssk = grid
            .mutable_client(3, 10, 999)
            .create(MutableFormat::Mdmf, Arc::new(BytesSource(data)))
            .await
            .unwrap();
        let leases = |si: StorageIndex| {
            let grid = &grid;
            async move {
                let mut out = Vec::new();
                for s in &grid.storage {
                    out.push(s.backend().leases(&si).await.unwrap_or_default());
                }
                out
            }
        };
        let checker = |secret: &ClientSecret| tahoe_core::client::check::Checker {
            add_lease: Some(secret.clone()),
            ..grid.checker(grid.refs())
        };
        for (cap, uploader) in [(chk, Some(&mine)), (Cap::SskWrite(ssk), None)] {
            let target = CheckTarget::of(&cap);
            let si = match &target {
                CheckTarget::Immutable(v) => v.storage_index,
                CheckTarget::Mutable(v) => v.storage_index,
                CheckTarget::Literal => unreachable!(),
            };
            let before = leases(si).await;
            let holders: Vec<usize> = (0..12).filter(|&i| !before[i].is_empty()).collect();
            assert_eq!(holders.len(), 10, "{before:?}");
            assert!(before.iter().all(|l| l.len() <= 1));
            if let Some(secret) = uploader {
                std::thread::sleep(Duration::from_millis(1100));
                let r = checker(secret).check(&target, false).await.unwrap();
                assert!(r.healthy, "{r:?}");
                let after = leases(si).await;
                for &i in &holders {
                    assert_eq!(after[i].len(), 1, "server {i}: {:?}", after[i]);
                    assert!(after[i][0].expires_at > before[i][0].expires_at);
                    let id = format!("server-{i}");
                    let mine = secret.for_file(&si).for_server(&id);
                    assert_eq!(after[i][0].renew_secret, mine.renew, "server {i}");
                }
            }
            let other = ClientSecret::random().unwrap();
            let r = checker(&other).check(&target, false).await.unwrap();
            assert!(r.healthy, "{r:?}");
            let after = leases(si).await;
            for (i, leases) in after.iter().enumerate() {
                let want = if holders.contains(&i) { 2 } else { 0 };
                assert_eq!(leases.len(), want, "server {i}: {leases:?}");
            }
            // The plain check adds nothing.
            let r = grid
                .checker(grid.refs())
                .check(&target, false)
                .await
                .unwrap();
            assert!(r.healthy);
            assert_eq!(leases(si).await, after);
        }
    });
}
