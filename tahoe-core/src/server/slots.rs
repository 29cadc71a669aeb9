//! Mutable slots: reads that skip the write enabler, and test-and-write
//! calls that change all their shares or none.

use std::collections::BTreeMap;

use bytes::Bytes;
use tokio::sync::Mutex;

use crate::error::{Error, Result};
use crate::kinds::storage::{
    MAX_MUTABLE_SHARE, ShareKind, ShareNum, StorageIndex, TestVector, WriteVector, constant_time_eq,
};
use crate::protocol::{Secret, SlotSecrets, SlotWrite};

use super::*;

/// Shift a share's data coordinates past the server's header.
pub(super) fn shifted(offset: u64) -> Result<u64> {
    offset
        .checked_add(WE_LEN)
        .ok_or_else(|| Error::invalid_input("offset overflows"))
}

/// The container length after `w` is applied to one of `old_len` bytes.
pub(super) fn length_after(old_len: u64, w: &SlotWrite) -> Result<u64> {
    let mut len = old_len;
    for v in &w.writes {
        let end = shifted(v.offset)?
            .checked_add(v.data.len() as u64)
            .ok_or_else(|| Error::invalid_input("write vector overflows"))?;
        len = len.max(end);
    }
    // The writes land before any truncation: a far write cut back by
    // `new_length` must still be refused, or the backend allocates it.
    let final_len = match w.new_length {
        Some(n) => shifted(n)?,
        None => len,
    };
    let peak = len.max(final_len);
    if peak > MAX_MUTABLE_SHARE {
        return Err(Error::invalid_input(format!(
            "a mutable share of {peak} bytes is over the {MAX_MUTABLE_SHARE}-byte limit"
        )));
    }
    Ok(final_len)
}

/// What it takes to undo one share's writes.
pub(super) struct Undo {
    shnum: ShareNum,
    /// `None`: the share was created by this call (undo deletes it).
    old: Option<(u64, Vec<WriteVector>)>,
}

impl Shared {
    pub(super) fn slot_lock(&self, si: &StorageIndex) -> &Mutex<()> {
        let i = usize::from(si.0[0]) | (usize::from(si.0[1]) << 8);
        &self.slots[i % self.slots.len()]
    }
}

impl StorageServer {
    /// Read ranges of the data of mutable share `shnum`, within `budget`.
    pub(super) async fn read_slot(
        &self,
        si: &StorageIndex,
        shnum: ShareNum,
        ranges: &[(u64, u64)],
        budget: &mut u64,
    ) -> Result<Vec<Bytes>> {
        let mut out = Vec::with_capacity(ranges.len());
        for &(offset, len) in ranges {
            let data = self
                .shared
                .backend
                .read(
                    si,
                    shnum,
                    ShareKind::Mutable,
                    offset.saturating_add(WE_LEN),
                    len,
                )
                .await?;
            *budget = budget.checked_sub(data.len() as u64).ok_or_else(|| {
                Error::invalid_input(format!(
                    "a slot read would return more than {MAX_CALL_DATA} bytes; ask for fewer ranges or shares"
                ))
            })?;
            out.push(data);
        }
        Ok(out)
    }

    pub(super) async fn mutable_shares(
        &self,
        si: &StorageIndex,
    ) -> Result<BTreeMap<ShareNum, u64>> {
        Ok(self
            .shared
            .backend
            .list(si)
            .await?
            .into_iter()
            .filter(|i| i.kind == ShareKind::Mutable)
            .map(|i| (i.shnum, i.size))
            .collect())
    }

    /// Every test of `w` against the current data of share `shnum`
    /// (absent: empty), each compared in constant time.
    pub(super) async fn tests_hold(
        &self,
        si: &StorageIndex,
        shnum: ShareNum,
        exists: bool,
        tests: &[TestVector],
    ) -> Result<bool> {
        let mut all = true;
        for t in tests {
            let current = if exists {
                self.shared
                    .backend
                    .read(
                        si,
                        shnum,
                        ShareKind::Mutable,
                        t.offset.saturating_add(WE_LEN),
                        t.length,
                    )
                    .await?
            } else {
                Bytes::new()
            };
            all &= constant_time_eq(&current, &t.expected);
        }
        Ok(all)
    }

    /// Snapshot what `w` will overwrite in an existing share.
    pub(super) async fn undo_for(
        &self,
        si: &StorageIndex,
        shnum: ShareNum,
        old_len: u64,
        w: &SlotWrite,
    ) -> Result<Undo> {
        let mut old = Vec::new();
        for v in &w.writes {
            let offset = shifted(v.offset)?;
            let data = self
                .shared
                .backend
                .read(si, shnum, ShareKind::Mutable, offset, v.data.len() as u64)
                .await?;
            old.push(WriteVector { offset, data });
        }
        Ok(Undo {
            shnum,
            old: Some((old_len, old)),
        })
    }

    pub(super) async fn rollback(&self, si: &StorageIndex, done: Vec<Undo>, we: &Secret) {
        for undo in done.into_iter().rev() {
            let r = match undo.old {
                None => self.shared.backend.delete(si, undo.shnum).await,
                Some((len, old)) => self
                    .shared
                    .backend
                    .test_and_write(
                        si,
                        undo.shnum,
                        &[TestVector::equals(0, Bytes::copy_from_slice(we))],
                        &old,
                        Some(len),
                    )
                    .await
                    .map(|_| ()),
            };
            if let Err(e) = r {
                tracing::error!(
                    "could not roll back share {} of slot {si} after a failed write: {e}",
                    undo.shnum
                );
            }
        }
    }
}

