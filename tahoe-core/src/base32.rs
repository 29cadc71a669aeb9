//! Tahoe's base32: RFC 3548 alphabet in lowercase, no padding.
//!
//! Caps and storage-index directory names are written in it. Decoding is
//! strict (a cap has exactly one spelling): upper case, padding, characters
//! outside the alphabet and non-zero bits after the last whole byte are all
//! refused, so two different strings never name the same bytes.

use crate::error::{Error, Result};

const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// The number of base32 characters that encode `n` bytes.
pub const fn encoded_len(n: usize) -> usize {
    (n * 8).div_ceil(5)
}

/// Encode bytes as lowercase unpadded base32.
pub fn encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(encoded_len(data.len()));
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for &b in data {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((acc >> bits) & 31) as usize]));
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((acc << (5 - bits)) & 31) as usize]));
    }
    out
}

fn value(c: u8) -> Option<u32> {
    match c {
        b'a'..=b'z' => Some(u32::from(c - b'a')),
        b'2'..=b'7' => Some(u32::from(c - b'2') + 26),
        _ => None,
    }
}

/// Decode strict lowercase unpadded base32.
pub fn decode(text: &str) -> Result<Vec<u8>> {
    let bytes = text.as_bytes();
    // Lengths 1, 3 and 6 (mod 8) cannot come from whole bytes.
    if matches!(bytes.len() % 8, 1 | 3 | 6) {
        return Err(Error::invalid_input(format!(
            "base32 text of length {} is not a whole number of bytes",
            bytes.len()
        )));
    }
    let mut out = Vec::with_capacity(bytes.len() * 5 / 8);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for (i, &c) in bytes.iter().enumerate() {
        let v = value(c).ok_or_else(|| {
            Error::invalid_input(format!("invalid base32 character at position {i}"))
        })?;
        acc = (acc << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    if acc != 0 {
        return Err(Error::invalid_input(
            "base32 text has non-zero trailing bits",
        ));
    }
    Ok(out)
}

/// Decode base32 that must encode exactly `N` bytes.
pub fn decode_array<const N: usize>(text: &str) -> Result<[u8; N]> {
    if text.len() != encoded_len(N) {
        return Err(Error::invalid_input(format!(
            "expected {} base32 characters for {N} bytes, got {}",
            encoded_len(N),
            text.len()
        )));
    }
    let v = decode(text)?;
    v.try_into()
        .map_err(|_| Error::internal("base32 length arithmetic disagrees"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4648_vectors_lowercase() {
        let cases: [(&[u8], &str); 7] = [
            (b"", ""),
            (b"f", "my"),
            (b"fo", "mzxq"),
            (b"foo", "mzxw6"),
            (b"foob", "mzxw6yq"),
            (b"fooba", "mzxw6ytb"),
            (b"foobar", "mzxw6ytboi"),
        ];
        for (raw, text) in cases {
            assert_eq!(encode(raw), text);
            assert_eq!(decode(text).unwrap(), raw);
        }
    }

    #[test]
    fn round_trip_all_lengths() {
        for n in 0..64usize {
            let data: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
            let text = encode(&data);
            assert_eq!(text.len(), encoded_len(n));
            assert_eq!(decode(&text).unwrap(), data);
        }
    }

    #[test]
    fn strict_decoding() {
        assert!(decode("MZXW6").is_err());
        assert!(decode("mzxw6=").is_err());
        assert!(decode("mz1").is_err());
        assert!(decode("mz7").is_err()); // wrong length class
        assert!(decode("my").is_ok() && decode("mz").is_err()); // trailing bits
        assert!(decode_array::<2>("mzxq").is_ok());
        assert!(decode_array::<2>("mzxw6").is_err());
    }
}
