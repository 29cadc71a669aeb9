//! Caps come from users and from directories: a string parses strictly to
//! a cap that prints back as the same string, or is refused.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tahoe_core::format::cap::Cap;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(cap) = text.parse::<Cap>() {
        assert_eq!(cap.to_string(), text, "a cap has one spelling");
    }
});
