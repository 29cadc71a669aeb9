//! Mutable files on an in-process grid: round trips of both formats,
//! writes at an offset that touch only their segments, concurrent writers,
//! and servers that lie (each test plays the attacker against one check).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use tahoe_core::ErrorKind;
use tahoe_core::client::mutable::file::MutableClient;
use tahoe_core::client::source::BytesSource;
use tahoe_core::format::cap::SskWriteCap;
use tahoe_core::format::ssk::MutableFormat;
use tahoe_core::format::ssk::layout::ShareHead;
use tahoe_core::kinds::storage::ShareNum;
use tahoe_core::testing::pseudo_random_bytes;
use testkit::vectors::test_key;
use testkit::{Fault, MemGrid, rt};

fn src(data: &[u8]) -> Arc<BytesSource> {
    Arc::new(BytesSource(Bytes::copy_from_slice(data)))
}

async fn read_all(c: &MutableClient, cap: &SskWriteCap) -> tahoe_core::Result<(Vec<u8>, u64)> {
    let mut out = Vec::new();
    let r = c.read(&cap.read_cap(), 0..u64::MAX, &mut out).await?;
    Ok((out, r.prefix.seqnum))
}

/// An SDMF file written as `old` then `new`, and the slot contents each
/// of the 10 servers held of `old`.
async fn written_twice(
    grid: &MemGrid,
    client: &MutableClient,
    key: usize,
    old: &[u8],
    new: &[u8],
) -> (SskWriteCap, Vec<BTreeMap<ShareNum, Bytes>>) {
    let cap = client
        .create_with_key(test_key(key), MutableFormat::Sdmf, src(old))
        .await
        .unwrap();
    let si = cap.storage_index();
    let v1 = futures::future::join_all((0..10).map(|i| grid.slot_contents(i, &si))).await;
    client.overwrite(&cap, src(new)).await.unwrap();
    (cap, v1)
}

/// An SDMF file written as `old` then `new`, after which servers 0 to 6
/// serve (and keep, whatever is written) the shares of `old`.
async fn seven_rolled_back(
    grid: &MemGrid,
    client: &MutableClient,
    key: usize,
    old: &[u8],
    new: &[u8],
) -> SskWriteCap {
    let (cap, v1) = written_twice(grid, client, key, old, new).await;
    for (i, shares) in v1.into_iter().enumerate().take(7) {
        grid.set_fault(i, Fault::Stale(shares));
    }
    cap
}

/// Bytes the grid's servers have read from mutable shares so far.
fn slot_bytes_read(grid: &MemGrid) -> u64 {
    grid.servers
        .iter()
        .map(|s| s.slot_read_bytes.load(Ordering::SeqCst))
        .sum()
}

/// 10 servers, 3-of-10, MDMF segments of 999 bytes.
async fn setup() -> (MemGrid, MutableClient) {
    let grid = MemGrid::new(10).await;
    let client = grid.mutable_client(3, 10, 999);
    (grid, client)
}

#[test]
fn both_formats_round_trip_and_overwrite() {
    rt().block_on(async {
        let (_grid, client) = setup().await;
        for (i, format) in [MutableFormat::Sdmf, MutableFormat::Mdmf]
            .into_iter()
            .enumerate()
        {
            for (j, size) in [0usize, 1, 56, 5000, 20_001].into_iter().enumerate() {
                let data = pseudo_random_bytes((i * 10 + j) as u64, size);
                let cap = client
                    .create_with_key(test_key(i * 10 + j), format, src(&data))
                    .await
                    .unwrap();
                assert_eq!(cap.format, format);
                assert_eq!(read_all(&client, &cap).await.unwrap(), (data.clone(), 1));
                // Ranges, including ones across segment boundaries and past
                // the end.
                for (a, b) in [
                    (0u64, 1u64),
                    (998, 1001),
                    (size as u64 / 2, u64::MAX),
                    (7, 3),
                ] {
                    let mut out = Vec::new();
                    client.read(&cap.read_cap(), a..b, &mut out).await.unwrap();
                    let (a, b) = (
                        a.min(size as u64) as usize,
                        b.min(size as u64).max(a.min(size as u64)) as usize,
                    );
                    assert_eq!(out, &data[a..b.max(a)], "{format:?} {size} {a}..{b}");
                }
                let newer = pseudo_random_bytes(99, size / 2 + 3);
                client.overwrite(&cap, src(&newer)).await.unwrap();
                assert_eq!(read_all(&client, &cap).await.unwrap(), (newer, 2));
            }
        }
    });
}

