//! A directory's packed entries come from whoever holds its write cap:
//! parsing never panics, every entry it keeps can be asked for its caps
//! (an answer or an error), and what it keeps packs to bytes that parse
//! back to the same entries with nothing skipped.
#![no_main]

use std::sync::Arc;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use tahoe_core::format::dirnode::{Directory, WriteKey};
use tahoe_core::kinds::cipher::Cipher;

/// A stand-in keystream: the target is about parsing, not AES.
struct Xor;
impl Cipher for Xor {
    fn name(&self) -> &str {
        "xor"
    }
    fn key_len(&self) -> usize {
        16
    }
    fn apply_keystream(&self, key: &[u8], offset: u64, data: &mut [u8]) -> tahoe_core::Result<()> {
        for (i, b) in data.iter_mut().enumerate() {
            *b ^= key[(offset as usize + i) % 16];
        }
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let (mutable, data) = match data.split_first() {
        Some((b, rest)) => (b & 1 == 0, rest),
        None => (true, data),
    };
    let key = mutable.then(|| WriteKey {
        key: [3; 16],
        cipher: Arc::new(Xor),
    });
    let Ok(dir) = Directory::parse(Bytes::copy_from_slice(data), mutable, key.clone()) else {
        return;
    };
    for (name, entry) in dir.entries() {
        let _ = dir.node_of(name, entry);
    }
    let packed = dir.pack().expect("a parsed directory packs");
    let again = Directory::parse(Bytes::from(packed), mutable, key).expect("packed bytes parse");
    assert!(again.skipped().is_empty());
    assert!(
        again
            .entries()
            .map(|(n, _)| n)
            .eq(dir.entries().map(|(n, _)| n))
    );
});
