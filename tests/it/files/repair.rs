//! Repairing immutable files on an in-process grid, from their verify caps
//! alone: missing shares, shares crowded on few servers, a server that
//! refuses writes, a corrupt share, and a file past saving.

use std::sync::Arc;

use bytes::Bytes;
use tahoe_core::client::check::repair::RepairTools;
use tahoe_core::client::check::{CheckTarget, RepairResults};
use tahoe_core::client::immutable::placement::HappySink;
use tahoe_core::client::secrets::ClientSecret;
use tahoe_core::client::source::BytesSource;
use tahoe_core::format::cap::Cap;
use tahoe_core::kinds::storage::StorageIndex;
use tahoe_core::testing::pseudo_random_bytes;
use testkit::vectors::chk;
use testkit::{Fault, MemGrid, rt};

const SEG: u64 = 4096;

/// The verify cap of `cap`: all a repairer is given (it holds no key).
fn verify_target(cap: &Cap) -> CheckTarget {
    CheckTarget::of(&Cap::ChkVerifier(chk(cap).verifier()))
}

/// Delete every share server `i` holds of `si` (a disk lost).
async fn wipe(grid: &MemGrid, i: usize, si: &StorageIndex) {
    let backend = grid.storage[i].backend();
    for info in backend.list(si).await.unwrap() {
        backend.delete(si, info.shnum).await.unwrap();
    }
}

async fn repair(
    grid: &MemGrid,
    target: &CheckTarget,
    verify: bool,
    threshold: usize,
) -> RepairResults {
    let spool = tempfile::tempdir().unwrap();
    grid.checker(grid.refs())
        .check_and_repair(
            target,
            None,
            verify,
            threshold,
            &grid.repair_tools(spool.path()),
        )
        .await
        .unwrap()
}

#[test]
fn missing_shares_are_made_again_from_the_verify_cap_above_the_threshold() {
    rt().block_on(async {
        let grid = MemGrid::new(10).await;
        let data = pseudo_random_bytes(1, 100_000);
        let cap = grid.upload(&data, 3, 10, SEG).await;
        let si = chk(&cap).storage_index();
        for i in 0..3 {
            wipe(&grid, i, &si).await;
        }
        let target = verify_target(&cap);
        // Seven good shares on seven servers: at the default threshold
        // (happy, 7) it is left alone.
        let r = repair(&grid, &target, false, 7).await;
        assert!(!r.attempted && !r.successful, "{r:?}");
        assert_eq!(r.post.count_shares_good, 7);
        assert!(r.note.starts_with("not repaired"), "{}", r.note);
        // Asked for ten, it makes the three missing shares again, one on
        // each emptied server.
        let r = repair(&grid, &target, false, 10).await;
        assert!(r.attempted && r.successful, "{r:?}");
        assert_eq!((r.pre.count_shares_good, r.pre.healthy), (7, false));
        assert!(r.post.healthy, "{:?}", r.post);
        assert_eq!(
            (r.post.count_good_share_hosts, r.post.count_happiness),
            (10, 10)
        );
        for i in 0..3 {
            assert_eq!(grid.storage[i].backend().list(&si).await.unwrap().len(), 1);
        }
        // The new shares are the file's: any three of them read it back.
        for i in 3..10 {
            grid.set_fault(i, Fault::Down);
        }
        assert!(grid.download(chk(&cap)).await.unwrap().0 == data);
    });
}

#[test]
fn shares_crowded_on_three_servers_are_spread_over_ten() {
    rt().block_on(async {
        let grid = MemGrid::new(10).await;
        let sink = HappySink::for_shares(
            grid.refs()[..3].to_vec(),
            (0..10).collect(),
            3,
            10,
            ClientSecret::random().unwrap(),
        );
        let data = pseudo_random_bytes(2, 50_000);
        let cap = grid
            .uploader(3, 10, SEG)
            .upload(Arc::new(BytesSource(Bytes::from(data.clone()))), &sink)
            .await
            .unwrap();
        let r = repair(&grid, &verify_target(&cap), false, 7).await;
        assert!(r.pre.healthy && r.pre.needs_rebalancing, "{:?}", r.pre);
        assert_eq!(r.pre.count_happiness, 3);
        assert!(r.attempted && r.successful, "{r:?}");
        assert_eq!(
            (r.post.count_good_share_hosts, r.post.count_happiness),
            (10, 10)
        );
        assert!(!r.post.needs_rebalancing);
        assert!(grid.download(chk(&cap)).await.unwrap().0 == data);
    });
}

