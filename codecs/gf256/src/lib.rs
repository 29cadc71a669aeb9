//! GF(2^8) arithmetic over slices, with SIMD chosen at run time.
//!
//! Both Reed-Solomon codecs work in GF(2^8) with the polynomial 0x11d (the
//! field of zfec and of reed-solomon-erasure alike), and spend nearly all
//! their time in "multiply a slice by a constant and XOR it into another".
//! reed-solomon-erasure's fast kernel for that is C compiled with
//! `-march=haswell` on x86-64: calling it on a CPU without AVX2 dies with an
//! illegal instruction. So the decision is made here, once, at run time:
//! [`Kernel::detect`] picks [`Kernel::Simd`] only when the CPU has every
//! feature that `-march=haswell` lets the compiler use, and
//! [`Kernel::Portable`] (table lookups in Rust) otherwise. Tests run both.

use reed_solomon_erasure::galois_8;
use std::sync::OnceLock;

/// The `simd` setting that the codecs built on this crate read from their
/// config sections (`[codec.crs]`, `[codec.reed-solomon]`).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimdConfig {
    /// Use SIMD when the CPU supports it (`false` forces the portable kernel).
    pub simd: bool,
}

impl Default for SimdConfig {
    fn default() -> Self {
        SimdConfig { simd: true }
    }
}

/// Which slice kernel to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// reed-solomon-erasure's SIMD kernel (only offered when the CPU has it).
    Simd,
    /// Plain Rust table lookups; runs everywhere.
    Portable,
}

/// Whether this CPU can run the SIMD kernel (checked once).
pub fn simd_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(detect_simd)
}

#[cfg(target_arch = "x86_64")]
fn detect_simd() -> bool {
    // Everything -march=haswell allows the C compiler to emit.
    std::arch::is_x86_feature_detected!("avx")
        && std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma")
        && std::arch::is_x86_feature_detected!("bmi1")
        && std::arch::is_x86_feature_detected!("bmi2")
        && std::arch::is_x86_feature_detected!("lzcnt")
        && std::arch::is_x86_feature_detected!("movbe")
        && std::arch::is_x86_feature_detected!("f16c")
        && std::arch::is_x86_feature_detected!("popcnt")
}

