//! The parsers of everything a node reads from outside (caps from users,
//! UEBs and share headers from servers) given arbitrary and mutated input:
//! an error or a value, never a panic or an absurd allocation; a cap that
//! parses prints back exactly.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use proptest::prelude::*;
use tahoe_core::cap::Cap;
use tahoe_core::codec::{Codec, CodecParams};
use tahoe_core::immutable::plan::SharePlan;
use tahoe_core::layout::{ShareLayout, parse_share_hashes};
use tahoe_core::ueb::Ueb;
use tahoe_core::{ErrorKind, base32};

fn codec(k: u16, n: u16) -> Box<dyn Codec> {
    Box::new(
        tahoe_codec_crs::Crs::new(
            CodecParams::new(k, n).unwrap(),
            tahoe_gf256::Kernel::detect(),
        )
        .unwrap(),
    )
}

/// A valid UEB for a file of `size` bytes in segments of `segment_size`.
fn ueb_text(size: u64, segment_size: u64, num_segments: u64, tail: u64, k: u16, n: u16) -> Vec<u8> {
    let mut out = Vec::new();
    let mut field = |key: &str, value: &[u8]| {
        out.extend_from_slice(key.as_bytes());
        out.push(b':');
        out.extend_from_slice(&tahoe_core::hash::netstring(value));
    };
    field("codec_name", b"crs");
    field("codec_params", format!("{segment_size}-{k}-{n}").as_bytes());
    field("crypttext_hash", &[1; 32]);
    field("crypttext_root_hash", &[2; 32]);
    field("needed_shares", k.to_string().as_bytes());
    field("num_segments", num_segments.to_string().as_bytes());
    field("segment_size", segment_size.to_string().as_bytes());
    field("share_root_hash", &[3; 32]);
    field("size", size.to_string().as_bytes());
    field("tail_codec_params", format!("{tail}-{k}-{n}").as_bytes());
    field("total_shares", n.to_string().as_bytes());
    out
}

/// What a downloader does with a UEB that matched its cap: plan the file.
/// Must end in a plan or an error.
fn plan_from(ueb: &Ueb) -> tahoe_core::Result<SharePlan> {
    ueb.codec_params()?;
    SharePlan::from_segmentation(
        ueb.segmentation(),
        codec(ueb.needed_shares, ueb.total_shares).as_ref(),
    )
}

fn mutate(mut v: Vec<u8>, edits: &[(usize, u8, u8)]) -> Vec<u8> {
    for &(at, byte, op) in edits {
        let at = at % (v.len() + 1);
        match op % 3 {
            0 if at < v.len() => v[at] = byte,
            1 => v.insert(at, byte),
            _ if at < v.len() => {
                v.remove(at);
            }
            _ => {}
        }
    }
    v
}

#[test]
fn absurd_segment_counts_are_refused_not_planned() {
    // A cap's creator chooses its UEB: a file of 2^64-1 bytes in 3-byte
    // segments has 6.1e18 segments and hash trees beyond any memory.
    for (size, seg, k) in [
        (u64::MAX, 3, 3),
        (u64::MAX, 1, 1),
        (1 << 62, 255, 255),
        (1 << 45, 1, 1),
    ] {
        let segs = size.div_ceil(seg);
        let tail = match size % seg {
            0 => seg,
            t => t.div_ceil(u64::from(k)) * u64::from(k),
        };
        let n = k.max(3);
        match Ueb::parse(&ueb_text(size, seg, segs, tail, k, n)) {
            Ok(ueb) => {
                let e = plan_from(&ueb).expect_err("an absurd plan");
                assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
                assert!(e.to_string().contains("segments"), "{e}");
            }
            Err(e) => assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}"),
        }
    }
    // The same limit holds for uploads, so nothing is stored that could not
    // be downloaded again.
    let e = SharePlan::new(1 << 40, 1 << 10, codec(3, 10).as_ref()).expect_err("too many segments");
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(SharePlan::new(1 << 40, 1 << 20, codec(3, 10).as_ref()).is_ok());
}

#[test]
fn value_lengths_at_the_top_of_the_range_are_refused() {
    for len in [u64::MAX, u64::MAX - 1, usize::MAX as u64, 1 << 40] {
        let text = format!("size:{len}:x,");
        let e = Ueb::parse(text.as_bytes()).expect_err("a value past the end");
        assert_eq!(e.kind(), ErrorKind::Corrupt);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn caps_parse_strictly_or_not_at_all(text in "\\PC{0,120}") {
        if let Ok(cap) = text.parse::<Cap>() {
            prop_assert_eq!(cap.to_string(), text);
        }
    }

    #[test]
    fn mutated_caps_parse_strictly_or_not_at_all(
        which in 0usize..3,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..4),
    ) {
        let caps = [
            "URI:CHK:mr2fgxtkpiuoc5aqe5n3sqwncy:fxy6boryif6mjenljnecornf5fvtpieqlx556t5ntrmxh4vj4yrq:3:10:1000",
            "URI:CHK-Verifier:mr2fgxtkpiuoc5aqe5n3sqwncy:fxy6boryif6mjenljnecornf5fvtpieqlx556t5ntrmxh4vj4yrq:3:10:1000",
            "URI:LIT:nbuqu",
        ];
        let bytes = mutate(caps[which].as_bytes().to_vec(), &edits);
        if let Ok(text) = String::from_utf8(bytes)
            && let Ok(cap) = text.parse::<Cap>() {
                prop_assert_eq!(cap.to_string(), text);
            }
    }

    #[test]
    fn base32_decodes_canonically_or_not_at_all(text in "[a-z2-7=A-Z0-9]{0,40}") {
        if let Ok(bytes) = base32::decode(&text) {
            prop_assert_eq!(base32::encode(&bytes), text);
        }
    }

    #[test]
    fn uebs_parse_to_something_plannable_or_fail(
        size_bits in 1u32..64,
        size_seed in any::<u64>(),
        seg_pow in 0u32..40,
        k in 1u16..=16,
        extra in 0u16..8,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 0..4),
    ) {
        // Sizes spread over every magnitude, so that some files plan.
        let size = (size_seed >> (64 - size_bits)).max(1);
        let seg = (1u64 << seg_pow).div_ceil(u64::from(k)) * u64::from(k);
        let n = k + extra;
        let tail = match size % seg {
            0 => seg,
            t => t.div_ceil(u64::from(k)) * u64::from(k),
        };
        let text = mutate(ueb_text(size, seg, size.div_ceil(seg), tail, k, n), &edits);
        if let Ok(ueb) = Ueb::parse(&text)
            && let Ok(plan) = plan_from(&ueb) {
                // A plan's numbers are usable as they are.
                let last = plan.seg.num_segments - 1;
                prop_assert!(plan.block_offset(last) + plan.block_len(last) <= plan.layout.plaintext_hash_tree);
            }
    }

    #[test]
    fn arbitrary_bytes_are_not_a_ueb(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = Ueb::parse(&bytes);
    }
}