#[test]
fn an_overwrite_keeps_the_files_shape() {
    rt().block_on(async {
        let (grid, client) = setup().await;
        // Made 2-of-5; overwritten by a client whose own shape is 3-of-10
        // (and which starts encoding in that shape before it knows).
        let other = grid.mutable_client(2, 5, 999);
        for format in [MutableFormat::Sdmf, MutableFormat::Mdmf] {
            let cap = other
                .create(format, src(&pseudo_random_bytes(40, 5_000)))
                .await
                .unwrap();
            let new = pseudo_random_bytes(41, 7_000);
            client.overwrite(&cap, src(&new)).await.unwrap();
            assert_eq!(read_all(&client, &cap).await.unwrap(), (new, 2));
            let map = client.servermap_of(&cap.read_cap()).await;
            let (prefix, _) = map.best().unwrap().unwrap();
            assert_eq!((prefix.k, prefix.n), (2, 5), "{format:?}");
        }
    });
}

#[test]
fn writes_at_an_offset_touch_only_their_segments() {
    rt().block_on(async {
        let (grid, client) = setup().await;
        let mut data = pseudo_random_bytes(1, 100_000);
        let cap = client
            .create_with_key(test_key(30), MutableFormat::Mdmf, src(&data))
            .await
            .unwrap();
        let si = cap.storage_index();
        let before: Vec<_> =
            futures::future::join_all((0..10).map(|i| grid.slot_contents(i, &si))).await;
        let written = |g: &MemGrid| -> u64 {
            g.servers
                .iter()
                .map(|s| s.slot_written_bytes.load(Ordering::SeqCst))
                .sum()
        };
        let w0 = written(&grid);
        client
            .write_at(&cap, 50_000, Bytes::from_static(b"hello"))
            .await
            .unwrap();
        data[50_000..50_005].copy_from_slice(b"hello");
        assert_eq!(read_all(&client, &cap).await.unwrap(), (data.clone(), 2));
        // Per share: one block, the header, chain, signature and the
        // touched leaf's path in the block hash tree; far less than the
        // 44 KB each share holds.
        let sent = written(&grid) - w0;
        assert!(sent < 10 * 1_500, "a 5-byte write sent {sent} bytes");
        // Blocks of every other segment are byte for byte what they were.
        let after: Vec<_> =
            futures::future::join_all((0..10).map(|i| grid.slot_contents(i, &si))).await;
        for (b, a) in before.iter().zip(&after) {
            for (shnum, old) in b {
                let new = &a[shnum];
                let head = ShareHead::parse(new).unwrap();
                let geo = head.prefix.geometry();
                let touched = 50_000 / 999;
                for seg in (0..geo.segments).filter(|&s| s != touched) {
                    let at = (head.offsets.share_data.start + geo.block_offset(seg)) as usize;
                    let len = 16 + geo.block_len(seg) as usize;
                    assert_eq!(
                        new[at..at + len],
                        old[at..at + len],
                        "segment {seg} changed"
                    );
                }
            }
        }
        // Appending past the end (with a gap) and at the very end.
        client
            .write_at(&cap, 120_000, Bytes::from_static(b"tail"))
            .await
            .unwrap();
        data.resize(120_000, 0);
        data.extend_from_slice(b"tail");
        assert_eq!(read_all(&client, &cap).await.unwrap(), (data.clone(), 3));
        client
            .write_at(&cap, data.len() as u64, Bytes::from_static(b"!"))
            .await
            .unwrap();
        data.push(b'!');
        assert_eq!(read_all(&client, &cap).await.unwrap(), (data.clone(), 4));
        // SDMF is one segment: rewritten whole, same result.
        let small = pseudo_random_bytes(2, 3000);
        let sdmf = client
            .create_with_key(test_key(31), MutableFormat::Sdmf, src(&small))
            .await
            .unwrap();
        client
            .write_at(&sdmf, 10, Bytes::from_static(b"xyz"))
            .await
            .unwrap();
        let mut expect = small.clone();
        expect[10..13].copy_from_slice(b"xyz");
        assert_eq!(read_all(&client, &sdmf).await.unwrap(), (expect, 2));
    });
}

