//! Mutable files' caps: `URI:SSK:`, `URI:SSK-RO:`, `URI:SSK-Verifier:`
//! (SDMF) and their `URI:MDMF...` counterparts.

use std::fmt;

use crate::base32;
use crate::error::{Error, Result};
use crate::format::hash::Hash;
use crate::format::ssk::MutableFormat;
use crate::format::ssk::keys;
use crate::kinds::storage::StorageIndex;

use super::Cap;

/// The write cap of a mutable file: the write key (which yields every
/// other key) and the fingerprint of the verification key.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SskWriteCap {
    /// SDMF or MDMF.
    pub format: MutableFormat,
    /// Decrypts the signing key stored in the shares.
    pub write_key: [u8; 16],
    /// Pins the verification key.
    pub fingerprint: Hash,
}

/// The read cap of a mutable file.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SskReadCap {
    /// SDMF or MDMF.
    pub format: MutableFormat,
    /// Decrypts the data.
    pub read_key: [u8; 16],
    /// Pins the verification key.
    pub fingerprint: Hash,
}

/// The verify cap of a mutable file: checks shares, cannot read them.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SskVerifierCap {
    /// SDMF or MDMF.
    pub format: MutableFormat,
    /// Where the shares are.
    pub storage_index: StorageIndex,
    /// Pins the verification key.
    pub fingerprint: Hash,
}

impl SskWriteCap {
    /// The write cap of the mutable file whose signing key has the DER
    /// encodings `private_der` (PKCS#8) and `public_der` (its verifying
    /// key's SubjectPublicKeyInfo), in `format`.
    pub fn from_key(format: MutableFormat, private_der: &[u8], public_der: &[u8]) -> Self {
        SskWriteCap {
            format,
            write_key: keys::write_key(private_der),
            fingerprint: keys::fingerprint(public_der),
        }
    }

    /// The read cap this write cap diminishes to.
    pub fn read_cap(&self) -> SskReadCap {
        SskReadCap {
            format: self.format,
            read_key: keys::read_key(&self.write_key),
            fingerprint: self.fingerprint,
        }
    }

    /// The storage index.
    pub fn storage_index(&self) -> StorageIndex {
        self.read_cap().storage_index()
    }
}

impl SskReadCap {
    /// The verify cap this read cap diminishes to.
    pub fn verifier(&self) -> SskVerifierCap {
        SskVerifierCap {
            format: self.format,
            storage_index: self.storage_index(),
            fingerprint: self.fingerprint,
        }
    }

    /// The storage index.
    pub fn storage_index(&self) -> StorageIndex {
        keys::storage_index(&self.read_key)
    }
}

/// The three mutable cap kinds.
#[derive(Clone, Copy)]
enum SskKind {
    Write,
    Read,
    Verify,
}

/// The prefix of a mutable cap of `kind` and `format`.
fn ssk_prefix(format: MutableFormat, kind: SskKind) -> &'static str {
    match (format, kind) {
        (MutableFormat::Sdmf, SskKind::Write) => "URI:SSK:",
        (MutableFormat::Sdmf, SskKind::Read) => "URI:SSK-RO:",
        (MutableFormat::Sdmf, SskKind::Verify) => "URI:SSK-Verifier:",
        (MutableFormat::Mdmf, SskKind::Write) => "URI:MDMF:",
        (MutableFormat::Mdmf, SskKind::Read) => "URI:MDMF-RO:",
        (MutableFormat::Mdmf, SskKind::Verify) => "URI:MDMF-Verifier:",
    }
}

/// Parse a mutable cap, or `None` when `s` has no mutable-cap prefix.
pub(super) fn parse(s: &str) -> Option<Result<Cap>> {
    for format in [MutableFormat::Sdmf, MutableFormat::Mdmf] {
        for kind in [SskKind::Write, SskKind::Read, SskKind::Verify] {
            let prefix = ssk_prefix(format, kind);
            let Some(rest) = s.strip_prefix(prefix) else {
                continue;
            };
            return Some((|| {
                let f: Vec<&str> = rest.split(':').collect();
                if f.len() != 2 {
                    return Err(Error::invalid_input(format!(
                        "{prefix} cap has {} fields, expected 2 (key:fingerprint)",
                        f.len()
                    )));
                }
                let key = base32::decode_array::<16>(f[0])
                    .map_err(|e| e.context(format!("{prefix} cap key")))?;
                let fingerprint = base32::decode_array::<32>(f[1])
                    .map_err(|e| e.context(format!("{prefix} cap fingerprint")))?;
                Ok(match kind {
                    SskKind::Write => Cap::SskWrite(SskWriteCap {
                        format,
                        write_key: key,
                        fingerprint,
                    }),
                    SskKind::Read => Cap::SskRead(SskReadCap {
                        format,
                        read_key: key,
                        fingerprint,
                    }),
                    SskKind::Verify => Cap::SskVerifier(SskVerifierCap {
                        format,
                        storage_index: StorageIndex(key),
                        fingerprint,
                    }),
                })
            })());
        }
    }
    None
}

/// `<prefix><key>:<fingerprint>`, the shape of every mutable cap.
fn fmt_ssk(
    f: &mut fmt::Formatter<'_>,
    prefix: &str,
    key: &[u8],
    fingerprint: &Hash,
) -> fmt::Result {
    write!(
        f,
        "{prefix}{}:{}",
        base32::encode(key),
        base32::encode(fingerprint)
    )
}

impl fmt::Display for SskWriteCap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = ssk_prefix(self.format, SskKind::Write);
        fmt_ssk(f, p, &self.write_key, &self.fingerprint)
    }
}

impl fmt::Display for SskReadCap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = ssk_prefix(self.format, SskKind::Read);
        fmt_ssk(f, p, &self.read_key, &self.fingerprint)
    }
}

impl fmt::Display for SskVerifierCap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = ssk_prefix(self.format, SskKind::Verify);
        fmt_ssk(f, p, &self.storage_index.0, &self.fingerprint)
    }
}

impl fmt::Debug for SskWriteCap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SskWriteCap({}, <secret>)", self.format.name())
    }
}

impl fmt::Debug for SskReadCap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SskReadCap({}, <secret>)", self.format.name())
    }
}

impl fmt::Debug for SskVerifierCap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}
