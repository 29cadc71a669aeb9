//! The redo journal of an in-place update of a large mutable share: the
//! writes and new length, checksummed, and how to apply them.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::files::io_err;
use bytes::Bytes;
use tahoe_core::kinds::storage::{WriteVector, length_after_writes};
use tahoe_core::{Error, Result};

pub(crate) const JOURNAL_SUFFIX: &str = ".journal";

pub(crate) const JOURNAL_MAGIC: &[u8] = b"tahoe-rs fs journal v1\n";

pub(crate) const JOURNAL_TAG: &[u8] = b"tahoe-rs fs journal checksum v1";

/// A journal: magic, new length (`u64::MAX`: none), count, then each
/// write's offset, length and bytes, and a hash of all of it.
pub(crate) fn encode_journal(writes: &[WriteVector], new_length: Option<u64>) -> Vec<u8> {
    let mut out = JOURNAL_MAGIC.to_vec();
    out.extend_from_slice(&new_length.unwrap_or(u64::MAX).to_be_bytes());
    out.extend_from_slice(&(writes.len() as u64).to_be_bytes());
    for w in writes {
        out.extend_from_slice(&w.offset.to_be_bytes());
        out.extend_from_slice(&(w.data.len() as u64).to_be_bytes());
        out.extend_from_slice(&w.data);
    }
    let h = tahoe_core::format::hash::tagged_hash(JOURNAL_TAG, &out);
    out.extend_from_slice(&h);
    out
}

pub(crate) type Journal = (Vec<WriteVector>, Option<u64>);

pub(crate) fn decode_journal(path: &Path, data: &[u8]) -> Result<Journal> {
    let bad = |why: &str| Error::corrupt(format!("journal {}: {why}", path.display()));
    if data.len() < JOURNAL_MAGIC.len() + 16 + 32 || !data.starts_with(JOURNAL_MAGIC) {
        return Err(bad("not a journal"));
    }
    let (body, hash) = data.split_at(data.len() - 32);
    if tahoe_core::format::hash::tagged_hash(JOURNAL_TAG, body)[..] != *hash {
        return Err(bad("checksum does not match"));
    }
    let mut at = JOURNAL_MAGIC.len();
    let u64_at = |at: &mut usize| -> Result<u64> {
        let b = body.get(*at..*at + 8).ok_or_else(|| bad("truncated"))?;
        *at += 8;
        Ok(u64::from_be_bytes(
            b.try_into().map_err(|_| bad("truncated"))?,
        ))
    };
    let new_length = Some(u64_at(&mut at)?).filter(|&n| n != u64::MAX);
    let count = u64_at(&mut at)?;
    let mut writes = Vec::new();
    for _ in 0..count {
        let offset = u64_at(&mut at)?;
        let len = u64_at(&mut at)? as usize;
        let end = at
            .checked_add(len)
            .filter(|&e| e <= body.len())
            .ok_or_else(|| bad("truncated"))?;
        writes.push(WriteVector {
            offset,
            data: Bytes::copy_from_slice(&body[at..end]),
        });
        at = end;
    }
    if at != body.len() {
        return Err(bad("trailing bytes"));
    }
    length_after_writes(0, &writes, new_length)?;
    Ok((writes, new_length))
}

/// Apply writes to an open share file and fsync it.
pub(crate) fn apply_in_place(
    file: &File,
    path: &Path,
    writes: &[WriteVector],
    new_length: Option<u64>,
) -> Result<()> {
    for w in writes {
        file.write_all_at(&w.data, w.offset)
            .map_err(|e| io_err("write", path, e))?;
    }
    if let Some(n) = new_length {
        file.set_len(n)
            .map_err(|e| io_err("set length of", path, e))?;
    }
    file.sync_all().map_err(|e| io_err("fsync", path, e))
}
