//! A tahoe-api plugin compiled into the binary instead of loaded from a
//! shared library.
//!
//! A backend written against `tahoe_api::StorageBackend` is usually built
//! as a `cdylib` and named in `[plugins] load`. The same crate can also be
//! linked into a program (an rlib dependency) and registered here: no C
//! ABI in between, the trait's methods called directly. Everything else is
//! as for a loaded library: calls run on tokio's blocking pool, the node
//! checks the bounds it promises plugins before a call (pending writes,
//! mutable sizes) and what comes back after it (read lengths, listings),
//! and errors keep the plugin's kind and message. A panic in a call is
//! caught by the blocking pool and becomes an `Internal` error.
//!
//! Why it exists: a program that embeds the node can ship a backend
//! without a library file beside it (`examples/static-backend`), and the
//! benchmark of what the ABI costs compares a loaded library with the same
//! code linked in through this adapter (`cargo bench --bench grid --
//! --plugin`).

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use super::{api_lease, api_tests, api_writes, listing, node_lease, plugin_error, share_kind};
use crate::error::{Error, Result};
use crate::kinds::storage::{
    Lease, PendingShare, ShareInfo, ShareKind, ShareNum, StorageBackend, StorageIndex, TestVector,
    WriteVector,
};
use crate::plugin::registry::{PluginKind, Registry};

/// Register `T` as the storage plugin `T::NAME`, opened with its
/// `[storage.NAME]` section as TOML text. Fails when the name is taken.
pub fn register_storage<T: tahoe_api::StorageBackend>(registry: &mut Registry) -> Result<()> {
    let owned: Arc<str> = T::NAME.into();
    registry.add_storage(T::NAME, T::DESCRIPTION, move |ctx| {
        let config = ctx.config.to_toml()?;
        let backend = T::open(&config, &ctx.basedir).map_err(|e| error(&owned, e))?;
        Ok(Arc::new(Linked {
            name: owned.clone(),
            inner: Arc::new(backend),
        }) as Arc<dyn StorageBackend>)
    })
}

fn error(name: &str, e: tahoe_api::Error) -> Error {
    plugin_error(e.kind, PluginKind::Storage, name, &e.message)
}

/// A linked storage plugin.
struct Linked<T> {
    name: Arc<str>,
    inner: Arc<T>,
}

impl<T: tahoe_api::StorageBackend> Linked<T> {
    /// Run `f` with the backend on the blocking pool.
    async fn blocking<R: Send + 'static>(
        &self,
        f: impl FnOnce(&T) -> tahoe_api::Result<R> + Send + 'static,
    ) -> Result<R> {
        let inner = self.inner.clone();
        on_blocking_pool(&self.name, move || f(&inner)).await
    }
}

async fn on_blocking_pool<R: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> tahoe_api::Result<R> + Send + 'static,
) -> Result<R> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::internal(format!("storage plugin `{name}` call failed: {e}")))?
        .map_err(|e| error(name, e))
}

#[async_trait]
impl<T: tahoe_api::StorageBackend> StorageBackend for Linked<T> {
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
        let pending = self.blocking(move |b| b.create(&si, shnum, size)).await?;
        Ok(Box::new(LinkedPending::<T> {
            name: self.name.clone(),
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
        let (si, kind) = (si.0, share_kind(kind));
        let data = self
            .blocking(move |b| b.read(&si, shnum, kind, offset, len))
            .await?;
        if data.len() as u64 > len {
            return Err(Error::corrupt(format!(
                "storage plugin `{}` returned {} bytes for a read of at most {len}",
                self.name,
                data.len()
            )));
        }
        Ok(Bytes::from(data))
    }

    async fn list(&self, si: &StorageIndex) -> Result<Vec<ShareInfo>> {
        let si = si.0;
        let infos = self.blocking(move |b| b.list(&si)).await?;
        listing(infos).map_err(|what| {
            Error::corrupt(format!("storage plugin `{}` returned {what}", self.name))
        })
    }

    async fn delete(&self, si: &StorageIndex, shnum: ShareNum) -> Result<()> {
        let si = si.0;
        self.blocking(move |b| b.delete(&si, shnum)).await
    }

    async fn remaining_capacity(&self) -> Result<Option<u64>> {
        self.blocking(|b| b.remaining_capacity()).await
    }

    async fn test_and_write(
        &self,
        si: &StorageIndex,
        shnum: ShareNum,
        tests: &[TestVector],
        writes: &[WriteVector],
        new_length: Option<u64>,
    ) -> Result<bool> {
        crate::kinds::storage::length_after_writes(0, writes, new_length)?;
        let (si, tests, writes) = (si.0, api_tests(tests), api_writes(writes));
        self.blocking(move |b| b.test_and_write(&si, shnum, &tests, &writes, new_length))
            .await
    }

    async fn add_lease(&self, si: &StorageIndex, lease: &Lease) -> Result<()> {
        let (si, lease) = (si.0, api_lease(lease));
        self.blocking(move |b| b.add_lease(&si, &lease)).await
    }

    async fn leases(&self, si: &StorageIndex) -> Result<Vec<Lease>> {
        let si = si.0;
        let leases = self.blocking(move |b| b.leases(&si)).await?;
        Ok(leases.into_iter().map(node_lease).collect())
    }
}

/// A pending share of a linked plugin; dropped unfinished, it is aborted.
struct LinkedPending<T: tahoe_api::StorageBackend> {
    name: Arc<str>,
    pending: Option<T::Pending>,
    size: u64,
}

impl<T: tahoe_api::StorageBackend> LinkedPending<T> {
    fn take(&mut self) -> Result<T::Pending> {
        self.pending
            .take()
            .ok_or_else(|| Error::internal("pending share already finished"))
    }
}

#[async_trait]
impl<T: tahoe_api::StorageBackend> PendingShare for LinkedPending<T> {
    async fn write(&mut self, offset: u64, data: Bytes) -> Result<()> {
        use tahoe_api::PendingShare as _;
        crate::kinds::storage::check_pending_write(self.size, offset, data.len())?;
        let mut p = self.take()?;
        let (p, r) = tokio::task::spawn_blocking(move || {
            let r = p.write(offset, &data);
            (p, r)
        })
        .await
        .map_err(|e| Error::internal(format!("storage plugin `{}` call failed: {e}", self.name)))?;
        self.pending = Some(p);
        r.map_err(|e| error(&self.name, e))
    }

    async fn seal(mut self: Box<Self>) -> Result<()> {
        let p = self.take()?;
        on_blocking_pool(&self.name, move || tahoe_api::PendingShare::seal(p)).await
    }

    async fn abort(mut self: Box<Self>) -> Result<()> {
        let p = self.take()?;
        on_blocking_pool(&self.name, move || tahoe_api::PendingShare::abort(p)).await
    }
}

impl<T: tahoe_api::StorageBackend> Drop for LinkedPending<T> {
    fn drop(&mut self) {
        if let Some(p) = self.pending.take() {
            let _ = tahoe_api::PendingShare::abort(p);
        }
    }
}
