//! Capability strings: immutable files (`URI:CHK:`, `URI:CHK-Verifier:`,
//! `URI:LIT:`) and mutable files (`URI:SSK:`, `URI:SSK-RO:`,
//! `URI:SSK-Verifier:` for SDMF; `URI:MDMF:`, `URI:MDMF-RO:`,
//! `URI:MDMF-Verifier:` for MDMF) and directories, which are files holding
//! packed entries ([`crate::format::dirnode`]): a directory cap is the cap of that
//! file under a directory prefix (`URI:DIR2:` for `URI:SSK:`, and so on,
//! see [`DIR_PREFIXES`]).
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
//! URI:SSK:<write key>:<fingerprint>                  SDMF write cap (MDMF: URI:MDMF:)
//! URI:SSK-RO:<read key>:<fingerprint>                SDMF read cap (URI:MDMF-RO:)
//! URI:SSK-Verifier:<storage index>:<fingerprint>     (URI:MDMF-Verifier:)
//! ```
//!
//! Authority diminishes write → read → verify, each derived from the one
//! before by a one-way hash ([`crate::format::ssk::keys`]). Tahoe-LAFS accepts
//! (and drops) extra `:`-separated fields after an MDMF cap; they carry
//! nothing and would break exact round trips, so they are refused here.

use std::fmt;
use std::str::FromStr;

use crate::base32;
use crate::error::{Error, Result};
use crate::format::hash::{Hash, storage_index};
use crate::format::ssk::MutableFormat;
use crate::format::ssk::keys;
use crate::kinds::codec::MAX_SHARES;
use crate::kinds::storage::StorageIndex;

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

/// Any cap.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Cap {
    /// `URI:CHK:`
    Chk(ChkCap),
    /// `URI:CHK-Verifier:`
    ChkVerifier(ChkVerifierCap),
    /// `URI:LIT:`
    Lit(LitCap),
    /// `URI:SSK:` or `URI:MDMF:`
    SskWrite(SskWriteCap),
    /// `URI:SSK-RO:` or `URI:MDMF-RO:`
    SskRead(SskReadCap),
    /// `URI:SSK-Verifier:` or `URI:MDMF-Verifier:`
    SskVerifier(SskVerifierCap),
    /// `URI:DIR2...:`, a directory.
    Dir(DirCap),
}

/// A directory's cap: the cap of the file that holds its entries. Mutable
/// directories are SDMF or MDMF files (write, read or verify cap);
/// immutable ones are CHK or LIT files.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum DirCap {
    /// `URI:DIR2:` or `URI:DIR2-MDMF:`: read and change the entries.
    Write(SskWriteCap),
    /// `URI:DIR2-RO:` or `URI:DIR2-MDMF-RO:`: read the entries (and only
    /// the read caps of the children).
    Read(SskReadCap),
    /// `URI:DIR2-Verifier:` or `URI:DIR2-MDMF-Verifier:`.
    Verify(SskVerifierCap),
    /// `URI:DIR2-CHK:`: an immutable directory.
    Chk(ChkCap),
    /// `URI:DIR2-CHK-Verifier:`.
    ChkVerifier(ChkVerifierCap),
    /// `URI:DIR2-LIT:`: an immutable directory small enough for its cap.
    Lit(LitCap),
}

/// Each directory prefix and the prefix of the file cap it wraps. The
/// rest of the string is the same.
pub const DIR_PREFIXES: [(&str, &str); 9] = [
    ("URI:DIR2:", "URI:SSK:"),
    ("URI:DIR2-RO:", "URI:SSK-RO:"),
    ("URI:DIR2-Verifier:", "URI:SSK-Verifier:"),
    ("URI:DIR2-MDMF:", "URI:MDMF:"),
    ("URI:DIR2-MDMF-RO:", "URI:MDMF-RO:"),
    ("URI:DIR2-MDMF-Verifier:", "URI:MDMF-Verifier:"),
    ("URI:DIR2-CHK:", "URI:CHK:"),
    ("URI:DIR2-CHK-Verifier:", "URI:CHK-Verifier:"),
    ("URI:DIR2-LIT:", "URI:LIT:"),
];

