//! `memory`: a storage backend that keeps shares in RAM.
//!
//! For tests and throw-away demo grids: everything is lost when the process
//! ends. It implements the whole contract, including the optional capacity
//! limit, so code above it can be tested against `NoSpace` too. One mutex
//! guards the maps; share bytes are `Bytes`, so reads copy nothing.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use bytes::Bytes;
use serde::Deserialize;
use tahoe_core::kinds::storage::{
    Lease, PendingShare, ShareInfo, ShareKind, ShareNum, StorageBackend, StorageIndex, TestVector,
    WriteVector, apply_writes, check_pending_write, length_after_writes, merge_lease, read_range,
    tests_hold,
};
use tahoe_core::plugin::registry::{PluginContext, Registry};
use tahoe_core::{Error, Result};

/// The registry name.
pub const NAME: &str = "memory";

/// `[storage.memory]` settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MemoryConfig {
    /// Most bytes of share data held at once; absent means unlimited.
    pub capacity: Option<u64>,
}

/// A share's bytes as the chunks they were written in: non-overlapping,
/// sorted, covering the whole share. Keeping the writers' buffers instead of
/// copying them into one saves a copy of every byte stored (and the fresh
/// pages it would need); a read inside one chunk is a zero-copy slice.
#[derive(Clone, Default)]
struct Content {
    chunks: Vec<(u64, Bytes)>,
    len: u64,
}

impl Content {
    fn flat(data: Bytes) -> Self {
        let len = data.len() as u64;
        Content {
            chunks: if len == 0 {
                Vec::new()
            } else {
                vec![(0, data)]
            },
            len,
        }
    }

    /// Assemble a share of `len` bytes from writes in arrival order.
    fn from_writes(mut writes: Vec<(u64, Bytes)>, len: u64) -> Self {
        let arrival = writes.clone();
        writes.sort_by_key(|(o, _)| *o);
        let disjoint = writes
            .windows(2)
            .all(|w| w[0].0 + w[0].1.len() as u64 <= w[1].0);
        if !disjoint {
            // Overlapping writes: the last one wins, so replay them in order.
            let mut flat = vec![0u8; len as usize];
            for (o, d) in arrival {
                flat[o as usize..o as usize + d.len()].copy_from_slice(&d);
            }
            return Self::flat(Bytes::from(flat));
        }
        let mut chunks = Vec::with_capacity(writes.len() + 1);
        let mut at = 0u64;
        for (o, d) in writes.into_iter().filter(|(_, d)| !d.is_empty()) {
            if o > at {
                chunks.push((at, Bytes::from(vec![0u8; (o - at) as usize])));
            }
            at = o + d.len() as u64;
            chunks.push((o, d));
        }
        if len > at {
            chunks.push((at, Bytes::from(vec![0u8; (len - at) as usize])));
        }
        Content { chunks, len }
    }

    fn read(&self, offset: u64, len: u64) -> Bytes {
        let r = read_range(self.len, offset, len);
        if r.is_empty() {
            return Bytes::new();
        }
        let first = self
            .chunks
            .partition_point(|(o, d)| o + d.len() as u64 <= r.start);
        let (o, d) = &self.chunks[first];
        if r.end <= o + d.len() as u64 {
            return d.slice((r.start - o) as usize..(r.end - o) as usize);
        }
        let mut out = Vec::with_capacity((r.end - r.start) as usize);
        for (o, d) in &self.chunks[first..] {
            if *o >= r.end {
                break;
            }
            let from = r.start.max(*o) - o;
            let to = r.end.min(o + d.len() as u64) - o;
            out.extend_from_slice(&d[from as usize..to as usize]);
        }
        Bytes::from(out)
    }

    /// The bytes as one vector, without a copy when they are one chunk
    /// nobody else holds.
    fn into_vec(self) -> Vec<u8> {
        if self.chunks.len() == 1 {
            if let Some((_, only)) = self.chunks.into_iter().next() {
                return match only.try_into_mut() {
                    Ok(unique) => unique.into(),
                    Err(shared) => shared.to_vec(),
                };
            }
            return Vec::new();
        }
        self.read(0, self.len).to_vec()
    }
}

struct Share {
    data: Content,
    kind: ShareKind,
}