/// Headers close to real ones (a real layout with a few fields or bytes
/// changed, and share sizes around the real one), so that most inputs get
/// past the first checks: whatever parses lies within the share, and
/// whatever passes `check` has exactly the sections the file implies.
#[test]
fn share_headers_parse_within_the_share_or_fail() {
    let mut rng = tahoe_core::testing::pseudo_random_bytes(99, 5_000 * 32).into_iter();
    let mut next = move || u64::from_le_bytes(std::array::from_fn(|_| rng.next().unwrap_or(0)));
    let (mut parsed, mut checked) = (0, 0);
    for _ in 0..5_000 {
        let num_segments = 1 + next() % 300;
        let block_size = 1 + next() % 100_000;
        let data_size = block_size * num_segments - next() % block_size;
        let hashes = next() % 10;
        let layout = ShareLayout::for_upload(block_size, data_size, num_segments, hashes);
        let real_size = layout.share_size(300);
        let mut bytes = layout.header();
        for _ in 0..next() % 3 {
            let at = (next() as usize) % bytes.len();
            bytes[at] ^= 1 << (next() % 8);
        }
        let share_size = match next() % 3 {
            0 => real_size,
            1 => real_size.saturating_sub(next() % 64),
            _ => next(),
        };
        let Ok(l) = ShareLayout::parse(&bytes, share_size) else {
            continue;
        };
        parsed += 1;
        assert!(l.uri_extension + l.field_size() <= share_size);
        assert!(l.data <= l.plaintext_hash_tree && l.share_hashes <= l.uri_extension);
        if l.check(data_size, num_segments).is_ok() {
            checked += 1;
            let tree = (tahoe_core::hashtree::node_count(num_segments as usize) * 32) as u64;
            assert_eq!(l.plaintext_hash_tree, l.data + data_size);
            assert_eq!(l.block_hashes, l.plaintext_hash_tree + 2 * tree);
            assert_eq!(l.share_hashes, l.block_hashes + tree);
        }
        let _ = parse_share_hashes(&bytes);
    }
    // The inputs must reach the checks they test.
    assert!(parsed > 1_500, "only {parsed} of 5000 headers parsed");
    assert!(
        checked > 1_000,
        "only {checked} of 5000 headers passed check"
    );
}

/// A directory Tahoe-LAFS packed, for mutating.
fn tahoe_dirnode() -> (Vec<u8>, [u8; 16]) {
    let text = std::fs::read_to_string("tests/data/tahoe-dirnodes.json").unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let case = doc["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "subdirs")
        .unwrap();
    let hex = |s: &str| -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    };
    let key = hex(case["writekey"].as_str().unwrap());
    (
        hex(case["packed_hex"].as_str().unwrap()),
        key.try_into().unwrap(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Mutated directories: an error, or entries that can each be asked
    /// for their caps, that pack and parse back to the same names.
    #[test]
    fn mutated_directories_parse_or_fail_cleanly(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..8),
        mutable in any::<bool>(),
    ) {
        use tahoe_core::dirnode::{Directory, WriteKey};
        let (packed, key) = tahoe_dirnode();
        let data = mutate(packed, &edits);
        let key = mutable.then(|| WriteKey {
            key,
            cipher: {
                let ctx = tahoe_core::registry::PluginContext::empty(
                    tahoe_core::registry::PluginKind::Cipher,
                    "aes-ctr",
                    std::path::Path::new("."),
                );
                tahoe::builtin_registry().unwrap().cipher("aes-ctr", &ctx).unwrap()
            },
        });
        if let Ok(dir) = Directory::parse(bytes::Bytes::from(data), mutable, key.clone()) {
            for (name, entry) in dir.entries() {
                let _ = dir.node_of(name, entry);
            }
            let again = Directory::parse(bytes::Bytes::from(dir.pack().unwrap()), mutable, key).unwrap();
            prop_assert!(again.skipped().is_empty());
            prop_assert!(again.entries().map(|(n, _)| n).eq(dir.entries().map(|(n, _)| n)));
        }
    }
}