/// The prefixes of the file caps this version knows.
const FILE_PREFIXES: [&str; 9] = [
    "URI:CHK:",
    "URI:CHK-Verifier:",
    "URI:LIT:",
    "URI:SSK:",
    "URI:SSK-RO:",
    "URI:SSK-Verifier:",
    "URI:MDMF:",
    "URI:MDMF-RO:",
    "URI:MDMF-Verifier:",
];

/// Whether `s` starts like a cap of a kind this version knows (so it must
/// parse), rather than one of a future kind.
pub fn is_known_cap_kind(s: &str) -> bool {
    FILE_PREFIXES.iter().any(|p| s.starts_with(p))
        || DIR_PREFIXES.iter().any(|(p, _)| s.starts_with(p))
}

impl DirCap {
    /// The cap of the file holding the entries.
    pub fn file_cap(&self) -> Cap {
        match self {
            DirCap::Write(c) => Cap::SskWrite(c.clone()),
            DirCap::Read(c) => Cap::SskRead(c.clone()),
            DirCap::Verify(c) => Cap::SskVerifier(c.clone()),
            DirCap::Chk(c) => Cap::Chk(c.clone()),
            DirCap::ChkVerifier(c) => Cap::ChkVerifier(c.clone()),
            DirCap::Lit(c) => Cap::Lit(c.clone()),
        }
    }

    /// The directory whose entries `file` holds (`None` for a directory).
    pub fn from_file_cap(file: Cap) -> Option<DirCap> {
        Some(match file {
            Cap::SskWrite(c) => DirCap::Write(c),
            Cap::SskRead(c) => DirCap::Read(c),
            Cap::SskVerifier(c) => DirCap::Verify(c),
            Cap::Chk(c) => DirCap::Chk(c),
            Cap::ChkVerifier(c) => DirCap::ChkVerifier(c),
            Cap::Lit(c) => DirCap::Lit(c),
            Cap::Dir(_) => return None,
        })
    }

    /// Whether the entries can change.
    pub fn is_mutable(&self) -> bool {
        matches!(self, DirCap::Write(_) | DirCap::Read(_) | DirCap::Verify(_))
    }
}

impl fmt::Display for DirCap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self.file_cap().to_string();
        let (dir, inner) = DIR_PREFIXES
            .iter()
            .filter(|(_, inner)| file.starts_with(inner))
            .max_by_key(|(_, inner)| inner.len())
            .expect("every directory's file cap has a prefix in DIR_PREFIXES");
        write!(f, "{dir}{}", &file[inner.len()..])
    }
}

