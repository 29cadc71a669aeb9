//! The storage server's protocol rules over a real (memory) backend.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use tahoe_core::ErrorKind;
use tahoe_core::protocol::{AllocateRequest, SlotSecrets, SlotWrite, StorageService};
use tahoe_core::server::{ServerConfig, StorageServer};
use tahoe_core::storage::{StorageIndex, TestVector, WriteVector};
use tahoe_storage_memory::MemoryBackend;

fn server(config: ServerConfig, capacity: Option<u64>) -> StorageServer {
    StorageServer::new(Arc::new(MemoryBackend::new(capacity)), config)
}

fn req(shares: Vec<u8>, size: u64) -> AllocateRequest {
    AllocateRequest {
        storage_index: StorageIndex([4; 16]),
        share_numbers: shares,
        share_size: size,
        renew_secret: [1; 32],
        cancel_secret: [2; 32],
        upload_secret: [3; 32],
    }
}

#[tokio::test]
async fn immutable_buckets() {
    let s = server(ServerConfig::default(), None);
    let si = StorageIndex([4; 16]);
    let r = s.allocate_buckets(req(vec![0, 1], 4)).await.unwrap();
    assert_eq!(r.allocated, vec![0, 1]);
    // Another uploader is not given shares being uploaded.
    assert!(
        s.allocate_buckets(req(vec![0], 4))
            .await
            .unwrap()
            .allocated
            .is_empty()
    );
    let e = s
        .write_bucket(si, 0, [9; 32], 0, Bytes::from_static(b"abcd"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    s.write_bucket(si, 0, [3; 32], 0, Bytes::from_static(b"abcd"))
        .await
        .unwrap();
    assert!(
        s.list_buckets(si).await.unwrap().is_empty(),
        "unsealed shares are not listed"
    );
    s.close_bucket(si, 0, [3; 32]).await.unwrap();
    s.abort_bucket(si, 1, [3; 32]).await.unwrap();
    assert_eq!(
        s.list_buckets(si)
            .await
            .unwrap()
            .into_iter()
            .collect::<Vec<_>>(),
        vec![(0, 4)]
    );
    assert_eq!(&s.read_bucket(si, 0, 1, 10).await.unwrap()[..], b"bcd");
    let again = s.allocate_buckets(req(vec![0, 1], 4)).await.unwrap();
    assert_eq!((again.already_have, again.allocated), (vec![0], vec![1]));
}

#[tokio::test]
async fn readonly_and_reserved_space_refuse_new_shares() {
    let ro = server(
        ServerConfig {
            readonly: true,
            ..Default::default()
        },
        None,
    );
    assert!(
        ro.allocate_buckets(req(vec![0], 10))
            .await
            .unwrap()
            .allocated
            .is_empty()
    );
    assert!(ro.version().await.unwrap().readonly);
    let tight = server(
        ServerConfig {
            reserved_space: 900,
            ..Default::default()
        },
        Some(1000),
    );
    assert!(
        tight
            .allocate_buckets(req(vec![0], 200))
            .await
            .unwrap()
            .allocated
            .is_empty()
    );
    assert_eq!(
        tight
            .allocate_buckets(req(vec![0], 100))
            .await
            .unwrap()
            .allocated,
        vec![0]
    );
}

fn write(offset: u64, data: &'static [u8]) -> SlotWrite {
    SlotWrite {
        tests: vec![],
        writes: vec![WriteVector {
            offset,
            data: Bytes::from_static(data),
        }],
        new_length: None,
    }
}

#[tokio::test]
async fn mutable_slots_are_guarded_by_the_write_enabler() {
    let s = server(ServerConfig::default(), None);
    let si = StorageIndex([5; 16]);
    let secrets = |we: u8| SlotSecrets {
        write_enabler: [we; 32],
        renew_secret: [1; 32],
        cancel_secret: [2; 32],
    };
    let mut w = BTreeMap::new();
    w.insert(0, write(0, b"version one"));
    w.insert(1, write(0, b"other share"));
    let (ok, reads) = s
        .slot_testv_and_readv_and_writev(si, secrets(7), w, vec![(0, 7)])
        .await
        .unwrap();
    assert!(ok);
    assert!(reads.is_empty(), "reads show the slot before the writes");
    let got = s
        .slot_readv(si, vec![], vec![(0, 7), (8, 3)])
        .await
        .unwrap();
    assert_eq!(
        got[&0],
        vec![Bytes::from_static(b"version"), Bytes::from_static(b"one")]
    );
    assert_eq!(got.len(), 2);
    // The wrong enabler changes nothing.
    let mut w = BTreeMap::new();
    w.insert(0, write(0, b"HIJACKED"));
    let e = s
        .slot_testv_and_readv_and_writev(si, secrets(8), w, vec![])
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    // A failing test changes nothing, and returns the reads.
    let mut w = BTreeMap::new();
    w.insert(
        0,
        SlotWrite {
            tests: vec![TestVector {
                offset: 0,
                expected: Bytes::from_static(b"version two"),
            }],
            writes: vec![WriteVector {
                offset: 0,
                data: Bytes::from_static(b"version three"),
            }],
            new_length: None,
        },
    );
    let (ok, reads) = s
        .slot_testv_and_readv_and_writev(si, secrets(7), w, vec![(0, 11)])
        .await
        .unwrap();
    assert!(!ok);
    assert_eq!(reads[&0], vec![Bytes::from_static(b"version one")]);
    // A passing test writes.
    let mut w = BTreeMap::new();
    w.insert(
        0,
        SlotWrite {
            tests: vec![TestVector {
                offset: 0,
                expected: Bytes::from_static(b"version one"),
            }],
            writes: vec![WriteVector {
                offset: 8,
                data: Bytes::from_static(b"two"),
            }],
            new_length: Some(11),
        },
    );
    assert!(
        s.slot_testv_and_readv_and_writev(si, secrets(7), w, vec![])
            .await
            .unwrap()
            .0
    );
    assert_eq!(
        s.slot_readv(si, vec![0], vec![(0, 100)]).await.unwrap()[&0][0],
        Bytes::from_static(b"version two")
    );
    // Mutable shares are not immutable buckets.
    assert!(s.list_buckets(si).await.unwrap().is_empty());
}

/// One call carries at most MAX_CALL_DATA bytes of share data, whatever
/// the peer asks, so a read of a huge range cannot make the server allocate
/// the whole share; the chunked helpers move more in several calls.
#[tokio::test]
async fn calls_carry_bounded_data_and_the_helpers_split_larger_transfers() {
    use tahoe_core::protocol::{MAX_CALL_DATA, read_bucket_chunked, write_bucket_chunked};
    let s = server(ServerConfig::default(), None);
    let si = StorageIndex([4; 16]);
    let size = 2 * MAX_CALL_DATA + 5;
    s.allocate_buckets(req(vec![0], size)).await.unwrap();
    let too_big = Bytes::from(vec![1u8; MAX_CALL_DATA as usize + 1]);
    let e = s
        .write_bucket(si, 0, [3; 32], 0, too_big)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    write_bucket_chunked(&s, si, 0, [3; 32], 0, Bytes::from(data.clone()))
        .await
        .unwrap();
    s.close_bucket(si, 0, [3; 32]).await.unwrap();
    for len in [MAX_CALL_DATA + 1, u64::MAX] {
        let e = s.read_bucket(si, 0, 0, len).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    }
    let all = read_bucket_chunked(&s, si, 0, 0, size).await.unwrap();
    assert_eq!(&all[..], &data[..]);
    // Short at the end, like a single read.
    let tail = read_bucket_chunked(&s, si, 0, 3, u64::MAX).await.unwrap();
    assert_eq!(&tail[..], &data[3..]);
}
