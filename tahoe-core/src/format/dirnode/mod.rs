//! The packed form of a directory: Tahoe-LAFS's DIR2 format (its
//! `docs/specifications/dirnodes.rst`, `allmydata/dirnode.py`), spec in
//! `docs/directories.md`.
//!
//! A directory is a file (mutable for `URI:DIR2:`, immutable for
//! `URI:DIR2-CHK:`/`URI:DIR2-LIT:`) whose contents are one netstring per
//! child, sorted by name, each holding four netstrings:
//!
//! ```text
//! name      UTF-8, NFC
//! ro_uri    the child's read cap, in the clear
//! rwcap     salt(16) || AES-128-CTR(key, write cap) || mac(32)   mutable directories
//!           key = H(tag, salt, directory write key), salt = H(tag, write cap)
//!           (empty in immutable directories)
//! metadata  a JSON object, as Python's json.dumps writes it
//! ```
//!
//! A directory's read-only holder sees names, read caps and metadata but
//! not the write caps: those are encrypted under the directory's write
//! key, which the read cap does not yield.
//!
//! Parsing checks everything a hostile writer controls. A broken outer
//! netstring makes the whole directory unreadable (`Corrupt`); anything
//! wrong inside one entry (a name that is empty, has `/` or NUL, is `.` or
//! `..` or too long; a duplicate name; a cap that does not parse; a write
//! cap in the read-cap field; a malformed rwcap; metadata that is not a
//! JSON object) skips that entry and reports it in
//! [`Directory::skipped`]. Names not in NFC are normalised, as
//! Tahoe-LAFS does on reading. Skipped entries are not written back when
//! the directory is next changed (Tahoe-LAFS drops them the same way):
//! they cannot be looked up or read, only reported.

pub mod json;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};

use crate::error::{Error, Result};
use crate::format::cap::{Cap, DirCap, is_known_cap_kind};
use crate::format::dirnode::json::to_python_json;
use crate::format::hash::{netstring, tagged_hash, tagged_pair_hash};
use crate::kinds::cipher::Cipher;

/// Hash tags of the encrypted write caps.
pub mod tags {
    /// Salt, writekey → the key of one child's write cap.
    pub const CHILD_WRITECAP: &[u8] =
        b"allmydata_mutable_writekey_and_salt_to_dirnode_child_capkey_v1";
    /// Write cap → its salt.
    pub const CHILD_SALT: &[u8] = b"allmydata_dirnode_child_rwcap_to_salt_v1";
}

/// The longest entry name, in bytes of UTF-8 (Tahoe-LAFS sets none; this
/// is the longest path Linux accepts).
pub const MAX_NAME_LEN: usize = 4096;
/// The longest cap an entry may hold.
pub const MAX_CAP_LEN: usize = 64 << 10;
/// The largest metadata object of one entry.
pub const MAX_METADATA_LEN: usize = 1 << 20;