#[test]
fn ranged_reads_fetch_only_their_segments() {
    rt().block_on(async {
        let (grid, client) = setup().await;
        let data = pseudo_random_bytes(3, 200_000);
        let cap = client
            .create_with_key(test_key(32), MutableFormat::Mdmf, src(&data))
            .await
            .unwrap();
        let r0 = slot_bytes_read(&grid);
        let mut out = Vec::new();
        client
            .read(&cap.read_cap(), 150_000..150_010, &mut out)
            .await
            .unwrap();
        assert_eq!(out, &data[150_000..150_010]);
        // The servermap's 4 KiB per share, one block tree per share read
        // (200 segments: 511 nodes), and one 349-byte block from each of
        // three shares: nowhere near the 67 KB a share holds.
        let got = slot_bytes_read(&grid) - r0;
        assert!(
            got < 10 * 4096 + 3 * (511 * 32 + 400),
            "a 10-byte read fetched {got} bytes"
        );
    });
}

#[test]
fn a_stale_writer_is_detected_not_obeyed() {
    rt().block_on(async {
        let (_grid, client) = setup().await;
        let cap = client
            .create_with_key(test_key(33), MutableFormat::Sdmf, src(b"version one"))
            .await
            .unwrap();
        // Writer A reads the servermap; writer B overwrites; A publishes
        // on its stale map and must be told, leaving B's version whole.
        let stale = client.servermap_of(&cap.read_cap()).await;
        client.overwrite(&cap, src(b"B's version")).await.unwrap();
        let keys = tahoe_core::client::mutable::publish::WriteKeys::new(
            test_key(33),
            MutableFormat::Sdmf,
            client.cipher.as_ref(),
        )
        .unwrap();
        let publisher = tahoe_core::client::mutable::publish::Publisher {
            codec: (client.codecs)(
                "crs",
                tahoe_core::kinds::codec::CodecParams::new(3, 10).unwrap(),
            )
            .unwrap(),
            cipher: client.cipher.clone(),
            secret: tahoe_core::client::secrets::ClientSecret::random().unwrap(),
            happy: 10,
        };
        let geo = tahoe_core::format::ssk::layout::Geometry::new(MutableFormat::Sdmf, 3, 12, 11);
        let data = Bytes::from_static(b"A's version");
        let plan = tahoe_core::client::mutable::publish::Plan {
            geo,
            segments: 0..1,
            salts: vec![[7; 16]],
            source: Arc::new(move |_| Ok(data.to_vec())),
            kept_leaves: None,
            targets: None,
            in_place: false,
            seqnum: 2,
            read_key: keys.read_key,
        };
        let err = publisher.publish(&stale, &keys, plan).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
        assert_eq!(
            read_all(&client, &cap).await.unwrap(),
            (b"B's version".to_vec(), 2)
        );
    });
}

#[test]
fn a_writer_whose_shares_are_replaced_after_its_servermap_retries() {
    rt().block_on(async {
        let (grid, client) = setup().await;
        // 20,000 bytes in 3-of-10 SDMF: shares of about 6.7 KB, whose
        // encrypted private key (after the share data) lies past the
        // servermap's first read, so the writer reads it in a second call.
        // Another writer replaces every share with a version of another
        // size, so the private key now sits at another offset...
        let old = pseudo_random_bytes(1, 20_000);
        let (cap, v1) = written_twice(&grid, &client, 36, &old, b"short").await;
        // ...after this writer's servermap saw the old layout.
        for (i, shares) in v1.into_iter().enumerate() {
            grid.set_fault(i, Fault::StaleOnce(shares));
        }
        // The key read at the old offsets is garbage: that is a race to
        // retry, not a corrupt file.
        client.overwrite(&cap, src(b"third")).await.unwrap();
        assert_eq!(
            read_all(&client, &cap).await.unwrap(),
            (b"third".to_vec(), 3)
        );
    });
}

#[test]
fn a_writer_that_meets_a_publish_under_way_retries() {
    rt().block_on(async {
        let (grid, client) = setup().await;
        let (cap, v1) = written_twice(&grid, &client, 37, b"one", b"two").await;
        // What a servermap sees while another writer publishes version 2:
        // two servers still hold version 1, two already hold version 2,
        // and the rest are being written (no share yet, as this fault
        // shows them). Neither version is recoverable from that.
        for (i, shares) in v1.into_iter().enumerate() {
            match i {
                0 | 1 => grid.set_fault(i, Fault::StaleOnce(shares)),
                2 | 3 => {}
                _ => grid.set_fault(i, Fault::StaleOnce(Default::default())),
            }
        }
        let append = |old: &[u8]| -> tahoe_core::Result<Option<Vec<u8>>> {
            Ok(Some([old, b" three"].concat()))
        };
        // The writer looks again, sees the file change, and goes on.
        client.modify(&cap, &append).await.unwrap();
        assert_eq!(
            read_all(&client, &cap).await.unwrap(),
            (b"two three".to_vec(), 3)
        );
    });
}

