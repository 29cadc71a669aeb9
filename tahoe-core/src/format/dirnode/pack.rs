//! The packed directory: one netstring per child, sorted by name, each of
//! four netstrings (name, read cap, sealed write cap, metadata), parsed
//! with every field a hostile writer controls checked.

use crate::format::dirnode::ChildCap;
use crate::format::dirnode::Entry;
use crate::format::dirnode::MAX_CAP_LEN;
use crate::format::dirnode::MAX_METADATA_LEN;
use crate::format::dirnode::Metadata;
use crate::format::dirnode::Node;
use crate::format::dirnode::Replace;
use crate::format::dirnode::Skipped;
use crate::format::dirnode::WriteKey;
use crate::format::dirnode::entry::WriteField;
use crate::format::dirnode::entry::shorten;
use crate::format::dirnode::normalize_name;
use crate::format::dirnode::seal::MAC_LEN;
use crate::format::dirnode::update_metadata;
use crate::format::ssk::layout::SALT_LEN;
use std::collections::BTreeMap;

use bytes::Bytes;
use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};

use crate::error::{Error, Result};
use crate::format::cap::Cap;
use crate::format::dirnode::json::to_python_json;
use crate::format::hash::netstring;

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