#[derive(Default)]
struct State {
    /// Ordered, so that the crawler's pages are ranges.
    shares: BTreeMap<StorageIndex, BTreeMap<ShareNum, Share>>,
    leases: HashMap<StorageIndex, Vec<Lease>>,
    /// Bytes of sealed and mutable shares plus reservations of pending ones.
    used: u64,
}

/// The in-memory backend.
#[derive(Clone, Default)]
pub struct MemoryBackend {
    state: Arc<Mutex<State>>,
    capacity: Option<u64>,
}

impl MemoryBackend {
    /// An empty backend holding at most `capacity` bytes (`None`: no limit).
    pub fn new(capacity: Option<u64>) -> Self {
        MemoryBackend {
            state: Arc::default(),
            capacity,
        }
    }
}

fn lock(state: &Mutex<State>) -> Result<MutexGuard<'_, State>> {
    state
        .lock()
        .map_err(|_| Error::internal("memory backend state poisoned"))
}

impl State {
    fn reserve(&mut self, capacity: Option<u64>, bytes: u64) -> Result<()> {
        let after = self.used.saturating_add(bytes);
        if capacity.is_some_and(|cap| after > cap) {
            return Err(Error::no_space(format!(
                "memory backend full: {} of {} bytes used, {bytes} more wanted",
                self.used,
                capacity.unwrap_or(0)
            )));
        }
        self.used = after;
        Ok(())
    }
}

/// A share being written: the writes as they came; `size` bytes stay
/// reserved against the capacity until sealed or released.
struct Pending {
    backend: MemoryBackend,
    si: StorageIndex,
    shnum: ShareNum,
    size: u64,
    data: Option<Vec<(u64, Bytes)>>,
}

impl Pending {
    fn release(&mut self) {
        if self.data.take().is_some()
            && let Ok(mut st) = lock(&self.backend.state)
        {
            st.used = st.used.saturating_sub(self.size);
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.release();
    }
}

#[async_trait]
impl PendingShare for Pending {
    async fn write(&mut self, offset: u64, data: Bytes) -> Result<()> {
        let writes = self
            .data
            .as_mut()
            .ok_or_else(|| Error::internal("write after seal"))?;
        check_pending_write(self.size, offset, data.len())?;
        writes.push((offset, data));
        Ok(())
    }

    async fn seal(mut self: Box<Self>) -> Result<()> {
        let writes = self
            .data
            .take()
            .ok_or_else(|| Error::internal("sealed twice"))?;
        let len = self.size;
        let data = Content::from_writes(writes, len);
        let mut st = lock(&self.backend.state)?;
        let shares = st.shares.entry(self.si).or_default();
        if shares.contains_key(&self.shnum) {
            st.used = st.used.saturating_sub(len);
            return Err(Error::already_exists(format!(
                "share {} of {} was sealed by another writer",
                self.shnum, self.si
            )));
        }
        shares.insert(
            self.shnum,
            Share {
                data,
                kind: ShareKind::Immutable,
            },
        );
        Ok(())
    }

    async fn abort(mut self: Box<Self>) -> Result<()> {
        self.release();
        Ok(())
    }
}

#[async_trait]
impl StorageBackend for MemoryBackend {
    fn name(&self) -> &str {
        NAME
    }

    async fn create(
        &self,
        si: &StorageIndex,
        shnum: ShareNum,
        size: u64,
    ) -> Result<Box<dyn PendingShare>> {
        let mut st = lock(&self.state)?;
        if st.shares.get(si).is_some_and(|m| m.contains_key(&shnum)) {
            return Err(Error::already_exists(format!(
                "share {shnum} of {si} exists"
            )));
        }
        if usize::try_from(size).is_err() {
            return Err(Error::no_space(format!(
                "{size} bytes do not fit in memory"
            )));
        }
        st.reserve(self.capacity, size)?;
        drop(st);
        Ok(Box::new(Pending {
            backend: self.clone(),
            si: *si,
            shnum,
            size,
            data: Some(Vec::new()),
        }))
    }

    async fn read(
        &self,
        si: &StorageIndex,
        shnum: ShareNum,
        kind: ShareKind,
        offset: u64,
        len: u64,
    ) -> Result<Bytes> {
        let st = lock(&self.state)?;
        let share = st
            .shares
            .get(si)
            .and_then(|m| m.get(&shnum))
            .filter(|s| s.kind == kind)
            .ok_or_else(|| Error::not_found(format!("no share {shnum} of {si}")))?;
        Ok(share.data.read(offset, len))
    }