#[test]
fn concurrent_writers_serialize_and_readers_never_see_a_mix() {
    rt().block_on(async {
        let (grid, client) = setup().await;
        let cap = client
            .create_with_key(
                test_key(34),
                MutableFormat::Mdmf,
                src(&pseudo_random_bytes(0, 20_000)),
            )
            .await
            .unwrap();
        let versions: Vec<Vec<u8>> = (1..=4).map(|s| pseudo_random_bytes(s, 20_000)).collect();
        let writers = (0..4).map(|i| {
            let c = grid.mutable_client(3, 10, 999);
            let (cap, data) = (cap.clone(), versions[i].clone());
            tokio::spawn(async move { c.overwrite(&cap, src(&data)).await })
        });
        let reader = {
            let c = grid.mutable_client(3, 10, 999);
            let cap = cap.clone();
            let mut allowed = versions.clone();
            allowed.push(pseudo_random_bytes(0, 20_000));
            tokio::spawn(async move {
                let mut reads = 0;
                for _ in 0..30 {
                    let mut out = Vec::new();
                    // A read may fail while writers race (no version
                    // recoverable for a moment); it must never return a mix.
                    if c.read(&cap.read_cap(), 0..u64::MAX, &mut out).await.is_ok() {
                        assert!(allowed.contains(&out), "a reader saw a mix of versions");
                        reads += 1;
                    }
                }
                reads
            })
        };
        for w in writers {
            w.await.unwrap().unwrap();
        }
        assert!(reader.await.unwrap() > 0);
        let (last, seqnum) = read_all(&client, &cap).await.unwrap();
        assert!(versions.contains(&last));
        assert!(
            seqnum >= 5,
            "four overwrites after the first version: seqnum {seqnum}"
        );
    });
}

#[test]
fn modify_retries_and_loses_no_update() {
    rt().block_on(async {
        let (grid, client) = setup().await;
        let cap = client
            .create_with_key(test_key(35), MutableFormat::Sdmf, src(b""))
            .await
            .unwrap();
        let tasks = (0..5u8).map(|i| {
            let c = grid.mutable_client(3, 10, 999);
            let cap = cap.clone();
            tokio::spawn(async move {
                c.modify(&cap, &move |old: &[u8]| {
                    let mut v = old.to_vec();
                    v.push(b'a' + i);
                    Ok(Some(v))
                })
                .await
            })
        });
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let (mut got, _) = read_all(&client, &cap).await.unwrap();
        got.sort();
        assert_eq!(got, b"abcde");
    });
}

#[test]
fn a_change_after_a_change_reads_back_nothing_but_another_writers_version_is_read() {
    rt().block_on(async {
        let (grid, client) = setup().await;
        let data = pseudo_random_bytes(4, 200_000);
        let cap = client
            .create_with_key(test_key(36), MutableFormat::Mdmf, src(&data))
            .await
            .unwrap();
        let append = |b: u8| {
            move |old: &[u8]| {
                let mut v = old.to_vec();
                v.push(b);
                Ok(Some(v))
            }
        };
        // The first change reads the file: three shares of 67 KB or so.
        let r0 = slot_bytes_read(&grid);
        client.modify(&cap, &append(b'a')).await.unwrap();
        let first = slot_bytes_read(&grid) - r0;
        assert!(first > 3 * 60_000, "the first change read {first} bytes");
        // The second finds the version it wrote in its servermap and reads
        // no more than the servermap does (4 KiB a share).
        let r1 = slot_bytes_read(&grid);
        client.modify(&cap, &append(b'b')).await.unwrap();
        let second = slot_bytes_read(&grid) - r1;
        assert!(second <= 10 * 4096, "the second change read {second} bytes");
        // Another writer (its own client) changes the file: this client's
        // next change must read that version, not build on its own.
        let other = grid.mutable_client(3, 10, 999);
        other.modify(&cap, &append(b'c')).await.unwrap();
        let r2 = slot_bytes_read(&grid);
        client.modify(&cap, &append(b'd')).await.unwrap();
        assert!(slot_bytes_read(&grid) - r2 > 3 * 60_000);
        let (got, _) = read_all(&other, &cap).await.unwrap();
        let mut expected = data.clone();
        expected.extend_from_slice(b"abcd");
        assert_eq!(got, expected);
    });
}

