//! The cipher conformance suite.

use crate::kinds::cipher::Cipher;
use crate::testing::pseudo_random_bytes;

/// Run the cipher contract against `cipher`.
pub fn run(cipher: &dyn Cipher) {
    let name = cipher.name().to_string();
    let key = pseudo_random_bytes(1, cipher.key_len());
    let plain = pseudo_random_bytes(2, 4099);

    let mut straight = plain.clone();
    cipher
        .apply_keystream(&key, 0, &mut straight)
        .expect("encrypt from 0");
    assert_ne!(
        straight, plain,
        "{name}: the keystream must change the data"
    );

    // Involution: applying twice gives the plaintext back.
    let mut back = straight.clone();
    cipher.apply_keystream(&key, 0, &mut back).expect("decrypt");
    assert_eq!(
        back, plain,
        "{name}: applying the keystream twice must restore the data"
    );

    // Seek: any offset, aligned or not, any length.
    for offset in [0usize, 1, 15, 16, 17, 31, 32, 33, 1000, 4095, 4098] {
        for len in [0usize, 1, 5, 16, 100, 4099 - offset] {
            let len = len.min(4099 - offset);
            let mut part = plain[offset..offset + len].to_vec();
            cipher
                .apply_keystream(&key, offset as u64, &mut part)
                .expect("encrypt at offset");
            assert_eq!(
                part,
                straight[offset..offset + len],
                "{name}: keystream at offset {offset} (len {len}) differs from the straight stream"
            );
        }
    }

    // Piecewise over uneven chunks equals straight.
    let mut pieces = plain.clone();
    let mut at = 0usize;
    for chunk in [3usize, 13, 16, 100, 1, 4096] {
        let end = (at + chunk).min(pieces.len());
        cipher
            .apply_keystream(&key, at as u64, &mut pieces[at..end])
            .expect("chunk");
        at = end;
    }
    assert_eq!(
        pieces, straight,
        "{name}: chunked encryption differs from straight"
    );

    // Different keys give different streams.
    let other = pseudo_random_bytes(3, cipher.key_len());
    let mut with_other = plain.clone();
    cipher
        .apply_keystream(&other, 0, &mut with_other)
        .expect("other key");
    assert_ne!(
        with_other, straight,
        "{name}: different keys gave the same stream"
    );

    // Wrong key lengths are refused.
    for bad in [0, cipher.key_len().saturating_sub(1), cipher.key_len() + 1] {
        if bad == cipher.key_len() {
            continue;
        }
        let mut d = plain.clone();
        assert!(
            cipher.apply_keystream(&vec![0u8; bad], 0, &mut d).is_err(),
            "{name}: a {bad}-byte key must be refused"
        );
    }

    // A range running past the last u64 offset cannot belong to a file: it
    // is refused, not wrapped around or panicked on.
    let mut d = vec![0u8; 32];
    assert!(
        cipher.apply_keystream(&key, u64::MAX - 8, &mut d).is_err(),
        "{name}: a range past u64::MAX must be refused"
    );
    assert_eq!(
        d,
        vec![0u8; 32],
        "{name}: a refused range must be left alone"
    );
}
