//! The standard semantics of share operations, for plugin authors: a
//! backend that uses these gets test vectors, writes, leases and ranged
//! reads exactly as the node's own backends do. They exist only here: the
//! node's backends use the same functions (`tahoe_core::kinds::storage`
//! re-exports them), and the node applies the same bounds before a call
//! reaches a plugin. The vector functions are generic over the byte type
//! (`Vec<u8>` for plugins, `Bytes` in the node).

use std::ops::Range;

use crate::{Error, ErrorKind, Lease, Result, TestVector, WriteVector};

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

/// Whether every test holds on `current`, a mutable share's bytes (a
/// missing share is empty). Every vector is evaluated, each in constant
/// time for its length, so the time taken says nothing about which test
/// failed or which byte differed.
pub fn tests_hold<B: AsRef<[u8]>>(current: &[u8], tests: &[TestVector<B>]) -> bool {
    tests.iter().fold(true, |all, t| {
        all & range_equals(current, t.offset, t.length, t.expected.as_ref())
    })
}

/// The largest mutable share (1 GiB). The node refuses writes that would
/// grow a share past it before a backend sees them, and
/// [`apply_writes`] checks it again before allocating: it bounds the
/// memory that hostile write vectors can make a backend allocate, since
/// backends that rewrite the whole container hold it in memory.
pub const MAX_MUTABLE_SHARE: u64 = 1 << 30;

/// The length a mutable share of `current_len` bytes has after `writes`
/// and `new_length`; `InvalidInput` when it (or any moment of the update)
/// would exceed [`MAX_MUTABLE_SHARE`]. Backends check this before they
/// change anything.
pub fn length_after_writes<B: AsRef<[u8]>>(
    current_len: u64,
    writes: &[WriteVector<B>],
    new_length: Option<u64>,
) -> Result<u64> {
    // The writes land before any truncation, so the share's peak size is the
    // furthest any write reaches even when `new_length` later cuts it back.
    let mut written_len = current_len;
    for w in writes {
        let end = w
            .offset
            .checked_add(w.data.as_ref().len() as u64)
            .ok_or_else(|| Error::new(ErrorKind::InvalidInput, "write vector overflows"))?;
        written_len = written_len.max(end);
    }
    let final_len = new_length.unwrap_or(written_len);
    let peak = written_len.max(final_len);
    if peak > MAX_MUTABLE_SHARE {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("mutable share would grow to {peak} bytes, over the {MAX_MUTABLE_SHARE} limit"),
        ));
    }
    Ok(final_len)
}

/// Apply `writes` in order to `current`, a mutable share's bytes, then
/// `new_length` (truncating or zero-extending). Refuses sizes over
/// [`MAX_MUTABLE_SHARE`] ([`length_after_writes`]) before allocating, and
/// then changes nothing.
pub fn apply_writes<B: AsRef<[u8]>>(
    current: &mut Vec<u8>,
    writes: &[WriteVector<B>],
    new_length: Option<u64>,
) -> Result<()> {
    length_after_writes(current.len() as u64, writes, new_length)?;
    for w in writes {
        let data = w.data.as_ref();
        let (start, end) = (w.offset as usize, w.offset as usize + data.len());
        if current.len() < end {
            current.resize(end, 0);
        }
        current[start..end].copy_from_slice(data);
    }
    if let Some(n) = new_length {
        current.resize(n as usize, 0);
    }
    Ok(())
}

/// Check a write of `len` bytes at `offset` against a pending share's
/// declared `size`: `InvalidInput` when it would end past it. The node
/// checks this before a plugin's [`PendingShare::write`](crate::PendingShare::write).
pub fn check_pending_write(size: u64, offset: u64, len: usize) -> Result<()> {
    match offset.checked_add(len as u64) {
        Some(end) if end <= size => Ok(()),
        _ => Err(Error::new(
            ErrorKind::InvalidInput,
            format!("write of {len} bytes at offset {offset} exceeds the share size {size}"),
        )),
    }
}

