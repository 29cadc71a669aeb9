//! A mutable share's head comes from a storage server: whatever parses has
//! regions in order, and the hash chain and tree parsers never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tahoe_core::format::ssk::layout::{ShareHead, decode_chain};

fuzz_target!(|data: &[u8]| {
    if let Ok(head) = ShareHead::parse(data) {
        let o = &head.offsets;
        assert!(o.share_data.start <= o.share_data.end);
        assert!(o.block_hash_tree.end <= o.eof && o.enc_privkey.end <= o.eof);
        let geo = head.prefix.geometry();
        assert_eq!(o.share_data.end - o.share_data.start, geo.share_data_len());
        for seg in 0..geo.segments.min(4) {
            assert!(geo.block_offset(seg) + geo.block_len(seg) <= geo.share_data_len());
        }
        assert_eq!(
            head.prefix.checkstring().len(),
            head.prefix.format.checkstring_len()
        );
    }
    let _ = decode_chain(data);
});