#[test]
fn a_server_refusing_writes_is_named_and_gone_around() {
    rt().block_on(async {
        let grid = MemGrid::new(10).await;
        let data = pseudo_random_bytes(3, 60_000);
        let cap = grid.upload(&data, 3, 10, SEG).await;
        let si = chk(&cap).storage_index();
        for i in 0..3 {
            wipe(&grid, i, &si).await;
        }
        grid.set_fault(1, Fault::FailWrites);
        let r = repair(&grid, &verify_target(&cap), false, 10).await;
        assert!(r.attempted && !r.successful, "{r:?}");
        assert!(r.note.contains("server-1"), "{}", r.note);
        // Every share is on the grid again (the refused one elsewhere),
        // on nine distinct servers.
        assert_eq!(
            (r.post.count_shares_good, r.post.healthy),
            (10, true),
            "{:?}",
            r.post
        );
        assert_eq!(r.post.count_happiness, 9);
        grid.clear_faults();
        assert!(grid.download(chk(&cap)).await.unwrap().0 == data);
    });
}

#[test]
fn a_corrupt_share_found_by_verify_is_replaced_elsewhere() {
    rt().block_on(async {
        let grid = MemGrid::new(10).await;
        let data = pseudo_random_bytes(4, 60_000);
        let cap = grid.upload(&data, 3, 10, SEG).await;
        let si = chk(&cap).storage_index();
        let holder = grid.holder(&si, 5).await;
        // A byte of a block of share 5, as its server serves it.
        grid.set_fault(
            holder,
            Fault::Flip {
                shnum: 5,
                offset: 2000,
            },
        );
        let r = repair(&grid, &verify_target(&cap), true, 10).await;
        assert_eq!(r.pre.corrupt_shares.len(), 1, "{:?}", r.pre);
        assert!(r.attempted, "{r:?}");
        // Share 5 is good again on another server; the corrupt copy stays
        // (a client cannot delete a share) and is still listed.
        assert!(r.post.healthy, "{:?}", r.post);
        let five = &r.post.sharemap["5"];
        assert!(!five.contains(&format!("server-{holder}")), "{five:?}");
        assert_eq!(r.post.corrupt_shares.len(), 1);
        assert!(grid.download(chk(&cap)).await.unwrap().0 == data);
    });
}

#[test]
fn a_file_with_fewer_than_k_shares_is_reported_not_touched() {
    rt().block_on(async {
        let grid = MemGrid::new(10).await;
        let cap = grid
            .upload(&pseudo_random_bytes(5, 30_000), 3, 10, SEG)
            .await;
        let si = chk(&cap).storage_index();
        for i in 0..8 {
            wipe(&grid, i, &si).await;
        }
        let r = repair(&grid, &verify_target(&cap), false, 7).await;
        assert!(r.attempted && !r.successful, "{r:?}");
        assert!(!r.post.recoverable);
        assert!(
            r.note.starts_with("cannot repair: 2 good shares"),
            "{}",
            r.note
        );
        let mut held = 0;
        for i in 0..10 {
            held += grid.storage[i].backend().list(&si).await.unwrap().len();
        }
        assert_eq!(held, 2, "nothing was written");
    });
}