impl fmt::Debug for DirCap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DirCap({:?})", self.file_cap())
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
fn parse_ssk(s: &str) -> Option<Result<Cap>> {
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

impl Cap {
    /// The most a holder of this cap may do with a mutable file's contents:
    /// its read cap (`None` for immutable caps and verify caps).
    pub fn mutable_read_cap(&self) -> Option<SskReadCap> {
        match self {
            Cap::SskWrite(w) => Some(w.read_cap()),
            Cap::SskRead(r) => Some(r.clone()),
            _ => None,
        }
    }

    /// The read-only cap this cap diminishes to: itself when it is not a
    /// write cap.
    pub fn read_only(&self) -> Cap {
        match self {
            Cap::SskWrite(w) => Cap::SskRead(w.read_cap()),
            Cap::Dir(DirCap::Write(w)) => Cap::Dir(DirCap::Read(w.read_cap())),
            other => other.clone(),
        }
    }

    /// Whether this cap can change what it names.
    pub fn is_write(&self) -> bool {
        matches!(self, Cap::SskWrite(_) | Cap::Dir(DirCap::Write(_)))
    }

    /// Whether what it names can change (by anyone).
    pub fn is_mutable(&self) -> bool {
        match self {
            Cap::SskWrite(_) | Cap::SskRead(_) | Cap::SskVerifier(_) => true,
            Cap::Dir(d) => d.is_mutable(),
            Cap::Chk(_) | Cap::ChkVerifier(_) | Cap::Lit(_) => false,
        }
    }

    /// The kind with its article, for messages: `an SDMF write`, `a
    /// directory (...)`.
    pub fn a_kind(&self) -> String {
        let kind = self.kind_name();
        let an = kind.starts_with(['a', 'e', 'i', 'o', 'u'])
            || kind.starts_with("SDMF")
            || kind.starts_with("MDMF");
        format!("{} {kind}", if an { "an" } else { "a" })
    }

    /// The kind of cap, for messages: `CHK read`, `SDMF write`, ...
    pub fn kind_name(&self) -> String {
        match self {
            Cap::Dir(d) => format!("directory ({})", d.file_cap().kind_name()),
            Cap::Chk(_) => "immutable (CHK) read".into(),
            Cap::ChkVerifier(_) => "immutable (CHK) verify".into(),
            Cap::Lit(_) => "literal (LIT)".into(),
            Cap::SskWrite(c) => format!("{} write", c.format.name().to_uppercase()),
            Cap::SskRead(c) => format!("{} read", c.format.name().to_uppercase()),
            Cap::SskVerifier(c) => format!("{} verify", c.format.name().to_uppercase()),
        }
    }
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
        if let Some(parsed) = parse_ssk(s) {
            return parsed;
        }
        if let Some((dir, inner)) = DIR_PREFIXES.iter().find(|(dir, _)| s.starts_with(dir)) {
            let file: Cap = format!("{inner}{}", &s[dir.len()..])
                .parse()
                .map_err(|e: Error| e.context(format!("{dir} cap")))?;
            return Ok(Cap::Dir(
                DirCap::from_file_cap(file).expect("a file cap's prefix is not a directory's"),
            ));
        }
        let shown: String = s.chars().take(16).collect();
        Err(Error::invalid_input(format!(
            "not a cap (expected URI:CHK:, URI:CHK-Verifier:, URI:LIT:, URI:SSK:, URI:SSK-RO:, \
             URI:SSK-Verifier:, URI:MDMF:, URI:MDMF-RO:, URI:MDMF-Verifier: or a directory's \
             URI:DIR2...:): {shown:?}..."
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

impl fmt::Display for Cap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cap::Chk(c) => c.fmt(f),
            Cap::ChkVerifier(c) => c.fmt(f),
            Cap::Lit(c) => c.fmt(f),
            Cap::SskWrite(c) => c.fmt(f),
            Cap::SskRead(c) => c.fmt(f),
            Cap::SskVerifier(c) => c.fmt(f),
            Cap::Dir(c) => fmt::Display::fmt(c, f),
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
            Cap::SskWrite(c) => c.fmt(f),
            Cap::SskRead(c) => c.fmt(f),
            Cap::SskVerifier(c) => c.fmt(f),
            Cap::Dir(c) => c.fmt(f),
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
    fn mutable_caps_round_trip_and_diminish() {
        let w = "URI:SSK:fs6ul2fju2fvb2cfx7gt6ngycm:hncpinwszbggrurbvuaaexnftk3j5wfr7473pj2g734mo2isxlbq";
        for prefix in [
            "URI:SSK:",
            "URI:SSK-RO:",
            "URI:SSK-Verifier:",
            "URI:MDMF:",
            "URI:MDMF-RO:",
            "URI:MDMF-Verifier:",
        ] {
            let s = format!("{prefix}{}", &w["URI:SSK:".len()..]);
            let c: Cap = s.parse().unwrap();
            assert_eq!(c.to_string(), s);
        }
        let Cap::SskWrite(wc) = w.parse().unwrap() else {
            panic!()
        };
        let r = wc.read_cap();
        let v = r.verifier();
        assert_eq!(r.fingerprint, wc.fingerprint);
        assert_eq!(v.storage_index, wc.storage_index());
        assert_ne!(r.read_key, wc.write_key);
        assert!(r.to_string().starts_with("URI:SSK-RO:"));
        assert!(v.to_string().starts_with("URI:SSK-Verifier:"));
        assert!(!format!("{wc:?}").contains("fs6u"));
        assert!(!format!("{r:?}").contains(&base32::encode(&r.read_key)));
    }

    /// Caps the real Tahoe-LAFS 1.20 printed (shared/reference/tahoe-1.20):
    /// a root directory's three caps, an immutable and a literal directory.
    #[test]
    fn directory_caps_round_trip_and_diminish() {
        let rw = "URI:DIR2:i7ryyroiagwqag2wgpkkuk3xxy:ujf2wyw5k3po3zupayfnm3fqlrftplet6ktd3e4ks6umqqyklwdq";
        let ro = "URI:DIR2-RO:czytd764lgjmb2yx3ldvqc4jre:ujf2wyw5k3po3zupayfnm3fqlrftplet6ktd3e4ks6umqqyklwdq";
        let verify = "URI:DIR2-Verifier:xiecght4v5th232fp5nvdxdyz4:ujf2wyw5k3po3zupayfnm3fqlrftplet6ktd3e4ks6umqqyklwdq";
        let chk = "URI:DIR2-CHK:2rbt62oh54iqryivubnkopr27u:abultw2hfmanpccnm3fp3hccgflcuuif777b6e47d3sywieywp5q:3:10:133";
        for s in [
            rw,
            ro,
            verify,
            chk,
            "URI:DIR2-LIT:",
            "URI:DIR2-LIT:mzxw6ytboi",
        ] {
            let c: Cap = s.parse().unwrap();
            assert!(matches!(c, Cap::Dir(_)), "{s}");
            assert_eq!(c.to_string(), s);
        }
        let c: Cap = rw.parse().unwrap();
        assert!(c.is_write() && c.is_mutable());
        assert_eq!(c.read_only().to_string(), ro);
        let Cap::Dir(DirCap::Read(r)) = c.read_only() else {
            panic!()
        };
        assert_eq!(Cap::Dir(DirCap::Verify(r.verifier())).to_string(), verify);
        let imm: Cap = chk.parse().unwrap();
        assert!(!imm.is_write() && !imm.is_mutable());
        assert_eq!(imm.read_only(), imm);
        for s in [
            "URI:DIR2-MDMF:w334plf5hafvt5kq3zqi7cwcwa:4jwr3o3r63umac3ifea6j4b5lz4exmdq2q62vzi6kyf6llok6ena",
            "URI:DIR2-MDMF-RO:w334plf5hafvt5kq3zqi7cwcwa:4jwr3o3r63umac3ifea6j4b5lz4exmdq2q62vzi6kyf6llok6ena",
            "URI:DIR2-MDMF-Verifier:w334plf5hafvt5kq3zqi7cwcwa:4jwr3o3r63umac3ifea6j4b5lz4exmdq2q62vzi6kyf6llok6ena",
        ] {
            assert_eq!(s.parse::<Cap>().unwrap().to_string(), s);
        }
        assert!(
            !format!("{c:?}").contains("i7ryy"),
            "debug output leaks the key"
        );
        for bad in [
            "URI:DIR2:i7ryyroiagwqag2wgpkkuk3xxy",
            "URI:DIR2-CHK:2rbt62oh54iqryivubnkopr27u:abultw2hfmanpccnm3fp3hccgflcuuif777b6e47d3sywieywp5q:3:10",
            "URI:DIR2-LIT:mz1",
            "URI:DIR2-X:i7ryyroiagwqag2wgpkkuk3xxy:ujf2wyw5k3po3zupayfnm3fqlrftplet6ktd3e4ks6umqqyklwdq",
        ] {
            assert!(bad.parse::<Cap>().is_err(), "accepted {bad:?}");
        }
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
            "URI:SSK:fs6ul2fju2fvb2cfx7gt6ngycm:hncpinwszbggrurbvuaaexnftk3j5wfr7473pj2g734mo2isxlbq:3",
            "URI:MDMF:fs6ul2fju2fvb2cfx7gt6ngycm:hncpinwszbggrurbvuaaexnftk3j5wfr7473pj2g734mo2isxlbq:3:131073",
            "URI:SSK:fs6ul2fju2fvb2cfx7gt6ngycm",
            "URI:SSK-RO:fs6ul2fju2fvb2cfx7gt6ngyc:hncpinwszbggrurbvuaaexnftk3j5wfr7473pj2g734mo2isxlbq",
            "URI:MDMF-Verifier:fs6ul2fju2fvb2cfx7gt6ngycm:hncpinwszbggrurbvuaaexnftk3j5wfr7473pj2g734mo2isxlbQ",
            "URI:SSK-X:fs6ul2fju2fvb2cfx7gt6ngycm:hncpinwszbggrurbvuaaexnftk3j5wfr7473pj2g734mo2isxlbq",
            "",
        ];
        for b in bad {
            assert!(b.parse::<Cap>().is_err(), "accepted {b:?}");
        }
    }
}