const SALT_LEN: usize = 16;
const MAC_LEN: usize = 32;

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
enum WriteField {
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
    read: Option<ChildCap>,
    write: WriteField,
    metadata: Metadata,
    /// The entry's bytes as read, written back as they are while the
    /// entry is unchanged (as Tahoe-LAFS does): cheaper, and exact.
    packed: Option<Bytes>,
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
    pub fn has_write_cap(&self) -> bool {
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

/// The key that seals and unseals the children's write caps: the
/// directory's write key (which only its write cap yields) and AES-CTR.
#[derive(Clone)]
pub struct WriteKey {
    /// The directory file's write key.
    pub key: [u8; 16],
    /// AES-128-CTR.
    pub cipher: Arc<dyn Cipher>,
}

impl WriteKey {
    fn child_key(&self, salt: &[u8]) -> [u8; 16] {
        truncate16(tagged_pair_hash(tags::CHILD_WRITECAP, salt, &self.key))
    }

    /// `salt || AES-CTR(key, cap) || mac`, deterministic in the cap.
    fn seal(&self, cap: &str) -> Result<Vec<u8>> {
        let salt = truncate16(tagged_hash(tags::CHILD_SALT, cap.as_bytes()));
        let key = self.child_key(&salt);
        let mut out = Vec::with_capacity(SALT_LEN + cap.len() + MAC_LEN);
        out.extend_from_slice(&salt);
        out.extend_from_slice(cap.as_bytes());
        self.cipher.apply_keystream(&key, 0, &mut out[SALT_LEN..])?;
        let mac = tahoe_hmac(&key, &out);
        out.extend_from_slice(&mac);
        Ok(out)
    }

    /// The write cap in a sealed field, its MAC checked.
    fn unseal(&self, sealed: &[u8]) -> Result<Option<ChildCap>> {
        let (salt, rest) = sealed.split_at(SALT_LEN);
        let (crypt, mac) = rest.split_at(rest.len() - MAC_LEN);
        let key = self.child_key(salt);
        if tahoe_hmac(&key, &sealed[..sealed.len() - MAC_LEN]) != mac {
            return Err(Error::corrupt(
                "its write cap's MAC does not match: the entry was damaged or forged",
            ));
        }
        let mut plain = crypt.to_vec();
        self.cipher.apply_keystream(&key, 0, &mut plain)?;
        let text = String::from_utf8(plain)
            .map_err(|_| Error::corrupt("its write cap decrypts to something other than text"))?;
        ChildCap::parse(&text).map_err(|e| e.context("its write cap"))
    }
}

/// The first 16 bytes of a hash.
fn truncate16(h: [u8; 32]) -> [u8; 16] {
    let mut out = [0u8; 16];
    out.copy_from_slice(&h[..16]);
    out
}

/// Tahoe-LAFS's `hashutil.hmac`: HMAC-SHA256's two nested hashes, with
/// the key XORed with the pads as it is (not padded to a block first).
fn tahoe_hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let pad = |b: u8| key.iter().map(|k| k ^ b).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(data)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// The netstring at `pos`: its contents' range and the position after it.
fn split_netstring(data: &[u8], pos: usize) -> Result<(std::ops::Range<usize>, usize)> {
    let digits = data[pos..]
        .iter()
        .take(11)
        .position(|&b| b == b':')
        .ok_or_else(|| Error::corrupt("no netstring length (at most 10 digits, then ':')"))?;
    let len_text = &data[pos..pos + digits];
    let canonical = !len_text.is_empty()
        && len_text.iter().all(u8::is_ascii_digit)
        && (len_text == b"0" || len_text[0] != b'0');
    if !canonical {
        return Err(Error::corrupt("a netstring length is not a decimal number"));
    }
    let len: usize = std::str::from_utf8(len_text)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Error::corrupt("a netstring length is too large"))?;
    let start = pos + digits + 1;
    let end = start
        .checked_add(len)
        .filter(|&e| e < data.len())
        .ok_or_else(|| {
            Error::corrupt(format!(
                "a netstring claims {len} bytes, more than the {} left",
                data.len().saturating_sub(start + 1)
            ))
        })?;
    if data[end] != b',' {
        return Err(Error::corrupt("a netstring does not end with ','"));
    }
    Ok((start..end, end + 1))
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
fn shorten(s: &str) -> String {
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

/// A directory's entries, parsed, changed and packed.
#[derive(Clone)]
pub struct Directory {
    entries: BTreeMap<String, Entry>,
    skipped: Vec<Skipped>,
    mutable: bool,
    write_key: Option<WriteKey>,
}

impl Directory {
    /// An empty directory: mutable ones seal write caps under `write_key`
    /// (which a read-only holder lacks), immutable ones hold none.
    pub fn new(mutable: bool, write_key: Option<WriteKey>) -> Directory {
        Directory {
            entries: BTreeMap::new(),
            skipped: Vec::new(),
            mutable,
            write_key,
        }
    }

    /// Parse packed entries (see the module docs for what is refused and
    /// what is skipped).
    pub fn parse(data: Bytes, mutable: bool, write_key: Option<WriteKey>) -> Result<Directory> {
        let mut dir = Directory::new(mutable, write_key);
        let mut pos = 0;
        while pos < data.len() {
            let (range, next) = split_netstring(&data, pos)
                .map_err(|e| e.context(format!("the directory's entry at byte {pos}")))?;
            let whole = data.slice(pos..next);
            let raw = data.slice(range);
            pos = next;
            match dir.parse_entry(&raw) {
                Ok((name, mut entry)) => {
                    entry.packed = Some(whole);
                    let shown = format!("{:?}", shorten(&name));
                    match dir.entries.entry(name) {
                        std::collections::btree_map::Entry::Occupied(_) => {
                            dir.skipped.push(Skipped {
                                name: shown,
                                reason: "a second entry of the same name (the first is kept)"
                                    .into(),
                            })
                        }
                        std::collections::btree_map::Entry::Vacant(v) => {
                            v.insert(entry);
                        }
                    }
                }
                Err((name, e)) => dir.skipped.push(Skipped {
                    name,
                    reason: e.to_string(),
                }),
            }
        }
        Ok(dir)
    }

    /// One entry's four fields; on failure, the name as far as known.
    fn parse_entry(&self, raw: &[u8]) -> std::result::Result<(String, Entry), (String, Error)> {
        let mut fields = [0..0, 0..0, 0..0, 0..0];
        let mut pos = 0;
        for f in &mut fields {
            let (range, next) = split_netstring(raw, pos).map_err(|e| ("?".to_string(), e))?;
            *f = range;
            pos = next;
        }
        let [name_r, ro_r, rw_r, md_r] = fields;
        let name_bytes = &raw[name_r];
        let shown = format!("{:?}", shorten(&String::from_utf8_lossy(name_bytes)));
        let fail = |e: Error| (shown.clone(), e);
        let name = std::str::from_utf8(name_bytes)
            .map_err(|_| fail(Error::corrupt("the name is not UTF-8")))?;
        let name = normalize_name(name).map_err(fail)?;
        if raw[ro_r.clone()].len() > MAX_CAP_LEN || raw[rw_r.clone()].len() > MAX_CAP_LEN + 48 {
            return Err(fail(Error::corrupt(format!(
                "a cap longer than the {MAX_CAP_LEN} bytes allowed"
            ))));
        }
        let ro_text = std::str::from_utf8(&raw[ro_r])
            .map_err(|_| fail(Error::corrupt("its read cap is not text")))?;
        let read =
            ChildCap::parse(ro_text).map_err(|e| fail(e.context("its read cap does not parse")))?;
        if read
            .as_ref()
            .and_then(ChildCap::known)
            .is_some_and(Cap::is_write)
        {
            return Err(fail(Error::corrupt(
                "it holds a write cap in the clear, where only a read cap belongs",
            )));
        }
        let rw = &raw[rw_r.clone()];
        let write = if rw.is_empty() {
            WriteField::None
        } else if !self.mutable {
            return Err(fail(Error::corrupt(
                "an entry of an immutable directory holds a write cap",
            )));
        } else if rw.len() < SALT_LEN + MAC_LEN {
            return Err(fail(Error::corrupt(format!(
                "its write cap field has {} bytes, fewer than the {} of salt and MAC",
                rw.len(),
                SALT_LEN + MAC_LEN
            ))));
        } else if rw.len() == SALT_LEN + MAC_LEN {
            // The sealed empty string: no write cap.
            WriteField::None
        } else {
            WriteField::Sealed(Bytes::copy_from_slice(rw))
        };
        if !self.mutable
            && read
                .as_ref()
                .and_then(ChildCap::known)
                .is_some_and(Cap::is_mutable)
        {
            return Err(fail(Error::corrupt(
                "an immutable directory links to something mutable",
            )));
        }
        let md = &raw[md_r];
        if md.len() > MAX_METADATA_LEN {
            return Err(fail(Error::corrupt(format!(
                "its metadata has {} bytes, more than the {MAX_METADATA_LEN} allowed",
                md.len()
            ))));
        }
        let metadata: Metadata = serde_json::from_slice(md).map_err(|e| {
            fail(Error::corrupt(format!(
                "its metadata is not a JSON object: {e}"
            )))
        })?;
        Ok((
            name,
            Entry {
                read,
                write,
                metadata,
                packed: None,
            },
        ))
    }

    /// Whether the directory can change (not whether this holder may).
    pub fn is_mutable(&self) -> bool {
        self.mutable
    }

    /// Whether this holder may change it.
    pub fn is_writeable(&self) -> bool {
        self.mutable && self.write_key.is_some()
    }

    /// The entries, in name order.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &Entry)> {
        self.entries.iter().map(|(n, e)| (n.as_str(), e))
    }

    /// How many entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries that were not taken when parsing.
    pub fn skipped(&self) -> &[Skipped] {
        &self.skipped
    }

    /// The entry called `name` (normalised first).
    pub fn get(&self, name: &str) -> Option<&Entry> {
        match is_nfc_quick(name.chars()) {
            IsNormalized::Yes => self.entries.get(name),
            _ => self.entries.get(&name.nfc().collect::<String>()),
        }
    }

    /// The caps of the entry called `name`: the write cap only when this
    /// holder has the directory's write key. A write cap that does not
    /// belong with the entry's read cap is an error, never an answer.
    pub fn node(&self, name: &str) -> Result<Option<Node>> {
        let Some(entry) = self.get(name) else {
            return Ok(None);
        };
        self.node_of(name, entry).map(Some)
    }

    /// The caps of `entry` (see [`Directory::node`]).
    pub fn node_of(&self, name: &str, entry: &Entry) -> Result<Node> {
        let write = match (&entry.write, &self.write_key) {
            (WriteField::None, _) | (WriteField::Sealed(_), None) => None,
            (WriteField::Clear(c), _) => Some(c.clone()),
            (WriteField::Sealed(s), Some(k)) => k
                .unseal(s)
                .map_err(|e| e.context(format!("entry {:?}", shorten(name))))?,
        };
        if let (Some(ChildCap::Known(w)), Some(ChildCap::Known(r))) = (&write, &entry.read)
            && (!w.is_write() || w.read_only() != *r)
        {
            return Err(Error::corrupt(format!(
                "entry {:?}: its write cap and its read cap name different things",
                shorten(name)
            )));
        }
        Ok(Node {
            write,
            read: entry.read.clone(),
        })
    }

    /// Link `node` as `name`. Metadata as Tahoe-LAFS sets it: `metadata`
    /// (if given) replaces the user's keys, the `tahoe` key keeps the
    /// link's creation time and gets `now` as its modification time.
    pub fn set(
        &mut self,
        name: &str,
        node: Node,
        metadata: Option<Metadata>,
        replace: Replace,
        now: f64,
    ) -> Result<()> {
        if !self.is_writeable() {
            return Err(Error::invalid_input(if self.mutable {
                "this is a read-only cap of the directory: it cannot be changed"
            } else {
                "an immutable directory cannot be changed"
            }));
        }
        let name = normalize_name(name)?;
        let node = check_node(node)?;
        let old = self.entries.get(&name);
        if let Some(old) = old {
            match replace {
                Replace::Never => {
                    return Err(Error::already_exists(format!(
                        "an entry {:?} already exists",
                        shorten(&name)
                    )));
                }
                Replace::OnlyFiles if old.is_dir() => {
                    return Err(Error::already_exists(format!(
                        "an entry {:?} already exists and is a directory",
                        shorten(&name)
                    )));
                }
                _ => {}
            }
        }
        let metadata = update_metadata(old.map(|o| o.metadata.clone()), metadata, now);
        self.put(name, node, metadata);
        Ok(())
    }

    /// Link `node` as `name` with exactly `metadata`, replacing any entry
    /// of that name: for building a directory's first contents, so an
    /// immutable directory (whose children must all be immutable) too.
    pub fn insert(&mut self, name: &str, node: Node, metadata: Metadata) -> Result<()> {
        let name = normalize_name(name)?;
        let node = check_node(node)?;
        if self.mutable && !self.is_writeable() {
            return Err(Error::invalid_input(
                "this is a read-only cap of the directory: it cannot be changed",
            ));
        }
        if !self.mutable {
            let mutable_child = node.write.is_some()
                || node
                    .read
                    .as_ref()
                    .and_then(ChildCap::known)
                    .is_some_and(Cap::is_mutable);
            if mutable_child {
                return Err(Error::invalid_input(format!(
                    "{:?} is mutable, and an immutable directory holds only immutable things",
                    shorten(&name)
                )));
            }
        }
        self.put(name, node, metadata);
        Ok(())
    }

    /// Store a checked node under a normalised name.
    fn put(&mut self, name: String, node: Node, metadata: Metadata) {
        let write = match node.write {
            Some(w) => WriteField::Clear(w),
            None => WriteField::None,
        };
        let entry = Entry {
            read: node.read,
            write,
            metadata,
            packed: None,
        };
        self.entries.insert(name, entry);
    }

    /// Unlink `name`, returning its entry.
    pub fn remove(&mut self, name: &str) -> Result<Entry> {
        if !self.is_writeable() {
            return Err(Error::invalid_input(
                "this directory cannot be changed through this cap",
            ));
        }
        let name = normalize_name(name)?;
        self.entries
            .remove(&name)
            .ok_or_else(|| Error::not_found(format!("no entry {:?}", shorten(&name))))
    }

    /// The packed entries, in name order.
    pub fn pack(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        for (name, entry) in &self.entries {
            if let Some(p) = &entry.packed {
                out.extend_from_slice(p);
                continue;
            }
            let read = entry
                .read
                .as_ref()
                .map(|c| c.to_string())
                .unwrap_or_default();
            let sealed = match (&entry.write, self.mutable) {
                (_, false) => Vec::new(),
                (WriteField::Sealed(s), true) => s.to_vec(),
                (w, true) => {
                    let key = self.write_key.as_ref().ok_or_else(|| {
                        Error::invalid_input("packing a mutable directory needs its write key")
                    })?;
                    match w {
                        WriteField::Clear(c) => key.seal(&c.to_string())?,
                        _ => key.seal("")?,
                    }
                }
            };
            let mut body = netstring(name.as_bytes());
            body.extend_from_slice(&netstring(read.as_bytes()));
            body.extend_from_slice(&netstring(&sealed));
            body.extend_from_slice(&netstring(&to_python_json(&entry.metadata)));
            out.extend_from_slice(&netstring(&body));
        }
        Ok(out)
    }
}

/// A node as an entry may hold it: a read cap that is not a write cap,
/// and a write cap that goes with it (the read cap derived when missing).
fn check_node(node: Node) -> Result<Node> {
    let read = match (&node.write, node.read) {
        (Some(ChildCap::Known(w)), None) => Some(ChildCap::Known(w.read_only())),
        (_, r) => r,
    };
    if read.is_none() {
        return Err(Error::invalid_input(if node.write.is_some() {
            "a cap of an unknown kind given as a write cap needs a read cap beside it"
        } else {
            "an entry needs a cap"
        }));
    }
    if let Some(ChildCap::Known(r)) = &read
        && r.is_write()
    {
        return Err(Error::invalid_input(
            "a write cap was given as the read cap of an entry",
        ));
    }
    if let (Some(ChildCap::Known(w)), Some(ChildCap::Known(r))) = (&node.write, &read) {
        if !w.is_write() {
            return Ok(Node {
                write: None,
                read: Some(ChildCap::Known(w.clone())),
            });
        }
        if w.read_only() != *r {
            return Err(Error::invalid_input(
                "the write cap and the read cap given name different things",
            ));
        }
    }
    Ok(Node {
        write: node.write,
        read,
    })
}

/// Tahoe-LAFS's `update_metadata`: `new` (if any) replaces everything but
/// the `tahoe` key; `tahoe.linkcrtime` is kept (or taken from an old
/// `ctime`, or set to `now`) and `tahoe.linkmotime` becomes `now`.
pub fn update_metadata(old: Option<Metadata>, new: Option<Metadata>, now: f64) -> Metadata {
    let old = old.unwrap_or_default();
    let old_ctime = old.get("ctime").cloned();
    let mut md = match new {
        Some(mut new) => {
            new.remove("tahoe");
            if let Some(t) = old.get("tahoe") {
                new.insert("tahoe".into(), t.clone());
            }
            new
        }
        None => old,
    };
    let mut sys = match md.get("tahoe") {
        Some(serde_json::Value::Object(o)) => o.clone(),
        _ => Metadata::new(),
    };
    if !sys.contains_key("linkcrtime") {
        let t = old_ctime.unwrap_or_else(|| now_value(now));
        sys.insert("linkcrtime".into(), t);
    }
    sys.insert("linkmotime".into(), now_value(now));
    md.insert("tahoe".into(), serde_json::Value::Object(sys));
    md
}

fn now_value(now: f64) -> serde_json::Value {
    serde_json::Number::from_f64(now)
        .map(serde_json::Value::Number)
        .unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    const CHK: &str = "URI:CHK:qshmn2agxxnlfutayetlh4l4ny:hl6wzvjixamvzntxnpzpnitevjacksukfkkyncvzhma5fns27awa:3:10:1048576";
    const SSK: &str =
        "URI:SSK:ucieqfwyvfpi54i77vtgyo3yae:bfngdsfcqv4gjdhixqqy3y2hj345mz4vzmtknlewftkiiuuuu4qq";

    /// A stand-in keystream (XOR with the key): these tests are about
    /// parsing, the Tahoe fixtures check the real cipher.
    struct Xor;
    impl Cipher for Xor {
        fn name(&self) -> &str {
            "xor"
        }
        fn key_len(&self) -> usize {
            16
        }
        fn apply_keystream(&self, key: &[u8], offset: u64, data: &mut [u8]) -> Result<()> {
            for (i, b) in data.iter_mut().enumerate() {
                *b ^= key[(offset as usize + i) % 16];
            }
            Ok(())
        }
    }

    fn key() -> WriteKey {
        WriteKey {
            key: [7; 16],
            cipher: Arc::new(Xor),
        }
    }

    fn entry(name: &[u8], ro: &str, rw: &[u8], md: &str) -> Vec<u8> {
        let mut body = netstring(name);
        body.extend(netstring(ro.as_bytes()));
        body.extend(netstring(rw));
        body.extend(netstring(md.as_bytes()));
        netstring(&body)
    }

    fn parse(data: Vec<u8>) -> Directory {
        Directory::parse(Bytes::from(data), true, Some(key())).unwrap()
    }

    fn skipped_for(data: Vec<u8>) -> Vec<String> {
        let d = parse(data);
        assert!(d.is_empty(), "hostile entry was taken");
        d.skipped().iter().map(|s| s.reason.clone()).collect()
    }

    #[test]
    fn hostile_entries_are_skipped_with_a_reason() {
        let empty_rw = key().seal("").unwrap();
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (entry(b"a/b", CHK, &empty_rw, "{}"), "'/'"),
            (entry(b"a\0b", CHK, &empty_rw, "{}"), "NUL"),
            (entry(b"", CHK, &empty_rw, "{}"), "empty"),
            (entry(b"..", CHK, &empty_rw, "{}"), "not allowed"),
            (entry(b".", CHK, &empty_rw, "{}"), "not allowed"),
            (entry(b"\xff\xfe", CHK, &empty_rw, "{}"), "UTF-8"),
            (
                entry(&[b'x'; MAX_NAME_LEN + 1], CHK, &empty_rw, "{}"),
                "longer",
            ),
            (
                entry(b"bad-cap", "URI:CHK:zzz", &empty_rw, "{}"),
                "read cap",
            ),
            (entry(b"clear-write", SSK, &empty_rw, "{}"), "in the clear"),
            (entry(b"short-rw", CHK, b"0123456789", "{}"), "fewer than"),
            (entry(b"md-list", CHK, &empty_rw, "[1, 2]"), "JSON object"),
            (entry(b"md-bad", CHK, &empty_rw, "{"), "JSON object"),
        ];
        for (data, why) in cases {
            let reasons = skipped_for(data);
            assert_eq!(reasons.len(), 1);
            assert!(reasons[0].contains(why), "{reasons:?} lacks {why:?}");
        }
        // Three netstrings instead of four inside an entry.
        let mut body = netstring(b"x");
        body.extend(netstring(CHK.as_bytes()));
        body.extend(netstring(b""));
        assert_eq!(skipped_for(netstring(&body)).len(), 1);
    }

    #[test]
    fn immutable_directories_hold_nothing_mutable() {
        let ssk_ro = SSK.parse::<Cap>().unwrap().read_only().to_string();
        for data in [
            entry(b"rw", CHK, &key().seal(SSK).unwrap(), "{}"),
            entry(b"mutable", &ssk_ro, b"", "{}"),
        ] {
            let d = Directory::parse(Bytes::from(data), false, None).unwrap();
            assert!(d.is_empty() && d.skipped().len() == 1, "{:?}", d.skipped());
        }
    }

    #[test]
    fn duplicates_keep_the_first_and_names_are_normalised() {
        let empty_rw = key().seal("").unwrap();
        let mut data = entry("cafe\u{301}".as_bytes(), CHK, &empty_rw, r#"{"n": 1}"#);
        data.extend(entry("café".as_bytes(), CHK, &empty_rw, r#"{"n": 2}"#));
        let d = parse(data);
        assert_eq!(d.len(), 1);
        assert_eq!(d.get("café").unwrap().metadata()["n"], 1);
        assert!(d.get("cafe\u{301}").is_some(), "lookups normalise too");
        assert_eq!(d.skipped().len(), 1);
        assert!(d.skipped()[0].reason.contains("same name"));
    }

    #[test]
    fn broken_structure_is_an_error_not_a_panic() {
        for data in [
            b"99999999999:x,".to_vec(),
            b"5:abc".to_vec(),
            b"3:abc".to_vec(),
            b"03:abc,".to_vec(),
            b"3:abc;".to_vec(),
            b"x:abc,".to_vec(),
            b":".to_vec(),
            b"18446744073:".to_vec(),
        ] {
            let e = Directory::parse(Bytes::from(data.clone()), true, Some(key())).err();
            assert_eq!(
                e.map(|e| e.kind()),
                Some(ErrorKind::Corrupt),
                "{:?}",
                String::from_utf8_lossy(&data)
            );
        }
    }

    #[test]
    fn unknown_caps_survive_and_future_kinds_are_not_errors() {
        let empty_rw = key().seal("").unwrap();
        let data = entry(b"f", "URI:NEWKIND:abc", &empty_rw, "{}");
        let d = parse(data.clone());
        assert_eq!(
            d.node("f").unwrap().unwrap().read,
            Some(ChildCap::Unknown("URI:NEWKIND:abc".into()))
        );
        assert_eq!(d.pack().unwrap(), data);
    }

    #[test]
    fn write_caps_are_sealed_and_checked() {
        let cap: Cap = SSK.parse().unwrap();
        let mut d = Directory::new(true, Some(key()));
        d.set("f", Node::from_cap(cap.clone()), None, Replace::Never, 1.5)
            .unwrap();
        let packed = d.pack().unwrap();
        assert!(
            !packed.windows(10).any(|w| w == &SSK.as_bytes()[8..18]),
            "the write cap is in the clear"
        );
        let back = parse(packed.clone());
        let node = back.node("f").unwrap().unwrap();
        assert_eq!(node.write, Some(ChildCap::Known(cap.clone())));
        // A read-only holder sees the read cap only.
        let ro = Directory::parse(Bytes::from(packed.clone()), true, None).unwrap();
        assert_eq!(ro.node("f").unwrap().unwrap().write, None);
        // A flipped byte in the sealed cap fails its MAC.
        let at = packed.windows(2).position(|w| w == b"f,").unwrap() + 2;
        let mut bad = packed.clone();
        let ro_len = cap.read_only().to_string().len();
        let sealed_at = at + ro_len.to_string().len() + 1 + ro_len + 1 + 3 + 20;
        bad[sealed_at] ^= 1;
        let e = parse(bad).node("f").unwrap_err();
        assert!(e.to_string().contains("MAC"), "{e}");
        // A write cap sealed beside someone else's read cap is refused.
        let other = "URI:SSK-RO:czytd764lgjmb2yx3ldvqc4jre:ujf2wyw5k3po3zupayfnm3fqlrftplet6ktd3e4ks6umqqyklwdq";
        let forged = entry(b"f", other, &key().seal(SSK).unwrap(), "{}");
        let e = parse(forged).node("f").unwrap_err();
        assert!(e.to_string().contains("different"), "{e}");
    }

    #[test]
    fn replace_rules_and_metadata_times() {
        let dir_cap: Cap = "URI:DIR2-CHK:2rbt62oh54iqryivubnkopr27u:abultw2hfmanpccnm3fp3hccgflcuuif777b6e47d3sywieywp5q:3:10:133".parse().unwrap();
        let file: Cap = CHK.parse().unwrap();
        let mut d = Directory::new(true, Some(key()));
        d.set("d", Node::from_cap(dir_cap), None, Replace::Never, 1.0)
            .unwrap();
        d.set("f", Node::from_cap(file.clone()), None, Replace::Never, 1.0)
            .unwrap();
        let again = |d: &mut Directory, name: &str, r| {
            d.set(name, Node::from_cap(file.clone()), None, r, 2.0)
                .map_err(|e| e.kind())
        };
        assert_eq!(
            again(&mut d, "f", Replace::Never),
            Err(ErrorKind::AlreadyExists)
        );
        assert_eq!(
            again(&mut d, "d", Replace::OnlyFiles),
            Err(ErrorKind::AlreadyExists)
        );
        assert_eq!(again(&mut d, "f", Replace::OnlyFiles), Ok(()));
        assert_eq!(again(&mut d, "d", Replace::Always), Ok(()));
        let t = &d.get("f").unwrap().metadata()["tahoe"];
        assert_eq!(
            (t["linkcrtime"].as_f64(), t["linkmotime"].as_f64()),
            (Some(1.0), Some(2.0))
        );
        // User metadata replaces the user's keys, never the tahoe key.
        let mut md = Metadata::new();
        md.insert("tahoe".into(), serde_json::json!({"linkcrtime": 0}));
        md.insert("tag".into(), serde_json::json!("x"));
        d.set(
            "f",
            Node::from_cap(file.clone()),
            Some(md),
            Replace::Always,
            3.0,
        )
        .unwrap();
        let m = d.get("f").unwrap().metadata();
        assert_eq!(m["tag"], "x");
        assert_eq!(m["tahoe"]["linkcrtime"].as_f64(), Some(1.0));
        assert_eq!(d.remove("nope").unwrap_err().kind(), ErrorKind::NotFound);
        let link = |d: &mut Directory, name: &str| {
            d.set(
                name,
                Node::from_cap(file.clone()),
                None,
                Replace::Always,
                1.0,
            )
        };
        assert!(link(&mut d, "a/b").is_err());
        // Read-only and immutable directories refuse changes.
        let mut ro = Directory::new(true, None);
        assert!(link(&mut ro, "x").is_err());
        let mut imm = Directory::new(false, None);
        assert!(link(&mut imm, "x").is_err());
        assert!(
            imm.insert("x", Node::from_cap(SSK.parse().unwrap()), Metadata::new())
                .is_err()
        );
        imm.insert("x", Node::from_cap(file), Metadata::new())
            .unwrap();
    }
}
