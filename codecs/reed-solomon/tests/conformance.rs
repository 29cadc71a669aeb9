//! reed-solomon against the codec contract, with both kernels.

use std::sync::Arc;
use tahoe_codec_reed_solomon::ReedSolomonCodec;
use tahoe_core::kinds::codec::{Codec, CodecParams};
use tahoe_core::testing::{codec, pseudo_random_bytes};
use tahoe_gf256::Kernel;

#[test]
fn conformance_detected_kernel() {
    codec::run(|p| Ok(Arc::new(ReedSolomonCodec::new(p, Kernel::detect())?) as Arc<dyn Codec>));
}

/// The path a CPU without AVX2 takes.
#[test]
fn conformance_portable_kernel() {
    codec::run(|p| Ok(Arc::new(ReedSolomonCodec::new(p, Kernel::Portable)?) as Arc<dyn Codec>));
}

#[test]
fn kernels_produce_identical_blocks() {
    let p = CodecParams::new(10, 14).expect("params");
    let simd = ReedSolomonCodec::new(p, Kernel::detect()).expect("codec");
    let portable = ReedSolomonCodec::new(p, Kernel::Portable).expect("codec");
    let data = pseudo_random_bytes(3, 10 * 65_537);
    assert_eq!(
        simd.encode(&data).expect("encode"),
        portable.encode(&data).expect("encode")
    );
}
