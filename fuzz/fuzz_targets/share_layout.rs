//! A share's header, hash chain and UEB length come from a storage server:
//! every offset that parses lies inside the share, in order.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tahoe_core::format::chk::layout::{ShareLayout, parse_ueb_len};
use tahoe_core::format::hashtree::parse_share_hashes;

fuzz_target!(|data: &[u8]| {
    if data.len() < 24 {
        return;
    }
    let (params, bytes) = data.split_at(24);
    let num = |i: usize| u64::from_le_bytes(params[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
    let (share_size, data_size, segments) = (num(0), num(1), num(2) % (1 << 21));
    if let Ok(l) = ShareLayout::parse(bytes, share_size) {
        assert!(l.uri_extension + l.field_size() <= share_size);
        let _ = l.check(data_size, segments);
        let _ = l.share_hash_count();
        let _ = parse_ueb_len(&l, bytes, share_size);
    }
    let _ = parse_share_hashes(bytes);
});
