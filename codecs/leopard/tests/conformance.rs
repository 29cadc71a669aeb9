//! leopard against the codec contract, and its parameter limit.

use std::sync::Arc;
use tahoe_codec_leopard::Leopard;
use tahoe_core::ErrorKind;
use tahoe_core::kinds::codec::{Codec, CodecParams};
use tahoe_core::testing::codec;

#[test]
fn conformance() {
    codec::run(|p| Ok(Arc::new(Leopard::new(p)?) as Arc<dyn Codec>));
}

#[test]
fn refuses_more_parity_than_data_clearly() {
    let e = Leopard::new(CodecParams::new(3, 10).expect("params"))
        .err()
        .expect("3-of-10 refused");
    assert_eq!(e.kind(), ErrorKind::ConfigInvalid);
    assert!(e.to_string().contains("n - k <= k"), "{e}");
}

#[test]
fn pads_blocks_to_64_bytes() {
    let c = Leopard::new(CodecParams::new(4, 6).expect("params")).expect("codec");
    assert_eq!(c.block_len(4 * 100), 128);
    assert_eq!(c.block_len(4 * 128), 128);
}
