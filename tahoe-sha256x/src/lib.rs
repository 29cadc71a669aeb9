//! SHA-256 over several messages at once.
//!
//! An upload hashes every block of a segment (N independent messages of
//! the same length) and its ciphertext twice over (the whole-file hash and
//! the segment hash). One SHA-256 stream cannot go faster than the latency
//! of its rounds; several independent streams can. On x86-64 with the SHA
//! extensions this crate runs up to [`LANES`] streams interleaved in one
//! loop, so the CPU overlaps their rounds (measured in `benches/sha256x.rs`:
//! see docs/benchmarks.md). Elsewhere, and for a single stream, it uses the
//! `sha2` crate's compression function, so results never depend on the
//! path taken.
//!
//! [`Sha256`] is an ordinary incremental hasher; [`update_many`] feeds
//! several hashers at once, each its own data.

#![allow(unsafe_code)] // SIMD intrinsics, confined to `x86`.

#[cfg(target_arch = "x86_64")]
mod x86;

use sha2::digest::generic_array::GenericArray;
use sha2::digest::typenum::U64;

/// The most streams one interleaved loop runs; more are taken in groups.
pub const LANES: usize = 4;

const BLOCK: usize = 64;

const INITIAL_STATE: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// An incremental SHA-256 hasher (FIPS 180-4).
#[derive(Clone)]
pub struct Sha256 {
    state: [u32; 8],
    buf: [u8; BLOCK],
    buf_len: usize,
    /// Bytes fed so far.
    len: u64,
}

