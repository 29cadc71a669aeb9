//! The codec conformance suite.

use crate::error::Result;
use crate::kinds::codec::{Block, Codec, CodecParams};
use crate::testing::{combinations, pseudo_random_bytes};
use std::sync::Arc;

/// The (k, n) pairs the suite tries when the codec accepts them.
pub const DEFAULT_PARAMS: &[(u16, u16)] = &[
    (1, 1),
    (1, 2),
    (2, 2),
    (1, 3),
    (2, 3),
    (3, 5),
    (2, 4),
    (3, 6),
    (4, 6),
    (3, 10),
    (5, 8),
    (10, 14),
    (16, 32),
    (32, 48),
    (100, 150),
    (128, 256),
    (200, 256),
];

/// Run the codec contract against `make` for every pair of
/// [`DEFAULT_PARAMS`] it accepts (a codec may refuse some parameters, such
/// as leopard with more parity than data; it must accept `3`-of-`5` and `5`-of-`8`).
pub fn run(make: impl Fn(CodecParams) -> Result<Arc<dyn Codec>>) {
    let mut tried = 0;
    for &(k, n) in DEFAULT_PARAMS {
        let params = CodecParams::new(k, n).expect("suite parameters are valid");
        let codec = match make(params) {
            Ok(c) => c,
            Err(e) => {
                assert!(
                    !matches!((k, n), (3, 5) | (5, 8)),
                    "codec refused required parameters {k}-of-{n}: {e}"
                );
                continue;
            }
        };
        tried += 1;
        assert_eq!(
            codec.params(),
            params,
            "params() must report what it was built with"
        );
        check_params(codec.as_ref());
    }
    assert!(
        tried >= 2,
        "the codec accepted too few parameter sets to test"
    );
}

/// Check one codec instance against the contract.
pub fn check_params(codec: &dyn Codec) {
    let p = codec.params();
    let (k, n) = (p.k(), p.n());
    let ctx = format!("{} {k}-of-{n}", codec.name());
    // Sizes: one byte per block, odd sizes, a size around 64 KiB.
    for (seed, per_block) in [
        (1u64, 1usize),
        (2, 7),
        (3, 63),
        (4, 64),
        (5, 1000),
        (6, 65_537),
    ] {
        if k * per_block > 4 << 20 {
            continue;
        }
        let data = pseudo_random_bytes(seed, k * per_block);
        let blocks = codec
            .encode(&data)
            .unwrap_or_else(|e| panic!("{ctx}: encode of {} bytes failed: {e}", data.len()));
        assert_eq!(blocks.len(), n, "{ctx}: encode must return n blocks");
        let bl = codec.block_len(data.len());
        assert!(bl >= per_block, "{ctx}: block_len below data_len / k");
        for (i, b) in blocks.iter().enumerate() {
            assert_eq!(b.len(), bl, "{ctx}: block {i} has the wrong length");
        }
        // Systematic.
        for i in 0..k {
            assert_eq!(
                &blocks[i][..per_block],
                &data[i * per_block..(i + 1) * per_block],
                "{ctx}: block {i} is not the {i}-th slice of the data (codec must be systematic)"
            );
            assert!(
                blocks[i][per_block..].iter().all(|&b| b == 0),
                "{ctx}: padding of block {i} is not zero"
            );
        }
        // Deterministic.
        assert_eq!(
            codec.encode(&data).expect("re-encode"),
            blocks,
            "{ctx}: not deterministic"
        );
        for subset in erasure_patterns(k, n) {
            let given: Vec<Block<'_>> = subset
                .iter()
                .map(|&i| Block {
                    index: i,
                    data: &blocks[i],
                })
                .collect();
            let back = codec
                .decode(&given, data.len())
                .unwrap_or_else(|e| panic!("{ctx}: decode from {subset:?} failed: {e}"));
            assert!(
                back == data,
                "{ctx}: decode from blocks {subset:?} gave wrong data"
            );
        }
    }
    check_bad_input(codec);
}

/// Every k-subset when there are few, otherwise a spread of them: primary
/// only, parity first, the last k, and pseudo-random ones.
fn erasure_patterns(k: usize, n: usize) -> Vec<Vec<usize>> {
    if n <= 10 {
        return combinations(n, k);
    }
    let mut out = vec![(0..k).collect::<Vec<_>>(), (n - k..n).collect()];
    // Parity first, then data, in reverse order: tests that decode does not
    // assume sorted input.
    out.push((0..n).rev().take(k).collect());
    let noise = pseudo_random_bytes((k * 1000 + n) as u64, 8 * n);
    for round in 0..4 {
        let mut idx: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = usize::from(noise[round * n + i]) % (i + 1);
            idx.swap(i, j);
        }
        idx.truncate(k);
        out.push(idx);
    }
    out
}

fn check_bad_input(codec: &dyn Codec) {
    let p = codec.params();
    let (k, n) = (p.k(), p.n());
    let ctx = format!("{} {k}-of-{n}", codec.name());
    assert!(
        codec.encode(&[]).is_err(),
        "{ctx}: empty segment must be refused"
    );
    if k > 1 {
        let odd = pseudo_random_bytes(9, k * 4 + 1);
        assert!(
            codec.encode(&odd).is_err(),
            "{ctx}: length not a multiple of k must be refused"
        );
    }
    let data = pseudo_random_bytes(10, k * 16);
    let blocks = codec.encode(&data).expect("encode");
    let all: Vec<Block<'_>> = blocks
        .iter()
        .enumerate()
        .map(|(i, b)| Block { index: i, data: b })
        .collect();
    // Too few.
    assert!(
        codec.decode(&all[..k - 1], data.len()).is_err(),
        "{ctx}: k-1 blocks must be refused"
    );
    // Duplicates standing in for a missing block.
    if k > 1 {
        let mut dup = all[..k - 1].to_vec();
        dup.push(all[0]);
        assert!(
            codec.decode(&dup, data.len()).is_err(),
            "{ctx}: duplicate indexes must be refused"
        );
    }
    // Out of range.
    let mut oor = all[..k].to_vec();
    oor[0].index = n;
    assert!(
        codec.decode(&oor, data.len()).is_err(),
        "{ctx}: index n must be refused"
    );
    // Unequal lengths.
    let short = &blocks[k - 1][..blocks[k - 1].len() - 1];
    let mut uneq = all[..k].to_vec();
    uneq[k - 1].data = short;
    assert!(
        codec.decode(&uneq, data.len()).is_err(),
        "{ctx}: a short block must be refused"
    );
    // Wrong data length for the blocks.
    assert!(
        codec.decode(&all[..k], data.len() * 4).is_err()
            || codec.block_len(data.len() * 4) == blocks[0].len(),
        "{ctx}: a data length that does not fit the blocks must be refused"
    );
    assert!(
        codec.decode(&all[..k], 0).is_err(),
        "{ctx}: zero data length must be refused"
    );
}
