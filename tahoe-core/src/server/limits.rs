//! What one call may carry: data, ranges and vectors within one call's
//! budget, whatever the peer sends.

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::kinds::storage::ShareNum;
use crate::protocol::{MAX_CALL_DATA, SlotWrite};

/// How many locks serialize slot calls (by storage index).
pub(super) const SLOT_STRIPES: usize = 64;

/// Most corruption advisories remembered (and logged).
pub(super) const MAX_CORRUPTION_REPORTS: usize = 10_000;

/// The most ranges one slot read may ask for.
pub(super) const MAX_READ_RANGES: usize = 256;

/// The most test and write vectors one slot call may carry per share.
pub(super) const MAX_VECTORS: usize = 1024;

/// Mutable shares are stored as the slot's 32-byte write enabler followed
/// by the share data: the backend's atomic test-and-write then checks the
/// enabler and changes the data in one step, and every read the server
/// makes of a mutable share starts after it.
pub(super) const WE_LEN: u64 = 32;

pub(super) fn check_call_data(what: &str, len: u64) -> Result<()> {
    if len > MAX_CALL_DATA {
        return Err(Error::invalid_input(format!(
            "{what} of {len} bytes in one call; the limit is {MAX_CALL_DATA}"
        )));
    }
    Ok(())
}

pub(super) fn check_ranges(ranges: &[(u64, u64)]) -> Result<()> {
    if ranges.len() > MAX_READ_RANGES {
        return Err(Error::invalid_input(format!(
            "{} read ranges in one call; the limit is {MAX_READ_RANGES}",
            ranges.len()
        )));
    }
    ranges
        .iter()
        .try_for_each(|&(_, len)| check_call_data("a read range", len))
}

/// Everything one slot call sends must fit one call's budget, whatever the
/// number of shares and vectors.
pub(super) fn check_slot_writes(writes: &BTreeMap<ShareNum, SlotWrite>) -> Result<()> {
    let mut total = 0u64;
    for (shnum, w) in writes {
        if w.tests.len() > MAX_VECTORS || w.writes.len() > MAX_VECTORS {
            return Err(Error::invalid_input(format!(
                "share {shnum}: {} tests and {} writes in one call; the limit is {MAX_VECTORS} each",
                w.tests.len(),
                w.writes.len()
            )));
        }
        for t in &w.tests {
            check_call_data("a test vector", t.length)?;
            total = total.saturating_add(t.expected.len() as u64);
        }
        for v in &w.writes {
            total = total.saturating_add(v.data.len() as u64);
        }
    }
    check_call_data("a slot call's test and write data", total)
}
