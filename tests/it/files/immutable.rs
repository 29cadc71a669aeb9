//! Immutable files end to end in one process: upload through storage
//! servers reached over the memory transport, download, and survive
//! missing, corrupt, truncated and foreign shares.

use tahoe_core::ErrorKind;
use tahoe_core::format::cap::Cap;
use tahoe_core::testing::{combinations, pseudo_random_bytes};
use testkit::vectors::chk;
use testkit::{Fault, MemGrid, rt};

const SEG: u64 = 4096;

#[test]
fn round_trip_at_edge_sizes() {
    rt().block_on(async {
        let grid = MemGrid::new(10).await;
        let s = SEG as usize;
        for size in [
            0,
            1,
            55,
            56,
            57,
            s - 1,
            s,
            s + 1,
            2 * s,
            7 * s + 13,
            3 * s - 2,
        ] {
            let data = pseudo_random_bytes(size as u64, size);
            let cap = grid.upload(&data, 3, 10, SEG).await;
            if size <= 55 {
                assert!(
                    matches!(&cap, Cap::Lit(l) if l.data == data),
                    "size {size} should give a LIT cap"
                );
                continue;
            }
            let c = chk(&cap);
            assert_eq!((c.k, c.n, c.size), (3, 10, size as u64));
            let (back, report) = grid.download(c).await.unwrap();
            assert!(back == data, "size {size} did not round-trip");
            assert!(report.bad_shares.is_empty());
            // The cap string parses back to the same cap.
            assert_eq!(cap.to_string().parse::<Cap>().unwrap(), cap);
        }
    });
}

/// Blocks larger than one call may carry (k = 1 and 20 MiB segments: 20 MiB
/// blocks, the servers refuse more than 8 MiB per call) travel in several
/// calls each way.
#[test]
fn blocks_larger_than_one_call_round_trip() {
    rt().block_on(async {
        let grid = MemGrid::new(3).await;
        let data = pseudo_random_bytes(11, (45 << 20) + 7);
        let cap = grid.upload(&data, 1, 3, 20 << 20).await;
        let c = chk(&cap);
        let (back, report) = grid.download(c).await.unwrap();
        assert!(back == data, "45 MiB in 20 MiB blocks did not round-trip");
        assert!(report.bad_shares.is_empty(), "{:?}", report.bad_shares);
    });
}

#[test]
fn default_segment_size_and_other_codecs() {
    rt().block_on(async {
        let grid = MemGrid::new(10).await;
        let data = pseudo_random_bytes(9, (3 << 20) + 12345);
        let cap = grid.upload(&data, 3, 10, 1 << 20).await;
        assert!(grid.download(chk(&cap)).await.unwrap().0 == data);
        // A file written with another codec names it in its UEB, and the
        // downloader picks it from there.
        for (codec, k, n) in [("reed-solomon", 3, 10), ("leopard", 4, 7)] {
            let mut up = grid.uploader(k, n, 64 << 10);
            up.codec = grid.codec(codec, k, n);
            let sink = grid.sink(k, n);
            let cap = up
                .upload(
                    std::sync::Arc::new(tahoe_core::client::source::BytesSource(
                        bytes::Bytes::from(data.clone()),
                    )),
                    &sink,
                )
                .await
                .unwrap();
            assert!(grid.download(chk(&cap)).await.unwrap().0 == data, "{codec}");
        }
    });
}

#[test]
fn convergence_and_random_keys() {
    rt().block_on(async {
        let grid = MemGrid::new(4).await;
        let data = pseudo_random_bytes(3, 10_000);
        let a = grid.upload(&data, 2, 4, SEG).await;
        let b = grid.upload(&data, 2, 4, SEG).await;
        assert_eq!(
            a, b,
            "convergent uploads of the same data must give the same cap"
        );
        let mut up = grid.uploader(2, 4, SEG);
        up.key_mode = tahoe_core::client::immutable::KeyMode::Random;
        let sink = grid.sink(2, 4);
        let src = std::sync::Arc::new(tahoe_core::client::source::BytesSource(bytes::Bytes::from(
            data.clone(),
        )));
        let r = up.upload(src, &sink).await.unwrap();
        assert_ne!(r, a);
        assert!(grid.download(chk(&r)).await.unwrap().0 == data);
    });
}

