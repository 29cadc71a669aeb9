//! The plaintext of versions this client has just read or written, so
//! that changing a file twice in a row (a directory an rsync links a file
//! into, then sets its time in, then renames it in) does not read back
//! what it has just written.
//!
//! An entry is keyed by the file's storage index and the version's signed
//! prefix ([`Prefix`]: sequence number, root hash, IV, shape, length).
//! The prefix is signed by the file's key and its root hash fixes every
//! share's blocks, so one prefix has one ciphertext and, under the file's
//! read key (which the storage index is derived from), one plaintext: an
//! entry can never be stale, only absent. A writer still makes a fresh
//! servermap before every change and finds the newest version there; the
//! cache only saves reading that version's blocks when it is one this
//! client has seen whole. Bounded: entries of at most [`MAX_ENTRY`]
//! bytes, [`MAX_TOTAL`] bytes in all, the oldest dropped first.

use std::collections::VecDeque;
use std::sync::Mutex;

use bytes::Bytes;

use crate::format::ssk::layout::Prefix;
use crate::kinds::storage::StorageIndex;

/// The largest plaintext kept (a directory of some thousands of entries).
pub const MAX_ENTRY: usize = 1 << 20;
/// The most bytes kept in all.
pub const MAX_TOTAL: usize = 4 << 20;

/// Recently read or written versions' plaintext (see the module docs).
#[derive(Default)]
pub struct Contents {
    entries: Mutex<VecDeque<(StorageIndex, Prefix, Bytes)>>,
}

impl Contents {
    /// The plaintext of `version` of the file `si`, when kept.
    pub fn get(&self, si: &StorageIndex, version: &Prefix) -> Option<Bytes> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .iter()
            .find(|(s, p, _)| s == si && p == version)
            .map(|(_, _, data)| data.clone())
    }

    /// Keep `data` as the plaintext of `version` of the file `si` (the
    /// file's older versions are dropped: only the newest is changed).
    /// The caller vouches that it is: it wrote it, or read it checked.
    pub fn put(&self, si: StorageIndex, version: Prefix, data: Bytes) {
        if data.len() > MAX_ENTRY || data.len() as u64 != version.data_length {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.retain(|(s, _, _)| *s != si);
        entries.push_back((si, version, data));
        let mut total: usize = entries.iter().map(|(_, _, d)| d.len()).sum();
        while total > MAX_TOTAL {
            let Some((_, _, dropped)) = entries.pop_front() else {
                break;
            };
            total -= dropped.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::ssk::layout::MutableFormat;

    fn version(seqnum: u64, root: u8, len: u64) -> Prefix {
        Prefix {
            format: MutableFormat::Sdmf,
            seqnum,
            root_hash: [root; 32],
            iv: Some([7; 16]),
            k: 3,
            n: 10,
            segment_size: len,
            data_length: len,
        }
    }

    #[test]
    fn only_the_exact_version_is_found_and_a_files_newer_one_replaces_it() {
        let c = Contents::default();
        let (a, b) = (StorageIndex([1; 16]), StorageIndex([2; 16]));
        c.put(a, version(4, 9, 3), Bytes::from_static(b"abc"));
        c.put(b, version(4, 9, 3), Bytes::from_static(b"xyz"));
        assert_eq!(c.get(&a, &version(4, 9, 3)).unwrap(), &b"abc"[..]);
        assert_eq!(c.get(&b, &version(4, 9, 3)).unwrap(), &b"xyz"[..]);
        // Another seqnum, root hash or file: not this entry.
        assert!(c.get(&a, &version(5, 9, 3)).is_none());
        assert!(c.get(&a, &version(4, 8, 3)).is_none());
        assert!(c.get(&StorageIndex([3; 16]), &version(4, 9, 3)).is_none());
        c.put(a, version(5, 1, 4), Bytes::from_static(b"abcd"));
        assert!(c.get(&a, &version(4, 9, 3)).is_none());
        assert_eq!(c.get(&a, &version(5, 1, 4)).unwrap(), &b"abcd"[..]);
    }

    #[test]
    fn large_or_mismatched_entries_are_not_kept_and_the_total_is_bounded() {
        let c = Contents::default();
        let big = MAX_ENTRY as u64 + 1;
        c.put(
            StorageIndex([1; 16]),
            version(1, 1, big),
            Bytes::from(vec![0; big as usize]),
        );
        assert!(c.get(&StorageIndex([1; 16]), &version(1, 1, big)).is_none());
        // A length the version does not have is refused.
        c.put(
            StorageIndex([1; 16]),
            version(1, 1, 5),
            Bytes::from_static(b"abc"),
        );
        assert!(c.get(&StorageIndex([1; 16]), &version(1, 1, 5)).is_none());
        let len = MAX_ENTRY as u64;
        let files = MAX_TOTAL / MAX_ENTRY + 2;
        for i in 0..files {
            let si = StorageIndex([i as u8; 16]);
            c.put(
                si,
                version(1, 1, len),
                Bytes::from(vec![i as u8; len as usize]),
            );
        }
        let kept: Vec<bool> = (0..files)
            .map(|i| {
                c.get(&StorageIndex([i as u8; 16]), &version(1, 1, len))
                    .is_some()
            })
            .collect();
        // The oldest went first; the newest are all there.
        assert_eq!(kept.iter().filter(|&&k| k).count(), MAX_TOTAL / MAX_ENTRY);
        assert!(!kept[0] && !kept[1] && kept[files - 1]);
    }
}
