//! The standard semantics of share operations, for plugin authors: a
//! backend that uses these gets test vectors, writes, leases and ranged
//! reads exactly as the node's own backends do (the node uses the same
//! functions).

use std::ops::Range;

use crate::{Lease, TestVector, WriteVector};

/// Whether `a` and `b` are equal, in time that depends only on their
/// lengths (test vectors carry secrets).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// The part of a share of `size` bytes that a read of `len` at `offset`
/// returns (empty at or past the end).
pub fn read_range(size: u64, offset: u64, len: u64) -> Range<u64> {
    let start = offset.min(size);
    start..start.saturating_add(len).min(size)
}

/// Whether the `length` bytes of `current` at `offset` (fewer where it
/// ends) are `expected`, in constant time: one test vector's meaning.
pub fn range_equals(current: &[u8], offset: u64, length: u64, expected: &[u8]) -> bool {
    let r = read_range(current.len() as u64, offset, length);
    constant_time_eq(&current[r.start as usize..r.end as usize], expected)
}

/// Whether every test holds on `current` (a missing share is empty).
/// Every test is evaluated, so the time says nothing about which failed.
pub fn tests_hold(current: &[u8], tests: &[TestVector]) -> bool {
    tests.iter().fold(true, |all, t| {
        all & range_equals(current, t.offset, t.length, &t.expected)
    })
}

/// Apply `writes` in order to `current`, then `new_length`. The node
/// checks sizes before a plugin sees them (at most 1 GiB), so this does
/// not.
pub fn apply_writes(current: &mut Vec<u8>, writes: &[WriteVector], new_length: Option<u64>) {
    for w in writes {
        let (start, end) = (w.offset as usize, w.offset as usize + w.data.len());
        if current.len() < end {
            current.resize(end, 0);
        }
        current[start..end].copy_from_slice(&w.data);
    }
    if let Some(n) = new_length {
        current.resize(n as usize, 0);
    }
}

/// Add `lease`, or renew the one with its renew secret (keeping the later
/// expiry and its place). Whether anything changed.
pub fn merge_lease(leases: &mut Vec<Lease>, lease: &Lease) -> bool {
    match leases
        .iter_mut()
        .find(|l| l.renew_secret == lease.renew_secret)
    {
        Some(l) if l.expires_at >= lease.expires_at => false,
        Some(l) => {
            l.expires_at = lease.expires_at;
            true
        }
        None => {
            leases.push(lease.clone());
            true
        }
    }
}