/// Hostile servers during a repair: one serves a wrong block, one serves
/// another file's shares (a wrong UEB) under this file's storage index, and
/// an empty one claims at allocation to hold the share it is asked for.
/// The repair goes around each and names it, the file is whole again from
/// the good servers, and no good share is touched.
#[test]
fn hostile_servers_are_named_and_gone_around_and_good_shares_kept() {
    rt().block_on(async {
        let grid = MemGrid::new(10).await;
        let data = pseudo_random_bytes(9, 80_000);
        let cap = grid.upload(&data, 3, 10, SEG).await;
        let other = grid
            .upload(&pseudo_random_bytes(10, 80_000), 3, 10, SEG)
            .await;
        let si = chk(&cap).storage_index();
        for i in 0..3 {
            wipe(&grid, i, &si).await;
        }
        let stored = |i: usize| {
            let grid = &grid;
            async move {
                let backend = grid.storage[i].backend();
                let mut out = Vec::new();
                for info in backend.list(&si).await.unwrap() {
                    let bytes = backend
                        .read(&si, info.shnum, info.kind, 0, info.size)
                        .await
                        .unwrap();
                    out.push((info.shnum, bytes));
                }
                out
            }
        };
        let mut before = Vec::new();
        for i in 0..10 {
            before.push(stored(i).await);
        }
        let flipped = before[3][0].0;
        grid.set_fault(
            3,
            Fault::Flip {
                shnum: flipped,
                offset: 2000,
            },
        );
        grid.set_fault(4, Fault::Redirect(chk(&other).storage_index()));
        grid.set_fault(0, Fault::ClaimAll);
        let r = repair(&grid, &verify_target(&cap), false, 10).await;
        assert!(r.attempted, "{r:?}");
        for hostile in ["server-0", "server-3", "server-4"] {
            assert!(r.note.contains(hostile), "{hostile} not named: {}", r.note);
        }
        assert!(r.note.contains("shares not used: "), "{}", r.note);
        // What the good servers held is untouched; the two that lost their
        // disks hold a share again; the file reads right, even with the
        // hostile servers still at it.
        for (i, held) in before.iter().enumerate().skip(3) {
            let now = stored(i).await;
            for (shnum, bytes) in held {
                assert!(
                    now.iter().any(|(s, b)| s == shnum && b == bytes),
                    "server {i}'s share {shnum} changed"
                );
            }
        }
        for i in 1..3 {
            assert_eq!(stored(i).await.len(), 1, "server {i}");
        }
        assert!(stored(0).await.is_empty(), "server 0 took nothing");
        assert!(grid.download(chk(&cap)).await.unwrap().0 == data);
        grid.clear_faults();
        assert!(grid.download(chk(&cap)).await.unwrap().0 == data);
        let r = grid
            .checker(grid.refs())
            .check(&verify_target(&cap), true)
            .await
            .unwrap();
        assert!(r.recoverable && r.count_shares_good == 10, "{r:?}");
    });
}

/// A partial publish leaves two versions; repair publishes the newest
/// recoverable one again, over every share of both, with a sequence number
/// above both. When the newest is not recoverable, the newest that is
/// comes back (under a higher sequence number, so the unrecoverable one is
/// superseded, not rolled back to).
#[test]
fn a_partial_publish_is_repaired_to_the_newest_recoverable_version() {
    use tahoe_core::format::ssk::MutableFormat;
    rt().block_on(async {
        for keep_second in [None, Some(2usize)] {
            let grid = MemGrid::new(10).await;
            let client = grid.mutable_client(3, 10, 4096);
            let first = Bytes::from(pseudo_random_bytes(11, 30_000));
            let second = Bytes::from(pseudo_random_bytes(12, 30_000));
            let w = client
                .create(MutableFormat::Mdmf, Arc::new(BytesSource(first.clone())))
                .await
                .unwrap();
            // The second version reaches only the first five servers.
            for i in 5..10 {
                grid.set_fault(i, Fault::Down);
            }
            let _ = client
                .overwrite(&w, Arc::new(BytesSource(second.clone())))
                .await;
            grid.clear_faults();
            let target = CheckTarget::of(&Cap::SskWrite(w.clone()));
            let CheckTarget::Mutable(v) = &target else {
                unreachable!()
            };
            let si = v.storage_index;
            // Then all but `keep` of its shares are lost: fewer than k.
            if let Some(keep) = keep_second {
                let mut kept = 0;
                for i in 0..5 {
                    for shnum in grid.slot_contents(i, &si).await.into_keys() {
                        if kept < keep {
                            kept += 1;
                        } else {
                            grid.storage[i].backend().delete(&si, shnum).await.unwrap();
                        }
                    }
                }
            }
            let up = keep_second.map_or(5, |k| k);
            let want = if keep_second.is_none() {
                "second"
            } else {
                "first"
            };
            let pre = grid
                .checker(grid.refs())
                .check(&target, false)
                .await
                .unwrap();
            let seqs: std::collections::BTreeSet<&str> =
                pre.sharemap.keys().map(|k| &k[..4]).collect();
            assert_eq!(seqs.len(), 2, "two versions: {:?}", pre.sharemap);
            assert!(!pre.healthy, "{pre:?}");
            let spool = tempfile::tempdir().unwrap();
            let tools = RepairTools {
                mutable: Some(client.clone()),
                ..grid.repair_tools(spool.path())
            };
            let r = grid
                .checker(grid.refs())
                .check_and_repair(&target, Some(&w), false, 7, &tools)
                .await
                .unwrap();
            assert!(r.attempted && r.successful, "{up}: {r:?}");
            assert!(r.post.healthy, "{up}: {:?}", r.post);
            assert_eq!(r.post.count_recoverable_versions, 1);
            assert_eq!(r.post.count_wrong_shares, 0);
            assert!(
                r.post.sharemap.keys().all(|k| k.starts_with("seq3-")),
                "{up}: {:?}",
                r.post.sharemap
            );
            let mut read = Vec::new();
            client
                .read(&w.read_cap(), 0..u64::MAX, &mut read)
                .await
                .unwrap();
            let expected = if want == "second" { &second } else { &first };
            assert!(read == expected.as_ref(), "{up}: not the {want} version");
        }
    });
}