impl StorageServer {
    pub(super) async fn readv(
        &self,
        si: StorageIndex,
        shnums: Vec<ShareNum>,
        ranges: Vec<(u64, u64)>,
    ) -> Result<BTreeMap<ShareNum, Vec<Bytes>>> {
        check_ranges(&ranges)?;
        count(&self.shared.counters.readv, 1);
        let mut budget = MAX_CALL_DATA;
        let mut out = BTreeMap::new();
        for shnum in self.mutable_shares(&si).await?.into_keys() {
            if shnums.is_empty() || shnums.contains(&shnum) {
                out.insert(
                    shnum,
                    self.read_slot(&si, shnum, &ranges, &mut budget).await?,
                );
            }
        }
        Ok(out)
    }
    pub(super) async fn test_and_write(
        &self,
        si: StorageIndex,
        secrets: SlotSecrets,
        writes: BTreeMap<ShareNum, SlotWrite>,
        read_ranges: Vec<(u64, u64)>,
    ) -> Result<(bool, BTreeMap<ShareNum, Vec<Bytes>>)> {
        check_ranges(&read_ranges)?;
        check_slot_writes(&writes)?;
        count(&self.shared.counters.writev, 1);
        let we = secrets.write_enabler;
        let _slot = self.shared.slot_lock(&si).lock().await;
        let existing = self.mutable_shares(&si).await?;
        // The write enabler guards every existing share of the slot.
        for &shnum in existing.keys() {
            let stored = self
                .shared
                .backend
                .read(&si, shnum, ShareKind::Mutable, 0, WE_LEN)
                .await?;
            if !constant_time_eq(&stored, &we) {
                return Err(Error::permission_denied(format!(
                    "wrong write enabler for slot {si} (share {shnum})"
                )));
            }
        }
        let mut budget = MAX_CALL_DATA;
        let mut reads = BTreeMap::new();
        for &shnum in existing.keys() {
            reads.insert(
                shnum,
                self.read_slot(&si, shnum, &read_ranges, &mut budget)
                    .await?,
            );
        }
        // Every test of every share first; nothing is written unless all hold.
        for (shnum, w) in &writes {
            if !self
                .tests_hold(&si, *shnum, existing.contains_key(shnum), &w.tests)
                .await?
            {
                return Ok((false, reads));
            }
        }
        let changes = writes
            .iter()
            .any(|(_, w)| !w.writes.is_empty() || w.new_length.is_some());
        if self.shared.config.readonly && changes {
            return Err(Error::permission_denied("this storage server is read-only"));
        }
        // Check sizes and space for the whole call before writing anything.
        let mut growth = 0u64;
        for (shnum, w) in &writes {
            let old = existing.get(shnum).copied().unwrap_or(0);
            let new = length_after(old.max(WE_LEN), w)?;
            growth = growth.saturating_add(new.saturating_sub(old));
        }
        let _space = if growth > 0 {
            let guard = self.shared.space.lock().await;
            if !self.shared.room_for(growth).await? {
                return Err(Error::no_space(format!(
                    "no room for {growth} more bytes of slot {si}"
                )));
            }
            Some(guard)
        } else {
            None
        };
        let mut done: Vec<Undo> = Vec::new();
        // Undo records let a call that changes several shares put back the
        // ones done when a later one fails; a call changing one share
        // relies on the backend's own atomicity and needs none.
        let changing = writes
            .values()
            .filter(|w| !w.writes.is_empty() || w.new_length.is_some())
            .count();
        for (shnum, w) in writes {
            if w.writes.is_empty() && w.new_length.is_none() {
                continue;
            }
            let old_len = existing.get(&shnum).copied();
            let (guard, mut vectors, undo) = match old_len {
                Some(len) => (
                    TestVector::equals(0, Bytes::copy_from_slice(&we)),
                    Vec::new(),
                    if changing > 1 {
                        Some(self.undo_for(&si, shnum, len, &w).await?)
                    } else {
                        None
                    },
                ),
                None => (
                    TestVector::absent(),
                    vec![WriteVector {
                        offset: 0,
                        data: Bytes::copy_from_slice(&we),
                    }],
                    Some(Undo { shnum, old: None }),
                ),
            };
            for v in w.writes {
                vectors.push(WriteVector {
                    offset: shifted(v.offset)?,
                    data: v.data,
                });
            }
            let new_length = w.new_length.map(shifted).transpose()?;
            let applied = self
                .shared
                .backend
                .test_and_write(&si, shnum, &[guard], &vectors, new_length)
                .await;
            match applied {
                Ok(true) => done.extend(undo),
                Ok(false) => {
                    // Only another writer behind the server's back can do
                    // this (the slot is locked here).
                    self.rollback(&si, done, &we).await;
                    return Ok((false, reads));
                }
                Err(e) => {
                    self.rollback(&si, done, &we).await;
                    return Err(e.context(format!("writing share {shnum} of slot {si}")));
                }
            }
        }
        let _ = self
            .shared
            .backend
            .add_lease(
                &si,
                &self
                    .shared
                    .lease(secrets.renew_secret, secrets.cancel_secret),
            )
            .await;
        Ok((true, reads))
    }
}
