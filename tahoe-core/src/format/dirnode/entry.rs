//! A directory's entries: names (NFC, checked), the caps a child is known
//! by, its metadata, and how an existing name is treated.

use std::fmt;

use bytes::Bytes;
use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};

use crate::error::{Error, Result};
use crate::format::cap::{Cap, DirCap, is_known_cap_kind};

/// The longest entry name, in bytes of UTF-8 (Tahoe-LAFS sets none; this
/// is the longest path Linux accepts).
pub const MAX_NAME_LEN: usize = 4096;
/// The longest cap an entry may hold.
pub const MAX_CAP_LEN: usize = 64 << 10;
/// The largest metadata object of one entry.
pub const MAX_METADATA_LEN: usize = 1 << 20;

/// An entry's metadata: a JSON object, keys in their order.
pub type Metadata = serde_json::Map<String, serde_json::Value>;

/// A child's cap as an entry holds it: one this version knows, or one of
/// a kind it does not (a future format), kept as it is so that it
/// survives rewrites, as Tahoe-LAFS keeps them.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum ChildCap {
    /// A parsed cap.
    Known(Cap),
    /// The text of a cap of an unknown kind, with any `ro.`/`imm.` prefix.
    Unknown(String),
}

impl ChildCap {
    /// Read a cap from an entry field: trailing spaces dropped (Tahoe pads
    /// with them), `ro.`/`imm.` prefixes on known kinds dropped; a known
    /// kind must parse.
    pub fn parse(text: &str) -> Result<Option<ChildCap>> {
        let text = text.trim_end_matches(' ');
        if text.is_empty() {
            return Ok(None);
        }
        let bare = text
            .strip_prefix("ro.")
            .or_else(|| text.strip_prefix("imm."))
            .unwrap_or(text);
        if is_known_cap_kind(bare) {
            return Ok(Some(ChildCap::Known(bare.parse()?)));
        }
        if text.chars().any(char::is_control) {
            return Err(Error::invalid_input("a cap with control characters"));
        }
        Ok(Some(ChildCap::Unknown(text.to_string())))
    }

    /// The parsed cap, if known.
    pub fn known(&self) -> Option<&Cap> {
        match self {
            ChildCap::Known(c) => Some(c),
            ChildCap::Unknown(_) => None,
        }
    }

    /// The directory cap, if this is one.
    pub fn dir_cap(&self) -> Option<&DirCap> {
        match self {
            ChildCap::Known(Cap::Dir(d)) => Some(d),
            _ => None,
        }
    }
}

impl fmt::Display for ChildCap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChildCap::Known(c) => c.fmt(f),
            ChildCap::Unknown(s) => f.write_str(s),
        }
    }
}

impl fmt::Debug for ChildCap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChildCap::Known(c) => c.fmt(f),
            ChildCap::Unknown(s) => write!(f, "Unknown({} bytes)", s.len()),
        }
    }
}

/// What an entry links to: the write cap (when the entry has one and the
/// holder of the directory may see it) and the read cap.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Node {
    /// The write cap.
    pub write: Option<ChildCap>,
    /// The read cap.
    pub read: Option<ChildCap>,
}

impl Node {
    /// The node a cap names: a write cap keeps its read cap beside it.
    pub fn from_cap(cap: Cap) -> Node {
        if cap.is_write() {
            Node {
                read: Some(ChildCap::Known(cap.read_only())),
                write: Some(ChildCap::Known(cap)),
            }
        } else {
            Node {
                write: None,
                read: Some(ChildCap::Known(cap)),
            }
        }
    }

    /// The cap with the most authority: the write cap, else the read cap.
    pub fn cap(&self) -> Option<&ChildCap> {
        self.write.as_ref().or(self.read.as_ref())
    }

    /// The known cap with the most authority.
    pub fn known(&self) -> Option<&Cap> {
        self.cap().and_then(ChildCap::known)
    }

    /// The same node without its write cap.
    pub fn read_only(&self) -> Node {
        Node {
            write: None,
            read: self.read.clone(),
        }
    }