#[test]
fn bad_signatures_wrong_keys_and_truncated_prefixes_are_skipped() {
    rt().block_on(async {
        let (grid, client) = setup().await;
        let data = pseudo_random_bytes(5, 5000);
        let cap = client
            .create_with_key(test_key(36), MutableFormat::Sdmf, src(&data))
            .await
            .unwrap();
        let si = cap.storage_index();
        let (shnum, head) = grid.mutable_head(0, &si).await;
        // A flipped signature byte, a flipped prefix byte (the signature no
        // longer covers it), a truncated prefix, a flipped key byte.
        let faults = [
            Fault::Flip {
                shnum,
                offset: head.offsets.signature.start + 5,
            },
            Fault::Flip { shnum, offset: 20 },
            Fault::Truncate { shnum, len: 60 },
            Fault::Flip {
                shnum,
                offset: head.offsets.verification_key.start + 40,
            },
        ];
        for fault in faults {
            grid.set_fault(0, fault.clone());
            let mut out = Vec::new();
            let r = client
                .read(&cap.read_cap(), 0..u64::MAX, &mut out)
                .await
                .unwrap();
            assert_eq!(out, data, "{fault:?}");
            assert_eq!(r.bad_shares.len(), 1, "{fault:?}: {:?}", r.bad_shares);
        }
        // A server serving a share signed by another key (its own file's
        // share under this storage index) is refused for that.
        let other = client
            .create_with_key(test_key(37), MutableFormat::Sdmf, src(&data))
            .await
            .unwrap();
        let forged = grid.slot_contents(0, &other.storage_index()).await;
        for s in 0..3 {
            grid.set_fault(s, Fault::Stale(forged.clone()));
        }
        let mut out = Vec::new();
        let r = client
            .read(&cap.read_cap(), 0..u64::MAX, &mut out)
            .await
            .unwrap();
        assert_eq!(out, data);
        assert!(
            r.bad_shares
                .iter()
                .any(|b| b.reason.contains("not the cap's")),
            "{:?}",
            r.bad_shares
        );
        // Every share broken: a clear error, no panic, no data.
        for s in 0..10 {
            grid.set_fault(s, Fault::Truncate { shnum: 255, len: 0 });
            let contents = grid.slot_contents(s, &si).await;
            let sh = *contents.keys().next().unwrap();
            grid.set_fault(
                s,
                Fault::Flip {
                    shnum: sh,
                    offset: head.offsets.signature.start,
                },
            );
        }
        let err = read_all(&client, &cap).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotEnoughShares, "{err}");
        assert!(err.message().contains("signature"), "{err}");
    });
}

#[test]
fn corrupt_blocks_and_chains_that_miss_the_root_are_dropped() {
    rt().block_on(async {
        let (grid, client) = setup().await;
        let data = pseudo_random_bytes(6, 30_000);
        let cap = client
            .create_with_key(test_key(38), MutableFormat::Mdmf, src(&data))
            .await
            .unwrap();
        let si = cap.storage_index();
        for s in 0..10 {
            let (shnum, head) = grid.mutable_head(s, &si).await;
            let o = &head.offsets;
            // Alternate: a block byte, a share hash chain byte, a block
            // hash tree byte; 7 of 10 servers lie, 3 honest ones remain.
            let at = match s % 3 {
                0 => o.share_data.start + 100,
                1 => o.share_hash_chain.start + 10,
                _ => o.block_hash_tree.start + 3,
            };
            if s < 7 {
                grid.set_fault(s, Fault::Flip { shnum, offset: at });
            }
        }
        let mut out = Vec::new();
        let r = client
            .read(&cap.read_cap(), 0..u64::MAX, &mut out)
            .await
            .unwrap();
        assert_eq!(out, data);
        assert!(
            r.bad_shares
                .iter()
                .any(|b| b.reason.contains("signed root")),
            "{:?}",
            r.bad_shares
        );
        assert!(
            r.bad_shares.iter().any(|b| b.reason.contains("hash")),
            "{:?}",
            r.bad_shares
        );
        // One more liar: only two honest shares, a clear error.
        let (shnum, head) = grid.mutable_head(7, &si).await;
        grid.set_fault(
            7,
            Fault::Flip {
                shnum,
                offset: head.offsets.share_data.start + 20,
            },
        );
        let err = read_all(&client, &cap).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotEnoughShares, "{err}");
    });
}

