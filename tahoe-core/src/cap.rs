//! Capability strings for immutable files: `URI:CHK:`, `URI:CHK-Verifier:`
//! and `URI:LIT:`.
//!
//! A cap is the whole authority over a file, so it is parsed strictly: the
//! exact number of fields, canonical base32 of the exact length, canonical
//! decimal numbers, `1 <= k <= n <= 256`. Anything else is `InvalidInput`
//! with the reason, and every accepted string prints back identically.
//!
//! ```text
//! URI:CHK:<key>:<UEB hash>:<k>:<n>:<size>          read cap
//! URI:CHK-Verifier:<storage index>:<UEB hash>:<k>:<n>:<size>
//! URI:LIT:<data>                                    files of 55 bytes or less
//! ```

use std::fmt;
use std::str::FromStr;

use crate::base32;
use crate::codec::MAX_SHARES;
use crate::error::{Error, Result};
use crate::hash::{Hash, storage_index};
use crate::storage::StorageIndex;

/// The largest file stored inside its cap instead of on servers.
pub const LIT_THRESHOLD: u64 = 55;

/// The read cap of an immutable file.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ChkCap {
    /// The AES key (16 bytes for Tahoe's AES-128).
    pub key: [u8; 16],
    /// The hash of the URI extension block, which pins every other hash.
    pub ueb_hash: Hash,
    /// Shares needed.
    pub k: u16,
    /// Shares made.
    pub n: u16,
    /// File size in bytes.
    pub size: u64,
}

/// The verify cap of an immutable file: can check and repair shares but
/// not decrypt them.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ChkVerifierCap {
    /// Where the shares are stored.
    pub storage_index: StorageIndex,
    /// The hash of the URI extension block.
    pub ueb_hash: Hash,
    /// Shares needed.
    pub k: u16,
    /// Shares made.
    pub n: u16,
    /// File size in bytes.
    pub size: u64,
}

/// A file small enough to live in its cap.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct LitCap {
    /// The file's contents.
    pub data: Vec<u8>,
}

/// Any immutable-file cap.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Cap {
    /// `URI:CHK:`
    Chk(ChkCap),
    /// `URI:CHK-Verifier:`
    ChkVerifier(ChkVerifierCap),
    /// `URI:LIT:`
    Lit(LitCap),
}

impl ChkCap {
    /// The storage index derived from the key.
    pub fn storage_index(&self) -> StorageIndex {
        StorageIndex(storage_index(&self.key))
    }

    /// The verify cap that goes with this read cap.
    pub fn verifier(&self) -> ChkVerifierCap {
        ChkVerifierCap {
            storage_index: self.storage_index(),
            ueb_hash: self.ueb_hash,
            k: self.k,
            n: self.n,
            size: self.size,
        }
    }
}

fn parse_decimal(field: &str, what: &str) -> Result<u64> {
    let canonical = !field.is_empty()
        && field.bytes().all(|b| b.is_ascii_digit())
        && (field == "0" || !field.starts_with('0'));
    if !canonical {
        return Err(Error::invalid_input(format!(
            "cap field {what} {field:?} is not a decimal number"
        )));
    }
    field
        .parse::<u64>()
        .map_err(|_| Error::invalid_input(format!("cap field {what} {field:?} is too large")))
}

/// Parse the `k:n:size` tail shared by CHK caps and verifiers.
fn parse_kn_size(k: &str, n: &str, size: &str) -> Result<(u16, u16, u64)> {
    let k = parse_decimal(k, "k")?;
    let n = parse_decimal(n, "n")?;
    let size = parse_decimal(size, "size")?;
    if k == 0 || k > n || n > u64::from(MAX_SHARES) {
        return Err(Error::invalid_input(format!(
            "cap has k={k}, n={n}: needs 1 <= k <= n <= {MAX_SHARES}"
        )));
    }
    Ok((k as u16, n as u16, size))
}

impl FromStr for Cap {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        if let Some(rest) = s.strip_prefix("URI:LIT:") {
            let data = base32::decode(rest).map_err(|e| e.context("LIT cap"))?;
            return Ok(Cap::Lit(LitCap { data }));
        }
        if let Some(rest) = s.strip_prefix("URI:CHK:") {
            let f: Vec<&str> = rest.split(':').collect();
            if f.len() != 5 {
                return Err(Error::invalid_input(format!(
                    "CHK cap has {} fields after URI:CHK:, expected 5 (key:hash:k:n:size)",
                    f.len()
                )));
            }
            let key = base32::decode_array::<16>(f[0]).map_err(|e| e.context("CHK cap key"))?;
            let ueb_hash =
                base32::decode_array::<32>(f[1]).map_err(|e| e.context("CHK cap UEB hash"))?;
            let (k, n, size) = parse_kn_size(f[2], f[3], f[4])?;
            return Ok(Cap::Chk(ChkCap {
                key,
                ueb_hash,
                k,
                n,
                size,
            }));
        }
        if let Some(rest) = s.strip_prefix("URI:CHK-Verifier:") {
            let f: Vec<&str> = rest.split(':').collect();
            if f.len() != 5 {
                return Err(Error::invalid_input(format!(
                    "CHK verify cap has {} fields, expected 5 (storage-index:hash:k:n:size)",
                    f.len()
                )));
            }
            let storage_index = f[0].parse::<StorageIndex>()?;
            let ueb_hash =
                base32::decode_array::<32>(f[1]).map_err(|e| e.context("verify cap UEB hash"))?;
            let (k, n, size) = parse_kn_size(f[2], f[3], f[4])?;
            return Ok(Cap::ChkVerifier(ChkVerifierCap {
                storage_index,
                ueb_hash,
                k,
                n,
                size,
            }));
        }
        let shown: String = s.chars().take(16).collect();
        Err(Error::invalid_input(format!(
            "not an immutable-file cap (expected URI:CHK:, URI:CHK-Verifier: or URI:LIT:): {shown:?}..."
        )))
    }
}