    /// Whether it is a directory.
    pub fn is_dir(&self) -> bool {
        matches!(self.known(), Some(Cap::Dir(_)))
    }

    /// The directory cap, if it is one.
    pub fn dir_cap(&self) -> Option<&DirCap> {
        match self.known() {
            Some(Cap::Dir(d)) => Some(d),
            _ => None,
        }
    }
}

/// The write field of an entry.
#[derive(Clone)]
pub(super) enum WriteField {
    /// No write cap.
    None,
    /// As read: encrypted under this directory's write key.
    Sealed(Bytes),
    /// Set here, encrypted when packed.
    Clear(ChildCap),
}

/// One child of a directory.
#[derive(Clone)]
pub struct Entry {
    pub(super) read: Option<ChildCap>,
    pub(super) write: WriteField,
    pub(super) metadata: Metadata,
    /// The entry's bytes as read, written back as they are while the
    /// entry is unchanged (as Tahoe-LAFS does): cheaper, and exact.
    pub(super) packed: Option<Bytes>,
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("read", &self.read)
            .field("has_write_cap", &self.has_write_cap())
            .field("metadata", &self.metadata)
            .finish()
    }
}

impl Entry {
    /// The read cap.
    pub fn read_cap(&self) -> Option<&ChildCap> {
        self.read.as_ref()
    }

    /// Whether the entry holds a write cap (sealed or not).
    fn has_write_cap(&self) -> bool {
        !matches!(self.write, WriteField::None)
    }

    /// The metadata.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// Whether it links to a directory.
    pub fn is_dir(&self) -> bool {
        matches!(
            self.read.as_ref().and_then(ChildCap::known),
            Some(Cap::Dir(_))
        )
    }
}

/// An entry that was not taken, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// The entry's name as far as it could be read (escaped for display).
    pub name: String,
    /// What was wrong.
    pub reason: String,
}

/// `name` as it may be stored: NFC, not empty, no `/` or NUL, not `.` or
/// `..`, at most [`MAX_NAME_LEN`] bytes.
pub fn normalize_name(name: &str) -> Result<String> {
    let name: String = match is_nfc_quick(name.chars()) {
        IsNormalized::Yes => name.to_string(),
        _ => name.nfc().collect(),
    };
    let bad = |why: &str| {
        Err(Error::invalid_input(format!(
            "the name {:?} {why}",
            shorten(&name)
        )))
    };
    if name.is_empty() {
        return bad("is empty");
    }
    if name.contains('/') {
        return bad("contains '/'");
    }
    if name.contains('\0') {
        return bad("contains NUL");
    }
    if name == "." || name == ".." {
        return bad("is not allowed (it would name a directory, not an entry)");
    }
    if name.len() > MAX_NAME_LEN {
        return Err(Error::invalid_input(format!(
            "a name of {} bytes is longer than the {MAX_NAME_LEN} allowed",
            name.len()
        )));
    }
    Ok(name)
}

/// At most 80 characters of `s`, for messages.
pub(super) fn shorten(s: &str) -> String {
    let mut out: String = s.chars().take(80).collect();
    if out.len() < s.len() {
        out.push_str("...");
    }
    out
}

/// How an existing entry of the same name is treated when one is added
/// (Tahoe-LAFS's `overwrite`/`replace=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replace {
    /// Never: adding a name that exists is an error.
    Never,
    /// Only a file may be replaced; an existing directory is an error.
    OnlyFiles,
    /// Always.
    Always,
}

impl Replace {
    /// From a `replace=` value: `true`, `false` or `only-files`.
    pub fn parse(s: &str) -> Result<Replace> {
        match s.to_ascii_lowercase().as_str() {
            "true" | "t" | "1" | "on" | "yes" => Ok(Replace::Always),
            "false" | "f" | "0" | "off" | "no" => Ok(Replace::Never),
            "only-files" | "only_files" => Ok(Replace::OnlyFiles),
            _ => Err(Error::invalid_input(format!(
                "replace={s:?}: expected true, false or only-files"
            ))),
        }
    }
}
