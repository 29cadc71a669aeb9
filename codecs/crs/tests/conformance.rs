//! crs against the codec contract and against zfec's own output.

use sha2::{Digest, Sha256};
use std::sync::Arc;
use tahoe_codec_crs::Crs;
use tahoe_core::kinds::codec::{Codec, CodecParams};
use tahoe_core::testing::{codec, pseudo_random_bytes};
use tahoe_gf256::Kernel;

#[test]
fn conformance_detected_kernel() {
    codec::run(|p| Ok(Arc::new(Crs::new(p, Kernel::detect())?) as Arc<dyn Codec>));
}

#[test]
fn conformance_portable_kernel() {
    codec::run(|p| Ok(Arc::new(Crs::new(p, Kernel::Portable)?) as Arc<dyn Codec>));
}

/// Every line of the fixture file was produced by zfec 1.6.0.0
/// (scripts/gen_zfec_fixtures.py): our blocks must hash the same.
#[test]
fn matches_zfec_fixtures() {
    let text = include_str!("data/zfec-fixtures.txt");
    let mut cases = 0;
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let f: Vec<&str> = line.split(' ').collect();
        let num = |i: usize| f[i].parse::<u64>().expect("number");
        let (k, n, bs, seed) = (num(0) as u16, num(1) as u16, num(2) as usize, num(3));
        let want: Vec<&str> = f[4].split(',').collect();
        let data = pseudo_random_bytes(seed, usize::from(k) * bs);
        for kernel in [Kernel::detect(), Kernel::Portable] {
            let c = Crs::new(CodecParams::new(k, n).expect("params"), kernel).expect("codec");
            let blocks = c.encode(&data).expect("encode");
            assert_eq!(blocks.len(), want.len());
            for (i, (b, w)) in blocks.iter().zip(&want).enumerate() {
                let got = format!("{:x}", Sha256::digest(b));
                assert_eq!(
                    &got, w,
                    "k={k} n={n} block_size={bs} block {i} ({kernel:?}) differs from zfec"
                );
            }
        }
        cases += 1;
    }
    assert_eq!(cases, 50, "fixture file incomplete");
}