impl Default for Sha256 {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Sha256 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The state is derived from the data, which may be secret.
        f.debug_struct("Sha256")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl Sha256 {
    /// A hasher that has seen nothing.
    pub fn new() -> Self {
        Sha256 {
            state: INITIAL_STATE,
            buf: [0; BLOCK],
            buf_len: 0,
            len: 0,
        }
    }

    /// Feed `data`.
    pub fn update(&mut self, mut data: &[u8]) {
        self.len = self.len.wrapping_add(data.len() as u64);
        if self.buf_len > 0 {
            let take = (BLOCK - self.buf_len).min(data.len());
            self.buf[self.buf_len..self.buf_len + take].copy_from_slice(&data[..take]);
            self.buf_len += take;
            data = &data[take..];
            if self.buf_len < BLOCK {
                return;
            }
            let block = self.buf;
            compress_one(&mut self.state, &block);
            self.buf_len = 0;
        }
        let whole = data.len() / BLOCK * BLOCK;
        compress_one(&mut self.state, &data[..whole]);
        let rest = &data[whole..];
        self.buf[..rest.len()].copy_from_slice(rest);
        self.buf_len = rest.len();
    }

    /// The digest of everything fed.
    pub fn finalize(mut self) -> [u8; 32] {
        let bits = self.len.wrapping_mul(8);
        let mut tail = [0u8; 2 * BLOCK];
        tail[..self.buf_len].copy_from_slice(&self.buf[..self.buf_len]);
        tail[self.buf_len] = 0x80;
        let total = if self.buf_len < BLOCK - 8 {
            BLOCK
        } else {
            2 * BLOCK
        };
        tail[total - 8..total].copy_from_slice(&bits.to_be_bytes());
        compress_one(&mut self.state, &tail[..total]);
        let mut out = [0u8; 32];
        for (o, s) in out.chunks_exact_mut(4).zip(self.state) {
            o.copy_from_slice(&s.to_be_bytes());
        }
        out
    }
}

/// SHA-256 of `data` in one call.
pub fn digest(data: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(data);
    h.finalize()
}

/// Feed `data[i]` to `hashers[i]`, for every `i`, running independent
/// streams side by side where the CPU allows. The result is exactly that
/// of calling [`Sha256::update`] on each in turn.
///
/// # Panics
/// If the two slices differ in length (a caller's bug).
pub fn update_many(hashers: &mut [&mut Sha256], data: &[&[u8]]) {
    assert_eq!(hashers.len(), data.len(), "one data slice per hasher");
    if let ([h], [d]) = (&mut *hashers, data) {
        h.update(d);
        return;
    }
    let mut rest: Vec<&[u8]> = data.to_vec();
    // 1. Top up partly filled buffers; compress the ones that fill.
    let mut full: Vec<usize> = Vec::new();
    for (i, h) in hashers.iter_mut().enumerate() {
        h.len = h.len.wrapping_add(rest[i].len() as u64);
        if h.buf_len > 0 {
            let take = (BLOCK - h.buf_len).min(rest[i].len());
            let at = h.buf_len;
            h.buf[at..at + take].copy_from_slice(&rest[i][..take]);
            h.buf_len += take;
            rest[i] = &rest[i][take..];
            if h.buf_len == BLOCK {
                full.push(i);
            }
        }
    }
    for group in full.chunks(LANES) {
        let mut states: Vec<[u32; 8]> = group.iter().map(|&i| hashers[i].state).collect();
        let bufs: Vec<[u8; BLOCK]> = group.iter().map(|&i| hashers[i].buf).collect();
        let slices: Vec<&[u8]> = bufs.iter().map(|b| &b[..]).collect();
        compress_lanes(&mut states, &slices, 1);
        for (&i, s) in group.iter().zip(states) {
            hashers[i].state = s;
            hashers[i].buf_len = 0;
        }
    }
    // 2. Whole blocks straight from the data, in lockstep groups.
    loop {
        let active: Vec<usize> = (0..hashers.len())
            .filter(|&i| rest[i].len() >= BLOCK)
            .collect();
        if active.is_empty() {
            break;
        }
        for group in active.chunks(LANES) {
            let blocks = group
                .iter()
                .map(|&i| rest[i].len() / BLOCK)
                .min()
                .unwrap_or(0);
            let mut states: Vec<[u32; 8]> = group.iter().map(|&i| hashers[i].state).collect();
            let slices: Vec<&[u8]> = group.iter().map(|&i| rest[i]).collect();
            compress_lanes(&mut states, &slices, blocks);
            for (&i, s) in group.iter().zip(states) {
                hashers[i].state = s;
                rest[i] = &rest[i][blocks * BLOCK..];
            }
        }
    }
    // 3. Keep what is left for next time.
    for (h, r) in hashers.iter_mut().zip(rest) {
        let at = h.buf_len;
        h.buf[at..at + r.len()].copy_from_slice(r);
        h.buf_len += r.len();
    }
}

/// Compress the first `blocks` 64-byte blocks of `data[i]` into
/// `states[i]`, all lanes side by side. Every `data[i]` holds at least
/// `blocks * 64` bytes; `states.len() == data.len() <= LANES`.
fn compress_lanes(states: &mut [[u32; 8]], data: &[&[u8]], blocks: usize) {
    debug_assert!(states.len() == data.len() && data.len() <= LANES);
    debug_assert!(data.iter().all(|d| d.len() >= blocks * BLOCK));
    #[cfg(target_arch = "x86_64")]
    if states.len() > 1 && x86::available() {
        x86::compress_lanes(states, data, blocks);
        return;
    }
    for (s, d) in states.iter_mut().zip(data) {
        compress_one(s, &d[..blocks * BLOCK]);
    }
}

/// One stream through `sha2`'s compression function (which picks the
/// fastest single-stream code for this CPU itself). `data.len()` is a
/// multiple of 64.
fn compress_one(state: &mut [u32; 8], data: &[u8]) {
    debug_assert_eq!(data.len() % BLOCK, 0);
    let blocks = data.len() / BLOCK;
    // SAFETY: `GenericArray<u8, U64>` is a transparent wrapper around
    // `[u8; 64]` (size 64, alignment 1), so `blocks` of them are exactly the
    // first `blocks * 64` bytes of `data` (the cast `sha2` itself makes in
    // the other direction).
    let blocks: &[GenericArray<u8, U64>] =
        unsafe { std::slice::from_raw_parts(data.as_ptr().cast(), blocks) };
    sha2::compress256(state, blocks);
}

/// Whether the interleaved SHA-NI lanes are in use on this CPU (for
/// benchmarks and the test that runs without them).
pub fn accelerated() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        x86::available()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

#[cfg(test)]
mod tests;