/// A key hashed as the bytes go by (a gateway's spool, a file written
/// in order through a mount) is the key the upload's own first pass
/// computes: the caps are equal. The open-ended hasher, made before the
/// size is known, gives a key only for sizes whose segments are the
/// largest (it knows no other tag), and the sized one only for its size.
#[test]
fn keys_hashed_beside_are_the_uploads_own() {
    rt().block_on(async {
        let grid = MemGrid::new(4).await;
        let up = grid.uploader(2, 4, SEG);
        let sink = grid.sink(2, 4);
        for size in [SEG, SEG + 1, 5 * SEG + 7] {
            let data = bytes::Bytes::from(pseudo_random_bytes(size, size as usize));
            let own = grid.upload(&data, 2, 4, SEG).await;
            for open in [false, true] {
                let mut h = if open {
                    up.open_key_hasher().unwrap().unwrap()
                } else {
                    up.key_hasher(size).unwrap().unwrap()
                };
                for piece in data.chunks(1000) {
                    h.update(piece);
                }
                let key = h.finish();
                assert!(key.is_some(), "size {size}, open {open}");
                let src =
                    std::sync::Arc::new(tahoe_core::client::source::BytesSource(data.clone()));
                let cap = up.upload_with(src, key, &sink).await.unwrap();
                assert_eq!(cap, own, "size {size}, open {open}");
            }
        }
        // Below the largest segment the open hasher's tag is not the
        // file's: no key.
        let mut h = up.open_key_hasher().unwrap().unwrap();
        h.update(&pseudo_random_bytes(1, SEG as usize - 1));
        assert!(h.finish().is_none());
        // A sized hasher fed other than its size: no key.
        let mut h = up.key_hasher(2 * SEG).unwrap().unwrap();
        h.update(&pseudo_random_bytes(1, 2 * SEG as usize + 1));
        assert!(h.finish().is_none());
    });
}

#[test]
fn every_choice_of_k_surviving_shares() {
    rt().block_on(async {
        let grid = MemGrid::new(5).await;
        let data = pseudo_random_bytes(11, 3 * SEG as usize + 100);
        let cap = grid.upload(&data, 3, 5, SEG).await;
        let refs = grid.refs();
        for alive in combinations(5, 3) {
            let servers: Vec<_> = alive.iter().map(|&i| refs[i].clone()).collect();
            let (back, _) = grid
                .download_from(chk(&cap), &servers, 0..u64::MAX)
                .await
                .unwrap();
            assert!(
                back == data,
                "download from shares {alive:?} gave wrong data"
            );
        }
        for alive in combinations(5, 2) {
            let servers: Vec<_> = alive.iter().map(|&i| refs[i].clone()).collect();
            let e = grid
                .download_from(chk(&cap), &servers, 0..u64::MAX)
                .await
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::NotEnoughShares, "{e}");
        }
    });
}

/// Flip every byte of every share in turn: each download either returns
/// the right data or fails, never wrong data; a flip in a checked byte of
/// a share the download used gets that share reported (in the download's
/// report, or to its server when the download fails). Shares other than
/// the first k are only read when earlier ones are missing, so each share
/// is tested with the shares before it (but one) made unreachable.
#[test]
fn any_single_corrupt_byte_is_survived_or_refused() {
    use std::sync::atomic::Ordering;
    rt().block_on(async {
        let grid = MemGrid::new(4).await;
        // Two segments, so every section of the share is non-trivial.
        let data = pseudo_random_bytes(5, 300);
        let cap = grid.upload(&data, 2, 4, 256).await;
        let c = chk(&cap).clone();
        let si = c.storage_index();
        let holders: Vec<usize> = {
            let mut h = Vec::new();
            for s in 0..4u8 {
                h.push(grid.holder(&si, s).await);
            }
            h
        };
        let size = *grid.storage[holders[0]]
            .backend()
            .list(&si)
            .await
            .unwrap()
            .first()
            .map(|i| &i.size)
            .unwrap();
        let header = tahoe_core::format::chk::layout::ShareLayout::parse(
            &grid.storage[holders[0]]
                .backend()
                .read(
                    &si,
                    0,
                    tahoe_core::kinds::storage::ShareKind::Immutable,
                    0,
                    0x44,
                )
                .await
                .unwrap(),
            size,
        )
        .unwrap();
        // Bytes no reader checks: the header's informational block and data
        // sizes, and the unused plaintext hash tree; and the sections every
        // share repeats (ciphertext tree, UEB), which are read from share 0
        // only.
        let width = header.field_size();
        let unchecked = |shnum: u8, o: u64| {
            (4..4 + 2 * width).contains(&o)
                || (header.plaintext_hash_tree..header.crypttext_hash_tree).contains(&o)
                || (shnum != 0
                    && ((header.crypttext_hash_tree..header.block_hashes).contains(&o)
                        || o >= header.uri_extension))
        };
        let (mut survived, mut reported) = (0, 0);
        for shnum in 0..4u8 {
            let server = holders[usize::from(shnum)];
            // Share `shnum` among the first two the download opens.
            for before in 1..shnum {
                grid.set_fault(holders[usize::from(before)], Fault::Down);
            }
            for offset in 0..size {
                grid.set_fault(server, Fault::Flip { shnum, offset });
                let advised = grid.servers[server].advised.load(Ordering::SeqCst);
                match grid.download(&c).await {
                    Ok((back, report)) => {
                        assert!(
                            back == data,
                            "flipping byte {offset} of share {shnum} returned wrong data"
                        );
                        let named = report
                            .bad_shares
                            .iter()
                            .any(|b| b.shnum == shnum && b.corrupt);
                        assert_eq!(
                            named,
                            !unchecked(shnum, offset),
                            "flipping byte {offset} of share {shnum}: reported {:?}",
                            report.bad_shares
                        );
                        survived += 1;
                    }
                    Err(e) => {
                        assert!(
                            matches!(e.kind(), ErrorKind::Corrupt | ErrorKind::NotEnoughShares),
                            "flipping byte {offset} of share {shnum}: {e}"
                        );
                        assert!(
                            !unchecked(shnum, offset),
                            "an unchecked byte failed a download"
                        );
                        // No spare share was left: the server is told anyway
                        // (in the background).
                        let mut told = false;
                        for _ in 0..200 {
                            told = grid.servers[server].advised.load(Ordering::SeqCst) > advised;
                            if told {
                                break;
                            }
                            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                        }
                        assert!(
                            told,
                            "flipping byte {offset} of share {shnum}: not reported to its server"
                        );
                        reported += 1;
                    }
                }
            }
            grid.clear_faults();
        }
        assert!(
            survived > 0 && reported > 0,
            "{survived} survived, {reported} refused"
        );
    });
}