    async fn list(&self, si: &StorageIndex) -> Result<Vec<ShareInfo>> {
        let st = lock(&self.state)?;
        Ok(st
            .shares
            .get(si)
            .map(|m| {
                m.iter()
                    .map(|(&shnum, s)| ShareInfo {
                        shnum,
                        size: s.data.len,
                        kind: s.kind,
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn storage_indexes(
        &self,
        after: Option<&StorageIndex>,
        limit: usize,
    ) -> Result<Option<Vec<StorageIndex>>> {
        use std::ops::Bound::{Excluded, Unbounded};
        let st = lock(&self.state)?;
        let from = after.map_or(Unbounded, Excluded);
        Ok(Some(
            st.shares
                .range((from, Unbounded))
                .filter(|(_, m)| !m.is_empty())
                .map(|(si, _)| *si)
                .take(limit)
                .collect(),
        ))
    }

    async fn delete(&self, si: &StorageIndex, shnum: ShareNum) -> Result<()> {
        let mut st = lock(&self.state)?;
        let removed = st
            .shares
            .get_mut(si)
            .and_then(|m| m.remove(&shnum))
            .ok_or_else(|| Error::not_found(format!("no share {shnum} of {si}")))?;
        st.used = st.used.saturating_sub(removed.data.len);
        if st.shares.get(si).is_some_and(BTreeMap::is_empty) {
            st.shares.remove(si);
            st.leases.remove(si);
        }
        Ok(())
    }

    async fn remaining_capacity(&self) -> Result<Option<u64>> {
        let st = lock(&self.state)?;
        Ok(self.capacity.map(|c| c.saturating_sub(st.used)))
    }

    async fn test_and_write(
        &self,
        si: &StorageIndex,
        shnum: ShareNum,
        tests: &[TestVector],
        writes: &[WriteVector],
        new_length: Option<u64>,
    ) -> Result<bool> {
        let mut st = lock(&self.state)?;
        let existing = st.shares.get(si).and_then(|m| m.get(&shnum));
        if existing.is_some_and(|s| s.kind == ShareKind::Immutable) {
            return Err(Error::already_exists(format!(
                "share {shnum} of {si} is immutable"
            )));
        }
        let old = existing.map_or(0, |s| s.data.len);
        if !tests_hold(
            &existing
                .map(|s| s.data.read(0, s.data.len))
                .unwrap_or_default(),
            tests,
        ) {
            return Ok(false);
        }
        if existing.is_none() && writes.is_empty() && new_length.unwrap_or(0) == 0 {
            return Ok(true);
        }
        // Sizes and space first, so that a refused write changes nothing.
        let new = length_after_writes(old, writes, new_length)?;
        if new > old {
            st.reserve(self.capacity, new - old)?;
        } else {
            st.used = st.used.saturating_sub(old - new);
        }
        // Then in place: a large share written piece by piece costs each
        // call its own bytes, not the share's.
        let slot = st
            .shares
            .entry(*si)
            .or_default()
            .entry(shnum)
            .or_insert(Share {
                data: Content::default(),
                kind: ShareKind::Mutable,
            });
        let mut data = std::mem::take(&mut slot.data).into_vec();
        apply_writes(&mut data, writes, new_length)?;
        slot.data = Content::flat(Bytes::from(data));
        Ok(true)
    }

    async fn add_lease(&self, si: &StorageIndex, lease: &Lease) -> Result<()> {
        let mut st = lock(&self.state)?;
        if st.shares.get(si).is_none_or(|m| m.is_empty()) {
            return Err(Error::not_found(format!("no shares of {si} to lease")));
        }
        let leases = st.leases.entry(*si).or_default();
        merge_lease(leases, lease);
        Ok(())
    }

    async fn leases(&self, si: &StorageIndex) -> Result<Vec<Lease>> {
        let st = lock(&self.state)?;
        Ok(st.leases.get(si).cloned().unwrap_or_default())
    }
}

/// Register `memory` in `registry`.
pub fn register(registry: &mut Registry) -> Result<()> {
    registry.add_storage(
        NAME,
        "shares in RAM, lost on exit (tests and demos); optional capacity limit",
        |ctx: &PluginContext| {
            let cfg: MemoryConfig = ctx.config.parse()?;
            Ok(Arc::new(MemoryBackend::new(cfg.capacity)) as Arc<dyn StorageBackend>)
        },
    )
}
