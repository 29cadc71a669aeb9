//! The one adapter from a blocking storage plugin to the node's async
//! [`StorageBackend`].
//!
//! A tahoe-api storage plugin reaches the node in two ways: loaded from a
//! shared library (its C table, [`super::AbiStore`]) or linked into the
//! binary (its `tahoe_api::StorageBackend`, [`super::linked`]'s
//! `Direct`). Both are the same blocking contract, so everything the node
//! does around a call is here, once, in [`BlockingBackend`]:
//!
//! - before a call, the bounds the node promises plugins: a pending write
//!   ends within the share's declared size, a mutable share stays within
//!   [`MAX_MUTABLE_SHARE`](crate::kinds::storage::MAX_MUTABLE_SHARE)
//!   (`InvalidInput`, and the plugin never sees the call);
//! - after it, what a plugin may get wrong: a read longer than asked, a
//!   listing with a share twice (`Corrupt`, naming the plugin); listings
//!   are sorted by share number for the plugin;
//! - the call itself on tokio's blocking pool ([`on_pool`]), since plugin
//!   calls block; a panic there is an `Internal` error naming the plugin;
//! - a pending share's handle: used by one call at a time (moved to the
//!   pool and back), finished once by seal or abort, aborted when dropped
//!   unfinished.
//!
//! What is particular to each way stays with it, behind [`Store`] and
//! [`Pending`]: the unsafe table calls and the checks of what crosses the
//! C ABI (null handles, buffers, record shapes) for a library; the error
//! mapping and the one copy of the vectors for a linked plugin.
//!
//! Why a trait of its own and not `tahoe_api::StorageBackend` itself: that
//! trait is what a plugin implements, with its name as a constant, a
//! static `open` and reads returning a `Vec`. A loaded library has its
//! name at run time, is opened through its table, and returns its reads
//! in its own buffer, which the node keeps without a copy
//! ([`Bytes::from_owner`]). [`Store`] is the calls on an opened backend,
//! in the node's records and error, so both fit it without a loss.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use crate::blocking::on_pool;
use crate::error::{Error, Result};
use crate::kinds::storage::{
    Lease, PendingShare, ShareInfo, ShareKind, ShareNum, StorageBackend, StorageIndex, TestVector,
    WriteVector, check_pending_write, length_after_writes,
};

/// An opened blocking storage plugin: the calls of
/// `tahoe_api::StorageBackend`, made as they are. Errors are the node's,
/// already naming the plugin; nothing here checks what the adapter
/// checks.
pub(super) trait Store: Send + Sync + 'static {
    /// Its pending shares.
    type Pending: Pending;

    fn create(&self, si: &tahoe_api::StorageIndex, shnum: u8, size: u64) -> Result<Self::Pending>;
    fn read(
        &self,
        si: &tahoe_api::StorageIndex,
        shnum: u8,
        kind: ShareKind,
        offset: u64,
        len: u64,
    ) -> Result<Bytes>;
    /// The plugin's listing, as it gave it.
    fn list(&self, si: &tahoe_api::StorageIndex) -> Result<Vec<ShareInfo>>;
    fn delete(&self, si: &tahoe_api::StorageIndex, shnum: u8) -> Result<()>;
    fn remaining_capacity(&self) -> Result<Option<u64>>;
    fn test_and_write(
        &self,
        si: &tahoe_api::StorageIndex,
        shnum: u8,
        tests: &[TestVector],
        writes: &[WriteVector],
        new_length: Option<u64>,
    ) -> Result<bool>;
    fn add_lease(&self, si: &tahoe_api::StorageIndex, lease: &Lease) -> Result<()>;
    fn leases(&self, si: &tahoe_api::StorageIndex) -> Result<Vec<Lease>>;
    fn storage_indexes(
        &self,
        after: Option<&tahoe_api::StorageIndex>,
        limit: usize,
    ) -> Result<Option<Vec<tahoe_api::StorageIndex>>>;
}

/// A pending share of a [`Store`].
pub(super) trait Pending: Send + 'static {
    fn write(&mut self, offset: u64, data: &[u8]) -> Result<()>;
    /// Seal it (`seal`) or abort it.
    fn finish(self, seal: bool) -> Result<()>;
}

/// A blocking plugin as the node's backend (see the module docs).
pub(super) struct BlockingBackend<S> {
    name: Arc<str>,
    /// "storage plugin `NAME`", and the library's path when loaded: how
    /// the node's own errors about the plugin name it.
    label: Arc<str>,
    store: Arc<S>,
}

impl<S: Store> BlockingBackend<S> {
    pub(super) fn new(name: &str, label: impl Into<Arc<str>>, store: S) -> Self {
        BlockingBackend {
            name: name.into(),
            label: label.into(),
            store: Arc::new(store),
        }
    }

    /// Run `f` with the store on the blocking pool.
    async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&S) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        let store = self.store.clone();
        pool(&self.label, move || f(&store)).await?
    }

    fn garbage(&self, what: &str) -> Error {
        Error::corrupt(format!("{} returned {what}", self.label))
    }
}

/// Run `f` on the blocking pool; a panic there is an `Internal` error
/// naming the plugin (`label`).
async fn pool<R: Send + 'static>(label: &str, f: impl FnOnce() -> R + Send + 'static) -> Result<R> {
    on_pool(move || Ok(f())).await.map_err(|e| e.context(label))
}

