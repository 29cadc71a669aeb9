//! Conformance suites, one per plugin kind, and helpers for plugin tests.
//!
//! A suite states a kind's contract as executable checks. Plugin crates run
//! them from their own tests, e.g. for a storage backend:
//!
//! ```text
//! #[tokio::test(flavor = "multi_thread")]
//! async fn conformance() {
//!     tahoe_core::testing::storage::run(|| async { Ok(my_backend()) }).await;
//! }
//! ```
//!
//! Suites panic with a message naming the broken clause of the contract.

pub mod cipher;
pub mod codec;
pub mod storage;
pub mod transport;

/// Deterministic pseudo-random bytes (splitmix64): test data that is the
/// same on every run without a dependency on a random-number crate.
pub fn pseudo_random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        out.extend_from_slice(&z.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// All subsets of `0..n` of size `k`, in lexicographic order.
pub fn combinations(n: usize, k: usize) -> Vec<Vec<usize>> {
    fn rec(start: usize, n: usize, k: usize, cur: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
        if cur.len() == k {
            out.push(cur.clone());
            return;
        }
        for i in start..n {
            if n - i < k - cur.len() {
                break;
            }
            cur.push(i);
            rec(i + 1, n, k, cur, out);
            cur.pop();
        }
    }
    let mut out = Vec::new();
    rec(0, n, k, &mut Vec::new(), &mut out);
    out
}
