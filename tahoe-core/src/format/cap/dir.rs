//! Directories' caps: the cap of the file holding a directory's entries,
//! under a directory prefix (`URI:DIR2:` for `URI:SSK:`, and so on).

use crate::format::cap::ChkCap;
use crate::format::cap::ChkVerifierCap;
use crate::format::cap::LitCap;
use crate::format::cap::SskReadCap;
use crate::format::cap::SskVerifierCap;
use crate::format::cap::SskWriteCap;
use std::fmt;

use crate::error::{Error, Result};

use super::Cap;

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

/// Parse a directory's cap, or `None` when `s` has no directory prefix.
pub(super) fn parse(s: &str) -> Option<Result<Cap>> {
    let (dir, inner) = DIR_PREFIXES.iter().find(|(dir, _)| s.starts_with(dir))?;
    let file = format!("{inner}{}", &s[dir.len()..])
        .parse()
        .map_err(|e: Error| e.context(format!("{dir} cap")));
    Some(file.map(|file| {
        Cap::Dir(DirCap::from_file_cap(file).expect("a file cap's prefix is not a directory's"))
    }))
}
