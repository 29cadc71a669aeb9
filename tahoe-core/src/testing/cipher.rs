//! The cipher conformance suite.

use crate::kinds::cipher::Cipher;
use crate::testing::{Clauses, pseudo_random_bytes};

/// A clause of the cipher contract: its name, and its check of a cipher.
pub type Clause = (&'static str, fn(&dyn Cipher));

/// The cipher contract, clause by clause.
pub const CLAUSES: &[Clause] = &[
    ("the keystream changes the data", changes_the_data),
    ("applying the keystream twice restores the data", involution),
    ("the keystream at any offset is the straight stream's", seek),
    ("chunked encryption equals straight encryption", chunks),
    ("different keys give different streams", other_keys),
    ("keys of the wrong length are refused", key_lengths),
    (
        "a range past the last u64 offset is refused and left alone",
        end_of_range,
    ),
];

/// Run the cipher contract against `cipher`: every clause of
/// [`CLAUSES`], then a panic naming those that failed.
pub fn run(cipher: &dyn Cipher) {
    let mut clauses = Clauses::new("cipher");
    for (name, check) in CLAUSES {
        clauses.check(name, || check(cipher));
    }
    clauses.finish();
}

const LEN: usize = 4099;

/// A key, a plaintext of [`LEN`] bytes, and that plaintext encrypted from
/// offset 0 in one call.
fn straight(cipher: &dyn Cipher) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let key = pseudo_random_bytes(1, cipher.key_len());
    let plain = pseudo_random_bytes(2, LEN);
    let mut straight = plain.clone();
    cipher
        .apply_keystream(&key, 0, &mut straight)
        .expect("encrypt from 0");
    (key, plain, straight)
}

fn changes_the_data(cipher: &dyn Cipher) {
    let name = cipher.name();
    let (_, plain, straight) = straight(cipher);
    assert_ne!(
        straight, plain,
        "{name}: the keystream must change the data"
    );
}

fn involution(cipher: &dyn Cipher) {
    let name = cipher.name();
    let (key, plain, straight) = straight(cipher);
    let mut back = straight.clone();
    cipher.apply_keystream(&key, 0, &mut back).expect("decrypt");
    assert_eq!(
        back, plain,
        "{name}: applying the keystream twice must restore the data"
    );
}

/// Any offset, aligned or not, any length.
fn seek(cipher: &dyn Cipher) {
    let name = cipher.name();
    let (key, plain, straight) = straight(cipher);
    for offset in [0usize, 1, 15, 16, 17, 31, 32, 33, 1000, 4095, 4098] {
        for len in [0usize, 1, 5, 16, 100, LEN - offset] {
            let len = len.min(LEN - offset);
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
}

/// Piecewise over uneven chunks.
fn chunks(cipher: &dyn Cipher) {
    let name = cipher.name();
    let (key, plain, straight) = straight(cipher);
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
}

fn other_keys(cipher: &dyn Cipher) {
    let name = cipher.name();
    let (_, plain, straight) = straight(cipher);
    let other = pseudo_random_bytes(3, cipher.key_len());
    let mut with_other = plain.clone();
    cipher
        .apply_keystream(&other, 0, &mut with_other)
        .expect("other key");
    assert_ne!(
        with_other, straight,
        "{name}: different keys gave the same stream"
    );
}

fn key_lengths(cipher: &dyn Cipher) {
    let name = cipher.name();
    let plain = pseudo_random_bytes(2, LEN);
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
}

/// A range running past the last u64 offset cannot belong to a file: it
/// is refused, not wrapped around or panicked on.
fn end_of_range(cipher: &dyn Cipher) {
    let name = cipher.name();
    let key = pseudo_random_bytes(1, cipher.key_len());
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