impl fmt::Display for ChkCap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "URI:CHK:{}:{}:{}:{}:{}",
            base32::encode(&self.key),
            base32::encode(&self.ueb_hash),
            self.k,
            self.n,
            self.size
        )
    }
}

impl fmt::Display for ChkVerifierCap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "URI:CHK-Verifier:{}:{}:{}:{}:{}",
            self.storage_index,
            base32::encode(&self.ueb_hash),
            self.k,
            self.n,
            self.size
        )
    }
}

impl fmt::Display for LitCap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "URI:LIT:{}", base32::encode(&self.data))
    }
}

impl fmt::Display for Cap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cap::Chk(c) => c.fmt(f),
            Cap::ChkVerifier(c) => c.fmt(f),
            Cap::Lit(c) => c.fmt(f),
        }
    }
}

/// Caps are secrets: debug output shows only the kind and the size.
impl fmt::Debug for Cap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cap::Chk(c) => c.fmt(f),
            Cap::ChkVerifier(c) => write!(f, "{c}"),
            Cap::Lit(c) => c.fmt(f),
        }
    }
}

impl fmt::Debug for ChkCap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ChkCap(<secret>, {}-of-{}, {} bytes)",
            self.k, self.n, self.size
        )
    }
}

impl fmt::Debug for ChkVerifierCap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Debug for LitCap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LitCap(<secret>, {} bytes)", self.data.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHK: &str = "URI:CHK:yzxcoagbetwet65ltjpbqyli3m:6b7inuiha2xdtgqzd55i6aeggutnxzr6qfwpv2ep5xlln6pgef7a:1:1:56";

    #[test]
    fn round_trips() {
        for s in [CHK, "URI:LIT:", "URI:LIT:mzxw6ytboi"] {
            let c: Cap = s.parse().unwrap();
            assert_eq!(c.to_string(), s);
        }
        let Cap::Chk(chk) = CHK.parse().unwrap() else {
            panic!()
        };
        let v = Cap::ChkVerifier(chk.verifier());
        let text = v.to_string();
        assert!(text.starts_with("URI:CHK-Verifier:"));
        assert_eq!(text.parse::<Cap>().unwrap(), v);
        assert!(
            !format!("{chk:?}").contains("yzxc"),
            "debug output leaks the key"
        );
    }

    #[test]
    fn strict() {
        let bad = [
            "URI:CHK:yzxcoagbetwet65ltjpbqyli3m:6b7inuiha2xdtgqzd55i6aeggutnxzr6qfwpv2ep5xlln6pgef7a:1:1",
            "URI:CHK:yzxcoagbetwet65ltjpbqyli3m:6b7inuiha2xdtgqzd55i6aeggutnxzr6qfwpv2ep5xlln6pgef7a:1:1:56:7",
            "URI:CHK:YZXCOAGBETWET65LTJPBQYLI3M:6b7inuiha2xdtgqzd55i6aeggutnxzr6qfwpv2ep5xlln6pgef7a:1:1:56",
            "URI:CHK:yzxcoagbetwet65ltjpbqyli3:6b7inuiha2xdtgqzd55i6aeggutnxzr6qfwpv2ep5xlln6pgef7a:1:1:56",
            "URI:CHK:yzxcoagbetwet65ltjpbqyli3m:6b7inuiha2xdtgqzd55i6aeggutnxzr6qfwpv2ep5xlln6pgef7a:4:3:56",
            "URI:CHK:yzxcoagbetwet65ltjpbqyli3m:6b7inuiha2xdtgqzd55i6aeggutnxzr6qfwpv2ep5xlln6pgef7a:0:3:56",
            "URI:CHK:yzxcoagbetwet65ltjpbqyli3m:6b7inuiha2xdtgqzd55i6aeggutnxzr6qfwpv2ep5xlln6pgef7a:3:257:56",
            "URI:CHK:yzxcoagbetwet65ltjpbqyli3m:6b7inuiha2xdtgqzd55i6aeggutnxzr6qfwpv2ep5xlln6pgef7a:1:1:99999999999999999999999",
            "URI:CHK:yzxcoagbetwet65ltjpbqyli3m:6b7inuiha2xdtgqzd55i6aeggutnxzr6qfwpv2ep5xlln6pgef7a:01:1:56",
            "URI:CHK:yzxcoagbetwet65ltjpbqyli3m:6b7inuiha2xdtgqzd55i6aeggutnxzr6qfwpv2ep5xlln6pgef7a:1:1:+56",
            "URI:LIT:mz1",
            "URI:SSK:abc:def",
            "",
        ];
        for b in bad {
            assert!(b.parse::<Cap>().is_err(), "accepted {b:?}");
        }
    }
}
