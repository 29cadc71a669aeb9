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

pub(crate) const JOURNAL_MAGIC: &[u8] = b"tahoe-rs fs journal v2\n";

/// The first format, whose checksum was a tagged SHA-256 (`JOURNAL_TAG`):
/// still read, so that a journal left by a crash before an upgrade is
/// applied, never written.
pub(crate) const JOURNAL_MAGIC_V1: &[u8] = b"tahoe-rs fs journal v1\n";

pub(crate) const JOURNAL_TAG: &[u8] = b"tahoe-rs fs journal checksum v1";

/// The checksum of a v2 journal: CRC-64/NVME. A journal is complete when
/// it has its name (it is written and fsynced under a temporary one, then
/// renamed), so its checksum only has to catch damage at rest, which a CRC
/// does; the SHA-256 of v1 cost the storage nodes of a 1 GiB MDMF put a
/// sixth of the grid's CPU.
fn crc(body: &[u8]) -> [u8; 8] {
    crc_fast::checksum(crc_fast::CrcAlgorithm::Crc64Nvme, body).to_be_bytes()
}

/// A journal: magic, new length (`u64::MAX`: none), count, then each
/// write's offset, length and bytes, and a checksum of all of it.
pub(crate) fn encode_journal(writes: &[WriteVector], new_length: Option<u64>) -> Vec<u8> {
    let data: usize = writes.iter().map(|w| 16 + w.data.len()).sum();
    let mut out = Vec::with_capacity(JOURNAL_MAGIC.len() + 16 + data + 8);
    out.extend_from_slice(JOURNAL_MAGIC);
    out.extend_from_slice(&new_length.unwrap_or(u64::MAX).to_be_bytes());
    out.extend_from_slice(&(writes.len() as u64).to_be_bytes());
    for w in writes {
        out.extend_from_slice(&w.offset.to_be_bytes());
        out.extend_from_slice(&(w.data.len() as u64).to_be_bytes());
        out.extend_from_slice(&w.data);
    }
    let sum = crc(&out);
    out.extend_from_slice(&sum);
    out
}

pub(crate) type Journal = (Vec<WriteVector>, Option<u64>);

pub(crate) fn decode_journal(path: &Path, data: &[u8]) -> Result<Journal> {
    let bad = |why: &str| Error::corrupt(format!("journal {}: {why}", path.display()));
    let sum_len = if data.starts_with(JOURNAL_MAGIC) {
        8
    } else if data.starts_with(JOURNAL_MAGIC_V1) {
        32
    } else {
        return Err(bad("not a journal"));
    };
    if data.len() < JOURNAL_MAGIC.len() + 16 + sum_len {
        return Err(bad("not a journal"));
    }
    let (body, sum) = data.split_at(data.len() - sum_len);
    let good = if sum_len == 8 {
        crc(body)[..] == *sum
    } else {
        tahoe_core::format::hash::tagged_hash(JOURNAL_TAG, body)[..] == *sum
    };
    if !good {
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
