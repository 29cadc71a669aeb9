#![allow(clippy::unwrap_used)]

use super::*;
use proptest::prelude::*;
use sha2::Digest;

fn reference(data: &[u8]) -> [u8; 32] {
    sha2::Sha256::digest(data).into()
}

fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn known_answers() {
    // FIPS 180-4 examples.
    assert_eq!(
        digest(b"abc"),
        *b"\xba\x78\x16\xbf\x8f\x01\xcf\xea\x41\x41\x40\xde\x5d\xae\x22\x23\xb0\x03\x61\xa3\x96\x17\x7a\x9c\xb4\x10\xff\x61\xf2\x00\x15\xad"
    );
    assert_eq!(digest(b""), reference(b""));
}

#[test]
fn every_length_around_the_block_edges() {
    for len in 0..300 {
        let d = bytes(len as u64, len);
        assert_eq!(digest(&d), reference(&d), "length {len}");
    }
}

#[test]
fn many_equal_streams_match_one_at_a_time() {
    // Every group size up to past two full groups, long enough for the
    // interleaved loop to run many blocks.
    for streams in 1..=2 * LANES + 1 {
        let data: Vec<Vec<u8>> = (0..streams).map(|i| bytes(i as u64, 64 * 37 + 5)).collect();
        let mut hashers = vec![Sha256::new(); streams];
        // A common prefix that leaves every buffer part full, as tags do.
        for h in &mut hashers {
            h.update(b"29:allmydata_encoded_subshare_v1,");
        }
        let mut refs: Vec<&mut Sha256> = hashers.iter_mut().collect();
        let slices: Vec<&[u8]> = data.iter().map(|d| &d[..]).collect();
        update_many(&mut refs, &slices);
        for (h, d) in hashers.into_iter().zip(&data) {
            let mut whole = b"29:allmydata_encoded_subshare_v1,".to_vec();
            whole.extend_from_slice(d);
            assert_eq!(h.finalize(), reference(&whole), "{streams} streams");
        }
    }
}

#[test]
fn interleaved_lanes_are_used_where_the_cpu_has_them() {
    // `make test` also runs this crate on an emulated CPU without SHA-NI,
    // where this must say false and every other test covers the fallback.
    if std::env::var_os("TAHOE_EXPECT_NO_SIMD").is_some() {
        assert!(!accelerated());
    } else if cfg!(target_arch = "x86_64") && std::arch::is_x86_feature_detected!("sha") {
        assert!(accelerated());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Unequal streams fed in unequal pieces give what each stream alone gives.
    #[test]
    fn unequal_streams_in_pieces(
        lens in proptest::collection::vec(0usize..700, 1..10),
        cuts in proptest::collection::vec(0usize..300, 0..6),
        seed in any::<u64>(),
    ) {
        let data: Vec<Vec<u8>> =
            lens.iter().enumerate().map(|(i, &l)| bytes(seed ^ i as u64, l)).collect();
        let mut hashers = vec![Sha256::new(); data.len()];
        let mut offsets = vec![0usize; data.len()];
        for &cut in cuts.iter().chain(std::iter::once(&usize::MAX)) {
            let pieces: Vec<&[u8]> = data
                .iter()
                .zip(&mut offsets)
                .enumerate()
                .map(|(i, (d, o))| {
                    let start = *o;
                    let end = start.saturating_add(cut.saturating_add(i * 7)).min(d.len());
                    *o = end;
                    &d[start..end]
                })
                .collect();
            let mut refs: Vec<&mut Sha256> = hashers.iter_mut().collect();
            update_many(&mut refs, &pieces);
        }
        for (h, d) in hashers.into_iter().zip(&data) {
            prop_assert_eq!(h.finalize(), reference(d));
        }
    }
}
