//! The codec conformance suite.

use crate::error::Result;
use crate::kinds::codec::{Block, Codec, CodecParams};
use crate::testing::{Clauses, combinations, pseudo_random_bytes};
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

/// A clause of the codec contract checked on a sample: its name, and its
/// check of a codec against the sample's data and the blocks it encoded.
pub type SampleClause = (&'static str, fn(&dyn Codec, &Sample));

/// A clause of the codec contract about input to refuse: its name, and
/// its check of a codec.
pub type Clause = (&'static str, fn(&dyn Codec));

/// A sample of data, as the codec encoded it (encoding it is itself a
/// clause: [`ENCODES`]).
pub struct Sample {
    /// The data: `k * per_block` bytes.
    pub data: Vec<u8>,
    /// Bytes of data per block.
    pub per_block: usize,
    /// What `encode` returned.
    pub blocks: Vec<Vec<u8>>,
}

/// The clause every sample is checked by first: `encode` takes any
/// multiple of `k` bytes and returns `n` blocks of `block_len` bytes.
pub const ENCODES: &str = "encode gives n blocks of block_len bytes";

/// The clauses each encoded sample is checked against, after [`ENCODES`].
pub const SAMPLE_CLAUSES: &[SampleClause] = &[
    (
        "systematic: block i is the i-th slice of the data, zero-padded",
        systematic,
    ),
    ("encoding is deterministic", deterministic),
    ("any k blocks decode to the data", decodes),
];

/// The clauses about input a codec must refuse.
pub const CLAUSES: &[Clause] = &[
    ("an empty segment is refused", refuses_empty),
    (
        "a length not a multiple of k is refused",
        refuses_odd_length,
    ),
    ("k-1 blocks are refused", refuses_too_few),
    ("duplicate indexes are refused", refuses_duplicates),
    ("index n is refused", refuses_index_n),
    ("a short block is refused", refuses_short_block),
    (
        "a data length that does not fit the blocks is refused",
        refuses_misfit_length,
    ),
    ("a zero data length is refused", refuses_zero_length),
];

/// Run the codec contract against `make` for every pair of
/// [`DEFAULT_PARAMS`] it accepts (a codec may refuse some parameters, such
/// as leopard with more parity than data; it must accept `3`-of-`5` and `5`-of-`8`):
/// every clause, then a panic naming those that failed.
pub fn run(make: impl Fn(CodecParams) -> Result<Arc<dyn Codec>>) {
    let mut clauses = Clauses::new("codec");
    let mut tried = 0;
    for &(k, n) in DEFAULT_PARAMS {
        let params = CodecParams::new(k, n).expect("suite parameters are valid");
        let Some(Some(codec)) =
            clauses.check("3-of-5 and 5-of-8 are accepted", || match make(params) {
                Ok(c) => Some(c),
                Err(e) => {
                    assert!(
                        !matches!((k, n), (3, 5) | (5, 8)),
                        "codec refused required parameters {k}-of-{n}: {e}"
                    );
                    None
                }
            })
        else {
            continue;
        };
        tried += 1;
        clauses.check("params() reports what the codec was built with", || {
            assert_eq!(
                codec.params(),
                params,
                "params() must report what it was built with"
            );
        });
        check_clauses(&mut clauses, codec.as_ref());
    }
    clauses.check("enough parameter sets are accepted to test", || {
        assert!(
            tried >= 2,
            "the codec accepted too few parameter sets to test"
        );
    });
    clauses.finish();
}

/// Check one codec instance against the contract: every clause, then a
/// panic naming those that failed.
pub fn check_params(codec: &dyn Codec) {
    let mut clauses = Clauses::new("codec");
    check_clauses(&mut clauses, codec);
    clauses.finish();
}

/// The samples: sizes of one byte per block, odd sizes, a size around
/// 64 KiB per block (up to 4 MiB in all).
fn samples(k: usize) -> impl Iterator<Item = (u64, usize)> {
    [
        (1u64, 1usize),
        (2, 7),
        (3, 63),
        (4, 64),
        (5, 1000),
        (6, 65_537),
    ]
    .into_iter()
    .filter(move |&(_, per_block)| k * per_block <= 4 << 20)
}

fn check_clauses(clauses: &mut Clauses, codec: &dyn Codec) {
    let k = codec.params().k();
    for (seed, per_block) in samples(k) {
        let data = pseudo_random_bytes(seed, k * per_block);
        let Some(blocks) = clauses.check(ENCODES, || encode(codec, &data, per_block)) else {
            continue;
        };
        let sample = Sample {
            data,
            per_block,
            blocks,
        };
        for (name, check) in SAMPLE_CLAUSES {
            clauses.check(name, || check(codec, &sample));
        }
    }
    for (name, check) in CLAUSES {
        clauses.check(name, || check(codec));
    }
}

/// "codec k-of-n", for messages.
fn ctx(codec: &dyn Codec) -> String {
    let p = codec.params();
    format!("{} {}-of-{}", codec.name(), p.k(), p.n())
}

fn encode(codec: &dyn Codec, data: &[u8], per_block: usize) -> Vec<Vec<u8>> {
    let ctx = ctx(codec);
    let blocks = codec
        .encode(data)
        .unwrap_or_else(|e| panic!("{ctx}: encode of {} bytes failed: {e}", data.len()));
    assert_eq!(
        blocks.len(),
        codec.params().n(),
        "{ctx}: encode must return n blocks"
    );
    let bl = codec.block_len(data.len());
    assert!(bl >= per_block, "{ctx}: block_len below data_len / k");
    for (i, b) in blocks.iter().enumerate() {
        assert_eq!(b.len(), bl, "{ctx}: block {i} has the wrong length");
    }
    blocks
}

fn systematic(codec: &dyn Codec, s: &Sample) {
    let ctx = ctx(codec);
    let per_block = s.per_block;
    for i in 0..codec.params().k() {
        assert_eq!(
            &s.blocks[i][..per_block],
            &s.data[i * per_block..(i + 1) * per_block],
            "{ctx}: block {i} is not the {i}-th slice of the data (codec must be systematic)"
        );
        assert!(
            s.blocks[i][per_block..].iter().all(|&b| b == 0),
            "{ctx}: padding of block {i} is not zero"
        );
    }
}

fn deterministic(codec: &dyn Codec, s: &Sample) {
    assert_eq!(
        codec.encode(&s.data).expect("re-encode"),
        s.blocks,
        "{}: not deterministic",
        ctx(codec)
    );
}

fn decodes(codec: &dyn Codec, s: &Sample) {
    let ctx = ctx(codec);
    let p = codec.params();
    for subset in erasure_patterns(p.k(), p.n()) {
        let given: Vec<Block<'_>> = subset
            .iter()
            .map(|&i| Block {
                index: i,
                data: &s.blocks[i],
            })
            .collect();
        let back = codec
            .decode(&given, s.data.len())
            .unwrap_or_else(|e| panic!("{ctx}: decode from {subset:?} failed: {e}"));
        assert!(
            back == s.data,
            "{ctx}: decode from blocks {subset:?} gave wrong data"
        );
    }
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

/// Data of 16 bytes per block and its blocks, for the clauses about
/// refusals.
fn bad_input_sample(codec: &dyn Codec) -> (Vec<u8>, Vec<Vec<u8>>) {
    let data = pseudo_random_bytes(10, codec.params().k() * 16);
    let blocks = codec.encode(&data).expect("encode");
    (data, blocks)
}

fn all_blocks(blocks: &[Vec<u8>]) -> Vec<Block<'_>> {
    blocks
        .iter()
        .enumerate()
        .map(|(i, b)| Block { index: i, data: b })
        .collect()
}

fn refuses_empty(codec: &dyn Codec) {
    assert!(
        codec.encode(&[]).is_err(),
        "{}: empty segment must be refused",
        ctx(codec)
    );
}

fn refuses_odd_length(codec: &dyn Codec) {
    let k = codec.params().k();
    if k > 1 {
        let odd = pseudo_random_bytes(9, k * 4 + 1);
        assert!(
            codec.encode(&odd).is_err(),
            "{}: length not a multiple of k must be refused",
            ctx(codec)
        );
    }
}

fn refuses_too_few(codec: &dyn Codec) {
    let k = codec.params().k();
    let (data, blocks) = bad_input_sample(codec);
    let all = all_blocks(&blocks);
    assert!(
        codec.decode(&all[..k - 1], data.len()).is_err(),
        "{}: k-1 blocks must be refused",
        ctx(codec)
    );
}

/// Duplicates standing in for a missing block.
fn refuses_duplicates(codec: &dyn Codec) {
    let k = codec.params().k();
    if k > 1 {
        let (data, blocks) = bad_input_sample(codec);
        let all = all_blocks(&blocks);
        let mut dup = all[..k - 1].to_vec();
        dup.push(all[0]);
        assert!(
            codec.decode(&dup, data.len()).is_err(),
            "{}: duplicate indexes must be refused",
            ctx(codec)
        );
    }
}

fn refuses_index_n(codec: &dyn Codec) {
    let p = codec.params();
    let (data, blocks) = bad_input_sample(codec);
    let mut oor = all_blocks(&blocks)[..p.k()].to_vec();
    oor[0].index = p.n();
    assert!(
        codec.decode(&oor, data.len()).is_err(),
        "{}: index n must be refused",
        ctx(codec)
    );
}

/// Blocks of unequal lengths.
fn refuses_short_block(codec: &dyn Codec) {
    let k = codec.params().k();
    let (data, blocks) = bad_input_sample(codec);
    let short = &blocks[k - 1][..blocks[k - 1].len() - 1];
    let mut uneq = all_blocks(&blocks)[..k].to_vec();
    uneq[k - 1].data = short;
    assert!(
        codec.decode(&uneq, data.len()).is_err(),
        "{}: a short block must be refused",
        ctx(codec)
    );
}

/// A data length the blocks cannot hold.
fn refuses_misfit_length(codec: &dyn Codec) {
    let k = codec.params().k();
    let (data, blocks) = bad_input_sample(codec);
    assert!(
        codec
            .decode(&all_blocks(&blocks)[..k], data.len() * 4)
            .is_err()
            || codec.block_len(data.len() * 4) == blocks[0].len(),
        "{}: a data length that does not fit the blocks must be refused",
        ctx(codec)
    );
}

fn refuses_zero_length(codec: &dyn Codec) {
    let k = codec.params().k();
    let (_, blocks) = bad_input_sample(codec);
    assert!(
        codec.decode(&all_blocks(&blocks)[..k], 0).is_err(),
        "{}: zero data length must be refused",
        ctx(codec)
    );
}