#[test]
fn rolled_back_servers_do_not_roll_back_readers() {
    rt().block_on(async {
        let (grid, client) = setup().await;
        // Seven of ten servers serve the old version (and swallow writes):
        // three hold the new one, enough to recover it, so it wins.
        let cap = seven_rolled_back(&grid, &client, 39, b"old", b"new").await;
        let si = cap.storage_index();
        assert_eq!(read_all(&client, &cap).await.unwrap(), (b"new".to_vec(), 2));
        // A newer version held by a majority that cannot be delivered (its
        // blocks are corrupt on six servers) is not quietly replaced by an
        // older one.
        grid.clear_faults();
        client.overwrite(&cap, src(b"newest")).await.unwrap();
        for s in 0..10 {
            let (shnum, head) = grid.mutable_head(s, &si).await;
            if s < 8 {
                grid.set_fault(
                    s,
                    Fault::Flip {
                        shnum,
                        offset: head.offsets.share_data.start,
                    },
                );
            }
        }
        let err = read_all(&client, &cap).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotEnoughShares, "{err}");
    });
}

#[test]
fn a_failed_publish_leaves_the_previous_version_readable() {
    rt().block_on(async {
        let (grid, client) = setup().await;
        let data = pseudo_random_bytes(7, 10_000);
        let cap = client
            .create_with_key(test_key(40), MutableFormat::Mdmf, src(&data))
            .await
            .unwrap();
        // All servers but one fail every write: the first phase cannot
        // make the new version recoverable, so the publish stops before
        // it touches the servers keeping k old shares.
        for s in 0..9 {
            grid.set_fault(s, Fault::FailWrites);
        }
        let err = client.overwrite(&cap, src(b"doomed")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unhappy, "{err}");
        grid.clear_faults();
        assert_eq!(read_all(&client, &cap).await.unwrap(), (data, 1));
        // And a write then works, above every sequence number seen.
        client.overwrite(&cap, src(b"fine")).await.unwrap();
        assert_eq!(read_all(&client, &cap).await.unwrap().0, b"fine");
    });
}

#[test]
fn caps_of_the_wrong_kind_and_missing_files_are_clear_errors() {
    rt().block_on(async {
        let (_grid, client) = setup().await;
        // A file nobody wrote.
        let cap = test_key(41).write_cap(MutableFormat::Mdmf);
        let err = read_all(&client, &cap).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
        let err = client.overwrite(&cap, src(b"x")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
        // An SDMF cap for shares that are MDMF: the shares are refused.
        let made = client
            .create_with_key(test_key(42), MutableFormat::Mdmf, src(b"mdmf"))
            .await
            .unwrap();
        let wrong = SskWriteCap {
            format: MutableFormat::Sdmf,
            ..made.clone()
        };
        let err = read_all(&client, &wrong).await.unwrap_err();
        assert!(
            err.message().contains("MDMF") || err.message().contains("mdmf"),
            "{err}"
        );
        // A write cap whose key does not open the stored private key.
        let mut forged = made.clone();
        forged.write_key[0] ^= 1;
        assert!(client.overwrite(&forged, src(b"x")).await.is_err());
        // Creating over an existing file is refused.
        let err = client
            .create_with_key(test_key(42), MutableFormat::Mdmf, src(b"again"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    });
}

#[test]
fn a_newer_version_a_minority_cannot_deliver_is_skipped() {
    rt().block_on(async {
        let (grid, client) = setup().await;
        // Seven servers went back to version one; the three holding version
        // two (k of them: it looks recoverable, signatures and all) serve
        // broken blocks. A minority offering what it cannot deliver does
        // not make the file unreadable: the reader falls back, and says so.
        let cap = seven_rolled_back(&grid, &client, 43, b"version one", b"version two").await;
        let si = cap.storage_index();
        for s in 7..10 {
            let (shnum, head) = grid.mutable_head(s, &si).await;
            grid.set_fault(
                s,
                Fault::Flip {
                    shnum,
                    offset: head.offsets.share_data.start,
                },
            );
        }
        let mut out = Vec::new();
        let r = client
            .read(&cap.read_cap(), 0..u64::MAX, &mut out)
            .await
            .unwrap();
        assert_eq!(out, b"version one");
        assert_eq!(r.prefix.seqnum, 1);
        assert!(
            r.bad_shares
                .iter()
                .any(|b| b.reason.contains("version 2 undeliverable")),
            "{:?}",
            r.bad_shares
        );
    });
}