#[test]
fn corruption_everywhere_is_refused_not_returned() {
    rt().block_on(async {
        let grid = MemGrid::new(3).await;
        let data = pseudo_random_bytes(6, 5000);
        let cap = grid.upload(&data, 3, 3, 1024).await;
        let c = chk(&cap).clone();
        // With k = n, any bad byte in a checked section must fail the download.
        for offset in [0x24u64, 0x24 + 1023, 0x24 + 1500] {
            grid.set_share_fault(&c.storage_index(), 1, Fault::Flip { shnum: 1, offset })
                .await;
            let e = grid.download(&c).await.unwrap_err();
            assert!(
                matches!(e.kind(), ErrorKind::Corrupt | ErrorKind::NotEnoughShares),
                "{e}"
            );
        }
    });
}

#[test]
fn corruption_is_reported_with_server_and_share() {
    rt().block_on(async {
        let grid = MemGrid::new(5).await;
        let data = pseudo_random_bytes(8, 20_000);
        let cap = grid.upload(&data, 3, 5, SEG).await;
        let c = chk(&cap).clone();
        // A byte inside the first block of primary share 0.
        let si = c.storage_index();
        let h0 = grid.holder(&si, 0).await;
        grid.set_fault(
            h0,
            Fault::Flip {
                shnum: 0,
                offset: 0x24 + 10,
            },
        );
        let (back, report) = grid.download(&c).await.unwrap();
        assert!(back == data);
        let bad: Vec<_> = report
            .bad_shares
            .iter()
            .map(|b| (b.server.as_str(), b.shnum, b.corrupt))
            .collect();
        let name = format!("server-{h0}");
        assert_eq!(
            bad,
            vec![(name.as_str(), 0, true)],
            "{:?}",
            report.bad_shares
        );
        // The server is told (in the background).
        for _ in 0..100 {
            if !grid.storage[h0].corruption_reports().is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(grid.storage[h0].corruption_reports()[0].1, 0);
        // A server that is down is dropped but not called corrupt.
        grid.clear_faults();
        grid.set_fault(grid.holder(&si, 1).await, Fault::Down);
        let (back, report) = grid.download(&c).await.unwrap();
        assert!(back == data);
        assert!(
            report.bad_shares.iter().all(|b| !b.corrupt),
            "{:?}",
            report.bad_shares
        );
    });
}

#[test]
fn truncated_and_foreign_shares() {
    rt().block_on(async {
        let grid = MemGrid::new(4).await;
        let data = pseudo_random_bytes(12, 9000);
        let other = pseudo_random_bytes(13, 9000);
        let cap = grid.upload(&data, 2, 4, SEG).await;
        let other_cap = grid.upload(&other, 2, 4, SEG).await;
        let c = chk(&cap).clone();
        let si = c.storage_index();
        for len in [0u64, 10, 0x24, 0x24 + 100, 5000] {
            for s in [0, 1] {
                grid.set_share_fault(&si, s, Fault::Truncate { shnum: s, len })
                    .await;
            }
            let (back, _) = grid.download(&c).await.unwrap();
            assert!(back == data, "truncated to {len}");
            grid.set_share_fault(&si, 2, Fault::Truncate { shnum: 2, len })
                .await;
            let e = grid.download(&c).await.unwrap_err();
            assert!(
                matches!(e.kind(), ErrorKind::Corrupt | ErrorKind::NotEnoughShares),
                "{e}"
            );
            grid.clear_faults();
        }
        // Servers answering with another file's shares.
        let foreign = chk(&other_cap).storage_index();
        let honest = grid.holder(&si, 3).await;
        for s in (0..4).filter(|&s| s != honest) {
            grid.set_fault(s, Fault::Redirect(foreign));
        }
        let e = grid.download(&c).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotEnoughShares, "{e}");
        grid.set_fault(grid.holder(&si, 2).await, Fault::None);
        let (back, _) = grid.download(&c).await.unwrap_or_else(|e| panic!("{e}"));
        assert!(back == data);
    });
}