#[cfg(target_arch = "aarch64")]
fn detect_simd() -> bool {
    // NEON is part of the aarch64 baseline.
    true
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn detect_simd() -> bool {
    false
}

impl Kernel {
    /// The fastest kernel this CPU runs.
    pub fn detect() -> Kernel {
        if simd_available() {
            Kernel::Simd
        } else {
            Kernel::Portable
        }
    }

    /// The kernel to use when the user allows SIMD (`allow_simd`) or not.
    pub fn choose(allow_simd: bool) -> Kernel {
        if allow_simd {
            Kernel::detect()
        } else {
            Kernel::Portable
        }
    }

    /// `out[i] = c * input[i]`. Panics if the lengths differ (a caller bug).
    pub fn mul_slice(self, c: u8, input: &[u8], out: &mut [u8]) {
        assert_eq!(input.len(), out.len(), "gf256 slices of unequal length");
        if input.is_empty() {
            return;
        }
        match self {
            Kernel::Simd if simd_available() => galois_8::mul_slice(c, input, out),
            _ => portable_mul_slice(c, input, out),
        }
    }

    /// `out[i] ^= c * input[i]`. Panics if the lengths differ (a caller bug).
    pub fn mul_slice_xor(self, c: u8, input: &[u8], out: &mut [u8]) {
        assert_eq!(input.len(), out.len(), "gf256 slices of unequal length");
        if input.is_empty() {
            return;
        }
        match self {
            Kernel::Simd if simd_available() => galois_8::mul_slice_xor(c, input, out),
            _ => portable_mul_slice_xor(c, input, out),
        }
    }
}

fn mul_row(c: u8) -> [u8; 256] {
    let mut row = [0u8; 256];
    for (x, r) in row.iter_mut().enumerate() {
        *r = galois_8::mul(c, x as u8);
    }
    row
}

fn portable_mul_slice(c: u8, input: &[u8], out: &mut [u8]) {
    match c {
        0 => out.fill(0),
        1 => out.copy_from_slice(input),
        _ => {
            let row = mul_row(c);
            for (o, &i) in out.iter_mut().zip(input) {
                *o = row[usize::from(i)];
            }
        }
    }
}

fn portable_mul_slice_xor(c: u8, input: &[u8], out: &mut [u8]) {
    match c {
        0 => {}
        1 => {
            for (o, &i) in out.iter_mut().zip(input) {
                *o ^= i;
            }
        }
        _ => {
            let row = mul_row(c);
            for (o, &i) in out.iter_mut().zip(input) {
                *o ^= row[usize::from(i)];
            }
        }
    }
}

/// `a * b` in the field.
pub fn mul(a: u8, b: u8) -> u8 {
    galois_8::mul(a, b)
}

/// `a / b` in the field; `None` when `b` is zero.
pub fn div(a: u8, b: u8) -> Option<u8> {
    (b != 0).then(|| galois_8::div(a, b))
}

/// `a` to the power `n`.
pub fn exp(a: u8, n: usize) -> u8 {
    galois_8::exp(a, n)
}

/// reed-solomon-erasure's GF(2^8) with the portable kernel for slice
/// operations: lets its `ReedSolomon` run on CPUs without the SIMD features.
pub struct PortableField;

impl reed_solomon_erasure::Field for PortableField {
    const ORDER: usize = 256;
    type Elem = u8;

    fn add(a: u8, b: u8) -> u8 {
        a ^ b
    }
    fn mul(a: u8, b: u8) -> u8 {
        galois_8::mul(a, b)
    }
    fn div(a: u8, b: u8) -> u8 {
        galois_8::div(a, b)
    }
    fn exp(a: u8, n: usize) -> u8 {
        galois_8::exp(a, n)
    }
    fn zero() -> u8 {
        0
    }
    fn one() -> u8 {
        1
    }
    fn nth_internal(n: usize) -> u8 {
        n as u8
    }
    fn mul_slice(c: u8, input: &[u8], out: &mut [u8]) {
        Kernel::Portable.mul_slice(c, input, out);
    }
    fn mul_slice_add(c: u8, input: &[u8], out: &mut [u8]) {
        Kernel::Portable.mul_slice_xor(c, input, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_agree() {
        let input: Vec<u8> = (0..10_007u32).map(|i| (i * 31 + 7) as u8).collect();
        for c in [0u8, 1, 2, 3, 0x53, 0xff] {
            let mut a = vec![0u8; input.len()];
            let mut b = vec![0u8; input.len()];
            Kernel::Portable.mul_slice(c, &input, &mut a);
            Kernel::detect().mul_slice(c, &input, &mut b);
            assert_eq!(a, b, "mul_slice c={c}");
            for (i, &x) in input.iter().enumerate() {
                assert_eq!(a[i], mul(c, x));
            }
            Kernel::Portable.mul_slice_xor(c ^ 0x11, &input, &mut a);
            Kernel::detect().mul_slice_xor(c ^ 0x11, &input, &mut b);
            assert_eq!(a, b, "mul_slice_xor c={c}");
        }
    }

    /// `make test-no-avx2` runs the codec tests on an emulated CPU without
    /// AVX2 and sets this variable, so the run proves the portable path was
    /// taken rather than silently testing SIMD again.
    #[test]
    fn detection_matches_expectation() {
        if std::env::var_os("TAHOE_EXPECT_NO_SIMD").is_some() {
            assert!(
                !simd_available(),
                "expected a CPU without the SIMD features"
            );
            assert_eq!(Kernel::detect(), Kernel::Portable);
        }
        assert_eq!(Kernel::choose(false), Kernel::Portable);
    }

    #[test]
    fn field_laws() {
        for a in 1..=255u8 {
            assert_eq!(div(mul(a, 0x1d), 0x1d), Some(a));
            assert_eq!(mul(a, div(1, a).unwrap_or(0)), 1);
        }
        assert_eq!(div(5, 0), None);
        // 2 generates the multiplicative group: order 255.
        assert_eq!(exp(2, 255), 1);
        assert!((1..255).all(|n| exp(2, n) != 1));
    }
}
