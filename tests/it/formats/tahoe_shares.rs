//! Our immutable shares are the bytes Tahoe-LAFS 1.20 writes.
//!
//! `tests/data/tahoe-chk-shares.json` was made by the real Tahoe-LAFS 1.20
//! library (`scripts/gen_tahoe_chk_shares.py`): for each case, the data
//! (from a seed), the parameters and convergence secret, the cap, and the
//! size and SHA-256 of every share it wrote, with share 0 (or its ends) in
//! full. Here the same file goes through our upload pipeline, the sink
//! production uses and real storage servers, and the shares are read back
//! from the servers' backends and compared byte for byte.

use base64::Engine as _;
use sha2::{Digest, Sha256};
use tahoe_core::client::immutable::KeyMode;
use tahoe_core::kinds::storage::ShareKind;
use tahoe_core::testing::pseudo_random_bytes;
use testkit::MemGrid;
use testkit::vectors::{hex, unhex};

#[test]
fn shares_are_the_bytes_tahoe_writes() {
    let text = std::fs::read_to_string("tests/data/tahoe-chk-shares.json").unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let cases = doc["cases"].as_array().unwrap();
    assert!(cases.len() >= 7);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let num = |k: &str| case[k].as_u64().unwrap();
        let (k, n) = (num("k") as u16, num("n") as u16);
        let data = pseudo_random_bytes(num("seed"), num("size") as usize);
        rt.block_on(async {
            let grid = MemGrid::new(usize::from(n)).await;
            let mut up = grid.uploader(k, n, num("max_segment_size"));
            up.key_mode = KeyMode::Convergent(unhex(case["convergence_hex"].as_str().unwrap()));
            let cap = up
                .upload(
                    std::sync::Arc::new(tahoe_core::client::source::BytesSource(
                        bytes::Bytes::from(data.clone()),
                    )),
                    &grid.sink(k, n),
                )
                .await
                .unwrap();
            assert_eq!(
                cap.to_string(),
                case["cap"].as_str().unwrap(),
                "case {name}"
            );
            let si = testkit::vectors::chk(&cap).storage_index();
            for (shnum, want) in case["shares"].as_object().unwrap() {
                let shnum: u8 = shnum.parse().unwrap();
                let server = grid.holder(&si, shnum).await;
                let ours = grid.storage[server]
                    .backend()
                    .read(&si, shnum, ShareKind::Immutable, 0, u64::MAX)
                    .await
                    .unwrap();
                assert_eq!(
                    ours.len() as u64,
                    want["size"].as_u64().unwrap(),
                    "case {name} share {shnum}: size"
                );
                if shnum == 0 {
                    let head = case
                        .get("share0_b64")
                        .or_else(|| case.get("share0_head_b64"))
                        .unwrap();
                    let head = b64.decode(head.as_str().unwrap()).unwrap();
                    assert!(
                        ours[..head.len()] == head[..],
                        "case {name} share 0 differs from Tahoe's (first difference at byte {:?})",
                        ours.iter().zip(&head).position(|(a, b)| a != b)
                    );
                    if let Some(tail) = case.get("share0_tail_b64") {
                        let tail = b64.decode(tail.as_str().unwrap()).unwrap();
                        assert!(
                            ours[ours.len() - tail.len()..] == tail[..],
                            "case {name}: tail"
                        );
                    }
                }
                assert_eq!(
                    hex(&Sha256::digest(&ours)),
                    want["sha256"].as_str().unwrap(),
                    "case {name} share {shnum}: bytes differ from Tahoe's"
                );
            }
        });
    }
}
