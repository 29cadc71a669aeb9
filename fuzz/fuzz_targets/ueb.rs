//! A URI extension block comes from a share (and, through its hash, from a
//! cap's creator): it parses to a consistent UEB, one that packs back to
//! itself and can be planned without overflow, or is refused.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tahoe_core::format::chk::ueb::Ueb;

fuzz_target!(|data: &[u8]| {
    if let Ok(ueb) = Ueb::parse(data) {
        let again = Ueb::parse(&ueb.pack()).expect("a packed UEB parses");
        assert_eq!(again, ueb);
        let seg = ueb.segmentation();
        let _ = seg.segment_range(seg.num_segments.saturating_sub(1));
    }
});