#[test]
fn a_cap_with_a_wrong_ueb_hash_finds_nothing() {
    rt().block_on(async {
        let grid = MemGrid::new(4).await;
        let data = pseudo_random_bytes(14, 5000);
        let cap = grid.upload(&data, 2, 4, SEG).await;
        let mut c = chk(&cap).clone();
        c.ueb_hash[0] ^= 1;
        let e = grid.download(&c).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotEnoughShares, "{e}");
        let mut c = chk(&cap).clone();
        c.size += 1;
        assert!(
            grid.download(&c).await.is_err(),
            "a cap with the wrong size must not download"
        );
    });
}

/// Reads made by all of `grid`'s servers so far.
fn reads_so_far(grid: &MemGrid) -> u64 {
    grid.servers
        .iter()
        .map(|s| s.reads.load(std::sync::atomic::Ordering::SeqCst))
        .sum()
}

#[test]
fn ranged_reads_fetch_only_their_segments() {
    rt().block_on(async {
        let grid = MemGrid::new(3).await;
        // Shares of 700 kB, more than are read whole at once.
        let data = pseudo_random_bytes(15, 512 * SEG as usize + 7);
        let cap = grid.upload(&data, 3, 3, SEG).await;
        let c = chk(&cap).clone();
        let refs = grid.refs();
        for (start, end) in [
            (0u64, 1u64),
            (SEG - 1, SEG + 1),
            (5 * SEG + 3, 7 * SEG),
            (512 * SEG, 512 * SEG + 7),
            (17, 17),
        ] {
            let before = reads_so_far(&grid);
            let (back, _) = grid.download_from(&c, &refs, start..end).await.unwrap();
            assert!(
                back[..] == data[start as usize..end as usize],
                "range {start}..{end}"
            );
            let reads = reads_so_far(&grid) - before;
            // Segments are rounded up to a multiple of k: 4098 bytes here.
            let seg = SEG.div_ceil(3) * 3;
            let segments = if end > start {
                (end - 1) / seg - start / seg + 1
            } else {
                0
            };
            // A header and the UEB's tail, the ciphertext tree, and per
            // share its header and trees: nine reads; then one per block.
            assert_eq!(
                reads,
                if segments == 0 { 9 } else { 9 + 3 * segments },
                "range {start}..{end} made {reads} reads for {segments} segments"
            );
        }
        assert!(
            grid.download_from(&c, &refs, c.size + 1..c.size + 2)
                .await
                .is_err()
        );
    });
}

#[test]
fn small_shares_are_read_whole_in_one_call_each() {
    rt().block_on(async {
        let grid = MemGrid::new(3).await;
        let data = pseudo_random_bytes(16, 10 * SEG as usize + 7);
        let cap = grid.upload(&data, 3, 3, SEG).await;
        let c = chk(&cap).clone();
        let refs = grid.refs();
        for (start, end) in [(0u64, c.size), (SEG - 1, SEG + 1), (17, 17)] {
            let before = reads_so_far(&grid);
            let (back, _) = grid.download_from(&c, &refs, start..end).await.unwrap();
            assert!(back[..] == data[start as usize..end as usize]);
            assert_eq!(reads_so_far(&grid) - before, 3, "range {start}..{end}");
        }
    });
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: 24,
        // Failures kept beside this file, as they were when it was a test
        // binary of its own.
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("proptest-regressions"),
        )),
        ..Default::default()
    })]
    #[test]
    fn random_sizes_round_trip(size in 0usize..40_000, k in 1u16..5, extra in 0u16..4, seed in 0u64..1000) {
        let n = k + extra;
        let data = pseudo_random_bytes(seed, size);
        let back = rt().block_on(async {
            let grid = MemGrid::new(n as usize).await;
            let cap = grid.upload(&data, k, n, 3000).await;
            match &cap {
                Cap::Lit(l) => l.data.clone(),
                Cap::Chk(c) => grid.download(c).await.unwrap().0,
                other => unreachable!("an upload made {}", other.kind_name()),
            }
        });
        proptest::prop_assert!(back == data);
    }
}