/// Add `lease` to `leases`, or renew the lease with its renew secret
/// (keeping the later expiry and its place). Whether anything changed.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_vectors_compare_ranges() {
        let cur = b"hello world";
        let tv = |o, e: &[u8]| TestVector::<Vec<u8>>::equals(o, e);
        assert!(tests_hold(cur, &[tv(0, b"hello")]));
        assert!(!tests_hold(cur, &[tv(0, b"jello")]));
        assert!(tests_hold(cur, &[tv(20, b"")]));
        assert!(!tests_hold(cur, &[tv(9, b"ldx")]));
        assert!(tests_hold(b"", &[tv(0, b"")]));
        // "Absent" holds on an empty share only, never on one with data.
        assert!(tests_hold(b"", &[TestVector::<Vec<u8>>::absent()]));
        assert!(!tests_hold(cur, &[TestVector::<Vec<u8>>::absent()]));
        // A shorter expectation means the share must end there.
        let ends = TestVector {
            offset: 6,
            length: 10,
            expected: b"world".to_vec(),
        };
        assert!(tests_hold(cur, std::slice::from_ref(&ends)));
        assert!(!tests_hold(b"hello world!", &[ends]));
        // Any byte type.
        let borrowed: TestVector<&[u8]> = TestVector::equals(6, &b"world"[..]);
        assert!(tests_hold(cur, &[borrowed]));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }

    #[test]
    fn writes_extend_and_truncate() {
        let mut cur = b"abc".to_vec();
        let w = WriteVector {
            offset: 5,
            data: b"xy".to_vec(),
        };
        apply_writes(&mut cur, &[w], None).unwrap();
        assert_eq!(cur, b"abc\0\0xy");
        apply_writes::<Vec<u8>>(&mut cur, &[], Some(2)).unwrap();
        assert_eq!(cur, b"ab");
    }

    #[test]
    fn sizes_past_the_limit_are_refused_before_anything_changes() {
        let mut cur = b"ab".to_vec();
        let huge = WriteVector {
            offset: u64::MAX - 1,
            data: b"xy".to_vec(),
        };
        let e = apply_writes(&mut cur, &[huge], None).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidInput);
        let e = apply_writes::<Vec<u8>>(&mut cur, &[], Some(1 << 40)).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidInput);
        assert_eq!(cur, b"ab");
        let at_limit = WriteVector {
            offset: MAX_MUTABLE_SHARE - 1,
            data: [1u8],
        };
        assert_eq!(
            length_after_writes(0, &[at_limit], None).unwrap(),
            MAX_MUTABLE_SHARE
        );
        let over = WriteVector {
            offset: MAX_MUTABLE_SHARE,
            data: [1u8],
        };
        assert!(length_after_writes(0, &[over], None).is_err());
        // A share already over the limit is refused whatever the new length.
        assert!(length_after_writes::<Vec<u8>>(MAX_MUTABLE_SHARE + 1, &[], Some(0)).is_err());
        // A far write cut back by `new_length` still has to be allocated first.
        let far = WriteVector {
            offset: 1 << 40,
            data: [1u8],
        };
        assert!(length_after_writes(0, &[far], Some(0)).is_err());
    }

    #[test]
    fn pending_writes_stay_within_the_declared_size() {
        assert!(check_pending_write(5, 0, 5).is_ok());
        assert!(check_pending_write(5, 2, 3).is_ok());
        assert!(check_pending_write(5, 2, 4).is_err());
        assert!(check_pending_write(5, u64::MAX, 1).is_err());
    }

    #[test]
    fn leases_merge_by_renew_secret_keeping_the_later_expiry() {
        let lease = |r: u8, expires_at| Lease {
            renew_secret: [r; 32],
            cancel_secret: [r; 32],
            expires_at,
        };
        let mut leases = Vec::new();
        assert!(merge_lease(&mut leases, &lease(1, 10)));
        assert!(merge_lease(&mut leases, &lease(2, 5)));
        assert!(!merge_lease(&mut leases, &lease(1, 9)));
        assert!(merge_lease(&mut leases, &lease(1, 20)));
        assert_eq!(leases, vec![lease(1, 20), lease(2, 5)]);
    }

    #[test]
    fn reads_are_clamped_to_the_share() {
        assert_eq!(read_range(10, 2, 3), 2..5);
        assert_eq!(read_range(10, 8, 5), 8..10);
        assert_eq!(read_range(10, 12, 5), 10..10);
        assert_eq!(read_range(10, 2, u64::MAX), 2..10);
    }
}