/// A plugin's listing, sorted by share number; what is wrong with it when
/// a share is listed twice.
fn listing(mut infos: Vec<ShareInfo>) -> std::result::Result<Vec<ShareInfo>, &'static str> {
    infos.sort_by_key(|i| i.shnum);
    if infos.windows(2).any(|w| w[0].shnum == w[1].shnum) {
        return Err("a share listed twice");
    }
    Ok(infos)
}

#[async_trait]
impl<S: Store> StorageBackend for BlockingBackend<S> {
    fn name(&self) -> &str {
        &self.name
    }

    async fn create(
        &self,
        si: &StorageIndex,
        shnum: ShareNum,
        size: u64,
    ) -> Result<Box<dyn PendingShare>> {
        let si = si.0;
        let pending = self.call(move |s| s.create(&si, shnum, size)).await?;
        Ok(Box::new(BlockingPending {
            label: self.label.clone(),
            pending: Some(pending),
            size,
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
        let si = si.0;
        let data = self
            .call(move |s| s.read(&si, shnum, kind, offset, len))
            .await?;
        if data.len() as u64 > len {
            return Err(self.garbage(&format!("{} bytes for a read of at most {len}", data.len())));
        }
        Ok(data)
    }

    async fn list(&self, si: &StorageIndex) -> Result<Vec<ShareInfo>> {
        let si = si.0;
        let infos = self.call(move |s| s.list(&si)).await?;
        listing(infos).map_err(|what| self.garbage(what))
    }

    async fn delete(&self, si: &StorageIndex, shnum: ShareNum) -> Result<()> {
        let si = si.0;
        self.call(move |s| s.delete(&si, shnum)).await
    }

    async fn remaining_capacity(&self) -> Result<Option<u64>> {
        self.call(|s| s.remaining_capacity()).await
    }

    async fn test_and_write(
        &self,
        si: &StorageIndex,
        shnum: ShareNum,
        tests: &[TestVector],
        writes: &[WriteVector],
        new_length: Option<u64>,
    ) -> Result<bool> {
        // Sizes are the node's to check: tahoe-api promises plugins that
        // writes end within the mutable share limit.
        length_after_writes(0, writes, new_length)?;
        // Clones of `Bytes`: the data is shared, not copied.
        let (si, tests, writes) = (si.0, tests.to_vec(), writes.to_vec());
        self.call(move |s| s.test_and_write(&si, shnum, &tests, &writes, new_length))
            .await
    }

    async fn add_lease(&self, si: &StorageIndex, lease: &Lease) -> Result<()> {
        let (si, lease) = (si.0, lease.clone());
        self.call(move |s| s.add_lease(&si, &lease)).await
    }

    async fn leases(&self, si: &StorageIndex) -> Result<Vec<Lease>> {
        let si = si.0;
        self.call(move |s| s.leases(&si)).await
    }

    async fn storage_indexes(
        &self,
        after: Option<&StorageIndex>,
        limit: usize,
    ) -> Result<Option<Vec<StorageIndex>>> {
        let after = after.map(|a| a.0);
        let page = self
            .call(move |s| s.storage_indexes(after.as_ref(), limit))
            .await?;
        match page {
            Some(p) if p.len() > limit => Err(self.garbage(&format!(
                "{} storage indexes for a page of at most {limit}",
                p.len()
            ))),
            p => Ok(p.map(|p| p.into_iter().map(StorageIndex).collect())),
        }
    }
}

/// A pending share of a blocking plugin; dropped unfinished, it is aborted
/// (on the dropping thread: `Drop` cannot wait for the pool).
struct BlockingPending<P: Pending> {
    label: Arc<str>,
    /// `None` while a write has it on the pool, and once finished.
    pending: Option<P>,
    size: u64,
}

impl<P: Pending> BlockingPending<P> {
    fn take(&mut self) -> Result<P> {
        self.pending
            .take()
            .ok_or_else(|| Error::internal("pending share already finished"))
    }

    async fn finish(mut self: Box<Self>, seal: bool) -> Result<()> {
        let p = self.take()?;
        pool(&self.label, move || p.finish(seal)).await?
    }
}

#[async_trait]
impl<P: Pending> PendingShare for BlockingPending<P> {
    async fn write(&mut self, offset: u64, data: Bytes) -> Result<()> {
        check_pending_write(self.size, offset, data.len())?;
        let mut p = self.take()?;
        let (p, r) = pool(&self.label, move || {
            let r = p.write(offset, &data);
            (p, r)
        })
        .await?;
        self.pending = Some(p);
        r
    }

    async fn seal(self: Box<Self>) -> Result<()> {
        self.finish(true).await
    }

    async fn abort(self: Box<Self>) -> Result<()> {
        self.finish(false).await
    }
}

impl<P: Pending> Drop for BlockingPending<P> {
    fn drop(&mut self) {
        if let Some(p) = self.pending.take() {
            let _ = p.finish(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(shnum: u8) -> ShareInfo {
        ShareInfo {
            shnum,
            size: 1,
            kind: ShareKind::Immutable,
        }
    }

    #[test]
    fn listings_are_sorted_and_a_share_twice_is_refused() {
        let sorted = listing(vec![info(3), info(0), info(1)]).unwrap();
        assert_eq!(sorted, vec![info(0), info(1), info(3)]);
        assert_eq!(
            listing(vec![info(2), info(0), info(2)]),
            Err("a share listed twice")
        );
    }
}