/// The repairer does not hash the ciphertext again (the download checked
/// each segment against the UEB's tree); what guards the shares it writes
/// is that they must reproduce the UEB, share hash tree included. Here the
/// ciphertext changes between the download and the encoder (a byte the
/// download's checks would have caught, planted after them): the shares
/// made are refused and none is left on the servers.
#[test]
fn a_re_encoding_that_does_not_reproduce_the_ueb_places_nothing() {
    use tahoe_core::client::immutable::upload::Uploader;
    rt().block_on(async {
        let grid = MemGrid::new(10).await;
        let data = pseudo_random_bytes(5, 100_000);
        let cap = grid.upload(&data, 3, 10, SEG).await;
        let verifier = chk(&cap).verifier();
        let si = verifier.storage_index;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let mut ciphertext = Vec::new();
        grid.downloader()
            .stream_ciphertext(&verifier, &grid.refs(), &mut ciphertext, tx)
            .await
            .unwrap();
        let layout = rx.await.unwrap();
        assert_eq!(ciphertext.len(), data.len());
        assert!(ciphertext != data, "the repairer saw plaintext");
        for i in 0..3 {
            wipe(&grid, i, &si).await;
        }
        let place = |bytes: Vec<u8>| {
            let (grid, layout) = (&grid, &layout);
            async move {
                let sink = HappySink::for_shares(
                    grid.refs()[..3].to_vec(),
                    vec![0, 1, 2],
                    3,
                    10,
                    ClientSecret::random().unwrap(),
                );
                Uploader::upload_ciphertext(
                    grid.codec("crs", 3, 10),
                    Arc::new(BytesSource(Bytes::from(bytes))),
                    si,
                    layout,
                    &sink,
                )
                .await
            }
        };
        let mut planted = ciphertext.clone();
        planted[70_000] ^= 1;
        let e = place(planted).await.unwrap_err();
        assert_eq!(e.kind(), tahoe_core::ErrorKind::Corrupt, "{e}");
        assert!(e.to_string().contains("does not reproduce"), "{e}");
        for i in 0..3 {
            assert!(
                grid.storage[i]
                    .backend()
                    .list(&si)
                    .await
                    .unwrap()
                    .is_empty()
            );
        }
        // The same call with the bytes the download verified places the
        // three shares, and they read the file back with any others.
        place(ciphertext).await.unwrap();
        for i in 0..3 {
            assert_eq!(grid.storage[i].backend().list(&si).await.unwrap().len(), 1);
        }
        for i in 5..10 {
            grid.set_fault(i, Fault::Down);
        }
        assert!(grid.download(chk(&cap)).await.unwrap().0 == data);
    });
}
