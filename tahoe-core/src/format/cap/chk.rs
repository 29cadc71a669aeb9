//! Immutable files' caps: `URI:CHK:`, `URI:CHK-Verifier:`, `URI:LIT:`.

use std::fmt;

use crate::base32;
use crate::error::{Error, Result};
use crate::format::hash::{Hash, storage_index};
use crate::kinds::codec::MAX_SHARES;
use crate::kinds::storage::StorageIndex;

use super::Cap;

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

/// Parse an immutable file's cap (`URI:LIT:`, `URI:CHK:`,
/// `URI:CHK-Verifier:`), or `None` when `s` has none of their prefixes.
pub(super) fn parse(s: &str) -> Option<Result<Cap>> {
    let parsed = || -> Result<Option<Cap>> {
        if let Some(rest) = s.strip_prefix("URI:LIT:") {
            let data = base32::decode(rest).map_err(|e| e.context("LIT cap"))?;
            return Ok(Some(Cap::Lit(LitCap { data })));
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
            return Ok(Some(Cap::Chk(ChkCap {
                key,
                ueb_hash,
                k,
                n,
                size,
            })));
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
            return Ok(Some(Cap::ChkVerifier(ChkVerifierCap {
                storage_index,
                ueb_hash,
                k,
                n,
                size,
            })));
        }
        Ok(None)
    };
    parsed().transpose()
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
